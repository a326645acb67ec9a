//! Two kube-scheduler processes with --leader-elect on one cluster: only the leader binds,
//! killing it hands over within the lease duration, and no pod is bound twice.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

const LE: &[&str] = &[
    "--leader-elect=true",
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
];

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases
        .get_opt("kube-scheduler")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn leader_election_handover_without_double_binding() {
    let server = apiserver().await;
    let client = server.client().await;
    for i in 0..4 {
        create_node(
            &client,
            node_json(&format!("n{i}"), "16", "32Gi", &[], json!([])),
        )
        .await;
    }
    let mut a = SchedulerProc::start(&server, "sched-a", LE);
    let first = integration_tests::within(30, "a leader", async {
        loop {
            if let Some(h) = holder(&client).await {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let b = SchedulerProc::start(&server, "sched-b", LE);

    for i in 0..10 {
        create_pod(&client, pod_json(&format!("before-{i}"), "100m")).await;
    }
    for i in 0..10 {
        wait_bound(&client, &format!("before-{i}"), 60).await;
    }
    assert_eq!(
        holder(&client).await.as_deref(),
        Some(first.as_str()),
        "the first leader keeps the lease"
    );

    // Crash the leader; pods created meanwhile are bound once the other takes over.
    a.kill();
    for i in 0..10 {
        create_pod(&client, pod_json(&format!("after-{i}"), "100m")).await;
    }
    for i in 0..10 {
        wait_bound(&client, &format!("after-{i}"), 60).await;
    }
    let second = holder(&client).await.expect("a holder");
    assert_ne!(second, first, "the standby took over");

    // Every pod got exactly one Scheduled event, and no binding was rejected as a double bind.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for prefix in ["before", "after"] {
        for i in 0..10 {
            let name = format!("{prefix}-{i}");
            let scheduled = events_for(&client, &name, "Scheduled").await;
            assert_eq!(scheduled.len(), 1, "{name}: {scheduled:?}");
            assert_eq!(
                scheduled[0].series.as_ref().map(|s| s.count),
                None,
                "{name} scheduled once"
            );
            let failed = events_for(&client, &name, "FailedScheduling").await;
            assert!(failed.is_empty(), "{name}: {failed:?}");
        }
    }
    let reporters: std::collections::BTreeSet<String> = {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(client.clone(), "default");
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|e| e.reporting_instance)
            .collect()
    };
    assert_eq!(
        reporters.len(),
        2,
        "both schedulers bound pods, one after the other: {reporters:?}"
    );
    drop(b);
}
