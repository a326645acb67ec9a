//! The behaviour every [`Storage`] backend must show, as a reusable test suite.
//!
//! The registry relies on etcd's exact semantics (compare-and-swap on `mod_revision`, lists
//! pinned to a revision, watches that resume from a revision, compaction errors), so each
//! backend runs this same suite (see `tests/storage.rs`). This is test-harness code: failures
//! panic with a message. Every check works under its own sub-prefix of the caller's prefix and
//! asserts only on its own keys, so several runs can share one etcd (as long as they do not
//! compact concurrently). [`compaction`] compacts the whole store, so [`run_all`] runs it last.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{KeyValue, ListOptions, Revision, Storage, StorageError, WatchEvent, WatchEventType, WatchStream};

/// A liveness guard so a broken watch fails the test instead of hanging it.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Runs every check, each under its own sub-prefix of `prefix` (which must end in '/').
pub async fn run_all(s: Arc<dyn Storage>, prefix: &str) {
    health(&*s).await;
    create_and_get(&*s, &format!("{prefix}create/")).await;
    update(&*s, &format!("{prefix}update/")).await;
    delete(&*s, &format!("{prefix}delete/")).await;
    revisions(&*s, &format!("{prefix}revisions/")).await;
    list_order_and_prefix(&*s, &format!("{prefix}list/")).await;
    list_paging_pinned(&*s, &format!("{prefix}paging/")).await;
    list_future_revision(&*s, &format!("{prefix}future/")).await;
    watch_replay_and_live(&*s, &format!("{prefix}watch/")).await;
    watch_prefix_isolation(&*s, &format!("{prefix}watchiso/")).await;
    concurrent_creates(s.clone(), &format!("{prefix}concurrent/")).await;
    large_list(s.clone(), &format!("{prefix}large/")).await;
    compaction(&*s, &format!("{prefix}compaction/")).await;
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn kv(key: &str, value: &str, create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: bytes(value),
        create_revision,
        mod_revision,
    }
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_WAIT, w.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended unexpectedly"),
        Err(_) => panic!("no watch event within {EVENT_WAIT:?}"),
    }
}

/// Asserts that the watch produces `Compacted`, either at creation or as its first item.
async fn expect_watch_compacted(s: &dyn Storage, prefix: &str, after: Revision, compacted_at_least: Revision) {
    let err = match s.watch(prefix, after).await {
        Err(e) => e,
        Ok(mut w) => match tokio::time::timeout(EVENT_WAIT, w.next()).await {
            Ok(Some(Err(e))) => e,
            Ok(Some(Ok(event))) => panic!("watch from compacted revision {after} yielded {event:?}"),
            Ok(None) => panic!("watch from compacted revision {after} ended without an error"),
            Err(_) => panic!("watch from compacted revision {after} reported nothing within {EVENT_WAIT:?}"),
        },
    };
    match err {
        StorageError::Compacted { requested, compacted } => {
            assert_eq!(
                requested,
                after + 1,
                "compacted watch reports the first revision it needed"
            );
            assert!(
                compacted >= compacted_at_least,
                "compacted {compacted} < {compacted_at_least}"
            );
        }
        other => panic!("watch from compacted revision {after}: expected Compacted, got {other:?}"),
    }
}

/// Writes a marker key and asserts it is the next event: proves nothing else came before it.
async fn expect_marker_next(s: &dyn Storage, w: &mut WatchStream, key: &str) {
    let rev = s.create(key, bytes("marker")).await.expect("create marker");
    let event = next_event(w).await;
    assert_eq!(
        event.event_type,
        WatchEventType::Put,
        "expected the marker, got {event:?}"
    );
    assert_eq!(event.kv, kv(key, "marker", rev, rev), "expected the marker next");
}

pub async fn health(s: &dyn Storage) {
    s.health().await.expect("health");
    let current = s.current_revision().await.expect("current_revision");
    assert!(current >= 0);
    let compacted = s.compacted_revision().await.expect("compacted_revision");
    assert!(
        compacted <= current.max(1),
        "compacted {compacted} beyond current {current}"
    );
}

pub async fn create_and_get(s: &dyn Storage, p: &str) {
    let k = format!("{p}a");
    let r1 = s.create(&k, bytes("one")).await.expect("create");
    assert!(r1 > 0);
    assert_eq!(s.get(&k).await.unwrap(), Some(kv(&k, "one", r1, r1)));

    match s.create(&k, bytes("two")).await {
        Err(StorageError::AlreadyExists(key)) => assert_eq!(key, k),
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        s.get(&k).await.unwrap(),
        Some(kv(&k, "one", r1, r1)),
        "failed create changed the value"
    );
    assert_eq!(s.get(&format!("{p}missing")).await.unwrap(), None);
    // A key that is a prefix of an existing key is a different key.
    assert_eq!(s.get(p).await.unwrap(), None);

    let empty = format!("{p}empty");
    let r2 = s.create(&empty, Vec::new()).await.expect("create empty value");
    assert!(r2 > r1);
    assert_eq!(s.get(&empty).await.unwrap(), Some(kv(&empty, "", r2, r2)));
}

pub async fn update(s: &dyn Storage, p: &str) {
    let k = format!("{p}a");
    let r1 = s.create(&k, bytes("v1")).await.unwrap();
    let r2 = s
        .update(&k, bytes("v2"), r1)
        .await
        .expect("update with current revision");
    assert!(r2 > r1);
    let current = kv(&k, "v2", r1, r2);
    assert_eq!(s.get(&k).await.unwrap(), Some(current.clone()));

    match s.update(&k, bytes("v3"), r1).await {
        Err(StorageError::Conflict { key, current: c }) => {
            assert_eq!(key, k);
            assert_eq!(c, Some(current.clone()), "Conflict carries the stored value");
        }
        other => panic!("stale update: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        s.get(&k).await.unwrap(),
        Some(current),
        "failed update changed the value"
    );

    let missing = format!("{p}missing");
    for expected in [r2, 0] {
        match s.update(&missing, bytes("x"), expected).await {
            Err(StorageError::NotFound(key)) => assert_eq!(key, missing),
            other => panic!("update of missing key (expected {expected}): expected NotFound, got {other:?}"),
        }
    }
    assert_eq!(s.get(&missing).await.unwrap(), None, "update must not create");
}

pub async fn delete(s: &dyn Storage, p: &str) {
    let k = format!("{p}a");
    for expected in [None, Some(5)] {
        match s.delete(&k, expected).await {
            Err(StorageError::NotFound(key)) => assert_eq!(key, k),
            other => panic!("delete of missing key: expected NotFound, got {other:?}"),
        }
    }

    let r1 = s.create(&k, bytes("v1")).await.unwrap();
    let r2 = s.update(&k, bytes("v2"), r1).await.unwrap();
    match s.delete(&k, Some(r1)).await {
        Err(StorageError::Conflict { key, current }) => {
            assert_eq!(key, k);
            assert_eq!(current, Some(kv(&k, "v2", r1, r2)));
        }
        other => panic!("delete with stale revision: expected Conflict, got {other:?}"),
    }
    assert!(s.get(&k).await.unwrap().is_some(), "failed delete removed the key");

    let (rd, prev) = s.delete(&k, Some(r2)).await.expect("delete with current revision");
    assert!(rd > r2);
    assert_eq!(prev, kv(&k, "v2", r1, r2), "delete returns the deleted value");
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert!(matches!(s.delete(&k, None).await, Err(StorageError::NotFound(_))));

    // A re-created key starts a new life.
    let r3 = s.create(&k, bytes("v3")).await.expect("re-create after delete");
    assert!(r3 > rd);
    assert_eq!(s.get(&k).await.unwrap(), Some(kv(&k, "v3", r3, r3)));
    let (rd2, prev2) = s.delete(&k, None).await.expect("unconditional delete");
    assert!(rd2 > r3);
    assert_eq!(prev2, kv(&k, "v3", r3, r3));
}

pub async fn revisions(s: &dyn Storage, p: &str) {
    let before = s.current_revision().await.unwrap();
    let a = format!("{p}a");
    let b = format!("{p}b");
    let mut revs = vec![s.create(&a, bytes("1")).await.unwrap()];
    revs.push(s.create(&b, bytes("1")).await.unwrap());
    assert!(s.create(&a, bytes("dup")).await.is_err());
    revs.push(s.update(&a, bytes("2"), revs[0]).await.unwrap());
    revs.push(s.delete(&b, None).await.unwrap().0);
    revs.push(s.update(&a, bytes("3"), revs[2]).await.unwrap());
    assert!(revs[0] > before, "first write {} not after current {before}", revs[0]);
    for pair in revs.windows(2) {
        assert!(pair[1] > pair[0], "revisions not strictly increasing: {revs:?}");
    }
    let last = *revs.last().unwrap();
    assert_eq!(s.get(&a).await.unwrap(), Some(kv(&a, "3", revs[0], last)));
    let current = s.current_revision().await.unwrap();
    assert!(current >= last, "current revision {current} behind last write {last}");
    let listed = s.list(p, ListOptions::default()).await.unwrap();
    assert!(listed.revision >= last);
}

pub async fn list_order_and_prefix(s: &dyn Storage, p: &str) {
    let dir = format!("{p}a/b/");
    // Written out of order; lists come back sorted by key.
    let mut written = Vec::new();
    for name in ["2", "sub/3", "1"] {
        let key = format!("{dir}{name}");
        let rev = s.create(&key, bytes(name)).await.unwrap();
        written.push(kv(&key, name, rev, rev));
    }
    // Neighbours that must stay out of the list.
    for other in ["a/bc/x", "a/b", "a/a", "a/b0"] {
        s.create(&format!("{p}{other}"), bytes("other")).await.unwrap();
    }
    written.sort_by(|x, y| x.key.cmp(&y.key));

    let listed = s.list(&dir, ListOptions::default()).await.unwrap();
    assert_eq!(listed.items, written, "list returns exactly the prefix's keys, sorted");
    assert!(!listed.more);
    assert_eq!(listed.remaining, 0);
    let newest = written.iter().map(|kv| kv.mod_revision).max().unwrap();
    assert!(listed.revision >= newest);

    let big = s
        .list(
            &dir,
            ListOptions {
                limit: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(big.items, written);
    assert!(!big.more);
    assert_eq!(big.remaining, 0);

    let whole = s.list(&format!("{p}a/"), ListOptions::default()).await.unwrap();
    assert_eq!(
        keys(&whole.items),
        vec![
            format!("{p}a/a"),
            format!("{p}a/b"),
            format!("{p}a/b/1"),
            format!("{p}a/b/2"),
            format!("{p}a/b/sub/3"),
            format!("{p}a/b0"),
            format!("{p}a/bc/x"),
        ]
    );

    let empty = s.list(&format!("{p}nothing/"), ListOptions::default()).await.unwrap();
    assert!(empty.items.is_empty());
    assert!(!empty.more);
    assert_eq!(empty.remaining, 0);

    s.delete(&format!("{dir}1"), None).await.unwrap();
    let after_delete = s.list(&dir, ListOptions::default()).await.unwrap();
    assert_eq!(
        keys(&after_delete.items),
        vec![format!("{dir}2"), format!("{dir}sub/3")]
    );

    // start_key is inclusive.
    let from = s
        .list(
            &dir,
            ListOptions {
                start_key: Some(format!("{dir}2")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&from.items), vec![format!("{dir}2"), format!("{dir}sub/3")]);
}

pub async fn list_paging_pinned(s: &dyn Storage, p: &str) {
    let mut original = Vec::new();
    for i in 0..5 {
        let key = format!("{p}k{i}");
        let value = format!("v{i}");
        let rev = s.create(&key, bytes(&value)).await.unwrap();
        original.push(kv(&key, &value, rev, rev));
    }

    let page1 = s
        .list(
            p,
            ListOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.items, original[..2]);
    assert!(page1.more);
    assert_eq!(page1.remaining, 3);
    let pinned = page1.revision;
    assert!(pinned >= original[4].mod_revision);

    // Change the range after the first page.
    s.update(&original[2].key, bytes("changed"), original[2].mod_revision)
        .await
        .unwrap();
    s.delete(&original[3].key, None).await.unwrap();
    s.create(&format!("{p}k1a"), bytes("inserted")).await.unwrap();
    s.create(&format!("{p}k5"), bytes("v5")).await.unwrap();

    let continue_from = |last: &KeyValue| Some(format!("{}\0", last.key));
    let page2 = s
        .list(
            p,
            ListOptions {
                revision: Some(pinned),
                limit: Some(2),
                start_key: continue_from(&page1.items[1]),
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.items, original[2..4], "pinned page sees the old state");
    assert_eq!(page2.revision, pinned);
    assert!(page2.more);
    assert_eq!(page2.remaining, 1);

    let page3 = s
        .list(
            p,
            ListOptions {
                revision: Some(pinned),
                limit: Some(2),
                start_key: continue_from(&page2.items[1]),
            },
        )
        .await
        .unwrap();
    assert_eq!(page3.items, original[4..]);
    assert_eq!(page3.revision, pinned);
    assert!(!page3.more);
    assert_eq!(page3.remaining, 0);

    let all_pinned = s
        .list(
            p,
            ListOptions {
                revision: Some(pinned),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all_pinned.items, original);

    let now = s.list(p, ListOptions::default()).await.unwrap();
    assert_eq!(
        keys(&now.items),
        vec![
            format!("{p}k0"),
            format!("{p}k1"),
            format!("{p}k1a"),
            format!("{p}k2"),
            format!("{p}k4"),
            format!("{p}k5")
        ]
    );
    assert_eq!(now.items[3].value, bytes("changed"));
    assert!(now.revision > pinned);
}

pub async fn list_future_revision(s: &dyn Storage, p: &str) {
    s.create(&format!("{p}a"), bytes("x")).await.unwrap();
    let current = s.current_revision().await.unwrap();
    let requested = current + 1000;
    match s
        .list(
            p,
            ListOptions {
                revision: Some(requested),
                ..Default::default()
            },
        )
        .await
    {
        Err(StorageError::FutureRevision {
            requested: r,
            current: c,
        }) => {
            assert_eq!(r, requested);
            assert!(c >= current && c < requested);
        }
        other => panic!("list at a future revision: expected FutureRevision, got {other:?}"),
    }
}

pub async fn watch_replay_and_live(s: &dyn Storage, p: &str) {
    let dir = format!("{p}w/");
    let a = format!("{dir}a");
    let b = format!("{dir}b");
    let r0 = s.create(&a, bytes("a1")).await.unwrap();
    let r1 = s.update(&a, bytes("a2"), r0).await.unwrap();
    s.create(&format!("{p}other/x"), bytes("elsewhere")).await.unwrap();
    let r2 = s.create(&b, bytes("b1")).await.unwrap();
    let (r3, _) = s.delete(&a, None).await.unwrap();

    let a1 = kv(&a, "a1", r0, r0);
    let a2 = kv(&a, "a2", r0, r1);
    let b1 = kv(&b, "b1", r2, r2);
    let expected = [
        WatchEvent {
            event_type: WatchEventType::Put,
            kv: a1.clone(),
            prev: None,
        },
        WatchEvent {
            event_type: WatchEventType::Put,
            kv: a2.clone(),
            prev: Some(a1.clone()),
        },
        WatchEvent {
            event_type: WatchEventType::Put,
            kv: b1.clone(),
            prev: None,
        },
        WatchEvent {
            event_type: WatchEventType::Delete,
            kv: KeyValue {
                mod_revision: r3,
                ..a2.clone()
            },
            prev: Some(a2.clone()),
        },
    ];

    // From before the first write: the whole history, in order, with previous values.
    let mut all = s.watch(&dir, r0 - 1).await.expect("watch from history");
    for want in &expected {
        assert_eq!(&next_event(&mut all).await, want);
    }
    // From the middle: only what came later.
    let mut later = s.watch(&dir, r1).await.expect("watch from the middle");
    for want in &expected[2..] {
        assert_eq!(&next_event(&mut later).await, want);
    }
    // Markers prove no extra (e.g. out-of-prefix) events were queued.
    expect_marker_next(s, &mut all, &format!("{dir}marker1")).await;
    let marker1 = s.get(&format!("{dir}marker1")).await.unwrap().unwrap();
    assert_eq!(next_event(&mut later).await.kv, marker1);

    // Live events on a watch that started at the current revision.
    let mut live = s
        .watch(&dir, s.current_revision().await.unwrap())
        .await
        .expect("watch from now");
    let r4 = s.update(&b, bytes("b2"), r2).await.unwrap();
    let b2 = kv(&b, "b2", r2, r4);
    let want = WatchEvent {
        event_type: WatchEventType::Put,
        kv: b2.clone(),
        prev: Some(b1),
    };
    assert_eq!(next_event(&mut live).await, want);
    assert_eq!(next_event(&mut all).await, want);
    let (r5, _) = s.delete(&b, Some(r4)).await.unwrap();
    let want = WatchEvent {
        event_type: WatchEventType::Delete,
        kv: KeyValue {
            mod_revision: r5,
            ..b2.clone()
        },
        prev: Some(b2),
    };
    assert_eq!(next_event(&mut live).await, want);
    assert_eq!(next_event(&mut all).await, want);
    expect_marker_next(s, &mut live, &format!("{dir}marker2")).await;
}

pub async fn watch_prefix_isolation(s: &dyn Storage, p: &str) {
    let dir = format!("{p}a/b/");
    let mut w = s.watch(&dir, s.current_revision().await.unwrap()).await.unwrap();
    for other in ["a/bc/x", "a/b", "a/b0"] {
        s.create(&format!("{p}{other}"), bytes("other")).await.unwrap();
    }
    expect_marker_next(s, &mut w, &format!("{dir}x")).await;
}

pub async fn concurrent_creates(s: Arc<dyn Storage>, p: &str) {
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = s.clone();
            let key = format!("{p}{i:03}");
            tokio::spawn(async move {
                let rev = s.create(&key, bytes(&key)).await;
                (key, rev)
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        let (key, rev) = task.await.expect("create task");
        created.push((key, rev.expect("concurrent create")));
    }
    let distinct: HashSet<_> = created.iter().map(|(_, rev)| *rev).collect();
    assert_eq!(distinct.len(), 100, "concurrent creates got duplicate revisions");

    let listed = s.list(p, ListOptions::default()).await.unwrap();
    let want: Vec<_> = created.iter().map(|(key, rev)| kv(key, key, *rev, *rev)).collect();
    assert_eq!(listed.items, want);
}

/// A list whose response is larger than gRPC's default 4 MiB message limit.
pub async fn large_list(s: Arc<dyn Storage>, p: &str) {
    const N: usize = 1200;
    let value = "v".repeat(4096);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (s, p, value) = (s.clone(), p.to_string(), value.clone());
            tokio::spawn(async move {
                for i in (w..N).step_by(8) {
                    s.create(&format!("{p}{i:05}"), bytes(&value)).await.expect("create");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let listed = s.list(p, ListOptions::default()).await.expect("large list");
    assert_eq!(listed.items.len(), N);
    assert!(listed.items.iter().map(|kv| kv.value.len()).sum::<usize>() > 4 * 1024 * 1024);
    assert!(!listed.more);
}

pub async fn compaction(s: &dyn Storage, p: &str) {
    let k = format!("{p}k");
    let gone = format!("{p}gone");
    let k2 = format!("{p}k2");
    let r1 = s.create(&k, bytes("v1")).await.unwrap();
    let r2 = s.update(&k, bytes("v2"), r1).await.unwrap();
    s.create(&gone, bytes("x")).await.unwrap();
    let (rd, _) = s.delete(&gone, None).await.unwrap();
    let at = s.create(&k2, bytes("x")).await.unwrap();

    s.compact(at).await.expect("compact");
    let compacted = s.compacted_revision().await.unwrap();
    assert!(compacted >= at, "compacted revision {compacted} < {at}");

    for old in [r1, rd] {
        match s
            .list(
                p,
                ListOptions {
                    revision: Some(old),
                    ..Default::default()
                },
            )
            .await
        {
            Err(StorageError::Compacted { requested, compacted }) => {
                assert_eq!(requested, old);
                assert!(compacted >= at);
            }
            other => panic!("list at compacted revision {old}: expected Compacted, got {other:?}"),
        }
    }
    // Paging at a compacted revision fails the same way.
    let paged = s
        .list(
            p,
            ListOptions {
                revision: Some(r2),
                limit: Some(1),
                start_key: Some(format!("{p}k")),
            },
        )
        .await;
    assert!(matches!(paged, Err(StorageError::Compacted { .. })), "got {paged:?}");

    // The state at the compaction point is still readable, and latest values survive.
    let state = s
        .list(
            p,
            ListOptions {
                revision: Some(at),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(state.items, vec![kv(&k, "v2", r1, r2), kv(&k2, "x", at, at)]);
    assert_eq!(s.get(&k).await.unwrap(), Some(kv(&k, "v2", r1, r2)));
    assert_eq!(s.get(&gone).await.unwrap(), None);

    expect_watch_compacted(s, p, r1 - 1, at).await;
    expect_watch_compacted(s, p, at - 2, at).await;

    // Watching from the compaction point works and still knows previous values.
    let mut w = s.watch(p, at - 1).await.expect("watch from the compaction point");
    let first = next_event(&mut w).await;
    assert_eq!(
        first,
        WatchEvent {
            event_type: WatchEventType::Put,
            kv: kv(&k2, "x", at, at),
            prev: None
        }
    );
    let r3 = s.update(&k, bytes("v3"), r2).await.unwrap();
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent {
            event_type: WatchEventType::Put,
            kv: kv(&k, "v3", r1, r3),
            prev: Some(kv(&k, "v2", r1, r2))
        }
    );

    match s.compact(at).await {
        Err(StorageError::Compacted { requested, compacted }) => {
            assert_eq!(requested, at);
            assert!(compacted >= at);
        }
        other => panic!("compacting again at {at}: expected Compacted, got {other:?}"),
    }
    let current = s.current_revision().await.unwrap();
    match s.compact(current + 1000).await {
        Err(StorageError::FutureRevision { requested, .. }) => assert_eq!(requested, current + 1000),
        other => panic!("compacting a future revision: expected FutureRevision, got {other:?}"),
    }
}
