//! Test support for the kube-controller-manager tests: a fake kubelet that marks pods Running
//! and Ready (with a pod IP), polling helpers, and object builders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

/// Poll `f` every 200 ms until it returns `Some`, panicking after `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

pub async fn create_node(client: &Client, name: &str) {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &node).await.unwrap();
}

pub async fn pods(client: &Client, ns: &str, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(selector)).await.unwrap().items
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Mark one pod Running and Ready (or not ready) with a pod IP, as a kubelet would.
pub async fn set_pod_ready(client: &Client, ns: &str, name: &str, ready: bool, ip: &str) -> kube::Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": "127.0.0.1",
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "Ready", "status": status, "lastTransitionTime": now},
        ]
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await
}

/// Marks every new pod of a namespace Ready while enabled (a kubelet stand-in).
pub struct FakeKubelet {
    pub enabled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubelet {
    pub fn start(client: &Client, ns: &str) -> FakeKubelet {
        let enabled = Arc::new(AtomicBool::new(true));
        let (client, ns, en) = (client.clone(), ns.to_string(), enabled.clone());
        let task = tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let ip_seq = AtomicU32::new(1);
            let mut pending: Vec<String> = Vec::new();
            let stream = watcher::watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            loop {
                let ev = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
                match ev {
                    Ok(Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)))) => {
                        let ready = p
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                        if !ready && p.metadata.deletion_timestamp.is_none() && !pending.contains(&p.name_any()) {
                            pending.push(p.name_any());
                        }
                    }
                    Ok(Some(Ok(watcher::Event::Delete(p)))) => pending.retain(|n| n != &p.name_any()),
                    Ok(None) => return,
                    _ => {}
                }
                if en.load(Ordering::SeqCst) {
                    for name in std::mem::take(&mut pending) {
                        let n = ip_seq.fetch_add(1, Ordering::SeqCst);
                        let ip = format!("10.244.{}.{}", n / 250, n % 250 + 1);
                        let _ = set_pod_ready(&client, &ns, &name, true, &ip).await;
                    }
                }
            }
        });
        FakeKubelet { enabled, task }
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn is_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn controller_uid(p: &impl kube::Resource) -> Option<String> {
    p.meta().owner_references.as_ref()?.iter().find(|r| r.controller == Some(true)).map(|r| r.uid.clone())
}
