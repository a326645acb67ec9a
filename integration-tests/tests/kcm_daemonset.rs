//! kube-controller-manager: a DaemonSet runs one pod per node, follows new nodes and taints,
//! and rolls out a new template (`kubectl rollout status daemonset`).

mod kcm_support;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::core::v1::{Node, Pod};
use kcm_support::*;
use kube::api::{Api, Patch, PatchParams};

const DS: &str = "
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: agent:1}]}
";

fn node_of(p: &Pod) -> String {
    let t = &p.spec.as_ref().unwrap().affinity.as_ref().unwrap().node_affinity.as_ref().unwrap().required_during_scheduling_ignored_during_execution.as_ref().unwrap().node_selector_terms[0];
    t.match_fields.as_ref().unwrap()[0].values.as_ref().unwrap()[0].clone()
}

async fn live(client: &kube::Client, ns: &str) -> Vec<Pod> {
    pods(client, ns, "app=agent").await.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
}

#[tokio::test]
async fn daemonset_on_every_node() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=daemonset"]);
    let ns = "ds";
    create_namespace(&client, ns).await;
    create_node(&client, "n1").await;
    create_node(&client, "n2").await;
    let _kubelet = FakeKubelet::start(&client, ns);
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], DS).await;
    let ps = wait_for(30, "a pod per node", || async {
        let ps = live(&client, ns).await;
        (ps.len() == 2).then_some(ps)
    })
    .await;
    let mut nodes: Vec<String> = ps.iter().map(node_of).collect();
    nodes.sort();
    assert_eq!(nodes, vec!["n1", "n2"]);
    let tol = ps[0].spec.as_ref().unwrap().tolerations.clone().unwrap();
    assert!(tol.iter().any(|t| t.key.as_deref() == Some("node.kubernetes.io/unreachable")));
    server.kubectl_ok(&["-n", ns, "rollout", "status", "daemonset/agent", "--timeout=60s"]).await;

    // A new node gets a pod.
    create_node(&client, "n3").await;
    wait_for(30, "pod on n3", || async { live(&client, ns).await.iter().any(|p| node_of(p) == "n3").then_some(()) }).await;

    // A taint the pod does not tolerate removes it from that node.
    let nodes_api: Api<Node> = Api::all(client.clone());
    nodes_api
        .patch("n2", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})))
        .await
        .unwrap();
    wait_for(30, "no pod on n2", || async {
        let ps = live(&client, ns).await;
        (ps.len() == 2 && !ps.iter().any(|p| node_of(p) == "n2")).then_some(())
    })
    .await;

    // Rolling update to a new image.
    server.kubectl_ok(&["-n", ns, "set", "image", "daemonset/agent", "c=agent:2"]).await;
    server.kubectl_ok(&["-n", ns, "rollout", "status", "daemonset/agent", "--timeout=90s"]).await;
    wait_for(30, "all on agent:2", || async {
        let ps = live(&client, ns).await;
        (ps.len() == 2 && ps.iter().all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("agent:2"))).then_some(())
    })
    .await;
}
