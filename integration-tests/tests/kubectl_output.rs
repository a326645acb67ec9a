//! Server-side printing as kubectl 1.33 shows it (`get`, `get -o wide`, `get -w`, `describe`),
//! the Table wire form (`includeObject`, column definitions once per watch), and metadata-only
//! responses (PartialObjectMetadata) as kube-rs reads them.

use std::collections::BTreeMap;
use std::process::Stdio;

use futures::StreamExt;
use integration_tests::{ApiServer, within};
use k8s_openapi::jiff;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// kubectl's table output as rows of cells: columns are separated by at least two spaces, while
/// cells such as `2 (30m ago)` and headers such as `NOMINATED NODE` contain single ones.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}

/// The rows of `out` keyed by header. Cells are cut at the header's column offsets (kubectl
/// aligns them), so empty cells read as "".
fn records(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().expect("a header line");
    let names = rows(header).remove(0);
    let mut starts = Vec::new();
    let mut from = 0;
    for n in &names {
        let at = from + header[from..].find(n.as_str()).unwrap();
        starts.push(at);
        from = at + n.len();
    }
    lines
        .map(|l| {
            let cell = |i: usize| {
                let end = starts.get(i + 1).copied().unwrap_or(l.len()).min(l.len());
                l.get(starts[i].min(end)..end).unwrap_or_default().trim().to_string()
            };
            names.iter().enumerate().map(|(i, n)| (n.clone(), cell(i))).collect()
        })
        .collect()
}

/// An RFC 3339 timestamp `minutes` before now.
fn minutes_ago(minutes: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(minutes * 60);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn pod_json() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "nodeName": "node-a",
            "containers": [
                {"name": "app", "image": "registry.k8s.io/pause:3.10"},
                {"name": "sidecar", "image": "registry.k8s.io/pause:3.10"},
            ],
        },
    })
}

fn running_status() -> Value {
    json!({
        "phase": "Running",
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}],
        "hostIP": "192.0.2.10",
        "startTime": minutes_ago(60),
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {"name": "app", "image": "registry.k8s.io/pause:3.10", "imageID": "", "ready": true, "restartCount": 2,
             "started": true, "state": {"running": {"startedAt": minutes_ago(30)}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": minutes_ago(30)}}},
            {"name": "sidecar", "image": "registry.k8s.io/pause:3.10", "imageID": "", "ready": true, "restartCount": 1,
             "started": true, "state": {"running": {"startedAt": minutes_ago(50)}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": minutes_ago(50)}}},
        ],
    })
}

/// `kubectl create -f -` of each object in turn.
async fn create_all(s: &ApiServer, objects: &Value) {
    for o in objects.as_array().unwrap() {
        s.kubectl_stdin_ok(&["create", "-f", "-"], &o.to_string()).await;
    }
}

async fn create_running_pod(s: &ApiServer) -> Pod {
    s.kubectl_stdin_ok(&["create", "-f", "-"], &pod_json().to_string()).await;
    let pods: Api<Pod> = Api::default_namespaced(s.client().await);
    let patch = json!({"status": running_status()});
    pods.patch_status("web", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("writing pod status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_wide_shows_status_written_through_the_status_subresource() {
    let s = ApiServer::start_default().await;
    create_running_pod(&s).await;

    let plain = s.kubectl_ok(&["get", "pods"]).await;
    assert_eq!(rows(&plain)[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{plain}");

    let wide = s.kubectl_ok(&["get", "pods", "-o", "wide"]).await;
    assert_eq!(
        rows(&wide)[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        "{wide}"
    );
    let r = &records(&wide)[0];
    assert_eq!(r["NAME"], "web");
    assert_eq!(r["READY"], "2/2");
    assert_eq!(r["STATUS"], "Running");
    assert_eq!(r["IP"], "10.244.1.7");
    assert_eq!(r["NODE"], "node-a");
    assert_eq!(r["NOMINATED NODE"], "<none>");
    assert_eq!(r["READINESS GATES"], "<none>");
    // 3 restarts, the latest termination 30 minutes ago (the clock may tick over a minute).
    let restarts = &r["RESTARTS"];
    let ago = restarts.strip_prefix("3 (").and_then(|x| x.strip_suffix("m ago)")).unwrap_or_else(|| panic!("{restarts}"));
    assert!((30..=31).contains(&ago.parse::<u32>().unwrap()), "{restarts}");

    // A container waiting to restart shows its reason; a deleted pod with a finalizer is Terminating.
    let pods: Api<Pod> = Api::default_namespaced(s.client().await);
    let mut status = running_status();
    status["containerStatuses"][1]["ready"] = json!(false);
    status["containerStatuses"][1]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
    pods.patch_status("web", &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await.unwrap();
    let r = &records(&s.kubectl_ok(&["get", "pod", "web"]).await)[0];
    assert_eq!((r["READY"].as_str(), r["STATUS"].as_str()), ("1/2", "CrashLoopBackOff"));

    pods.patch("web", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"finalizers": ["example.com/hold"]}})))
        .await
        .unwrap();
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    let r = &records(&s.kubectl_ok(&["get", "pod", "web"]).await)[0];
    assert_eq!(r["STATUS"], "Terminating");
}

/// Splits `kubectl get a,b,c` output into its per-type tables (blank-line separated).
fn blocks(out: &str) -> Vec<Vec<Vec<String>>> {
    out.split("\n\n").filter(|b| !b.trim().is_empty()).map(rows).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_kinds_prints_upstream_headers() {
    let s = ApiServer::start_default().await;
    let manifests = json!([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-rs"},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "rs"}},
                  "template": {"metadata": {"labels": {"app": "rs"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
         "spec": {"type": "NodePort", "selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443, "nodePort": 30001}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "type": "Opaque", "data": {"k": "dg=="}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a",
            "labels": {"node-role.kubernetes.io/control-plane": ""}}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
         "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default", "apiVersion": "apps/v1"},
         "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-1 to 2", "type": "Normal",
         "source": {"component": "deployment-controller"},
         "firstTimestamp": minutes_ago(3), "lastTimestamp": minutes_ago(2), "count": 1},
    ]);
    create_all(&s, &manifests).await;
    // Node status goes through the status subresource.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(s.client().await);
    let node_status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}],
        "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}, {"type": "Hostname", "address": "node-a"}],
        "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0",
            "containerRuntimeVersion": "containerd://1.7.0", "machineID": "", "systemUUID": "", "bootID": "",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}}});
    nodes.patch_status("node-a", &PatchParams::default(), &Patch::Merge(&node_status)).await.expect("node status");

    let out = s.kubectl_ok(&["get", "deploy,rs,svc,cm,secret,sa,ns,no,ev"]).await;
    let headers: Vec<Vec<String>> = blocks(&out).into_iter().map(|b| b[0].clone()).collect();
    let expected: Vec<Vec<&str>> = vec![
        vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        vec!["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        vec!["NAME", "DATA", "AGE"],
        vec!["NAME", "TYPE", "DATA", "AGE"],
        vec!["NAME", "SECRETS", "AGE"],
        vec!["NAME", "STATUS", "AGE"],
        vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    ];
    assert_eq!(headers, expected, "{out}");

    // Cells of the objects above.
    let svc = &records(&s.kubectl_ok(&["get", "svc", "np"]).await)[0];
    assert_eq!(svc["TYPE"], "NodePort");
    assert_eq!(svc["EXTERNAL-IP"], "<none>");
    assert!(svc["PORT(S)"].starts_with("80:") && svc["PORT(S)"].ends_with("/TCP,443:30001/TCP"), "{svc:?}");
    assert!(svc["CLUSTER-IP"].parse::<std::net::IpAddr>().is_ok(), "{svc:?}");
    let deploy = &records(&s.kubectl_ok(&["get", "deploy", "web", "-o", "wide"]).await)[0];
    assert_eq!(deploy["READY"], "0/2");
    assert_eq!(deploy["CONTAINERS"], "web");
    assert_eq!(deploy["IMAGES"], "nginx:1.27");
    assert_eq!(deploy["SELECTOR"], "app=web");
    let scale = records(&s.kubectl_ok(&["get", "deploy", "web", "--subresource=scale"]).await);
    assert_eq!((scale[0]["NAME"].as_str(), scale[0]["DESIRED"].as_str(), scale[0]["AVAILABLE"].as_str()), ("web", "2", "0"));
    let rs = &records(&s.kubectl_ok(&["get", "rs", "web-rs"]).await)[0];
    assert_eq!((rs["DESIRED"].as_str(), rs["CURRENT"].as_str()), ("3", "0"));
    assert_eq!(records(&s.kubectl_ok(&["get", "cm", "cfg"]).await)[0]["DATA"], "2");
    // Client-side extras read the row objects: labels from metadata, sorting from full objects.
    s.kubectl_ok(&["label", "cm", "cfg", "tier=backend"]).await;
    let labelled = records(&s.kubectl_ok(&["get", "cm", "cfg", "--show-labels"]).await);
    assert_eq!(labelled[0]["LABELS"], "tier=backend");
    for n in ["zz", "aa"] {
        s.kubectl_ok(&["create", "cm", n]).await;
    }
    let sorted = records(&s.kubectl_ok(&["get", "cm", "-L", "tier", "--sort-by=.metadata.name"]).await);
    let names: Vec<&str> = sorted.iter().map(|r| r["NAME"].as_str()).collect();
    assert_eq!(names, ["aa", "cfg", "zz"]);
    assert_eq!(sorted[1]["TIER"], "backend");
    assert_eq!(sorted[1]["DATA"], "2");
    let sec = &records(&s.kubectl_ok(&["get", "secret", "sec"]).await)[0];
    assert_eq!((sec["TYPE"].as_str(), sec["DATA"].as_str()), ("Opaque", "1"));
    assert_eq!(records(&s.kubectl_ok(&["get", "ns", "default"]).await)[0]["STATUS"], "Active");
    let node = &records(&s.kubectl_ok(&["get", "node", "node-a", "-o", "wide"]).await)[0];
    assert_eq!(node["STATUS"], "Ready");
    assert_eq!(node["ROLES"], "control-plane");
    assert_eq!(node["VERSION"], "v1.33.0");
    assert_eq!(node["INTERNAL-IP"], "192.0.2.10");
    assert_eq!(node["EXTERNAL-IP"], "<none>");
    assert_eq!(node["OS-IMAGE"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(node["KERNEL-VERSION"], "6.1.0");
    assert_eq!(node["CONTAINER-RUNTIME"], "containerd://1.7.0");
    s.kubectl_ok(&["cordon", "node-a"]).await;
    assert_eq!(records(&s.kubectl_ok(&["get", "node", "node-a"]).await)[0]["STATUS"], "Ready,SchedulingDisabled");
    let ev = &records(&s.kubectl_ok(&["get", "events"]).await)[0];
    assert_eq!(ev["OBJECT"], "deployment/web");
    assert_eq!(ev["REASON"], "ScalingReplicaSet");
    assert_eq!(ev["MESSAGE"], "Scaled up replica set web-1 to 2");

    // Kinds without an upstream printer use the default convertor.
    s.kubectl_ok(&["create", "role", "reader", "--verb=get", "--resource=pods"]).await;
    assert_eq!(rows(&s.kubectl_ok(&["get", "roles"]).await)[0], ["NAME", "CREATED AT"]);
    s.kubectl_ok(&["create", "rolebinding", "rb", "--role=reader", "--user=alice", "--serviceaccount=default:robot"]).await;
    let rb = &records(&s.kubectl_ok(&["get", "rolebinding", "rb", "-o", "wide"]).await)[0];
    assert_eq!(rb["ROLE"], "Role/reader");
    assert_eq!(rb["USERS"], "alice");
    assert_eq!(rb["GROUPS"], "");
    assert_eq!(rb["SERVICEACCOUNTS"], "default/robot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_table_rows() {
    let s = ApiServer::start_default().await;
    s.kubectl_ok(&["create", "configmap", "before", "--from-literal=a=b"]).await;
    let mut cmd = s.kubectl_command(&["get", "configmaps", "-w"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning kubectl get -w");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = async |needle: &str, seen: &mut Vec<String>| {
        within(60, &format!("kubectl get -w printing {needle}"), async {
            loop {
                match rx.recv().await {
                    Some(line) => {
                        let hit = line.split_whitespace().next() == Some(needle);
                        seen.push(line);
                        if hit {
                            return;
                        }
                    }
                    None => panic!("kubectl get -w exited; output so far: {seen:?}"),
                }
            }
        })
        .await
    };
    wait_for("before", &mut seen).await;
    s.kubectl_ok(&["create", "configmap", "after", "--from-literal=a=b", "--from-literal=c=d"]).await;
    wait_for("after", &mut seen).await;
    let _ = child.kill().await;
    let table: Vec<Vec<String>> = seen.iter().map(|l| rows(l).remove(0)).collect();
    assert_eq!(table[0], ["NAME", "DATA", "AGE"], "{seen:?}");
    assert_eq!(table.iter().filter(|r| r[0] == "NAME").count(), 1, "one header: {seen:?}");
    let after = table.iter().find(|r| r[0] == "after").unwrap();
    assert_eq!(after[1], "2", "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_wire_form() {
    let s = ApiServer::start_default().await;
    for n in ["a", "b"] {
        s.kubectl_ok(&["create", "configmap", n, "--from-literal=k=v"]).await;
    }
    let http = s.http();
    let url = |p: &str| format!("{}/api/v1/namespaces/default/configmaps{p}", s.url());
    let get = async |p: &str, accept: &str| -> (u16, Value) {
        let r = http.get(url(p)).header("Accept", accept).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    };

    // A list: columns with upstream definitions, metadata-only row objects by default.
    let (code, t) = get("", TABLE).await;
    assert_eq!(code, 200);
    assert_eq!((t["kind"].as_str(), t["apiVersion"].as_str()), (Some("Table"), Some("meta.k8s.io/v1")));
    assert!(t["metadata"]["resourceVersion"].as_str().is_some_and(|v| !v.is_empty()), "{t}");
    let names: Vec<&str> = t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Name", "Data", "Age"]);
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(t["columnDefinitions"][1]["type"], "string");
    assert!(t["columnDefinitions"][1]["description"].as_str().unwrap().starts_with("Data contains the configuration data"));
    let row = &t["rows"][0];
    assert_eq!(row["cells"][0], "a");
    assert_eq!(row["cells"][1], 1);
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "a");
    assert!(row["object"]["data"].is_null());

    let (_, t) = get("?includeObject=Object", TABLE).await;
    assert_eq!(t["rows"][1]["object"]["kind"], "ConfigMap");
    assert_eq!(t["rows"][1]["object"]["data"]["k"], "v");
    let (_, t) = get("?includeObject=None", TABLE).await;
    assert!(t["rows"][0]["object"].is_null(), "{t}");
    let (code, st) = get("?includeObject=Bogus", TABLE).await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(st["message"], "unrecognized includeObject value: \"Bogus\"");

    // One object: the table carries its resourceVersion.
    let (_, t) = get("/a", TABLE).await;
    let (_, cm) = get("/a", "application/json").await;
    assert_eq!(t["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"]);
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);

    // A watch: column definitions on the first event only.
    let resp = http.get(url("?watch=1&timeoutSeconds=2")).header("Accept", TABLE).send().await.unwrap();
    let body = within(30, "table watch", resp.text()).await.unwrap();
    let events: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2, "{body}");
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert_eq!(events[0]["object"]["columnDefinitions"].as_array().map(Vec::len), Some(3), "{body}");
    assert!(events[1]["object"]["columnDefinitions"].is_null(), "{body}");
    assert_eq!(events[1]["object"]["rows"][0]["cells"][0], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_related_objects_and_events() {
    let s = ApiServer::start_default().await;
    let pod = create_running_pod(&s).await;
    let uid = pod.metadata.uid.clone().unwrap();
    let manifests = json!([
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.pulled"},
         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": uid, "apiVersion": "v1",
                            "fieldPath": "spec.containers{app}"},
         "reason": "Pulled", "message": "Container image already present on machine", "type": "Normal",
         "source": {"component": "kubelet", "host": "node-a"},
         "firstTimestamp": minutes_ago(4), "lastTimestamp": minutes_ago(4), "count": 1},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"type": "ClusterIP", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}},
    ]);
    create_all(&s, &manifests).await;

    let out = s.kubectl_ok(&["describe", "pod", "web"]).await;
    for want in ["Name:", "web", "Node:", "node-a", "Status:", "Running", "IP:", "10.244.1.7", "Containers:", "sidecar",
        "Restart Count:", "Events:", "Pulled", "Container image already present on machine", "kubelet"]
    {
        assert!(out.contains(want), "describe pod lacks {want:?}:\n{out}");
    }
    let deploy_uid = s.kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"]).await;
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.scaled"},
        "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default", "uid": deploy_uid, "apiVersion": "apps/v1"},
        "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-7d4b9 from 0 to 1", "type": "Normal",
        "source": {"component": "deployment-controller"},
        "firstTimestamp": minutes_ago(2), "lastTimestamp": minutes_ago(2), "count": 1});
    s.kubectl_stdin_ok(&["create", "-f", "-"], &event.to_string()).await;
    let deploy = s.kubectl_ok(&["describe", "deployment", "web"]).await;
    for want in ["Name:", "Selector:", "app=web", "Replicas:", "Pod Template:", "nginx:1.27", "Events:", "ScalingReplicaSet",
        "Scaled up replica set web-7d4b9 from 0 to 1", "deployment-controller"]
    {
        assert!(deploy.contains(want), "describe deployment lacks {want:?}:\n{deploy}");
    }
    let svc_uid = s.kubectl_ok(&["get", "service", "web", "-o", "jsonpath={.metadata.uid}"]).await;
    let node_uid = s.kubectl_ok(&["get", "node", "node-a", "-o", "jsonpath={.metadata.uid}"]).await;
    let events = json!({"items": [
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.lb"},
         "involvedObject": {"kind": "Service", "name": "web", "namespace": "default", "uid": svc_uid, "apiVersion": "v1"},
         "reason": "EnsuringLoadBalancer", "message": "Ensuring load balancer", "type": "Normal",
         "source": {"component": "service-controller"},
         "firstTimestamp": minutes_ago(1), "lastTimestamp": minutes_ago(1), "count": 1},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "node-a.ready"},
         "involvedObject": {"kind": "Node", "name": "node-a", "uid": node_uid, "apiVersion": "v1"},
         "reason": "NodeReady", "message": "Node node-a status is now: NodeReady", "type": "Normal",
         "source": {"component": "kubelet", "host": "node-a"},
         "firstTimestamp": minutes_ago(1), "lastTimestamp": minutes_ago(1), "count": 1}]});
    for event in events["items"].as_array().unwrap() {
        s.kubectl_stdin_ok(&["create", "-f", "-"], &event.to_string()).await;
    }
    let svc = s.kubectl_ok(&["describe", "service", "web"]).await;
    for want in ["Name:", "Selector:", "app=web", "Type:", "ClusterIP", "Port:", "80/TCP", "TargetPort:", "8080/TCP", "Events:",
        "EnsuringLoadBalancer", "Ensuring load balancer"]
    {
        assert!(svc.contains(want), "describe service lacks {want:?}:\n{svc}");
    }
    let node = s.kubectl_ok(&["describe", "node", "node-a"]).await;
    for want in ["Name:", "node-a", "Non-terminated Pods:", "web", "Events:", "NodeReady", "Node node-a status is now: NodeReady"] {
        assert!(node.contains(want), "describe node lacks {want:?}:\n{node}");
    }
    let ns = s.kubectl_ok(&["describe", "namespace", "default"]).await;
    for want in ["Name:", "default", "Status:", "Active"] {
        assert!(ns.contains(want), "describe namespace lacks {want:?}:\n{ns}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_reads_with_kube_rs() {
    let s = ApiServer::start_default().await;
    let client = s.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "m1", "labels": {"x": "1"}},
        "data": {"big": "payload"}}))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let meta = cms.get_metadata("m1").await.unwrap();
    assert_eq!(meta.metadata.name.as_deref(), Some("m1"));
    assert_eq!(meta.metadata.labels.as_ref().and_then(|l| l.get("x")).map(String::as_str), Some("1"));
    assert_eq!(meta.types.as_ref().map(|t| t.kind.as_str()), Some("PartialObjectMetadata"));
    assert_eq!(meta.types.as_ref().map(|t| t.api_version.as_str()), Some("meta.k8s.io/v1"));

    let list = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.iter().filter_map(|m| m.metadata.name.as_deref()).collect::<Vec<_>>(), ["m1"]);
    let empty: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    assert!(empty.list_metadata(&ListParams::default()).await.unwrap().items.is_empty());

    // Raw wire form, including v1beta1 and the list/object mismatches upstream refuses.
    let http = s.http();
    let url = format!("{}/api/v1/namespaces/default/configmaps", s.url());
    let fetch = async |u: String, accept: &str| -> (u16, Value) {
        let r = http.get(u).header("Accept", accept).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    };
    let (code, l) = fetch(url.clone(), "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1").await;
    assert_eq!(code, 200);
    assert_eq!((l["kind"].as_str(), l["apiVersion"].as_str()), (Some("PartialObjectMetadataList"), Some("meta.k8s.io/v1beta1")));
    assert_eq!(l["items"][0]["kind"], "PartialObjectMetadata");
    assert_eq!(l["items"][0]["apiVersion"], "meta.k8s.io/v1beta1");
    assert!(l["items"][0]["data"].is_null());
    let (code, st) = fetch(url.clone(), "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").await;
    assert_eq!(code, 406, "{st}");
    assert_eq!(st["reason"], "NotAcceptable");
    assert_eq!(st["message"], "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)");
    let (code, _) = fetch(format!("{url}/m1"), "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").await;
    assert_eq!(code, 406);

    // A metadata watcher (kube-rs' metadata_watcher: `Api<PartialObjectMeta<K>>` requests
    // metadata only) sees creations and deletions.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let meta_api: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(client.clone());
    let events = watcher(meta_api, watcher::Config::default());
    let watch_task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            let line = match ev {
                Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) => format!("apply {}", m.metadata.name.unwrap_or_default()),
                Ok(watcher::Event::Delete(m)) => format!("delete {}", m.metadata.name.unwrap_or_default()),
                Ok(watcher::Event::InitDone) => "synced".to_string(),
                Ok(watcher::Event::Init) => continue,
                Err(e) => format!("error {e}"),
            };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = async |want: &str, seen: &mut Vec<String>| {
        within(60, &format!("metadata watcher reporting {want}"), async {
            loop {
                let line = rx.recv().await.unwrap_or_else(|| panic!("metadata watcher ended: {seen:?}"));
                assert!(!line.starts_with("error"), "{line}; so far {seen:?}");
                seen.push(line.clone());
                if line == want {
                    return;
                }
            }
        })
        .await
    };
    wait_for("synced", &mut seen).await;
    assert!(seen.contains(&"apply m1".to_string()), "{seen:?}");
    cm.metadata.name = Some("m2".into());
    cms.create(&PostParams::default(), &cm).await.unwrap();
    wait_for("apply m2", &mut seen).await;
    cms.delete("m2", &DeleteParams::default()).await.unwrap();
    wait_for("delete m2", &mut seen).await;
    watch_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_workload_storage_and_rbac_kinds_prints_upstream_headers() {
    let s = ApiServer::start_default().await;
    let template = json!({"metadata": {"labels": {"app": "db"}},
                          "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}});
    let manifests = json!([
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
         "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
         "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": template}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
             "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "busybox:1.36"}]}}}}}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
         "subsets": [{"addresses": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.6"}], "ports": [{"port": 5432}]}]},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "db-abc"},
         "addressType": "IPv4", "ports": [{"port": 5432, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.0.0.5"]}]},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
         "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                  "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp/pv1"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"},
         "spec": {"holderIdentity": "node-a_1234"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "viewer"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "viewers"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "viewer"},
         "subjects": [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}]},
    ]);
    create_all(&s, &manifests).await;

    let mut out = s.kubectl_ok(&["get", "sts,ds,cj,ep,endpointslices,pv,pvc,leases"]).await;
    out.push('\n');
    out.push_str(&s.kubectl_ok(&["get", "clusterrole", "viewer"]).await);
    out.push('\n');
    out.push_str(&s.kubectl_ok(&["get", "clusterrolebinding", "viewers"]).await);
    let headers: Vec<Vec<String>> = blocks(&out).into_iter().map(|b| b[0].clone()).collect();
    let expected: Vec<Vec<&str>> = vec![
        vec!["NAME", "READY", "AGE"],
        vec!["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        vec!["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
        vec!["NAME", "ENDPOINTS", "AGE"],
        vec!["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        vec!["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"],
        vec!["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"],
        vec!["NAME", "HOLDER", "AGE"],
        vec!["NAME", "CREATED AT"],
        vec!["NAME", "ROLE", "AGE"],
    ];
    assert_eq!(headers, expected, "{out}");

    let sts = &records(&s.kubectl_ok(&["get", "sts", "db", "-o", "wide"]).await)[0];
    assert_eq!((sts["READY"].as_str(), sts["CONTAINERS"].as_str(), sts["IMAGES"].as_str()), ("0/2", "db", "postgres:16"));
    let ds = &records(&s.kubectl_ok(&["get", "ds", "agent", "-o", "wide"]).await)[0];
    assert_eq!((ds["DESIRED"].as_str(), ds["NODE SELECTOR"].as_str(), ds["SELECTOR"].as_str()), ("0", "<none>", "app=db"));
    let cj = &records(&s.kubectl_ok(&["get", "cj", "nightly"]).await)[0];
    assert_eq!((cj["SCHEDULE"].as_str(), cj["TIMEZONE"].as_str(), cj["SUSPEND"].as_str()), ("0 3 * * *", "<none>", "False"));
    assert_eq!((cj["ACTIVE"].as_str(), cj["LAST SCHEDULE"].as_str()), ("0", "<none>"));
    let ep = &records(&s.kubectl_ok(&["get", "ep", "db"]).await)[0];
    assert_eq!(ep["ENDPOINTS"], "10.0.0.5:5432,10.0.0.6:5432");
    let slice = &records(&s.kubectl_ok(&["get", "endpointslices", "db-abc"]).await)[0];
    assert_eq!((slice["ADDRESSTYPE"].as_str(), slice["PORTS"].as_str(), slice["ENDPOINTS"].as_str()), ("IPv4", "5432", "10.0.0.5"));
    let pv = &records(&s.kubectl_ok(&["get", "pv", "pv1"]).await)[0];
    assert_eq!((pv["CAPACITY"].as_str(), pv["ACCESS MODES"].as_str(), pv["RECLAIM POLICY"].as_str()), ("5Gi", "RWO", "Retain"));
    assert_eq!((pv["CLAIM"].as_str(), pv["STORAGECLASS"].as_str()), ("", ""));
    let pvc = &records(&s.kubectl_ok(&["get", "pvc", "data"]).await)[0];
    assert_eq!((pvc["VOLUME"].as_str(), pvc["CAPACITY"].as_str()), ("", ""));
    assert_eq!(records(&s.kubectl_ok(&["get", "lease", "lock"]).await)[0]["HOLDER"], "node-a_1234");
    let crb = &records(&s.kubectl_ok(&["get", "clusterrolebinding", "viewers", "-o", "wide"]).await)[0];
    assert_eq!((crb["ROLE"].as_str(), crb["GROUPS"].as_str(), crb["USERS"].as_str()), ("ClusterRole/viewer", "devs", ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_the_served_openapi() {
    let s = ApiServer::start_default().await;
    let out = s.kubectl_ok(&["explain", "pod.spec.containers.resources"]).await;
    assert!(out.contains("KIND:       Pod") && out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("FIELD: resources <ResourceRequirements>"), "{out}");
    assert!(out.contains("limits\t<map[string]Quantity>"), "{out}");
    assert!(out.contains("Limits describes the maximum amount of compute resources allowed."), "{out}");
    let out = s.kubectl_ok(&["explain", "deployment", "--recursive"]).await;
    assert!(out.contains("GROUP:      apps") && out.contains("KIND:       Deployment"), "{out}");
    for field in ["progressDeadlineSeconds\t<integer>", "maxSurge\t<IntOrString>", "containerPort\t<integer> -required-"] {
        assert!(out.contains(field), "{field} missing:\n{out}");
    }
    let err = s.kubectl_err(&["explain", "pod.spec.nosuchfield"]).await;
    assert!(err.contains("field \"nosuchfield\" does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_metadata_responses_carry_their_negotiated_version_and_media_type() {
    let s = ApiServer::start_default().await;
    s.kubectl_ok(&["create", "cm", "cfg", "--from-literal=a=1"]).await;
    let http = s.http();
    let url = format!("{}/api/v1/namespaces/default/configmaps", s.url());
    for (accept, api_version, kind) in [
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "meta.k8s.io/v1beta1", "Table"),
        ("application/json;as=Table;v=v1;g=meta.k8s.io", "meta.k8s.io/v1", "Table"),
        ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "meta.k8s.io/v1", "PartialObjectMetadataList"),
    ] {
        for target in [url.clone(), format!("{url}/cfg")] {
            let resp = http.get(&target).header("Accept", accept).send().await.unwrap();
            if kind == "PartialObjectMetadataList" && target.ends_with("/cfg") {
                // A single object cannot be answered as a list.
                assert_eq!(resp.status(), 406, "{target}");
                continue;
            }
            assert_eq!(resp.status(), 200, "{accept} {target}");
            assert_eq!(resp.headers()["content-type"], accept, "{target}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!((body["apiVersion"].as_str(), body["kind"].as_str()), (Some(api_version), Some(kind)), "{target}");
        }
    }
}
