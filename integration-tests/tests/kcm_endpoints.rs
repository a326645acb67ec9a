//! kube-controller-manager: EndpointSlices and Endpoints following pod readiness.

mod kcm_support;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kcm_support::*;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// (ip, ready, serving, terminating) of every endpoint in the service's slices, sorted.
async fn slice_view(client: &Client, ns: &str, svc: &str) -> (usize, Vec<(String, bool, bool, bool)>) {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let slices = api.list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"))).await.unwrap().items;
    let mut v: Vec<(String, bool, bool, bool)> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (e.addresses[0].clone(), c.ready.unwrap_or(false), c.serving.unwrap_or(false), c.terminating.unwrap_or(false))
        })
        .collect();
    v.sort();
    (slices.len(), v)
}

async fn make_pod(client: &Client, ns: &str, name: &str, ip: &str, ready: bool, finalizer: bool) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut meta = json!({"name": name, "labels": {"app": "web"}});
    if finalizer {
        meta["finalizers"] = json!(["example.com/hold"]);
    }
    let p: Pod = serde_json::from_value(json!({
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
    set_pod_ready(client, ns, name, ready, ip).await.unwrap();
}

#[tokio::test]
async fn endpoint_slices_and_endpoints_follow_readiness() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=endpointslice,endpoint,garbagecollector", "--max-endpoints-per-slice=2"]);
    let ns = "net";
    create_namespace(&client, ns).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();

    // No pods: one empty placeholder slice.
    wait_for(30, "placeholder slice", || async {
        let (n, eps) = slice_view(&client, ns, "web").await;
        (n == 1 && eps.is_empty()).then_some(())
    })
    .await;

    make_pod(&client, ns, "a", "10.1.0.1", false, false).await;
    make_pod(&client, ns, "b", "10.1.0.2", false, false).await;
    make_pod(&client, ns, "c", "10.1.0.3", false, true).await;
    // Three endpoints, none ready, in slices of at most two.
    wait_for(30, "3 not-ready endpoints", || async {
        let (n, eps) = slice_view(&client, ns, "web").await;
        (n == 2 && eps.len() == 3 && eps.iter().all(|e| !e.1 && !e.2)).then_some(())
    })
    .await;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let s = slices.list(&ListParams::default().labels("kubernetes.io/service-name=web")).await.unwrap().items;
    for sl in &s {
        assert_eq!(sl.labels()["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
        assert_eq!(sl.ports.as_ref().unwrap()[0].port, Some(8080), "named target port resolved");
        assert_eq!(sl.owner_references()[0].kind, "Service");
    }

    // Readiness flips are reflected.
    set_pod_ready(&client, ns, "a", true, "10.1.0.1").await.unwrap();
    set_pod_ready(&client, ns, "c", true, "10.1.0.3").await.unwrap();
    wait_for(30, "a and c ready", || async {
        let (_, eps) = slice_view(&client, ns, "web").await;
        (eps == vec![
            ("10.1.0.1".to_string(), true, true, false),
            ("10.1.0.2".to_string(), false, false, false),
            ("10.1.0.3".to_string(), true, true, false),
        ])
        .then_some(())
    })
    .await;
    let eps_api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    wait_for(30, "legacy endpoints", || async {
        let e = eps_api.get_opt("web").await.unwrap()?;
        let s = e.subsets?.pop()?;
        let ready: Vec<String> = s.addresses.unwrap_or_default().into_iter().map(|a| a.ip).collect();
        let not_ready: Vec<String> = s.not_ready_addresses.unwrap_or_default().into_iter().map(|a| a.ip).collect();
        (ready == vec!["10.1.0.1", "10.1.0.3"] && not_ready == vec!["10.1.0.2"] && s.ports?[0].port == 8080).then_some(())
    })
    .await;

    // A terminating pod (held by a finalizer) is terminating in the slice, gone from Endpoints.
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods_api.delete("c", &DeleteParams::default()).await.unwrap();
    wait_for(30, "c terminating", || async {
        let (_, eps) = slice_view(&client, ns, "web").await;
        eps.iter().any(|e| e.0 == "10.1.0.3" && !e.1 && e.3).then_some(())
    })
    .await;
    wait_for(30, "c out of Endpoints", || async {
        let e = eps_api.get("web").await.unwrap();
        let ips: Vec<String> = e.subsets.unwrap_or_default().into_iter().flat_map(|s| s.addresses.unwrap_or_default()).map(|a| a.ip).collect();
        (ips == vec!["10.1.0.1"]).then_some(())
    })
    .await;
    pods_api.patch("c", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"finalizers": null}}))).await.unwrap();
    pods_api.delete("b", &DeleteParams::default()).await.unwrap();
    wait_for(30, "only a left", || async {
        let (n, eps) = slice_view(&client, ns, "web").await;
        (n == 1 && eps == vec![("10.1.0.1".to_string(), true, true, false)]).then_some(())
    })
    .await;

    // Deleting the service removes its slices (owner reference) and its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for(60, "slices and endpoints gone", || async {
        let (n, _) = slice_view(&client, ns, "web").await;
        (n == 0 && eps_api.get_opt("web").await.unwrap().is_none()).then_some(())
    })
    .await;
}
