//! A single-node, on-disk store with etcd's MVCC semantics, so the API server can run without
//! an etcd cluster.
//!
//! Everything lives in one `redb` file (`<dir>/state.redb`) with three tables:
//! - `meta`: the global revision counter and the compaction revision;
//! - `versions`: `(key, revision) -> record`, one row per write (a live value or a tombstone),
//!   which makes reads at an older revision a range lookup;
//! - `events`: `revision -> key`, the event log watches replay from.
//!
//! Every write is one redb transaction committed with immediate durability, made under a
//! process-wide writer lock that also covers the broadcast of the resulting event, so live
//! watchers see events in revision order. Watches subscribe to the broadcast before reading the
//! log, then skip what they already sent, so replay and live delivery join without gaps or
//! duplicates. A watcher that falls behind the broadcast buffer goes back to reading the log.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::broadcast;

use super::{
    KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchEvent, WatchEventType, WatchStream,
};

const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const VERSIONS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("versions");
const EVENTS: TableDefinition<i64, &str> = TableDefinition::new("events");

const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// Live events buffered per watcher before it has to fall back to the log.
const BROADCAST_CAPACITY: usize = 1024;
/// Log entries read per step while a watcher replays history.
const REPLAY_BATCH: usize = 512;

const RECORD_LIVE: u8 = 0;
const RECORD_TOMBSTONE: u8 = 1;

/// The embedded backend. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct EmbeddedStorage {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Serializes writers so that commit order and broadcast order agree.
    write_lock: Mutex<()>,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

/// One row of `versions`, decoded.
enum Record {
    Live { create_revision: Revision, value: Vec<u8> },
    Tombstone,
}

enum Mutation {
    Create(Vec<u8>),
    Update(Vec<u8>, Revision),
    Delete(Option<Revision>),
}

fn db_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!("embedded store: {e}"))
}

fn encode_live(create_revision: Revision, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + value.len());
    out.push(RECORD_LIVE);
    out.extend_from_slice(&create_revision.to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn decode(bytes: &[u8]) -> Result<Record, StorageError> {
    match bytes.first() {
        Some(&RECORD_TOMBSTONE) => Ok(Record::Tombstone),
        Some(&RECORD_LIVE) if bytes.len() >= 9 => {
            let mut rev = [0u8; 8];
            rev.copy_from_slice(&bytes[1..9]);
            Ok(Record::Live {
                create_revision: i64::from_be_bytes(rev),
                value: bytes[9..].to_vec(),
            })
        }
        _ => Err(StorageError::Internal("embedded store: corrupt version record".into())),
    }
}

fn read_meta(meta: &impl ReadableTable<&'static str, i64>, name: &str) -> Result<i64, StorageError> {
    Ok(meta.get(name).map_err(db_err)?.map(|v| v.value()).unwrap_or(0))
}

/// The newest record of `key` with revision `<= at`.
fn version_at(
    versions: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    key: &str,
    at: Revision,
) -> Result<Option<(Revision, Record)>, StorageError> {
    let mut range = versions.range((key, i64::MIN)..=(key, at)).map_err(db_err)?;
    match range.next_back() {
        None => Ok(None),
        Some(entry) => {
            let (k, v) = entry.map_err(db_err)?;
            Ok(Some((k.value().1, decode(v.value())?)))
        }
    }
}

/// The value of `key` as of revision `at`, if it existed then.
fn live_at(
    versions: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    key: &str,
    at: Revision,
) -> Result<Option<KeyValue>, StorageError> {
    Ok(match version_at(versions, key, at)? {
        Some((mod_revision, Record::Live { create_revision, value })) => Some(KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision,
        }),
        _ => None,
    })
}

/// The first key `>= from` (or `> from` when `exclusive`) that has any stored version.
fn next_key(
    versions: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    from: &str,
    exclusive: bool,
) -> Result<Option<String>, StorageError> {
    let lower = if exclusive {
        Bound::Excluded((from, i64::MAX))
    } else {
        Bound::Included((from, i64::MIN))
    };
    let mut range = versions
        .range::<(&str, i64)>((lower, Bound::Unbounded))
        .map_err(db_err)?;
    match range.next() {
        None => Ok(None),
        Some(entry) => Ok(Some(entry.map_err(db_err)?.0.value().0.to_string())),
    }
}

/// Rebuilds the event written at `revision` to `key`.
fn event_at(
    versions: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    key: &str,
    revision: Revision,
) -> Result<WatchEvent, StorageError> {
    let record = versions
        .get((key, revision))
        .map_err(db_err)?
        .ok_or_else(|| StorageError::Internal(format!("embedded store: event {revision} has no version")))?;
    let record = decode(record.value())?;
    let prev = live_at(versions, key, revision - 1)?;
    Ok(match record {
        Record::Live { create_revision, value } => WatchEvent {
            event_type: WatchEventType::Put,
            kv: KeyValue {
                key: key.to_string(),
                value,
                create_revision,
                mod_revision: revision,
            },
            prev,
        },
        Record::Tombstone => WatchEvent {
            event_type: WatchEventType::Delete,
            kv: KeyValue {
                key: key.to_string(),
                value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                create_revision: prev.as_ref().map(|p| p.create_revision).unwrap_or(0),
                mod_revision: revision,
            },
            prev,
        },
    })
}

/// What a replay step read from the log.
struct ReplayBatch {
    events: Vec<WatchEvent>,
    /// Every revision up to this one has been looked at.
    through: Revision,
    /// The batch reached the store's current revision.
    caught_up: bool,
}

impl Inner {
    fn check_read_revision(
        &self,
        meta: &impl ReadableTable<&'static str, i64>,
        requested: Option<Revision>,
    ) -> Result<Revision, StorageError> {
        let current = read_meta(meta, META_REVISION)?;
        let Some(requested) = requested.filter(|r| *r > 0) else {
            return Ok(current);
        };
        let compacted = read_meta(meta, META_COMPACTED)?;
        if requested < compacted {
            return Err(StorageError::Compacted { requested, compacted });
        }
        if requested > current {
            return Err(StorageError::FutureRevision { requested, current });
        }
        Ok(requested)
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let versions = txn.open_table(VERSIONS).map_err(db_err)?;
        live_at(&versions, key, i64::MAX)
    }

    fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        let versions = txn.open_table(VERSIONS).map_err(db_err)?;
        let at = self.check_read_revision(&meta, opts.revision)?;
        let limit = opts.limit.filter(|l| *l > 0).map(|l| l as usize);

        // Never start before the prefix, so a bad start key cannot leak other keys.
        let start = match &opts.start_key {
            Some(s) if s.as_str() > prefix => s.as_str(),
            _ => prefix,
        };
        let mut items = Vec::new();
        let mut count: i64 = 0;
        let mut cursor = next_key(&versions, start, false)?;
        while let Some(key) = cursor {
            if !key.starts_with(prefix) {
                break;
            }
            if let Some(kv) = live_at(&versions, &key, at)? {
                count += 1;
                if limit.is_none_or(|l| items.len() < l) {
                    items.push(kv);
                }
            }
            cursor = next_key(&versions, &key, true)?;
        }
        let remaining = count - items.len() as i64;
        Ok(ListResult {
            items,
            revision: at,
            more: remaining > 0,
            remaining,
        })
    }

    /// Applies one write; returns its revision and the event it produced.
    fn mutate(&self, key: &str, mutation: Mutation) -> Result<(Revision, WatchEvent), StorageError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let txn = self.db.begin_write().map_err(db_err)?;
        let applied = (|| -> Result<(Revision, WatchEvent), StorageError> {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let mut versions = txn.open_table(VERSIONS).map_err(db_err)?;
            let mut events = txn.open_table(EVENTS).map_err(db_err)?;
            let revision = read_meta(&meta, META_REVISION)? + 1;
            let current = live_at(&versions, key, i64::MAX)?;
            let check = |expected: Option<Revision>| -> Result<KeyValue, StorageError> {
                match &current {
                    None => Err(StorageError::NotFound(key.to_string())),
                    Some(kv) if expected.is_some_and(|e| e != kv.mod_revision) => Err(StorageError::Conflict {
                        key: key.to_string(),
                        current: current.clone(),
                    }),
                    Some(kv) => Ok(kv.clone()),
                }
            };
            let (record, event) = match mutation {
                Mutation::Create(value) => {
                    if current.is_some() {
                        return Err(StorageError::AlreadyExists(key.to_string()));
                    }
                    let kv = KeyValue {
                        key: key.to_string(),
                        value,
                        create_revision: revision,
                        mod_revision: revision,
                    };
                    let record = encode_live(revision, &kv.value);
                    (
                        record,
                        WatchEvent {
                            event_type: WatchEventType::Put,
                            kv,
                            prev: None,
                        },
                    )
                }
                Mutation::Update(value, expected) => {
                    let prev = check(Some(expected))?;
                    let kv = KeyValue {
                        key: key.to_string(),
                        value,
                        create_revision: prev.create_revision,
                        mod_revision: revision,
                    };
                    let record = encode_live(kv.create_revision, &kv.value);
                    (
                        record,
                        WatchEvent {
                            event_type: WatchEventType::Put,
                            kv,
                            prev: Some(prev),
                        },
                    )
                }
                Mutation::Delete(expected) => {
                    let prev = check(expected)?;
                    let kv = KeyValue {
                        mod_revision: revision,
                        ..prev.clone()
                    };
                    (
                        vec![RECORD_TOMBSTONE],
                        WatchEvent {
                            event_type: WatchEventType::Delete,
                            kv,
                            prev: Some(prev),
                        },
                    )
                }
            };
            versions.insert((key, revision), record.as_slice()).map_err(db_err)?;
            events.insert(revision, key).map_err(db_err)?;
            meta.insert(META_REVISION, revision).map_err(db_err)?;
            Ok((revision, event))
        })();
        match applied {
            Ok((revision, event)) => {
                txn.commit().map_err(db_err)?;
                // No receivers is fine: nobody is watching.
                let _ = self.events.send(Arc::new(event.clone()));
                Ok((revision, event))
            }
            Err(e) => {
                txn.abort().map_err(db_err)?;
                Err(e)
            }
        }
    }

    fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let txn = self.db.begin_write().map_err(db_err)?;
        let applied = (|| -> Result<(), StorageError> {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let mut versions = txn.open_table(VERSIONS).map_err(db_err)?;
            let mut events = txn.open_table(EVENTS).map_err(db_err)?;
            let current = read_meta(&meta, META_REVISION)?;
            let compacted = read_meta(&meta, META_COMPACTED)?;
            if revision <= compacted {
                return Err(StorageError::Compacted {
                    requested: revision,
                    compacted,
                });
            }
            if revision > current {
                return Err(StorageError::FutureRevision {
                    requested: revision,
                    current,
                });
            }
            // Only keys written since the last compaction can have droppable versions.
            let mut keys = BTreeSet::new();
            for entry in events.range(..revision).map_err(db_err)? {
                keys.insert(entry.map_err(db_err)?.1.value().to_string());
            }
            events.retain_in(..revision, |_, _| false).map_err(db_err)?;
            for key in &keys {
                let mut old = Vec::new();
                for entry in versions
                    .range((key.as_str(), i64::MIN)..(key.as_str(), revision))
                    .map_err(db_err)?
                {
                    let (k, v) = entry.map_err(db_err)?;
                    old.push((k.value().1, v.value().first() == Some(&RECORD_LIVE)));
                }
                // The newest version before the compaction point is still the state at it.
                if let Some((_, true)) = old.last() {
                    old.pop();
                }
                for (rev, _) in old {
                    versions.remove((key.as_str(), rev)).map_err(db_err)?;
                }
            }
            meta.insert(META_COMPACTED, revision).map_err(db_err)?;
            Ok(())
        })();
        match applied {
            Ok(()) => txn.commit().map_err(db_err),
            Err(e) => {
                txn.abort().map_err(db_err)?;
                Err(e)
            }
        }
    }

    fn revisions(&self) -> Result<(Revision, Revision), StorageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        Ok((read_meta(&meta, META_REVISION)?, read_meta(&meta, META_COMPACTED)?))
    }

    /// Reads up to [`REPLAY_BATCH`] log entries from revision `from` on, keeping those under `prefix`.
    fn replay(&self, prefix: &str, from: Revision) -> Result<ReplayBatch, StorageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        let versions = txn.open_table(VERSIONS).map_err(db_err)?;
        let log = txn.open_table(EVENTS).map_err(db_err)?;
        let current = read_meta(&meta, META_REVISION)?;
        let compacted = read_meta(&meta, META_COMPACTED)?;
        if from < compacted {
            return Err(StorageError::Compacted {
                requested: from,
                compacted,
            });
        }
        let mut events = Vec::new();
        let mut through = from - 1;
        for (scanned, entry) in log.range(from..).map_err(db_err)?.enumerate() {
            if scanned == REPLAY_BATCH {
                return Ok(ReplayBatch {
                    events,
                    through,
                    caught_up: false,
                });
            }
            let (rev, key) = entry.map_err(db_err)?;
            let (rev, key) = (rev.value(), key.value());
            if key.starts_with(prefix) {
                events.push(event_at(&versions, key, rev)?);
            }
            through = rev;
        }
        Ok(ReplayBatch {
            events,
            through: through.max(current),
            caught_up: true,
        })
    }
}

impl EmbeddedStorage {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Internal(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("state.redb");
        let db =
            Database::create(&path).map_err(|e| StorageError::Internal(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        {
            txn.open_table(META).map_err(db_err)?;
            txn.open_table(VERSIONS).map_err(db_err)?;
            txn.open_table(EVENTS).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let inner = Arc::new(Inner {
            db,
            write_lock: Mutex::new(()),
            events,
        });
        let (revision, compacted) = inner.revisions()?;
        tracing::info!(path = %path.display(), revision, compacted, "opened embedded store");
        Ok(Self { inner })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Internal(format!("embedded store task failed: {e}")))?
    }
}

/// State of one watch stream.
struct Watcher {
    /// Weak, so open watches do not keep a dropped store (and its file lock) alive.
    inner: Weak<Inner>,
    prefix: String,
    rx: broadcast::Receiver<Arc<WatchEvent>>,
    /// Every revision up to this one has been delivered or skipped.
    last: Revision,
    pending: VecDeque<WatchEvent>,
    replaying: bool,
    done: bool,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<WatchEvent, StorageError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.replaying {
                let inner = self.inner.upgrade()?;
                let (prefix, from) = (self.prefix.clone(), self.last + 1);
                let batch = tokio::task::spawn_blocking(move || inner.replay(&prefix, from))
                    .await
                    .map_err(|e| StorageError::Internal(format!("embedded store task failed: {e}")))
                    .and_then(|r| r);
                match batch {
                    Ok(batch) => {
                        self.pending.extend(batch.events);
                        self.last = batch.through;
                        self.replaying = !batch.caught_up;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(event) => {
                    let rev = event.kv.mod_revision;
                    if rev <= self.last {
                        continue;
                    }
                    if rev > self.last + 1 {
                        // Something was missed; the log has it.
                        self.replaying = true;
                        continue;
                    }
                    self.last = rev;
                    if event.kv.key.starts_with(&self.prefix) {
                        return Some(Ok((*event).clone()));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(prefix = %self.prefix, skipped, "watcher lagged, replaying from the log");
                    self.replaying = true;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                }
            }
        }
    }
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError> {
        let key = key.to_string();
        self.blocking(move |i| i.mutate(&key, Mutation::Create(value)).map(|(rev, _)| rev))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let key = key.to_string();
        self.blocking(move |i| i.get(&key)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        let prefix = prefix.to_string();
        self.blocking(move |i| i.list(&prefix, &opts)).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StorageError> {
        let key = key.to_string();
        self.blocking(move |i| i.mutate(&key, Mutation::Update(value, expected)).map(|(rev, _)| rev))
            .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue), StorageError> {
        let key = key.to_string();
        self.blocking(move |i| {
            let (rev, event) = i.mutate(&key, Mutation::Delete(expected))?;
            let prev = event
                .prev
                .ok_or_else(|| StorageError::Internal("delete without previous value".into()))?;
            Ok((rev, prev))
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        // Subscribe before looking at the log so nothing committed from now on is missed.
        let rx = self.inner.events.subscribe();
        let (_, compacted) = self.blocking(|i| i.revisions()).await?;
        let from = after.saturating_add(1);
        if from < compacted {
            return Err(StorageError::Compacted {
                requested: from,
                compacted,
            });
        }
        let watcher = Watcher {
            inner: Arc::downgrade(&self.inner),
            prefix: prefix.to_string(),
            rx,
            last: after,
            pending: VecDeque::new(),
            replaying: true,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(watcher, |mut w| async move {
            w.next().await.map(|item| (item, w))
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.blocking(move |i| i.compact(revision)).await
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.blocking(|i| i.revisions().map(|(current, _)| current)).await
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        self.blocking(|i| i.revisions().map(|(_, compacted)| compacted)).await
    }

    async fn health(&self) -> Result<(), StorageError> {
        self.blocking(|i| i.revisions().map(|_| ())).await
    }
}
