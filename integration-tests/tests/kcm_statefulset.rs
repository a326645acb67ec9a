//! kube-controller-manager: StatefulSet ordered start, claims from volumeClaimTemplates,
//! ordered scale-down, a rolling update with ControllerRevisions, and Parallel management.

mod kcm_support;

use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kcm_support::*;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

fn sts_yaml(name: &str, policy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  serviceName: {name}
  replicas: 3
  podManagementPolicy: {policy}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: db:1}}]}}
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"
    )
}

async fn names(client: &kube::Client, ns: &str, app: &str) -> Vec<String> {
    let mut v: Vec<String> = pods(client, ns, &format!("app={app}")).await.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).map(|p| p.name_any()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn statefulset_ordered_start_update_and_parallel() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=statefulset"]);
    let ns = "sts";
    create_namespace(&client, ns).await;
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &sts_yaml("db", "OrderedReady")).await;

    // One at a time: web-N only after web-(N-1) is Running and Ready.
    for i in 0..3 {
        let want: Vec<String> = (0..=i).map(|o| format!("db-{o}")).collect();
        wait_for(30, &format!("db-{i}"), || async { (names(&client, ns, "db").await == want).then_some(()) }).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(names(&client, ns, "db").await, want, "no pod before its predecessor is ready");
        set_pod_ready(&client, ns, &format!("db-{i}"), true, &format!("10.3.0.{i}")).await.unwrap();
    }
    let p0 = pods(&client, ns, "app=db").await.into_iter().find(|p| p.name_any() == "db-0").unwrap();
    let spec = p0.spec.unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("db-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("db"));
    assert_eq!(spec.volumes.unwrap()[0].persistent_volume_claim.as_ref().unwrap().claim_name, "data-db-0");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut claims: Vec<String> = pvcs.list(&ListParams::default()).await.unwrap().items.iter().map(|c| c.name_any()).collect();
    claims.sort();
    assert_eq!(claims, vec!["data-db-0", "data-db-1", "data-db-2"]);
    server.kubectl_ok(&["-n", ns, "rollout", "status", "statefulset/db", "--timeout=60s"]).await;

    // Rolling update: highest ordinal first, each replaced pod must become ready.
    let kubelet = FakeKubelet::start(&client, ns);
    server.kubectl_ok(&["-n", ns, "set", "image", "statefulset/db", "c=db:2"]).await;
    server.kubectl_ok(&["-n", ns, "rollout", "status", "statefulset/db", "--timeout=90s"]).await;
    let ps = pods(&client, ns, "app=db").await;
    assert!(ps.iter().all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("db:2")));
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    assert_eq!(revs.list(&ListParams::default()).await.unwrap().items.len(), 2);
    let st = Api::<StatefulSet>::namespaced(client.clone(), ns).get("db").await.unwrap().status.unwrap();
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(st.updated_replicas, Some(3));

    // Scale down removes the highest ordinals; claims stay.
    server.kubectl_ok(&["-n", ns, "scale", "statefulset/db", "--replicas=1"]).await;
    wait_for(30, "db-0 only", || async { (names(&client, ns, "db").await == vec!["db-0".to_string()]).then_some(()) }).await;
    assert_eq!(pvcs.list(&ListParams::default()).await.unwrap().items.len(), 3);

    // Parallel: all at once.
    kubelet.set_enabled(false);
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &sts_yaml("cache", "Parallel")).await;
    wait_for(30, "3 parallel pods", || async { (names(&client, ns, "cache").await.len() == 3).then_some(()) }).await;
}
