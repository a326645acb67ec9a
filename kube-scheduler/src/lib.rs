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
pub mod plugins;
pub mod queue;
pub mod selector;
pub mod types;

#[cfg(test)]
pub mod testing;
