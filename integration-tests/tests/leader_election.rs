//! Lease-based leader election (component-base) against the real apiserver.

use std::time::Duration;

use component_base::leader::{LeaderElectionConfig, LeaderElector};
use integration_tests::{ApiServer, within};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

fn cfg(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: "kube-system".into(),
        name: "test-component".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_handover_after_expiry() {
    let server = ApiServer::start_default().await;
    let client = server.client().await;
    let mut a = LeaderElector::new(client.clone(), cfg("a")).unwrap();
    let mut b = LeaderElector::new(client.clone(), cfg("b")).unwrap();
    assert!(a.try_acquire_or_renew().await.unwrap(), "first candidate takes the free lease");
    assert!(!b.try_acquire_or_renew().await.unwrap(), "second candidate must not take a held lease");
    assert!(a.try_acquire_or_renew().await.unwrap(), "the holder renews");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let l = leases.get("test-component").await.unwrap();
    assert_eq!(l.spec.as_ref().unwrap().holder_identity.as_deref(), Some("a"));

    // `a` stops renewing: `b` takes over once the lease has not changed for lease_duration.
    within(20, "handover", async {
        loop {
            if b.try_acquire_or_renew().await.unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    let l = leases.get("test-component").await.unwrap();
    let spec = l.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert!(!a.try_acquire_or_renew().await.unwrap(), "the old leader sees the new holder");
}

#[tokio::test]
async fn run_releases_on_completion_for_immediate_takeover() {
    let server = ApiServer::start_default().await;
    let client = server.client().await;
    let a = LeaderElector::new(client.clone(), cfg("a")).unwrap();
    let out = within(20, "run", a.run(async { 42 })).await.unwrap();
    assert_eq!(out, 42);
    let mut b = LeaderElector::new(client.clone(), cfg("b")).unwrap();
    assert!(b.try_acquire_or_renew().await.unwrap(), "a released lease is free at once");
}

#[tokio::test]
async fn invalid_timings_are_rejected() {
    let server = ApiServer::start_default().await;
    let client = server.client().await;
    let mut c = cfg("x");
    c.renew_deadline = c.lease_duration;
    assert!(LeaderElector::new(client, c).is_err());
}
