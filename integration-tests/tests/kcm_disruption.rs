//! kube-controller-manager: the disruption controller keeps PodDisruptionBudget status current
//! and the apiserver's eviction subresource enforces it (the test plays the kubelet).

mod kcm_support;

use integration_tests::{ApiServer, ControllerManager};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use kcm_support::*;
use kube::api::{Api, EvictParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// A client that reports 429 instead of retrying it (kube retries 429 by default).
async fn no_retry_client(server: &ApiServer) -> Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    cfg.default_retry = false;
    Client::try_from(cfg).unwrap()
}

async fn ready_pod(client: &Client, ns: &str, name: &str, ip: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    set_pod_ready(client, ns, name, true, ip).await.unwrap();
}

/// Wait until the budget's status satisfies `f` for its current generation.
async fn pdb_status(
    api: &Api<PodDisruptionBudget>,
    name: &str,
    what: &str,
    f: impl Fn(&PodDisruptionBudgetStatus) -> bool,
) -> PodDisruptionBudgetStatus {
    wait_for(60, what, || async {
        let p = api.get(name).await.unwrap();
        p.status
            .filter(|s| s.observed_generation == p.metadata.generation && f(s))
    })
    .await
}

/// The value after `label` on a `kubectl describe` line (column widths vary).
fn describe_field(out: &str, label: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(|v| v.trim().to_string())
}

fn allowed_condition(s: &PodDisruptionBudgetStatus) -> (String, String) {
    let c = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
        .expect("DisruptionAllowed condition");
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn min_available_budget_limits_evictions() {
    let server = ApiServer::start_default().await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=disruption"]);
    let ns = "pdb-min";
    create_namespace(&client, ns).await;
    for i in 1..=3 {
        ready_pod(&client, ns, &format!("db-{i}"), &format!("10.244.0.{i}")).await;
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let pdb: PodDisruptionBudget =
        serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}})).unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();

    let s = pdb_status(&pdbs, "db", "disruptionsAllowed=1", |s| {
        s.disruptions_allowed == 1
    })
    .await;
    assert_eq!(
        (s.current_healthy, s.desired_healthy, s.expected_pods),
        (3, 2, 3)
    );
    assert_eq!(
        allowed_condition(&s),
        ("True".into(), "SufficientPods".into())
    );

    let out = server.kubectl_ok(&["-n", ns, "get", "pdb"]).await;
    let header = out.lines().next().unwrap();
    assert!(header.contains("ALLOWED DISRUPTIONS"), "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], &["db", "2", "N/A", "1"], "{out}");

    // One eviction fits the budget; the next one right after does not.
    let pods: Api<Pod> = Api::namespaced(no_retry_client(&server).await, ns);
    pods.evict("db-1", &EvictParams::default())
        .await
        .expect("first eviction allowed");
    match pods.evict("db-2", &EvictParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 429, "{s:?}");
            assert!(s.message.contains("disruption budget"), "{s:?}");
        }
        other => panic!("second eviction should be refused with 429, got {other:?}"),
    }
    assert!(
        pods.get_opt("db-2")
            .await
            .unwrap()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    );

    // The controller settles on the remaining pods and drops the evicted pod's entry.
    let s = pdb_status(&pdbs, "db", "2 healthy, none allowed", |s| {
        s.current_healthy == 2
            && s.disruptions_allowed == 0
            && s.disrupted_pods.as_ref().is_none_or(|m| m.is_empty())
    })
    .await;
    assert_eq!(
        allowed_condition(&s),
        ("False".into(), "InsufficientPods".into())
    );

    // A pod that is not ready does not count; once it is ready the budget allows one again.
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let p4: Pod = serde_json::from_value(json!({
        "metadata": {"name": "db-4", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &p4).await.unwrap();
    set_pod_ready(&client, ns, "db-4", false, "10.244.0.4")
        .await
        .unwrap();
    pdb_status(&pdbs, "db", "3 expected, 2 healthy", |s| {
        s.expected_pods == 3 && s.current_healthy == 2 && s.disruptions_allowed == 0
    })
    .await;
    set_pod_ready(&client, ns, "db-4", true, "10.244.0.4")
        .await
        .unwrap();
    let s = pdb_status(&pdbs, "db", "recovered", |s| {
        s.current_healthy == 3 && s.disruptions_allowed == 1
    })
    .await;
    assert_eq!(
        allowed_condition(&s),
        ("True".into(), "SufficientPods".into())
    );
    pods.evict("db-2", &EvictParams::default())
        .await
        .expect("eviction allowed again");

    // Raising minAvailable is a new generation; the status follows it.
    pdbs.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"minAvailable": 3}})),
    )
    .await
    .unwrap();
    let s = pdb_status(&pdbs, "db", "minAvailable 3", |s| s.desired_healthy == 3).await;
    assert_eq!(s.disruptions_allowed, 0);
    let out = server
        .kubectl_ok(&["-n", ns, "describe", "pdb", "db"])
        .await;
    assert_eq!(
        describe_field(&out, "Min available:").as_deref(),
        Some("3"),
        "{out}"
    );
    assert_eq!(
        describe_field(&out, "Allowed disruptions:").as_deref(),
        Some("0"),
        "{out}"
    );
    assert_eq!(
        describe_field(&out, "Desired:").as_deref(),
        Some("3"),
        "{out}"
    );
}

#[tokio::test]
async fn percentage_max_unavailable_follows_the_deployment_scale() {
    let server = ApiServer::start_default().await;
    let client = server.client().await;
    let _kcm =
        ControllerManager::start(&server, &["--controllers=disruption,deployment,replicaset"]);
    let ns = "pdb-pct";
    create_namespace(&client, ns).await;
    let _kubelet = FakeKubelet::start(&client, ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let dep: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .unwrap();
    deps.create(&PostParams::default(), &dep).await.unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let pdb: PodDisruptionBudget = serde_json::from_value(
        json!({"metadata": {"name": "web"}, "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();

    // 25% of 4 is one pod.
    let s = pdb_status(&pdbs, "web", "4 healthy of 4", |s| s.current_healthy == 4).await;
    assert_eq!(
        (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
        (4, 3, 1)
    );

    // 25% of 5 rounds up to two.
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    let s = pdb_status(&pdbs, "web", "5 healthy of 5", |s| {
        s.current_healthy == 5 && s.expected_pods == 5
    })
    .await;
    assert_eq!((s.desired_healthy, s.disruptions_allowed), (3, 2));

    // The expected count is the Deployment's scale, not the pod count: with the kubelet
    // stopped a missing pod lowers currentHealthy only.
    _kubelet.set_enabled(false);
    let victim = pods(&client, ns, "app=web").await.remove(0);
    let podapi: Api<Pod> = Api::namespaced(client.clone(), ns);
    podapi
        .evict(&victim.name_any(), &EvictParams::default())
        .await
        .unwrap();
    let s = pdb_status(&pdbs, "web", "4 healthy, 5 expected", |s| {
        s.current_healthy == 4 && s.expected_pods == 5
    })
    .await;
    assert_eq!((s.desired_healthy, s.disruptions_allowed), (3, 1));
}
