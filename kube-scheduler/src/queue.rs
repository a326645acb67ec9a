//! The scheduling queue, as upstream's PriorityQueue: an active queue ordered by the profile's
//! QueueSort plugin (priority, then arrival), a backoff queue (exponential per pod, 1s..10s by
//! default), and the unschedulable pods parked until a cluster event that could help them —
//! or the periodic flush — moves them back.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::framework::{ClusterEvent, Status};
use crate::types::PodInfo;

/// Pods stay parked at most this long before the flush retries them (upstream's default).
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod in the queue with its scheduling history.
#[derive(Debug, Clone)]
pub struct QueuedPodInfo {
    pub pod: Arc<PodInfo>,
    /// When the pod was (re-)added to a queue; QueueSort's tie-breaker and the backoff origin.
    pub timestamp: Instant,
    /// When the pod was first seen (for the end-to-end latency metric).
    pub initial: Instant,
    pub attempts: u32,
    /// Plugins that rejected the pod in its last attempt.
    pub unschedulable_plugins: HashSet<&'static str>,
    /// Held back by a PreEnqueue plugin (scheduling gates).
    pub gated: bool,
}

impl QueuedPodInfo {
    pub fn new(pod: Arc<PodInfo>) -> Self {
        let now = Instant::now();
        QueuedPodInfo {
            pod,
            timestamp: now,
            initial: now,
            attempts: 0,
            unschedulable_plugins: HashSet::new(),
            gated: false,
        }
    }
}

/// Whether an update could change the scheduling outcome (upstream's isPodUpdated ignores
/// status and bookkeeping metadata).
fn pod_changed(
    old: &k8s_openapi::api::core::v1::Pod,
    new: &k8s_openapi::api::core::v1::Pod,
) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

/// Orders the active queue: `less(a, b)` means `a` pops first.
pub type LessFn = Arc<dyn Fn(&QueuedPodInfo, &QueuedPodInfo) -> bool + Send + Sync>;
/// The PreEnqueue check of the pod's profile.
pub type PreEnqueueFn = Arc<dyn Fn(&PodInfo) -> Status + Send + Sync>;

struct ActiveItem {
    info: QueuedPodInfo,
    seq_no: u64,
    less: LessFn,
}

impl PartialEq for ActiveItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ActiveItem {}
impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ActiveItem {
    // BinaryHeap pops the greatest: "less" (schedule first) must compare greater.
    fn cmp(&self, other: &Self) -> Ordering {
        if (self.less)(&self.info, &other.info) {
            Ordering::Greater
        } else if (self.less)(&other.info, &self.info) {
            Ordering::Less
        } else {
            other.seq_no.cmp(&self.seq_no)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
}

struct Entry {
    info: QueuedPodInfo,
    at: Where,
    seq_no: u64,
}

/// Counts for the pending-pods metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingCounts {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

struct Inner {
    active: BinaryHeap<ActiveItem>,
    /// (expiry, seq_no, uid), earliest first via Reverse.
    backoff: BinaryHeap<std::cmp::Reverse<(Instant, u64, String)>>,
    entries: HashMap<String, Entry>,
    /// Pods being scheduled, with the move counter seen when they were popped.
    in_flight: HashMap<String, u64>,
    /// Bumped on every event that moved (or could have moved) pods.
    move_seq: u64,
    seq_no: u64,
    closed: bool,
    /// Uids of the Unschedulable entries (events scan only these).
    parked: HashSet<String>,
}

fn take(inner: &mut Inner, uid: &str) -> Option<Entry> {
    inner.parked.remove(uid);
    inner.entries.remove(uid)
}

pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    less: LessFn,
    pre_enqueue: PreEnqueueFn,
    initial_backoff: Duration,
    max_backoff: Duration,
    /// Event to the plugins interested in it.
    interested: HashMap<ClusterEvent, HashSet<&'static str>>,
}

impl SchedulingQueue {
    pub fn new(
        less: LessFn,
        pre_enqueue: PreEnqueueFn,
        initial_backoff: Duration,
        max_backoff: Duration,
        interested: HashMap<ClusterEvent, HashSet<&'static str>>,
    ) -> Self {
        SchedulingQueue {
            inner: Mutex::new(Inner {
                active: BinaryHeap::new(),
                backoff: BinaryHeap::new(),
                entries: HashMap::new(),
                in_flight: HashMap::new(),
                move_seq: 0,
                seq_no: 0,
                closed: false,
                parked: HashSet::new(),
            }),
            notify: Notify::new(),
            less,
            pre_enqueue,
            initial_backoff,
            max_backoff,
            interested,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Upstream's backoff: initial * 2^(attempts-1), capped.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d *= 2;
            if d > self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    fn backoff_expiry(&self, info: &QueuedPodInfo) -> Instant {
        info.timestamp + self.backoff_duration(info.attempts)
    }

    fn push(&self, inner: &mut Inner, info: QueuedPodInfo, at: Where) {
        inner.seq_no += 1;
        let seq_no = inner.seq_no;
        let uid = info.pod.uid.clone();
        if at != Where::Unschedulable {
            inner.parked.remove(&uid);
        }
        match at {
            Where::Active => {
                inner.active.push(ActiveItem {
                    info: info.clone(),
                    seq_no,
                    less: self.less.clone(),
                });
                self.notify.notify_one();
            }
            Where::Backoff => inner.backoff.push(std::cmp::Reverse((
                self.backoff_expiry(&info),
                seq_no,
                uid.clone(),
            ))),
            Where::Unschedulable => {
                inner.parked.insert(uid.clone());
            }
        }
        inner.entries.insert(uid, Entry { info, at, seq_no });
    }

    /// A new pending pod.
    pub fn add(&self, pod: Arc<PodInfo>) {
        let mut inner = self.lock();
        if inner.entries.contains_key(&pod.uid) || inner.in_flight.contains_key(&pod.uid) {
            drop(inner);
            self.update(pod);
            return;
        }
        let mut info = QueuedPodInfo::new(pod);
        self.enqueue_checked(&mut inner, &mut info);
    }

    /// Run PreEnqueue and put the pod into active or park it as gated.
    fn enqueue_checked(&self, inner: &mut Inner, info: &mut QueuedPodInfo) {
        let st = (self.pre_enqueue)(&info.pod);
        if st.is_success() {
            info.gated = false;
            self.push(inner, info.clone(), Where::Active);
        } else {
            info.gated = true;
            info.unschedulable_plugins = [st.plugin].into_iter().collect();
            self.push(inner, info.clone(), Where::Unschedulable);
        }
    }

    /// The pending pod changed (labels, gates, resources…): retry it if it was parked.
    pub fn update(&self, pod: Arc<PodInfo>) {
        let mut inner = self.lock();
        let uid = pod.uid.clone();
        let Some(entry) = take(&mut inner, &uid) else {
            if !inner.in_flight.contains_key(&uid) {
                let mut info = QueuedPodInfo::new(pod);
                self.enqueue_checked(&mut inner, &mut info);
            }
            return;
        };
        let mut info = entry.info;
        let changed = pod_changed(&info.pod.pod, &pod.pod);
        info.pod = pod;
        if entry.at == Where::Unschedulable && !info.gated && !changed {
            // Our own status update (or a no-op): stay parked.
            self.push(&mut inner, info, Where::Unschedulable);
            return;
        }
        match entry.at {
            Where::Unschedulable if info.gated => self.enqueue_checked(&mut inner, &mut info),
            Where::Unschedulable => {
                let at = if self.backoff_expiry(&info) > Instant::now() {
                    Where::Backoff
                } else {
                    Where::Active
                };
                self.push(&mut inner, info, at);
            }
            at => self.push(&mut inner, info, at),
        }
    }

    pub fn delete(&self, uid: &str) {
        let mut inner = self.lock();
        take(&mut inner, uid);
    }

    /// Whether the pod is queued or being scheduled.
    pub fn contains(&self, uid: &str) -> bool {
        let inner = self.lock();
        inner.entries.contains_key(uid) || inner.in_flight.contains_key(uid)
    }

    /// Wait for the next pod to schedule; `None` once closed.
    pub async fn pop(&self) -> Option<QueuedPodInfo> {
        loop {
            let notified = self.notify.notified();
            {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                while let Some(item) = inner.active.pop() {
                    let uid = item.info.pod.uid.clone();
                    let valid = inner
                        .entries
                        .get(&uid)
                        .is_some_and(|e| e.seq_no == item.seq_no && e.at == Where::Active);
                    if !valid {
                        continue;
                    }
                    let Some(entry) = take(&mut inner, &uid) else {
                        continue;
                    };
                    let mut info = entry.info;
                    info.attempts += 1;
                    let seq = inner.move_seq;
                    inner.in_flight.insert(uid, seq);
                    return Some(info);
                }
            }
            notified.await;
        }
    }

    /// The cycle for this pod ended with it bound (or gone).
    pub fn done(&self, uid: &str) {
        self.lock().in_flight.remove(uid);
    }

    /// A failed attempt: park as unschedulable, or back off when the failure was an error or a
    /// cluster event arrived during the attempt (it may have changed the outcome).
    pub fn requeue_failed(&self, mut info: QueuedPodInfo, unschedulable: bool) {
        let mut inner = self.lock();
        let uid = info.pod.uid.clone();
        let Some(seq) = inner.in_flight.remove(&uid) else {
            return;
        };
        if inner.entries.contains_key(&uid) {
            return;
        }
        info.timestamp = Instant::now();
        let moved_meanwhile = inner.move_seq != seq;
        let at = if unschedulable && !moved_meanwhile {
            Where::Unschedulable
        } else {
            Where::Backoff
        };
        self.push(&mut inner, info, at);
    }

    /// A cluster event: move parked pods that a plugin interested in `event` rejected.
    pub fn move_on_event(&self, event: ClusterEvent) {
        let interested = self.interested.get(&event);
        let mut inner = self.lock();
        inner.move_seq += 1;
        let now = Instant::now();
        let movable: Vec<String> = inner
            .parked
            .iter()
            .filter_map(|uid| inner.entries.get_key_value(uid))
            .filter(|(_, e)| e.at == Where::Unschedulable && !e.info.gated)
            .filter(|(_, e)| {
                event == ClusterEvent::Any
                    || e.info.unschedulable_plugins.is_empty()
                    || interested.is_some_and(|set| {
                        e.info.unschedulable_plugins.iter().any(|p| set.contains(p))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for uid in movable {
            if let Some(e) = take(&mut inner, &uid) {
                let at = if self.backoff_expiry(&e.info) > now {
                    Where::Backoff
                } else {
                    Where::Active
                };
                self.push(&mut inner, e.info, at);
            }
        }
    }

    /// Move pods whose backoff has expired to the active queue (run every second).
    pub fn flush_backoff_completed(&self) {
        let mut inner = self.lock();
        let now = Instant::now();
        while let Some(std::cmp::Reverse((expiry, seq_no, uid))) = inner.backoff.peek().cloned() {
            if expiry > now {
                break;
            }
            inner.backoff.pop();
            let valid = inner
                .entries
                .get(&uid)
                .is_some_and(|e| e.seq_no == seq_no && e.at == Where::Backoff);
            if valid && let Some(e) = take(&mut inner, &uid) {
                self.push(&mut inner, e.info, Where::Active);
            }
        }
    }

    /// Retry pods parked longer than [`MAX_IN_UNSCHEDULABLE`] (run every 30 seconds).
    pub fn flush_unschedulable_leftover(&self) {
        let mut inner = self.lock();
        let now = Instant::now();
        let old: Vec<String> = inner
            .entries
            .iter()
            .filter(|(_, e)| {
                e.at == Where::Unschedulable
                    && !e.info.gated
                    && now.duration_since(e.info.timestamp) > MAX_IN_UNSCHEDULABLE
            })
            .map(|(k, _)| k.clone())
            .collect();
        for uid in old {
            if let Some(e) = take(&mut inner, &uid) {
                let at = if self.backoff_expiry(&e.info) > now {
                    Where::Backoff
                } else {
                    Where::Active
                };
                self.push(&mut inner, e.info, at);
            }
        }
    }

    pub fn pending(&self) -> PendingCounts {
        let inner = self.lock();
        let mut c = PendingCounts::default();
        for e in inner.entries.values() {
            match e.at {
                Where::Active => c.active += 1,
                Where::Backoff => c.backoff += 1,
                Where::Unschedulable if e.info.gated => c.gated += 1,
                Where::Unschedulable => c.unschedulable += 1,
            }
        }
        c
    }

    /// Stop: pending and future `pop`s return `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PodBuilder, pod_info};

    fn queue(initial: Duration) -> SchedulingQueue {
        let less: LessFn = Arc::new(crate::plugins::priority_sort::less);
        let pre: PreEnqueueFn = Arc::new(|p: &PodInfo| {
            if p.labels.contains_key("gated") {
                Status::unresolvable("gated").with_plugin("SchedulingGates")
            } else {
                Status::success()
            }
        });
        let interested = [(
            ClusterEvent::NodeAdd,
            ["NodeResourcesFit"].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        SchedulingQueue::new(less, pre, initial, Duration::from_secs(10), interested)
    }

    fn pod(name: &str, prio: i32) -> Arc<PodInfo> {
        Arc::new(pod_info(
            PodBuilder::new(name).uid(name).priority(prio).build(),
        ))
    }

    #[tokio::test]
    async fn pops_by_priority_then_arrival() {
        let q = queue(Duration::from_secs(1));
        q.add(pod("low", 1));
        q.add(pod("high", 100));
        q.add(pod("low2", 1));
        let order: Vec<String> = [q.pop().await, q.pop().await, q.pop().await]
            .into_iter()
            .map(|p| p.unwrap().pod.name.clone())
            .collect();
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[tokio::test]
    async fn unschedulable_pods_move_on_interesting_events_only() {
        let q = queue(Duration::ZERO);
        q.add(pod("a", 0));
        let mut info = q.pop().await.unwrap();
        info.unschedulable_plugins.insert("NodeResourcesFit");
        q.requeue_failed(info, true);
        assert_eq!(q.pending().unschedulable, 1);
        q.move_on_event(ClusterEvent::AssignedPodAdd);
        assert_eq!(q.pending().unschedulable, 1, "no interested plugin");
        q.move_on_event(ClusterEvent::NodeAdd);
        assert_eq!(q.pending().active, 1);
        assert_eq!(q.pop().await.unwrap().attempts, 2);
    }

    #[tokio::test]
    async fn event_during_attempt_sends_to_backoff() {
        let q = queue(Duration::from_secs(5));
        q.add(pod("a", 0));
        let info = q.pop().await.unwrap();
        q.move_on_event(ClusterEvent::NodeAdd);
        q.requeue_failed(info, true);
        assert_eq!(q.pending().backoff, 1);
        q.flush_backoff_completed();
        assert_eq!(q.pending().backoff, 1, "backoff not yet over");
    }

    #[tokio::test]
    async fn gated_pods_wait_for_update() {
        let q = queue(Duration::ZERO);
        let gated = Arc::new(pod_info(
            PodBuilder::new("g").uid("g").label("gated", "1").build(),
        ));
        q.add(gated);
        assert_eq!(q.pending().gated, 1);
        q.move_on_event(ClusterEvent::Any);
        assert_eq!(q.pending().gated, 1, "events do not release gated pods");
        q.update(Arc::new(pod_info(PodBuilder::new("g").uid("g").build())));
        assert_eq!(q.pending().active, 1);
    }

    #[tokio::test]
    async fn status_only_updates_keep_pods_parked() {
        let q = queue(Duration::ZERO);
        q.add(pod("a", 0));
        let info = q.pop().await.unwrap();
        q.requeue_failed(info, true);
        let mut p = PodBuilder::new("a").uid("a").priority(0).build();
        p.status = Some(Default::default());
        q.update(Arc::new(pod_info(p.clone())));
        assert_eq!(
            q.pending().unschedulable,
            1,
            "status changes do not requeue"
        );
        p.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        q.update(Arc::new(pod_info(p)));
        assert_eq!(q.pending().active, 1, "spec/label changes do");
    }

    #[test]
    fn backoff_doubles_to_max() {
        let q = queue(Duration::from_secs(1));
        assert_eq!(q.backoff_duration(1), Duration::from_secs(1));
        assert_eq!(q.backoff_duration(2), Duration::from_secs(2));
        assert_eq!(q.backoff_duration(4), Duration::from_secs(8));
        assert_eq!(q.backoff_duration(5), Duration::from_secs(10));
        assert_eq!(q.backoff_duration(50), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn deleted_pods_are_not_popped() {
        let q = queue(Duration::ZERO);
        q.add(pod("a", 0));
        q.add(pod("b", 0));
        q.delete("a");
        assert_eq!(q.pop().await.unwrap().pod.name, "b");
        q.close();
        assert!(q.pop().await.is_none());
    }
}
