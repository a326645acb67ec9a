//! The key-value storage behind the API server.
//!
//! Upstream's `storage.Interface` speaks etcd's MVCC model: every write gets a cluster-wide
//! revision, objects carry the revision of their last write (`mod_revision`, exposed as
//! `metadata.resourceVersion`), writes are compare-and-swap on that revision, and a watch can
//! resume from any revision that has not been compacted. This trait keeps exactly that model so
//! the registry above it is backend-agnostic; [`etcd::EtcdStorage`] and
//! [`embedded::EmbeddedStorage`] implement it and both pass [`conformance`].

pub mod conformance;
pub mod embedded;
pub mod etcd;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

/// A storage revision (etcd's `mod_revision`/header revision). Revisions start at 1.
pub type Revision = i64;

/// One stored key with the revisions etcd reports for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// How to list a key range.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Read at this revision; `None` reads the latest (a consistent read).
    pub revision: Option<Revision>,
    /// Return at most this many keys (`None` or 0 = no limit).
    pub limit: Option<i64>,
    /// Start at this key (inclusive); used to continue a paged list. Must be under the prefix.
    pub start_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ListResult {
    /// Keys in ascending byte order.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at (etcd's header revision, or the requested revision).
    pub revision: Revision,
    /// Whether keys remain after the last returned item.
    pub more: bool,
    /// How many keys remain after the last returned item (0 when `more` is false).
    pub remaining: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEventType {
    /// Created or updated; `kv` is the new value, `prev` the old one if any.
    Put,
    /// Deleted; `kv.value` is the value before deletion and `kv.mod_revision` the deletion's revision.
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub event_type: WatchEventType,
    pub kv: KeyValue,
    /// The previous value, when there was one.
    pub prev: Option<KeyValue>,
}

/// A stream of storage events in revision order. An `Err(Compacted)` ends it.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StorageError>> + Send>>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The compare-and-swap failed; `current` is the value now stored (None if deleted).
    #[error("revision conflict on key {key}")]
    Conflict { key: String, current: Option<KeyValue> },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (oldest available {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage internal error: {0}")]
    Internal(String),
}

/// The storage interface: etcd semantics, any backend.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Create `key`; fails with `AlreadyExists` if it exists. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError>;

    /// Read the latest value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError>;

    /// List keys starting with `prefix`, in ascending key order.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError>;

    /// Replace `key` if its `mod_revision` equals `expected`. Returns the new revision.
    /// `NotFound` if the key is absent, `Conflict` if the revision differs.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StorageError>;

    /// Delete `key`, if `expected` is given only when its `mod_revision` equals it.
    /// Returns the deletion's revision and the deleted value.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue), StorageError>;

    /// Watch every key under `prefix` for changes with revision > `after`.
    /// `Compacted` (immediately or as the stream's first item) when `after + 1` is compacted.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError>;

    /// Forget history before `revision` (the latest version of each key is kept).
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// The oldest revision still readable (the compaction point).
    async fn compacted_revision(&self) -> Result<Revision, StorageError>;

    /// Whether the store answers (used by `/readyz`).
    async fn health(&self) -> Result<(), StorageError>;
}
