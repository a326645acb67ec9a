//! Command-line flags (upstream names) and the validated configuration built from them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "kube-apiserver", about = "The Kubernetes API server", version)]
pub struct Options {
    /// Storage backend: etcd3 or embedded.
    #[arg(long = "storage-backend", default_value = "etcd3")]
    pub storage_backend: String,
    /// Comma-separated etcd endpoints (http://host:port).
    #[arg(long = "etcd-servers", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_servers: Vec<String>,
    /// Key prefix for every object in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    pub etcd_prefix: String,
    /// Interval between compactions of old revisions (0 disables).
    #[arg(long = "etcd-compaction-interval", default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// Directory of the embedded store (with --storage-backend=embedded).
    #[arg(long = "data-dir", default_value = "/var/lib/kube-apiserver")]
    pub data_dir: PathBuf,

    /// Address to serve HTTPS on.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Port to serve HTTPS on.
    #[arg(long = "secure-port", default_value_t = 6443)]
    pub secure_port: u16,
    /// Address advertised in the `kubernetes` Service's endpoints (defaults to the bind address,
    /// or 127.0.0.1 when that is unspecified).
    #[arg(long = "advertise-address")]
    pub advertise_address: Option<IpAddr>,
    /// Serving certificate (PEM); generated into --cert-dir when absent.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Where a self-signed serving pair is written when no cert is given.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    /// CA bundle that client certificates must chain to.
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,
    /// Static bearer tokens (CSV: token,user,uid,"group1,group2").
    #[arg(long = "token-auth-file")]
    pub token_auth_file: Option<PathBuf>,

    /// CIDR for Service cluster IPs.
    #[arg(long = "service-cluster-ip-range", default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: String,
    /// Port range for NodePort Services.
    #[arg(long = "service-node-port-range", default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Interval of the ClusterIP and NodePort repair loop (upstream's RepairServicesInterval,
    /// not a flag there; 0 disables).
    #[arg(long = "service-repair-interval", default_value = "3m", value_parser = parse_duration)]
    pub service_repair_interval: Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long = "max-request-body-bytes", default_value_t = 3 * 1024 * 1024)]
    pub max_request_body_bytes: usize,
    /// Timeout of non-watch requests.
    #[arg(long = "request-timeout", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Upper bound of a watch's lifetime when the client sets no timeoutSeconds
    /// (each watch gets a random duration in [min, 2*min], as upstream).
    #[arg(long = "min-request-timeout", default_value_t = 1800)]
    pub min_request_timeout: u64,
    /// Events kept per resource in the watch cache, for watches resuming from a resourceVersion.
    #[arg(long = "default-watch-cache-size", default_value_t = 10000)]
    pub watch_cache_size: usize,
    /// Log verbosity (0-10), mapped onto tracing levels.
    #[arg(short = 'v', long = "v", default_value_t = 2)]
    pub verbosity: u8,
}

pub use component_base::duration::parse_duration;

/// Where the server keeps its objects.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    Etcd { endpoints: Vec<String>, prefix: String },
    Embedded { data_dir: PathBuf, prefix: String },
}

/// The validated configuration the server is built from.
#[derive(Debug, Clone)]
pub struct Config {
    pub storage: StorageConfig,
    pub compaction_interval: Duration,
    pub listen: SocketAddr,
    pub advertise_address: IpAddr,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub cert_dir: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub token_auth_file: Option<PathBuf>,
    pub service_cluster_ip_range: String,
    pub service_node_port_range: String,
    pub service_repair_interval: Duration,
    pub max_request_body_bytes: usize,
    pub request_timeout: Duration,
    pub min_request_timeout: Duration,
    pub watch_cache_size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid --storage-backend {0:?}: must be etcd3 or embedded")]
    StorageBackend(String),
    #[error("--etcd-servers must not be empty")]
    NoEtcdServers,
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    TlsPair,
}

impl Options {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let prefix = format!("/{}", self.etcd_prefix.trim_matches('/'));
        let storage = match self.storage_backend.as_str() {
            "etcd3" | "etcd" => {
                if self.etcd_servers.is_empty() {
                    return Err(ConfigError::NoEtcdServers);
                }
                StorageConfig::Etcd { endpoints: self.etcd_servers, prefix }
            }
            "embedded" => StorageConfig::Embedded { data_dir: self.data_dir, prefix },
            other => return Err(ConfigError::StorageBackend(other.to_string())),
        };
        if self.tls_cert_file.is_some() != self.tls_private_key_file.is_some() {
            return Err(ConfigError::TlsPair);
        }
        let advertise_address = self.advertise_address.unwrap_or(if self.bind_address.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            self.bind_address
        });
        Ok(Config {
            storage,
            compaction_interval: self.etcd_compaction_interval,
            listen: SocketAddr::new(self.bind_address, self.secure_port),
            advertise_address,
            tls_cert_file: self.tls_cert_file,
            tls_private_key_file: self.tls_private_key_file,
            cert_dir: self.cert_dir,
            client_ca_file: self.client_ca_file,
            token_auth_file: self.token_auth_file,
            service_cluster_ip_range: self.service_cluster_ip_range,
            service_node_port_range: self.service_node_port_range,
            service_repair_interval: self.service_repair_interval,
            max_request_body_bytes: self.max_request_body_bytes,
            request_timeout: self.request_timeout,
            min_request_timeout: Duration::from_secs(self.min_request_timeout),
            watch_cache_size: self.watch_cache_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_choice() {
        let o = Options::parse_from(["kube-apiserver", "--storage-backend=embedded", "--data-dir=/tmp/x"]);
        assert!(matches!(o.into_config().unwrap().storage, StorageConfig::Embedded { .. }));
        let o = Options::parse_from(["kube-apiserver", "--storage-backend=foo"]);
        assert!(o.into_config().is_err());
    }
}
