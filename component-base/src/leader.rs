//! Lease-based leader election, with client-go's semantics: a candidate takes the Lease when
//! it is free or when its holder has not renewed it for `lease_duration` (measured on the
//! candidate's own clock from when it last saw the record change, so clock skew between
//! machines does not matter); the leader renews every `retry_period` and gives up leadership
//! when it cannot renew within `renew_deadline`. Writes are compare-and-swap on the Lease's
//! resourceVersion, so two candidates can never both believe they hold it.

use std::future::Future;
use std::time::{Duration, Instant};

use clap::Args;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tracing::{info, warn};

use crate::duration::parse_duration;

/// Upstream's leader-election flags.
#[derive(Args, Debug, Clone)]
pub struct LeaderElectionFlags {
    /// Run leader election before doing any work (for running replicated components).
    #[arg(long = "leader-elect", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long a non-leader waits after the last observed renewal before taking over.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// Interval between attempts to acquire or renew.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    /// Name of the Lease (defaults to the component's name).
    #[arg(long = "leader-elect-resource-name")]
    pub resource_name: Option<String>,
    /// Namespace of the Lease.
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    pub resource_namespace: String,
}

/// What to elect on.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per candidate (upstream: hostname + "_" + a random UUID).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElectionFlags {
    pub fn config(&self, component: &str, identity: String) -> LeaderElectionConfig {
        LeaderElectionConfig {
            namespace: self.resource_namespace.clone(),
            name: self
                .resource_name
                .clone()
                .unwrap_or_else(|| component.to_string()),
            identity,
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error("leader election lost: could not renew the lease {0} within the renew deadline")]
    Lost(String),
    #[error("invalid leader election configuration: {0}")]
    Config(String),
}

/// A candidate for one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaderElectionConfig,
    /// The last record seen and when (local clock) it was first seen in that state.
    observed: Option<(Option<String>, Option<String>, Instant)>,
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        cfg: LeaderElectionConfig,
    ) -> Result<Self, LeaderElectionError> {
        if cfg.lease_duration <= cfg.renew_deadline {
            return Err(LeaderElectionError::Config(
                "leaseDuration must be greater than renewDeadline".into(),
            ));
        }
        if cfg.renew_deadline <= cfg.retry_period {
            return Err(LeaderElectionError::Config(
                "renewDeadline must be greater than retryPeriod".into(),
            ));
        }
        if cfg.identity.is_empty() {
            return Err(LeaderElectionError::Config(
                "identity must not be empty".into(),
            ));
        }
        Ok(LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        })
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// One attempt: create or take the Lease if free or expired, renew it if ours.
    /// Returns whether this candidate holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let me = self.cfg.identity.clone();
        let secs = self.cfg.lease_duration.as_secs().max(1) as i32;
        let current = match self.api.get_opt(&self.cfg.name).await? {
            Some(l) => l,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me.clone()),
                        lease_duration_seconds: Some(secs),
                        acquire_time: Some(now_micro()),
                        renew_time: Some(now_micro()),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.observe(&lease);
                        Ok(true)
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        self.observe(&current);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(me.as_str());
        if !held_by_me && holder.is_some() {
            let seen_for = self
                .observed
                .as_ref()
                .map(|(_, _, t)| t.elapsed())
                .unwrap_or_default();
            let duration =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(secs).max(1) as u64);
            if seen_for < duration {
                return Ok(false);
            }
        }
        let mut next = current.clone();
        let mut spec = spec;
        if !held_by_me {
            spec.acquire_time = Some(now_micro());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me);
        spec.lease_duration_seconds = Some(secs);
        spec.renew_time = Some(now_micro());
        next.spec = Some(spec);
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &next)
            .await
        {
            Ok(l) => {
                self.observe(&l);
                Ok(true)
            }
            // Someone else wrote first; the next round sees their record.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        let spec = lease.spec.as_ref();
        let holder = spec.and_then(|s| s.holder_identity.clone());
        let renew = spec.and_then(|s| s.renew_time.as_ref().map(|t| t.0.to_string()));
        let changed = match &self.observed {
            Some((h, r, _)) => *h != holder || *r != renew,
            None => true,
        };
        if changed {
            self.observed = Some((holder, renew, Instant::now()));
        }
    }

    /// Wait until this candidate leads.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    info!(lease = %self.cfg.name, identity = %self.cfg.identity, "successfully acquired lease");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(lease = %self.cfg.name, error = %e, "error retrieving or updating the lease")
                }
            }
            tokio::time::sleep(jittered(self.cfg.retry_period)).await;
        }
    }

    /// Acquire the Lease, then run `work` while renewing it. Returns `work`'s output, or
    /// `Lost` as soon as the Lease cannot be renewed within the renew deadline (the caller
    /// should then exit, as upstream components do).
    pub async fn run<T>(mut self, work: impl Future<Output = T>) -> Result<T, LeaderElectionError> {
        self.acquire().await;
        tokio::pin!(work);
        let mut last_renew = Instant::now();
        loop {
            tokio::select! {
                out = &mut work => {
                    self.release().await;
                    return Ok(out);
                }
                _ = tokio::time::sleep(self.cfg.retry_period) => {
                    match self.try_acquire_or_renew().await {
                        Ok(true) => last_renew = Instant::now(),
                        Ok(false) => {
                            warn!(lease = %self.cfg.name, "lease taken by another candidate");
                            return Err(LeaderElectionError::Lost(self.cfg.name.clone()));
                        }
                        Err(e) => warn!(lease = %self.cfg.name, error = %e, "failed to renew lease"),
                    }
                    if last_renew.elapsed() > self.cfg.renew_deadline {
                        return Err(LeaderElectionError::Lost(self.cfg.name.clone()));
                    }
                }
            }
        }
    }

    /// Give the Lease up (on orderly shutdown) so another candidate takes over at once.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        if let Err(e) = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            warn!(lease = %self.cfg.name, error = %e, "failed to release lease");
        }
    }
}

/// client-go's `wait.Jitter(retryPeriod, 1.2)`.
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64(1.2 * (nanos % 1000) as f64 / 1000.0)
}

/// A candidate identity as upstream builds it: `<hostname>_<uuid-ish suffix>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_nanos())
        .unwrap_or(0);
    format!("{host}_{:x}{:x}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        le: LeaderElectionFlags,
    }

    #[test]
    fn flags_parse_as_upstream() {
        let f = Flags::parse_from(["x"]);
        assert!(f.le.leader_elect);
        assert_eq!(f.le.lease_duration, Duration::from_secs(15));
        assert_eq!(f.le.renew_deadline, Duration::from_secs(10));
        assert_eq!(f.le.retry_period, Duration::from_secs(2));
        let f = Flags::parse_from([
            "x",
            "--leader-elect=false",
            "--leader-elect-lease-duration=30s",
        ]);
        assert!(!f.le.leader_elect);
        assert_eq!(f.le.lease_duration, Duration::from_secs(30));
        let f = Flags::parse_from(["x", "--leader-elect"]);
        assert!(f.le.leader_elect);
        let c = f.le.config("kube-scheduler", "me".into());
        assert_eq!(
            (c.namespace.as_str(), c.name.as_str()),
            ("kube-system", "kube-scheduler")
        );
    }

    #[test]
    fn jitter_bounds() {
        let d = Duration::from_secs(2);
        let j = jittered(d);
        assert!(j >= d && j <= d + d.mul_f64(1.2));
    }
}
