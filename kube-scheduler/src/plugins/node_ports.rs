//! NodePorts: a pod's host ports must not clash with ports already used on the node
//! (same protocol and port, and overlapping host IPs — 0.0.0.0 overlaps everything).

use crate::framework::{ClusterEvent, CycleState, FilterPlugin, Plugin, Status};
use crate::types::{NodeInfo, PodInfo};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::AssignedPodDelete, ClusterEvent::NodeAdd]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for want in &pod.host_ports {
            let clash = node.used_ports.keys().any(|used| {
                used.port == want.port
                    && used.protocol == want.protocol
                    && (used.ip == want.ip || used.ip == "0.0.0.0" || want.ip == "0.0.0.0")
            });
            if clash {
                return Status::unschedulable(ERR_REASON);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};
    use std::sync::Arc;

    #[test]
    fn port_conflicts() {
        let s = CycleState::default();
        let mut n = NodeBuilder::new("n").info();
        n.add_pod(PodBuilder::new("a").host_port(8080).info());
        let st = NodePorts.filter(&s, &PodBuilder::new("b").host_port(8080).info(), &n);
        assert_eq!(st.message(), ERR_REASON);
        assert!(
            NodePorts
                .filter(&s, &PodBuilder::new("b").host_port(8081).info(), &n)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&s, &PodBuilder::new("b").info(), &n)
                .is_success()
        );
        // Different host IPs on the same port do not clash.
        let mut p1 = PodBuilder::new("c").build();
        p1.spec.as_mut().unwrap().containers[0].ports =
            Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                container_port: 9,
                host_port: Some(9),
                host_ip: Some("127.0.0.1".into()),
                ..Default::default()
            }]);
        let mut p2 = p1.clone();
        p2.spec.as_mut().unwrap().containers[0]
            .ports
            .as_mut()
            .unwrap()[0]
            .host_ip = Some("127.0.0.2".into());
        let mut n2 = NodeBuilder::new("n2").info();
        n2.add_pod(Arc::new(crate::testing::pod_info(p1)));
        assert!(
            NodePorts
                .filter(&s, &crate::testing::pod_info(p2), &n2)
                .is_success()
        );
    }
}
