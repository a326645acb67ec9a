//! InterPodAffinity: required pod affinity / anti-affinity of the incoming pod, required
//! anti-affinity of pods already running (symmetry), and preferred terms of both sides as a
//! score, all per topology domain (`topologyKey` label value of the pods' nodes).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::cache::Snapshot;
use crate::config::{ConfigError, decode_args};
use crate::framework::*;
use crate::memo::NodeMemo;
use crate::types::{AffinityTerm, Labels, NodeInfo, PodInfo};

pub const NAME: &str = "InterPodAffinity";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default = "default_hard_weight")]
    hard_pod_affinity_weight: i64,
    #[serde(default)]
    ignore_preferred_terms_of_existing_pods: bool,
}

fn default_hard_weight() -> i64 {
    1
}

impl Default for Args {
    fn default() -> Self {
        Args {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

pub struct InterPodAffinity {
    hard_weight: i64,
    ignore_existing_preferred: bool,
    /// PreFilter's per-node shares.
    filter_memo: NodeMemo<NodeShare>,
    /// PreScore's per-node (topology key, weight) sums.
    score_memo: NodeMemo<Vec<(String, i64)>>,
}

/// One node's part of a [`FilterState`]: per topology key, how many of its pods count (the
/// domain value is the node's own label).
#[derive(Clone, Default)]
struct NodeShare {
    existing_anti_affinity: Vec<(String, i64)>,
    affinity: Vec<(String, i64)>,
    anti_affinity: Vec<(String, i64)>,
}

fn add_key(v: &mut Vec<(String, i64)>, key: &str, by: i64) {
    match v.iter_mut().find(|(k, _)| k == key) {
        Some((_, n)) => *n += by,
        None => v.push((key.to_string(), by)),
    }
}

impl NodeShare {
    /// Account for `existing` (on this node) as seen by the incoming `pod`.
    fn add(
        &mut self,
        pod: &PodInfo,
        ns_labels: &Labels,
        existing: &PodInfo,
        ex_ns: Option<&Labels>,
    ) {
        for t in &existing.required_anti_affinity {
            if t.matches(pod, Some(ns_labels)) {
                add_key(&mut self.existing_anti_affinity, &t.topology_key, 1);
            }
        }
        if matches_all(&pod.required_affinity, existing, ex_ns) {
            for t in &pod.required_affinity {
                add_key(&mut self.affinity, &t.topology_key, 1);
            }
        }
        for t in &pod.required_anti_affinity {
            if t.matches(existing, ex_ns) {
                add_key(&mut self.anti_affinity, &t.topology_key, 1);
            }
        }
    }

    fn apply(&self, s: &mut FilterState, node: &NodeInfo, by: i64) {
        for (k, n) in &self.existing_anti_affinity {
            bump(&mut s.existing_anti_affinity, k, node, n * by);
        }
        for (k, n) in &self.affinity {
            bump(&mut s.affinity, k, node, n * by);
        }
        for (k, n) in &self.anti_affinity {
            bump(&mut s.anti_affinity, k, node, n * by);
        }
    }
}

/// Topology key to domain value to count (nested so lookups need no allocation).
type Counts = HashMap<String, HashMap<String, i64>>;

fn count(m: &Counts, key: &str, value: &str) -> i64 {
    m.get(key).and_then(|v| v.get(value)).copied().unwrap_or(0)
}

#[derive(Clone, Default)]
struct FilterState {
    existing_anti_affinity: Counts,
    affinity: Counts,
    anti_affinity: Counts,
    ns_labels: Labels,
}

#[derive(Clone, Default)]
struct ScoreState {
    topology_score: HashMap<String, HashMap<String, i64>>,
}

fn bump(m: &mut Counts, key: &str, node: &NodeInfo, by: i64) {
    if let Some(v) = node.labels.get(key) {
        let vals = m.entry(key.to_string()).or_default();
        let e = vals.entry(v.clone()).or_default();
        *e += by;
        if *e == 0 {
            vals.remove(v);
            if vals.is_empty() {
                m.remove(key);
            }
        }
    }
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, ns_labels: Option<&Labels>) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, ns_labels))
}

impl InterPodAffinity {
    pub fn new(args: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let a: Args = decode_args(NAME, args)?;
        if !(0..=100).contains(&a.hard_pod_affinity_weight) {
            return Err(ConfigError::Args {
                plugin: NAME.into(),
                message: "hardPodAffinityWeight must be in 0..100".into(),
            });
        }
        Ok(InterPodAffinity {
            filter_memo: NodeMemo::default(),
            score_memo: NodeMemo::default(),
            hard_weight: a.hard_pod_affinity_weight,
            ignore_existing_preferred: a.ignore_preferred_terms_of_existing_pods,
        })
    }

    /// Account for `existing` on `node` (by = +1 adds, -1 removes).
    fn update(
        s: &mut FilterState,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        snap: &Snapshot,
        by: i64,
    ) {
        let mut share = NodeShare::default();
        share.add(
            pod,
            &s.ns_labels,
            existing,
            snap.namespace_labels(&existing.namespace),
        );
        share.apply(s, node, by);
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::NamespaceChange,
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let mut s = FilterState {
            ns_labels: snap
                .namespace_labels(&pod.namespace)
                .cloned()
                .unwrap_or_default(),
            ..Default::default()
        };
        let has_own = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        if !has_own
            && snap
                .nodes
                .iter()
                .all(|n| n.pods_with_required_anti_affinity == 0)
        {
            return (PreFilterResult::all(), Status::skip());
        }
        let key = format!(
            "{}\0{:?}\0{:?}\0{:?}\0{:?}\0{}",
            pod.namespace,
            pod.labels,
            s.ns_labels,
            pod.required_affinity,
            pod.required_anti_affinity,
            snap.namespaces_generation
        );
        let ns_labels = s.ns_labels.clone();
        let compute = |node: &NodeInfo| {
            let mut share = NodeShare::default();
            if node.pods.is_empty() || (!has_own && node.pods_with_required_anti_affinity == 0) {
                return share;
            }
            for existing in &node.pods {
                if !has_own && existing.required_anti_affinity.is_empty() {
                    continue;
                }
                share.add(
                    pod,
                    &ns_labels,
                    existing,
                    snap.namespace_labels(&existing.namespace),
                );
            }
            share
        };
        self.filter_memo.with(key, snap, compute, |shares, _| {
            for (node, (_, share)) in snap.nodes.iter().zip(shares) {
                share.apply(&mut s, node, 1);
            }
        });
        if !has_own && s.existing_anti_affinity.is_empty() {
            return (PreFilterResult::all(), Status::skip());
        }
        state.write(PRE_FILTER_KEY, s);
        (PreFilterResult::all(), Status::success())
    }

    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        other: &Arc<PodInfo>,
        node: &NodeInfo,
        snap: &Snapshot,
    ) {
        if let Some(s) = state.read_mut::<FilterState>(PRE_FILTER_KEY) {
            InterPodAffinity::update(s, pod, other, node, snap, 1);
        }
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        other: &Arc<PodInfo>,
        node: &NodeInfo,
        snap: &Snapshot,
    ) {
        if let Some(s) = state.read_mut::<FilterState>(PRE_FILTER_KEY) {
            InterPodAffinity::update(s, pod, other, node, snap, -1);
        }
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        // Affinity: every term's domain on this node must already hold a matching pod.
        let mut pods_exist = true;
        for t in &pod.required_affinity {
            match node.labels.get(&t.topology_key) {
                Some(v) => {
                    if count(&s.affinity, &t.topology_key, v) <= 0 {
                        pods_exist = false;
                    }
                }
                None => return Status::unresolvable(ERR_AFFINITY),
            }
        }
        // The first pod of a group with affinity to itself may go anywhere.
        let first_of_group =
            s.affinity.is_empty() && matches_all(&pod.required_affinity, pod, Some(&s.ns_labels));
        if !pods_exist && !first_of_group {
            return Status::unresolvable(ERR_AFFINITY);
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = node.labels.get(&t.topology_key)
                && count(&s.anti_affinity, &t.topology_key, v) > 0
            {
                return Status::unschedulable(ERR_ANTI_AFFINITY);
            }
        }
        for (k, vals) in &s.existing_anti_affinity {
            if let Some(v) = node.labels.get(k)
                && vals.get(v).copied().unwrap_or(0) > 0
            {
                return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if self.ignore_existing_preferred && !has_constraints {
            return Status::skip();
        }
        if !has_constraints && snap.nodes.iter().all(|n| n.pods_with_affinity == 0) {
            return Status::skip();
        }
        let ns_labels = snap.namespace_labels(&pod.namespace);
        let key = format!(
            "{}\0{:?}\0{:?}\0{:?}\0{:?}\0{}",
            pod.namespace,
            pod.labels,
            ns_labels,
            pod.preferred_affinity,
            pod.preferred_anti_affinity,
            snap.namespaces_generation
        );
        let compute = |node: &NodeInfo| {
            let mut sums: Vec<(String, i64)> = Vec::new();
            if node.pods.is_empty() || (!has_constraints && node.pods_with_affinity == 0) {
                return sums;
            }
            for ex in &node.pods {
                let ex_ns = snap.namespace_labels(&ex.namespace);
                for t in &pod.preferred_affinity {
                    if t.term.matches(ex, ex_ns) {
                        add_key(&mut sums, &t.term.topology_key, t.weight);
                    }
                }
                for t in &pod.preferred_anti_affinity {
                    if t.term.matches(ex, ex_ns) {
                        add_key(&mut sums, &t.term.topology_key, -t.weight);
                    }
                }
                if self.hard_weight > 0 {
                    for t in &ex.required_affinity {
                        if t.matches(pod, ns_labels) {
                            add_key(&mut sums, &t.topology_key, self.hard_weight);
                        }
                    }
                }
                if !self.ignore_existing_preferred {
                    for t in &ex.preferred_affinity {
                        if t.term.matches(pod, ns_labels) {
                            add_key(&mut sums, &t.term.topology_key, t.weight);
                        }
                    }
                    for t in &ex.preferred_anti_affinity {
                        if t.term.matches(pod, ns_labels) {
                            add_key(&mut sums, &t.term.topology_key, -t.weight);
                        }
                    }
                }
            }
            sums
        };
        let mut score: HashMap<String, HashMap<String, i64>> = HashMap::new();
        self.score_memo.with(key, snap, compute, |per_node, _| {
            for (node, (_, sums)) in snap.nodes.iter().zip(per_node) {
                for (k, w) in sums {
                    if let Some(v) = node.labels.get(k) {
                        *score
                            .entry(k.clone())
                            .or_default()
                            .entry(v.clone())
                            .or_default() += w;
                    }
                }
            }
        });
        if score.is_empty() {
            return Status::skip();
        }
        state.write(
            PRE_SCORE_KEY,
            ScoreState {
                topology_score: score,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(PRE_SCORE_KEY) else {
            return Ok(0);
        };
        Ok(s.topology_score
            .iter()
            .filter_map(|(k, vals)| node.labels.get(k).and_then(|v| vals.get(v)))
            .sum())
    }
    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        if state.read::<ScoreState>(PRE_SCORE_KEY).is_none() {
            return Status::success();
        }
        let (min, max) = (
            scores.iter().copied().min().unwrap_or(0),
            scores.iter().copied().max().unwrap_or(0),
        );
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};

    const ZONE: &str = "zone";
    const HOST: &str = "kubernetes.io/hostname";

    fn filter_all(pod: &PodInfo, snap: &Snapshot) -> Vec<(String, Status)> {
        let pl = InterPodAffinity::new(None).unwrap();
        let mut s = CycleState::default();
        let (_, st) = pl.pre_filter(&mut s, pod, snap);
        snap.nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    if st.is_skip() {
                        Status::success()
                    } else {
                        pl.filter(&s, pod, n)
                    },
                )
            })
            .collect()
    }

    fn ok_nodes(pod: &PodInfo, snap: &Snapshot) -> Vec<String> {
        let mut v: Vec<String> = filter_all(pod, snap)
            .into_iter()
            .filter(|(_, s)| s.is_success())
            .map(|(n, _)| n)
            .collect();
        v.sort();
        v
    }

    fn nodes() -> Vec<k8s_openapi::api::core::v1::Node> {
        vec![
            NodeBuilder::new("a").label(ZONE, "z1").build(),
            NodeBuilder::new("b").label(ZONE, "z1").build(),
            NodeBuilder::new("c").label(ZONE, "z2").build(),
        ]
    }

    #[test]
    fn required_affinity_follows_matching_pods_domain() {
        let existing = PodBuilder::new("db").label("app", "db").node("a").build();
        let snap = snapshot(nodes(), vec![existing]);
        let pod = PodBuilder::new("web")
            .pod_affinity(&[("app", "db")], ZONE)
            .info();
        assert_eq!(ok_nodes(&pod, &snap), ["a", "b"]);
        let st = filter_all(&pod, &snap)
            .into_iter()
            .find(|(n, _)| n == "c")
            .unwrap()
            .1;
        assert_eq!(st.message(), ERR_AFFINITY);
        assert_eq!(st.code, Code::UnschedulableAndUnresolvable);
    }

    #[test]
    fn first_pod_of_self_affine_group_goes_anywhere() {
        let snap = snapshot(nodes(), vec![]);
        let pod = PodBuilder::new("w")
            .label("app", "web")
            .pod_affinity(&[("app", "web")], ZONE)
            .info();
        assert_eq!(ok_nodes(&pod, &snap), ["a", "b", "c"]);
        // But not when the pod does not match its own term.
        let other = PodBuilder::new("w")
            .pod_affinity(&[("app", "web")], ZONE)
            .info();
        assert!(ok_nodes(&other, &snap).is_empty());
    }

    #[test]
    fn required_anti_affinity_both_directions() {
        let existing = PodBuilder::new("r1").label("app", "web").node("a").build();
        let snap = snapshot(nodes(), vec![existing]);
        let pod = PodBuilder::new("r2")
            .label("app", "web")
            .pod_anti_affinity(&[("app", "web")], HOST)
            .info();
        assert_eq!(ok_nodes(&pod, &snap), ["b", "c"]);
        let st = filter_all(&pod, &snap)
            .into_iter()
            .find(|(n, _)| n == "a")
            .unwrap()
            .1;
        assert_eq!(
            (st.code, st.message().as_str()),
            (Code::Unschedulable, ERR_ANTI_AFFINITY)
        );

        // Symmetry: an existing pod's anti-affinity keeps matching pods out of its zone.
        let guard = PodBuilder::new("g")
            .node("c")
            .pod_anti_affinity(&[("app", "web")], ZONE)
            .build();
        let snap = snapshot(nodes(), vec![guard]);
        let pod = PodBuilder::new("w").label("app", "web").info();
        assert_eq!(ok_nodes(&pod, &snap), ["a", "b"]);
        let st = filter_all(&pod, &snap)
            .into_iter()
            .find(|(n, _)| n == "c")
            .unwrap()
            .1;
        assert_eq!(st.message(), ERR_EXISTING_ANTI_AFFINITY);
        // Pods in another namespace are not selected by a term without namespaces.
        let pod = PodBuilder::new("w")
            .namespace("other")
            .label("app", "web")
            .info();
        assert_eq!(ok_nodes(&pod, &snap), ["a", "b", "c"]);
    }

    #[test]
    fn one_plugin_instance_follows_the_cache_across_cycles() {
        let pl = InterPodAffinity::new(None).unwrap();
        let mut snap = snapshot(nodes(), vec![]);
        let pod = PodBuilder::new("web")
            .label("app", "web")
            .pod_anti_affinity(&[("app", "web")], HOST)
            .info();
        let ok = |snap: &Snapshot| {
            let mut s = CycleState::default();
            let (_, st) = pl.pre_filter(&mut s, &pod, snap);
            let mut v: Vec<String> = snap
                .nodes
                .iter()
                .filter(|n| st.is_skip() || pl.filter(&s, &pod, n).is_success())
                .map(|n| n.name.clone())
                .collect();
            v.sort();
            v
        };
        assert_eq!(ok(&snap), ["a", "b", "c"]);
        for (name, node) in [("w1", "a"), ("w2", "c")] {
            let p = PodBuilder::new(name)
                .label("app", "web")
                .pod_anti_affinity(&[("app", "web")], HOST)
                .node(node)
                .build();
            let i = snap.index[node];
            snap.nodes[i].add_pod(Arc::new(crate::testing::pod_info(p)));
        }
        assert_eq!(ok(&snap), ["b"]);
        let i = snap.index["a"];
        let uid = snap.nodes[i].pods[0].uid.clone();
        snap.nodes[i].remove_pod(&uid);
        assert_eq!(ok(&snap), ["a", "b"]);
    }

    #[test]
    fn add_and_remove_pod_update_counts() {
        let pl = InterPodAffinity::new(None).unwrap();
        let snap = snapshot(nodes(), vec![]);
        let pod = PodBuilder::new("p")
            .pod_anti_affinity(&[("app", "x")], HOST)
            .info();
        let mut s = CycleState::default();
        pl.pre_filter(&mut s, &pod, &snap);
        let other = PodBuilder::new("o").label("app", "x").info();
        let a = snap.get("a").unwrap();
        assert!(pl.filter(&s, &pod, a).is_success());
        pl.add_pod(&mut s, &pod, &other, a, &snap);
        assert!(!pl.filter(&s, &pod, a).is_success());
        pl.remove_pod(&mut s, &pod, &other, a, &snap);
        assert!(pl.filter(&s, &pod, a).is_success());
    }

    #[test]
    fn preferred_terms_score_domains() {
        let pl = InterPodAffinity::new(None).unwrap();
        let snap = snapshot(
            nodes(),
            vec![PodBuilder::new("db").label("app", "db").node("c").build()],
        );
        let pod = PodBuilder::new("p")
            .preferred_pod_affinity(10, &[("app", "db")], ZONE)
            .info();
        let mut s = CycleState::default();
        let refs: Vec<&NodeInfo> = snap.nodes.iter().collect();
        assert!(pl.pre_score(&mut s, &pod, &refs, &snap).is_success());
        let mut scores: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|n| pl.score(&s, &pod, snap.get(n).unwrap()).unwrap())
            .collect();
        assert_eq!(scores, [0, 0, 10]);
        pl.normalize(&s, &pod, &mut scores);
        assert_eq!(scores, [0, 0, 100]);

        let anti = PodBuilder::new("p")
            .preferred_pod_anti_affinity(5, &[("app", "db")], ZONE)
            .info();
        let mut s = CycleState::default();
        pl.pre_score(&mut s, &anti, &refs, &snap);
        let mut scores: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|n| pl.score(&s, &anti, snap.get(n).unwrap()).unwrap())
            .collect();
        pl.normalize(&s, &anti, &mut scores);
        assert_eq!(scores, [100, 100, 0]);

        // No preferences anywhere: skip.
        let plain = PodBuilder::new("p").info();
        assert!(
            pl.pre_score(&mut CycleState::default(), &plain, &refs, &snap)
                .is_skip()
        );
    }
}
