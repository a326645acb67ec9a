//! The etcd v3 backend: the production store, as upstream uses it.
//!
//! Every conditional write is one etcd transaction comparing `mod_revision`, so the trait's
//! compare-and-swap maps one-to-one; failed compares read the current value inside the same
//! transaction so `Conflict` carries a consistent value. etcd does not report its compaction
//! point directly, so it is learned on demand (a read at revision 1 tells whether anything is
//! compacted, and a watch from revision 1 then reports the exact revision).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, KvClient, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};

use super::{
    KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchEvent, WatchEventType, WatchStream,
};

/// Upper bound for one unary request, so calls fail instead of hanging while etcd is away.
/// Largest gRPC response accepted from etcd.
const MAX_MESSAGE: usize = i32::MAX as usize;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// A key nobody writes, read for health and revision probes.
const PROBE_KEY: &str = "health";

const MSG_COMPACTED: &str = "required revision has been compacted";
const MSG_FUTURE: &str = "required revision is a future revision";

// gRPC status codes that mean "etcd is not reachable right now".
const GRPC_CANCELLED: i32 = 1;
const GRPC_UNKNOWN: i32 = 2;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_UNAVAILABLE: i32 = 14;
/// How tonic reports a broken HTTP/2 connection (with code INTERNAL).
const MSG_CONNECTION_BROKEN: &str = "h2 protocol error";

/// The etcd backend.
pub struct EtcdStorage {
    client: Client,
    /// The highest compaction revision seen so far.
    compacted: Arc<AtomicI64>,
}

fn map_err(e: etcd_client::Error) -> StorageError {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let code = status.code() as i32;
            if matches!(
                code,
                GRPC_CANCELLED | GRPC_UNKNOWN | GRPC_DEADLINE_EXCEEDED | GRPC_UNAVAILABLE
            ) || status.message().starts_with(MSG_CONNECTION_BROKEN)
            {
                StorageError::Unavailable(format!("etcd: {}", status.message()))
            } else {
                StorageError::Internal(format!("etcd: {}", status.message()))
            }
        }
        e @ (etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_)) => {
            StorageError::Unavailable(format!("etcd: {e}"))
        }
        e => StorageError::Internal(format!("etcd: {e}")),
    }
}

fn status_message(e: &etcd_client::Error) -> Option<&str> {
    match e {
        etcd_client::Error::GRpcStatus(status) => Some(status.message()),
        _ => None,
    }
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    status_message(e).is_some_and(|m| m.contains(MSG_COMPACTED))
}

fn is_future(e: &etcd_client::Error) -> bool {
    status_message(e).is_some_and(|m| m.contains(MSG_FUTURE))
}

/// The end of etcd's key range covering every key that starts with `prefix`.
fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Empty or all-0xff prefix: every key from the start key on.
    vec![0]
}

fn convert_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue, StorageError> {
    let key = kv
        .key_str()
        .map_err(|e| StorageError::Internal(format!("etcd: non-UTF-8 key: {e}")))?;
    Ok(KeyValue {
        key: key.to_string(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StorageError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StorageError::Internal("etcd: response without header".into()))
}

fn convert_event(event: &etcd_client::Event) -> Result<WatchEvent, StorageError> {
    let kv = event
        .kv()
        .ok_or_else(|| StorageError::Internal("etcd: watch event without kv".into()))?;
    let kv = convert_kv(kv)?;
    let prev = event.prev_kv().map(convert_kv).transpose()?;
    Ok(match event.event_type() {
        EventType::Put => WatchEvent {
            event_type: WatchEventType::Put,
            kv,
            prev,
        },
        EventType::Delete => WatchEvent {
            event_type: WatchEventType::Delete,
            // etcd's delete event carries only the key and the deletion revision.
            kv: KeyValue {
                key: kv.key,
                value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                create_revision: prev.as_ref().map(|p| p.create_revision).unwrap_or(0),
                mod_revision: kv.mod_revision,
            },
            prev,
        },
    })
}

/// The current value from the `or_else` get of a failed transaction.
fn current_from_txn(resp: &etcd_client::TxnResponse) -> Result<Option<KeyValue>, StorageError> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(convert_kv).transpose();
        }
    }
    Err(StorageError::Internal(
        "etcd: failed transaction returned no read".into(),
    ))
}

async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<Result<T, etcd_client::Error>, StorageError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| StorageError::Unavailable(format!("etcd did not answer within {limit:?}")))
}

impl EtcdStorage {
    /// Creates a client for `endpoints` (e.g. `http://127.0.0.1:2379`). Connections are made
    /// lazily; use [`Storage::health`] to check that etcd answers.
    pub async fn connect(endpoints: &[String]) -> Result<Self, StorageError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options)).await.map_err(map_err)?;
        Ok(Self {
            client,
            compacted: Arc::new(AtomicI64::new(0)),
        })
    }

    /// A KV client that accepts responses of any size (a LIST of many objects exceeds gRPC's
    /// default 4 MiB; upstream lifts the limit the same way).
    fn kv(&self) -> KvClient {
        self.client.kv_client().max_decoding_message_size(MAX_MESSAGE)
    }

    async fn txn(&self, txn: Txn) -> Result<etcd_client::TxnResponse, StorageError> {
        let mut kv = self.kv();
        with_timeout(REQUEST_TIMEOUT, kv.txn(txn)).await?.map_err(map_err)
    }

    /// Finds etcd's compaction revision (see the module doc).
    async fn probe_compacted(&self) -> Result<Revision, StorageError> {
        let mut kv = self.kv();
        let opts = GetOptions::new().with_revision(1).with_count_only();
        match with_timeout(REQUEST_TIMEOUT, kv.get(PROBE_KEY, Some(opts))).await? {
            // Revision 1 is readable: nothing beyond it was compacted.
            Ok(_) => return Ok(self.compacted.load(Ordering::Relaxed).min(1)),
            Err(e) if is_compacted(&e) => {}
            Err(e) => return Err(map_err(e)),
        }
        let probe = async {
            let opts = WatchOptions::new().with_start_revision(1);
            let mut stream = self
                .client
                .watch_client()
                .watch(PROBE_KEY, Some(opts))
                .await
                .map_err(map_err)?;
            loop {
                match stream.message().await.map_err(map_err)? {
                    Some(resp) if resp.compact_revision() > 0 => return Ok(resp.compact_revision()),
                    Some(resp) if resp.canceled() => {
                        return Err(StorageError::Unavailable(format!(
                            "etcd canceled the compaction probe: {}",
                            resp.cancel_reason()
                        )));
                    }
                    Some(_) => {}
                    None => return Err(StorageError::Unavailable("etcd closed the compaction probe".into())),
                }
            }
        };
        let compacted = tokio::time::timeout(REQUEST_TIMEOUT, probe)
            .await
            .map_err(|_| StorageError::Unavailable("etcd did not report its compaction revision".into()))??;
        Ok(self.compacted.fetch_max(compacted, Ordering::Relaxed).max(compacted))
    }

    async fn compacted_error(&self, requested: Revision) -> StorageError {
        match self.probe_compacted().await {
            Ok(compacted) => StorageError::Compacted { requested, compacted },
            Err(e) => e,
        }
    }

    async fn future_error(&self, requested: Revision) -> StorageError {
        match self.current_revision().await {
            Ok(current) => StorageError::FutureRevision { requested, current },
            Err(e) => e,
        }
    }
}

/// State of one watch stream. Dropping it drops the gRPC stream, which cancels the watch in etcd.
struct Watcher {
    stream: etcd_client::WatchStream,
    pending: VecDeque<WatchEvent>,
    /// The first revision not yet delivered.
    next: Revision,
    compacted: Arc<AtomicI64>,
    /// Set once the stream failed; reported after pending events.
    failure: Option<StorageError>,
    done: bool,
}

impl Watcher {
    /// Folds one watch response in; `Err` ends the stream.
    fn absorb(&mut self, resp: etcd_client::WatchResponse) -> Result<(), StorageError> {
        if resp.compact_revision() > 0 {
            self.compacted.fetch_max(resp.compact_revision(), Ordering::Relaxed);
            return Err(StorageError::Compacted {
                requested: self.next,
                compacted: resp.compact_revision(),
            });
        }
        for event in resp.events() {
            let event = convert_event(event)?;
            self.next = event.kv.mod_revision + 1;
            self.pending.push_back(event);
        }
        if resp.canceled() {
            return Err(StorageError::Unavailable(format!(
                "etcd canceled the watch: {}",
                resp.cancel_reason()
            )));
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<WatchEvent, StorageError>> {
        loop {
            // Events that arrived together with a failure go out before it.
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if let Some(failure) = self.failure.take() {
                self.done = true;
                return Some(Err(failure));
            }
            if self.done {
                return None;
            }
            let failure = match self.stream.message().await {
                Ok(Some(resp)) => match self.absorb(resp) {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Ok(None) => StorageError::Unavailable("etcd closed the watch stream".into()),
                Err(e) => map_err(e),
            };
            self.failure = Some(failure);
        }
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        header_revision(resp.header())
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let mut kv = self.kv();
        let resp = with_timeout(REQUEST_TIMEOUT, kv.get(key, None))
            .await?
            .map_err(map_err)?;
        resp.kvs().first().map(convert_kv).transpose()
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        // Never start before the prefix, so a bad start key cannot leak other keys.
        let start = match &opts.start_key {
            Some(s) if s.as_str() > prefix => s.clone(),
            _ => prefix.to_string(),
        };
        let mut get = GetOptions::new().with_range(prefix_range_end(prefix.as_bytes()));
        if let Some(limit) = opts.limit.filter(|l| *l > 0) {
            get = get.with_limit(limit);
        }
        let revision = opts.revision.filter(|r| *r > 0);
        if let Some(rev) = revision {
            get = get.with_revision(rev);
        }
        let mut kv = self.kv();
        let resp = match with_timeout(REQUEST_TIMEOUT, kv.get(start, Some(get))).await? {
            Ok(resp) => resp,
            Err(e) if is_compacted(&e) => return Err(self.compacted_error(revision.unwrap_or(0)).await),
            Err(e) if is_future(&e) => return Err(self.future_error(revision.unwrap_or(0)).await),
            Err(e) => return Err(map_err(e)),
        };
        let items = resp.kvs().iter().map(convert_kv).collect::<Result<Vec<_>, _>>()?;
        let remaining = (resp.count() - items.len() as i64).max(0);
        let revision = match revision {
            Some(rev) => rev,
            None => header_revision(resp.header())?,
        };
        Ok(ListResult {
            items,
            revision,
            more: resp.more(),
            remaining,
        })
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StorageError> {
        // The version guard keeps `expected == 0` from creating a missing key.
        let txn = Txn::new()
            .when([
                Compare::version(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if resp.succeeded() {
            return header_revision(resp.header());
        }
        match current_from_txn(&resp)? {
            None => Err(StorageError::NotFound(key.to_string())),
            current => Err(StorageError::Conflict {
                key: key.to_string(),
                current,
            }),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue), StorageError> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return match current_from_txn(&resp)? {
                None => Err(StorageError::NotFound(key.to_string())),
                current => Err(StorageError::Conflict {
                    key: key.to_string(),
                    current,
                }),
            };
        }
        let revision = header_revision(resp.header())?;
        for op in resp.op_responses() {
            if let TxnOpResponse::Delete(del) = op {
                return match del.prev_kvs().first() {
                    Some(prev) => Ok((revision, convert_kv(prev)?)),
                    // The compare guarantees the key existed; be defensive anyway.
                    None => Err(StorageError::NotFound(key.to_string())),
                };
            }
        }
        Err(StorageError::Internal(
            "etcd: delete transaction returned no delete".into(),
        ))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let next = after.saturating_add(1);
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(next)
            .with_prev_key();
        let mut client = self.client.watch_client().max_decoding_message_size(MAX_MESSAGE);
        let stream = with_timeout(REQUEST_TIMEOUT, client.watch(prefix, Some(opts)))
            .await?
            .map_err(map_err)?;
        let mut watcher = Watcher {
            stream,
            pending: VecDeque::new(),
            next,
            compacted: self.compacted.clone(),
            failure: None,
            done: false,
        };
        // Wait for etcd to confirm the watch so connection problems surface here.
        match with_timeout(REQUEST_TIMEOUT, watcher.stream.message())
            .await?
            .map_err(map_err)?
        {
            Some(resp) => watcher.absorb(resp)?,
            None => return Err(StorageError::Unavailable("etcd closed the watch stream".into())),
        }
        Ok(Box::pin(futures::stream::unfold(watcher, |mut w| async move {
            w.next().await.map(|item| (item, w))
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let mut kv = self.kv();
        match with_timeout(REQUEST_TIMEOUT, kv.compact(revision, None)).await? {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if is_compacted(&e) => Err(self.compacted_error(revision).await),
            Err(e) if is_future(&e) => Err(self.future_error(revision).await),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        let mut kv = self.kv();
        let opts = GetOptions::new().with_count_only();
        let resp = with_timeout(REQUEST_TIMEOUT, kv.get(PROBE_KEY, Some(opts)))
            .await?
            .map_err(map_err)?;
        header_revision(resp.header())
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        self.probe_compacted().await
    }

    async fn health(&self) -> Result<(), StorageError> {
        let mut kv = self.kv();
        with_timeout(HEALTH_TIMEOUT, kv.get(PROBE_KEY, None))
            .await?
            .map_err(map_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_range_end;

    #[test]
    fn range_end_covers_exactly_the_prefix() {
        assert_eq!(prefix_range_end(b"/a/b/"), b"/a/b0".to_vec());
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }
}
