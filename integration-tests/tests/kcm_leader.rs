//! kube-controller-manager: two instances with leader election; only the holder of the Lease
//! `kube-system/kube-controller-manager` works, and the other takes over when it dies.

mod kcm_support;

use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use kcm_support::*;
use kube::api::{Api, PostParams};
use serde_json::json;

fn rs(name: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn leader_election_handover() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let args = [
        "--controllers=replicaset",
        "--leader-elect=true",
        "--leader-elect-lease-duration=3s",
        "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=500ms",
    ];
    let mut a = ControllerManager::start(&server, &args);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let first = wait_for(30, "a leader", || async {
        leases.get_opt("kube-controller-manager").await.unwrap()?.spec?.holder_identity
    })
    .await;
    let mut b = ControllerManager::start(&server, &args);
    let ns = "le";
    create_namespace(&client, ns).await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    rss.create(&PostParams::default(), &rs("one")).await.unwrap();
    wait_for(30, "pods by the leader", || async { (pods(&client, ns, "app=one").await.len() == 2).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pods(&client, ns, "app=one").await.len(), 2, "two managers never both create");
    let holder = leases.get("kube-controller-manager").await.unwrap().spec.unwrap().holder_identity;
    assert_eq!(holder.as_deref(), Some(first.as_str()), "leadership is stable while the leader renews");

    // Crash the leader (whichever it is): the other takes over and keeps working.
    let (leader, standby) = if a.pid().is_some() && std::fs::read_to_string(a.log_path()).unwrap_or_default().contains("successfully acquired lease") {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    leader.kill();
    let second = wait_for(30, "a new leader", || async {
        let h = leases.get("kube-controller-manager").await.unwrap().spec?.holder_identity?;
        (h != first).then_some(h)
    })
    .await;
    assert!(standby.running());
    assert_ne!(second, first);
    rss.create(&PostParams::default(), &rs("two")).await.unwrap();
    wait_for(30, "pods by the new leader", || async { (pods(&client, ns, "app=two").await.len() == 2).then_some(()) }).await;
}
