//! kube-controller-manager: the resource quota controller keeps ResourceQuota status (hard and
//! used) current as pods, services and config maps come and go.

mod kcm_support;

use std::collections::BTreeMap;

use integration_tests::{ApiServer, ControllerManager};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota, Service};
use kcm_support::*;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Wait until `status.used` holds exactly these values (as strings) for the listed keys.
async fn wait_used(
    api: &Api<ResourceQuota>,
    name: &str,
    want: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let what = format!("{name} used {want:?}");
    wait_for(60, &what, || async {
        let q = api.get(name).await.unwrap();
        let used: BTreeMap<String, String> =
            q.status?.used?.into_iter().map(|(k, v)| (k, v.0)).collect();
        want.iter()
            .all(|(k, v)| used.get(*k).map(String::as_str) == Some(*v))
            .then_some(used)
    })
    .await
}

async fn create<K>(client: &Client, ns: &str, v: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap()
}

fn pod(name: &str, req_cpu: &str, req_mem: &str, lim_cpu: &str, lim_mem: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": "q"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {
            "requests": {"cpu": req_cpu, "memory": req_mem},
            "limits": {"cpu": lim_cpu, "memory": lim_mem}
        }}]}
    })
}

#[tokio::test]
async fn quota_usage_follows_objects() {
    let server = ApiServer::start_default().await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=resourcequota"]);
    let ns = "quota";
    create_namespace(&client, ns).await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    let hard = json!({
        "pods": "10", "count/pods": "10", "cpu": "2", "requests.cpu": "2", "requests.memory": "1Gi",
        "limits.cpu": "4", "limits.memory": "2Gi",
        "configmaps": "5", "count/configmaps": "5", "services": "3", "services.nodeports": "4",
        "count/deployments.apps": "2"
    });
    let _: ResourceQuota = create(
        &client,
        ns,
        json!({"metadata": {"name": "compute"}, "spec": {"hard": hard}}),
    )
    .await;
    let _: ResourceQuota = create(&client, ns, json!({"metadata": {"name": "besteffort"}, "spec": {"hard": {"pods": "5"}, "scopes": ["BestEffort"]}})).await;

    // Everything starts at zero; status.hard mirrors the spec.
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "0"),
            ("requests.cpu", "0"),
            ("configmaps", "0"),
            ("services", "0"),
            ("count/deployments.apps", "0"),
        ],
    )
    .await;
    let q = quotas.get("compute").await.unwrap();
    assert_eq!(
        q.status.as_ref().unwrap().hard,
        q.spec.as_ref().unwrap().hard
    );
    assert_eq!(
        q.status.as_ref().unwrap().used.as_ref().unwrap().len(),
        12,
        "only hard resources are tracked"
    );

    // Two pods: requests and limits add up, printed canonically.
    let _: Pod = create(&client, ns, pod("p1", "100m", "64Mi", "200m", "128Mi")).await;
    let _: Pod = create(&client, ns, pod("p2", "400m", "64Mi", "1", "128Mi")).await;
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "2"),
            ("count/pods", "2"),
            ("cpu", "500m"),
            ("requests.cpu", "500m"),
            ("requests.memory", "128Mi"),
            ("limits.cpu", "1200m"),
            ("limits.memory", "256Mi"),
        ],
    )
    .await;
    // The BestEffort quota counts neither of them; a pod without resources counts there.
    wait_used(&quotas, "besteffort", &[("pods", "0")]).await;
    let _: Pod = create(&client, ns, json!({"metadata": {"name": "be"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).await;
    wait_used(&quotas, "besteffort", &[("pods", "1")]).await;
    wait_used(
        &quotas,
        "compute",
        &[("pods", "3"), ("requests.cpu", "500m")],
    )
    .await;

    // A finished pod stops using compute resources but still exists as an object.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.patch_status(
        "p2",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .unwrap();
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "2"),
            ("count/pods", "3"),
            ("requests.cpu", "100m"),
            ("limits.memory", "128Mi"),
        ],
    )
    .await;

    // Deleting pods gives everything back.
    for p in ["p1", "p2", "be"] {
        pods.delete(p, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "0"),
            ("count/pods", "0"),
            ("requests.cpu", "0"),
            ("limits.memory", "0"),
        ],
    )
    .await;
    wait_used(&quotas, "besteffort", &[("pods", "0")]).await;

    // Object counts: config maps and a NodePort service with two ports.
    for n in ["a", "b"] {
        let _: ConfigMap = create(
            &client,
            ns,
            json!({"metadata": {"name": n}, "data": {"k": "v"}}),
        )
        .await;
    }
    let _: Service = create(
        &client,
        ns,
        json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "selector": {"app": "q"}, "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}),
    )
    .await;
    wait_used(
        &quotas,
        "compute",
        &[
            ("configmaps", "2"),
            ("count/configmaps", "2"),
            ("services", "1"),
            ("services.nodeports", "2"),
        ],
    )
    .await;

    // count/<resource>.<group> of a type the controller has no informer for is listed at sync.
    let _: Deployment = create(
        &client,
        ns,
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    wait_used(
        &quotas,
        "compute",
        &[("configmaps", "1"), ("count/deployments.apps", "1")],
    )
    .await;

    // kubectl describe shows used against hard per resource.
    let out = server
        .kubectl_ok(&["-n", ns, "describe", "quota", "compute"])
        .await;
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|t| t.first().map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{out}"))
    };
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Resource", "Used", "Hard"]),
        "{out}"
    );
    assert_eq!(row("configmaps"), ["configmaps", "1", "5"], "{out}");
    assert_eq!(
        row("services.nodeports"),
        ["services.nodeports", "2", "4"],
        "{out}"
    );
    assert_eq!(
        row("requests.memory"),
        ["requests.memory", "0", "1Gi"],
        "{out}"
    );

    // Raising a limit shows in status.hard.
    quotas
        .patch(
            "compute",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"hard": {"configmaps": "7"}}})),
        )
        .await
        .unwrap();
    wait_for(60, "status.hard follows spec", || async {
        let q = quotas.get("compute").await.unwrap();
        (q.status?.hard?.get("configmaps")?.0 == "7").then_some(())
    })
    .await;
}
