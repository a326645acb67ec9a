//! Plumbing shared by the Kubernetes components (upstream's `k8s.io/component-base` and
//! client-go's `leaderelection`): Go-style duration flags, Lease-based leader election,
//! the `/healthz` + `/readyz` + `/metrics` endpoint, and building a client from `--kubeconfig`.
//!
//! Only [`duration`] is available without the default `client` feature, so the apiserver can
//! share the flag parsing without linking a Kubernetes client.

pub mod duration;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod healthz;
#[cfg(feature = "client")]
pub mod leader;
