//! The ReplicaSet (and ReplicationController) controller: keeps `spec.replicas` active pods
//! matching the selector. Pods matching the selector without a controller are adopted, owned
//! pods that stop matching are released, the least valuable pods go first on scale-down, and
//! expectations make sure a missing replica is created exactly once even while the pod
//! informer lags behind the controller's own writes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{debug, info};

use crate::expectations::Expectations;
use crate::informer::{Change, Informer, enqueue_on_change_with_expectations};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, is_pod_active, key, split_key};
use crate::{ControllerContext, Error};

/// Upstream's BurstReplicas: at most this many creations or deletions per sync.
const BURST_REPLICAS: usize = 500;

/// Which workload API this instance manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ReplicaSet,
    ReplicationController,
}

/// The selector shapes of the two APIs.
#[derive(Clone, Debug)]
pub enum PodSelector {
    Label(LabelSelector),
    Map(BTreeMap<String, String>),
}

impl PodSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            PodSelector::Label(ls) => util::selector_matches(ls, labels),
            PodSelector::Map(m) => util::map_selector_matches(m, labels),
        }
    }
}

/// What the controller needs of either API object.
#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: Kind,
    pub meta: ObjectMeta,
    pub replicas: i32,
    pub selector: PodSelector,
    pub template: Option<PodTemplateSpec>,
    pub min_ready_seconds: i32,
    pub status: ReplicaStatus,
}

/// The status fields the controller owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: i64,
}

impl Workload {
    pub fn from_replica_set(rs: &ReplicaSet) -> Self {
        let spec = rs.spec.clone().unwrap_or_default();
        let st = rs.status.clone().unwrap_or_default();
        Workload {
            kind: Kind::ReplicaSet,
            meta: rs.metadata.clone(),
            replicas: spec.replicas.unwrap_or(1),
            selector: PodSelector::Label(spec.selector),
            template: spec.template,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            status: ReplicaStatus {
                replicas: st.replicas,
                fully_labeled_replicas: st.fully_labeled_replicas.unwrap_or(0),
                ready_replicas: st.ready_replicas.unwrap_or(0),
                available_replicas: st.available_replicas.unwrap_or(0),
                observed_generation: st.observed_generation.unwrap_or(0),
            },
        }
    }

    pub fn from_replication_controller(rc: &ReplicationController) -> Self {
        let spec = rc.spec.clone().unwrap_or_default();
        let st = rc.status.clone().unwrap_or_default();
        // An RC without a selector selects its template's labels (as the API defaults it).
        let selector = spec
            .selector
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| spec.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()))
            .unwrap_or_default();
        Workload {
            kind: Kind::ReplicationController,
            meta: rc.metadata.clone(),
            replicas: spec.replicas.unwrap_or(1),
            selector: PodSelector::Map(selector),
            template: spec.template,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            status: ReplicaStatus {
                replicas: st.replicas,
                fully_labeled_replicas: st.fully_labeled_replicas.unwrap_or(0),
                ready_replicas: st.ready_replicas.unwrap_or(0),
                available_replicas: st.available_replicas.unwrap_or(0),
                observed_generation: st.observed_generation.unwrap_or(0),
            },
        }
    }

    fn owner_ref(&self) -> OwnerReference {
        let (api_version, kind) = match self.kind {
            Kind::ReplicaSet => ("apps/v1", "ReplicaSet"),
            Kind::ReplicationController => ("v1", "ReplicationController"),
        };
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: self.meta.name.clone().unwrap_or_default(),
            uid: self.meta.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn object_ref(&self) -> ObjectReference {
        let o = self.owner_ref();
        ObjectReference {
            api_version: Some(o.api_version),
            kind: Some(o.kind),
            name: Some(o.name),
            namespace: self.meta.namespace.clone(),
            uid: Some(o.uid),
            resource_version: self.meta.resource_version.clone(),
            ..Default::default()
        }
    }

    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or("")
    }
}

/// What one sync decided to do about the pod count.
#[derive(Debug, PartialEq, Eq)]
pub enum ScaleAction {
    None,
    Create(usize),
    /// Delete these pods (by name), least valuable first.
    Delete(Vec<String>),
}

/// Decide creations or deletions for `active` pods against `replicas` (pure; unit-tested).
pub fn plan_scale(replicas: i32, active: &[Arc<Pod>]) -> ScaleAction {
    let diff = active.len() as i64 - i64::from(replicas.max(0));
    match diff.cmp(&0) {
        Ordering::Equal => ScaleAction::None,
        Ordering::Less => ScaleAction::Create(((-diff) as usize).min(BURST_REPLICAS)),
        Ordering::Greater => {
            let mut pods: Vec<&Arc<Pod>> = active.iter().collect();
            pods.sort_by(|a, b| deletion_order(a, b));
            ScaleAction::Delete(pods.into_iter().take((diff as usize).min(BURST_REPLICAS)).map(|p| p.name_any()).collect())
        }
    }
}

/// Least valuable first (upstream's ActivePods ordering): unscheduled before scheduled,
/// Pending before Unknown before Running, not ready before ready, ready for less time first,
/// more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let assigned = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase_rank = |p: &Pod| match util::pod_phase(p) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    let ready_since = |p: &Pod| util::pod_ready_condition(p).and_then(|(r, t)| if r { t } else { None });
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
            .unwrap_or(0)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| util::is_pod_ready(a).cmp(&util::is_pod_ready(b)))
        // Both ready: the more recently ready one is less valuable.
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
}

/// Status computed from the owned active pods (pure; unit-tested).
pub fn compute_status(w: &Workload, active: &[Arc<Pod>], now: k8s_openapi::jiff::Timestamp) -> ReplicaStatus {
    let template_labels = w.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut s = ReplicaStatus { replicas: active.len() as i32, observed_generation: w.meta.generation.unwrap_or(0), ..Default::default() };
    for p in active {
        let labels = p.labels();
        if template_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            s.fully_labeled_replicas += 1;
        }
        if util::is_pod_ready(p) {
            s.ready_replicas += 1;
            if util::is_pod_available(p, w.min_ready_seconds, now) {
                s.available_replicas += 1;
            }
        }
    }
    s
}

pub struct ReplicaSetController {
    kind: Kind,
    client: Client,
    pods: Arc<Informer<Pod>>,
    rss: Arc<Informer<ReplicaSet>>,
    rcs: Arc<Informer<ReplicationController>>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    events: Events,
}

impl ReplicaSetController {
    pub fn new(ctx: &ControllerContext, kind: Kind) -> Arc<Self> {
        let component = match kind {
            Kind::ReplicaSet => "replicaset-controller",
            Kind::ReplicationController => "replication-controller",
        };
        let c = Arc::new(ReplicaSetController {
            kind,
            client: ctx.client.clone(),
            pods: ctx.informers.get::<Pod>(),
            rss: ctx.informers.get::<ReplicaSet>(),
            rcs: ctx.informers.get::<ReplicationController>(),
            queue: WorkQueue::new(component),
            expectations: Arc::new(Expectations::default()),
            events: Events::new(ctx.client.clone(), component),
        });
        match kind {
            Kind::ReplicaSet => enqueue_on_change_with_expectations(&c.rss, &c.queue, &c.expectations),
            Kind::ReplicationController => enqueue_on_change_with_expectations(&c.rcs, &c.queue, &c.expectations),
        }
        let weak = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            if let Some(c) = weak.upgrade() {
                c.on_pod(ch);
            }
        });
        c
    }

    fn workload(&self, ns: &str, name: &str) -> Option<Workload> {
        match self.kind {
            Kind::ReplicaSet => self.rss.get(ns, name).map(|r| Workload::from_replica_set(&r)),
            Kind::ReplicationController => self.rcs.get(ns, name).map(|r| Workload::from_replication_controller(&r)),
        }
    }

    fn workloads_in(&self, ns: &str) -> Vec<Workload> {
        match self.kind {
            Kind::ReplicaSet => self.rss.list_namespace(ns).iter().map(|r| Workload::from_replica_set(r)).collect(),
            Kind::ReplicationController => {
                self.rcs.list_namespace(ns).iter().map(|r| Workload::from_replication_controller(r)).collect()
            }
        }
    }

    /// The key of the workload of our kind that controls `pod`, if it exists.
    fn owner_key(&self, pod: &Pod) -> Option<String> {
        match self.kind {
            Kind::ReplicaSet => self.rss.controller_key(&pod.metadata),
            Kind::ReplicationController => self.rcs.controller_key(&pod.metadata),
        }
    }

    fn enqueue_matching(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        for w in self.workloads_in(ns) {
            if w.selector.matches(pod.labels()) {
                self.queue.add(key(ns, w.meta.name.as_deref().unwrap_or("")));
            }
        }
    }

    fn on_pod(&self, ch: &Change<Pod>) {
        match ch {
            Change::Added(pod) => {
                if let Some(k) = self.owner_key(pod) {
                    if pod.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(&k, pod.metadata.uid.as_deref().unwrap_or(""));
                    } else {
                        self.expectations.creation_observed(&k);
                    }
                    self.queue.add(k);
                } else if controller_ref(&pod.metadata).is_none() {
                    self.enqueue_matching(pod);
                }
            }
            Change::Updated { old, new } => {
                let new_owner = self.owner_key(new);
                if new.metadata.deletion_timestamp.is_some()
                    && let Some(k) = &new_owner
                {
                    self.expectations.deletion_observed(k, new.metadata.uid.as_deref().unwrap_or(""));
                }
                let old_owner = self.owner_key(old);
                if old_owner.is_some() && old_owner != new_owner {
                    self.queue.add(old_owner.clone().unwrap_or_default());
                }
                if let Some(k) = new_owner {
                    // Availability changes once minReadySeconds pass after becoming ready.
                    if !util::is_pod_ready(old) && util::is_pod_ready(new) {
                        let (ns, name) = split_key(&k);
                        if let Some(w) = self.workload(ns, name)
                            && w.min_ready_seconds > 0
                        {
                            self.queue.add_after(k.clone(), Duration::from_secs(w.min_ready_seconds as u64 + 1));
                        }
                    }
                    self.queue.add(k);
                } else if controller_ref(&new.metadata).is_none() && (old.labels() != new.labels() || controller_ref(&old.metadata).is_some()) {
                    self.enqueue_matching(new);
                } else if controller_ref(&new.metadata).is_none() && old.metadata.resource_version == new.metadata.resource_version {
                    // A re-list: orphans get another chance at adoption.
                    self.enqueue_matching(new);
                }
            }
            Change::Deleted(pod) => {
                if let Some(k) = self.owner_key(pod) {
                    self.expectations.deletion_observed(&k, pod.metadata.uid.as_deref().unwrap_or(""));
                    self.queue.add(k);
                }
            }
        }
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.pods.wait_synced().await;
        match self.kind {
            Kind::ReplicaSet => self.rss.wait_synced().await,
            Kind::ReplicationController => self.rcs.wait_synced().await,
        }
        info!(controller = self.queue.name(), "caches synced; starting workers");
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function: claim pods, create or delete to reach `replicas`, write status.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(w) = self.workload(ns, name) else {
            self.expectations.delete(key);
            return Ok(None);
        };
        let needs_sync = self.expectations.satisfied(key);
        let deleting = w.meta.deletion_timestamp.is_some();

        // Claim: adopt matching orphans, release owned pods that no longer match.
        let mut owned: Vec<Arc<Pod>> = Vec::new();
        for pod in self.pods.list_namespace(ns) {
            match controller_ref(&pod.metadata) {
                Some(r) if r.uid == w.uid() => {
                    if w.selector.matches(pod.labels()) {
                        owned.push(pod);
                    } else if !deleting {
                        self.release(&w, &pod).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if !deleting && pod.metadata.deletion_timestamp.is_none() && w.selector.matches(pod.labels()) {
                        if let Some(p) = self.adopt(&w, &pod).await? {
                            owned.push(Arc::new(p));
                        }
                    }
                }
            }
        }
        let active: Vec<Arc<Pod>> = owned.into_iter().filter(|p| is_pod_active(p)).collect();

        let mut sync_err = None;
        if needs_sync && !deleting {
            if let Err(e) = self.manage_replicas(key, &w, &active).await {
                sync_err = Some(e);
            }
        }

        let status = compute_status(&w, &active, util::now());
        if status != w.status {
            self.write_status(&w, &status).await?;
        }
        if let Some(e) = sync_err {
            return Err(e);
        }
        if w.min_ready_seconds > 0 && status.ready_replicas == w.replicas && status.available_replicas != w.replicas {
            return Ok(Some(Duration::from_secs(w.min_ready_seconds as u64)));
        }
        Ok(None)
    }

    async fn manage_replicas(&self, key: &str, w: &Workload, active: &[Arc<Pod>]) -> Result<(), Error> {
        let ns = w.meta.namespace.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match plan_scale(w.replicas, active) {
            ScaleAction::None => Ok(()),
            ScaleAction::Create(n) => {
                self.expectations.expect_creations(key, n);
                let template = w.template.clone().unwrap_or_default();
                let tmeta = template.metadata.clone().unwrap_or_default();
                let pod = Pod {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{}-", w.meta.name.as_deref().unwrap_or(""))),
                        namespace: Some(ns.clone()),
                        labels: tmeta.labels.clone(),
                        annotations: tmeta.annotations.clone(),
                        finalizers: tmeta.finalizers.clone(),
                        owner_references: Some(vec![w.owner_ref()]),
                        ..Default::default()
                    },
                    spec: template.spec.clone(),
                    status: None,
                };
                debug!(key, n, "creating pods");
                // Slow start: batches of 1, 2, 4, ... so a systematic failure costs one call.
                let (mut created, mut batch) = (0usize, 1usize);
                while created < n {
                    let size = batch.min(n - created);
                    let pp = PostParams::default();
                    let results = join_all((0..size).map(|_| pods.create(&pp, &pod))).await;
                    let mut failed = None;
                    for r in results {
                        match r {
                            Ok(p) => self.events.normal(w.object_ref(), "SuccessfulCreate", format!("Created pod: {}", p.name_any())),
                            Err(e) => {
                                self.expectations.creation_observed(key);
                                self.events.warning(w.object_ref(), "FailedCreate", format!("Error creating: {e}"));
                                failed = Some(e);
                            }
                        }
                    }
                    created += size;
                    if let Some(e) = failed {
                        self.expectations.lower_creations(key, n - created);
                        return Err(e.into());
                    }
                    batch *= 2;
                }
                Ok(())
            }
            ScaleAction::Delete(names) => {
                let uids: Vec<String> = active
                    .iter()
                    .filter(|p| names.contains(&p.name_any()))
                    .filter_map(|p| p.metadata.uid.clone())
                    .collect();
                self.expectations.expect_deletions(key, uids);
                let results = join_all(names.iter().map(|n| {
                    let uid = active.iter().find(|p| &p.name_any() == n).and_then(|p| p.metadata.uid.clone());
                    let dp = DeleteParams { preconditions: Some(Preconditions { uid: uid.clone(), resource_version: None }), ..Default::default() };
                    let pods = pods.clone();
                    async move { (n.clone(), uid, pods.delete(n, &dp).await) }
                }))
                .await;
                let mut err = None;
                for (n, uid, r) in results {
                    match r {
                        Ok(_) => self.events.normal(w.object_ref(), "SuccessfulDelete", format!("Deleted pod: {n}")),
                        Err(e) => {
                            self.expectations.deletion_observed(key, uid.as_deref().unwrap_or(""));
                            if !util::is_status(&e, 404) {
                                self.events.warning(w.object_ref(), "FailedDelete", format!("Error deleting: {e}"));
                                err = Some(e);
                            }
                        }
                    }
                }
                err.map_or(Ok(()), |e| Err(e.into()))
            }
        }
    }

    async fn adopt(&self, w: &Workload, pod: &Pod) -> Result<Option<Pod>, Error> {
        let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
        refs.push(w.owner_ref());
        self.patch_owner_refs(pod, refs).await
    }

    async fn release(&self, w: &Workload, pod: &Pod) -> Result<(), Error> {
        let refs: Vec<OwnerReference> =
            pod.metadata.owner_references.clone().unwrap_or_default().into_iter().filter(|r| r.uid != w.uid()).collect();
        self.patch_owner_refs(pod, refs).await.map(|_| ())
    }

    async fn patch_owner_refs(&self, pod: &Pod, refs: Vec<OwnerReference>) -> Result<Option<Pod>, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or(""));
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod.metadata.resource_version, "uid": pod.metadata.uid}});
        match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_status(&self, w: &Workload, s: &ReplicaStatus) -> Result<(), Error> {
        let ns = w.meta.namespace.as_deref().unwrap_or("");
        let name = w.meta.name.as_deref().unwrap_or("");
        let patch = json!({"status": {
            "replicas": s.replicas,
            "fullyLabeledReplicas": s.fully_labeled_replicas,
            "readyReplicas": s.ready_replicas,
            "availableReplicas": s.available_replicas,
            "observedGeneration": s.observed_generation,
        }});
        let pp = PatchParams::default();
        let r = match self.kind {
            Kind::ReplicaSet => Api::<ReplicaSet>::namespaced(self.client.clone(), ns).patch_status(name, &pp, &Patch::Merge(&patch)).await.map(|_| ()),
            Kind::ReplicationController => {
                Api::<ReplicationController>::namespaced(self.client.clone(), ns).patch_status(name, &pp, &Patch::Merge(&patch)).await.map(|_| ())
            }
        };
        match r {
            Err(e) if util::is_status(&e, 404) => Ok(()),
            r => r.map_err(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: node.map(Into::into), ..Default::default() }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(Timestamp::from_second(created + 1).unwrap())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn rs(replicas: i32) -> Workload {
        Workload::from_replica_set(&ReplicaSet {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), generation: Some(3), ..Default::default() },
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector { match_labels: Some(BTreeMap::from([("app".into(), "web".into())])), ..Default::default() },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(BTreeMap::from([("app".into(), "web".into()), ("v".into(), "1".into())])), ..Default::default() }),
                    spec: None,
                }),
                min_ready_seconds: Some(0),
            }),
            status: None,
        })
    }

    #[test]
    fn scale_up_creates_the_missing_count() {
        let pods = vec![pod("a", Some("n"), "Running", true, 10)];
        assert_eq!(plan_scale(3, &pods), ScaleAction::Create(2));
        assert_eq!(plan_scale(1, &pods), ScaleAction::None);
        assert_eq!(plan_scale(5000, &[]), ScaleAction::Create(BURST_REPLICAS));
    }

    #[test]
    fn scale_down_removes_least_valuable_first() {
        let pods = vec![
            pod("running-ready-old", Some("n"), "Running", true, 10),
            pod("unscheduled", None, "Pending", false, 5),
            pod("running-not-ready", Some("n"), "Running", false, 1),
            pod("pending", Some("n"), "Pending", false, 2),
            pod("running-ready-new", Some("n"), "Running", true, 20),
        ];
        assert_eq!(
            plan_scale(1, &pods),
            ScaleAction::Delete(vec!["unscheduled".into(), "pending".into(), "running-not-ready".into(), "running-ready-new".into()])
        );
    }

    #[test]
    fn status_counts_ready_available_and_labels() {
        let w = rs(3);
        let mut full = (*pod("a", Some("n"), "Running", true, 10)).clone();
        full.metadata.labels.as_mut().unwrap().insert("v".into(), "1".into());
        let pods = vec![Arc::new(full), pod("b", Some("n"), "Running", true, 10), pod("c", None, "Pending", false, 10)];
        let s = compute_status(&w, &pods, Timestamp::from_second(100).unwrap());
        assert_eq!(s, ReplicaStatus { replicas: 3, fully_labeled_replicas: 1, ready_replicas: 2, available_replicas: 2, observed_generation: 3 });
        let mut w2 = w.clone();
        w2.min_ready_seconds = 1000;
        assert_eq!(compute_status(&w2, &pods, Timestamp::from_second(100).unwrap()).available_replicas, 0);
    }

    #[test]
    fn rc_selector_defaults_to_template_labels() {
        let rc = ReplicationController {
            metadata: ObjectMeta { name: Some("rc".into()), ..Default::default() },
            spec: Some(k8s_openapi::api::core::v1::ReplicationControllerSpec {
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(BTreeMap::from([("app".into(), "x".into())])), ..Default::default() }),
                    spec: None,
                }),
                ..Default::default()
            }),
            status: None,
        };
        let w = Workload::from_replication_controller(&rc);
        assert_eq!(w.replicas, 1);
        assert!(w.selector.matches(&BTreeMap::from([("app".into(), "x".into())])));
        assert!(!w.selector.matches(&BTreeMap::from([("app".into(), "y".into())])));
        assert_eq!(w.owner_ref().kind, "ReplicationController");
    }
}
