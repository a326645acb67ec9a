//! kube-rs against the real kube-apiserver: paginated lists, watchers (list+watch and
//! streaming lists) and a reflector store converging on the server's state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use integration_tests::{ApiServer, within};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};

fn cm(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), value.to_string())])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_continue() {
    let s = ApiServer::start_default().await;
    let client = s.client().await;
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("paging".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "paging");
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let name = format!("page-{i}");
        api.create(&PostParams::default(), &cm(&name, "x")).await.unwrap();
        want.insert(name);
    }

    let mut seen = Vec::new();
    let mut page_sizes = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = api.list(&lp).await.unwrap();
        page_sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|o| o.name_any()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
        assert!(page_sizes.len() <= 7, "more pages than objects: {page_sizes:?}");
    }
    assert_eq!(page_sizes, vec![2, 2, 2, 1]);
    assert_eq!(seen.len(), 7, "duplicates across pages: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), want);
}

/// What a watcher reported about one object, without the object itself.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String, Option<String>),
    Delete(String),
}

fn summarize(e: watcher::Event<ConfigMap>) -> Seen {
    let value = |o: &ConfigMap| o.data.as_ref().and_then(|d| d.get("v").cloned());
    match e {
        watcher::Event::Init => Seen::Init,
        watcher::Event::InitApply(o) => Seen::InitApply(o.name_any()),
        watcher::Event::InitDone => Seen::InitDone,
        watcher::Event::Apply(o) => Seen::Apply(o.name_any(), value(&o)),
        watcher::Event::Delete(o) => Seen::Delete(o.name_any()),
    }
}

async fn watcher_sees_initial_and_live_changes(config: watcher::Config) {
    let s = ApiServer::start_default().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client().await, "default");
    for name in ["initial-a", "initial-b"] {
        api.create(&PostParams::default(), &cm(name, "0")).await.unwrap();
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(api.clone(), config);
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if tx.send(ev.map(summarize).map_err(|e| e.to_string())).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        within(60, "next watcher event", rx.recv())
            .await
            .expect("watcher stream ended")
            .unwrap_or_else(|e| panic!("watcher error: {e}"))
    };

    // Initial state.
    assert_eq!(next().await, Seen::Init);
    let mut initial = BTreeSet::new();
    loop {
        match next().await {
            Seen::InitApply(n) => assert!(initial.insert(n.clone()), "{n} listed twice"),
            Seen::InitDone => break,
            other => panic!("unexpected event during init: {other:?}"),
        }
    }
    assert_eq!(
        initial,
        BTreeSet::from(["initial-a".to_string(), "initial-b".to_string()])
    );

    // Live changes, in order.
    api.create(&PostParams::default(), &cm("live", "1")).await.unwrap();
    assert_eq!(next().await, Seen::Apply("live".into(), Some("1".into())));
    let patch = serde_json::json!({"data": {"v": "2"}});
    api.patch("live", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(next().await, Seen::Apply("live".into(), Some("2".into())));
    api.delete("live", &DeleteParams::default()).await.unwrap();
    assert_eq!(next().await, Seen::Delete("live".into()));
    // Changes to the initial objects are seen too.
    api.delete("initial-a", &DeleteParams::default()).await.unwrap();
    assert_eq!(next().await, Seen::Delete("initial-a".into()));

    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_list_then_watch() {
    watcher_sees_initial_and_live_changes(watcher::Config::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_streaming_lists() {
    watcher_sees_initial_and_live_changes(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_store_matches_list_after_burst() {
    let s = ApiServer::start_default().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client().await, "default");
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("pre-{i}"), "0"))
            .await
            .unwrap();
    }

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .map_err(|e| e.to_string());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                eprintln!("reflector watch error: {e}");
            }
        }
    });
    within(60, "reflector initial sync", reader.wait_until_ready())
        .await
        .unwrap();

    // A burst of concurrent creates, updates and deletes.
    let mut ops = Vec::new();
    for i in 0..30 {
        let api = api.clone();
        ops.push(tokio::spawn(async move {
            api.create(&PostParams::default(), &cm(&format!("burst-{i}"), "1"))
                .await
                .map(|_| ())
        }));
    }
    for i in 0..10 {
        let api = api.clone();
        ops.push(tokio::spawn(async move {
            let patch = serde_json::json!({"data": {"v": format!("updated-{i}")}});
            api.patch(&format!("pre-{i}"), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        }));
    }
    for i in 0..5 {
        let api = api.clone();
        ops.push(tokio::spawn(async move {
            api.delete(&format!("pre-{i}"), &DeleteParams::default())
                .await
                .map(|_| ())
        }));
    }
    for op in ops {
        // An update racing a delete of the same object may legitimately 404.
        if let Err(e) = op.await.unwrap() {
            assert!(
                matches!(&e, kube::Error::Api(s) if s.code == 404),
                "unexpected error in burst: {e}"
            );
        }
    }

    let fresh = || async {
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
            .collect::<BTreeMap<_, _>>()
    };
    let want = fresh().await;
    assert_eq!(want.len(), 10 + 30 - 5);
    let mut got = BTreeMap::new();
    for _ in 0..600 {
        got = reader
            .state()
            .iter()
            .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
            .collect::<BTreeMap<_, _>>();
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, want, "reflector store never converged on the listed state");
    task.abort();
}
