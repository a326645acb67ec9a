//! kube-controller-manager: many independent controllers in one process, each a level-triggered
//! reconcile loop over the apiserver's list/watch API. Controllers share informers (one watch
//! per resource type), each has its own rate-limited work queue, and only the leader (Lease
//! `kube-system/kube-controller-manager`) runs them.

pub mod controllers;
pub mod discovery;
pub mod expectations;
pub mod informer;
pub mod metrics;
pub mod queue;
pub mod util;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use component_base::duration::parse_duration;
use component_base::leader::{LeaderElectionFlags, LeaderElector, default_identity};
use futures::future::BoxFuture;
use kube::Client;
use tracing::{info, warn};

use crate::informer::InformerFactory;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("api: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("client: {0}")]
    Client(#[from] component_base::client::ClientError),
    #[error("leader election: {0}")]
    Leader(#[from] component_base::leader::LeaderElectionError),
    #[error("serving health endpoints: {0}")]
    Serve(#[from] component_base::healthz::ServeError),
}

/// Command-line flags, with upstream's names and defaults.
#[derive(Parser, Debug, Clone)]
#[command(name = "kube-controller-manager", about = "The Kubernetes controller manager", version = "v1.33.0")]
pub struct Options {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers to enable: '*' enables all on-by-default controllers, 'foo' enables foo,
    /// '-foo' disables foo.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    #[command(flatten)]
    pub leader: LeaderElectionFlags,
    #[arg(long = "concurrent-replicaset-syncs", default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long = "concurrent-rc-syncs", default_value_t = 5)]
    pub concurrent_rc_syncs: usize,
    #[arg(long = "concurrent-deployment-syncs", default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long = "concurrent-statefulset-syncs", default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,
    #[arg(long = "concurrent-daemonset-syncs", default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,
    #[arg(long = "concurrent-job-syncs", default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    #[arg(long = "concurrent-cron-job-syncs", default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,
    #[arg(long = "concurrent-gc-syncs", default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    #[arg(long = "concurrent-namespace-syncs", default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    #[arg(long = "concurrent-endpoint-syncs", default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    #[arg(long = "concurrent-service-endpoint-syncs", default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    #[arg(long = "concurrent-resource-quota-syncs", default_value_t = 5)]
    pub concurrent_resource_quota_syncs: usize,
    /// How often every quota's usage is recomputed in full.
    #[arg(long = "resource-quota-sync-period", default_value = "5m", value_parser = parse_duration)]
    pub resource_quota_sync_period: Duration,
    #[arg(long = "concurrent-ttl-after-finished-syncs", default_value_t = 5)]
    pub concurrent_ttl_after_finished_syncs: usize,
    /// Maximum number of endpoints in one EndpointSlice.
    #[arg(long = "max-endpoints-per-slice", default_value_t = 100)]
    pub max_endpoints_per_slice: usize,
    /// How long a node may go without a heartbeat before it is marked unhealthy.
    #[arg(long = "node-monitor-grace-period", default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long = "node-monitor-period", default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Number of terminated pods that can exist before the pod GC deletes them (<= 0 disables).
    #[arg(long = "terminated-pod-gc-threshold", default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,
    /// Root CA published as the kube-root-ca.crt ConfigMap in every namespace.
    #[arg(long = "root-ca-file")]
    pub root_ca_file: Option<PathBuf>,
    /// CIDR range for Services (accepted for compatibility).
    #[arg(long = "service-cluster-ip-range")]
    pub service_cluster_ip_range: Option<String>,
    /// Name of the cluster (accepted for compatibility).
    #[arg(long = "cluster-name", default_value = "kubernetes")]
    pub cluster_name: String,
    /// Use per-controller service account credentials (accepted for compatibility).
    #[arg(long = "use-service-account-credentials", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub use_service_account_credentials: bool,
    /// Address for /healthz and /metrics.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Port for /healthz and /metrics (0 disables serving).
    #[arg(long = "secure-port", default_value_t = 10257)]
    pub secure_port: u16,
    #[command(flatten)]
    pub tls: component_base::healthz::TlsFlags,
    /// Log verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 2)]
    pub verbosity: u8,
}

/// What every controller gets at construction.
#[derive(Clone)]
pub struct ControllerContext {
    pub client: Client,
    pub informers: Arc<InformerFactory>,
    pub options: Arc<Options>,
}

type StartFn = fn(&ControllerContext) -> Result<BoxFuture<'static, ()>, Error>;

/// A controller: upstream's canonical name, the older aliases, and how to start it.
pub struct ControllerDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub start: StartFn,
}

/// Every controller this binary has, in start order.
pub fn all_controllers() -> Vec<ControllerDef> {
    controllers::registry()
}

/// Resolve `--controllers` to the canonical names to run.
pub fn enabled_controllers(flag: &[String]) -> Result<BTreeSet<&'static str>, Error> {
    let defs = all_controllers();
    let resolve = |n: &str| defs.iter().find(|d| d.name == n || d.aliases.contains(&n)).map(|d| d.name);
    let mut star = false;
    let (mut on, mut off) = (BTreeSet::new(), BTreeSet::new());
    for item in flag.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if item == "*" {
            star = true;
        } else if let Some(n) = item.strip_prefix('-') {
            off.insert(resolve(n).ok_or_else(|| Error::Invalid(format!("{n:?} is not in the list of known controllers")))?);
        } else {
            on.insert(resolve(item).ok_or_else(|| Error::Invalid(format!("{item:?} is not in the list of known controllers")))?);
        }
    }
    let mut out: BTreeSet<&'static str> = if star { defs.iter().map(|d| d.name).collect() } else { BTreeSet::new() };
    out.extend(on);
    for n in off {
        out.remove(n);
    }
    Ok(out)
}

/// Build the enabled controllers, start the shared informers, and run until one of them stops.
pub async fn run_controllers(ctx: ControllerContext) -> Result<(), Error> {
    let enabled = enabled_controllers(&ctx.options.controllers)?;
    let mut futs = Vec::new();
    for def in all_controllers() {
        if !enabled.contains(def.name) {
            continue;
        }
        info!(controller = def.name, "starting controller");
        futs.push((def.start)(&ctx)?);
    }
    ctx.informers.start();
    futures::future::join_all(futs).await;
    ctx.informers.shutdown();
    Ok(())
}

/// The whole binary: client, health endpoint, leader election, controllers.
pub async fn run(opts: Options) -> Result<(), Error> {
    let client = component_base::client::from_kubeconfig(opts.kubeconfig.as_deref(), "kube-controller-manager/v1.33.0").await?;
    let ready = component_base::healthz::Readiness::default();
    if opts.secure_port != 0 {
        let addr = SocketAddr::new(opts.bind_address, opts.secure_port);
        let metrics: component_base::healthz::MetricsFn = Arc::new(|| metrics::METRICS.render());
        let bound = component_base::healthz::serve(addr, &opts.tls, ready.clone(), metrics).await?;
        info!(%bound, "serving /healthz and /metrics");
    }
    let ctx = ControllerContext { client: client.clone(), informers: InformerFactory::new(client.clone()), options: Arc::new(opts.clone()) };
    if opts.leader.leader_elect {
        let cfg = opts.leader.config("kube-controller-manager", default_identity());
        let elector = LeaderElector::new(client, cfg)?;
        ready.set(true);
        let out = elector.run(run_controllers(ctx)).await;
        match out {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "leaderelection lost");
                Err(e.into())
            }
        }
    } else {
        ready.set(true);
        run_controllers(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_as_upstream() {
        let all = enabled_controllers(&["*".into()]).unwrap();
        assert!(all.contains("replicaset-controller"));
        let some = enabled_controllers(&["*".into(), "-replicaset".into()]).unwrap();
        assert!(!some.contains("replicaset-controller"));
        assert_eq!(some.len(), all.len() - 1);
        let one = enabled_controllers(&["replicationcontroller".into()]).unwrap();
        assert_eq!(one.into_iter().collect::<Vec<_>>(), vec!["replicationcontroller-controller"]);
        assert!(enabled_controllers(&["nope".into()]).is_err());
    }

    #[test]
    fn flags_parse() {
        let o = Options::parse_from(["kcm", "--controllers=*,-deployment", "--secure-port=0", "-v=4", "--node-monitor-grace-period=40s", "--leader-elect=false"]);
        assert_eq!(o.controllers, vec!["*".to_string(), "-deployment".to_string()]);
        assert_eq!(o.verbosity, 4);
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(40));
        assert_eq!(o.resource_quota_sync_period, Duration::from_secs(300));
        assert!(!o.leader.leader_elect);
        assert_eq!(Options::parse_from(["kcm"]).secure_port, 10257);
    }

    #[test]
    fn shipped_manifests_use_accepted_flags() {
        let unit = include_str!("../../manifests/systemd/kube-controller-manager.service").replace("\\\n", " ");
        let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        let argv: Vec<&str> = line.split_whitespace().filter(|a| !a.starts_with('$')).collect();
        assert_eq!(argv[0], "/usr/local/bin/kube-controller-manager");
        let o = Options::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(o.leader.leader_elect);
        assert_eq!(o.secure_port, 10257);
        enabled_controllers(&o.controllers).unwrap();

        let pod: k8s_openapi::api::core::v1::Pod =
            serde_yaml::from_str(include_str!("../../manifests/static-pods/kube-controller-manager.yaml")).expect("a Pod");
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let argv = c.command.clone().unwrap();
        assert_eq!(argv[0], "kube-controller-manager");
        let o = Options::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert_eq!(o.kubeconfig.as_deref(), Some(std::path::Path::new("/etc/kubernetes/controller-manager.conf")));
    }
}
