//! End-to-end: the real kube-scheduler binary against a real kube-apiserver (embedded store),
//! with Node objects created by the test (no kubelet).

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;

#[tokio::test]
async fn fit_misfit_and_scheduling_when_a_node_appears() {
    let server = apiserver().await;
    let client = server.client().await;
    create_node(&client, node_json("small", "1", "4Gi", &[], json!([]))).await;
    create_node(&client, node_json("medium", "2", "4Gi", &[], json!([]))).await;
    let sched = SchedulerProc::start(&server, "sched", &[]);

    create_pod(&client, pod_json("fits", "1500m")).await;
    assert_eq!(
        wait_bound(&client, "fits", 60).await,
        "medium",
        "only medium has 1.5 cpu free"
    );
    let notes = wait_event(&client, "fits", "Scheduled", 30).await;
    assert_eq!(notes, ["Successfully assigned default/fits to medium"]);

    create_pod(&client, pod_json("big", "3")).await;
    let (reason, msg) = wait_unschedulable(&client, "big", 30).await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        msg,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.."
    );
    assert!(
        msg.starts_with(
            "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available:"
        ),
        "{msg}"
    );
    let failed = wait_event(&client, "big", "FailedScheduling", 30).await;
    assert!(
        failed.iter().any(|n| n == &msg),
        "FailedScheduling {failed:?} vs condition {msg}"
    );

    // A node that fits appears: the parked pod is retried at once (not after the 5 minute flush).
    create_node(&client, node_json("large", "8", "16Gi", &[], json!([]))).await;
    assert_eq!(wait_bound(&client, "big", 30).await, "large");

    let m = sched.metrics().await;
    assert!(m.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 2"), "{m}");
    assert!(m.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"}"), "{m}");
    assert!(
        m.contains("scheduler_pod_scheduling_sli_duration_seconds_count"),
        "{m}"
    );
    assert!(
        m.contains("scheduler_pending_pods{queue=\"active\"} 0"),
        "{m}"
    );
    assert_eq!(
        reqwest_get(&format!("https://127.0.0.1:{}/healthz", sched.port))
            .await
            .unwrap(),
        "ok"
    );
}

#[tokio::test]
async fn no_overcommit_when_many_pods_arrive_at_once() {
    let server = apiserver().await;
    let client = server.client().await;
    for i in 0..3 {
        create_node(
            &client,
            node_json(&format!("n{i}"), "1", "4Gi", &[], json!([])),
        )
        .await;
    }
    let _sched = SchedulerProc::start(&server, "sched", &[]);
    for i in 0..8 {
        create_pod(&client, pod_json(&format!("p{i}"), "500m")).await;
    }
    // Exactly six fit (two per node); which six is up to the queue order.
    let mut per_node = std::collections::HashMap::<String, usize>::new();
    integration_tests::within(60, "six pods bound", async {
        loop {
            let api: Api<Pod> = Api::namespaced(client.clone(), "default");
            let bound = api
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                .count();
            if bound >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for p in api.list(&Default::default()).await.unwrap().items {
        if let Some(n) = p.spec.and_then(|s| s.node_name) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    assert_eq!(per_node.values().sum::<usize>(), 6, "{per_node:?}");
    assert!(
        per_node.values().all(|c| *c == 2),
        "each 1-cpu node holds exactly two 500m pods: {per_node:?}"
    );
}

#[tokio::test]
async fn node_selector_affinity_and_taints() {
    let server = apiserver().await;
    let client = server.client().await;
    create_node(
        &client,
        node_json(
            "ssd",
            "4",
            "8Gi",
            &[("disk", "ssd"), ("topology.kubernetes.io/zone", "a")],
            json!([]),
        ),
    )
    .await;
    create_node(
        &client,
        node_json(
            "hdd",
            "4",
            "8Gi",
            &[("disk", "hdd"), ("topology.kubernetes.io/zone", "b")],
            json!([]),
        ),
    )
    .await;
    create_node(
        &client,
        node_json(
            "gpu",
            "4",
            "8Gi",
            &[("disk", "ssd")],
            json!([{"key": "gpu", "value": "true", "effect": "NoSchedule"}]),
        ),
    )
    .await;
    let _sched = SchedulerProc::start(&server, "sched", &[]);

    let mut p = pod_json("selector", "100m");
    p["spec"]["nodeSelector"] = json!({"disk": "hdd"});
    create_pod(&client, p).await;
    assert_eq!(wait_bound(&client, "selector", 60).await, "hdd");

    let mut p = pod_json("affinity", "100m");
    p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}]}}});
    create_pod(&client, p).await;
    assert_eq!(wait_bound(&client, "affinity", 30).await, "ssd");

    // Only the tainted node matches; without a toleration the pod stays pending.
    let mut p = pod_json("needs-gpu", "100m");
    p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu"]}]}]}}});
    create_pod(&client, p.clone()).await;
    let (_, msg) = wait_unschedulable(&client, "needs-gpu", 30).await;
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    );
    p["metadata"]["name"] = json!("tolerates-gpu");
    p["spec"]["tolerations"] =
        json!([{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
    create_pod(&client, p).await;
    assert_eq!(wait_bound(&client, "tolerates-gpu", 30).await, "gpu");

    // Preferred affinity steers among fitting nodes.
    let mut p = pod_json("prefers-a", "100m");
    p["spec"]["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}}]}});
    create_pod(&client, p).await;
    assert_eq!(wait_bound(&client, "prefers-a", 30).await, "ssd");
}

#[tokio::test]
async fn anti_affinity_spreads_replicas_and_topology_spread_balances_zones() {
    let server = apiserver().await;
    let client = server.client().await;
    for (n, z) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
        create_node(
            &client,
            node_json(
                n,
                "8",
                "16Gi",
                &[("topology.kubernetes.io/zone", z)],
                json!([]),
            ),
        )
        .await;
    }
    let _sched = SchedulerProc::start(&server, "sched", &[]);

    // Anti-affinity on hostname: one replica per node, the fifth cannot go anywhere.
    for i in 0..5 {
        let mut p = pod_json(&format!("web-{i}"), "100m");
        p["metadata"]["labels"] = json!({"app": "web"});
        p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        create_pod(&client, p).await;
    }
    let mut nodes = std::collections::BTreeSet::new();
    let mut pending = Vec::new();
    integration_tests::within(60, "four replicas bound", async {
        loop {
            nodes.clear();
            pending.clear();
            for i in 0..5 {
                match node_of(&client, &format!("web-{i}")).await {
                    Some(n) => {
                        nodes.insert(n);
                    }
                    None => pending.push(i),
                }
            }
            if nodes.len() == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(pending.len(), 1);
    let (_, msg) = wait_unschedulable(&client, &format!("web-{}", pending[0]), 30).await;
    assert!(
        msg.starts_with("0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."),
        "{msg}"
    );

    // Topology spread across zones with maxSkew 1: 3 + 3 out of 6.
    for i in 0..6 {
        let mut p = pod_json(&format!("spread-{i}"), "100m");
        p["metadata"]["labels"] = json!({"app": "spread"});
        p["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]);
        create_pod(&client, p).await;
    }
    let mut zones = std::collections::HashMap::<char, usize>::new();
    for i in 0..6 {
        let n = wait_bound(&client, &format!("spread-{i}"), 60).await;
        *zones.entry(n.chars().next().unwrap()).or_default() += 1;
    }
    assert_eq!(zones.get(&'a'), Some(&3), "{zones:?}");
    assert_eq!(zones.get(&'b'), Some(&3), "{zones:?}");
}

#[tokio::test]
async fn preemption_of_a_lower_priority_pod() {
    let server = apiserver().await;
    let client = server.client().await;
    let pcs: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(client.clone());
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc = serde_json::from_value(json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value})).unwrap();
        pcs.create(&Default::default(), &pc).await.unwrap();
    }
    create_node(&client, node_json("only", "1", "4Gi", &[], json!([]))).await;
    let sched = SchedulerProc::start(&server, "sched", &[]);

    let mut low = pod_json("victim", "800m");
    low["spec"]["priorityClassName"] = json!("low");
    create_pod(&client, low).await;
    assert_eq!(wait_bound(&client, "victim", 60).await, "only");

    let mut high = pod_json("preemptor", "800m");
    high["spec"]["priorityClassName"] = json!("high");
    create_pod(&client, high).await;
    // The victim goes away and the preemptor takes its place.
    assert_eq!(wait_bound(&client, "preemptor", 60).await, "only");
    assert!(
        get_pod(&client, "victim").await.is_none(),
        "victim must be deleted"
    );
    let preempted = wait_event(&client, "victim", "Preempted", 30).await;
    assert!(
        preempted[0].starts_with("Preempted by pod "),
        "{preempted:?}"
    );
    assert!(preempted[0].ends_with(" on node only"), "{preempted:?}");
    let p = get_pod(&client, "preemptor").await.unwrap();
    assert_eq!(
        p.status.and_then(|s| s.nominated_node_name).as_deref(),
        Some("only"),
        "nominatedNodeName was set while waiting"
    );
    assert!(
        sched
            .metrics()
            .await
            .contains("scheduler_preemption_attempts_total 1")
    );

    // A lower-priority pod cannot preempt: it stays pending with preemption's reason.
    let mut low2 = pod_json("low2", "800m");
    low2["spec"]["priorityClassName"] = json!("low");
    create_pod(&client, low2).await;
    let (_, msg) = wait_unschedulable(&client, "low2", 30).await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
    );
}

#[tokio::test]
async fn scheduling_gates_hold_pods_until_removed() {
    let server = apiserver().await;
    let client = server.client().await;
    create_node(&client, node_json("n1", "4", "8Gi", &[], json!([]))).await;
    let _sched = SchedulerProc::start(&server, "sched", &[]);
    let mut p = pod_json("gated", "100m");
    p["spec"]["schedulingGates"] = json!([{"name": "example.com/wait"}]);
    create_pod(&client, p).await;
    let (reason, msg) = wait_unschedulable(&client, "gated", 30).await;
    assert_eq!(reason, "SchedulingGated");
    assert_eq!(
        msg,
        "Scheduling is blocked due to non-empty scheduling gates"
    );
    assert!(node_of(&client, "gated").await.is_none());
    // Removing the gate releases the pod.
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.patch(
        "gated",
        &Default::default(),
        &kube::api::Patch::Merge(&json!({"spec": {"schedulingGates": null}})),
    )
    .await
    .expect("remove gates");
    assert_eq!(wait_bound(&client, "gated", 30).await, "n1");
}
