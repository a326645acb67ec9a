//! A rate-limited work queue with client-go's semantics: a key is queued at most once, a key
//! being processed is never handed to a second worker (it is re-queued when the first one is
//! done), failures back off exponentially per key, and keys can be added after a delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::metrics::METRICS;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
    /// When each waiting key was queued (for `workqueue_queue_duration_seconds`).
    added_at: HashMap<String, Instant>,
    shutting_down: bool,
}

pub struct WorkQueue {
    name: String,
    state: Mutex<State>,
    notify: Notify,
    base_delay: Duration,
    max_delay: Duration,
}

impl WorkQueue {
    pub fn new(name: &str) -> Arc<Self> {
        Self::with_backoff(name, Duration::from_millis(5), Duration::from_secs(300))
    }

    pub fn with_backoff(name: &str, base_delay: Duration, max_delay: Duration) -> Arc<Self> {
        Arc::new(WorkQueue {
            name: name.to_string(),
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            base_delay,
            max_delay,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queue `key` unless it is already waiting.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut s = self.lock();
        if s.shutting_down || s.dirty.contains(&key) {
            return;
        }
        s.dirty.insert(key.clone());
        METRICS.adds.with_label_values(&[&self.name]).inc();
        s.added_at.insert(key.clone(), Instant::now());
        if s.processing.contains(&key) {
            return;
        }
        s.queue.push_back(key);
        METRICS.depth.with_label_values(&[&self.name]).set(s.queue.len() as i64);
        drop(s);
        self.notify.notify_one();
    }

    /// Queue `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            return self.add(key);
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.add(key);
        });
    }

    /// Queue `key` after its per-key exponential backoff (5ms, 10ms, ... up to the maximum).
    pub fn add_rate_limited(self: &Arc<Self>, key: impl Into<String>) {
        let key = key.into();
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        METRICS.retries.with_label_values(&[&self.name]).inc();
        let delay = self.base_delay.saturating_mul(1u32 << (n - 1).min(30)).min(self.max_delay);
        self.add_after(key, delay);
    }

    /// How often `key` failed in a row.
    pub fn requeues(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Reset the backoff of `key` (after a successful sync).
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// Wait for the next key; `None` once the queue shuts down.
    pub async fn get(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(k) = s.queue.pop_front() {
                    s.dirty.remove(&k);
                    METRICS.depth.with_label_values(&[&self.name]).set(s.queue.len() as i64);
                    if let Some(t) = s.added_at.remove(&k) {
                        METRICS.queue_duration.with_label_values(&[&self.name]).observe(t.elapsed().as_secs_f64());
                    }
                    s.processing.insert(k.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        self.notify.notify_one();
                    }
                    return Some(k);
                }
                if s.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Mark `key` processed; if it was added meanwhile it goes back in the queue.
    pub fn done(&self, key: &str) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.to_string());
            METRICS.depth.with_label_values(&[&self.name]).set(s.queue.len() as i64);
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shutdown(&self) {
        self.lock().shutting_down = true;
        self.notify.notify_waiters();
    }
}

/// Run `workers` workers over `queue`, each calling `sync(key)`. `Ok(Some(d))` re-queues the
/// key after `d`; an error re-queues it with backoff. Returns when the queue shuts down.
pub async fn run_workers<F, Fut, E>(queue: Arc<WorkQueue>, workers: usize, sync: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, E>> + Send,
    E: std::fmt::Display,
{
    let sync = Arc::new(sync);
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let (q, sync) = (queue.clone(), sync.clone());
        handles.push(tokio::spawn(async move {
            while let Some(key) = q.get().await {
                let started = Instant::now();
                let result = sync(key.clone()).await;
                METRICS.work_duration.with_label_values(&[q.name()]).observe(started.elapsed().as_secs_f64());
                match result {
                    Ok(requeue) => {
                        q.forget(&key);
                        if let Some(d) = requeue {
                            q.add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        if q.requeues(&key) < 5 {
                            debug!(queue = q.name(), key = %key, error = %e, "sync failed; retrying");
                        } else {
                            warn!(queue = q.name(), key = %key, error = %e, "sync failed; retrying");
                        }
                        q.add_rate_limited(key.clone());
                    }
                }
                q.done(&key);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// [`run_workers`] for a controller: each worker calls `reconcile(controller, key)` with its own
/// handle on the controller, e.g. `run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await })`.
pub async fn run_reconciler<C, F, Fut, E>(controller: Arc<C>, queue: Arc<WorkQueue>, workers: usize, reconcile: F)
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, E>> + Send,
    E: std::fmt::Display,
{
    run_workers(queue, workers, move |key| reconcile(controller.clone(), key)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_workqueue_metrics() {
        let q = WorkQueue::new("queue_metrics_test");
        q.add("a");
        q.add("a");
        q.add("b");
        let adds = || METRICS.adds.with_label_values(&["queue_metrics_test"]).get();
        let depth = || METRICS.depth.with_label_values(&["queue_metrics_test"]).get();
        assert_eq!(adds(), 2, "a duplicate add is not counted");
        assert_eq!(depth(), 2);
        let k = q.get().await.unwrap();
        assert_eq!(depth(), 1);
        q.add_rate_limited(k.clone());
        assert_eq!(METRICS.retries.with_label_values(&["queue_metrics_test"]).get(), 1);
        q.done(&k);
        let text = METRICS.render();
        assert!(text.contains("workqueue_queue_duration_seconds_count{name=\"queue_metrics_test\"} 1"), "{text}");
    }

    #[tokio::test]
    async fn dedups_and_never_hands_out_a_key_twice() {
        let q = WorkQueue::new("t");
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.get().await.unwrap();
        assert_eq!(k, "a");
        // Re-added while processing: not handed out until done.
        q.add("a");
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.get().await.unwrap(), "a");
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
        q.shutdown();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn backoff_grows_and_forget_resets() {
        let q = WorkQueue::with_backoff("t", Duration::from_millis(1), Duration::from_millis(4));
        q.add_rate_limited("k");
        q.add_rate_limited("k");
        assert_eq!(q.requeues("k"), 2);
        let k = q.get().await.unwrap();
        assert_eq!(k, "k");
        q.forget("k");
        assert_eq!(q.requeues("k"), 0);
    }
}
