//! LIST and WATCH parameters as upstream validates and serves them: ListOptions combinations
//! (422 on `ListOptions.meta.k8s.io`), resourceVersion semantics (Exact, NotOlderThan, too large,
//! compacted), verbs a resource does not support (405), per-request `?timeout=`, watches with
//! label selectors and without initial events, and watches ending cleanly at shutdown.

use std::time::Duration;

use futures::StreamExt;
use integration_tests::{ApiServer, ApiServerOptions, within};
use serde_json::{Value, json};

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = http.get(url).send().await.unwrap();
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
}

async fn create_cm(http: &reqwest::Client, base: &str, name: &str, labels: Value) -> Value {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"v": "1"}});
    let resp = http.post(format!("{base}/api/v1/namespaces/default/configmaps")).json(&cm).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

fn rv_of(v: &Value) -> i64 {
    v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
}

/// The single cause of a 422 on ListOptions: (field, reason, message).
fn list_options_cause(status: &Value) -> (String, String, String) {
    assert_eq!(status["reason"], "Invalid", "{status}");
    assert_eq!(status["details"]["kind"], "ListOptions", "{status}");
    assert_eq!(status["details"]["group"], "meta.k8s.io", "{status}");
    let c = &status["details"]["causes"][0];
    (c["field"].as_str().unwrap().into(), c["reason"].as_str().unwrap().into(), c["message"].as_str().unwrap().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_options_are_validated_as_upstream() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let cms = format!("{}/api/v1/namespaces/default/configmaps", s.url());
    let cases = [
        ("?resourceVersionMatch=Exact", "resourceVersionMatch", "FieldValueForbidden",
         "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
        ("?resourceVersion=0&resourceVersionMatch=Exact", "resourceVersionMatch", "FieldValueForbidden",
         "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""),
        ("?resourceVersion=1&resourceVersionMatch=Newest", "resourceVersionMatch", "FieldValueNotSupported",
         "Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\""),
        ("?sendInitialEvents=true", "sendInitialEvents", "FieldValueForbidden", "Forbidden: sendInitialEvents is forbidden for list"),
        ("?watch=true&sendInitialEvents=true", "resourceVersionMatch", "FieldValueForbidden",
         "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
        ("?watch=true&sendInitialEvents=false", "resourceVersionMatch", "FieldValueForbidden",
         "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
        ("?watch=true&resourceVersionMatch=NotOlderThan", "resourceVersionMatch", "FieldValueForbidden",
         "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"),
    ];
    for (query, field, reason, message) in cases {
        let (code, status, _) = get(&http, &format!("{cms}{query}")).await;
        assert_eq!(code, 422, "{query}: {status}");
        assert_eq!(list_options_cause(&status), (field.to_string(), reason.to_string(), message.to_string()), "{query}");
        assert!(status["message"].as_str().unwrap().starts_with("ListOptions.meta.k8s.io \"\" is invalid: "), "{status}");
    }
    // kubectl's --request-timeout sends `timeout`; an unparsable one is the client's mistake.
    let (code, status, _) = get(&http, &format!("{cms}?timeout=soon")).await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")), "{status}");
    // Namespaces have no deletecollection: 405, and nothing is deleted.
    let resp = http.delete(format!("{}/api/v1/namespaces", s.url())).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "MethodNotAllowed");
    assert_eq!(s.kubectl_ok(&["get", "ns", "default", "-o", "jsonpath={.status.phase}"]).await, "Active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_versions_exact_not_older_than_and_too_large() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let base = s.url();
    let cms = format!("{base}/api/v1/namespaces/default/configmaps");
    let first = create_cm(&http, &base, "a", json!({})).await;
    let old_rv = rv_of(&first);
    create_cm(&http, &base, "b", json!({})).await;

    // Exact: the list as it was at that revision.
    let (code, list, _) = get(&http, &format!("{cms}?resourceVersion={old_rv}&resourceVersionMatch=Exact")).await;
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(list["metadata"]["resourceVersion"], old_rv.to_string());
    // NotOlderThan: at least that revision.
    let (code, list, _) = get(&http, &format!("{cms}?resourceVersion={old_rv}&resourceVersionMatch=NotOlderThan")).await;
    assert_eq!(code, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["metadata"]["resourceVersion"].as_str().unwrap().parse::<i64>().unwrap() > old_rv);

    // A resourceVersion the server has not reached: 504 with upstream's cause, after a wait.
    let future = old_rv + 100_000;
    for query in [
        format!("{cms}?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
        format!("{cms}?resourceVersion={future}"),
        format!("{cms}?resourceVersion={future}&resourceVersionMatch=Exact"),
        format!("{cms}/a?resourceVersion={future}"),
    ] {
        let (code, status, headers) = get(&http, &query).await;
        assert_eq!(code, 504, "{query}: {status}");
        assert_eq!(status["reason"], "Timeout");
        assert!(status["message"].as_str().unwrap().starts_with(&format!("Too large resource version: {future}, current: ")), "{status}");
        assert_eq!(status["details"]["causes"][0]["reason"], "ResourceVersionTooLarge", "{status}");
        assert_eq!(status["details"]["causes"][0]["message"], "Too large resource version");
        assert_eq!(status["details"]["retryAfterSeconds"], 1);
        assert_eq!(headers["retry-after"], "1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_exact_lists_are_gone() {
    let s = ApiServer::start(ApiServerOptions::from_env().arg("--etcd-compaction-interval=1s")).await;
    let http = s.http();
    let base = s.url();
    let cms = format!("{base}/api/v1/namespaces/default/configmaps");
    let old_rv = rv_of(&create_cm(&http, &base, "a", json!({})).await);
    let url = format!("{cms}?resourceVersion={old_rv}&resourceVersionMatch=Exact");
    let status = within(20, "the Exact list at a compacted revision", async {
        loop {
            create_cm(&http, &base, &format!("x{}", rand_suffix()), json!({})).await;
            let (code, status, _) = get(&http, &url).await;
            if code == 410 {
                return status;
            }
            assert_eq!(code, 200, "{status}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["message"], "The resourceVersion for the provided list is too old.");
}

fn rand_suffix() -> String {
    integration_tests::random_hex(4)
}

/// Lines of a watch stream, as JSON events, until `n` have arrived.
async fn next_events<B: AsRef<[u8]>>(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<B>> + Unpin),
    buf: &mut Vec<u8>,
    n: usize,
) -> Vec<Value> {
    events_within(15, stream, buf, n).await
}

/// [`next_events`] with its own hang guard (`secs`).
async fn events_within<B: AsRef<[u8]>>(
    secs: u64,
    stream: &mut (impl futures::Stream<Item = reqwest::Result<B>> + Unpin),
    buf: &mut Vec<u8>,
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    within(secs, "watch events", async {
        loop {
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                out.push(serde_json::from_slice::<Value>(&line).unwrap());
                if out.len() == n {
                    return;
                }
            }
            buf.extend_from_slice(stream.next().await.expect("watch ended").unwrap().as_ref());
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_with_selectors_and_without_initial_events() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let base = s.url();
    let cms = format!("{base}/api/v1/namespaces/default/configmaps");
    create_cm(&http, &base, "before", json!({"app": "web"})).await;

    // resourceVersion=0 with sendInitialEvents=false: nothing synthetic, only what follows.
    let resp = http
        .get(format!("{cms}?watch=true&resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&labelSelector=app%3Dweb"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    create_cm(&http, &base, "other", json!({"app": "db"})).await;
    create_cm(&http, &base, "after", json!({"app": "web"})).await;
    // The label leaves the selector: a DELETED event, as upstream's cacher sends.
    let resp = http
        .patch(format!("{cms}/after"))
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"metadata":{"labels":{"app":"db"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = next_events(&mut stream, &mut buf, 2).await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_string(), e["object"]["metadata"]["name"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(seen, [("ADDED".to_string(), "after".to_string()), ("DELETED".to_string(), "after".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_watches_cleanly() {
    let mut s = ApiServer::start_default().await;
    let http = s.http();
    let resp = http
        .get(format!("{}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=600", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reader = tokio::spawn(async move {
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            chunk?;
        }
        Ok::<_, reqwest::Error>(())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = s.stop().await.expect("exit status");
    assert!(status.success(), "kube-apiserver exited with {status:?}");
    let ended = within(30, "the watch to end", reader).await.unwrap();
    assert!(ended.is_ok(), "the watch did not end cleanly: {ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_from_the_query_when_etcd_hangs() {
    if matches!(ApiServerOptions::from_env().storage, integration_tests::Storage::Embedded) {
        return; // needs an etcd process to pause
    }
    let s = ApiServer::start(ApiServerOptions::own_etcd()).await;
    let http = s.http();
    let url = format!("{}/api/v1/namespaces/default/configmaps/x?timeout=1s", s.url());
    let etcd_pid = s.etcd().and_then(|e| e.pid()).expect("own etcd");
    unsafe { libc::kill(etcd_pid as libc::pid_t, libc::SIGSTOP) };
    let result = get(&http, &url).await;
    unsafe { libc::kill(etcd_pid as libc::pid_t, libc::SIGCONT) };
    let (code, status, _) = result;
    assert_eq!(code, 504, "{status}");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(status["message"], "Timeout: request did not complete within requested timeout - context deadline exceeded");
    // And the server serves again once etcd does.
    within(20, "serving again", async {
        loop {
            let (code, _, _) = get(&http, &url).await;
            if code == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_live_under_upstream_etcd_keys_with_their_mod_revision() {
    if matches!(ApiServerOptions::from_env().storage, integration_tests::Storage::Embedded) {
        return; // reads etcd directly
    }
    // The harness gives every server its own --etcd-prefix.
    let s = ApiServer::start(ApiServerOptions::own_etcd()).await;
    let http = s.http();
    let base = s.url();
    let post = |path: &str, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 201);
            resp.json::<Value>().await.unwrap()
        }
    };
    let cm = create_cm(&http, &base, "cm1", json!({})).await;
    let svc = post("/api/v1/namespaces/default/services", json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc1"}, "spec": {"ports": [{"port": 80}]}})).await;
    let node = post("/api/v1/nodes", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})).await;
    let deploy = post("/apis/apps/v1/namespaces/default/deployments", json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})).await;

    let mut etcd = etcd_client::Client::connect([s.etcd().unwrap().endpoint()], None).await.unwrap();
    let all = etcd.get("/", Some(etcd_client::GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
    let keys: Vec<String> = all.kvs().iter().map(|kv| kv.key_str().unwrap().to_string()).collect();
    let cm_key = keys.iter().find(|k| k.ends_with("/configmaps/default/cm1")).expect("configmap key");
    let prefix = cm_key.trim_end_matches("/configmaps/default/cm1").to_string();
    assert!(prefix.starts_with("/registry"), "{prefix}");
    assert!(keys.iter().all(|k| k.starts_with(&format!("{prefix}/"))), "keys outside the prefix: {keys:?}");
    for (suffix, obj) in [
        ("/configmaps/default/cm1", &cm),
        ("/services/specs/default/svc1", &svc),
        ("/minions/n1", &node),
        ("/deployments/default/web", &deploy),
    ] {
        let key = format!("{prefix}{suffix}");
        let key = key.as_str();
        let r = etcd.get(key, None).await.unwrap();
        let kv = r.kvs().first().unwrap_or_else(|| panic!("no key {key}"));
        assert_eq!(kv.mod_revision(), rv_of(obj), "{key}");
        // Stored without the resourceVersion, as upstream stores objects.
        let stored: Value = serde_json::from_slice(kv.value()).unwrap();
        assert_eq!(stored["metadata"]["name"], obj["metadata"]["name"]);
        assert!(stored["metadata"].get("resourceVersion").is_none(), "{stored}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_client_watches_share_one_storage_watch() {
    if matches!(ApiServerOptions::from_env().storage, integration_tests::Storage::Embedded) {
        return; // counts etcd's own watchers
    }
    let s = ApiServer::start(ApiServerOptions::own_etcd()).await;
    let http = s.http();
    let etcd_metrics = format!("{}/metrics", s.etcd().unwrap().endpoint());
    let watchers = || async {
        let text = reqwest::get(&etcd_metrics).await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("etcd_debugging_mvcc_watcher_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .expect("etcd_debugging_mvcc_watcher_total")
    };
    // Let the server's own watch caches start, then open 200 client watches.
    let cms = format!("{}/api/v1/namespaces/default/configmaps", s.url());
    http.get(format!("{cms}?resourceVersion=0")).send().await.unwrap();
    let before = watchers().await;
    let mut streams = Vec::new();
    for _ in 0..200 {
        let resp = http.get(format!("{cms}?watch=true&resourceVersion=0")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        streams.push(resp.bytes_stream());
    }
    create_cm(&http, &s.url(), "seen", json!({})).await;
    for stream in &mut streams {
        let mut buf = Vec::new();
        let event = next_events(stream, &mut buf, 1).await;
        assert_eq!(event[0]["object"]["metadata"]["name"], "seen");
    }
    let after = watchers().await;
    assert!(after - before <= 2.0, "etcd watchers went from {before} to {after} for 200 client watches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_lists_groups_resources_and_verbs() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    for (path, group) in [("/api", ""), ("/apis", "apps")] {
        let resp = http.get(format!("{}{path}", s.url())).header("Accept", accept).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], accept);
        let doc: Value = resp.json().await.unwrap();
        assert_eq!((doc["kind"].as_str(), doc["apiVersion"].as_str()), (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io/v2")));
        let g = doc["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"].as_str().unwrap_or("") == group).expect("group");
        let v1 = &g["versions"][0];
        assert_eq!(v1["version"], "v1");
        let resources = v1["resources"].as_array().unwrap();
        let (plural, kind) = if group.is_empty() { ("pods", "Pod") } else { ("deployments", "Deployment") };
        let r = resources.iter().find(|r| r["resource"] == plural).expect("resource");
        assert_eq!(r["responseKind"]["kind"], kind);
        assert_eq!(r["scope"], "Namespaced");
        let verbs: Vec<&str> = r["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for verb in ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"] {
            assert!(verbs.contains(&verb), "{plural}: {verbs:?}");
        }
        let subs: Vec<&str> = r["subresources"].as_array().unwrap().iter().map(|x| x["subresource"].as_str().unwrap()).collect();
        assert!(subs.contains(&"status"), "{subs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_with_bookmarks_get_periodic_bookmarks() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let created = create_cm(&http, &s.url(), "a", json!({})).await;
    let rv = rv_of(&created);
    let resp = http
        .get(format!("{}/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion={rv}", s.url()))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    // The server sends a bookmark about every 30 s (hang guard 75 s; no timing is asserted).
    let event = events_within(75, &mut stream, &mut buf, 1).await;
    assert_eq!(event[0]["type"], "BOOKMARK", "{event:?}");
    assert_eq!(event[0]["object"]["kind"], "ConfigMap");
    assert!(event[0]["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse::<i64>().unwrap() >= rv);
}
