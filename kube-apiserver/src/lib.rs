//! kube-apiserver: the Kubernetes REST API over etcd or an embedded store.

pub mod config;
pub mod metrics;
pub mod resources;
pub mod server;
pub mod storage;
