//! The scheduling framework: plugins registered by name at upstream's extension points
//! (PreEnqueue … PostBind), the status codes they return, the per-cycle state they share, and
//! [`Framework`], one profile's configured plugin chain that the scheduler drives.

pub mod runtime;

use std::any::Any;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::Snapshot;
use crate::queue::QueuedPodInfo;
use crate::types::{NodeInfo, PodInfo};

pub use runtime::Framework;

/// Highest score a Score plugin may give after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// Upstream's status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    Error,
    /// Rejected, but preemption or a cluster change might help.
    Unschedulable,
    /// Rejected, and preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    Wait,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore): skip its Filter/Score.
    Skip,
}

/// The result of a plugin call.
#[derive(Debug, Clone)]
pub struct Status {
    pub code: Code,
    /// Usually one of the plugins' constant messages, so failing on thousands of nodes per
    /// cycle allocates no strings.
    pub reasons: Vec<Cow<'static, str>>,
    /// Name of the plugin that produced a failure.
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }
    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }
    pub fn error(msg: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Error, msg)
    }
    pub fn skip() -> Status {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }
    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }
    /// Unschedulable or UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Plugin data kept for one scheduling cycle; cloneable so preemption can try "what if".
pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Sync + Clone> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Per-cycle shared state (upstream's CycleState).
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter said Skip.
    pub skip_filter: HashSet<&'static str>,
    /// Plugins whose PreScore said Skip.
    pub skip_score: HashSet<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_box()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    pub fn write<T: StateData>(&mut self, key: &'static str, v: T) {
        self.data.insert(key, Box::new(v));
    }
    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.data
            .get(key)
            .and_then(|b| (**b).as_any().downcast_ref())
    }
    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data
            .get_mut(key)
            .and_then(|b| (**b).as_any_mut().downcast_mut())
    }
}

/// What PreFilter may narrow the candidate nodes to.
#[derive(Debug, Clone, Default)]
pub struct PreFilterResult {
    /// `None` means all nodes.
    pub node_names: Option<HashSet<String>>,
}

impl PreFilterResult {
    pub fn all() -> Self {
        PreFilterResult { node_names: None }
    }
    pub fn merge(&mut self, other: PreFilterResult) {
        if let Some(o) = other.node_names {
            self.node_names = Some(match self.node_names.take() {
                Some(s) => s.intersection(&o).cloned().collect(),
                None => o,
            });
        }
    }
}

/// Node name to the status that rejected the pod there.
pub type NodeToStatus = HashMap<String, Status>;

/// What a PostFilter plugin (preemption) found.
#[derive(Debug, Clone, Default)]
pub struct PostFilterResult {
    pub nominated_node: Option<String>,
    /// Pods to evict so the preemptor fits on the nominated node.
    pub victims: Vec<Arc<PodInfo>>,
    /// Lower-priority pods nominated to the same node, whose nomination must be cleared.
    pub clear_nominations: Vec<Arc<PodInfo>>,
}

/// Cluster changes that may make a rejected pod schedulable (upstream's ClusterEvent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    NodeDelete,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
    NamespaceChange,
    /// Periodic flush or an unknown cause: every rejected pod is retried.
    Any,
}

/// A named plugin. Each extension point is an optional capability.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Cluster events after which pods this plugin rejected are worth retrying.
    fn events(&self) -> &'static [ClusterEvent] {
        &[]
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    fn as_post_bind(&self) -> Option<&dyn PostBindPlugin> {
        None
    }
}

/// Gate before a pod enters the active queue.
pub trait PreEnqueuePlugin {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status;
}

/// Orders the active queue.
pub trait QueueSortPlugin {
    /// Whether `a` should be scheduled before `b`.
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;
}

pub trait PreFilterPlugin {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (PreFilterResult, Status);
    /// Incrementally account for `other` being added to `node` (nominated pods, preemption).
    fn add_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _other: &Arc<PodInfo>,
        _node: &NodeInfo,
        _snap: &Snapshot,
    ) {
    }
    /// Incrementally account for `other` being removed from `node`.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _other: &Arc<PodInfo>,
        _node: &NodeInfo,
        _snap: &Snapshot,
    ) {
    }
}

pub trait FilterPlugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

pub trait PostFilterPlugin {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        snap: &Snapshot,
        fwk: &Framework,
        statuses: &NodeToStatus,
    ) -> (PostFilterResult, Status);
}

pub trait PreScorePlugin {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status;
}

pub trait ScorePlugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;
    /// Rescale raw scores to 0..=MAX_NODE_SCORE (identity when the plugin already does).
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) -> Status {
        Status::success()
    }
}

pub trait ReservePlugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

pub trait PermitPlugin {
    fn permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

#[async_trait]
pub trait PreBindPlugin: Sync {
    async fn pre_bind(&self, pod: &PodInfo, node: &str) -> Status;
}

#[async_trait]
pub trait BindPlugin: Sync {
    /// Skip means "not mine", letting the next Bind plugin try.
    async fn bind(&self, pod: &PodInfo, node: &str) -> Status;
}

pub trait PostBindPlugin {
    fn post_bind(&self, pod: &PodInfo, node: &str);
}

/// Upstream's `DefaultNormalizeScore`: scale to 0..=max by the highest score, optionally reversed.
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [i64]) {
    let highest = scores.iter().copied().max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max);
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = max * *s / highest;
        if reverse {
            v = max - v;
        }
        *s = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_default() {
        let mut s = [0, 5, 10];
        default_normalize_score(100, false, &mut s);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, [100, 100]);
    }

    #[test]
    fn prefilter_results_intersect() {
        let mut r = PreFilterResult::all();
        r.merge(PreFilterResult {
            node_names: Some(["a", "b"].iter().map(|s| s.to_string()).collect()),
        });
        r.merge(PreFilterResult::all());
        r.merge(PreFilterResult {
            node_names: Some(["b", "c"].iter().map(|s| s.to_string()).collect()),
        });
        assert_eq!(
            r.node_names.unwrap(),
            ["b".to_string()].into_iter().collect()
        );
    }

    #[test]
    fn cycle_state_clones_deeply() {
        let mut s = CycleState::default();
        s.write("k", vec![1, 2]);
        let mut c = s.clone();
        c.read_mut::<Vec<i32>>("k").unwrap().push(3);
        assert_eq!(s.read::<Vec<i32>>("k").unwrap().len(), 2);
        assert_eq!(c.read::<Vec<i32>>("k").unwrap().len(), 3);
    }
}
