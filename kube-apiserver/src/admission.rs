//! The built-in mutating admission plugins a v1.33 API server runs by default that change what
//! clients read back: ServiceAccount, DefaultTolerationSeconds and Priority, for new Pods.
//!
//! Why here: upstream runs them after decoding and defaulting and before validation, and their
//! effects (`serviceAccountName: default`, the `kube-api-access-*` volume, the not-ready and
//! unreachable tolerations, `priority: 0`) are in every pod a client reads back.
//!
//! One departure: no controller creates each namespace's `default` ServiceAccount yet, so a pod
//! whose ServiceAccount is `default` and missing is admitted without a token volume instead of
//! being refused; any other missing ServiceAccount is refused as upstream does.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::errors::{ApiError, Target};
use crate::registry::meta;
use crate::storage::Storage;

/// Read access to stored objects of other resources, for admission steps that consult them.
#[derive(Clone)]
pub struct Lookup {
    storage: Arc<dyn Storage>,
    prefix: String,
}

impl Lookup {
    pub fn new(storage: Arc<dyn Storage>, prefix: &str) -> Self {
        Lookup { storage, prefix: prefix.trim_end_matches('/').to_string() }
    }

    /// The stored object `group`/`plural` `ns`/`name`, if any.
    pub async fn get(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Result<Option<Value>, ApiError> {
        let Some(info) = crate::resources::all().iter().find(|r| r.group == group && r.plural == plural) else {
            return Ok(None);
        };
        let root = format!("{}/{}/", self.prefix, crate::resources::storage_resource_path(info));
        let key = match ns {
            Some(ns) if info.namespaced => format!("{root}{ns}/{name}"),
            _ => format!("{root}{name}"),
        };
        match self.storage.get(&key).await {
            Ok(Some(kv)) => crate::registry::decode(&kv).map(Some).map_err(ApiError::internal),
            Ok(None) => Ok(None),
            Err(e) => Err(ApiError::from_storage(e, group, plural, name)),
        }
    }
}

const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The priorities of the two system PriorityClasses upstream creates at start-up.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    ("system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2000000000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
];

/// Create the system PriorityClasses when missing, as upstream's start-up hook does.
pub async fn bootstrap_priority_classes(store: Option<&crate::registry::Store>) -> Result<(), ApiError> {
    let Some(store) = store else { return Ok(()) };
    for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
        let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, "description": description, "globalDefault": false});
        match store.create(None, pc, &crate::registry::WriteOptions::default()).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn forbidden(name: &str, msg: String) -> ApiError {
    ApiError::Forbidden(format!("pods \"{name}\" is forbidden: {msg}"), Some(Target::new("", "pods", name)))
}

/// Admit a new Pod in `ns`: default its ServiceAccount and mount the token, add the default
/// NoExecute tolerations, and resolve its priority.
pub async fn admit_pod(pod: &mut Value, ns: &str, lookup: &Lookup) -> Result<(), ApiError> {
    let name = meta::name(pod).to_string();
    if !pod["spec"].is_object() {
        return Ok(());
    }
    service_account(pod, ns, &name, lookup).await?;
    default_tolerations(&mut pod["spec"]);
    priority(pod, &name, lookup).await
}

async fn service_account(pod: &mut Value, ns: &str, name: &str, lookup: &Lookup) -> Result<(), ApiError> {
    if pod["metadata"]["annotations"].get(MIRROR_ANNOTATION).is_some() {
        return Ok(());
    }
    let spec = &mut pod["spec"];
    if spec["serviceAccountName"].as_str().is_none_or(str::is_empty) {
        spec["serviceAccountName"] = json!("default");
    }
    let sa_name = spec["serviceAccountName"].as_str().unwrap_or("default").to_string();
    spec["serviceAccount"] = json!(sa_name);
    let sa = match lookup.get("", "serviceaccounts", Some(ns), &sa_name).await? {
        Some(sa) => sa,
        None if sa_name == "default" => return Ok(()),
        None => {
            return Err(forbidden(
                name,
                format!("error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"),
            ));
        }
    };
    let automount = spec["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    if automount {
        mount_token(spec);
    }
    if spec["imagePullSecrets"].as_array().is_none_or(Vec::is_empty) {
        if let Some(secrets) = sa["imagePullSecrets"].as_array().filter(|a| !a.is_empty()) {
            spec["imagePullSecrets"] = Value::Array(secrets.clone());
        }
    }
    Ok(())
}

/// Add the projected `kube-api-access-*` volume and mount it in every container that has
/// nothing at the token path.
fn mount_token(spec: &mut Value) {
    let existing = spec["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find_map(|v| v["name"].as_str().filter(|n| n.starts_with("kube-api-access-")).map(String::from)));
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(|| meta::generate_name("kube-api-access-"));
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else { continue };
        for c in cs {
            let mounted = c["volumeMounts"].as_array().is_some_and(|ms| ms.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH));
            if !mounted {
                let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
                match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    Some(ms) => ms.push(mount),
                    None => c["volumeMounts"] = json!([mount]),
                }
                needs_volume = true;
            }
        }
    }
    if needs_volume && !has_volume {
        let volume = json!({"name": volume_name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}});
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(vs) => vs.push(volume),
            None => spec["volumes"] = json!([volume]),
        }
    }
}

/// DefaultTolerationSeconds: tolerate not-ready and unreachable nodes for 300s.
fn default_tolerations(spec: &mut Value) {
    let list = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let tolerates = |key: &str| {
        list.iter().any(|t| {
            let k = t["key"].as_str().unwrap_or("");
            let e = t["effect"].as_str().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut added = Vec::new();
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        if !tolerates(key) {
            added.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    if !added.is_empty() {
        let mut all = list;
        all.extend(added);
        spec["tolerations"] = Value::Array(all);
    }
}

/// Priority: resolve `priorityClassName` (or the global default class) into `priority` and
/// `preemptionPolicy`.
async fn priority(pod: &mut Value, name: &str, lookup: &Lookup) -> Result<(), ApiError> {
    let class_name = pod["spec"]["priorityClassName"].as_str().unwrap_or("").to_string();
    let (value, policy) = if class_name.is_empty() {
        (0, "PreemptLowerPriority".to_string())
    } else if let Some((_, v, _)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _, _)| *n == class_name) {
        (*v, "PreemptLowerPriority".to_string())
    } else {
        match lookup.get("scheduling.k8s.io", "priorityclasses", None, &class_name).await? {
            Some(pc) => (
                pc["value"].as_i64().unwrap_or(0),
                pc["preemptionPolicy"].as_str().unwrap_or("PreemptLowerPriority").to_string(),
            ),
            None => return Err(forbidden(name, format!("no PriorityClass with name {class_name} was found"))),
        }
    };
    if let Some(given) = pod["spec"]["priority"].as_i64() {
        if given != value {
            return Err(forbidden(
                name,
                format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"),
            ));
        }
    }
    pod["spec"]["priority"] = json!(value);
    pod["spec"]["preemptionPolicy"] = json!(policy);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::embedded::EmbeddedStorage;

    async fn lookup() -> (Lookup, Arc<dyn Storage>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(EmbeddedStorage::open(dir.path()).unwrap());
        (Lookup::new(storage.clone(), "/registry"), storage, dir)
    }

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    }

    #[tokio::test]
    async fn default_service_account_without_a_stored_account() {
        let (l, _s, _d) = lookup().await;
        let mut p = pod();
        admit_pod(&mut p, "default", &l).await.unwrap();
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["serviceAccount"], "default");
        assert!(p["spec"].get("volumes").is_none());
        assert_eq!(p["spec"]["priority"], 0);
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        let t = p["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        assert_eq!(t[1]["key"], "node.kubernetes.io/unreachable");
    }

    #[tokio::test]
    async fn token_volume_when_the_account_exists() {
        let (l, s, _d) = lookup().await;
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "ns"},
            "imagePullSecrets": [{"name": "pull"}]});
        s.create("/registry/serviceaccounts/ns/default", serde_json::to_vec(&sa).unwrap()).await.unwrap();
        let mut p = pod();
        admit_pod(&mut p, "ns", &l).await.unwrap();
        let vol = &p["spec"]["volumes"][0];
        let vname = vol["name"].as_str().unwrap();
        assert!(vname.starts_with("kube-api-access-") && vname.len() == "kube-api-access-".len() + 5);
        assert_eq!(vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3607);
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"][0],
            json!({"name": vname, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH})
        );
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "pull"}]));
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(false);
        admit_pod(&mut p, "ns", &l).await.unwrap();
        assert!(p["spec"].get("volumes").is_none());
    }

    #[tokio::test]
    async fn missing_named_account_and_priority_class_are_refused() {
        let (l, _s, _d) = lookup().await;
        let mut p = pod();
        p["spec"]["serviceAccountName"] = json!("robot");
        let e = admit_pod(&mut p, "ns", &l).await.unwrap_err();
        assert_eq!(e.code(), 403);
        assert_eq!(
            e.to_string(),
            "pods \"p\" is forbidden: error looking up service account ns/robot: serviceaccount \"robot\" not found"
        );
        let mut p = pod();
        p["spec"]["priorityClassName"] = json!("gold");
        let e = admit_pod(&mut p, "ns", &l).await.unwrap_err();
        assert_eq!(e.to_string(), "pods \"p\" is forbidden: no PriorityClass with name gold was found");
        let mut p = pod();
        p["spec"]["priorityClassName"] = json!("system-node-critical");
        admit_pod(&mut p, "ns", &l).await.unwrap();
        assert_eq!(p["spec"]["priority"], 2000001000);
    }

    #[tokio::test]
    async fn existing_tolerations_are_respected() {
        let (l, _s, _d) = lookup().await;
        let mut p = pod();
        p["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        admit_pod(&mut p, "ns", &l).await.unwrap();
        assert_eq!(p["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    }
}
