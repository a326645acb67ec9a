//! Per-kind behaviour plugged into the generic [`Store`](super::Store): what upstream's
//! `RESTCreateStrategy`/`RESTUpdateStrategy`/`RESTDeleteStrategy` say for each kind. The store
//! does everything common (metadata, status/spec split, generation, preconditions); a strategy
//! only states how its kind differs.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::admission::Lookup;
use crate::allocator::ServiceAllocator;
use crate::errors::{ApiError, Cause};
use crate::validation::{NameRule, core_kinds, pod, workloads};

#[async_trait]
pub trait Strategy: Send + Sync {
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1123Subdomain
    }
    /// Whether `metadata.generation` is set on create and bumped on spec changes.
    fn tracks_generation(&self) -> bool {
        false
    }
    /// Whether PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }
    /// Whether the status written on create is kept (otherwise it is reset).
    fn keeps_status_on_create(&self) -> bool {
        false
    }
    /// Kind-specific resets and defaults on create.
    fn prepare_for_create(&self, _obj: &mut Value) {}
    /// Mutating admission of a new object, before `prepare_for_create` and validation.
    async fn admit(&self, _obj: &mut Value) -> Result<(), ApiError> {
        Ok(())
    }
    /// Kind-specific validation of a new object.
    fn validate(&self, _obj: &Value) -> Vec<Cause> {
        Vec::new()
    }
    /// Kind-specific validation of an update of the object itself (not of its status).
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        self.validate(new)
    }
    /// Side effects before a create is written (e.g. IP allocation). Undone by `rollback_create`.
    async fn before_create(&self, _obj: &mut Value, _dry_run: bool) -> Result<(), ApiError> {
        Ok(())
    }
    async fn rollback_create(&self, _obj: &Value) {}
    /// Side effects before an update is written; the old object is what is stored now.
    async fn before_update(&self, _new: &mut Value, _old: &Value, _dry_run: bool) -> Result<(), ApiError> {
        Ok(())
    }
    /// Undo `before_update` when the update was not written (conflict, storage error).
    async fn rollback_update(&self, _new: &Value, _old: &Value) {}
    /// Release what the old object held and the written one no longer does.
    async fn after_update(&self, _new: &Value, _old: &Value) {}
    /// Release what an object held once it is gone from storage.
    async fn after_delete(&self, _obj: &Value) {}
    /// Graceful deletion: the grace period to apply instead of deleting now, if any.
    fn graceful_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }
    /// Called on a delete request before finalizers are considered; returning true means the
    /// object was marked (e.g. namespace set Terminating) and must be kept until finalized.
    fn mark_for_deletion(&self, _obj: &mut Value) -> bool {
        false
    }
}

/// A kind's validation rules (see [`crate::validation`]).
#[derive(Clone, Copy)]
pub struct Checks {
    pub create: fn(&Value) -> Vec<Cause>,
    /// `None`: updates are validated like creates.
    pub update: Option<fn(&Value, &Value) -> Vec<Cause>>,
}

/// The strategy for kinds with nothing special beyond their validation.
pub struct Generic {
    pub generation: bool,
    pub create_on_update: bool,
    pub name_rule: NameRule,
    pub checks: Option<Checks>,
}

impl Default for Generic {
    fn default() -> Self {
        Generic { generation: false, create_on_update: false, name_rule: NameRule::Dns1123Subdomain, checks: None }
    }
}

#[async_trait]
impl Strategy for Generic {
    fn name_rule(&self) -> NameRule {
        self.name_rule
    }
    fn tracks_generation(&self) -> bool {
        self.generation
    }
    fn allow_create_on_update(&self) -> bool {
        self.create_on_update
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        self.checks.map(|c| (c.create)(obj)).unwrap_or_default()
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        match self.checks {
            Some(Checks { update: Some(u), .. }) => u(new, old),
            Some(c) => (c.create)(new),
            None => Vec::new(),
        }
    }
}

/// Jobs: a generated selector and template labels unless `manualSelector` (upstream's
/// `generateSelector`).
pub struct Jobs;

#[async_trait]
impl Strategy for Jobs {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        if obj["spec"]["manualSelector"].as_bool() == Some(true) {
            return;
        }
        let name = crate::registry::meta::name(obj).to_string();
        let uid = crate::registry::meta::uid(obj).to_string();
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
        let template = spec.entry("template").or_insert_with(|| json!({}));
        if !template["metadata"]["labels"].is_object() {
            template["metadata"]["labels"] = json!({});
        }
        if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels.entry(k).or_insert_with(|| json!(v));
            }
        }
        let selector = spec.entry("selector").or_insert_with(|| json!({}));
        if !selector["matchLabels"].is_object() {
            selector["matchLabels"] = json!({});
        }
        if let Some(ml) = selector["matchLabels"].as_object_mut() {
            ml.entry("batch.kubernetes.io/controller-uid").or_insert_with(|| json!(uid));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        workloads::job(obj)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        workloads::job_update(new, old)
    }
}

/// Pods: Pending on create, admission, graceful deletion once bound to a node.
pub struct Pods {
    pub lookup: Lookup,
}

/// Upstream's QoS class: Guaranteed, Burstable or BestEffort.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod["spec"][f].as_array())
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = &c["resources"]["requests"];
        let lim = &c["resources"]["limits"];
        for r in ["cpu", "memory"] {
            let (rq, lm) = (&req[r], &lim[r]);
            if !rq.is_null() || !lm.is_null() {
                any = true;
            }
            // Requests default to limits when unset.
            if lm.is_null() || (!rq.is_null() && rq != lm) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[async_trait]
impl Strategy for Pods {
    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = pod_qos_class(obj);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }
    async fn admit(&self, obj: &mut Value) -> Result<(), ApiError> {
        let ns = crate::registry::meta::namespace(obj).to_string();
        crate::admission::admit_pod(obj, &ns, &self.lookup).await
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        pod::validate_pod(obj)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        pod::validate_pod_update(new, old)
    }
    fn graceful_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let phase = obj["status"]["phase"].as_str().unwrap_or("");
        let bound = obj["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
        if !bound || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        let grace = requested.or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30);
        (grace > 0).then_some(grace)
    }
}

/// Namespaces: the `kubernetes` finalizer, phase Active, Terminating on delete.
pub struct Namespaces;

#[async_trait]
impl Strategy for Namespaces {
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1123Label
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
        let name = crate::registry::meta::name(obj).to_string();
        let labels = crate::registry::meta::meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
    }
    fn mark_for_deletion(&self, obj: &mut Value) -> bool {
        obj["status"]["phase"] = json!("Terminating");
        obj["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
    }
}

/// Nodes keep the status they are created with (the kubelet registers with status).
pub struct Nodes;

#[async_trait]
impl Strategy for Nodes {
    fn keeps_status_on_create(&self) -> bool {
        true
    }
}

/// Services: ClusterIP and NodePort allocation.
pub struct Services {
    pub allocator: Arc<ServiceAllocator>,
}

#[async_trait]
impl Strategy for Services {
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1035Label
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        core_kinds::service(obj)
    }
    async fn before_create(&self, obj: &mut Value, dry_run: bool) -> Result<(), ApiError> {
        self.allocator.allocate_for(obj, None, dry_run).await
    }
    async fn rollback_create(&self, obj: &Value) {
        self.allocator.rollback_create(obj).await;
    }
    async fn before_update(&self, new: &mut Value, old: &Value, dry_run: bool) -> Result<(), ApiError> {
        self.allocator.allocate_for(new, Some(old), dry_run).await
    }
    async fn rollback_update(&self, new: &Value, old: &Value) {
        self.allocator.rollback_update(new, old).await;
    }
    async fn after_update(&self, new: &Value, old: &Value) {
        self.allocator.after_update(new, old).await;
    }
    async fn after_delete(&self, obj: &Value) {
        self.allocator.release_for(obj).await;
    }
}

/// PersistentVolumes start Pending, with the time of that phase (upstream's `PrepareForCreate`
/// with the PersistentVolumeLastPhaseTransitionTime feature, GA in v1.31).
pub struct PersistentVolumes;

#[async_trait]
impl Strategy for PersistentVolumes {
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending", "lastPhaseTransitionTime": crate::registry::meta::now_rfc3339()});
    }
}

/// CustomResourceDefinitions: generation, and the storage version recorded in
/// `status.storedVersions` on create (upstream's `PrepareForCreate`).
pub struct CustomResourceDefinitions;

#[async_trait]
impl Strategy for CustomResourceDefinitions {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        let versions = obj["spec"]["versions"].as_array();
        let storage = versions.and_then(|vs| vs.iter().find(|v| v["storage"] == true)).and_then(|v| v["name"].as_str());
        if let Some(name) = storage.map(str::to_string) {
            obj["status"] = json!({"storedVersions": [name]});
        }
    }
}

fn checks(create: fn(&Value) -> Vec<Cause>, update: Option<fn(&Value, &Value) -> Vec<Cause>>) -> Option<Checks> {
    Some(Checks { create, update })
}

fn workload(c: Option<Checks>) -> Arc<dyn Strategy> {
    Arc::new(Generic { generation: true, checks: c, ..Generic::default() })
}

fn template_checks(obj: &Value) -> Vec<Cause> {
    pod::pod_template(&obj["template"], "template")
}

/// The strategy for a resource.
pub fn for_resource(group: &str, plural: &str, allocator: &Arc<ServiceAllocator>, lookup: &Lookup) -> Arc<dyn Strategy> {
    let validated = |c: Option<Checks>| -> Arc<dyn Strategy> { Arc::new(Generic { checks: c, ..Generic::default() }) };
    match (group, plural) {
        ("", "pods") => Arc::new(Pods { lookup: lookup.clone() }),
        ("", "configmaps") => validated(checks(core_kinds::config_map, Some(core_kinds::config_map_update))),
        ("", "secrets") => validated(checks(core_kinds::secret, Some(core_kinds::secret_update))),
        ("", "persistentvolumeclaims") => validated(checks(core_kinds::pvc, Some(core_kinds::pvc_update))),
        ("", "podtemplates") => validated(checks(template_checks, None)),
        ("", "replicationcontrollers") => workload(checks(workloads::replication_controller, None)),
        ("apps", "deployments") => workload(checks(workloads::deployment, Some(workloads::deployment_update))),
        ("apps", "replicasets") => workload(checks(workloads::replica_set, Some(workloads::replica_set_update))),
        ("apps", "statefulsets") => workload(checks(workloads::stateful_set, Some(workloads::stateful_set_update))),
        ("apps", "daemonsets") => workload(checks(workloads::daemon_set, Some(workloads::daemon_set_update))),
        ("batch", "jobs") => Arc::new(Jobs),
        ("batch", "cronjobs") => workload(checks(workloads::cron_job, None)),
        ("", "namespaces") => Arc::new(Namespaces),
        ("", "persistentvolumes") => Arc::new(PersistentVolumes),
        ("", "nodes") => Arc::new(Nodes),
        ("", "services") => Arc::new(Services { allocator: allocator.clone() }),
        ("", "endpoints" | "events") | ("coordination.k8s.io", "leases") | ("events.k8s.io", "events") => {
            Arc::new(Generic { create_on_update: true, ..Generic::default() })
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => Arc::new(CustomResourceDefinitions),
        // Upstream's IPAddress and ServiceCIDR strategies do not track generation.
        ("networking.k8s.io", "ipaddresses" | "servicecidrs") => Arc::new(Generic::default()),
        ("rbac.authorization.k8s.io", _) => Arc::new(Generic { name_rule: NameRule::PathSegment, ..Generic::default() }),
        (
            "apps" | "batch" | "autoscaling" | "policy" | "networking.k8s.io" | "apiextensions.k8s.io"
            | "flowcontrol.apiserver.k8s.io" | "admissionregistration.k8s.io",
            _,
        ) => Arc::new(Generic { generation: true, ..Generic::default() }),
        _ => Arc::new(Generic::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos() {
        assert_eq!(pod_qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})), "BestEffort");
        let g = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }

    #[test]
    fn pod_grace() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn crate::storage::Storage> =
            Arc::new(crate::storage::embedded::EmbeddedStorage::open(dir.path()).unwrap());
        let p = Pods { lookup: Lookup::new(storage, "/registry") };
        let unbound = json!({"spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(p.graceful_period(&unbound, None), None);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}, "status": {"phase": "Running"}});
        assert_eq!(p.graceful_period(&bound, None), Some(10));
        assert_eq!(p.graceful_period(&bound, Some(0)), None);
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert_eq!(p.graceful_period(&done, None), None);
    }
}
