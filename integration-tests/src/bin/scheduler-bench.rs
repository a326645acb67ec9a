//! scheduler-bench: scheduling throughput and per-pod latency of kube-scheduler against a real
//! kube-apiserver, in the style of upstream's scheduler_perf.
//!
//! For each workload a fresh kube-apiserver (and etcd, unless `--storage embedded`) is started,
//! `--nodes` Node objects are created (10 zones, 32 cpu / 128Gi each, no kubelet), then the
//! kube-scheduler binary next to this one, and finally `--pods` pods are created by concurrent
//! clients while a watch records when each pod gets its node. Reports pods/s over the window
//! from the first create to the last binding, and p50/p99 of (binding seen − create acknowledged).
//! Workloads: basic (plain pods), anti-affinity (required pod anti-affinity on hostname within
//! groups of 500), topology-spread (maxSkew 1 across zones, DoNotSchedule).
//! Build with `--release` and run the release binary for meaningful figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use integration_tests::{ApiServer, ApiServerOptions, find_binary, free_port};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(about = "Benchmark kube-scheduler throughput and latency against the real apiserver")]
struct Args {
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// Workloads to run (comma separated): basic, anti-affinity, topology-spread.
    #[arg(long, default_value = "basic,anti-affinity,topology-spread")]
    workloads: String,
    /// Concurrent pod creators.
    #[arg(long, default_value_t = 64)]
    creators: usize,
    /// etcd or embedded.
    #[arg(long, default_value = "etcd")]
    storage: String,
    /// streaming (pods created while the scheduler runs), backlog (all pods created first, then
    /// the scheduler is started: its own throughput, without the creation rate as a cap), or both.
    #[arg(long, default_value = "both")]
    mode: String,
    /// Append the Markdown report to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

struct Result_ {
    workload: String,
    backlog: bool,
    pods: usize,
    bound: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    peak_per_sec: usize,
    scheduler_cpu: f64,
    apiserver_cpu: f64,
}

fn node_json(i: usize) -> Value {
    let name = format!("node-{i}");
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

fn pod_json(workload: &str, ns: &str, i: usize) -> Value {
    let name = format!("pod-{i}");
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]}
    });
    match workload {
        "anti-affinity" => {
            let group = format!("g{}", i / 500);
            p["metadata"]["labels"] = json!({"app": "bench", "group": group});
            p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"group": group}}, "topologyKey": "kubernetes.io/hostname"}]}});
        }
        "topology-spread" => {
            p["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "bench"}}}]);
        }
        _ => {}
    }
    p
}

/// Run `n` async jobs with `concurrency` workers.
async fn parallel<F, Fut>(n: usize, concurrency: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                f(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

struct SchedulerChild(std::process::Child);

/// User+system CPU seconds a process has used so far (Linux /proc; 0 when unavailable).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

impl Drop for SchedulerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the kube-scheduler next to this binary (metrics on a free port) and wait until it has
/// synced its informers.
async fn start_scheduler(server: &ApiServer) -> anyhow::Result<SchedulerChild> {
    let port = free_port()?;
    let log = server.root_dir().join("kube-scheduler.log");
    let logf = std::fs::File::create(&log)?;
    let child = std::process::Command::new(find_binary("kube-scheduler")?)
        .args([
            format!("--kubeconfig={}", server.kubeconfig_path().display()),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
        ])
        .stdout(std::process::Stdio::from(logf.try_clone()?))
        .stderr(std::process::Stdio::from(logf))
        .spawn()?;
    let child = SchedulerChild(child);
    let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    integration_tests::within(300, "scheduler ready", async {
        loop {
            // HTTPS with the scheduler's self-signed certificate.
            if let Ok(r) = http.get(format!("https://127.0.0.1:{port}/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    Ok(child)
}

/// Create the workload's pods from `args.creators` concurrent clients, recording when each
/// create was acknowledged.
async fn create_pods(
    args: &Args,
    workload: &str,
    ns: &str,
    pods: Api<Pod>,
    created_at: Arc<Mutex<HashMap<String, Instant>>>,
) -> anyhow::Result<()> {
    let (workload, ns) = (workload.to_string(), ns.to_string());
    parallel(args.pods, args.creators, move |i| {
        let (pods, created_at, workload, ns) = (
            pods.clone(),
            created_at.clone(),
            workload.clone(),
            ns.clone(),
        );
        async move {
            let p: Pod = serde_json::from_value(pod_json(&workload, &ns, i))?;
            pods.create(&PostParams::default(), &p).await?;
            created_at
                .lock()
                .unwrap()
                .insert(format!("pod-{i}"), Instant::now());
            Ok(())
        }
    })
    .await
}

async fn run_workload(args: &Args, workload: &str, backlog: bool) -> anyhow::Result<Result_> {
    let opts = if args.storage == "embedded" {
        ApiServerOptions::embedded()
    } else {
        ApiServerOptions::own_etcd()
    };
    let server = ApiServer::start(opts).await;
    let client = server.client().await;

    let t = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    {
        let nodes = nodes.clone();
        parallel(args.nodes, 32, move |i| {
            let nodes = nodes.clone();
            async move {
                let v = node_json(i);
                let status = v["status"].clone();
                let n: Node = serde_json::from_value(v)?;
                let created = nodes.create(&PostParams::default(), &n).await?;
                if created
                    .status
                    .as_ref()
                    .and_then(|s| s.allocatable.as_ref())
                    .is_none()
                {
                    nodes
                        .patch_status(
                            &format!("node-{i}"),
                            &PatchParams::default(),
                            &Patch::Merge(&json!({"status": status})),
                        )
                        .await?;
                }
                Ok(())
            }
        })
        .await?;
    }
    eprintln!(
        "[{workload}] {} nodes created in {:.1?}",
        args.nodes,
        t.elapsed()
    );

    let ns = format!("bench-{}", workload);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
    )
    .await?;

    // Watch bindings.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let bound_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let created_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(0usize);
    {
        let bound_at = bound_at.clone();
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut s = watcher(pods, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                let p = match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
                    _ => continue,
                };
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    let mut m = bound_at.lock().unwrap();
                    let name = p.metadata.name.unwrap_or_default();
                    m.entry(name).or_insert_with(Instant::now);
                    let _ = done_tx.send(m.len());
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut start = Instant::now();
    let _child: SchedulerChild;
    if backlog {
        create_pods(args, workload, &ns, pods.clone(), created_at.clone()).await?;
        eprintln!(
            "[{workload}] {} pods created in {:.1?}",
            args.pods,
            start.elapsed()
        );
        _child = start_scheduler(&server).await?;
        start = Instant::now();
    } else {
        // (CPU baselines are taken right after this if/else.)
        _child = start_scheduler(&server).await?;
        start = Instant::now();
        create_pods(args, workload, &ns, pods.clone(), created_at.clone()).await?;
        eprintln!(
            "[{workload}] {} pods created in {:.1?}",
            args.pods,
            start.elapsed()
        );
    }
    // In streaming mode the baselines include the creation phase; both modes include binding.
    let sched_cpu0 = if backlog {
        cpu_seconds(_child.0.id())
    } else {
        0.0
    };
    let api_cpu0 = if backlog {
        server.pid().map(cpu_seconds).unwrap_or(0.0)
    } else {
        0.0
    };
    let target = args.pods;
    let _ =
        tokio::time::timeout(Duration::from_secs(600), done_rx.wait_for(|n| *n >= target)).await;
    let bound = bound_at.lock().unwrap().clone();
    let created = created_at.lock().unwrap().clone();
    let last = bound.values().max().copied().unwrap_or(start);
    let mut lat: Vec<Duration> = bound
        .iter()
        .filter_map(|(n, b)| created.get(n).map(|c| b.saturating_duration_since(*c)))
        .collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let mut per_sec: HashMap<u64, usize> = HashMap::new();
    for b in bound.values() {
        *per_sec
            .entry(b.duration_since(start).as_secs())
            .or_default() += 1;
    }
    let scheduler_cpu = cpu_seconds(_child.0.id()) - sched_cpu0;
    let apiserver_cpu = server.pid().map(cpu_seconds).unwrap_or(0.0) - api_cpu0;
    let res = Result_ {
        scheduler_cpu,
        apiserver_cpu,
        workload: workload.to_string(),
        backlog,
        pods: args.pods,
        bound: bound.len(),
        elapsed: last.duration_since(start),
        p50: pct(0.5),
        p99: pct(0.99),
        peak_per_sec: per_sec.values().copied().max().unwrap_or(0),
    };
    eprintln!(
        "[{workload}{}] bound {}/{} in {:.2?}: {:.0} pods/s (peak {}/s), p50 {:.1?} p99 {:.1?}; cpu s: scheduler {:.1} apiserver {:.1}",
        if backlog { " backlog" } else { "" },
        res.bound,
        res.pods,
        res.elapsed,
        res.bound as f64 / res.elapsed.as_secs_f64(),
        res.peak_per_sec,
        res.p50,
        res.p99,
        res.scheduler_cpu,
        res.apiserver_cpu
    );
    Ok(res)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut results = Vec::new();
    let modes: &[bool] = match args.mode.as_str() {
        "streaming" => &[false],
        "backlog" => &[true],
        _ => &[false, true],
    };
    for w in args
        .workloads
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        for &backlog in modes {
            results.push(run_workload(&args, w, backlog).await?);
        }
    }
    let mut md = format!(
        "\n## kube-scheduler throughput (scheduler_perf style)\n\nMeasured by `scheduler-bench` (release build) in one run: {} nodes, {} pods per workload, {} storage, {} concurrent pod creators; \
         apiserver, {}scheduler, load generator and its watch all on this machine's 2 shared cores (other work was running on the machine at the same time). \
         Streaming: pods are created while the scheduler runs; throughput = pods bound / (last binding seen − first create sent), \
         latency = binding seen by a watch − create acknowledged. Backlog: all pods exist before the scheduler starts; throughput = pods bound / \
         (last binding seen − scheduler ready), i.e. the scheduler's own rate without the creation rate as a cap (latency there is queueing time, not shown).\n\n\
         CPU = seconds of CPU used by the kube-scheduler and kube-apiserver processes during the measured window (backlog) or the whole workload (streaming).\n\n\
         | workload | mode | pods bound | pods/s | peak pods/s (1 s bucket) | p50 latency | p99 latency | scheduler CPU s | apiserver CPU s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        args.nodes,
        args.pods,
        args.storage,
        args.creators,
        if args.storage == "etcd" { "etcd, " } else { "" }
    );
    for r in &results {
        md.push_str(&format!(
            "| {} | {} | {}/{} | {:.0} | {} | {} | {} | {:.1} | {:.1} |\n",
            r.workload,
            if r.backlog { "backlog" } else { "streaming" },
            r.bound,
            r.pods,
            r.bound as f64 / r.elapsed.as_secs_f64().max(1e-9),
            r.peak_per_sec,
            if r.backlog {
                "–".to_string()
            } else {
                format!("{:.0} ms", r.p50.as_secs_f64() * 1000.0)
            },
            if r.backlog {
                "–".to_string()
            } else {
                format!("{:.0} ms", r.p99.as_secs_f64() * 1000.0)
            },
            r.scheduler_cpu,
            r.apiserver_cpu,
        ));
    }
    println!("{md}");
    if let Some(out) = &args.out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)?;
        f.write_all(md.as_bytes())?;
    }
    Ok(())
}
