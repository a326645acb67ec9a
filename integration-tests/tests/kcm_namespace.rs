//! kube-controller-manager: namespace deletion empties a namespace holding many kinds, then
//! finalizes it; every namespace gets the `default` ServiceAccount and `kube-root-ca.crt`.

mod kcm_support;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kcm_support::*;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const CONTENT: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {a: b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lock}
spec: {holderIdentity: me}
---
apiVersion: v1
kind: Pod
metadata: {name: lonely}
spec: {containers: [{name: c, image: busybox}]}
";

#[tokio::test]
async fn namespace_deletion_removes_all_content_then_the_namespace() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(
        &server,
        &["--controllers=replicaset,deployment,garbagecollector,namespace,serviceaccount,root-ca-cert-publisher"],
    );
    let ns = "doomed";
    create_namespace(&client, ns).await;

    // Every namespace gets the default ServiceAccount and the root CA ConfigMap.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    wait_for(30, "default service account", || async { sas.get_opt("default").await.unwrap() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let ca = wait_for(30, "kube-root-ca.crt", || async { cms.get_opt("kube-root-ca.crt").await.unwrap() }).await;
    assert!(ca.data.as_ref().unwrap()["ca.crt"].contains("BEGIN CERTIFICATE"));
    // Tampering is undone.
    cms.patch("kube-root-ca.crt", &PatchParams::default(), &Patch::Merge(&json!({"data": {"ca.crt": "bogus"}}))).await.unwrap();
    wait_for(30, "kube-root-ca.crt restored", || async {
        let cm = cms.get("kube-root-ca.crt").await.unwrap();
        cm.data.as_ref().unwrap()["ca.crt"].contains("BEGIN CERTIFICATE").then_some(())
    })
    .await;
    // A deleted default ServiceAccount comes back.
    sas.delete("default", &Default::default()).await.unwrap();
    wait_for(30, "default service account recreated", || async { sas.get_opt("default").await.unwrap() }).await;

    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], CONTENT).await;
    wait_for(60, "deployment pods", || async { (pods(&client, ns, "app=web").await.len() == 2).then_some(()) }).await;

    server.kubectl_ok(&["delete", "namespace", ns, "--wait=false"]).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    // Gone entirely once the controller emptied and finalized it.
    wait_for(90, "namespace gone", || async { nss.get_opt(ns).await.unwrap().is_none().then_some(()) }).await;
    let all = server.kubectl_ok(&["get", "all,cm,secrets,sa,leases,jobs", "-n", ns, "-o", "name"]).await;
    assert!(all.trim().is_empty(), "content left behind: {all}");

    // A namespace whose content has a finalizer stays Terminating and says why.
    create_namespace(&client, "stuck").await;
    let stuck: Api<ConfigMap> = Api::namespaced(client.clone(), "stuck");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).unwrap();
    stuck.create(&Default::default(), &cm).await.unwrap();
    server.kubectl_ok(&["delete", "namespace", "stuck", "--wait=false"]).await;
    let n = wait_for(60, "finalizers-remaining condition", || async {
        let n = nss.get("stuck").await.unwrap();
        let conds = n.status.as_ref()?.conditions.clone()?;
        conds.iter().any(|c| c.type_ == "NamespaceFinalizersRemaining" && c.status == "True").then_some(n)
    })
    .await;
    assert_eq!(n.status.as_ref().unwrap().phase.as_deref(), Some("Terminating"));
    let msg = n.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "NamespaceContentRemaining").unwrap().message.unwrap();
    assert!(msg.contains("configmaps has 1 resource instances"), "{msg}");
    // Releasing the finalizer lets the namespace go.
    stuck.patch("held", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"finalizers": null}}))).await.unwrap();
    wait_for(60, "stuck namespace gone", || async { nss.get_opt("stuck").await.unwrap().is_none().then_some(()) }).await;
}
