//! Every write the server acknowledged survives a SIGTERM + restart with its exact
//! resourceVersion, on both storage backends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, within};
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// Poll `cond` every 20ms until it holds (bounded by `within` at the call site).
async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn acknowledged_writes_survive_restart(opts: ApiServerOptions) {
    let mut s = ApiServer::start(opts).await;
    let factory = s.http_factory();
    let url = format!("{}{CMS}", s.url());
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (acked, failures, stop) = (acked.clone(), failures.clone(), stop.clone());
        tokio::spawn(async move {
            let mut http = factory.build();
            for i in 0..100_000u32 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("w-{i:06}");
                let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}});
                let sent = http
                    .post(&url)
                    .json(&body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let rv = match sent {
                    Ok(resp) if resp.status() == reqwest::StatusCode::CREATED => resp
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["metadata"]["resourceVersion"].as_str().map(String::from)),
                    _ => None,
                };
                match rv {
                    Some(rv) => acked.lock().unwrap().push((name, rv)),
                    None => {
                        // Server down or going down: not acknowledged, so no promise to check.
                        failures.fetch_add(1, Ordering::SeqCst);
                        http = factory.build();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        })
    };
    let count = || acked.lock().unwrap().len();

    within(60, "20 acknowledged writes before the stop", until(|| count() >= 20)).await;
    let status = s.stop().await;
    eprintln!(
        "apiserver stopped with {status:?} after {} acknowledged writes",
        count()
    );
    let failed_before = failures.load(Ordering::SeqCst);
    within(
        60,
        "writes failing while the server is down",
        until(|| failures.load(Ordering::SeqCst) >= failed_before + 3),
    )
    .await;
    let before_restart = count();
    s.restart().await;
    within(
        90,
        "20 more acknowledged writes after the restart",
        until(|| count() >= before_restart + 20),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    within(30, "writer task to finish", writer).await.unwrap();

    let list: Value = s
        .http()
        .get(format!("{}{CMS}", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: BTreeMap<String, String> = list["items"]
        .as_array()
        .expect("list items")
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["resourceVersion"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let acked = acked.lock().unwrap().clone();
    let mut problems = Vec::new();
    for (name, rv) in &acked {
        match stored.get(name) {
            None => problems.push(format!("{name} (rv {rv}) is missing")),
            Some(got) if got != rv => problems.push(format!("{name}: acknowledged rv {rv}, stored rv {got}")),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} acknowledged writes lost or changed:\n{}",
        problems.len(),
        acked.len(),
        problems.join("\n")
    );
    // Point reads agree with the list.
    let http = s.http();
    for (name, rv) in acked.iter().step_by(7) {
        let obj: Value = http
            .get(format!("{}{CMS}/{name}", s.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(obj["metadata"]["resourceVersion"].as_str(), Some(rv.as_str()), "{obj}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_acknowledged_writes_etcd() {
    acknowledged_writes_survive_restart(ApiServerOptions::own_etcd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_acknowledged_writes_embedded() {
    acknowledged_writes_survive_restart(ApiServerOptions::embedded()).await;
}
