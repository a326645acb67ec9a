//! Pod garbage collection: terminated pods beyond `--terminated-pod-gc-threshold` (oldest
//! first), pods bound to nodes that no longer exist, and unscheduled pods that are
//! terminating are deleted (the last two forcefully, as there is no kubelet to confirm).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams};
use kube::{Client, ResourceExt};
use tracing::info;

use crate::informer::Informer;
use crate::util;
use crate::{ControllerContext, Error};

/// Upstream's gcCheckPeriod.
const PERIOD: Duration = Duration::from_secs(20);

/// Which pods to delete now (pure; unit-tested): (namespace, name, force).
pub fn plan(pods: &[Arc<Pod>], node_exists: &dyn Fn(&str) -> bool, threshold: i64) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let id = |p: &Pod| (p.metadata.namespace.clone().unwrap_or_default(), p.name_any());
    if threshold > 0 {
        let mut terminated: Vec<&Arc<Pod>> = pods.iter().filter(|p| util::is_pod_terminal(p) && p.metadata.deletion_timestamp.is_none()).collect();
        if terminated.len() as i64 > threshold {
            terminated.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let n = terminated.len() - threshold as usize;
            out.extend(terminated.into_iter().take(n).map(|p| {
                let (ns, name) = id(p);
                (ns, name, false)
            }));
        }
    }
    for p in pods {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let (ns, name) = id(p);
        if out.iter().any(|(n, m, _)| *n == ns && *m == name) {
            continue;
        }
        if !node.is_empty() && !node_exists(&node) {
            out.push((ns, name, true));
        } else if node.is_empty() && p.metadata.deletion_timestamp.is_some() {
            out.push((ns, name, true));
        }
    }
    out
}

pub struct PodGc {
    client: Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    threshold: i64,
}

impl PodGc {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        Arc::new(PodGc {
            client: ctx.client.clone(),
            pods: ctx.informers.get::<Pod>(),
            nodes: ctx.informers.get::<Node>(),
            threshold: ctx.options.terminated_pod_gc_threshold,
        })
    }

    pub async fn run(self: Arc<Self>) {
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        loop {
            if let Err(e) = self.gc().await {
                tracing::warn!(error = %e, "pod gc");
            }
            tokio::time::sleep(PERIOD).await;
        }
    }

    /// One pass (the controller's sync function).
    pub async fn gc(&self) -> Result<(), Error> {
        let pods = self.pods.list();
        let nodes = self.nodes.clone();
        let exists = move |n: &str| nodes.get("", n).is_some();
        for (ns, name, force) in plan(&pods, &exists, self.threshold) {
            info!(namespace = %ns, pod = %name, force, "pod gc: deleting pod");
            let dp = if force { DeleteParams { grace_period_seconds: Some(0), ..Default::default() } } else { DeleteParams::default() };
            match Api::<Pod>::namespaced(self.client.clone(), &ns).delete(&name, &dp).await {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, created: &str, deleting: bool) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": []}, "status": {"phase": phase}});
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn plans_threshold_orphans_and_unscheduled_terminating() {
        let pods = vec![
            pod("old-done", "n1", "Succeeded", "2026-01-01T00:00:00Z", false),
            pod("new-done", "n1", "Failed", "2026-01-02T00:00:00Z", false),
            pod("running", "n1", "Running", "2026-01-01T00:00:00Z", false),
            pod("orphan", "gone", "Running", "2026-01-01T00:00:00Z", false),
            pod("stuck", "", "Pending", "2026-01-01T00:00:00Z", true),
        ];
        let exists = |n: &str| n == "n1";
        let p = plan(&pods, &exists, 1);
        assert_eq!(
            p,
            vec![("ns".into(), "old-done".into(), false), ("ns".into(), "orphan".into(), true), ("ns".into(), "stuck".into(), true)]
        );
        assert_eq!(plan(&pods, &exists, 0).len(), 2, "threshold <= 0 disables that part");
    }
}
