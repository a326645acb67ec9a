//! One profile's plugin chain and the code that runs each extension point in order, with
//! upstream's rules (first Filter failure wins, Skip from PreFilter/PreScore disables the
//! plugin's Filter/Score, scores are normalized then weighted, nominated pods are honoured).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::*;
use crate::config::{ExtensionPoint, ResolvedProfile};

#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    #[error("profile {profile}: plugin {plugin} does not implement the {point:?} extension point")]
    NotImplemented {
        profile: String,
        plugin: String,
        point: ExtensionPoint,
    },
    #[error("profile {profile}: plugin {plugin} is enabled but not registered")]
    Unknown { profile: String, plugin: String },
    #[error("profile {profile}: exactly one queueSort plugin must be enabled, found {found}")]
    QueueSort { profile: String, found: usize },
    #[error("profile {profile}: at least one bind plugin is needed")]
    NoBind { profile: String },
}

type P = Arc<dyn Plugin>;

/// A configured profile.
pub struct Framework {
    pub profile: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub plugins: Vec<P>,
    pre_enqueue: Vec<P>,
    queue_sort: Vec<P>,
    pre_filter: Vec<P>,
    filter: Vec<P>,
    post_filter: Vec<P>,
    pre_score: Vec<P>,
    score: Vec<(P, i64)>,
    reserve: Vec<P>,
    permit: Vec<P>,
    pre_bind: Vec<P>,
    bind: Vec<P>,
    post_bind: Vec<P>,
}

fn implements(p: &P, point: ExtensionPoint) -> bool {
    match point {
        ExtensionPoint::PreEnqueue => p.as_pre_enqueue().is_some(),
        ExtensionPoint::QueueSort => p.as_queue_sort().is_some(),
        ExtensionPoint::PreFilter => p.as_pre_filter().is_some(),
        ExtensionPoint::Filter => p.as_filter().is_some(),
        ExtensionPoint::PostFilter => p.as_post_filter().is_some(),
        ExtensionPoint::PreScore => p.as_pre_score().is_some(),
        ExtensionPoint::Score => p.as_score().is_some(),
        ExtensionPoint::Reserve => p.as_reserve().is_some(),
        ExtensionPoint::Permit => p.as_permit().is_some(),
        ExtensionPoint::PreBind => p.as_pre_bind().is_some(),
        ExtensionPoint::Bind => p.as_bind().is_some(),
        ExtensionPoint::PostBind => p.as_post_bind().is_some(),
    }
}

impl Framework {
    /// Wire `instances` (plugin name to instance) into the extension points `profile` enables.
    /// Plugins enabled through multiPoint land at every point they implement; plugins named
    /// at a specific point must implement it.
    pub fn new(
        profile: &ResolvedProfile,
        instances: &HashMap<String, P>,
    ) -> Result<Framework, FrameworkError> {
        let mut f = Framework {
            profile: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            plugins: Vec::new(),
            pre_enqueue: Vec::new(),
            queue_sort: Vec::new(),
            pre_filter: Vec::new(),
            filter: Vec::new(),
            post_filter: Vec::new(),
            pre_score: Vec::new(),
            score: Vec::new(),
            reserve: Vec::new(),
            permit: Vec::new(),
            pre_bind: Vec::new(),
            bind: Vec::new(),
            post_bind: Vec::new(),
        };
        let mut seen = HashSet::new();
        for point in ExtensionPoint::ALL {
            for entry in profile.points.get(&point).into_iter().flatten() {
                let Some(p) = instances.get(&entry.name) else {
                    return Err(FrameworkError::Unknown {
                        profile: f.profile.clone(),
                        plugin: entry.name.clone(),
                    });
                };
                if !implements(p, point) {
                    if entry.from_multi_point {
                        continue;
                    }
                    return Err(FrameworkError::NotImplemented {
                        profile: f.profile.clone(),
                        plugin: entry.name.clone(),
                        point,
                    });
                }
                if seen.insert(entry.name.clone()) {
                    f.plugins.push(p.clone());
                }
                let p = p.clone();
                match point {
                    ExtensionPoint::PreEnqueue => f.pre_enqueue.push(p),
                    ExtensionPoint::QueueSort => f.queue_sort.push(p),
                    ExtensionPoint::PreFilter => f.pre_filter.push(p),
                    ExtensionPoint::Filter => f.filter.push(p),
                    ExtensionPoint::PostFilter => f.post_filter.push(p),
                    ExtensionPoint::PreScore => f.pre_score.push(p),
                    ExtensionPoint::Score => f.score.push((p, entry.weight.max(1))),
                    ExtensionPoint::Reserve => f.reserve.push(p),
                    ExtensionPoint::Permit => f.permit.push(p),
                    ExtensionPoint::PreBind => f.pre_bind.push(p),
                    ExtensionPoint::Bind => f.bind.push(p),
                    ExtensionPoint::PostBind => f.post_bind.push(p),
                }
            }
        }
        if f.queue_sort.len() != 1 {
            return Err(FrameworkError::QueueSort {
                profile: f.profile.clone(),
                found: f.queue_sort.len(),
            });
        }
        if f.bind.is_empty() {
            return Err(FrameworkError::NoBind {
                profile: f.profile.clone(),
            });
        }
        Ok(f)
    }

    /// Names of the plugins at an extension point, in order (for tests and logs).
    pub fn names_at(&self, point: ExtensionPoint) -> Vec<&'static str> {
        let list: Vec<&P> = match point {
            ExtensionPoint::PreEnqueue => self.pre_enqueue.iter().collect(),
            ExtensionPoint::QueueSort => self.queue_sort.iter().collect(),
            ExtensionPoint::PreFilter => self.pre_filter.iter().collect(),
            ExtensionPoint::Filter => self.filter.iter().collect(),
            ExtensionPoint::PostFilter => self.post_filter.iter().collect(),
            ExtensionPoint::PreScore => self.pre_score.iter().collect(),
            ExtensionPoint::Score => self.score.iter().map(|(p, _)| p).collect(),
            ExtensionPoint::Reserve => self.reserve.iter().collect(),
            ExtensionPoint::Permit => self.permit.iter().collect(),
            ExtensionPoint::PreBind => self.pre_bind.iter().collect(),
            ExtensionPoint::Bind => self.bind.iter().collect(),
            ExtensionPoint::PostBind => self.post_bind.iter().collect(),
        };
        list.into_iter().map(|p| p.name()).collect()
    }

    pub fn score_weights(&self) -> Vec<(&'static str, i64)> {
        self.score.iter().map(|(p, w)| (p.name(), *w)).collect()
    }

    /// Event to the names of this profile's plugins that registered for it.
    pub fn interested_events(&self) -> HashMap<ClusterEvent, HashSet<&'static str>> {
        let mut m: HashMap<ClusterEvent, HashSet<&'static str>> = HashMap::new();
        for p in &self.plugins {
            for e in p.events() {
                m.entry(*e).or_default().insert(p.name());
            }
        }
        m
    }

    pub fn run_pre_enqueue(&self, pod: &PodInfo) -> Status {
        for p in &self.pre_enqueue {
            if let Some(pe) = p.as_pre_enqueue() {
                let st = pe.pre_enqueue(pod);
                if !st.is_success() {
                    return st.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    pub fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        match self.queue_sort.first().and_then(|p| p.as_queue_sort()) {
            Some(qs) => qs.less(a, b),
            None => crate::plugins::priority_sort::less(a, b),
        }
    }

    /// PreFilter: merged node restrictions, or the first rejection.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let mut result = PreFilterResult::all();
        for p in &self.pre_filter {
            let Some(pf) = p.as_pre_filter() else {
                continue;
            };
            let (r, st) = pf.pre_filter(state, pod, snap);
            if st.is_skip() {
                state.skip_filter.insert(p.name());
                continue;
            }
            if !st.is_success() {
                return (result, st.with_plugin(p.name()));
            }
            result.merge(r);
        }
        (result, Status::success())
    }

    /// All Filter plugins on one node; the first failure wins.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            let Some(f) = p.as_filter() else { continue };
            let st = f.filter(state, pod, node);
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filter as upstream does when pods are nominated to the node: the pod must fit both with
    /// the nominated pods of equal or higher priority and without them.
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        snap: &Snapshot,
    ) -> Status {
        let nominated = if snap.nominated.is_empty() {
            Vec::new()
        } else {
            snap.nominated_for(&node.name, pod.priority, &pod.uid)
        };
        if nominated.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut st2 = state.clone();
        let mut ni2 = node.clone();
        for np in &nominated {
            ni2.add_pod(np.clone());
            self.run_add_pod(&mut st2, pod, np, &ni2, snap);
        }
        let st = self.run_filter(&st2, pod, &ni2);
        if !st.is_success() {
            return st;
        }
        self.run_filter(state, pod, node)
    }

    /// PreFilter extensions: `other` joins `node`.
    pub fn run_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        other: &Arc<PodInfo>,
        node: &NodeInfo,
        snap: &Snapshot,
    ) {
        for p in &self.pre_filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(pf) = p.as_pre_filter() {
                pf.add_pod(state, pod, other, node, snap);
            }
        }
    }

    /// PreFilter extensions: `other` leaves `node`.
    pub fn run_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        other: &Arc<PodInfo>,
        node: &NodeInfo,
        snap: &Snapshot,
    ) {
        for p in &self.pre_filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(pf) = p.as_pre_filter() {
                pf.remove_pod(state, pod, other, node, snap);
            }
        }
    }

    pub fn has_post_filter(&self) -> bool {
        !self.post_filter.is_empty()
    }

    /// PostFilter: the first plugin that makes the pod schedulable (nominates a node) wins.
    pub fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        snap: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (PostFilterResult, Status) {
        let mut last = Status::unschedulable("");
        let mut msgs = Vec::new();
        for p in &self.post_filter {
            let Some(pf) = p.as_post_filter() else {
                continue;
            };
            let (r, st) = pf.post_filter(state, pod, snap, self, statuses);
            if st.is_success() {
                return (r, st);
            }
            if st.code == Code::Error {
                return (r, st.with_plugin(p.name()));
            }
            if !st.message().is_empty() {
                msgs.push(st.message().into());
            }
            last = st.with_plugin(p.name());
        }
        last.reasons = msgs;
        (PostFilterResult::default(), last)
    }

    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        for p in &self.pre_score {
            let Some(ps) = p.as_pre_score() else { continue };
            let st = ps.pre_score(state, pod, nodes, snap);
            if st.is_skip() {
                state.skip_score.insert(p.name());
                continue;
            }
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Score, normalize and weight; returns the total per node (same order as `nodes`).
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Result<Vec<i64>, Status> {
        let mut totals = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        for (p, weight) in &self.score {
            if state.skip_score.contains(p.name()) {
                continue;
            }
            let Some(sp) = p.as_score() else { continue };
            for (i, n) in nodes.iter().enumerate() {
                scores[i] = sp
                    .score(state, pod, n)
                    .map_err(|s| s.with_plugin(p.name()))?;
            }
            let st = sp.normalize(state, pod, &mut scores);
            if !st.is_success() {
                return Err(st.with_plugin(p.name()));
            }
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += s * weight;
            }
        }
        Ok(totals)
    }

    /// Reserve in order; on failure everything is unreserved and the failure returned.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            if let Some(r) = p.as_reserve() {
                let st = r.reserve(state, pod, node);
                if !st.is_success() {
                    self.run_unreserve(state, pod, node);
                    return st.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            if let Some(r) = p.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    /// Permit: Wait is not supported by any built-in plugin and is treated as a rejection.
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.permit {
            if let Some(pm) = p.as_permit() {
                let st = pm.permit(state, pod, node);
                if !st.is_success() {
                    return st.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    pub async fn run_pre_bind(&self, pod: &PodInfo, node: &str) -> Status {
        for p in &self.pre_bind {
            if let Some(pb) = p.as_pre_bind() {
                let st = pb.pre_bind(pod, node).await;
                if !st.is_success() {
                    return st.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    pub async fn run_bind(&self, pod: &PodInfo, node: &str) -> Status {
        for p in &self.bind {
            if let Some(b) = p.as_bind() {
                let st = b.bind(pod, node).await;
                if st.is_skip() {
                    continue;
                }
                return st.with_plugin(p.name());
            }
        }
        Status::error("no bind plugin accepted the pod")
    }

    pub fn run_post_bind(&self, pod: &PodInfo, node: &str) {
        for p in &self.post_bind {
            if let Some(pb) = p.as_post_bind() {
                pb.post_bind(pod, node);
            }
        }
    }
}
