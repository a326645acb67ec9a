//! PrioritySort: the active queue pops higher `spec.priority` first, then the pod queued earlier.

use crate::framework::{Plugin, QueueSortPlugin};
use crate::queue::QueuedPodInfo;

pub const NAME: &str = "PrioritySort";

pub struct PrioritySort;

/// Upstream's `Less`: higher priority first, then earlier timestamp.
pub fn less(a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
    let (pa, pb) = (a.pod.priority, b.pod.priority);
    pa > pb || (pa == pb && a.timestamp < b.timestamp)
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        less(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PodBuilder;
    use std::time::{Duration, Instant};

    #[test]
    fn priority_then_time() {
        let t0 = Instant::now();
        let mk = |prio: i32, t: Instant| {
            let mut q = QueuedPodInfo::new(PodBuilder::new("p").priority(prio).info());
            q.timestamp = t;
            q
        };
        let high = mk(10, t0 + Duration::from_secs(5));
        let low_early = mk(1, t0);
        let low_late = mk(1, t0 + Duration::from_secs(1));
        assert!(PrioritySort.less(&high, &low_early));
        assert!(!PrioritySort.less(&low_early, &high));
        assert!(PrioritySort.less(&low_early, &low_late));
        assert!(!PrioritySort.less(&low_late, &low_early));
    }
}
