//! kube-controller-manager: the ReplicaSet and ReplicationController controllers against the
//! real apiserver (the test plays the kubelet).

mod kcm_support;

use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod, ReplicationController};
use kcm_support::*;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn replicaset_scales_adopts_releases_and_reports_status() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=replicaset,replicationcontroller"]);
    let ns = "rs-test";
    create_namespace(&client, ns).await;
    let kubelet = FakeKubelet::start(&client, ns);
    kubelet.set_enabled(false);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let rs = rss.create(&PostParams::default(), &replica_set("web", 3)).await.unwrap();
    let uid = rs.uid().unwrap();

    // Exactly three pods, all controlled by the ReplicaSet; none created twice.
    wait_for(60, "3 pods", || async { (pods(&client, ns, "app=web").await.len() == 3).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ps = pods(&client, ns, "app=web").await;
    assert_eq!(ps.len(), 3, "no extra replicas: {:?}", ps.iter().map(|p| p.name_any()).collect::<Vec<_>>());
    assert!(ps.iter().all(|p| controller_uid(p).as_deref() == Some(uid.as_str())));
    assert!(ps.iter().all(|p| p.name_any().starts_with("web-")));
    let st = wait_for(30, "status.replicas=3", || async {
        let rs = rss.get("web").await.unwrap();
        rs.status.filter(|s| s.replicas == 3 && s.observed_generation == rs.metadata.generation)
    })
    .await;
    assert_eq!(st.ready_replicas.unwrap_or(0), 0);

    // The kubelet stand-in makes them ready: ready and available follow.
    kubelet.set_enabled(true);
    wait_for(30, "3 available", || async {
        let s = rss.get("web").await.unwrap().status?;
        (s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(())
    })
    .await;

    // Scale down with kubectl: one pod left.
    server.kubectl_ok(&["-n", ns, "scale", "replicaset/web", "--replicas=1"]).await;
    wait_for(30, "1 pod", || async { (pods(&client, ns, "app=web").await.len() == 1).then_some(()) }).await;

    // An orphan matching the selector is adopted; then one of the two goes (replicas=1).
    let podapi: Api<Pod> = Api::namespaced(client.clone(), ns);
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    podapi.create(&PostParams::default(), &orphan).await.unwrap();
    wait_for(30, "adoption and scale back to 1", || async {
        let ps = pods(&client, ns, "app=web").await;
        (ps.len() == 1 && controller_uid(&ps[0]).as_deref() == Some(uid.as_str())).then_some(())
    })
    .await;

    // A pod whose labels stop matching is released and replaced.
    let survivor = pods(&client, ns, "app=web").await.remove(0);
    podapi
        .patch(&survivor.name_any(), &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})))
        .await
        .unwrap();
    wait_for(30, "release", || async {
        let p = podapi.get(&survivor.name_any()).await.unwrap();
        controller_uid(&p).is_none().then_some(())
    })
    .await;
    wait_for(30, "replacement", || async { (pods(&client, ns, "app=web").await.len() == 1).then_some(()) }).await;

    // Events tell the story, as upstream.
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    wait_for(30, "events", || async {
        let evs = events.list(&ListParams::default()).await.unwrap().items;
        let has = |reason: &str| evs.iter().any(|e| e.reason.as_deref() == Some(reason) && e.involved_object.name.as_deref() == Some("web"));
        (has("SuccessfulCreate") && has("SuccessfulDelete")).then_some(())
    })
    .await;
    let describe = server.kubectl_ok(&["-n", ns, "describe", "replicaset", "web"]).await;
    assert!(describe.contains("SuccessfulCreate"), "{describe}");
}

#[tokio::test]
async fn replication_controller_keeps_replicas() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=replicationcontroller"]);
    let ns = "rc-test";
    create_namespace(&client, ns).await;
    let _kubelet = FakeKubelet::start(&client, ns);
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), ns);
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": {
            "metadata": {"labels": {"app": "legacy"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }}
    }))
    .unwrap();
    let rc = rcs.create(&PostParams::default(), &rc).await.unwrap();
    wait_for(60, "2 ready replicas", || async {
        let s = rcs.get("legacy").await.unwrap().status?;
        (s.replicas == 2 && s.ready_replicas == Some(2)).then_some(())
    })
    .await;
    let ps = pods(&client, ns, "app=legacy").await;
    assert_eq!(ps.len(), 2);
    assert!(ps.iter().all(|p| controller_uid(p) == rc.uid()));
    // Deleting a pod gets it replaced.
    let podapi: Api<Pod> = Api::namespaced(client.clone(), ns);
    podapi.delete(&ps[0].name_any(), &Default::default()).await.unwrap();
    wait_for(30, "replacement", || async {
        let now = pods(&client, ns, "app=legacy").await;
        (now.len() == 2 && !now.iter().any(|p| p.name_any() == ps[0].name_any())).then_some(())
    })
    .await;
}
