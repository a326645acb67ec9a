//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{ClusterEvent, CycleState, FilterPlugin, Plugin, Status};
use crate::types::{NodeInfo, PodInfo, tolerates};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if pod.tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Status::success();
        }
        Status::unresolvable(ERR_REASON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn cordoned_nodes() {
        let s = CycleState::default();
        let cordoned = NodeBuilder::new("n").unschedulable().info();
        let plain = PodBuilder::new("p").info();
        let st = NodeUnschedulable.filter(&s, &plain, &cordoned);
        assert_eq!(st.message(), ERR_REASON);
        assert!(st.is_rejected());
        let tolerant = PodBuilder::new("p")
            .toleration(
                "node.kubernetes.io/unschedulable",
                "Exists",
                "",
                "NoSchedule",
            )
            .info();
        assert!(
            NodeUnschedulable
                .filter(&s, &tolerant, &cordoned)
                .is_success()
        );
        assert!(
            NodeUnschedulable
                .filter(&s, &plain, &NodeBuilder::new("n").info())
                .is_success()
        );
    }
}
