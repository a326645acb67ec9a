//! kube-controller-manager: node lease expiry leads to Ready=Unknown, the unreachable taints
//! and taint-based eviction; recovery removes the taints; pod GC removes orphaned pods.

mod kcm_support;

use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kcm_support::*;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

async fn heartbeat(client: &Client, node: &str) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": node}, "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now}})).unwrap();
    if leases.get_opt(node).await.unwrap().is_none() {
        leases.create(&PostParams::default(), &lease).await.unwrap();
    } else {
        leases.patch(node, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"renewTime": now}}))).await.unwrap();
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let st = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes.patch_status(node, &PatchParams::default(), &Patch::Merge(&st)).await.unwrap();
}

async fn pod_on(client: &Client, ns: &str, name: &str, node: &str, tolerations: serde_json::Value) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "n"}},
        "spec": {"nodeName": node, "tolerations": tolerations, "containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
    set_pod_ready(client, ns, name, true, "10.9.0.1").await.unwrap();
}

fn taint_keys(n: &Node) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default().into_iter().map(|t| (t.key, t.effect)).collect();
    v.sort();
    v
}

/// Gone, or being deleted.
async fn evicted(api: &Api<Pod>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_none_or(|p| p.metadata.deletion_timestamp.is_some())
}

#[tokio::test]
async fn lease_expiry_taints_and_evicts() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let ns = "nodes";
    create_namespace(&client, ns).await;
    create_node(&client, "alive").await;
    create_node(&client, "dying").await;
    heartbeat(&client, "alive").await;
    heartbeat(&client, "dying").await;
    let unreachable = |secs: Option<i64>| {
        let mut t = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"});
        if let Some(s) = secs {
            t["tolerationSeconds"] = json!(s);
        }
        json!([t])
    };
    pod_on(&client, ns, "intolerant", "dying", json!([])).await;
    pod_on(&client, ns, "patient", "dying", unreachable(Some(4))).await;
    pod_on(&client, ns, "forever", "dying", unreachable(None)).await;
    pod_on(&client, ns, "safe", "alive", json!([])).await;
    // A pod bound to a node that does not exist: pod GC removes it.
    pod_on(&client, ns, "orphan", "no-such-node", json!([])).await;

    let _kcm = ControllerManager::start(
        &server,
        &["--controllers=nodelifecycle,podgc", "--node-monitor-grace-period=3s", "--node-monitor-period=500ms"],
    );
    let nodes: Api<Node> = Api::all(client.clone());
    let podapi: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for(30, "orphan pod collected", || async { podapi.get_opt("orphan").await.unwrap().is_none().then_some(()) }).await;

    // Keep `alive` heartbeating; `dying` stops.
    let hb_client = client.clone();
    let hb = tokio::spawn(async move {
        loop {
            heartbeat(&hb_client, "alive").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let n = wait_for(30, "dying node tainted", || async {
        let n = nodes.get("dying").await.unwrap();
        taint_keys(&n).contains(&("node.kubernetes.io/unreachable".to_string(), "NoExecute".to_string())).then_some(n)
    })
    .await;
    let ready = n.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert!(taint_keys(&nodes.get("alive").await.unwrap()).is_empty(), "a heartbeating node stays untainted");

    wait_for(30, "patient pod evicted after its toleration", || async { evicted(&podapi, "patient").await.then_some(()) }).await;
    // The admission defaults gave this pod 300s of toleration: not evicted yet.
    assert!(!evicted(&podapi, "intolerant").await, "default tolerationSeconds (300) not over");
    // A NoExecute taint nothing tolerates evicts at once.
    pod_on(&client, ns, "victim", "alive", json!([])).await;
    nodes
        .patch("alive", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"taints": [{"key": "example.com/drain", "effect": "NoExecute"}]}})))
        .await
        .unwrap();
    wait_for(30, "victim evicted", || async { evicted(&podapi, "victim").await.then_some(()) }).await;
    assert!(evicted(&podapi, "safe").await, "untolerated taint evicts every pod of the node");
    nodes.patch("alive", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"taints": null}}))).await.unwrap();
    let forever = podapi.get("forever").await.unwrap();
    assert!(forever.metadata.deletion_timestamp.is_none(), "tolerated forever");
    assert!(!is_ready(&forever), "pods on an unreachable node are marked not ready");

    // The kubelet comes back: taints go.
    heartbeat(&client, "dying").await;
    wait_for(30, "taints removed", || async { taint_keys(&nodes.get("dying").await.unwrap()).is_empty().then_some(()) }).await;
    hb.abort();
}
