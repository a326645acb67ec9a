//! One thousand concurrent raw HTTP watches each see every write exactly once, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use integration_tests::{ApiServer, within};
use serde_json::{Value, json};

const WATCHERS: usize = 1000;
/// Watchers share a client per group; HTTP/2 (ALPN) multiplexes a group onto one connection.
const CLIENTS: usize = 10;
const WRITES: usize = 50;
const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// Read watch events (newline-delimited JSON) until the sentinel object shows up; return the
/// (type, name, resourceVersion) of every event before it.
async fn watch_until_sentinel(
    http: reqwest::Client,
    url: String,
    connected: Arc<AtomicUsize>,
) -> Result<Vec<(String, String, u64)>, String> {
    let resp = http.get(&url).send().await.map_err(|e| format!("watch request: {e}"))?;
    connected.fetch_add(1, Ordering::SeqCst);
    if !resp.status().is_success() {
        return Err(format!(
            "watch status {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        ));
    }
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| format!("watch body: {e}"))?);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let ev: Value = serde_json::from_slice(&line).map_err(|e| format!("bad event line ({e})"))?;
            let ty = ev["type"].as_str().unwrap_or_default().to_string();
            let name = ev["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let rv_text = ev["object"]["metadata"]["resourceVersion"].as_str().unwrap_or_default();
            let rv = rv_text
                .parse::<u64>()
                .map_err(|_| format!("non-numeric resourceVersion in {ev}"))?;
            if name == "sentinel" {
                return Ok(events);
            }
            events.push((ty, name, rv));
        }
    }
    Err(format!("watch ended before the sentinel after {} events", events.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_watchers_each_see_every_write_in_order() {
    let s = ApiServer::start_default().await;
    let writer = s.http();
    let list: Value = writer
        .get(format!("{}{CMS}", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_string();
    let url = format!("{}{CMS}?watch=1&resourceVersion={rv}", s.url());

    let clients: Vec<reqwest::Client> = (0..CLIENTS).map(|_| s.http()).collect();
    let probe = clients[0].get(format!("{}/readyz", s.url())).send().await.unwrap();
    eprintln!(
        "watchers use {:?} ({CLIENTS} clients, {WATCHERS} watches)",
        probe.version()
    );
    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(WATCHERS);
    for i in 0..WATCHERS {
        let http = clients[i % CLIENTS].clone();
        tasks.push(tokio::spawn(watch_until_sentinel(http, url.clone(), connected.clone())));
    }
    // Best effort: let the watches get their response headers before writing, so they are live
    // watches rather than replays. Correctness does not depend on it (they start at `rv`).
    for _ in 0..300 {
        if connected.load(Ordering::SeqCst) >= WATCHERS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut written = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let name = format!("fan-{i:03}");
        let body =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}});
        let resp = writer
            .post(format!("{}{CMS}", s.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
        written.push(name);
    }
    let sentinel = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sentinel"}});
    let resp = writer
        .post(format!("{}{CMS}", s.url()))
        .json(&sentinel)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);

    let results = within(
        300,
        "all watchers reaching the sentinel",
        futures::future::join_all(tasks),
    )
    .await;
    let list_rv: u64 = rv.parse().expect("numeric list resourceVersion");
    for (i, r) in results.into_iter().enumerate() {
        let events = r
            .expect("watcher task panicked")
            .unwrap_or_else(|e| panic!("watcher {i}: {e}"));
        let names: Vec<&str> = events.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(names, written, "watcher {i} saw a different sequence");
        assert!(events.iter().all(|(ty, _, _)| ty == "ADDED"), "watcher {i}: {events:?}");
        assert!(
            events[0].2 > list_rv,
            "watcher {i} replayed events at or before {list_rv}: {events:?}"
        );
        assert!(
            events.windows(2).all(|w| w[0].2 < w[1].2),
            "watcher {i}: resourceVersions not strictly increasing: {events:?}"
        );
    }
}
