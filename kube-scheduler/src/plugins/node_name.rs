//! NodeName: a pod that names a node in `spec.nodeName` fits only there. (Pods with a node name
//! are normally never queued; this guards pods whose name was set in flight.)

use crate::framework::{ClusterEvent, CycleState, FilterPlugin, Plugin, Status};
use crate::types::{NodeInfo, PodInfo};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.node_name.is_empty() || pod.node_name == node.name {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn matches_only_named_node() {
        let s = CycleState::default();
        let n = NodeBuilder::new("n1").info();
        assert!(
            NodeName
                .filter(&s, &PodBuilder::new("p").info(), &n)
                .is_success()
        );
        assert!(
            NodeName
                .filter(&s, &PodBuilder::new("p").node("n1").info(), &n)
                .is_success()
        );
        assert_eq!(
            NodeName
                .filter(&s, &PodBuilder::new("p").node("n2").info(), &n)
                .message(),
            ERR_REASON
        );
    }
}
