//! The DaemonSet controller: one pod per eligible node. Each pod is pinned to its node with
//! required node affinity on `metadata.name` (the scheduler then places it) and gets the
//! upstream default tolerations; pods on nodes that stop being eligible are deleted; the
//! RollingUpdate strategy replaces out-of-date pods at most `maxUnavailable` at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::controllers::deployment::{compute_hash, scaled_value};
use crate::expectations::Expectations;
use crate::informer::{Informer, enqueue_on_change_with_expectations, enqueue_owner_with_expectations};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, object_ref, owner_ref, split_key};
use crate::{ControllerContext, Error};

pub const REVISION_HASH: &str = "controller-revision-hash";

/// The tolerations every daemon pod gets (upstream's AddOrUpdateDaemonPodTolerations).
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut v: Vec<Toleration> = [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .iter()
    .map(|(k, e)| Toleration { key: Some(k.to_string()), operator: Some("Exists".into()), effect: Some(e.to_string()), ..Default::default() })
    .collect();
    if host_network {
        v.push(Toleration {
            key: Some("node.kubernetes.io/network-unavailable".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        });
    }
    v
}

fn tolerated(tols: &[Toleration], taint: &Taint) -> bool {
    tols.iter().any(|t| {
        let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = match t.operator.as_deref().unwrap_or("Equal") {
            "Exists" => t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key),
            _ => t.key.as_deref() == Some(taint.key.as_str()) && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        effect_ok && key_ok
    })
}

/// Whether the daemon pod should run on `node`: nodeSelector matches and every
/// NoSchedule/NoExecute taint is tolerated.
pub fn should_run(ds: &DaemonSet, node: &Node) -> bool {
    let spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let labels = node.labels();
    if let Some(sel) = spec.and_then(|s| s.node_selector.as_ref())
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let mut tols = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
    tols.extend(default_tolerations(spec.and_then(|s| s.host_network).unwrap_or(false)));
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerated(&tols, t))
}

/// The node a daemon pod is for: its nodeName, else the node affinity pin.
pub fn pod_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find(|f| f.key == "metadata.name" && f.operator == "In").and_then(|f| f.values.as_ref()?.first().cloned())
}

pub struct DaemonSetController {
    client: Client,
    dss: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    events: Events,
}

impl DaemonSetController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(DaemonSetController {
            client: ctx.client.clone(),
            dss: ctx.informers.get::<DaemonSet>(),
            pods: ctx.informers.get::<Pod>(),
            nodes: ctx.informers.get::<Node>(),
            queue: WorkQueue::new("daemonset"),
            expectations: Arc::new(Expectations::default()),
            events: Events::new(ctx.client.clone(), "daemonset-controller"),
        });
        enqueue_on_change_with_expectations(&c.dss, &c.queue, &c.expectations);
        let weak = Arc::downgrade(&c);
        c.nodes.add_handler(move |_| {
            if let Some(c) = weak.upgrade() {
                for ds in c.dss.list() {
                    c.queue.add(util::key_of(ds.as_ref()));
                }
            }
        });
        enqueue_owner_with_expectations(&c.pods, &c.dss, &c.queue, &c.expectations);
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.dss.wait_synced().await;
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(ds) = self.dss.get(ns, name) else { return Ok(None) };
        let spec = ds.spec.clone().unwrap_or_default();
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let hash = compute_hash(&spec.template, ds.status.as_ref().and_then(|s| s.collision_count));
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = util::now();
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in self.pods.list_namespace(ns) {
            if controller_ref(&p.metadata).is_some_and(|r| r.uid == uid) && util::is_pod_active(&p) {
                by_node.entry(pod_node(&p).unwrap_or_default()).or_default().push(p);
            }
        }
        let nodes = self.nodes.list();
        let mut create: Vec<String> = Vec::new();
        let mut delete: Vec<Arc<Pod>> = Vec::new();
        let (mut desired, mut scheduled, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0, 0);
        let mut outdated: Vec<Arc<Pod>> = Vec::new();
        let mut unavailable = 0;
        for node in &nodes {
            let n = node.name_any();
            let run = should_run(&ds, node);
            let mut pods = by_node.remove(&n).unwrap_or_default();
            if run {
                desired += 1;
            }
            if pods.is_empty() {
                if run {
                    create.push(n);
                }
                continue;
            }
            if !run {
                misscheduled += 1;
                delete.extend(pods);
                continue;
            }
            scheduled += 1;
            // More than one: keep the oldest.
            pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            delete.extend(pods.drain(1..));
            let p = &pods[0];
            let is_ready = util::is_pod_ready(p);
            let is_avail = util::is_pod_available(p, min_ready, now);
            ready += i32::from(is_ready);
            available += i32::from(is_avail);
            if !is_avail {
                unavailable += 1;
            }
            if p.labels().get(REVISION_HASH) == Some(&hash) {
                updated += 1;
            } else {
                outdated.push(p.clone());
            }
        }
        // Pods for nodes that no longer exist.
        delete.extend(by_node.into_values().flatten());
        unavailable += create.len() as i32;

        if spec.template.metadata.is_some() && self.expectations.satisfied(key) && ds.metadata.deletion_timestamp.is_none() {
            // RollingUpdate: replace out-of-date pods while within maxUnavailable.
            let strategy = spec.update_strategy.clone().unwrap_or_default();
            if strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate" {
                let max_unavail = scaled_value(strategy.rolling_update.as_ref().and_then(|r| r.max_unavailable.as_ref()), desired, true).max(1);
                // Unavailable outdated pods go first; they cost no availability.
                outdated.sort_by_key(|p| util::is_pod_available(p, min_ready, now));
                let mut budget = max_unavail - unavailable;
                for p in outdated {
                    if !util::is_pod_available(&p, min_ready, now) {
                        delete.push(p);
                    } else if budget > 0 {
                        budget -= 1;
                        delete.push(p);
                    }
                }
            }
            self.sync_pods(&ds, key, &hash, create, delete).await?;
        }
        let st = ds.status.clone().unwrap_or_default();
        let status = json!({
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": (desired - available).max(0),
            "updatedNumberScheduled": updated,
            "observedGeneration": ds.metadata.generation,
        });
        let unchanged = st.desired_number_scheduled == desired
            && st.current_number_scheduled == scheduled
            && st.number_misscheduled == misscheduled
            && st.number_ready == ready
            && st.number_available.unwrap_or(0) == available
            && st.number_unavailable.unwrap_or(0) == (desired - available).max(0)
            && st.updated_number_scheduled.unwrap_or(0) == updated
            && st.observed_generation == ds.metadata.generation;
        if !unchanged {
            Api::<DaemonSet>::namespaced(self.client.clone(), ns).patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await?;
        }
        if min_ready > 0 && ready != available {
            return Ok(Some(Duration::from_secs(min_ready as u64)));
        }
        Ok(None)
    }

    async fn sync_pods(&self, ds: &DaemonSet, key: &str, hash: &str, create: Vec<String>, delete: Vec<Arc<Pod>>) -> Result<(), Error> {
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if !delete.is_empty() {
            self.expectations.expect_deletions(key, delete.iter().filter_map(|p| p.metadata.uid.clone()));
        }
        if !create.is_empty() {
            self.expectations.expect_creations(key, create.len());
        }
        let spec = ds.spec.clone().unwrap_or_default();
        let mut err = None;
        let creates = join_all(create.iter().map(|node| {
            let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
            let tmeta = spec.template.metadata.clone().unwrap_or_default();
            let mut labels: BTreeMap<String, String> = tmeta.labels.clone().unwrap_or_default();
            labels.insert(REVISION_HASH.into(), hash.to_string());
            let mut tols = pod_spec.tolerations.take().unwrap_or_default();
            for t in default_tolerations(pod_spec.host_network.unwrap_or(false)) {
                if !tols.iter().any(|x| x.key == t.key && x.effect == t.effect) {
                    tols.push(t);
                }
            }
            pod_spec.tolerations = Some(tols);
            let mut affinity = pod_spec.affinity.take().unwrap_or_default();
            let na = affinity.node_affinity.get_or_insert_with(Default::default);
            na.required_during_scheduling_ignored_during_execution = Some(
                serde_json::from_value(json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}))
                    .unwrap_or_default(),
            );
            pod_spec.affinity = Some(affinity);
            let pod = Pod {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{}-", ds.name_any())),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: tmeta.annotations.clone(),
                    owner_references: Some(vec![owner_ref(ds)]),
                    ..Default::default()
                },
                spec: Some(pod_spec),
                status: None,
            };
            let api = api.clone();
            async move { api.create(&PostParams::default(), &pod).await }
        }))
        .await;
        for r in creates {
            match r {
                Ok(p) => self.events.normal(object_ref(ds), "SuccessfulCreate", format!("Created pod: {}", p.name_any())),
                Err(e) => {
                    self.expectations.creation_observed(key);
                    self.events.warning(object_ref(ds), "FailedCreate", format!("Error creating: {e}"));
                    err = Some(e);
                }
            }
        }
        for p in delete {
            match api.delete(&p.name_any(), &DeleteParams::background()).await {
                Ok(_) => self.events.normal(object_ref(ds), "SuccessfulDelete", format!("Deleted pod: {}", p.name_any())),
                Err(e) => {
                    self.expectations.deletion_observed(key, p.metadata.uid.as_deref().unwrap_or(""));
                    if !util::is_status(&e, 404) {
                        err = Some(e);
                    }
                }
            }
        }
        err.map_or(Ok(()), |e| Err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility_follows_selector_and_taints() {
        let ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"nodeSelector": {"role": "worker"}, "containers": []}}
        }}))
        .unwrap();
        let node = |labels: serde_json::Value, taints: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n", "labels": labels}, "spec": {"taints": taints}})).unwrap()
        };
        assert!(should_run(&ds, &node(json!({"role": "worker"}), json!([]))));
        assert!(!should_run(&ds, &node(json!({"role": "master"}), json!([]))));
        // Default tolerations cover unschedulable and unreachable nodes...
        assert!(should_run(&ds, &node(json!({"role": "worker"}), json!([
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
        ]))));
        // ...but not arbitrary taints.
        assert!(!should_run(&ds, &node(json!({"role": "worker"}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]))));
        let pinned: Pod = serde_json::from_value(json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}}}}})).unwrap();
        assert_eq!(pod_node(&pinned).as_deref(), Some("n7"));
    }
}
