//! kube-controller-manager: Deployments against the real apiserver, driven with kubectl 1.33
//! (rollout status/undo/pause/resume/history, scale) while the test plays the kubelet.

mod kcm_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kcm_support::*;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

fn deployment_yaml(name: &str, replicas: i32, strategy: &str, image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  strategy: {strategy}
{extra_spec}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: {image}
"
    )
}

fn image(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.containers[0].image.clone()).unwrap_or_default()
}

/// Watches the pods of `app` and records every state in which the rollout limits were broken:
/// more than `max_total` pods, or fewer than `min_ready` ready ones.
struct Observer {
    violations: Arc<Mutex<Vec<String>>>,
    steps: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    fn start(client: &Client, ns: &str, app: &str, max_total: usize, min_ready: usize) -> Observer {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let cfg = watcher::Config::default().labels(&format!("app={app}"));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let steps = Arc::new(Mutex::new(0));
        let (v, s) = (violations.clone(), steps.clone());
        let task = tokio::spawn(async move {
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let stream = watcher::watcher(api, cfg);
            futures::pin_mut!(stream);
            let mut synced = false;
            while let Some(Ok(ev)) = stream.next().await {
                match ev {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        pods.insert(p.name_any(), p);
                    }
                    watcher::Event::Delete(p) => {
                        pods.remove(&p.name_any());
                    }
                    watcher::Event::InitDone => synced = true,
                    watcher::Event::Init => {}
                }
                if !synced {
                    continue;
                }
                let live: Vec<&Pod> = pods.values().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
                let ready = live.iter().filter(|p| is_ready(p)).count();
                *s.lock().unwrap() += 1;
                if live.len() > max_total || ready < min_ready {
                    v.lock().unwrap().push(format!("{} pods, {} ready: {:?}", live.len(), ready, live.iter().map(|p| (p.name_any(), is_ready(p))).collect::<Vec<_>>()));
                }
            }
        });
        Observer { violations, steps, task }
    }

    fn finish(self) -> (Vec<String>, usize) {
        self.task.abort();
        let v = self.violations.lock().unwrap().clone();
        let s = *self.steps.lock().unwrap();
        (v, s)
    }
}

async fn replica_sets(client: &Client, ns: &str, app: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items
}

async fn rollout_status(server: &ApiServer, ns: &str, name: &str) -> String {
    server.kubectl_ok(&["-n", ns, "rollout", "status", &format!("deployment/{name}"), "--timeout=120s"]).await
}

#[tokio::test]
async fn rolling_update_respects_surge_and_unavailability_then_undo_scale_pause() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=replicaset,deployment"]);
    let ns = "deploy";
    create_namespace(&client, ns).await;
    let _kubelet = FakeKubelet::start(&client, ns);
    let strategy = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}";
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &deployment_yaml("web", 4, strategy, "nginx:1", "")).await;
    let out = rollout_status(&server, ns, "web").await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let first = replica_sets(&client, ns, "web").await;
    assert_eq!(first.len(), 1);
    let rs1 = first[0].clone();
    assert_eq!(rs1.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("1"));
    let hash = rs1.labels().get("pod-template-hash").cloned().expect("pod-template-hash label");
    assert_eq!(rs1.name_any(), format!("web-{hash}"));
    let ps = pods(&client, ns, "app=web").await;
    assert_eq!(ps.len(), 4);
    assert!(ps.iter().all(|p| p.labels().get("pod-template-hash") == Some(&hash)));

    // Roll to a new image: at every observed step at most 4+1 pods and at least 4-1 ready.
    let observer = Observer::start(&client, ns, "web", 5, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kubectl_ok(&["-n", ns, "set", "image", "deployment/web", "c=nginx:2"]).await;
    let out = rollout_status(&server, ns, "web").await;
    assert!(out.contains("successfully rolled out"), "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (violations, steps) = observer.finish();
    assert!(violations.is_empty(), "maxSurge/maxUnavailable broken: {violations:#?}");
    assert!(steps >= 8, "the observer saw the rollout ({steps} steps)");
    let ps = pods(&client, ns, "app=web").await;
    assert_eq!(ps.len(), 4);
    assert!(ps.iter().all(|p| image(p) == "nginx:2"));
    let rss = replica_sets(&client, ns, "web").await;
    assert_eq!(rss.len(), 2);
    let old = rss.iter().find(|r| r.name_any() == rs1.name_any()).unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    let d: Deployment = Api::namespaced(client.clone(), ns).get("web").await.unwrap();
    assert_eq!(d.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("2"));
    let conds = d.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_else(|| panic!("no conditions: {:?}", d.status));
    let progressing = conds.iter().find(|c| c.type_ == "Progressing").unwrap();
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetAvailable"));
    assert!(conds.iter().any(|c| c.type_ == "Available" && c.status == "True"));

    let history = server.kubectl_ok(&["-n", ns, "rollout", "history", "deployment/web"]).await;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo goes back to the first template; its ReplicaSet becomes revision 3.
    server.kubectl_ok(&["-n", ns, "rollout", "undo", "deployment/web"]).await;
    rollout_status(&server, ns, "web").await;
    wait_for(30, "old image back on every pod", || async {
        let ps = pods(&client, ns, "app=web").await;
        (ps.len() == 4 && ps.iter().all(|p| image(p) == "nginx:1")).then_some(())
    })
    .await;
    let back: ReplicaSet = Api::namespaced(client.clone(), ns).get(&rs1.name_any()).await.unwrap();
    assert_eq!(
        back.annotations().get("deployment.kubernetes.io/revision").map(String::as_str),
        Some("3"),
        "{}",
        server.kubectl_ok(&["-n", ns, "get", "rs,deploy", "-o", "yaml"]).await
    );
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(4));

    // Scale up and down.
    server.kubectl_ok(&["-n", ns, "scale", "deployment/web", "--replicas=6"]).await;
    rollout_status(&server, ns, "web").await;
    wait_for(30, "6 pods", || async { (pods(&client, ns, "app=web").await.len() == 6).then_some(()) }).await;
    server.kubectl_ok(&["-n", ns, "scale", "deployment/web", "--replicas=2"]).await;
    wait_for(30, "2 pods", || async {
        let d: Deployment = Api::namespaced(client.clone(), ns).get("web").await.unwrap();
        let s = d.status?;
        (pods(&client, ns, "app=web").await.len() == 2 && s.replicas == Some(2) && s.available_replicas == Some(2)).then_some(())
    })
    .await;

    // Paused: template changes do not roll out until resumed.
    server.kubectl_ok(&["-n", ns, "rollout", "pause", "deployment/web"]).await;
    server.kubectl_ok(&["-n", ns, "set", "image", "deployment/web", "c=nginx:3"]).await;
    wait_for(30, "paused condition", || async {
        let d: Deployment = Api::namespaced(client.clone(), ns).get("web").await.unwrap();
        d.status?.conditions?.iter().any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(replica_sets(&client, ns, "web").await.len(), 2, "no new ReplicaSet while paused");
    server.kubectl_ok(&["-n", ns, "rollout", "resume", "deployment/web"]).await;
    rollout_status(&server, ns, "web").await;
    wait_for(30, "nginx:3 everywhere", || async {
        let ps = pods(&client, ns, "app=web").await;
        (ps.len() == 2 && ps.iter().all(|p| image(p) == "nginx:3")).then_some(())
    })
    .await;

    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        evs.iter().any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")
            && e.message.as_deref().is_some_and(|m| m.starts_with("Scaled up replica set web-"))),
        "ScalingReplicaSet events"
    );
}

#[tokio::test]
async fn recreate_and_revision_history_limit() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=replicaset,deployment"]);
    let ns = "recreate";
    create_namespace(&client, ns).await;
    let _kubelet = FakeKubelet::start(&client, ns);
    server
        .kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &deployment_yaml("db", 3, "{type: Recreate}", "pg:1", "  revisionHistoryLimit: 1\n"))
        .await;
    rollout_status(&server, ns, "db").await;

    // Recreate never runs old and new pods together.
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mixed = Arc::new(Mutex::new(false));
    let m = mixed.clone();
    let watch = tokio::spawn(async move {
        let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
        let stream = watcher::watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    pods.insert(p.name_any(), p);
                }
                watcher::Event::Delete(p) => {
                    pods.remove(&p.name_any());
                }
                _ => {}
            }
            let images: std::collections::BTreeSet<String> = pods.values().map(image).collect();
            if images.len() > 1 {
                *m.lock().unwrap() = true;
            }
        }
    });
    for (i, img) in ["pg:2", "pg:3"].iter().enumerate() {
        server.kubectl_ok(&["-n", ns, "set", "image", "deployment/db", &format!("c={img}")]).await;
        rollout_status(&server, ns, "db").await;
        wait_for(30, "new image", || async {
            let ps = pods(&client, ns, "app=db").await;
            (ps.len() == 3 && ps.iter().all(|p| image(p) == *img)).then_some(())
        })
        .await;
        let _ = i;
    }
    watch.abort();
    assert!(!*mixed.lock().unwrap(), "Recreate ran old and new pods at the same time");
    // revisionHistoryLimit 1: the current ReplicaSet and one old one.
    wait_for(30, "history cleanup", || async {
        let rss = replica_sets(&client, ns, "db").await;
        let revs: Vec<String> = rss.iter().filter_map(|r| r.annotations().get("deployment.kubernetes.io/revision").cloned()).collect();
        (rss.len() == 2 && revs.contains(&"3".to_string()) && revs.contains(&"2".to_string())).then_some(())
    })
    .await;
}
