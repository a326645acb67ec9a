//! kube-apiserver: the Kubernetes REST API over etcd or an embedded store.
//!
//! Layers, bottom up: [`storage`] (etcd3 or embedded, one trait), [`cacher`] (one watch cache per
//! resource), [`registry`] (the generic store plus per-kind strategies), [`handler`] (REST routing,
//! negotiation, watch streaming, discovery) and [`server`] (TLS, authentication, HTTP/1.1 and 2).

pub mod admission;
pub mod allocator;
pub mod app;
pub mod cacher;
pub mod compression;
pub mod config;
pub mod defaults;
pub mod discovery;
pub mod errors;
pub mod fieldmanager;
pub mod fieldvalidation;
pub mod handler;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod resources;
pub mod selectors;
pub mod server;
pub mod storage;
pub mod table;
pub mod validation;
