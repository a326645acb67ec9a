//! The Deployment controller: one ReplicaSet per pod template (named and labelled with the
//! template's `pod-template-hash`), rolled over with RollingUpdate (maxSurge/maxUnavailable)
//! or Recreate, with revision annotations, `revisionHistoryLimit` cleanup, paused deployments,
//! proportional scaling, and the Progressing/Available conditions that `kubectl rollout` reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{debug, info};

use crate::informer::{Change, Informer, enqueue_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, object_ref, owner_ref, split_key};
use crate::{ControllerContext, Error};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
const SKIP_COPY: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

// Condition reasons, as upstream.
const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const RS_UPDATED: &str = "ReplicaSetUpdated";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const PAUSED: &str = "DeploymentPaused";
const RESUMED: &str = "DeploymentResumed";

// ---------------------------------------------------------------------------------------------
// Pure helpers (unit-tested)
// ---------------------------------------------------------------------------------------------

/// 32-bit FNV-1a.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// apimachinery's SafeEncodeString: no vowels and no look-alike characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes().map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char).collect()
}

/// Drop nulls, empty objects and empty lists (Go's `omitempty` view of equality), so a
/// client that writes `resources: {}` does not make an equal template look different.
fn normalize(v: serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m.into_iter().filter_map(|(k, v)| normalize(v).map(|v| (k, v))).collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a.into_iter().map(|v| normalize(v).unwrap_or(Value::Object(Default::default()))).collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        v => Some(v),
    }
}

fn canonical(template: &PodTemplateSpec) -> serde_json::Value {
    normalize(serde_json::to_value(template).unwrap_or_default()).unwrap_or_default()
}

/// The `pod-template-hash` of a template (and the collision count, when non-zero).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(&canonical(template)).unwrap_or_default();
    // Zero means no collision yet: same hash as unset.
    if let Some(c) = collision_count.filter(|c| *c != 0) {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Templates equal once the `pod-template-hash` label is ignored.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(m) = t.metadata.as_mut() {
            if let Some(l) = m.labels.as_mut() {
                l.remove(POD_TEMPLATE_HASH);
                if l.is_empty() {
                    m.labels = None;
                }
            }
        }
        canonical(&t)
    };
    strip(a) == strip(b)
}

/// An int-or-percent against `total` (percentages rounded up or down).
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let p: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let x = p * f64::from(total) / 100.0;
            if round_up { x.ceil() as i32 } else { x.floor() as i32 }
        }
    }
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// (maxSurge, maxUnavailable) resolved against the desired count; never both zero.
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = replicas(d);
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge_v = ru.map_or(Some(&default), |r| r.max_surge.as_ref());
    let unavail_v = ru.map_or(Some(&default), |r| r.max_unavailable.as_ref());
    let surge = scaled_value(surge_v.or(Some(&default)), desired, true);
    let mut unavailable = scaled_value(unavail_v.or(Some(&default)), desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) { 0 } else { resolve_fenceposts(d).0 }
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if is_recreate(d) || replicas(d) == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(replicas(d))
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations().get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn st(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (s.replicas, s.ready_replicas.unwrap_or(0), s.available_replicas.unwrap_or(0))
}

/// The size the new ReplicaSet may grow to now (RollingUpdate), given the pods that exist
/// (`current` counts every ReplicaSet's pods, at least its spec).
pub fn new_rs_new_replicas(d: &Deployment, current: i32, new_rs_replicas: i32) -> i32 {
    if is_recreate(d) {
        return replicas(d);
    }
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return new_rs_replicas;
    }
    let up = (max_total - current).min(replicas(d) - new_rs_replicas).max(0);
    new_rs_replicas + up
}

pub fn new_condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    let now = util::now_time();
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

pub fn get_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Upstream's SetDeploymentCondition: no-op when status and reason are unchanged; keeps the
/// transition time when only the reason changes.
pub fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get_condition(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &c.type_);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
    }
}

fn has_progress_deadline(d: &Deployment) -> bool {
    // Unset means the API default (600s).
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600) != i32::MAX
}

pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let r = replicas(d);
    s.updated_replicas.unwrap_or(0) == r
        && s.replicas.unwrap_or(0) == r
        && s.available_replicas.unwrap_or(0) == r
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

fn deployment_timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get_condition(s, "Progressing") else { return false };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => {
            let deadline = i64::from(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600));
            c.last_update_time.as_ref().is_some_and(|t| t.0.as_second() + deadline < now.as_second())
        }
    }
}

/// Status from the ReplicaSets (upstream's calculateStatus).
pub fn calculate_status(d: &Deployment, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> DeploymentStatus {
    let available: i32 = all.iter().map(|r| st(r).2).sum();
    let total: i32 = all.iter().map(spec_replicas).sum();
    let old = d.status.clone().unwrap_or_default();
    let mut s = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|r| st(r).0).sum()),
        updated_replicas: Some(new_rs.map_or(0, |r| st(r).0)),
        ready_replicas: Some(all.iter().map(|r| st(r).1).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(&mut s, new_condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into()));
    } else {
        set_condition(&mut s, new_condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into()));
    }
    s
}

fn annotation(rs: &ReplicaSet, k: &str) -> Option<String> {
    rs.annotations().get(k).cloned()
}

/// Copy the deployment's annotations and set the revision on `rs` (upstream's
/// SetNewReplicaSetAnnotations). Returns whether anything changed.
pub fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: &str, exists: bool) -> bool {
    let anns = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in d.annotations() {
        if SKIP_COPY.contains(&k.as_str()) {
            continue;
        }
        if anns.get(k) != Some(v) {
            anns.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let old_rev = anns.get(REVISION).cloned().unwrap_or_default();
    let old_i: i64 = old_rev.parse().unwrap_or(0);
    let new_i: i64 = new_revision.parse().unwrap_or(0);
    if old_i < new_i {
        anns.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if !old_rev.is_empty() {
            let hist = match anns.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old_rev}"),
                _ => old_rev.clone(),
            };
            anns.insert(REVISION_HISTORY.into(), hist);
        }
    }
    if !exists {
        anns.insert(DESIRED_REPLICAS.into(), replicas(d).to_string());
        anns.insert(MAX_REPLICAS.into(), (replicas(d) + max_surge(d)).to_string());
        changed = true;
    }
    changed
}

// ---------------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------------

pub struct DeploymentController {
    client: Client,
    deployments: Arc<Informer<Deployment>>,
    rss: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
    events: Events,
}

impl DeploymentController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(DeploymentController {
            client: ctx.client.clone(),
            deployments: ctx.informers.get::<Deployment>(),
            rss: ctx.informers.get::<ReplicaSet>(),
            pods: ctx.informers.get::<Pod>(),
            queue: WorkQueue::new("deployment"),
            events: Events::new(ctx.client.clone(), "deployment-controller"),
        });
        enqueue_on_change(&c.deployments, &c.queue);
        let weak = Arc::downgrade(&c);
        c.rss.add_handler(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            match ch {
                Change::Added(rs) | Change::Deleted(rs) => c.enqueue_for_rs(rs, true),
                Change::Updated { old, new } => {
                    c.enqueue_for_rs(old, false);
                    c.enqueue_for_rs(new, old.labels() != new.labels() || old.metadata.resource_version == new.metadata.resource_version);
                }
            }
        });
        let weak = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            // A Recreate rollout waits for the old pods to be gone.
            if let Change::Deleted(p) = ch
                && let Some(r) = controller_ref(&p.metadata)
                && r.kind == "ReplicaSet"
                && let Some(rs) = c.rss.get(p.metadata.namespace.as_deref().unwrap_or(""), &r.name)
            {
                c.enqueue_for_rs(&rs, false);
            }
        });
        c
    }

    fn enqueue_for_rs(&self, rs: &ReplicaSet, orphans_too: bool) {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        match controller_ref(&rs.metadata) {
            Some(_) => {
                if let Some(k) = self.deployments.controller_key(&rs.metadata) {
                    self.queue.add(k);
                }
            }
            None if orphans_too => {
                for d in self.deployments.list_namespace(ns) {
                    if d.spec.as_ref().is_some_and(|s| util::selector_matches(&s.selector, rs.labels())) {
                        self.queue.add(util::key_of(d.as_ref()));
                    }
                }
            }
            None => {}
        }
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.deployments.wait_synced().await;
        self.rss.wait_synced().await;
        self.pods.wait_synced().await;
        info!("deployment controller: caches synced; starting workers");
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Active pods of a ReplicaSet in the cache: (count, available for minReadySeconds).
    fn rs_pods(&self, rs: &ReplicaSet) -> (i32, i32) {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let uid = rs.metadata.uid.as_deref().unwrap_or("");
        let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let now = util::now();
        let (mut n, mut avail) = (0, 0);
        for p in self.pods.list_namespace(ns) {
            if controller_ref(&p.metadata).is_some_and(|r| r.uid == uid) && util::is_pod_active(&p) {
                n += 1;
                if util::is_pod_available(&p, min_ready, now) {
                    avail += 1;
                }
            }
        }
        (n, avail)
    }

    /// Available replicas of `rs` for scale-down decisions: the least of its status, the pods
    /// in the cache and its spec, so a lagging cache can never overstate availability.
    fn safe_available(&self, rs: &ReplicaSet) -> i32 {
        st(rs).2.min(self.rs_pods(rs).1).min(spec_replicas(rs))
    }

    /// Pods that exist or will exist for `rs`: at least its spec, plus pods not yet deleted.
    fn pod_count(&self, rs: &ReplicaSet) -> i32 {
        spec_replicas(rs).max(self.rs_pods(rs).0)
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(d) = self.deployments.get(ns, name) else { return Ok(None) };
        let mut d = (*d).clone();
        let spec = d.spec.clone().unwrap_or_default();
        if util::is_empty_selector(&spec.selector) {
            self.events.warning(object_ref(&d), "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.");
            if d.status.as_ref().and_then(|s| s.observed_generation) < d.metadata.generation {
                let patch = json!({"status": {"observedGeneration": d.metadata.generation}});
                Api::<Deployment>::namespaced(self.client.clone(), ns).patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            return Ok(None);
        }
        let mut rs_list = self.claim_replica_sets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = self.split(&d, &rs_list);
            let all: Vec<ReplicaSet> = old.into_iter().chain(new_rs).collect();
            let new_rs = self.find_new(&d, &all);
            self.sync_status_only(&mut d, &all, new_rs.as_ref()).await?;
            return Ok(None);
        }
        self.check_paused_conditions(&mut d).await?;
        if spec.paused == Some(true) {
            self.sync(&mut d, &mut rs_list).await?;
            return Ok(None);
        }
        if self.is_scaling_event(&d, &rs_list) {
            self.sync(&mut d, &mut rs_list).await?;
            return Ok(None);
        }
        if is_recreate(&d) { self.rollout_recreate(&mut d, rs_list).await } else { self.rollout_rolling(&mut d, rs_list).await }
    }

    /// ReplicaSets owned by `d`; adopt matching orphans, release owned ones that stop matching.
    async fn claim_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        let ns = d.metadata.namespace.as_deref().unwrap_or("");
        let uid = d.metadata.uid.as_deref().unwrap_or("");
        let selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for rs in self.rss.list_namespace(ns) {
            let matches = util::selector_matches(&selector, rs.labels());
            match controller_ref(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        out.push((*rs).clone());
                    } else if d.metadata.deletion_timestamp.is_none() {
                        let refs: Vec<_> = rs.owner_references().iter().filter(|r| r.uid != uid).cloned().collect();
                        self.patch_rs_owners(&rs, json!(refs)).await?;
                    }
                }
                Some(_) => {}
                None if matches && d.metadata.deletion_timestamp.is_none() && rs.metadata.deletion_timestamp.is_none() => {
                    let mut refs = rs.owner_references().to_vec();
                    refs.push(owner_ref(d));
                    if let Some(rs) = self.patch_rs_owners(&rs, json!(refs)).await? {
                        out.push(rs);
                    }
                }
                None => {}
            }
        }
        Ok(out)
    }

    async fn patch_rs_owners(&self, rs: &ReplicaSet, refs: serde_json::Value) -> Result<Option<ReplicaSet>, Error> {
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.metadata.resource_version, "uid": rs.metadata.uid}});
        match self.rs_api(rs.metadata.namespace.as_deref().unwrap_or("")).patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The oldest ReplicaSet whose template equals the deployment's (ignoring the hash label).
    fn find_new(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> Option<ReplicaSet> {
        let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let mut sorted: Vec<&ReplicaSet> = rs_list.iter().collect();
        sorted.sort_by_key(|r| (r.metadata.creation_timestamp.as_ref().map(|t| t.0), r.name_any()));
        sorted.into_iter().find(|r| r.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| equal_ignore_hash(t, &template))).cloned()
    }

    fn split(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let new_rs = self.find_new(d, rs_list);
        let old = rs_list.iter().filter(|r| new_rs.as_ref().is_none_or(|n| n.metadata.uid != r.metadata.uid)).cloned().collect();
        (new_rs, old)
    }

    fn is_scaling_event(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> bool {
        let want = replicas(d).to_string();
        rs_list
            .iter()
            .filter(|r| spec_replicas(r) > 0)
            .any(|r| annotation(r, DESIRED_REPLICAS).is_some_and(|v| v != want))
    }

    /// Find (and with `create`, create) the new ReplicaSet; sync revision annotations.
    async fn get_all_and_sync_revision(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), Error> {
        let (existing, old) = self.split(d, rs_list);
        let max_old = old.iter().map(revision).max().unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        if let Some(rs) = existing {
            let mut copy = rs.clone();
            let ann_changed = set_new_rs_annotations(d, &mut copy, &new_revision, true);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let mrs_changed = copy.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0) != min_ready.unwrap_or(0);
            let rs = if ann_changed || mrs_changed {
                if let Some(s) = copy.spec.as_mut() {
                    s.min_ready_seconds = min_ready;
                }
                self.rs_api(&ns).replace(&copy.name_any(), &PostParams::default(), &copy).await?
            } else {
                rs
            };
            let rev = annotation(&rs, REVISION).unwrap_or_default();
            self.set_deployment_revision(d, &rev).await?;
            let mut status = d.status.clone().unwrap_or_default();
            if has_progress_deadline(d) && get_condition(&status, "Progressing").is_none() {
                set_condition(&mut status, new_condition("Progressing", "True", FOUND_NEW_RS, format!("Found new replica set {:?}", rs.name_any())));
                self.write_status(d, status).await?;
            }
            return Ok((Some(rs), old));
        }
        if !create {
            return Ok((None, old));
        }
        // Create the new ReplicaSet.
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        let tmeta = template.metadata.get_or_insert_with(Default::default);
        tmeta.labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector: LabelSelector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let all_current: i32 = old.iter().map(|r| self.pod_count(r)).sum();
        let new_replicas = new_rs_new_replicas(d, all_current, 0);
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{}", d.name_any(), hash)),
                namespace: Some(ns.clone()),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![owner_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec { replicas: Some(new_replicas), selector, template: Some(template), min_ready_seconds: spec.min_ready_seconds }),
            status: None,
        };
        set_new_rs_annotations(d, &mut new_rs, &new_revision, false);
        let created = match self.rs_api(&ns).create(&PostParams::default(), &new_rs).await {
            Ok(rs) => rs,
            Err(e) if util::is_status(&e, 409) => {
                // Ours already (a lagging cache) unless the template differs: a hash collision.
                let existing = self.rs_api(&ns).get(&new_rs.name_any()).await?;
                let ours = controller_ref(&existing.metadata).is_some_and(|r| Some(r.uid.as_str()) == d.metadata.uid.as_deref());
                let same = existing.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| equal_ignore_hash(t, &spec.template));
                if ours && same {
                    return Ok((Some(existing), old));
                }
                let mut status = d.status.clone().unwrap_or_default();
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                self.write_status(d, status).await?;
                return Err(Error::Invalid(format!("hash collision for ReplicaSet {}", new_rs.name_any())));
            }
            Err(e) => {
                let mut status = d.status.clone().unwrap_or_default();
                set_condition(&mut status, new_condition("ReplicaFailure", "True", "FailedCreate", e.to_string()));
                self.write_status(d, status).await?;
                return Err(e.into());
            }
        };
        if new_replicas > 0 {
            self.events.normal(
                object_ref(d),
                "ScalingReplicaSet",
                format!("Scaled up replica set {} from 0 to {}", created.name_any(), new_replicas),
            );
        }
        self.set_deployment_revision(d, &new_revision).await?;
        if has_progress_deadline(d) {
            let mut status = d.status.clone().unwrap_or_default();
            set_condition(&mut status, new_condition("Progressing", "True", NEW_RS_CREATED, format!("Created new replica set {:?}", created.name_any())));
            self.write_status(d, status).await?;
        }
        Ok((Some(created), old))
    }

    async fn set_deployment_revision(&self, d: &mut Deployment, rev: &str) -> Result<(), Error> {
        if rev.is_empty() || d.annotations().get(REVISION).map(String::as_str) == Some(rev) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), d.metadata.namespace.as_deref().unwrap_or(""));
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        let updated = api.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        d.metadata.annotations = updated.metadata.annotations;
        Ok(())
    }

    async fn write_status(&self, d: &mut Deployment, status: DeploymentStatus) -> Result<(), Error> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), d.metadata.namespace.as_deref().unwrap_or(""));
        let patch = json!({"status": status});
        api.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        d.status = Some(status);
        Ok(())
    }

    /// Scale `rs` to `to`, keeping the desired/max annotations current. Returns whether the
    /// size changed.
    async fn scale_rs(&self, d: &Deployment, rs: &mut ReplicaSet, to: i32) -> Result<bool, Error> {
        let from = spec_replicas(rs);
        let desired = replicas(d).to_string();
        let max = (replicas(d) + max_surge(d)).to_string();
        let size_changed = from != to;
        let ann_changed = annotation(rs, DESIRED_REPLICAS).as_deref() != Some(desired.as_str())
            || annotation(rs, MAX_REPLICAS).as_deref() != Some(max.as_str());
        if !size_changed && !ann_changed {
            return Ok(false);
        }
        let mut copy = rs.clone();
        if let Some(s) = copy.spec.as_mut() {
            s.replicas = Some(to);
        }
        let anns = copy.metadata.annotations.get_or_insert_with(BTreeMap::new);
        anns.insert(DESIRED_REPLICAS.into(), desired);
        anns.insert(MAX_REPLICAS.into(), max);
        let updated = self.rs_api(rs.metadata.namespace.as_deref().unwrap_or("")).replace(&rs.name_any(), &PostParams::default(), &copy).await?;
        if size_changed {
            let op = if to > from { "up" } else { "down" };
            self.events.normal(object_ref(d), "ScalingReplicaSet", format!("Scaled {op} replica set {} from {from} to {to}", rs.name_any()));
            debug!(rs = %rs.name_any(), from, to, "scaled replica set");
        }
        *rs = updated;
        Ok(size_changed)
    }

    async fn rollout_rolling(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        let (new_rs, mut old) = self.get_all_and_sync_revision(d, &rs_list, true).await?;
        let Some(mut new_rs) = new_rs else { return Ok(None) };
        // Scale up the new ReplicaSet as far as maxSurge allows.
        let want = replicas(d);
        let cur_new = spec_replicas(&new_rs);
        if cur_new != want {
            let target = if cur_new > want {
                want
            } else {
                let current: i32 = old.iter().map(|r| self.pod_count(r)).sum::<i32>() + self.pod_count(&new_rs);
                new_rs_new_replicas(d, current, cur_new)
            };
            if self.scale_rs(d, &mut new_rs, target).await? {
                let all: Vec<ReplicaSet> = old.iter().cloned().chain([new_rs.clone()]).collect();
                return self.sync_rollout_status(d, &all, Some(&new_rs)).await;
            }
        }
        // Scale down old ReplicaSets as far as maxUnavailable allows.
        if self.reconcile_old(d, &mut old, &new_rs).await? {
            let all: Vec<ReplicaSet> = old.iter().cloned().chain([new_rs.clone()]).collect();
            return self.sync_rollout_status(d, &all, Some(&new_rs)).await;
        }
        let all: Vec<ReplicaSet> = old.iter().cloned().chain([new_rs.clone()]).collect();
        if deployment_complete(d, d.status.as_ref().unwrap_or(&Default::default())) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new_rs)).await
    }

    async fn reconcile_old(&self, d: &Deployment, old: &mut [ReplicaSet], new_rs: &ReplicaSet) -> Result<bool, Error> {
        let old_count: i32 = old.iter().map(spec_replicas).sum();
        if old_count == 0 {
            return Ok(false);
        }
        let all_count: i32 = old_count + spec_replicas(new_rs);
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = spec_replicas(new_rs) - self.safe_available(new_rs);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old replicas go first: they do not count toward availability anyway.
        old.sort_by_key(|r| (r.metadata.creation_timestamp.as_ref().map(|t| t.0), r.name_any()));
        let mut cleaned = 0;
        for rs in old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let sr = spec_replicas(rs);
            if sr == 0 {
                continue;
            }
            let unhealthy = sr - self.safe_available(rs);
            if unhealthy <= 0 {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(unhealthy);
            self.scale_rs(d, rs, sr - down).await?;
            cleaned += down;
        }
        // Then healthy ones, as long as availability stays above the minimum.
        let available: i32 = old.iter().map(|r| self.safe_available(r)).sum::<i32>() + self.safe_available(new_rs);
        let mut scaled = 0;
        if available > min_available {
            let total = (available - min_available).min(max_scaled_down - cleaned);
            for rs in old.iter_mut() {
                if scaled >= total {
                    break;
                }
                let sr = spec_replicas(rs);
                if sr == 0 {
                    continue;
                }
                let down = sr.min(total - scaled);
                self.scale_rs(d, rs, sr - down).await?;
                scaled += down;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    async fn rollout_recreate(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        let (new_rs, mut old) = self.get_all_and_sync_revision(d, &rs_list, false).await?;
        let mut scaled = false;
        for rs in old.iter_mut().filter(|r| spec_replicas(r) > 0) {
            scaled |= self.scale_rs(d, rs, 0).await?;
        }
        let all: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        if scaled {
            return self.sync_rollout_status(d, &all, new_rs.as_ref()).await;
        }
        // Wait until no old pod runs.
        let old_running = old.iter().any(|r| st(r).0 > 0 || self.rs_pods(r).0 > 0);
        if old_running {
            return self.sync_rollout_status(d, &all, new_rs.as_ref()).await;
        }
        let mut new_rs = match new_rs {
            Some(r) => r,
            None => match self.get_all_and_sync_revision(d, &rs_list, true).await?.0 {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        self.scale_rs(d, &mut new_rs, replicas(d)).await?;
        let all: Vec<ReplicaSet> = old.iter().cloned().chain([new_rs.clone()]).collect();
        if deployment_complete(d, d.status.as_ref().unwrap_or(&Default::default())) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new_rs)).await
    }

    /// Scaling without a rollout (paused deployments, replica count changes): proportional.
    async fn sync(&self, d: &mut Deployment, rs_list: &mut [ReplicaSet]) -> Result<(), Error> {
        let (new_rs, mut old) = self.get_all_and_sync_revision(d, rs_list, false).await?;
        let mut new_rs = new_rs;
        self.scale(d, &mut new_rs, &mut old).await?;
        if d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
            self.cleanup(d, &old).await?;
        }
        let all: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        self.sync_status_only(d, &all, new_rs.as_ref()).await
    }

    async fn scale(&self, d: &Deployment, new_rs: &mut Option<ReplicaSet>, old: &mut [ReplicaSet]) -> Result<(), Error> {
        let want = replicas(d);
        let active_count = old.iter().chain(new_rs.iter()).filter(|r| spec_replicas(r) > 0).count();
        // Only one active (or none: the newest) ReplicaSet: it gets the full count.
        if active_count <= 1 {
            let target: Option<&mut ReplicaSet> = if active_count == 1 {
                match new_rs.as_mut().filter(|r| spec_replicas(r) > 0) {
                    Some(r) => Some(r),
                    None => old.iter_mut().find(|r| spec_replicas(r) > 0),
                }
            } else if new_rs.is_some() {
                new_rs.as_mut()
            } else {
                old.iter_mut().max_by_key(|r| (r.metadata.creation_timestamp.as_ref().map(|t| t.0), r.name_any()))
            };
            if let Some(rs) = target
                && spec_replicas(rs) != want
            {
                self.scale_rs(d, rs, want).await?;
            }
            return Ok(());
        }
        // The new ReplicaSet is saturated: old ones go to zero.
        if let Some(n) = new_rs.as_ref()
            && spec_replicas(n) == want
            && annotation(n, DESIRED_REPLICAS) == Some(want.to_string())
            && st(n).2 == want
        {
            for rs in old.iter_mut().filter(|r| spec_replicas(r) > 0) {
                self.scale_rs(d, rs, 0).await?;
            }
            return Ok(());
        }
        if is_recreate(d) {
            return Ok(());
        }
        // Proportional scaling across the active ReplicaSets.
        let total: i32 = old.iter().chain(new_rs.iter()).map(spec_replicas).sum();
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let to_add = allowed - total;
        if to_add == 0 {
            return Ok(());
        }
        let mut all: Vec<&mut ReplicaSet> = old.iter_mut().chain(new_rs.iter_mut()).filter(|r| spec_replicas(r) > 0).collect();
        // Biggest first; ties: newest first when growing, oldest first when shrinking.
        all.sort_by(|a, b| {
            let (ta, tb) = (a.metadata.creation_timestamp.as_ref().map(|t| t.0), b.metadata.creation_timestamp.as_ref().map(|t| t.0));
            spec_replicas(b).cmp(&spec_replicas(a)).then_with(|| if to_add > 0 { tb.cmp(&ta) } else { ta.cmp(&tb) })
        });
        let mut targets: Vec<i32> = Vec::new();
        let mut added = 0;
        for rs in all.iter() {
            let size = spec_replicas(rs);
            let annotated = annotation(rs, MAX_REPLICAS).and_then(|v| v.parse::<i32>().ok()).filter(|v| *v > 0).unwrap_or(total.max(1));
            let fraction = ((f64::from(size) * f64::from(allowed) / f64::from(annotated)).round() as i32) - size;
            let prop = if to_add > 0 { fraction.min(to_add - added).max(0) } else { fraction.max(to_add - added).min(0) };
            added += prop;
            targets.push(size + prop);
        }
        if let Some(first) = targets.first_mut() {
            *first = (*first + to_add - added).max(0);
        }
        for (rs, t) in all.into_iter().zip(targets) {
            self.scale_rs(d, rs, t).await?;
        }
        Ok(())
    }

    /// Delete old ReplicaSets beyond `revisionHistoryLimit` (only fully scaled-down ones).
    async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> Result<(), Error> {
        let limit = d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10).max(0) as usize;
        let mut cleanable: Vec<&ReplicaSet> = old.iter().filter(|r| r.metadata.deletion_timestamp.is_none()).collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        let diff = cleanable.len() - limit;
        cleanable.sort_by_key(|r| (revision(r), r.metadata.creation_timestamp.as_ref().map(|t| t.0)));
        for rs in cleanable.into_iter().take(diff) {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if st(rs).0 != 0 || spec_replicas(rs) != 0 || rs.metadata.generation.unwrap_or(0) > observed {
                continue;
            }
            info!(rs = %rs.name_any(), "deleting old replica set beyond revisionHistoryLimit");
            let dp = DeleteParams { preconditions: Some(Preconditions { uid: rs.metadata.uid.clone(), resource_version: None }), ..Default::default() };
            match self.rs_api(rs.metadata.namespace.as_deref().unwrap_or("")).delete(&rs.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
        if !has_progress_deadline(d) {
            return Ok(());
        }
        let mut status = d.status.clone().unwrap_or_default();
        let cond = get_condition(&status, "Progressing").cloned();
        if cond.as_ref().is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
            return Ok(());
        }
        let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let paused_cond = cond.as_ref().is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let changed = if paused && !paused_cond {
            set_condition(&mut status, new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused".into()));
            true
        } else if !paused && paused_cond {
            set_condition(&mut status, new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed".into()));
            true
        } else {
            false
        };
        if changed {
            self.write_status(d, status).await?;
        }
        Ok(())
    }

    async fn sync_status_only(&self, d: &mut Deployment, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> Result<(), Error> {
        let s = calculate_status(d, all, new_rs);
        if d.status.as_ref() != Some(&s) {
            self.write_status(d, s).await?;
        }
        Ok(())
    }

    /// Status plus the Progressing condition; returns when to look again for the deadline.
    async fn sync_rollout_status(&self, d: &mut Deployment, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> Result<Option<Duration>, Error> {
        let mut s = calculate_status(d, all, new_rs);
        let now = util::now();
        if !has_progress_deadline(d) {
            remove_condition(&mut s, "Progressing");
        } else {
            let cur = get_condition(&s, "Progressing").cloned();
            let complete_already = s.replicas == s.updated_replicas && cur.as_ref().is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
            let rs_name = new_rs.map(|r| r.name_any()).unwrap_or_default();
            if !complete_already {
                if deployment_complete(d, &s) {
                    set_condition(&mut s, new_condition("Progressing", "True", NEW_RS_AVAILABLE, format!("ReplicaSet {rs_name:?} has successfully progressed.")));
                } else if deployment_progressing(d, &s) {
                    let mut c = new_condition("Progressing", "True", RS_UPDATED, format!("ReplicaSet {rs_name:?} is progressing."));
                    if let Some(cur) = &cur
                        && cur.status == "True"
                    {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut s, "Progressing");
                    s.conditions.get_or_insert_with(Vec::new).push(c);
                } else if deployment_timed_out(d, &s, now) {
                    set_condition(&mut s, new_condition("Progressing", "False", TIMED_OUT, format!("ReplicaSet {rs_name:?} has timed out progressing.")));
                }
            }
        }
        if d.status.as_ref() == Some(&s) {
            return Ok(self.requeue_stuck(d, &s, now));
        }
        if let Some(c) = get_condition(&s, "Progressing")
            && c.reason.as_deref() == Some(TIMED_OUT)
            && get_condition(d.status.as_ref().unwrap_or(&Default::default()), "Progressing").and_then(|c| c.reason.clone()).as_deref() != Some(TIMED_OUT)
        {
            self.events.warning(object_ref(d), TIMED_OUT, format!("Deployment {:?} has timed out progressing.", d.name_any()));
        }
        self.write_status(d, s).await?;
        Ok(None)
    }

    fn requeue_stuck(&self, d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
        let c = get_condition(s, "Progressing")?;
        if !has_progress_deadline(d) || c.reason.as_deref() == Some(NEW_RS_AVAILABLE) || c.reason.as_deref() == Some(TIMED_OUT) || deployment_complete(d, s) {
            return None;
        }
        let deadline = i64::from(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600));
        let last: Time = c.last_update_time.clone()?;
        let after = last.0.as_second() + deadline - now.as_second();
        Some(Duration::from_secs(after.max(1) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment};

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some("d".into()), generation: Some(2), ..Default::default() },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment { max_surge: Some(surge), max_unavailable: Some(unavailable) }),
                }),
                progress_deadline_seconds: Some(600),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn rs(spec: i32, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec { replicas: Some(spec), ..Default::default() }),
            status: Some(ReplicaSetStatus { replicas, ready_replicas: Some(available), available_replicas: Some(available), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let d = deployment(10, IntOrString::String("25%".into()), IntOrString::String("25%".into()));
        assert_eq!(resolve_fenceposts(&d), (3, 2));
        let d = deployment(3, IntOrString::Int(0), IntOrString::Int(0));
        assert_eq!(resolve_fenceposts(&d), (0, 1), "never both zero");
        let d = deployment(2, IntOrString::Int(1), IntOrString::Int(5));
        assert_eq!(max_unavailable(&d), 2, "capped at replicas");
    }

    #[test]
    fn new_replica_set_grows_within_max_surge() {
        let d = deployment(4, IntOrString::Int(1), IntOrString::Int(0));
        // 4 old pods exist: the new RS may add 1.
        assert_eq!(new_rs_new_replicas(&d, 4, 0), 1);
        // At the limit: no growth.
        assert_eq!(new_rs_new_replicas(&d, 5, 1), 1);
        // Old scaled down to 2, new at 2: grows to 3.
        assert_eq!(new_rs_new_replicas(&d, 4, 2), 3);
        // Never beyond the desired count.
        assert_eq!(new_rs_new_replicas(&d, 0, 3), 4);
    }

    #[test]
    fn hash_is_stable_and_ignored_in_template_equality() {
        let t: PodTemplateSpec = serde_json::from_value(json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}})).unwrap();
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert_eq!(h, compute_hash(&t, Some(0)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        let mut with_hash = t.clone();
        with_hash.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert(POD_TEMPLATE_HASH.into(), h.clone());
        assert!(equal_ignore_hash(&t, &with_hash));
        let mut other = t.clone();
        other.spec.as_mut().unwrap().containers[0].image = Some("b".into());
        assert!(!equal_ignore_hash(&t, &other));
        let mut empty_resources = t.clone();
        empty_resources.spec.as_mut().unwrap().containers[0].resources = Some(Default::default());
        assert!(equal_ignore_hash(&t, &empty_resources), "resources: {{}} equals absent");
        assert_eq!(compute_hash(&empty_resources, None), h);
        assert_ne!(compute_hash(&other, None), h);
    }

    #[test]
    fn status_and_conditions() {
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
        let new_rs = rs(2, 2, 2);
        let all = vec![rs(1, 1, 0), new_rs.clone()];
        let s = calculate_status(&d, &all, Some(&new_rs));
        assert_eq!((s.replicas, s.updated_replicas, s.available_replicas, s.unavailable_replicas), (Some(3), Some(2), Some(2), Some(1)));
        assert_eq!(get_condition(&s, "Available").unwrap().status, "True");
        assert!(!deployment_complete(&d, &s));
        let done = calculate_status(&d, &[rs(3, 3, 3)], Some(&rs(3, 3, 3)));
        assert!(deployment_complete(&d, &done));
        let low = calculate_status(&d, &[rs(3, 3, 1)], None);
        assert_eq!(get_condition(&low, "Available").unwrap().reason.as_deref(), Some("MinimumReplicasUnavailable"));
    }

    #[test]
    fn set_condition_keeps_transition_time_for_same_status() {
        let mut s = DeploymentStatus::default();
        let mut c = new_condition("Progressing", "True", NEW_RS_CREATED, "a".into());
        c.last_transition_time = Some(Time(Timestamp::from_second(5).unwrap()));
        set_condition(&mut s, c);
        set_condition(&mut s, new_condition("Progressing", "True", NEW_RS_AVAILABLE, "b".into()));
        let cur = get_condition(&s, "Progressing").unwrap();
        assert_eq!(cur.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(cur.last_transition_time.as_ref().unwrap().0.as_second(), 5);
        assert_eq!(s.conditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn revision_annotations() {
        let mut d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        d.metadata.annotations = Some(BTreeMap::from([
            ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
            (REVISION.to_string(), "9".to_string()),
        ]));
        let mut r = rs(0, 0, 0);
        assert!(set_new_rs_annotations(&d, &mut r, "1", false));
        assert_eq!(annotation(&r, REVISION).as_deref(), Some("1"));
        assert_eq!(annotation(&r, "kubernetes.io/change-cause").as_deref(), Some("v2"));
        assert_eq!(annotation(&r, MAX_REPLICAS).as_deref(), Some("4"));
        assert!(set_new_rs_annotations(&d, &mut r, "3", true));
        assert_eq!(annotation(&r, REVISION).as_deref(), Some("3"));
        assert_eq!(annotation(&r, REVISION_HISTORY).as_deref(), Some("1"));
        assert!(!set_new_rs_annotations(&d, &mut r, "3", true), "idempotent");
    }
}
