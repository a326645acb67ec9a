//! TaintToleration: NoSchedule/NoExecute taints must be tolerated (Filter); nodes with fewer
//! untolerated PreferNoSchedule taints score higher (Score, normalized in reverse).

use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, MAX_NODE_SCORE, Plugin, ScorePlugin, Status,
    default_normalize_score,
};
use crate::types::{NodeInfo, PodInfo, find_untolerated, tolerates};

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match find_untolerated(&node.taints, &pod.tolerations, &["NoSchedule", "NoExecute"]) {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let tols = pod.tolerations.iter().filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        });
        let tols: Vec<_> = tols.collect();
        let count = node
            .taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| !tols.iter().any(|tol| tolerates(tol, t)))
            .count();
        Ok(count as i64)
    }
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn filter_untolerated_taints() {
        let s = CycleState::default();
        let n = NodeBuilder::new("n")
            .taint("dedicated", "gpu", "NoSchedule")
            .info();
        let st = TaintToleration.filter(&s, &PodBuilder::new("p").info(), &n);
        assert_eq!(st.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            st.message(),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
        let tol = PodBuilder::new("p")
            .toleration("dedicated", "Equal", "gpu", "NoSchedule")
            .info();
        assert!(TaintToleration.filter(&s, &tol, &n).is_success());
        // PreferNoSchedule never filters.
        let soft = NodeBuilder::new("n")
            .taint("a", "", "PreferNoSchedule")
            .info();
        assert!(
            TaintToleration
                .filter(&s, &PodBuilder::new("p").info(), &soft)
                .is_success()
        );
    }

    #[test]
    fn score_prefers_fewer_untolerated_soft_taints() {
        let s = CycleState::default();
        let pod = PodBuilder::new("p")
            .toleration("ok", "Exists", "", "PreferNoSchedule")
            .info();
        let nodes = [
            NodeBuilder::new("a").info(),
            NodeBuilder::new("b")
                .taint("x", "", "PreferNoSchedule")
                .taint("ok", "", "PreferNoSchedule")
                .info(),
            NodeBuilder::new("c")
                .taint("x", "", "PreferNoSchedule")
                .taint("y", "", "PreferNoSchedule")
                .info(),
        ];
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| TaintToleration.score(&s, &pod, n).unwrap())
            .collect();
        assert_eq!(scores, [0, 1, 2]);
        TaintToleration.normalize(&s, &pod, &mut scores);
        assert_eq!(scores, [100, 50, 0]);
    }
}
