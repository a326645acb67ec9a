//! The watch cache of one resource (upstream's `Cacher`).
//!
//! One storage watch per resource feeds an in-memory copy of every object plus a bounded window
//! of recent events. Every client watch and every `resourceVersion=0` list is served from here,
//! so a thousand watchers cost one etcd watch. A client watch is "events after revision R": the
//! window answers any R it still covers and anything older is `410 Gone`, as upstream.
//!
//! Objects are kept as their stored bytes and decoded on first use: a resource nobody watches or
//! lists from the cache costs one copy of its bytes, not a JSON tree per object (which made the
//! cache the largest allocation, and page-faulting, cost of every write).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use tracing::{debug, warn};

use crate::storage::{KeyValue, ListOptions, Revision, Storage, StorageError, WatchEventType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored object: its bytes, and the API object they decode to, decoded on first use.
pub struct CachedObject {
    kv: KeyValue,
    decode: Decoder,
    value: OnceLock<Option<Arc<Value>>>,
}

impl std::fmt::Debug for CachedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedObject").field("key", &self.kv.key).field("rv", &self.kv.mod_revision).finish()
    }
}

impl CachedObject {
    fn new(kv: KeyValue, decode: Decoder) -> Self {
        CachedObject { kv, decode, value: OnceLock::new() }
    }

    /// The API object; `None` when the stored bytes do not decode (logged once).
    pub fn value(&self) -> Option<&Arc<Value>> {
        self.value
            .get_or_init(|| match (self.decode)(&self.kv) {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    warn!(key = %self.kv.key, error = %e, "skipping undecodable object");
                    None
                }
            })
            .as_ref()
    }

    /// The same object, reported at a later revision (its deletion).
    fn at_revision(&self, rv: Revision) -> CachedObject {
        let kv = KeyValue { mod_revision: rv, ..self.kv.clone() };
        let later = CachedObject::new(kv, self.decode);
        // Already decoded (it is watched): copy rather than decode again.
        if let Some(Some(v)) = self.value.get() {
            let mut v = (**v).clone();
            set_resource_version(&mut v, rv);
            let _ = later.value.set(Some(Arc::new(v)));
        }
        later
    }
}

/// One change to one object, as seen by the cache.
#[derive(Debug)]
pub struct CachedEvent {
    pub event_type: EventType,
    pub key: String,
    /// The object after the change (for deletions: its last state, carrying the deletion's revision).
    pub object: Arc<CachedObject>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<CachedObject>>,
    pub rv: Revision,
    /// The event as a JSON watch line, encoded by its first watcher.
    line: OnceLock<bytes::Bytes>,
}

impl CachedEvent {
    pub fn new(event_type: EventType, key: String, object: Arc<CachedObject>, prev: Option<Arc<CachedObject>>, rv: Revision) -> Self {
        CachedEvent { event_type, key, object, prev, rv, line: OnceLock::new() }
    }

    /// This event as `encode` writes it, encoded once for every watcher that sends it unchanged.
    pub fn encoded(&self, encode: impl FnOnce() -> bytes::Bytes) -> bytes::Bytes {
        self.line.get_or_init(encode).clone()
    }
}

/// Turns stored bytes into an API object with `metadata.resourceVersion` set.
pub type Decoder = fn(&KeyValue) -> Result<Value, String>;

struct Inner {
    objects: BTreeMap<String, Arc<CachedObject>>,
    events: VecDeque<Arc<CachedEvent>>,
    /// Latest revision applied.
    rv: Revision,
    /// Every event with a revision greater than this is in `events`.
    oldest: Revision,
    tx: broadcast::Sender<Arc<CachedEvent>>,
    ready: bool,
}

impl Inner {
    /// Every cached object whose key starts with `key_prefix`, in key order.
    fn under(&self, key_prefix: &str) -> Vec<Arc<CachedObject>> {
        self.objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Why a watch could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld { requested: Revision, oldest: Revision },
    #[error("watch cache is not initialized yet")]
    NotReady,
}

pub struct Cacher {
    storage: Arc<dyn Storage>,
    prefix: String,
    capacity: usize,
    decode: Decoder,
    inner: RwLock<Inner>,
    ready_notify: tokio::sync::Notify,
}

/// What a new watcher gets: buffered events to replay and a receiver for live ones.
pub struct Subscription {
    pub backlog: Vec<Arc<CachedEvent>>,
    pub live: broadcast::Receiver<Arc<CachedEvent>>,
    /// Events at or below this revision are already covered by the caller's starting point.
    pub after: Revision,
}

const BROADCAST_CAPACITY: usize = 16 * 1024;

impl Cacher {
    /// Create the cache and start its reflector task.
    pub fn start(storage: Arc<dyn Storage>, prefix: String, capacity: usize, decode: Decoder) -> Arc<Self> {
        let cacher = Self::idle(storage, prefix, capacity, decode);
        cacher.spawn_reflector();
        cacher
    }

    /// A cache that never loads (for create-only resources, which store nothing).
    pub fn idle(storage: Arc<dyn Storage>, prefix: String, capacity: usize, decode: Decoder) -> Arc<Self> {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Arc::new(Cacher {
            storage,
            prefix,
            capacity: capacity.max(100),
            decode,
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                rv: 0,
                oldest: 0,
                tx,
                ready: false,
            }),
            ready_notify: tokio::sync::Notify::new(),
        })
    }

    fn spawn_reflector(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(c) = weak.upgrade() else { return };
                match c.run_once().await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        warn!(prefix = %c.prefix, error = %e, "watch cache reflector failed; relisting");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                drop(c);
                tokio::time::sleep(backoff).await;
            }
        });
    }

    /// List, then follow the storage watch until it ends.
    async fn run_once(self: &Arc<Self>) -> Result<(), StorageError> {
        let list = self.storage.list(&self.prefix, ListOptions::default()).await?;
        let objects = list.items.into_iter().map(|kv| (kv.key.clone(), Arc::new(CachedObject::new(kv, self.decode)))).collect();
        let mut stream = self.storage.watch(&self.prefix, list.revision).await?;
        {
            let mut inner = self.inner.write().expect("cacher lock");
            inner.objects = objects;
            inner.events.clear();
            inner.rv = list.revision;
            inner.oldest = list.revision;
            // Watchers of the previous generation may have missed events: end them.
            let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
            inner.tx = tx;
            inner.ready = true;
        }
        self.ready_notify.notify_waiters();
        debug!(prefix = %self.prefix, rv = list.revision, "watch cache initialized");
        use futures::StreamExt;
        while let Some(ev) = stream.next().await {
            let ev = ev?;
            self.apply(ev);
        }
        Err(StorageError::Unavailable("storage watch ended".into()))
    }

    fn apply(&self, ev: crate::storage::WatchEvent) {
        let rv = ev.kv.mod_revision;
        let key = ev.kv.key.clone();
        let mut inner = self.inner.write().expect("cacher lock");
        let prev = inner.objects.get(&key).cloned();
        let (event_type, object) = match ev.event_type {
            WatchEventType::Put => {
                let obj = Arc::new(CachedObject::new(ev.kv, self.decode));
                inner.objects.insert(key.clone(), obj.clone());
                (if prev.is_some() { EventType::Modified } else { EventType::Added }, obj)
            }
            WatchEventType::Delete => {
                inner.objects.remove(&key);
                let Some(last) = prev.as_ref() else {
                    inner.rv = rv;
                    return;
                };
                (EventType::Deleted, Arc::new(last.at_revision(rv)))
            }
        };
        let event = Arc::new(CachedEvent::new(event_type, key, object, prev, rv));
        inner.rv = rv;
        inner.events.push_back(event.clone());
        while inner.events.len() > self.capacity {
            if let Some(old) = inner.events.pop_front() {
                inner.oldest = old.rv;
            }
        }
        let _ = inner.tx.send(event);
    }

    /// Wait until the first list has been loaded (or `timeout` passes).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), CacheError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.ready_notify.notified();
            if self.inner.read().expect("cacher lock").ready {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(CacheError::NotReady);
            }
        }
    }

    /// The cache's current revision.
    pub fn revision(&self) -> Revision {
        self.inner.read().expect("cacher lock").rv
    }

    /// A snapshot of every object under `key_prefix`, with the cache revision it reflects.
    pub fn snapshot(&self, key_prefix: &str) -> (Vec<Arc<Value>>, Revision) {
        let (objects, rv) = {
            let inner = self.inner.read().expect("cacher lock");
            (inner.under(key_prefix), inner.rv)
        };
        (decoded(objects), rv)
    }

    /// Number of cached objects (for metrics).
    pub fn len(&self) -> usize {
        self.inner.read().expect("cacher lock").objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One cached object by key.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        let object = self.inner.read().expect("cacher lock").objects.get(key).cloned()?;
        object.value().cloned()
    }

    /// Subscribe to events with revision > `after`. `TooOld` when the window no longer covers it.
    pub fn subscribe(&self, after: Revision) -> Result<Subscription, CacheError> {
        let inner = self.inner.read().expect("cacher lock");
        if !inner.ready {
            return Err(CacheError::NotReady);
        }
        if after < inner.oldest {
            return Err(CacheError::TooOld { requested: after, oldest: inner.oldest + 1 });
        }
        let start = inner.events.partition_point(|e| e.rv <= after);
        let backlog = inner.events.range(start..).cloned().collect();
        Ok(Subscription { backlog, live: inner.tx.subscribe(), after })
    }

    /// Subscribe starting from the cache's current state: the snapshot under `key_prefix`
    /// plus every later event, atomically.
    pub fn snapshot_and_subscribe(&self, key_prefix: &str) -> Result<(Vec<Arc<Value>>, Subscription), CacheError> {
        let (items, sub) = {
            let inner = self.inner.read().expect("cacher lock");
            if !inner.ready {
                return Err(CacheError::NotReady);
            }
            let items = inner.under(key_prefix);
            (items, Subscription { backlog: Vec::new(), live: inner.tx.subscribe(), after: inner.rv })
        };
        Ok((decoded(items), sub))
    }
}

/// The API objects of cached objects (decoded outside the cache lock), skipping undecodable ones.
fn decoded(objects: Vec<Arc<CachedObject>>) -> Vec<Arc<Value>> {
    objects.iter().filter_map(|o| o.value().cloned()).collect()
}

/// Set `metadata.resourceVersion` on an object.
pub fn set_resource_version(obj: &mut Value, rv: Revision) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Decide what a filtered watcher sees for one event: upstream turns an object that starts
/// matching into ADDED and one that stops matching into DELETED.
pub fn filter_event(ev: &CachedEvent, matches: impl Fn(&Value) -> bool) -> Option<(EventType, Arc<Value>)> {
    let object = ev.object.value()?;
    let cur = matches(object);
    match ev.event_type {
        EventType::Added => cur.then(|| (EventType::Added, object.clone())),
        EventType::Deleted => cur.then(|| (EventType::Deleted, object.clone())),
        EventType::Modified => {
            let prev = ev.prev.as_deref();
            let was = prev.and_then(CachedObject::value).is_some_and(|p| matches(p));
            match (was, cur) {
                (true, true) => Some((EventType::Modified, object.clone())),
                (false, true) => Some((EventType::Added, object.clone())),
                (true, false) => {
                    // Its last matching state, at this event's revision.
                    let old = prev?.at_revision(ev.rv).value()?.clone();
                    Some((EventType::Deleted, old))
                }
                (false, false) => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cached(obj: Value) -> Arc<CachedObject> {
        let kv = KeyValue { key: "k".into(), value: serde_json::to_vec(&obj).unwrap(), create_revision: 1, mod_revision: 6 };
        Arc::new(CachedObject::new(kv, |kv| Ok(serde_json::from_slice(&kv.value).unwrap())))
    }

    fn ev(t: EventType, obj: Value, prev: Option<Value>) -> CachedEvent {
        CachedEvent::new(t, "k".into(), cached(obj), prev.map(cached), 7)
    }

    #[test]
    fn objects_decode_once_on_first_use() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static DECODES: AtomicUsize = AtomicUsize::new(0);
        fn counting(kv: &KeyValue) -> Result<Value, String> {
            DECODES.fetch_add(1, Ordering::SeqCst);
            serde_json::from_slice(&kv.value).map_err(|e| e.to_string())
        }
        let kv = |v: &[u8]| KeyValue { key: "k".into(), value: v.to_vec(), create_revision: 1, mod_revision: 2 };
        let good = CachedObject::new(kv(br#"{"a":1}"#), counting);
        assert_eq!(DECODES.load(Ordering::SeqCst), 0, "nothing is decoded before it is used");
        assert_eq!(good.value().unwrap()["a"], 1);
        assert_eq!(good.value().unwrap()["a"], 1);
        assert_eq!(DECODES.load(Ordering::SeqCst), 1);
        let bad = Arc::new(CachedObject::new(kv(b"{not json"), counting));
        assert!(bad.value().is_none());
        assert!(decoded(vec![bad.clone(), Arc::new(good)]).len() == 1, "undecodable objects are skipped");
        let e = CachedEvent::new(EventType::Added, "k".into(), bad, None, 2);
        assert!(filter_event(&e, |_| true).is_none());
    }

    #[test]
    fn deletion_reports_the_last_state_at_the_deletion_revision() {
        let last = CachedObject::new(
            KeyValue { key: "k".into(), value: br#"{"metadata":{"name":"a"}}"#.to_vec(), create_revision: 1, mod_revision: 3 },
            crate::registry::decode,
        );
        let deleted = last.at_revision(9);
        assert_eq!(last.value().unwrap()["metadata"]["resourceVersion"], "3");
        assert_eq!(deleted.value().unwrap()["metadata"]["resourceVersion"], "9");
        assert_eq!(deleted.value().unwrap()["metadata"]["name"], "a");
        // The same from an object already decoded.
        let again = last.at_revision(11);
        assert_eq!(again.value().unwrap()["metadata"]["resourceVersion"], "11");
        assert_eq!(again.value().unwrap()["metadata"]["name"], "a");
    }

    #[test]
    fn filter_transitions() {
        let m = |v: &Value| v["l"] == "a";
        let e = ev(EventType::Modified, json!({"l": "a", "metadata": {}}), Some(json!({"l": "b", "metadata": {}})));
        assert_eq!(filter_event(&e, m).unwrap().0, EventType::Added);
        let e = ev(EventType::Modified, json!({"l": "b", "metadata": {}}), Some(json!({"l": "a", "metadata": {}})));
        let (t, o) = filter_event(&e, m).unwrap();
        assert_eq!(t, EventType::Deleted);
        assert_eq!(o["l"], "a");
        assert_eq!(o["metadata"]["resourceVersion"], "7");
        let e = ev(EventType::Modified, json!({"l": "b"}), Some(json!({"l": "c"})));
        assert!(filter_event(&e, m).is_none());
        let e = ev(EventType::Added, json!({"l": "a"}), None);
        assert_eq!(filter_event(&e, m).unwrap().0, EventType::Added);
    }
}
