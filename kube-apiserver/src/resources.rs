//! The table of built-in resources this server serves: one row per resource, with what discovery,
//! routing and the generic registry need. Decoding goes through the k8s-openapi type of each kind,
//! so malformed objects are rejected and unknown fields dropped exactly as upstream's decoder does.
//!
//! Group, version, kind, plural and scope of every row come from k8s-openapi's [`Resource`]
//! constants, so they cannot drift from the generated types. Short names, categories, verbs and
//! subresources follow what an upstream v1.33 kube-apiserver lists in discovery with default
//! feature gates, restricted to the GA version of each group.

use k8s_openapi::Resource;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions_v1;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration_v1;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

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

impl ResourceInfo {
    /// "v1" for the core group, "<group>/<version>" otherwise: the `apiVersion` of objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether discovery lists `verb` for the resource itself.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Create-only resources (reviews, bindings) are answered, never persisted.
    pub fn is_virtual(&self) -> bool {
        !self.supports("get")
    }

    /// The subresource called `name`, if the resource has one.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// Decode `v` as `K` and encode it back: the typed round trip every stored object goes through.
pub fn normalize<K: DeserializeOwned + Serialize>(v: Value) -> Result<Value, serde_json::Error> {
    let typed: K = serde_json::from_value(v)?;
    serde_json::to_value(typed)
}

/// Maps a k8s-openapi scope marker to "is this resource namespaced".
trait ScopeFlag {
    const NAMESPACED: bool;
}

impl ScopeFlag for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl ScopeFlag for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// The full verb set of an ordinary stored resource.
const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces cannot be deleted as a collection.
const CRUD_NO_DELETECOLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// Reviews and bindings: a POST that answers or acts, nothing is listed.
const CREATE_ONLY: &[&str] = &["create"];
/// Verbs of status-like subresources.
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// A subresource whose body is the parent kind itself.
macro_rules! same_kind {
    ($ty:ty, $name:literal, $verbs:expr) => {
        Subresource {
            name: $name,
            group: <$ty as Resource>::GROUP,
            version: <$ty as Resource>::VERSION,
            kind: <$ty as Resource>::KIND,
            verbs: $verbs,
        }
    };
}

/// A subresource whose body is another kind (Scale, Eviction, Binding, TokenRequest).
macro_rules! other_kind {
    ($body:ty, $name:literal, $verbs:expr) => {
        Subresource {
            name: $name,
            group: <$body as Resource>::GROUP,
            version: <$body as Resource>::VERSION,
            kind: <$body as Resource>::KIND,
            verbs: $verbs,
        }
    };
}

/// Subresource shorthands, expanded against the row's type.
macro_rules! sub {
    ($ty:ty, status) => {
        same_kind!($ty, "status", GET_PATCH_UPDATE)
    };
    ($ty:ty, scale) => {
        other_kind!(api::autoscaling::v1::Scale, "scale", GET_PATCH_UPDATE)
    };
    ($ty:ty, finalize) => {
        same_kind!($ty, "finalize", &["update"])
    };
    ($ty:ty, approval) => {
        same_kind!($ty, "approval", GET_PATCH_UPDATE)
    };
    ($ty:ty, ephemeralcontainers) => {
        same_kind!($ty, "ephemeralcontainers", GET_PATCH_UPDATE)
    };
    ($ty:ty, resize) => {
        same_kind!($ty, "resize", GET_PATCH_UPDATE)
    };
    ($ty:ty, binding) => {
        other_kind!(api::core::v1::Binding, "binding", CREATE_ONLY)
    };
    ($ty:ty, eviction) => {
        other_kind!(api::policy::v1::Eviction, "eviction", CREATE_ONLY)
    };
    ($ty:ty, token) => {
        other_kind!(api::authentication::v1::TokenRequest, "token", CREATE_ONLY)
    };
}

/// One table row; identity and scope come from the type's `Resource` constants.
macro_rules! row {
    ($ty:ty, $singular:literal, [$($short:literal),*], [$($cat:literal),*], [$($sub:ident),*]) => {
        row!($ty, $singular, [$($short),*], [$($cat),*], [$($sub),*], CRUD)
    };
    ($ty:ty, $singular:literal, [$($short:literal),*], [$($cat:literal),*], [$($sub:ident),*], $verbs:expr) => {
        ResourceInfo {
            group: <$ty as Resource>::GROUP,
            version: <$ty as Resource>::VERSION,
            kind: <$ty as Resource>::KIND,
            plural: <$ty as Resource>::URL_PATH_SEGMENT,
            singular: $singular,
            namespaced: <<$ty as Resource>::Scope as ScopeFlag>::NAMESPACED,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$(sub!($ty, $sub)),*],
            verbs: $verbs,
            normalize: normalize::<$ty>,
        }
    };
}

/// Core group first, then the groups in the order upstream's `/apis` lists them (descending
/// APIService group priority); inside a group, resources sorted by plural as discovery does.
static RESOURCES: &[ResourceInfo] = &[
    // core/v1 (componentstatuses is deliberately not served)
    row!(api::core::v1::Binding, "binding", [], [], [], CREATE_ONLY),
    row!(api::core::v1::ConfigMap, "configmap", ["cm"], [], []),
    row!(api::core::v1::Endpoints, "endpoints", ["ep"], [], []),
    row!(api::core::v1::Event, "event", ["ev"], [], []),
    row!(api::core::v1::LimitRange, "limitrange", ["limits"], [], []),
    row!(
        api::core::v1::Namespace,
        "namespace",
        ["ns"],
        [],
        [finalize, status],
        CRUD_NO_DELETECOLLECTION
    ),
    row!(api::core::v1::Node, "node", ["no"], [], [status]),
    row!(
        api::core::v1::PersistentVolumeClaim,
        "persistentvolumeclaim",
        ["pvc"],
        [],
        [status]
    ),
    row!(
        api::core::v1::PersistentVolume,
        "persistentvolume",
        ["pv"],
        [],
        [status]
    ),
    row!(
        api::core::v1::Pod,
        "pod",
        ["po"],
        ["all"],
        [binding, ephemeralcontainers, eviction, resize, status]
    ),
    row!(api::core::v1::PodTemplate, "podtemplate", [], [], []),
    row!(
        api::core::v1::ReplicationController,
        "replicationcontroller",
        ["rc"],
        ["all"],
        [scale, status]
    ),
    row!(
        api::core::v1::ResourceQuota,
        "resourcequota",
        ["quota"],
        [],
        [status]
    ),
    row!(api::core::v1::Secret, "secret", [], [], []),
    row!(
        api::core::v1::ServiceAccount,
        "serviceaccount",
        ["sa"],
        [],
        [token]
    ),
    row!(
        api::core::v1::Service,
        "service",
        ["svc"],
        ["all"],
        [status]
    ),
    // apiregistration.k8s.io/v1
    row!(
        apiregistration_v1::APIService,
        "apiservice",
        [],
        ["api-extensions"],
        [status]
    ),
    // apps/v1
    row!(
        api::apps::v1::ControllerRevision,
        "controllerrevision",
        [],
        [],
        []
    ),
    row!(
        api::apps::v1::DaemonSet,
        "daemonset",
        ["ds"],
        ["all"],
        [status]
    ),
    row!(
        api::apps::v1::Deployment,
        "deployment",
        ["deploy"],
        ["all"],
        [scale, status]
    ),
    row!(
        api::apps::v1::ReplicaSet,
        "replicaset",
        ["rs"],
        ["all"],
        [scale, status]
    ),
    row!(
        api::apps::v1::StatefulSet,
        "statefulset",
        ["sts"],
        ["all"],
        [scale, status]
    ),
    // events.k8s.io/v1
    row!(api::events::v1::Event, "event", ["ev"], [], []),
    // authentication.k8s.io/v1
    row!(
        api::authentication::v1::SelfSubjectReview,
        "selfsubjectreview",
        [],
        [],
        [],
        CREATE_ONLY
    ),
    row!(
        api::authentication::v1::TokenReview,
        "tokenreview",
        [],
        [],
        [],
        CREATE_ONLY
    ),
    // authorization.k8s.io/v1
    row!(
        api::authorization::v1::LocalSubjectAccessReview,
        "localsubjectaccessreview",
        [],
        [],
        [],
        CREATE_ONLY
    ),
    row!(
        api::authorization::v1::SelfSubjectAccessReview,
        "selfsubjectaccessreview",
        [],
        [],
        [],
        CREATE_ONLY
    ),
    row!(
        api::authorization::v1::SelfSubjectRulesReview,
        "selfsubjectrulesreview",
        [],
        [],
        [],
        CREATE_ONLY
    ),
    row!(
        api::authorization::v1::SubjectAccessReview,
        "subjectaccessreview",
        [],
        [],
        [],
        CREATE_ONLY
    ),
    // autoscaling/v2, then v1 (served from the same storage, in v2 form; see convert_hpa)
    row!(
        api::autoscaling::v2::HorizontalPodAutoscaler,
        "horizontalpodautoscaler",
        ["hpa"],
        ["all"],
        [status]
    ),
    row!(
        api::autoscaling::v1::HorizontalPodAutoscaler,
        "horizontalpodautoscaler",
        ["hpa"],
        ["all"],
        [status]
    ),
    // batch/v1
    row!(
        api::batch::v1::CronJob,
        "cronjob",
        ["cj"],
        ["all"],
        [status]
    ),
    row!(api::batch::v1::Job, "job", [], ["all"], [status]),
    // certificates.k8s.io/v1
    row!(
        api::certificates::v1::CertificateSigningRequest,
        "certificatesigningrequest",
        ["csr"],
        [],
        [approval, status]
    ),
    // networking.k8s.io/v1 (IPAddress and ServiceCIDR are GA in 1.33)
    row!(
        api::networking::v1::IngressClass,
        "ingressclass",
        [],
        [],
        []
    ),
    row!(
        api::networking::v1::Ingress,
        "ingress",
        ["ing"],
        [],
        [status]
    ),
    row!(api::networking::v1::IPAddress, "ipaddress", ["ip"], [], []),
    row!(
        api::networking::v1::NetworkPolicy,
        "networkpolicy",
        ["netpol"],
        [],
        []
    ),
    row!(
        api::networking::v1::ServiceCIDR,
        "servicecidr",
        [],
        [],
        [status]
    ),
    // policy/v1
    row!(
        api::policy::v1::PodDisruptionBudget,
        "poddisruptionbudget",
        ["pdb"],
        [],
        [status]
    ),
    // rbac.authorization.k8s.io/v1
    row!(
        api::rbac::v1::ClusterRoleBinding,
        "clusterrolebinding",
        [],
        [],
        []
    ),
    row!(api::rbac::v1::ClusterRole, "clusterrole", [], [], []),
    row!(api::rbac::v1::RoleBinding, "rolebinding", [], [], []),
    row!(api::rbac::v1::Role, "role", [], [], []),
    // storage.k8s.io/v1
    row!(api::storage::v1::CSIDriver, "csidriver", [], [], []),
    row!(api::storage::v1::CSINode, "csinode", [], [], []),
    row!(
        api::storage::v1::CSIStorageCapacity,
        "csistoragecapacity",
        [],
        [],
        []
    ),
    row!(
        api::storage::v1::StorageClass,
        "storageclass",
        ["sc"],
        [],
        []
    ),
    row!(
        api::storage::v1::VolumeAttachment,
        "volumeattachment",
        [],
        [],
        [status]
    ),
    // admissionregistration.k8s.io/v1
    row!(
        api::admissionregistration::v1::MutatingWebhookConfiguration,
        "mutatingwebhookconfiguration",
        [],
        ["api-extensions"],
        []
    ),
    row!(
        api::admissionregistration::v1::ValidatingAdmissionPolicy,
        "validatingadmissionpolicy",
        [],
        ["api-extensions"],
        [status]
    ),
    row!(
        api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        "validatingadmissionpolicybinding",
        [],
        ["api-extensions"],
        []
    ),
    row!(
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        "validatingwebhookconfiguration",
        [],
        ["api-extensions"],
        []
    ),
    // apiextensions.k8s.io/v1
    row!(
        apiextensions_v1::CustomResourceDefinition,
        "customresourcedefinition",
        ["crd", "crds"],
        ["api-extensions"],
        [status]
    ),
    // scheduling.k8s.io/v1
    row!(
        api::scheduling::v1::PriorityClass,
        "priorityclass",
        ["pc"],
        [],
        []
    ),
    // coordination.k8s.io/v1
    row!(api::coordination::v1::Lease, "lease", [], [], []),
    // node.k8s.io/v1
    row!(api::node::v1::RuntimeClass, "runtimeclass", [], [], []),
    // discovery.k8s.io/v1
    row!(
        api::discovery::v1::EndpointSlice,
        "endpointslice",
        [],
        [],
        []
    ),
    // flowcontrol.apiserver.k8s.io/v1
    row!(
        api::flowcontrol::v1::FlowSchema,
        "flowschema",
        [],
        [],
        [status]
    ),
    row!(
        api::flowcontrol::v1::PriorityLevelConfiguration,
        "prioritylevelconfiguration",
        [],
        [],
        [status]
    ),
];

/// Every served resource, core group first, then groups in upstream discovery order.
pub fn all() -> &'static [ResourceInfo] {
    RESOURCES
}

/// The resource served at `/{group}/{version}/{plural}` ("" group for `/api/v1`).
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource whose objects are `group/version, Kind=kind`.
pub fn find_by_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Groups with their served versions, in discovery order ("" is the core group, listed first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// The etcd key segment under the storage prefix, as upstream kube-apiserver lays keys out:
/// built-in resources are keyed by resource name alone (`deployments`, not `apps/deployments`),
/// a few keep historical names (`minions`, `services/specs`, ...), and the resources served by
/// the apiextensions and aggregator servers carry their group (`apiextensions.k8s.io/...`).
///
/// events.k8s.io events share `events` with core events, as upstream stores both as one
/// resource: callers must store one shape and convert with [`convert_event`].
pub fn storage_resource_path(info: &ResourceInfo) -> String {
    let special = match (info.group, info.plural) {
        ("", "replicationcontrollers") => Some("controllers"),
        ("", "endpoints") => Some("services/endpoints"),
        ("", "nodes") => Some("minions"),
        ("", "services") => Some("services/specs"),
        ("networking.k8s.io", "ingresses") => Some("ingress"),
        ("events.k8s.io", "events") => Some("events"),
        _ => None,
    };
    if let Some(path) = special {
        return path.to_string();
    }
    match info.group {
        "apiextensions.k8s.io" | "apiregistration.k8s.io" => {
            format!("{}/{}", info.group, info.plural)
        }
        _ => info.plural.to_string(),
    }
}

/// Annotations that carry what autoscaling/v1 cannot express through a v1 round trip.
const HPA_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const HPA_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const HPA_BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn is_cpu_utilization(m: &Value, field: &str) -> bool {
    m["type"] == "Resource" && m["resource"]["name"] == "cpu" && (field == "current" || m["resource"][field]["type"] == "Utilization")
}

/// Convert a HorizontalPodAutoscaler between autoscaling/v2 (the stored form) and autoscaling/v1
/// (`to_version` "v1" or "v2"), as upstream's conversion does: v1's CPU target is the v2 CPU
/// utilization metric, and what v1 cannot hold (other metrics, behavior, conditions) travels in
/// `autoscaling.alpha.kubernetes.io/*` annotations. An object already in the target version is
/// returned unchanged.
pub fn convert_hpa(v: Value, to_version: &str) -> Value {
    let target = format!("autoscaling/{to_version}");
    if !v.is_object() || v["apiVersion"] == target.as_str() {
        return v;
    }
    let mut out = v.clone();
    out["apiVersion"] = json!(target);
    let spec = v["spec"].clone();
    let status = v["status"].clone();
    let mut annotations = v["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    if to_version == "v1" {
        let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
        let (cpu, other): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(|m| is_cpu_utilization(m, "target"));
        let mut s = json!({"scaleTargetRef": spec["scaleTargetRef"], "maxReplicas": spec["maxReplicas"]});
        if !spec["minReplicas"].is_null() {
            s["minReplicas"] = spec["minReplicas"].clone();
        }
        if let Some(u) = cpu.first().map(|m| &m["resource"]["target"]["averageUtilization"]).filter(|u| !u.is_null()) {
            s["targetCPUUtilizationPercentage"] = u.clone();
        }
        out["spec"] = s;
        if !other.is_empty() {
            annotations.insert(HPA_METRICS.into(), json!(Value::Array(other).to_string()));
        }
        if spec["behavior"].is_object() {
            annotations.insert(HPA_BEHAVIOR.into(), json!(spec["behavior"].to_string()));
        }
        if status.is_object() {
            let current = status["currentMetrics"].as_array().cloned().unwrap_or_default();
            let (cpu, other): (Vec<Value>, Vec<Value>) = current.into_iter().partition(|m| is_cpu_utilization(m, "current"));
            let mut st = json!({"currentReplicas": status["currentReplicas"].as_i64().unwrap_or(0),
                                "desiredReplicas": status["desiredReplicas"].as_i64().unwrap_or(0)});
            for k in ["observedGeneration", "lastScaleTime"] {
                if !status[k].is_null() {
                    st[k] = status[k].clone();
                }
            }
            if let Some(u) = cpu.first().map(|m| &m["resource"]["current"]["averageUtilization"]).filter(|u| !u.is_null()) {
                st["currentCPUUtilizationPercentage"] = u.clone();
            }
            if !other.is_empty() {
                annotations.insert(HPA_CURRENT_METRICS.into(), json!(Value::Array(other).to_string()));
            }
            if status["conditions"].as_array().is_some_and(|c| !c.is_empty()) {
                annotations.insert(HPA_CONDITIONS.into(), json!(status["conditions"].to_string()));
            }
            out["status"] = st;
        }
    } else {
        let mut take = |key: &str| annotations.remove(key).and_then(|a| a.as_str().and_then(|t| serde_json::from_str::<Value>(t).ok()));
        let mut metrics = Vec::new();
        if let Some(u) = spec.get("targetCPUUtilizationPercentage").filter(|u| !u.is_null()) {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": u}}}));
        }
        metrics.extend(take(HPA_METRICS).and_then(|m| m.as_array().cloned()).unwrap_or_default());
        let mut s = json!({"scaleTargetRef": spec["scaleTargetRef"], "maxReplicas": spec["maxReplicas"]});
        if !spec["minReplicas"].is_null() {
            s["minReplicas"] = spec["minReplicas"].clone();
        }
        if !metrics.is_empty() {
            s["metrics"] = Value::Array(metrics);
        }
        if let Some(b) = take(HPA_BEHAVIOR) {
            s["behavior"] = b;
        }
        out["spec"] = s;
        let current_other = take(HPA_CURRENT_METRICS).and_then(|m| m.as_array().cloned()).unwrap_or_default();
        let conditions = take(HPA_CONDITIONS);
        if status.is_object() {
            // v2's currentReplicas is `omitempty`, its desiredReplicas is not.
            let mut st = json!({"desiredReplicas": status["desiredReplicas"].as_i64().unwrap_or(0)});
            if let Some(c) = status["currentReplicas"].as_i64().filter(|c| *c != 0) {
                st["currentReplicas"] = json!(c);
            }
            for k in ["observedGeneration", "lastScaleTime"] {
                if !status[k].is_null() {
                    st[k] = status[k].clone();
                }
            }
            let mut current = Vec::new();
            if let Some(u) = status.get("currentCPUUtilizationPercentage").filter(|u| !u.is_null()) {
                current.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}));
            }
            current.extend(current_other);
            if !current.is_empty() {
                st["currentMetrics"] = Value::Array(current);
            }
            if let Some(c) = conditions {
                st["conditions"] = c;
            }
            out["status"] = st;
        }
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        if annotations.is_empty() {
            meta.remove("annotations");
        } else {
            meta.insert("annotations".into(), Value::Object(annotations));
        }
    }
    out
}

/// Field renames between core/v1 Event and events.k8s.io/v1 Event (core name, events name).
const EVENT_FIELD_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// Convert an Event object between its core/v1 and events.k8s.io/v1 shapes, the way upstream's
/// conversion does when both are served from one storage. `to_group` is "" for core/v1 or
/// "events.k8s.io"; an object already in the target shape is returned unchanged, and a value
/// that is not an object is returned as is.
pub fn convert_event(v: Value, to_group: &str) -> Value {
    let Value::Object(mut map) = v else {
        return v;
    };
    let to_events = to_group == "events.k8s.io";
    for (core, events) in EVENT_FIELD_RENAMES {
        let (from, to) = if to_events {
            (core, events)
        } else {
            (events, core)
        };
        if let Some(value) = map.remove(*from) {
            // A field already present under the target name wins, as it is the native one.
            map.entry(to.to_string()).or_insert(value);
        }
    }
    let api_version = if to_events { "events.k8s.io/v1" } else { "v1" };
    map.insert("apiVersion".into(), Value::String(api_version.into()));
    map.insert("kind".into(), Value::String("Event".into()));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};

    fn minimal(r: &ResourceInfo) -> Value {
        json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}})
    }

    #[test]
    fn counts() {
        assert_eq!(all().len(), 60);
        assert_eq!(all().iter().filter(|r| r.group.is_empty()).count(), 16);
        assert_eq!(all().iter().filter(|r| r.is_virtual()).count(), 7);
        assert_eq!(groups().len(), 20);
        // One version per group (GA only), but for autoscaling's v2 and v1.
        assert!(groups().iter().all(|(g, v)| v.len() == 1 || (*g == "autoscaling" && *v == ["v2", "v1"])));
    }

    #[test]
    fn group_order_matches_upstream_discovery() {
        let names: Vec<&str> = groups().into_iter().map(|(g, _)| g).collect();
        assert_eq!(
            names,
            [
                "",
                "apiregistration.k8s.io",
                "apps",
                "events.k8s.io",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "autoscaling",
                "batch",
                "certificates.k8s.io",
                "networking.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "storage.k8s.io",
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "scheduling.k8s.io",
                "coordination.k8s.io",
                "node.k8s.io",
                "discovery.k8s.io",
                "flowcontrol.apiserver.k8s.io",
            ]
        );
        let versions: BTreeMap<&str, Vec<&str>> = groups().into_iter().collect();
        assert_eq!(versions["autoscaling"], ["v2", "v1"]);
        assert_eq!(versions[""], ["v1"]);
        assert_eq!(versions["networking.k8s.io"], ["v1"]);
    }

    #[test]
    fn resources_sorted_within_group() {
        for (group, _) in groups() {
            let plurals: Vec<&str> = all()
                .iter()
                .filter(|r| r.group == group)
                .map(|r| r.plural)
                .collect();
            let mut sorted = plurals.clone();
            sorted.sort();
            assert_eq!(plurals, sorted, "group {group:?}");
        }
    }

    #[test]
    fn lookups() {
        let pods = find("", "v1", "pods").expect("pods");
        assert_eq!(pods.kind, "Pod");
        assert!(pods.namespaced);
        assert_eq!(pods.short_names, ["po"]);
        assert_eq!(pods.categories, ["all"]);

        let deploy = find("apps", "v1", "deployments").expect("deployments");
        assert_eq!(deploy.singular, "deployment");
        let scale = deploy.subresource("scale").expect("scale");
        assert_eq!(
            (scale.group, scale.version, scale.kind),
            ("autoscaling", "v1", "Scale")
        );
        assert_eq!(scale.verbs, GET_PATCH_UPDATE);

        let ns = find_by_kind("", "v1", "Namespace").expect("namespace");
        assert!(!ns.namespaced);
        assert!(!ns.supports("deletecollection"));
        assert_eq!(
            ns.subresource("finalize").map(|s| s.verbs),
            Some(&["update"][..])
        );

        let evict = pods.subresource("eviction").expect("eviction");
        assert_eq!(
            (evict.group, evict.version, evict.kind),
            ("policy", "v1", "Eviction")
        );
        let token = find("", "v1", "serviceaccounts").and_then(|r| r.subresource("token"));
        assert_eq!(token.map(|t| t.kind), Some("TokenRequest"));

        let csr = find("certificates.k8s.io", "v1", "certificatesigningrequests").expect("csr");
        assert!(csr.subresource("approval").is_some() && csr.subresource("status").is_some());
        assert_eq!(
            find("apiextensions.k8s.io", "v1", "customresourcedefinitions").map(|r| r.short_names),
            Some(&["crd", "crds"][..])
        );
        assert!(find("networking.k8s.io", "v1", "servicecidrs").is_some());
        assert!(find("networking.k8s.io", "v1", "ipaddresses").is_some());

        assert_eq!(
            find("", "v1", "bindings").map(|r| r.verbs),
            Some(CREATE_ONLY)
        );
        assert!(find("", "v1", "componentstatuses").is_none());
        assert!(find("autoscaling", "v1", "horizontalpodautoscalers").is_some());
        assert!(find("apps", "v1beta1", "deployments").is_none());
        assert!(find("resource.k8s.io", "v1beta1", "resourceclaims").is_none());
        assert!(find_by_kind("apps", "v1", "Pod").is_none());
        assert_eq!(
            find_by_kind("events.k8s.io", "v1", "Event").map(|r| r.plural),
            Some("events")
        );
    }

    #[test]
    fn rows_are_consistent() {
        for r in all() {
            assert_eq!(r.singular, r.kind.to_lowercase(), "{}", r.plural);
            assert!(!r.verbs.is_empty());
            let mut verbs = r.verbs.to_vec();
            verbs.sort();
            assert_eq!(
                verbs, r.verbs,
                "verbs of {} sorted as discovery lists them",
                r.plural
            );
            let mut subs: Vec<&str> = r.subresources.iter().map(|s| s.name).collect();
            subs.sort();
            subs.dedup();
            assert_eq!(subs.len(), r.subresources.len(), "{}", r.plural);
            if r.is_virtual() {
                assert!(r.subresources.is_empty());
            }
        }
    }

    #[test]
    fn no_duplicate_plurals_or_short_names() {
        let mut seen = BTreeSet::new();
        for r in all() {
            assert!(
                seen.insert((r.group, r.version, r.plural)),
                "duplicate {}/{}",
                r.group,
                r.plural
            );
        }
        let mut shorts = BTreeMap::new();
        for r in all() {
            for s in r.short_names {
                // `ev` is shared by the two Event resources upstream too, `hpa` by the two
                // versions of HorizontalPodAutoscalers.
                if let Some(prev) = shorts.insert(*s, r.plural) {
                    assert!(prev == r.plural && ["ev", "hpa"].contains(s), "duplicate short name {s}");
                }
            }
        }
        assert_eq!(shorts.len(), 28);
    }

    #[test]
    fn every_normalize_accepts_minimal_object_and_drops_unknown_fields() {
        for r in all() {
            let mut obj = minimal(r);
            obj["unknownTopLevelField"] = json!({"a": 1});
            obj["metadata"]["unknownMetaField"] = json!(true);
            let out = (r.normalize)(obj).unwrap_or_else(|e| panic!("{}: {e}", r.plural));
            assert_eq!(out["kind"], r.kind, "{}", r.plural);
            assert_eq!(out["apiVersion"], r.api_version().as_str(), "{}", r.plural);
            assert_eq!(out["metadata"]["name"], "x", "{}", r.plural);
            assert!(out.get("unknownTopLevelField").is_none(), "{}", r.plural);
            assert!(
                out["metadata"].get("unknownMetaField").is_none(),
                "{}",
                r.plural
            );
        }
    }

    #[test]
    fn every_normalize_rejects_wrong_types() {
        for r in all() {
            let mut obj = minimal(r);
            obj["metadata"]["name"] = json!(42);
            assert!(
                (r.normalize)(obj).is_err(),
                "{}: numeric name accepted",
                r.plural
            );
            let mut obj = minimal(r);
            obj["metadata"]["labels"] = json!(["not", "a", "map"]);
            assert!(
                (r.normalize)(obj).is_err(),
                "{}: list labels accepted",
                r.plural
            );
            assert!((r.normalize)(json!("a string")).is_err(), "{}", r.plural);
        }
    }

    #[test]
    fn normalize_rejects_foreign_api_version() {
        let pods = find("", "v1", "pods").expect("pods");
        let obj = json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "x"}});
        assert!((pods.normalize)(obj).is_err());
    }

    #[test]
    fn normalize_keeps_known_nested_fields() {
        let deploy = find("apps", "v1", "deployments").expect("deployments");
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "bogus": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        });
        let out = (deploy.normalize)(obj).expect("valid deployment");
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx"
        );
        assert!(out["spec"].get("bogus").is_none());

        let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
                         "spec": {"replicas": "three"}});
        assert!((deploy.normalize)(bad).is_err());
    }

    #[test]
    fn storage_paths() {
        let path = |g: &str, p: &str| {
            let r = all()
                .iter()
                .find(|r| r.group == g && r.plural == p)
                .expect("row");
            storage_resource_path(r)
        };
        assert_eq!(path("", "pods"), "pods");
        assert_eq!(path("", "configmaps"), "configmaps");
        assert_eq!(path("", "services"), "services/specs");
        assert_eq!(path("", "endpoints"), "services/endpoints");
        assert_eq!(path("", "nodes"), "minions");
        assert_eq!(path("", "replicationcontrollers"), "controllers");
        assert_eq!(path("apps", "deployments"), "deployments");
        assert_eq!(path("networking.k8s.io", "ingresses"), "ingress");
        assert_eq!(path("events.k8s.io", "events"), "events");
        assert_eq!(
            path("apiextensions.k8s.io", "customresourcedefinitions"),
            "apiextensions.k8s.io/customresourcedefinitions"
        );
        assert_eq!(
            path("apiregistration.k8s.io", "apiservices"),
            "apiregistration.k8s.io/apiservices"
        );
        // Only the two Event resources and the two HorizontalPodAutoscaler versions share a key.
        let stored: Vec<String> = all()
            .iter()
            .filter(|r| !r.is_virtual())
            .map(storage_resource_path)
            .collect();
        let unique: BTreeSet<&String> = stored.iter().collect();
        assert_eq!(unique.len() + 2, stored.len());
    }

    #[test]
    fn hpa_conversion_round_trips() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 10,
                     "metrics": [
                         {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                         {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"currentReplicas": 3, "desiredReplicas": 4, "observedGeneration": 1,
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70}}}],
                       "conditions": [{"type": "AbleToScale", "status": "True"}]},
        });
        let v1 = convert_hpa(v2.clone(), "v1");
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["spec"]["minReplicas"], 2);
        assert!(v1["spec"].get("metrics").is_none());
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 70);
        let annotations = v1["metadata"]["annotations"].as_object().unwrap();
        assert!(annotations.contains_key(HPA_METRICS) && annotations.contains_key(HPA_BEHAVIOR) && annotations.contains_key(HPA_CONDITIONS));
        assert_eq!(convert_hpa(v1, "v2"), v2);
        // An object already in the target version is left alone.
        assert_eq!(convert_hpa(v2.clone(), "v2"), v2);
    }

    #[test]
    fn event_conversion_round_trips() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Scheduled", "message": "assigned", "type": "Normal",
            "source": {"component": "scheduler"}, "count": 2,
            "reportingComponent": "sched", "reportingInstance": "i"
        });
        let events = convert_event(core.clone(), "events.k8s.io");
        assert_eq!(events["apiVersion"], "events.k8s.io/v1");
        assert_eq!(events["regarding"]["name"], "p");
        assert_eq!(events["note"], "assigned");
        assert_eq!(events["deprecatedSource"]["component"], "scheduler");
        assert_eq!(events["deprecatedCount"], 2);
        assert_eq!(events["reportingController"], "sched");
        assert!(events.get("involvedObject").is_none());
        let ev = find("events.k8s.io", "v1", "events").expect("events");
        let typed = (ev.normalize)(events.clone()).expect("valid events.k8s.io Event");
        assert_eq!(typed["regarding"]["kind"], "Pod");
        assert_eq!(convert_event(events, ""), core);
        assert_eq!(convert_event(json!(3), ""), json!(3));
    }
}
