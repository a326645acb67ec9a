//! kube-apiserver: the Kubernetes REST API over etcd or an embedded store.

pub mod config;
pub mod resources;
pub mod selectors;
pub mod server;
pub mod storage;
