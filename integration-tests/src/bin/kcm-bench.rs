//! kcm-bench: how long kube-controller-manager takes to reconcile N Deployments of R replicas
//! created at once (every ReplicaSet and pod object exists and the Deployment and ReplicaSet
//! statuses report R replicas), and the controller-manager's peak RSS.
//!
//! Starts a real etcd, kube-apiserver and kube-controller-manager (the binaries next to this
//! one: build with `cargo build --release --bins`). No kubelet runs, so pods stay Pending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Benchmark kube-controller-manager reconciling many Deployments")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    deployments: usize,
    #[arg(long, default_value_t = 10)]
    replicas: i32,
    /// Concurrent creating clients.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Use the embedded store instead of etcd.
    #[arg(long)]
    embedded: bool,
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn count<K>(api: &Api<K>) -> anyhow::Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug + kube::Resource,
{
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(2000);
    loop {
        let l = api.list(&lp).await?;
        out.extend(l.items);
        match l.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = if args.embedded { ApiServerOptions::embedded() } else { ApiServerOptions::own_etcd() };
    let server = ApiServer::start(opts).await;
    let client = server.client().await;
    let ns = "bench";
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}}))?).await?;
    let kcm = ControllerManager::start(&server, &["--controllers=replicaset,deployment", "-v=1"]);
    let pid = kcm.pid().expect("controller-manager running");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    let n = args.deployments;
    let replicas = args.replicas;
    let api = Arc::new(deps.clone());
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let d: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": format!("d{i}")},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": format!("d{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("d{i}")}},
                            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
                }))
                .expect("deployment");
                api.create(&PostParams::default(), &d).await
            }
        })
        .buffer_unordered(args.concurrency)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("create failed: {e}");
            }
        })
        .await;
    let created = start.elapsed();
    eprintln!("created {n} deployments in {created:?}");

    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let want_pods = n * replicas as usize;
    let mut peak = 0;
    let done = loop {
        if start.elapsed() > Duration::from_secs(args.timeout) {
            anyhow::bail!("not reconciled after {}s", args.timeout);
        }
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        let d = count(&deps).await?;
        let d_ok = d.iter().filter(|d| {
            let s = d.status.clone().unwrap_or_default();
            s.replicas == Some(replicas) && s.updated_replicas == Some(replicas) && s.observed_generation == d.metadata.generation
        });
        let d_ok = d_ok.count();
        let r = count(&rss).await?;
        let r_ok = r.iter().filter(|r| r.status.as_ref().is_some_and(|s| s.replicas == replicas)).count();
        let p = count(&pods).await?.len();
        eprintln!("{:>6.1}s deployments reconciled {d_ok}/{n}, replicasets {r_ok}/{n}, pods {p}/{want_pods}", start.elapsed().as_secs_f64());
        if d_ok == n && r_ok == n && p == want_pods {
            break start.elapsed();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    let storage = if args.embedded { "embedded store" } else { "etcd" };
    let report = format!(
        "## kube-controller-manager: {n} Deployments x {replicas} replicas\n\n\
         Measured by `kcm-bench` (release build) in one run, {storage}, everything (etcd, apiserver, controller-manager, \
         the load generator) on the same 2 cores of a shared, busy machine; no kubelet, so pods stay Pending.\n\n\
         | what | value |\n|---|---:|\n\
         | Deployments created (client, {} concurrent) | {:.1} s |\n\
         | all {n} ReplicaSets and {want_pods} pods exist, every Deployment/ReplicaSet status reconciled | {:.1} s |\n\
         | kube-controller-manager peak RSS (VmHWM) | {:.0} MiB |\n",
        args.concurrency,
        created.as_secs_f64(),
        done.as_secs_f64(),
        peak as f64 / 1024.0
    );
    println!("{report}");
    if let Some(p) = args.out {
        std::fs::write(p, &report)?;
    }
    drop(kcm);
    Ok(())
}
