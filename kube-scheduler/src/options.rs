//! Command-line flags with upstream's names, and how they combine with `--config`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use component_base::duration::parse_duration;
use component_base::leader::{LeaderElectionConfig, LeaderElectionFlags};

use crate::config::{ConfigError, SchedulerConfig};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kube-scheduler",
    about = "The Kubernetes scheduler assigns pending pods to nodes."
)]
pub struct Options {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The path to the KubeSchedulerConfiguration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub leader_election: LeaderElectionFlags,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The port on which to serve /healthz, /readyz and /metrics. 0 disables serving.
    #[arg(long = "secure-port", default_value_t = 10259)]
    pub secure_port: u16,
    #[command(flatten)]
    pub tls: component_base::healthz::TlsFlags,
    /// Log level verbosity (klog's -v: 0 info, 4 debug, 6 and up trace).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

impl Options {
    pub fn scheduler_config(&self) -> Result<SchedulerConfig, ConfigError> {
        match &self.config {
            Some(p) => SchedulerConfig::from_file(p),
            None => Ok(SchedulerConfig::default_config()),
        }
    }

    pub fn serve_addr(&self) -> Option<SocketAddr> {
        (self.secure_port != 0).then(|| SocketAddr::new(self.bind_address, self.secure_port))
    }

    /// Leader election settings: the config file's `leaderElection` section wins over flags
    /// (as upstream, where the flags only fill the defaults of the file's values).
    pub fn leader_election(
        &self,
        cfg: &SchedulerConfig,
        identity: String,
    ) -> Result<(bool, LeaderElectionConfig), ConfigError> {
        let mut enabled = self.leader_election.leader_elect;
        let mut le = self.leader_election.config("kube-scheduler", identity);
        if let Some(f) = &cfg.raw.leader_election {
            let dur = |s: &Option<String>, d: Duration| -> Result<Duration, ConfigError> {
                match s {
                    Some(s) => parse_duration(s).map_err(ConfigError::Invalid),
                    None => Ok(d),
                }
            };
            enabled = f.leader_elect.unwrap_or(enabled);
            le.lease_duration = dur(&f.lease_duration, le.lease_duration)?;
            le.renew_deadline = dur(&f.renew_deadline, le.renew_deadline)?;
            le.retry_period = dur(&f.retry_period, le.retry_period)?;
            if let Some(n) = &f.resource_name {
                le.name = n.clone();
            }
            if let Some(n) = &f.resource_namespace {
                le.namespace = n.clone();
            }
        }
        Ok((enabled, le))
    }

    /// Kubeconfig from the flag, else from the config file's clientConnection.
    pub fn kubeconfig_path(&self, cfg: &SchedulerConfig) -> Option<PathBuf> {
        self.kubeconfig.clone().or_else(|| {
            cfg.raw
                .client_connection
                .as_ref()
                .and_then(|c| c.kubeconfig.clone())
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_flag_names_and_defaults() {
        let o = Options::parse_from(["kube-scheduler"]);
        assert_eq!(o.secure_port, 10259);
        assert!(o.leader_election.leader_elect);
        let o = Options::parse_from([
            "kube-scheduler",
            "--kubeconfig=/k",
            "--leader-elect=false",
            "--leader-elect-lease-duration=4s",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "-v",
            "4",
        ]);
        assert_eq!(o.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
        assert!(!o.leader_election.leader_elect);
        assert_eq!(o.serve_addr(), None);
        assert_eq!(o.verbosity, 4);
        let (on, le) = o
            .leader_election(&SchedulerConfig::default_config(), "me".into())
            .unwrap();
        assert!(!on);
        assert_eq!(le.lease_duration, Duration::from_secs(4));
        assert_eq!(
            (le.namespace.as_str(), le.name.as_str()),
            ("kube-system", "kube-scheduler")
        );
    }

    #[test]
    fn config_file_leader_election_wins() {
        let cfg = SchedulerConfig::from_yaml(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nleaderElection:\n  leaderElect: true\n  leaseDuration: 30s\n  resourceName: other\nclientConnection:\n  kubeconfig: /etc/kc\n",
        )
        .unwrap();
        let o = Options::parse_from(["kube-scheduler", "--leader-elect=false"]);
        let (on, le) = o.leader_election(&cfg, "me".into()).unwrap();
        assert!(on);
        assert_eq!(le.lease_duration, Duration::from_secs(30));
        assert_eq!(le.name, "other");
        assert_eq!(o.kubeconfig_path(&cfg).unwrap(), PathBuf::from("/etc/kc"));
    }
}
