//! Node lifecycle: a node whose kubelet stopped heartbeating (its Lease in `kube-node-lease`
//! and its Ready condition) for `--node-monitor-grace-period` gets Ready=Unknown and the
//! `node.kubernetes.io/unreachable` taints (`not-ready` when the kubelet reports NotReady),
//! and its pods are marked not ready. The taint-eviction part deletes pods on NoExecute-tainted
//! nodes once their tolerations (tolerationSeconds) run out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::informer::Informer;
use crate::queue::{WorkQueue, run_workers};
use crate::util::{self, Events, object_ref};
use crate::{ControllerContext, Error};

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
const LEASE_NS: &str = "kube-node-lease";

/// The taints a node should carry for its Ready condition status.
pub fn desired_taints(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    match ready {
        Some("True") => vec![],
        Some("False") => vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")],
        _ => vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
    }
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key),
        _ => t.key.as_deref() == Some(taint.key.as_str()) && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// When a pod on a node with these NoExecute taints must go: `None` = never, `Some(0)` = now,
/// otherwise seconds after the taints were added (the smallest tolerationSeconds).
pub fn eviction_delay(tolerations: &[Toleration], taints: &[Taint]) -> Option<i64> {
    let mut min: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(0);
        }
        // Tolerated forever unless every matching toleration is bounded.
        if matching.iter().all(|t| t.toleration_seconds.is_some()) {
            let s = matching.iter().filter_map(|t| t.toleration_seconds).min().unwrap_or(0).max(0);
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    min
}

pub struct NodeLifecycleController {
    client: Client,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    grace: Duration,
    period: Duration,
    /// node -> (heartbeat seen, local time it was first seen)
    probes: Mutex<HashMap<String, (String, Instant)>>,
    eviction_queue: Arc<WorkQueue>,
    events: Events,
}

impl NodeLifecycleController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(NodeLifecycleController {
            client: ctx.client.clone(),
            nodes: ctx.informers.get::<Node>(),
            leases: ctx.informers.get::<Lease>(),
            pods: ctx.informers.get::<Pod>(),
            grace: ctx.options.node_monitor_grace_period,
            period: ctx.options.node_monitor_period,
            probes: Mutex::new(HashMap::new()),
            eviction_queue: WorkQueue::new("taint_eviction"),
            events: Events::new(ctx.client.clone(), "node-controller"),
        });
        // Taint changes and pods landing on tainted nodes are looked at for eviction.
        let q = c.eviction_queue.clone();
        c.nodes.add_handler(move |ch| q.add(ch.object().name_any()));
        let q = c.eviction_queue.clone();
        c.pods.add_handler(move |ch| {
            if let Some(n) = ch.object().spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()) {
                q.add(n);
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.nodes.wait_synced().await;
        self.leases.wait_synced().await;
        self.pods.wait_synced().await;
        info!("node lifecycle controller: caches synced");
        let me = self.clone();
        let monitor = async move {
            loop {
                for n in me.nodes.list() {
                    if let Err(e) = me.monitor_node(&n).await {
                        tracing::warn!(node = %n.name_any(), error = %e, "monitoring node health");
                    }
                }
                tokio::time::sleep(me.period).await;
            }
        };
        let me = self.clone();
        let evict = run_workers(self.eviction_queue.clone(), workers, move |node| {
            let me = me.clone();
            async move { me.reconcile_evictions(&node).await }
        });
        tokio::join!(monitor, evict);
    }

    /// The health sync of one node: conditions, taints, pods marked not ready.
    pub async fn monitor_node(&self, node: &Node) -> Result<(), Error> {
        let name = node.name_any();
        let conds = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let ready = conds.iter().find(|c| c.type_ == "Ready").cloned();
        let lease_renew = self.leases.get(LEASE_NS, &name).and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.as_ref().map(|t| t.0.to_string())));
        let heartbeat = format!(
            "{}|{}|{}",
            lease_renew.unwrap_or_default(),
            ready.as_ref().and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string())).unwrap_or_default(),
            ready.as_ref().map(|c| c.status.clone()).unwrap_or_default()
        );
        let elapsed = {
            let mut p = self.probes.lock().unwrap_or_else(|e| e.into_inner());
            let e = p.entry(name.clone()).or_insert((heartbeat.clone(), Instant::now()));
            if e.0 != heartbeat {
                *e = (heartbeat, Instant::now());
            }
            e.1.elapsed()
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let mut ready_status = ready.as_ref().map(|c| c.status.clone());
        if elapsed > self.grace && ready_status.as_deref() != Some("Unknown") {
            info!(node = %name, "node stopped posting status; marking it Unknown");
            let now = util::now_time();
            let mut new_conds: Vec<NodeCondition> = conds.clone();
            for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
                match new_conds.iter_mut().find(|c| c.type_ == t) {
                    Some(c) => {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(now.clone());
                    }
                    None => new_conds.push(NodeCondition {
                        type_: t.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_transition_time: Some(now.clone()),
                        last_heartbeat_time: None,
                    }),
                }
            }
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&json!({"status": {"conditions": new_conds}}))).await?;
            self.events.normal(object_ref(node), "NodeNotReady", format!("Node {name} status is now: NodeNotReady"));
            self.mark_pods_not_ready(&name).await?;
            ready_status = Some("Unknown".into());
        }
        // Taints follow the Ready condition.
        let want = desired_taints(ready_status.as_deref());
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let ours = |t: &Taint| (t.key == UNREACHABLE || t.key == NOT_READY) && (t.effect == "NoSchedule" || t.effect == "NoExecute");
        let have: Vec<(String, String)> = taints.iter().filter(|t| ours(t)).map(|t| (t.key.clone(), t.effect.clone())).collect();
        let want_pairs: Vec<(String, String)> = want.iter().map(|(k, e)| (k.to_string(), e.to_string())).collect();
        let mut sorted_have = have.clone();
        sorted_have.sort();
        let mut sorted_want = want_pairs.clone();
        sorted_want.sort();
        if sorted_have != sorted_want {
            let mut next: Vec<Taint> = taints.iter().filter(|t| !ours(t)).cloned().collect();
            for (k, e) in want {
                next.push(Taint {
                    key: k.into(),
                    effect: e.into(),
                    value: None,
                    time_added: (e == "NoExecute").then(util::now_time),
                });
            }
            let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": next}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        Ok(())
    }

    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), Error> {
        for p in self.pods.list() {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) || !util::is_pod_ready(&p) {
                continue;
            }
            let mut conds = p.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.last_transition_time = Some(util::now_time());
            }
            let api: Api<Pod> = Api::namespaced(self.client.clone(), p.metadata.namespace.as_deref().unwrap_or(""));
            match api.patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(&json!({"status": {"conditions": conds}}))).await {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Taint-based eviction for the pods of one node.
    pub async fn reconcile_evictions(&self, node: &str) -> Result<Option<Duration>, Error> {
        let Some(n) = self.nodes.get("", node) else { return Ok(None) };
        let taints: Vec<Taint> = n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default().into_iter().filter(|t| t.effect == "NoExecute").collect();
        if taints.is_empty() {
            return Ok(None);
        }
        let added = taints.iter().filter_map(|t| t.time_added.as_ref().map(|t| t.0.as_second())).max().unwrap_or(util::now().as_second());
        let now = util::now().as_second();
        let mut next: Option<i64> = None;
        for p in self.pods.list() {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) || p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let tolerations = p.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
            let Some(delay) = eviction_delay(&tolerations, &taints) else { continue };
            let at = added + delay;
            if at > now {
                next = Some(next.map_or(at - now, |n: i64| n.min(at - now)));
                continue;
            }
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            info!(pod = %p.name_any(), namespace = %ns, node, "evicting pod from a NoExecute-tainted node");
            self.events.normal(object_ref(p.as_ref()), "TaintManagerEviction", format!("Marking for deletion Pod {ns}/{}", p.name_any()));
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let cond = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": util::now_time()}]}});
            let _ = api.patch_status(&p.name_any(), &PatchParams::default(), &Patch::Strategic(&cond)).await;
            match api.delete(&p.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(next.map(|s| Duration::from_secs(s.max(1) as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint { key: key.into(), effect: "NoExecute".into(), value: None, time_added: None }
    }

    fn tol(key: Option<&str>, op: &str, secs: Option<i64>) -> Toleration {
        Toleration { key: key.map(Into::into), operator: Some(op.into()), effect: Some("NoExecute".into()), toleration_seconds: secs, value: None }
    }

    #[test]
    fn eviction_follows_tolerations() {
        let t = [taint(UNREACHABLE)];
        assert_eq!(eviction_delay(&[], &t), Some(0), "not tolerated: now");
        assert_eq!(eviction_delay(&[tol(Some(UNREACHABLE), "Exists", Some(300))], &t), Some(300));
        assert_eq!(eviction_delay(&[tol(Some(UNREACHABLE), "Exists", None)], &t), None, "tolerated forever");
        assert_eq!(eviction_delay(&[tol(None, "Exists", None)], &t), None, "wildcard toleration");
        assert_eq!(eviction_delay(&[tol(Some(NOT_READY), "Exists", None)], &t), Some(0), "other key");
        assert_eq!(desired_taints(Some("True")), vec![]);
        assert_eq!(desired_taints(Some("Unknown"))[1], (UNREACHABLE, "NoExecute"));
        assert_eq!(desired_taints(Some("False"))[0].0, NOT_READY);
    }
}
