//! kube-scheduler: assigns pending pods to nodes through the scheduling framework, talking to
//! the API server only through its REST/watch API.
//!
//! Layout: [`config`] (KubeSchedulerConfiguration), [`cache`] (nodes with bound and assumed
//! pods), [`queue`] (active/backoff/unschedulable), [`framework`] (extension points),
//! [`plugins`] (one module per in-tree plugin), [`algorithm`] (one decision over a snapshot),
//! [`scheduler`] (informers, the scheduling loop, binding, events, status updates),
//! [`metrics`], and [`options`]/[`run`] for the binary.

pub mod algorithm;
pub mod cache;
pub mod config;
pub mod framework;
pub mod memo;
pub mod plugins;
pub mod queue;
pub mod selector;
pub mod types;

pub mod metrics;
pub mod options;
pub mod scheduler;
#[cfg(test)]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use component_base::healthz::{self, MetricsFn, Readiness};
use component_base::leader::{LeaderElectionError, LeaderElector};
use tracing::info;

pub use options::Options;
pub use scheduler::Scheduler;

/// The user agent the scheduler identifies itself with.
pub const USER_AGENT: &str = "kube-scheduler/v1.33.0";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Client(#[from] component_base::client::ClientError),
    #[error(transparent)]
    Scheduler(#[from] scheduler::SchedulerError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("serving health endpoints: {0}")]
    Serve(#[from] component_base::healthz::ServeError),
    #[error(transparent)]
    LeaderElection(#[from] LeaderElectionError),
}

/// Resolves once SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Run the scheduler until a signal (Ok) or the loss of leadership (Err).
pub async fn run(opts: Options) -> Result<(), RunError> {
    let cfg = opts.scheduler_config()?;
    let identity = component_base::leader::default_identity();
    let (leader_elect, le_cfg) = opts.leader_election(&cfg, identity.clone())?;
    let client =
        component_base::client::from_kubeconfig(opts.kubeconfig_path(&cfg).as_deref(), USER_AGENT)
            .await?;
    let metrics = Arc::new(metrics::Metrics::new()?);
    let sched = Scheduler::new(client.clone(), &cfg, metrics, &identity)?;
    sched.start_informers();

    let ready = Readiness::default();
    if let Some(addr) = opts.serve_addr() {
        let s = sched.clone();
        let mfn: MetricsFn = Arc::new(move || {
            s.update_gauges();
            s.metrics.render()
        });
        let bound = healthz::serve(addr, &opts.tls, ready.clone(), mfn).await?;
        info!(address = %bound, "serving /healthz, /readyz and /metrics over HTTPS");
    }
    {
        let (s, r) = (sched.clone(), ready.clone());
        tokio::spawn(async move {
            s.wait_for_sync().await;
            r.set(true);
        });
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("received termination signal");
        let _ = stop_tx.send(true);
    });
    let work = {
        let s = sched.clone();
        let mut stop = stop_rx.clone();
        async move {
            tokio::select! {
                _ = s.clone().run() => {}
                _ = stop.wait_for(|v| *v) => s.stop(),
            }
        }
    };
    if leader_elect {
        let elector = LeaderElector::new(client, le_cfg)?;
        info!(identity = %elector.identity(), "attempting to acquire the leader lease");
        let mut stop = stop_rx;
        tokio::select! {
            r = elector.run(work) => r?,
            // Not leading yet: nothing to hand over. Leading: `work` ends and the lease is
            // released by `run` within the grace period.
            _ = async { let _ = stop.wait_for(|v| *v).await; tokio::time::sleep(Duration::from_secs(5)).await } => {}
        }
    } else {
        work.await;
    }
    Ok(())
}
