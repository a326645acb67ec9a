//! PodTopologySpread: `topologySpreadConstraints` (maxSkew per topology domain, minDomains,
//! node inclusion policies, matchLabelKeys). DoNotSchedule constraints filter, ScheduleAnyway
//! constraints score; pods without constraints get the default (System: hostname skew 3, zone
//! skew 5, soft) with a selector taken from the Services/ReplicaSets/StatefulSets/RCs owning them.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use serde::Deserialize;

use crate::cache::Snapshot;
use crate::config::{ConfigError, decode_args};
use crate::framework::*;
use crate::memo::{Aggregate, NodeMemo};
use crate::plugins::PluginContext;
use crate::plugins::node_affinity::{Required, required_of};
use crate::selector::{LabelSelectorExt, Selector};
use crate::types::{LABEL_HOSTNAME, LABEL_ZONE, NodeInfo, PodInfo, find_untolerated};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
/// Score of nodes excluded from scoring; normalized to 0.
const INVALID_SCORE: i64 = -1;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    default_constraints: Vec<TopologySpreadConstraint>,
    defaulting_type: Option<String>,
}

#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
}

impl Constraint {
    fn from_api(c: &TopologySpreadConstraint, selector: Selector, pod: &PodInfo) -> Constraint {
        let mut selector = selector;
        for k in c.match_label_keys.iter().flatten() {
            if let Some(v) = pod.labels.get(k) {
                selector.add_in(k, v);
            }
        }
        Constraint {
            max_skew: c.max_skew as i64,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1) as i64,
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    fn includes_node(&self, pod: &PodInfo, req: &Required, node: &NodeInfo) -> bool {
        if self.honor_affinity && !req.matches_node(node) {
            return false;
        }
        if self.honor_taints
            && find_untolerated(&node.taints, &pod.tolerations, &["NoSchedule", "NoExecute"])
                .is_some()
        {
            return false;
        }
        true
    }
}

fn count_matching(pods: &[Arc<PodInfo>], sel: &Selector, ns: &str) -> i64 {
    pods.iter()
        .filter(|p| !p.terminating && p.namespace == ns && sel.matches(&p.labels))
        .count() as i64
}

fn has_all_keys(node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| node.labels.contains_key(&c.topology_key))
}

#[derive(Clone)]
struct FilterState {
    required: Required,
    constraints: Vec<Constraint>,
    /// Per constraint: domain value to matching pod count.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the global minimum (0 when fewer domains than minDomains).
    min: Vec<i64>,
}

impl FilterState {
    fn recompute_min(&mut self, i: usize) {
        let c = &self.constraints[i];
        let m = &self.counts[i];
        self.min[i] = if (m.len() as i64) < c.min_domains {
            0
        } else {
            m.values().copied().min().unwrap_or(0)
        };
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        if other.namespace != pod.namespace || !has_all_keys(node, &self.constraints) {
            return;
        }
        for i in 0..self.constraints.len() {
            let c = &self.constraints[i];
            if !c.selector.matches(&other.labels) || !c.includes_node(pod, &self.required, node) {
                continue;
            }
            let v = node
                .labels
                .get(&c.topology_key)
                .cloned()
                .unwrap_or_default();
            *self.counts[i].entry(v).or_default() += by;
            self.recompute_min(i);
        }
    }
}

#[derive(Clone, Default)]
struct ScoreState {
    constraints: Vec<Constraint>,
    ignored: std::collections::HashSet<String>,
    /// Per constraint: domain value (of the scored nodes) to matching pods.
    pair_counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

pub struct PodTopologySpread {
    default_constraints: Vec<TopologySpreadConstraint>,
    ctx: PluginContext,
    /// Per node, per constraint: pods matching the constraint's selector (PreScore).
    counts: NodeMemo<Vec<i64>>,
    /// Per node, per constraint: its domain and matching pods when the node counts for the
    /// constraint, with the per-domain totals (PreFilter).
    domains: NodeMemo<NodeDomains, DomainTotals>,
}

/// One node's share per constraint: `(domain value, matching pods)`, `None` when the node is
/// not part of the constraint's domains (missing topology label, excluded by the pod's node
/// affinity or taints policy).
type NodeDomains = Vec<Option<(String, i64)>>;

/// Per constraint: domain value to (matching pods, nodes counted in the domain).
#[derive(Default)]
struct DomainTotals(Vec<HashMap<String, (i64, usize)>>);

impl Aggregate<NodeDomains> for DomainTotals {
    fn add(&mut self, v: &NodeDomains) {
        if self.0.len() < v.len() {
            self.0.resize_with(v.len(), HashMap::new);
        }
        for (i, d) in v.iter().enumerate() {
            if let Some((domain, pods)) = d {
                let e = self.0[i].entry(domain.clone()).or_default();
                e.0 += pods;
                e.1 += 1;
            }
        }
    }
    fn sub(&mut self, v: &NodeDomains) {
        for (i, d) in v.iter().enumerate() {
            if let Some((domain, pods)) = d
                && let Some(e) = self.0.get_mut(i).and_then(|m| m.get_mut(domain))
            {
                e.0 -= pods;
                e.1 -= 1;
                if e.1 == 0 {
                    self.0[i].remove(domain);
                }
            }
        }
    }
}

/// What the per-node counts of `constraints` for a pod in `ns` depend on.
fn memo_key(ns: &str, constraints: &[Constraint]) -> String {
    let mut k = String::from(ns);
    for c in constraints {
        k.push_str(&format!("\0{:?}", c.selector));
    }
    k
}

/// Matching pods per node (indexed like `snap.nodes`) for each of `constraints`.
fn node_counts<R>(
    memo: &NodeMemo<Vec<i64>>,
    snap: &Snapshot,
    ns: &str,
    constraints: &[Constraint],
    f: impl FnOnce(&[(u64, Vec<i64>)]) -> R,
) -> R {
    memo.with(
        memo_key(ns, constraints),
        snap,
        |node| {
            constraints
                .iter()
                .map(|c| count_matching(&node.pods, &c.selector, ns))
                .collect()
        },
        |per_node, _| f(per_node),
    )
}

fn system_defaults() -> Vec<TopologySpreadConstraint> {
    vec![
        TopologySpreadConstraint {
            max_skew: 3,
            topology_key: LABEL_HOSTNAME.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        },
        TopologySpreadConstraint {
            max_skew: 5,
            topology_key: LABEL_ZONE.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        },
    ]
}

impl PodTopologySpread {
    pub fn new(args: Option<&serde_json::Value>, ctx: PluginContext) -> Result<Self, ConfigError> {
        let a: Args = decode_args(NAME, args)?;
        let default_constraints = match a.defaulting_type.as_deref().unwrap_or("System") {
            "System" => {
                if !a.default_constraints.is_empty() {
                    return Err(ConfigError::Args {
                        plugin: NAME.into(),
                        message: "defaultConstraints must be empty for defaultingType System"
                            .into(),
                    });
                }
                system_defaults()
            }
            "List" => a.default_constraints,
            other => {
                return Err(ConfigError::Args {
                    plugin: NAME.into(),
                    message: format!("unknown defaultingType {other:?}"),
                });
            }
        };
        if default_constraints
            .iter()
            .any(|c| c.label_selector.is_some() || c.max_skew < 1)
        {
            return Err(ConfigError::Args {
                plugin: NAME.into(),
                message: "default constraints must have maxSkew >= 1 and no labelSelector".into(),
            });
        }
        Ok(PodTopologySpread {
            counts: NodeMemo::default(),
            domains: NodeMemo::default(),
            default_constraints,
            ctx,
        })
    }

    /// Selector of the pod's Services and controller, for default constraints.
    fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
        let mut labels = std::collections::BTreeMap::new();
        if let Some(svcs) = &self.ctx.services {
            for s in svcs.state() {
                if s.metadata.namespace.as_deref() != Some(pod.namespace.as_str()) {
                    continue;
                }
                let Some(sel) = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.selector.as_ref())
                    .filter(|m| !m.is_empty())
                else {
                    continue;
                };
                if Selector::from_map(sel).matches(&pod.labels) {
                    labels.extend(sel.clone());
                }
            }
        }
        let mut selector = Selector::from_map(&labels);
        let owner = pod
            .pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        if let Some(o) = owner {
            let find = |name: &str| -> Option<Selector> {
                match (o.api_version.as_str(), o.kind.as_str()) {
                    ("apps/v1", "ReplicaSet") => self
                        .ctx
                        .replica_sets
                        .as_ref()?
                        .state()
                        .into_iter()
                        .find(|r| {
                            r.metadata.namespace.as_deref() == Some(pod.namespace.as_str())
                                && r.metadata.name.as_deref() == Some(name)
                        })
                        .and_then(|r| r.spec.as_ref().map(|s| s.selector.compile())),
                    ("apps/v1", "StatefulSet") => self
                        .ctx
                        .stateful_sets
                        .as_ref()?
                        .state()
                        .into_iter()
                        .find(|r| {
                            r.metadata.namespace.as_deref() == Some(pod.namespace.as_str())
                                && r.metadata.name.as_deref() == Some(name)
                        })
                        .and_then(|r| r.spec.as_ref().map(|s| s.selector.compile())),
                    ("v1", "ReplicationController") => self
                        .ctx
                        .replication_controllers
                        .as_ref()?
                        .state()
                        .into_iter()
                        .find(|r| {
                            r.metadata.namespace.as_deref() == Some(pod.namespace.as_str())
                                && r.metadata.name.as_deref() == Some(name)
                        })
                        .and_then(|r| {
                            r.spec
                                .as_ref()
                                .and_then(|s| s.selector.as_ref())
                                .map(Selector::from_map)
                        }),
                    _ => None,
                }
            };
            if let Some(s) = find(&o.name) {
                selector.extend(s);
            }
        }
        (!selector.is_empty() && !selector.is_nothing()).then_some(selector)
    }

    /// The pod's constraints of one kind (hard = DoNotSchedule), or the defaults; and whether
    /// they are the pod's own.
    fn constraints(&self, pod: &PodInfo, hard: bool) -> (Vec<Constraint>, bool) {
        let want = if hard {
            "DoNotSchedule"
        } else {
            "ScheduleAnyway"
        };
        let own = pod
            .spec()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .filter(|v| !v.is_empty());
        if let Some(own) = own {
            let cs = own
                .iter()
                .filter(|c| c.when_unsatisfiable == want)
                .map(|c| {
                    Constraint::from_api(
                        c,
                        c.label_selector
                            .as_ref()
                            .map(|s| s.compile())
                            .unwrap_or_else(Selector::nothing),
                        pod,
                    )
                })
                .collect();
            return (cs, true);
        }
        let defaults: Vec<&TopologySpreadConstraint> = self
            .default_constraints
            .iter()
            .filter(|c| c.when_unsatisfiable == want)
            .collect();
        if defaults.is_empty() {
            return (Vec::new(), false);
        }
        let Some(sel) = self.default_selector(pod) else {
            return (Vec::new(), false);
        };
        (
            defaults
                .into_iter()
                .map(|c| Constraint::from_api(c, sel.clone(), pod))
                .collect(),
            false,
        )
    }
}

impl Plugin for PodTopologySpread {
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
            ClusterEvent::NodeDelete,
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

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let (constraints, _) = self.constraints(pod, true);
        if constraints.is_empty() {
            return (PreFilterResult::all(), Status::skip());
        }
        let n = constraints.len();
        let mut s = FilterState {
            required: required_of(pod),
            counts: vec![HashMap::new(); n],
            min: vec![0; n],
            constraints,
        };
        // Everything `compute` reads from the pod is in the key.
        let key = format!(
            "{}\0{:?}\0{:?}\0{:?}",
            pod.namespace, s.constraints, s.required, pod.tolerations
        );
        let compute = |node: &NodeInfo| -> NodeDomains {
            let all_keys = has_all_keys(node, &s.constraints);
            s.constraints
                .iter()
                .map(|c| {
                    if !all_keys || !c.includes_node(pod, &s.required, node) {
                        return None;
                    }
                    let v = node
                        .labels
                        .get(&c.topology_key)
                        .cloned()
                        .unwrap_or_default();
                    Some((v, count_matching(&node.pods, &c.selector, &pod.namespace)))
                })
                .collect()
        };
        let counts = self.domains.with(key, snap, compute, |_, totals| {
            (0..n)
                .map(|i| {
                    totals
                        .0
                        .get(i)
                        .map(|m| m.iter().map(|(d, (pods, _))| (d.clone(), *pods)).collect())
                        .unwrap_or_default()
                })
                .collect::<Vec<HashMap<String, i64>>>()
        });
        s.counts = counts;
        for i in 0..n {
            s.recompute_min(i);
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
        _snap: &Snapshot,
    ) {
        if let Some(s) = state.read_mut::<FilterState>(PRE_FILTER_KEY) {
            s.update(pod, other, node, 1);
        }
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        other: &Arc<PodInfo>,
        node: &NodeInfo,
        _snap: &Snapshot,
    ) {
        if let Some(s) = state.read_mut::<FilterState>(PRE_FILTER_KEY) {
            s.update(pod, other, node, -1);
        }
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.labels.get(&c.topology_key) else {
                return Status::unresolvable(ERR_MISSING_LABEL);
            };
            let self_match = i64::from(c.selector.matches(&pod.labels));
            let matched = s.counts[i].get(v).copied().unwrap_or(0);
            if matched + self_match - s.min[i] > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        let (constraints, require_all) = self.constraints(pod, false);
        if constraints.is_empty() {
            return Status::skip();
        }
        let required = required_of(pod);
        let mut s = ScoreState {
            weights: vec![0.0; constraints.len()],
            pair_counts: vec![HashMap::new(); constraints.len()],
            ..Default::default()
        };
        let mut sizes = vec![0usize; constraints.len()];
        for n in nodes {
            if require_all && !has_all_keys(n, &constraints) {
                s.ignored.insert(n.name.clone());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    continue;
                }
                let v = n.labels.get(&c.topology_key).cloned().unwrap_or_default();
                if let std::collections::hash_map::Entry::Vacant(e) = s.pair_counts[i].entry(v) {
                    e.insert(0);
                    sizes[i] += 1;
                }
            }
        }
        for (i, c) in constraints.iter().enumerate() {
            if c.topology_key == LABEL_HOSTNAME {
                sizes[i] = nodes.len() - s.ignored.len();
            }
            s.weights[i] = ((sizes[i] + 2) as f64).ln();
        }
        node_counts(
            &self.counts,
            snap,
            &pod.namespace,
            &constraints,
            |per_node| {
                for (node, (_, node_counts)) in snap.nodes.iter().zip(per_node) {
                    if require_all && !has_all_keys(node, &constraints) {
                        continue;
                    }
                    for (i, c) in constraints.iter().enumerate() {
                        if c.topology_key == LABEL_HOSTNAME
                            || !c.includes_node(pod, &required, node)
                        {
                            continue;
                        }
                        let Some(v) = node.labels.get(&c.topology_key) else {
                            if let Some(cnt) = s.pair_counts[i].get_mut("") {
                                *cnt += node_counts[i];
                            }
                            continue;
                        };
                        if let Some(cnt) = s.pair_counts[i].get_mut(v.as_str()) {
                            *cnt += node_counts[i];
                        }
                    }
                }
            },
        );
        s.constraints = constraints;
        state.write(PRE_SCORE_KEY, s);
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(PRE_SCORE_KEY) else {
            return Ok(0);
        };
        if s.ignored.contains(&node.name) {
            return Ok(INVALID_SCORE);
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let cnt = if c.topology_key == LABEL_HOSTNAME {
                count_matching(&node.pods, &c.selector, &pod.namespace)
            } else {
                s.pair_counts[i].get(v.as_str()).copied().unwrap_or(0)
            };
            score += cnt as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        let valid = scores.iter().copied().filter(|s| *s != INVALID_SCORE);
        let (min, max) = valid.fold((i64::MAX, 0i64), |(mn, mx), s| (mn.min(s), mx.max(s)));
        for s in scores.iter_mut() {
            *s = if *s == INVALID_SCORE {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};
    use k8s_openapi::api::core::v1::Node;

    fn plugin() -> PodTopologySpread {
        PodTopologySpread::new(None, PluginContext::default()).unwrap()
    }

    fn zone_nodes() -> Vec<Node> {
        vec![
            NodeBuilder::new("a1").label(LABEL_ZONE, "a").build(),
            NodeBuilder::new("a2").label(LABEL_ZONE, "a").build(),
            NodeBuilder::new("b1").label(LABEL_ZONE, "b").build(),
            NodeBuilder::new("nolabel").build(),
        ]
    }

    fn app(name: &str, node: &str) -> k8s_openapi::api::core::v1::Pod {
        PodBuilder::new(name).label("app", "web").node(node).build()
    }

    fn filter(pod: &PodInfo, snap: &Snapshot) -> Vec<(String, Status)> {
        let pl = plugin();
        let mut s = CycleState::default();
        let (_, st) = pl.pre_filter(&mut s, pod, snap);
        assert!(st.is_success());
        let mut v: Vec<(String, Status)> = snap
            .nodes
            .iter()
            .map(|n| (n.name.clone(), pl.filter(&s, pod, n)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn counts_follow_the_cache_across_cycles_with_one_plugin_instance() {
        // The per-node counts are remembered between cycles: they must follow pods added to
        // and removed from nodes of the same snapshot.
        let pl = plugin();
        let mut snap = snapshot(zone_nodes(), vec![app("p1", "a1"), app("p0", "b1")]);
        let pod = PodBuilder::new("new")
            .label("app", "web")
            .spread(1, LABEL_ZONE, "DoNotSchedule", &[("app", "web")])
            .info();
        let ok = |pl: &PodTopologySpread, snap: &Snapshot| {
            let mut s = CycleState::default();
            assert!(pl.pre_filter(&mut s, &pod, snap).1.is_success());
            let mut v: Vec<String> = snap
                .nodes
                .iter()
                .filter(|n| pl.filter(&s, &pod, n).is_success())
                .map(|n| n.name.clone())
                .collect();
            v.sort();
            v
        };
        assert_eq!(ok(&pl, &snap), ["a1", "a2", "b1"]);
        let a2 = snap.index["a2"];
        snap.nodes[a2].add_pod(Arc::new(crate::testing::pod_info(app("p3", "a2"))));
        // a: 2, b: 1 -> only zone b.
        assert_eq!(ok(&pl, &snap), ["b1"]);
        let uid = snap.nodes[a2].pods[0].uid.clone();
        assert!(snap.nodes[a2].remove_pod(&uid));
        assert_eq!(ok(&pl, &snap), ["a1", "a2", "b1"]);
    }

    #[test]
    fn hard_constraint_by_zone() {
        // Zone a has 2 matching pods, zone b has 0: with maxSkew 1 only zone b fits.
        let snap = snapshot(zone_nodes(), vec![app("p1", "a1"), app("p2", "a2")]);
        let pod = PodBuilder::new("new")
            .label("app", "web")
            .spread(1, LABEL_ZONE, "DoNotSchedule", &[("app", "web")])
            .info();
        let res = filter(&pod, &snap);
        let ok: Vec<&str> = res
            .iter()
            .filter(|(_, s)| s.is_success())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(ok, ["b1"]);
        let by = |n: &str| res.iter().find(|(x, _)| x == n).unwrap().1.clone();
        assert_eq!(by("a1").message(), ERR_CONSTRAINTS);
        assert_eq!(by("a1").code, Code::Unschedulable);
        assert_eq!(by("nolabel").message(), ERR_MISSING_LABEL);
        assert_eq!(by("nolabel").code, Code::UnschedulableAndUnresolvable);
        // maxSkew 2 allows zone a again.
        let pod = PodBuilder::new("new")
            .label("app", "web")
            .spread(3, LABEL_ZONE, "DoNotSchedule", &[("app", "web")])
            .info();
        assert_eq!(
            filter(&pod, &snap)
                .iter()
                .filter(|(_, s)| s.is_success())
                .count(),
            3
        );
    }

    #[test]
    fn pods_in_other_namespaces_and_terminating_do_not_count() {
        let other_ns = PodBuilder::new("x")
            .namespace("other")
            .label("app", "web")
            .node("a1")
            .build();
        let dying = PodBuilder::new("y")
            .label("app", "web")
            .node("a1")
            .terminating()
            .build();
        let snap = snapshot(zone_nodes(), vec![other_ns, dying]);
        let pod = PodBuilder::new("new")
            .label("app", "web")
            .spread(1, LABEL_ZONE, "DoNotSchedule", &[("app", "web")])
            .info();
        assert_eq!(
            filter(&pod, &snap)
                .iter()
                .filter(|(_, s)| s.is_success())
                .count(),
            3
        );
    }

    #[test]
    fn min_domains_forces_spreading_into_new_domains() {
        let snap = snapshot(zone_nodes(), vec![app("p1", "a1"), app("p2", "b1")]);
        let mut pod = PodBuilder::new("new")
            .label("app", "web")
            .spread(1, LABEL_ZONE, "DoNotSchedule", &[("app", "web")])
            .build();
        pod.spec
            .as_mut()
            .unwrap()
            .topology_spread_constraints
            .as_mut()
            .unwrap()[0]
            .min_domains = Some(3);
        // Only 2 domains exist < minDomains 3: global min is 0, so skew = 1 + 1 - 0 = 2 > 1 everywhere.
        let res = filter(&crate::testing::pod_info(pod), &snap);
        assert!(res.iter().all(|(_, s)| !s.is_success()));
    }

    #[test]
    fn soft_constraint_scores_emptier_domains_higher() {
        let snap = snapshot(zone_nodes(), vec![app("p1", "a1"), app("p2", "a2")]);
        let pod = PodBuilder::new("new")
            .label("app", "web")
            .spread(1, LABEL_ZONE, "ScheduleAnyway", &[("app", "web")])
            .info();
        let pl = plugin();
        let mut s = CycleState::default();
        let refs: Vec<&NodeInfo> = snap.nodes.iter().collect();
        assert!(pl.pre_score(&mut s, &pod, &refs, &snap).is_success());
        let names: Vec<String> = refs.iter().map(|n| n.name.clone()).collect();
        let mut scores: Vec<i64> = refs
            .iter()
            .map(|n| pl.score(&s, &pod, n).unwrap())
            .collect();
        pl.normalize(&s, &pod, &mut scores);
        let get = |n: &str| scores[names.iter().position(|x| x == n).unwrap()];
        assert!(get("b1") > get("a1"), "b1 {} a1 {}", get("b1"), get("a1"));
        assert_eq!(get("b1"), 100);
        assert_eq!(get("nolabel"), 0, "nodes missing the key are ignored");
    }

    #[test]
    fn system_default_constraints_need_an_owner_selector() {
        let snap = snapshot(zone_nodes(), vec![]);
        let pod = PodBuilder::new("new").label("app", "web").info();
        let refs: Vec<&NodeInfo> = snap.nodes.iter().collect();
        assert!(
            plugin()
                .pre_score(&mut CycleState::default(), &pod, &refs, &snap)
                .is_skip()
        );
        let mut pf = CycleState::default();
        assert!(plugin().pre_filter(&mut pf, &pod, &snap).1.is_skip());
        // With a Service selecting the pod, the soft system defaults apply.
        let (store, mut writer) =
            kube::runtime::reflector::store::<k8s_openapi::api::core::v1::Service>();
        let svc = k8s_openapi::api::core::v1::Service {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(svc));
        let pl = PodTopologySpread::new(
            None,
            PluginContext {
                services: Some(store),
                ..Default::default()
            },
        )
        .unwrap();
        let mut s = CycleState::default();
        assert!(pl.pre_score(&mut s, &pod, &refs, &snap).is_success());
        assert_eq!(
            s.read::<ScoreState>(PRE_SCORE_KEY)
                .unwrap()
                .constraints
                .len(),
            2
        );
    }

    #[test]
    fn args_validation() {
        assert!(
            PodTopologySpread::new(
                Some(&serde_json::json!({"defaultingType": "Weird"})),
                PluginContext::default()
            )
            .is_err()
        );
        let list = serde_json::json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]});
        let pl = PodTopologySpread::new(Some(&list), PluginContext::default()).unwrap();
        assert_eq!(pl.default_constraints.len(), 1);
    }
}
