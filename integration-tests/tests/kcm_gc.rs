//! kube-controller-manager: the garbage collector (background, foreground and orphan
//! propagation) against the real apiserver, with kubectl's `--cascade` flags.

mod kcm_support;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kcm_support::*;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn count_rs(client: &Client, ns: &str, app: &str) -> usize {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items.len()
}

fn deploy_yaml(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"
    )
}

#[tokio::test]
async fn cascading_foreground_and_orphan_deletion() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=replicaset,deployment,garbagecollector"]);
    let ns = "gc";
    create_namespace(&client, ns).await;
    let _kubelet = FakeKubelet::start(&client, ns);

    // Background (kubectl's default): the deployment goes at once, then its RS and pods.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &deploy_yaml("bg")).await;
    wait_for(60, "bg pods", || async { (pods(&client, ns, "app=bg").await.len() == 2).then_some(()) }).await;
    server.kubectl_ok(&["-n", ns, "delete", "deployment", "bg"]).await;
    wait_for(60, "bg dependents collected", || async {
        (count_rs(&client, ns, "bg").await == 0 && pods(&client, ns, "app=bg").await.is_empty()).then_some(())
    })
    .await;

    // Foreground: the deployment stays (with the finalizer) until its dependents are gone.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &deploy_yaml("fg")).await;
    wait_for(60, "fg pods", || async { (pods(&client, ns, "app=fg").await.len() == 2).then_some(()) }).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deps.delete("fg", &DeleteParams::foreground()).await.unwrap();
    let d = deps.get_opt("fg").await.unwrap();
    if let Some(d) = d {
        assert!(d.metadata.deletion_timestamp.is_some());
        assert!(d.finalizers().iter().any(|f| f == "foregroundDeletion"));
    }
    wait_for(60, "fg fully deleted", || async {
        (deps.get_opt("fg").await.unwrap().is_none() && count_rs(&client, ns, "fg").await == 0 && pods(&client, ns, "app=fg").await.is_empty())
            .then_some(())
    })
    .await;

    // Orphan: dependents stay, without the owner reference.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &deploy_yaml("or")).await;
    wait_for(60, "or pods", || async { (pods(&client, ns, "app=or").await.len() == 2).then_some(()) }).await;
    server.kubectl_ok(&["-n", ns, "delete", "deployment", "or", "--cascade=orphan"]).await;
    wait_for(60, "deployment gone, RS orphaned", || async {
        let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        let list = rss.list(&ListParams::default().labels("app=or")).await.unwrap().items;
        (deps.get_opt("or").await.unwrap().is_none() && list.len() == 1 && list[0].owner_references().is_empty()).then_some(())
    })
    .await;
    // The RS keeps its pods.
    assert_eq!(pods(&client, ns, "app=or").await.len(), 2);

    // Any kind: a ConfigMap owned by a ConfigMap that is deleted.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let owner = cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap()).await.unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dependent", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().unwrap()}
    ]}}))
    .unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    // A dependent whose owner never existed is collected too.
    let ghost: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "ghost-child", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}
    ]}}))
    .unwrap();
    cms.create(&PostParams::default(), &ghost).await.unwrap();
    wait_for(60, "ghost child collected", || async { cms.get_opt("ghost-child").await.unwrap().is_none().then_some(()) }).await;
    assert!(cms.get_opt("dependent").await.unwrap().is_some(), "an owned object with a live owner stays");
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    wait_for(60, "dependent collected", || async { cms.get_opt("dependent").await.unwrap().is_none().then_some(()) }).await;
}
