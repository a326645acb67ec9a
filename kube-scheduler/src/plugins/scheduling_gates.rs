//! SchedulingGates: pods with `spec.schedulingGates` stay out of the active queue until every
//! gate is removed.

use crate::framework::{Plugin, PreEnqueuePlugin, Status};
use crate::types::PodInfo;

pub const NAME: &str = "SchedulingGates";

pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        let gates: Vec<&str> = pod
            .spec()
            .and_then(|s| s.scheduling_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            return Status::success();
        }
        Status::unresolvable(format!(
            "waiting for scheduling gates: [{}]",
            gates.join(" ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::testing::PodBuilder;

    #[test]
    fn gated_pods_wait() {
        assert!(
            SchedulingGates
                .pre_enqueue(&PodBuilder::new("p").info())
                .is_success()
        );
        let st = SchedulingGates.pre_enqueue(
            &PodBuilder::new("p")
                .scheduling_gate("a")
                .scheduling_gate("b")
                .info(),
        );
        assert_eq!(st.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(st.message(), "waiting for scheduling gates: [a b]");
    }
}
