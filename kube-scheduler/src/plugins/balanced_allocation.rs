//! NodeResourcesBalancedAllocation: favours nodes whose cpu and memory utilization would be
//! closest to each other after placing the pod (1 - standard deviation of the fractions).

use serde::Deserialize;

use crate::cache::Snapshot;
use crate::config::{ConfigError, ResourceSpec, decode_args};
use crate::framework::*;
use crate::plugins::node_resources_fit::allocatable_and_requested;
use crate::types::{NodeInfo, PodInfo};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    resources: Option<Vec<ResourceSpec>>,
}

pub struct BalancedAllocation {
    resources: Vec<String>,
}

impl BalancedAllocation {
    pub fn new(args: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let a: Args = decode_args(NAME, args)?;
        let resources = match a.resources {
            Some(r) if !r.is_empty() => r.into_iter().map(|r| r.name).collect(),
            _ => vec!["cpu".to_string(), "memory".to_string()],
        };
        Ok(BalancedAllocation { resources })
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        _state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snap: &Snapshot,
    ) -> Status {
        // Best-effort pods change no balance.
        if self.resources.iter().all(|r| pod.requests.get(r) == 0) {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let mut fractions = Vec::with_capacity(self.resources.len());
        for r in &self.resources {
            let (alloc, req) = allocatable_and_requested(node, pod, r, true);
            if alloc == 0 {
                continue;
            }
            fractions.push((req as f64 / alloc as f64).min(1.0));
        }
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions
                    .iter()
                    .map(|f| (f - mean) * (f - mean))
                    .sum::<f64>()
                    / n as f64)
                    .sqrt()
            }
        };
        Ok(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};

    #[test]
    fn balanced_nodes_score_higher() {
        let pl = BalancedAllocation::new(None).unwrap();
        let s = CycleState::default();
        let pod = PodBuilder::new("p").container("1", "1Gi").info();
        // cpu 1/4 = 0.25, memory 1/4 = 0.25 → perfectly balanced.
        let even = NodeBuilder::new("a").capacity("4", "4Gi").info();
        assert_eq!(pl.score(&s, &pod, &even).unwrap(), 100);
        // cpu 1/2 = 0.5, memory 1/8 = 0.125 → std 0.1875 → 81.
        let skewed = NodeBuilder::new("b").capacity("2", "8Gi").info();
        assert_eq!(pl.score(&s, &pod, &skewed).unwrap(), 81);
        // Existing pods count with their actual requests.
        let mut loaded = NodeBuilder::new("c").capacity("4", "4Gi").info();
        loaded.add_pod(PodBuilder::new("x").container("2", "").info());
        assert_eq!(pl.score(&s, &pod, &loaded).unwrap(), 75);
    }

    #[test]
    fn best_effort_pods_skip() {
        let pl = BalancedAllocation::new(None).unwrap();
        let mut s = CycleState::default();
        let st = pl.pre_score(
            &mut s,
            &PodBuilder::new("p").info(),
            &[],
            &snapshot(vec![], vec![]),
        );
        assert!(st.is_skip());
    }
}
