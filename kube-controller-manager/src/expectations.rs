//! Expectations (upstream's `ControllerExpectations`): after a controller creates or deletes
//! pods it records how many creations and which deletions it expects to observe through its
//! informer, and does not act on that owner again until they are observed (or a timeout
//! passes). This is what stops a replica from being created twice while the cache lags.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's ExpectationsTimeout.
const TTL: Duration = Duration::from_secs(300);

struct Entry {
    add: i64,
    del: HashSet<String>,
    at: Instant,
}

#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Entry>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller may sync `key`: nothing pending, or the record expired.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.add <= 0 && e.del.is_empty()) || e.at.elapsed() > TTL,
        }
    }

    pub fn expect_creations(&self, key: &str, n: usize) {
        let mut m = self.lock();
        let e = m.entry(key.to_string()).or_insert(Entry { add: 0, del: HashSet::new(), at: Instant::now() });
        e.add = n as i64;
        e.at = Instant::now();
    }

    pub fn expect_deletions(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        let mut m = self.lock();
        let e = m.entry(key.to_string()).or_insert(Entry { add: 0, del: HashSet::new(), at: Instant::now() });
        e.del = uids.into_iter().collect();
        e.at = Instant::now();
    }

    /// One expected creation happened (or will not happen because it failed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.add -= 1;
        }
    }

    pub fn lower_creations(&self, key: &str, n: usize) {
        if let Some(e) = self.lock().get_mut(key) {
            e.add -= n as i64;
        }
    }

    pub fn deletion_observed(&self, key: &str, uid: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.del.remove(uid);
        }
    }

    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_must_be_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/a"));
        e.expect_creations("ns/a", 2);
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        assert!(e.satisfied("ns/a"));
        e.expect_deletions("ns/a", ["u1".to_string(), "u2".to_string()]);
        e.deletion_observed("ns/a", "u1");
        e.deletion_observed("ns/a", "u1");
        assert!(!e.satisfied("ns/a"), "a uid is counted once");
        e.deletion_observed("ns/a", "u2");
        assert!(e.satisfied("ns/a"));
        e.expect_creations("ns/a", 3);
        e.lower_creations("ns/a", 3);
        assert!(e.satisfied("ns/a"));
    }
}
