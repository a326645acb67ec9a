//! NodeResourcesFit: the pod's requests (containers, init containers, overhead) must fit in the
//! node's allocatable minus what its pods (bound and assumed) request; the score follows the
//! configured strategy: LeastAllocated (default), MostAllocated or RequestedToCapacityRatio.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;

use crate::config::{ConfigError, ResourceSpec, decode_args};
use crate::framework::*;
use crate::types::{NodeInfo, PodInfo};

pub const NAME: &str = "NodeResourcesFit";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ShapePoint {
    utilization: i64,
    score: i64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RequestedToCapacityRatio {
    #[serde(default)]
    shape: Vec<ShapePoint>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScoringStrategy {
    #[serde(rename = "type")]
    type_: Option<String>,
    resources: Option<Vec<ResourceSpec>>,
    requested_to_capacity_ratio: Option<RequestedToCapacityRatio>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    ignored_resources: Vec<String>,
    #[serde(default)]
    ignored_resource_groups: Vec<String>,
    scoring_strategy: Option<ScoringStrategy>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// (utilization %, score 0..=100) points of a piecewise-linear function.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

pub struct NodeResourcesFit {
    pub strategy: Strategy,
    pub resources: Vec<(String, i64)>,
    ignored: HashSet<String>,
    ignored_groups: HashSet<String>,
}

/// Allocatable and requested amounts of `name` on `node` once `pod` is added. Cpu and memory
/// use the non-zero defaults for pods without requests unless `actual` is set.
pub fn allocatable_and_requested(
    node: &NodeInfo,
    pod: &PodInfo,
    name: &str,
    actual: bool,
) -> (i64, i64) {
    let alloc = node.allocatable.get(name);
    let req = match (name, actual) {
        ("cpu", false) => node.non_zero_cpu + pod.non_zero_cpu,
        ("memory", false) => node.non_zero_mem + pod.non_zero_mem,
        _ => node.requested.get(name) + pod.requests.get(name),
    };
    (alloc, req)
}

fn least_requested(req: i64, cap: i64) -> i64 {
    if cap == 0 || req > cap {
        0
    } else {
        (cap - req) * MAX_NODE_SCORE / cap
    }
}

fn most_requested(req: i64, cap: i64) -> i64 {
    if cap == 0 {
        return 0;
    }
    req.min(cap) * MAX_NODE_SCORE / cap
}

/// Upstream's broken linear function over (utilization, score) points.
fn broken_linear(points: &[(i64, i64)], x: i64) -> i64 {
    for (i, (px, py)) in points.iter().enumerate() {
        if x <= *px {
            if i == 0 {
                return *py;
            }
            let (qx, qy) = points[i - 1];
            return qy + (py - qy) * (x - qx) / (px - qx);
        }
    }
    points.last().map(|p| p.1).unwrap_or(0)
}

impl NodeResourcesFit {
    pub fn new(args: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let a: Args = decode_args(NAME, args)?;
        let ss = a.scoring_strategy.unwrap_or_default();
        let bad = |m: String| ConfigError::Args {
            plugin: NAME.into(),
            message: m,
        };
        let strategy = match ss.type_.as_deref().unwrap_or("LeastAllocated") {
            "LeastAllocated" => Strategy::LeastAllocated,
            "MostAllocated" => Strategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape = ss
                    .requested_to_capacity_ratio
                    .map(|r| r.shape)
                    .unwrap_or_default();
                if shape.is_empty() {
                    return Err(bad(
                        "requestedToCapacityRatio.shape must not be empty".into()
                    ));
                }
                let mut pts = Vec::new();
                for (i, p) in shape.iter().enumerate() {
                    if !(0..=100).contains(&p.utilization) || !(0..=10).contains(&p.score) {
                        return Err(bad(format!(
                            "shape[{i}]: utilization must be in 0..100 and score in 0..10"
                        )));
                    }
                    if i > 0 && p.utilization <= shape[i - 1].utilization {
                        return Err(bad("shape utilization values must be increasing".into()));
                    }
                    pts.push((p.utilization, p.score * MAX_NODE_SCORE / 10));
                }
                Strategy::RequestedToCapacityRatio(pts)
            }
            other => return Err(bad(format!("unknown scoringStrategy.type {other:?}"))),
        };
        let resources = match ss.resources {
            Some(r) if !r.is_empty() => r
                .into_iter()
                .map(|r| (r.name, if r.weight == 0 { 1 } else { r.weight }))
                .collect(),
            _ => vec![("cpu".to_string(), 1), ("memory".to_string(), 1)],
        };
        if resources.iter().any(|(_, w)| *w < 1 || *w > 100) {
            return Err(bad("resource weights must be in 1..100".into()));
        }
        Ok(NodeResourcesFit {
            strategy,
            resources,
            ignored: a.ignored_resources.into_iter().collect(),
            ignored_groups: a.ignored_resource_groups.into_iter().collect(),
        })
    }

    fn is_ignored(&self, name: &str) -> bool {
        self.ignored.contains(name)
            || name
                .split_once('/')
                .is_some_and(|(g, _)| self.ignored_groups.contains(g))
    }

    /// Every resource the pod lacks on the node (empty when it fits).
    pub fn insufficient(&self, pod: &PodInfo, node: &NodeInfo) -> Vec<Cow<'static, str>> {
        let mut out = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            out.push("Too many pods".into());
        }
        let r = &pod.requests;
        if r.is_zero() {
            return out;
        }
        let (a, u) = (&node.allocatable, &node.requested);
        if r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - u.milli_cpu {
            out.push("Insufficient cpu".into());
        }
        if r.memory > 0 && r.memory > a.memory - u.memory {
            out.push("Insufficient memory".into());
        }
        if r.ephemeral_storage > 0
            && r.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage
        {
            out.push("Insufficient ephemeral-storage".into());
        }
        for (name, want) in &r.scalar {
            if *want == 0 || self.is_ignored(name) {
                continue;
            }
            if *want > a.get(name) - u.get(name) {
                out.push(format!("Insufficient {name}").into());
            }
        }
        out
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = self.insufficient(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: Code::Unschedulable,
                reasons,
                plugin: "",
            }
        }
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let (mut total, mut weights) = (0i64, 0i64);
        for (name, w) in &self.resources {
            let (alloc, req) = allocatable_and_requested(node, pod, name, false);
            if alloc == 0 {
                continue;
            }
            let s = match &self.strategy {
                Strategy::LeastAllocated => least_requested(req, alloc),
                Strategy::MostAllocated => most_requested(req, alloc),
                Strategy::RequestedToCapacityRatio(pts) => {
                    broken_linear(pts, (req.min(alloc)) * 100 / alloc)
                }
            };
            total += s * w;
            weights += w;
        }
        if weights == 0 {
            return Ok(0);
        }
        Ok(match self.strategy {
            Strategy::RequestedToCapacityRatio(_) => (total as f64 / weights as f64).round() as i64,
            _ => total / weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};
    use serde_json::json;

    fn fit() -> NodeResourcesFit {
        NodeResourcesFit::new(None).unwrap()
    }

    #[test]
    fn fits_and_reports_every_insufficient_resource() {
        let s = CycleState::default();
        let mut n = NodeBuilder::new("n").capacity("2", "4Gi").info();
        n.add_pod(
            PodBuilder::new("a")
                .node("n")
                .container("1500m", "3Gi")
                .info(),
        );
        assert!(
            fit()
                .filter(
                    &s,
                    &PodBuilder::new("p").container("500m", "1Gi").info(),
                    &n
                )
                .is_success()
        );
        let st = fit().filter(
            &s,
            &PodBuilder::new("p").container("600m", "2Gi").info(),
            &n,
        );
        assert_eq!(st.code, Code::Unschedulable);
        assert_eq!(st.reasons, ["Insufficient cpu", "Insufficient memory"]);
        // Init containers and overhead count.
        let st = fit().filter(
            &s,
            &PodBuilder::new("p")
                .container("100m", "")
                .init_container("1", "")
                .info(),
            &n,
        );
        assert_eq!(st.reasons, ["Insufficient cpu"]);
        let st = fit().filter(
            &s,
            &PodBuilder::new("p")
                .container("400m", "")
                .overhead("200m")
                .info(),
            &n,
        );
        assert_eq!(st.reasons, ["Insufficient cpu"]);
        // A pod requesting nothing fits as long as there is a pod slot.
        assert!(
            fit()
                .filter(&s, &PodBuilder::new("p").info(), &n)
                .is_success()
        );
        let full = NodeBuilder::new("n").capacity("2", "4Gi").pods("1").info();
        let mut full = full;
        full.add_pod(PodBuilder::new("x").info());
        assert_eq!(
            fit()
                .filter(&s, &PodBuilder::new("p").info(), &full)
                .reasons,
            ["Too many pods"]
        );
    }

    #[test]
    fn extended_resources_and_ignored() {
        let s = CycleState::default();
        let mut node = NodeBuilder::new("n").capacity("2", "4Gi").build();
        node.status
            .as_mut()
            .unwrap()
            .allocatable
            .as_mut()
            .unwrap()
            .insert("example.com/gpu".into(), crate::testing::q("1"));
        let n = NodeInfo::from_node(std::sync::Arc::new(node));
        let mut pod = PodBuilder::new("p").container("100m", "").build();
        pod.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert("example.com/gpu".into(), crate::testing::q("2"));
        let pi = crate::testing::pod_info(pod);
        assert_eq!(
            fit().filter(&s, &pi, &n).reasons,
            ["Insufficient example.com/gpu"]
        );
        let ignoring =
            NodeResourcesFit::new(Some(&json!({"ignoredResourceGroups": ["example.com"]})))
                .unwrap();
        assert!(ignoring.filter(&s, &pi, &n).is_success());
    }

    #[test]
    fn least_and_most_allocated_scores() {
        let s = CycleState::default();
        // Upstream's example: node 4000m/10000 memory; pod 3000m/5000 → cpu 25, memory 50 → 37.
        let mut node = NodeBuilder::new("n").build();
        node.status.as_mut().unwrap().allocatable = Some(
            [
                ("cpu".to_string(), crate::testing::q("4")),
                ("memory".to_string(), crate::testing::q("10000")),
                ("pods".to_string(), crate::testing::q("10")),
            ]
            .into(),
        );
        let n = NodeInfo::from_node(std::sync::Arc::new(node));
        let pod = PodBuilder::new("p").container("3", "5000").info();
        assert_eq!(fit().score(&s, &pod, &n).unwrap(), 37);
        let most =
            NodeResourcesFit::new(Some(&json!({"scoringStrategy": {"type": "MostAllocated"}})))
                .unwrap();
        assert_eq!(most.score(&s, &pod, &n).unwrap(), 62);
        // Over-requested resources score 0 under LeastAllocated.
        let big = PodBuilder::new("p").container("5", "5000").info();
        assert_eq!(fit().score(&s, &big, &n).unwrap(), 25);
        // Weights.
        let weighted = NodeResourcesFit::new(Some(&json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}}))).unwrap();
        assert_eq!(weighted.score(&s, &pod, &n).unwrap(), (25 * 3 + 50) / 4);
    }

    #[test]
    fn requested_to_capacity_ratio() {
        let s = CycleState::default();
        let args = json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}});
        let r = NodeResourcesFit::new(Some(&args)).unwrap();
        let n = NodeBuilder::new("n").capacity("4", "8Gi").info();
        let pod = PodBuilder::new("p").container("1", "4Gi").info();
        // cpu 25%, memory 50% → bin packing favours fuller nodes: (25 + 50) / 2 = 37.5 → 38.
        assert_eq!(r.score(&s, &pod, &n).unwrap(), 38);
        assert_eq!(broken_linear(&[(0, 100), (50, 0)], 25), 50);
        assert_eq!(broken_linear(&[(0, 100), (50, 0)], 80), 0);
        assert!(
            NodeResourcesFit::new(Some(
                &json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}})
            ))
            .is_err()
        );
        assert!(
            NodeResourcesFit::new(Some(&json!({"scoringStrategy": {"type": "Bogus"}}))).is_err()
        );
    }
}
