//! The table of built-in resources this server serves: one row per resource, with what discovery,
//! routing and the generic registry need. Decoding goes through the k8s-openapi type of each kind,
//! so malformed objects are rejected and unknown fields dropped exactly as upstream's decoder does.

use serde_json::Value;

/// A subresource of a resource, as listed in discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// e.g. "status", "scale", "binding", "eviction", "finalize".
    pub name: &'static str,
    /// Group/version/kind of the subresource's body (e.g. autoscaling/v1 Scale).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One servable resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceInfo {
    /// API group, "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, the URL segment (e.g. "deployments").
    pub plural: &'static str,
    /// Lower-case singular (e.g. "deployment").
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Verbs as discovery lists them.
    pub verbs: &'static [&'static str],
    /// Decode a JSON object through its typed struct and encode it back (drops unknown fields,
    /// rejects wrong types).
    pub normalize: fn(Value) -> Result<Value, serde_json::Error>,
}
