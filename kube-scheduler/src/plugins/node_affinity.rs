//! NodeAffinity: `spec.nodeSelector` and required node affinity must match the node's labels
//! (and `metadata.name` fields); preferred terms add their weights to the score. Supports the
//! `addedAffinity` arg (profile-wide extra affinity) like upstream.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::NodeAffinity as ApiNodeAffinity;
use serde::Deserialize;

use crate::cache::Snapshot;
use crate::config::{ConfigError, decode_args};
use crate::framework::*;
use crate::selector::{CompiledNodeSelector, NodeTerm};
use crate::types::{Labels, NodeInfo, PodInfo};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    added_affinity: Option<ApiNodeAffinity>,
}

pub struct NodeAffinity {
    added_required: Option<CompiledNodeSelector>,
    added_preferred: Vec<(i64, NodeTerm)>,
}

/// The pod's compiled nodeSelector and required node affinity, computed once per cycle.
#[derive(Clone, Debug)]
pub struct Required {
    node_selector: Labels,
    affinity: Option<CompiledNodeSelector>,
}

#[derive(Clone)]
struct Preferred(Vec<(i64, NodeTerm)>);

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

/// Compile the pod's node requirements (reuse the result across nodes).
pub fn required_of(pod: &PodInfo) -> Required {
    let spec = pod.spec();
    let node_selector = spec
        .and_then(|s| s.node_selector.clone())
        .unwrap_or_default();
    let affinity = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(CompiledNodeSelector::compile);
    Required {
        node_selector,
        affinity,
    }
}

impl Required {
    pub fn matches_node(&self, node: &NodeInfo) -> bool {
        self.matches(&node.name, &node.labels)
    }

    fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .affinity
                .as_ref()
                .is_none_or(|a| a.matches(node_name, labels))
    }
}

impl NodeAffinity {
    pub fn new(args: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let a: Args = decode_args(NAME, args)?;
        let added_required = a
            .added_affinity
            .as_ref()
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(CompiledNodeSelector::compile);
        let added_preferred = a
            .added_affinity
            .iter()
            .flat_map(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
            })
            .map(|p| (p.weight as i64, NodeTerm::compile(&p.preference)))
            .collect();
        Ok(NodeAffinity {
            added_required,
            added_preferred,
        })
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
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

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snap: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let req = required_of(pod);
        let mut result = PreFilterResult::all();
        // If every term pins metadata.name, only those nodes can match.
        if let Some(aff) = &req.affinity {
            let mut names = HashSet::new();
            let mut all_pinned = !aff.terms.is_empty();
            for t in &aff.terms {
                match t.pinned_names() {
                    Some(n) => names.extend(n),
                    None => all_pinned = false,
                }
            }
            if all_pinned {
                if names.is_empty() {
                    return (result, Status::unresolvable(ERR_REASON));
                }
                result.node_names = Some(names);
            }
        }
        if req.node_selector.is_empty() && req.affinity.is_none() && self.added_required.is_none() {
            return (result, Status::skip());
        }
        state.write(PRE_FILTER_KEY, req);
        (result, Status::success())
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if let Some(added) = &self.added_required
            && !added.matches(&node.name, &node.labels)
        {
            return Status::unresolvable("node(s) didn't match scheduler-enforced node affinity");
        }
        let ok = match state.read::<Required>(PRE_FILTER_KEY) {
            Some(r) => r.matches(&node.name, &node.labels),
            None => required_of(pod).matches(&node.name, &node.labels),
        };
        if ok {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snap: &Snapshot,
    ) -> Status {
        let mut terms: Vec<(i64, NodeTerm)> = pod
            .spec()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0)
            .map(|p| (p.weight as i64, NodeTerm::compile(&p.preference)))
            .collect();
        terms.extend(self.added_preferred.iter().cloned());
        if terms.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, Preferred(terms));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(Preferred(terms)) = state.read::<Preferred>(PRE_SCORE_KEY) else {
            return Ok(0);
        };
        Ok(terms
            .iter()
            .filter(|(_, t)| t.matches(&node.name, &node.labels))
            .map(|(w, _)| *w)
            .sum())
    }
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};

    fn run_filter(pod: &PodInfo, node: &NodeInfo) -> Status {
        let pl = NodeAffinity::new(None).unwrap();
        let mut s = CycleState::default();
        let (_, st) = pl.pre_filter(&mut s, pod, &snapshot(vec![], vec![]));
        if st.is_skip() {
            return Status::success();
        }
        pl.filter(&s, pod, node)
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let ssd = NodeBuilder::new("a")
            .label("disk", "ssd")
            .label("zone", "z1")
            .info();
        let hdd = NodeBuilder::new("b").label("disk", "hdd").info();
        let p = PodBuilder::new("p").node_selector("disk", "ssd").info();
        assert!(run_filter(&p, &ssd).is_success());
        let st = run_filter(&p, &hdd);
        assert_eq!(st.message(), ERR_REASON);
        assert_eq!(st.code, Code::UnschedulableAndUnresolvable);

        let p = PodBuilder::new("p")
            .required_node_affinity("zone", "In", &["z1", "z2"])
            .info();
        assert!(run_filter(&p, &ssd).is_success());
        assert!(!run_filter(&p, &hdd).is_success());
        let p = PodBuilder::new("p")
            .required_node_affinity("zone", "DoesNotExist", &[])
            .info();
        assert!(!run_filter(&p, &ssd).is_success());
        assert!(run_filter(&p, &hdd).is_success());
        // Both nodeSelector and affinity must hold.
        let p = PodBuilder::new("p")
            .node_selector("disk", "hdd")
            .required_node_affinity("zone", "In", &["z1"])
            .info();
        assert!(!run_filter(&p, &ssd).is_success());
        assert!(!run_filter(&p, &hdd).is_success());
    }

    #[test]
    fn prefilter_narrows_to_pinned_names() {
        let mut pod = PodBuilder::new("p").build();
        pod.spec.as_mut().unwrap().affinity = Some(k8s_openapi::api::core::v1::Affinity {
            node_affinity: Some(ApiNodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(
                    k8s_openapi::api::core::v1::NodeSelector {
                        node_selector_terms: vec![k8s_openapi::api::core::v1::NodeSelectorTerm {
                            match_fields: Some(vec![
                                k8s_openapi::api::core::v1::NodeSelectorRequirement {
                                    key: "metadata.name".into(),
                                    operator: "In".into(),
                                    values: Some(vec!["n2".into()]),
                                },
                            ]),
                            ..Default::default()
                        }],
                    },
                ),
                ..Default::default()
            }),
            ..Default::default()
        });
        let pi = crate::testing::pod_info(pod);
        let pl = NodeAffinity::new(None).unwrap();
        let mut s = CycleState::default();
        let (r, st) = pl.pre_filter(&mut s, &pi, &snapshot(vec![], vec![]));
        assert!(st.is_success());
        assert_eq!(
            r.node_names.unwrap(),
            ["n2".to_string()].into_iter().collect()
        );
    }

    #[test]
    fn preferred_terms_score_and_normalize() {
        let pl = NodeAffinity::new(None).unwrap();
        let pod = PodBuilder::new("p")
            .preferred_node_affinity(5, "zone", &["z1"])
            .preferred_node_affinity(3, "disk", &["ssd"])
            .info();
        let nodes = [
            NodeBuilder::new("a")
                .label("zone", "z1")
                .label("disk", "ssd")
                .info(),
            NodeBuilder::new("b").label("disk", "ssd").info(),
            NodeBuilder::new("c").info(),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut s = CycleState::default();
        assert!(
            pl.pre_score(&mut s, &pod, &refs, &snapshot(vec![], vec![]))
                .is_success()
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| pl.score(&s, &pod, n).unwrap())
            .collect();
        assert_eq!(scores, [8, 3, 0]);
        pl.normalize(&s, &pod, &mut scores);
        assert_eq!(scores, [100, 37, 0]);
    }

    #[test]
    fn added_affinity_arg() {
        let args = serde_json::json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["batch"]}]}]}}});
        let pl = NodeAffinity::new(Some(&args)).unwrap();
        let s = CycleState::default();
        let pod = PodBuilder::new("p").info();
        assert!(
            !pl.filter(&s, &pod, &NodeBuilder::new("a").info())
                .is_success()
        );
        assert!(
            pl.filter(
                &s,
                &pod,
                &NodeBuilder::new("a").label("pool", "batch").info()
            )
            .is_success()
        );
        assert!(NodeAffinity::new(Some(&serde_json::json!({"addedAffinity": 5}))).is_err());
    }
}
