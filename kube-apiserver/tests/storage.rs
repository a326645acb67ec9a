//! Runs the storage conformance suite against both backends: the embedded store in a temp
//! directory and a real etcd started by the test. Plus backend-specific checks (embedded
//! persistence and exact revision counting, etcd watches ending when etcd goes away).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube_apiserver::storage::embedded::EmbeddedStorage;
use kube_apiserver::storage::etcd::EtcdStorage;
use kube_apiserver::storage::{ListOptions, Storage, StorageError, WatchEventType, conformance};

/// Liveness guard for waits that must not hang the test run.
const WAIT: Duration = Duration::from_secs(60);

fn unique_prefix() -> String {
    format!("/registry/conformance-{}/", uuid::Uuid::new_v4())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A single-member etcd on loopback, killed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    async fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", "n1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .arg(format!("--initial-cluster=n1={peer_url}"))
            .args(["--logger=zap", "--log-level=error"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            endpoint: client_url,
            _dir: dir,
        };
        let storage = etcd.connect().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while storage.health().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "etcd did not become healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        etcd
    }

    async fn connect(&self) -> EtcdStorage {
        EtcdStorage::connect(std::slice::from_ref(&self.endpoint))
            .await
            .expect("connect to etcd")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn open(dir: &Path) -> EmbeddedStorage {
    EmbeddedStorage::open(dir).expect("open embedded store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_conformance() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(Arc::new(open(dir.path())), &unique_prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_conformance() {
    let etcd = Etcd::start().await;
    let storage = Arc::new(etcd.connect().await);
    conformance::run_all(storage.clone(), &unique_prefix()).await;
    // A second run on the same etcd, as another user of a shared etcd would do.
    conformance::run_all(storage, &unique_prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_ends_when_etcd_stops() {
    let mut etcd = Etcd::start().await;
    let storage = etcd.connect().await;
    let prefix = unique_prefix();
    let mut watch = storage
        .watch(&prefix, storage.current_revision().await.unwrap())
        .await
        .unwrap();
    storage.create(&format!("{prefix}a"), b"x".to_vec()).await.unwrap();
    let first = tokio::time::timeout(WAIT, watch.next()).await.expect("first event");
    assert!(
        matches!(first, Some(Ok(ref e)) if e.event_type == WatchEventType::Put),
        "got {first:?}"
    );

    etcd.kill();
    match tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("watch noticed etcd stopping")
    {
        None | Some(Err(StorageError::Unavailable(_))) => {}
        other => panic!("expected the watch to end, got {other:?}"),
    }
    assert!(storage.health().await.is_err(), "health must fail with etcd gone");
}

#[tokio::test]
async fn embedded_revisions_are_consecutive() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert_eq!(s.current_revision().await.unwrap(), 0);
    assert_eq!(s.compacted_revision().await.unwrap(), 0);
    let r1 = s.create("/a", b"1".to_vec()).await.unwrap();
    assert_eq!(r1, 1, "revisions start at 1");
    // Failed writes do not use up revisions.
    assert!(s.create("/a", b"dup".to_vec()).await.is_err());
    assert!(s.update("/a", b"x".to_vec(), 99).await.is_err());
    assert!(s.delete("/missing", None).await.is_err());
    assert_eq!(s.update("/a", b"2".to_vec(), r1).await.unwrap(), 2);
    assert_eq!(s.delete("/a", None).await.unwrap().0, 3);
    assert_eq!(s.create("/b", b"1".to_vec()).await.unwrap(), 4);
    assert_eq!(s.current_revision().await.unwrap(), 4);
}

#[tokio::test]
async fn embedded_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, current, live) = {
        let s = open(dir.path());
        let r1 = s.create("/registry/x/a", b"a1".to_vec()).await.unwrap();
        s.update("/registry/x/a", b"a2".to_vec(), r1).await.unwrap();
        s.create("/registry/x/b", b"b1".to_vec()).await.unwrap();
        s.delete("/registry/x/b", None).await.unwrap();
        s.create("/registry/x/c", b"c1".to_vec()).await.unwrap();
        s.compact(r1 + 1).await.unwrap();
        let a = s.get("/registry/x/a").await.unwrap().unwrap();
        let live = s
            .watch("/registry/x/", s.current_revision().await.unwrap())
            .await
            .unwrap();
        (a, s.current_revision().await.unwrap(), live)
    };
    // Dropping the store ends its watches and releases the file.
    let mut live = live;
    assert!(
        tokio::time::timeout(WAIT, live.next())
            .await
            .expect("watch ended")
            .is_none()
    );

    let s = open(dir.path());
    assert_eq!(s.get("/registry/x/a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get("/registry/x/b").await.unwrap(), None);
    assert_eq!(s.current_revision().await.unwrap(), current);
    assert_eq!(s.compacted_revision().await.unwrap(), a.mod_revision);
    let listed = s.list("/registry/x/", ListOptions::default()).await.unwrap();
    assert_eq!(listed.revision, current);
    assert_eq!(listed.items.len(), 2);

    // History after the compaction point is still there for watches.
    let mut w = s.watch("/registry/x/", a.mod_revision).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(WAIT, w.next()).await.unwrap().unwrap().unwrap();
        seen.push((event.event_type, event.kv.key, event.kv.mod_revision));
    }
    assert_eq!(
        seen,
        vec![
            (WatchEventType::Put, "/registry/x/b".to_string(), current - 2),
            (WatchEventType::Delete, "/registry/x/b".to_string(), current - 1),
            (WatchEventType::Put, "/registry/x/c".to_string(), current),
        ]
    );
    assert!(matches!(
        s.list("/registry/x/", ListOptions { revision: Some(1), ..Default::default() }).await,
        Err(StorageError::Compacted { requested: 1, compacted }) if compacted == a.mod_revision
    ));
    assert_eq!(
        s.create("/registry/x/d", b"d".to_vec()).await.unwrap(),
        current + 1,
        "counter continues"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_slow_watcher_gets_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut w = s.watch("/w/", 0).await.unwrap();
    // More events than the live buffer holds, none consumed meanwhile.
    let total = 1500;
    for i in 0..total {
        s.create(&format!("/w/{i:05}"), Vec::new()).await.unwrap();
    }
    for i in 0..total {
        let event = tokio::time::timeout(WAIT, w.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(event.kv.key, format!("/w/{i:05}"));
        assert_eq!(event.kv.mod_revision, i + 1);
    }
    let marker = s.create("/w/marker", Vec::new()).await.unwrap();
    let event = tokio::time::timeout(WAIT, w.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.kv.mod_revision, marker);
}
