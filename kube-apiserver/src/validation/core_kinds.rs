//! Validation of the core kinds other than pods (upstream's `pkg/apis/core/validation`):
//! Services, ConfigMaps, Secrets and PersistentVolumeClaims.

use std::collections::HashSet;

use serde_json::Value;

use super::pod::{self, join};
use crate::errors::Cause;

const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const MAX_SECRET_SIZE: usize = 1024 * 1024;

// ---- Service ----

pub fn service(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    let ty = spec["type"].as_str().unwrap_or("");
    const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !TYPES.contains(&ty) {
        causes.push(Cause::not_supported("spec.type", ty, &TYPES));
    }
    let headless = spec["clusterIP"] == "None";
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && !headless && ty != "ExternalName" {
        causes.push(Cause::required("spec.ports", ""));
    }
    if ty == "ExternalName" {
        match spec["externalName"].as_str().unwrap_or("") {
            "" => causes.push(Cause::required("spec.externalName", "")),
            n => causes.extend(super::dns1123_subdomain(n.trim_end_matches('.')).into_iter().map(|m| Cause::invalid("spec.externalName", n, &m))),
        }
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = p["name"].as_str().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            causes.push(Cause::required(&join(&pp, "name"), ""));
        } else if !name.is_empty() {
            causes.extend(super::name(super::NameRule::Dns1123Label, &join(&pp, "name"), name));
            if !names.insert(name.to_string()) {
                causes.push(Cause::duplicate(&join(&pp, "name"), name));
            }
        }
        causes.extend(pod::port_number(&p["port"], &join(&pp, "port")));
        match p["protocol"].as_str() {
            None | Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => causes.push(Cause::not_supported(&join(&pp, "protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
        if !p["targetPort"].is_null() {
            causes.extend(pod::port_num_or_name(&p["targetPort"], &join(&pp, "targetPort")));
        }
        if p["nodePort"].as_i64().is_some_and(|n| n != 0) && !matches!(ty, "NodePort" | "LoadBalancer") {
            causes.push(Cause::forbidden(&join(&pp, "nodePort"), &format!("may not be used when `type` is '{ty}'")));
        }
    }
    match spec["sessionAffinity"].as_str() {
        None | Some("None" | "ClientIP") => {}
        Some(other) => causes.push(Cause::not_supported("spec.sessionAffinity", other, &["ClientIP", "None"])),
    }
    if let Some(t) = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].as_i64() {
        if !(1..=86400).contains(&t) {
            causes.push(Cause::invalid_raw(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                &t.to_string(),
                "must be greater than 0 and less than 86400",
            ));
        }
    }
    for (key, allowed) in [("externalTrafficPolicy", ["Cluster", "Local"]), ("internalTrafficPolicy", ["Cluster", "Local"])] {
        if let Some(v) = spec[key].as_str() {
            if !allowed.contains(&v) {
                causes.push(Cause::not_supported(&format!("spec.{key}"), v, &allowed));
            }
        }
    }
    if let Some(sel) = spec["selector"].as_object() {
        causes.extend(pod::labels(&Value::Object(sel.clone()), "spec.selector"));
    }
    causes
}

// ---- ConfigMap / Secret ----

fn config_key(key: &str, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ok = !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if key.len() > 253 {
        causes.push(Cause::invalid(field, key, "must be no more than 253 characters"));
    }
    if !ok {
        causes.push(Cause::invalid(field, key, CONFIG_KEY_MSG));
    }
    if key == "." || key == ".." {
        causes.push(Cause::invalid(field, key, &format!("must not be '{key}'")));
    } else if key.starts_with("..") {
        causes.push(Cause::invalid(field, key, "must not start with '..'"));
    }
    causes
}

fn immutable_data(new: &Value, old: &Value, keys: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    if old["immutable"] == true {
        if new["immutable"] != true {
            causes.push(Cause::forbidden("immutable", "field is immutable when `immutable` is set"));
        }
        for k in keys {
            if new[*k] != old[*k] {
                causes.push(Cause::forbidden(k, "field is immutable when `immutable` is set"));
            }
        }
    }
    causes
}

pub fn config_map(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0;
    let binary = obj["binaryData"].as_object();
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        causes.extend(config_key(k, &format!("data[{k}]")));
        total += v.as_str().map(str::len).unwrap_or(0);
    }
    for (k, v) in binary.into_iter().flatten() {
        causes.extend(config_key(k, &format!("binaryData[{k}]")));
        if obj["data"].get(k).is_some() {
            causes.push(Cause::invalid(&format!("binaryData[{k}]"), k, "duplicate of key present in data"));
        }
        total += v.as_str().map(|s| s.len() * 3 / 4).unwrap_or(0);
    }
    if total > MAX_SECRET_SIZE {
        causes.push(Cause::too_long("", MAX_SECRET_SIZE));
    }
    causes
}

pub fn config_map_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = config_map(new);
    causes.extend(immutable_data(new, old, &["data", "binaryData"]));
    causes
}

pub fn secret(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let data = &obj["data"];
    let mut total = 0;
    for (k, v) in data.as_object().into_iter().flatten() {
        causes.extend(config_key(k, &format!("data[{k}]")));
        total += v.as_str().map(|s| s.len() * 3 / 4).unwrap_or(0);
    }
    if total > MAX_SECRET_SIZE {
        causes.push(Cause::too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| data.get(k).is_some();
    match obj["type"].as_str().unwrap_or("") {
        "kubernetes.io/service-account-token" => {
            if obj["metadata"]["annotations"]["kubernetes.io/service-account.name"].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required("metadata.annotations[kubernetes.io/service-account.name]", ""));
            }
        }
        "kubernetes.io/dockercfg" => {
            if !has(".dockercfg") {
                causes.push(Cause::required("data[.dockercfg]", ""));
            }
        }
        "kubernetes.io/dockerconfigjson" => {
            if !has(".dockerconfigjson") {
                causes.push(Cause::required("data[.dockerconfigjson]", ""));
            }
        }
        "kubernetes.io/basic-auth" => {
            if !has("username") && !has("password") {
                causes.push(Cause::required("data[username]", ""));
                causes.push(Cause::required("data[password]", ""));
            }
        }
        "kubernetes.io/ssh-auth" => {
            if !has("ssh-privatekey") {
                causes.push(Cause::required("data[ssh-privatekey]", ""));
            }
        }
        "kubernetes.io/tls" => {
            for k in ["tls.key", "tls.crt"] {
                if !has(k) {
                    causes.push(Cause::required(&format!("data[{k}]"), ""));
                }
            }
        }
        _ => {}
    }
    causes
}

pub fn secret_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = secret(new);
    if new["type"] != old["type"] {
        causes.push(Cause::invalid("type", new["type"].as_str().unwrap_or(""), "field is immutable"));
    }
    causes.extend(immutable_data(new, old, &["data"]));
    causes
}

// ---- PersistentVolumeClaim ----

const ACCESS_MODES: [&str; 4] = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

pub fn pvc(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    let modes = spec["accessModes"].as_array().cloned().unwrap_or_default();
    if modes.is_empty() {
        causes.push(Cause::required("spec.accessModes", "at least 1 access mode is required"));
    }
    for m in &modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            causes.push(Cause::not_supported("spec.accessModes", m, &ACCESS_MODES));
        }
    }
    match spec["resources"]["requests"]["storage"].as_str() {
        None => causes.push(Cause::required("spec.resources[storage]", "")),
        Some(q) => {
            if super::quantity::parse(q).is_some_and(|v| v <= 0.0) {
                causes.push(Cause::invalid("spec.resources[storage]", q, "must be greater than zero"));
            }
        }
    }
    match spec["volumeMode"].as_str() {
        None | Some("Block" | "Filesystem") => {}
        Some(other) => causes.push(Cause::not_supported("spec.volumeMode", other, &["Block", "Filesystem"])),
    }
    if let Some(sel) = spec.get("selector") {
        causes.extend(pod::label_selector(sel, "spec.selector"));
    }
    causes
}

pub const PVC_UPDATE_MESSAGE: &str =
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

pub fn pvc_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = pvc(new);
    let mut n = new["spec"].clone();
    let o = &old["spec"];
    // The binder sets volumeName; requests may grow on bound claims.
    if o["volumeName"].as_str().is_none_or(str::is_empty) {
        if let (Some(m), Some(v)) = (n.as_object_mut(), new["spec"].get("volumeName")) {
            if o.get("volumeName").is_none() {
                m.remove("volumeName");
            } else {
                m.insert("volumeName".into(), v.clone());
            }
        }
    }
    if old["status"]["phase"] == "Bound" {
        n["resources"]["requests"] = o["resources"]["requests"].clone();
        match o.get("volumeAttributesClassName") {
            Some(v) => n["volumeAttributesClassName"] = v.clone(),
            None => {
                if let Some(m) = n.as_object_mut() {
                    m.remove("volumeAttributesClassName");
                }
            }
        }
    }
    if &n != o {
        causes.push(Cause::forbidden("spec", PVC_UPDATE_MESSAGE));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(causes: Vec<Cause>) -> (String, String) {
        assert_eq!(causes.len(), 1, "{causes:?}");
        (causes[0].field.clone(), causes[0].message.clone())
    }

    fn svc(ports: Value) -> Value {
        json!({"spec": {"type": "ClusterIP", "sessionAffinity": "None", "ports": ports}})
    }

    #[test]
    fn service_ports() {
        assert_eq!(one(service(&svc(json!([])))), ("spec.ports".into(), "Required value".into()));
        assert_eq!(
            one(service(&svc(json!([{"port": 0, "protocol": "TCP", "targetPort": 80}])))),
            ("spec.ports[0].port".into(), "Invalid value: 0: must be between 1 and 65535, inclusive".into())
        );
        assert_eq!(
            one(service(&svc(json!([{"name": "a", "port": 80}, {"port": 81}])))),
            ("spec.ports[1].name".into(), "Required value".into())
        );
        assert_eq!(
            one(service(&svc(json!([{"name": "a", "port": 80}, {"name": "a", "port": 81}])))),
            ("spec.ports[1].name".into(), "Duplicate value: \"a\"".into())
        );
        assert_eq!(
            one(service(&svc(json!([{"port": 80, "targetPort": 70000}])))),
            ("spec.ports[0].targetPort".into(), "Invalid value: 70000: must be between 1 and 65535, inclusive".into())
        );
        assert_eq!(
            one(service(&svc(json!([{"port": 80, "targetPort": "Http_Port"}]))))
                .0,
            "spec.ports[0].targetPort"
        );
        assert_eq!(
            one(service(&svc(json!([{"port": 80, "nodePort": 30000}])))),
            ("spec.ports[0].nodePort".into(), "Forbidden: may not be used when `type` is 'ClusterIP'".into())
        );
    }

    #[test]
    fn service_type_and_affinity() {
        let mut s = svc(json!([{"port": 80}]));
        s["spec"]["type"] = json!("Magic");
        assert_eq!(
            one(service(&s)),
            ("spec.type".into(), "Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".into())
        );
        let mut s = svc(json!([{"port": 80}]));
        s["spec"]["sessionAffinity"] = json!("Sticky");
        assert_eq!(one(service(&s)).0, "spec.sessionAffinity");
        let en = json!({"spec": {"type": "ExternalName"}});
        assert_eq!(one(service(&en)), ("spec.externalName".into(), "Required value".into()));
        assert!(service(&json!({"spec": {"type": "ClusterIP", "clusterIP": "None"}})).is_empty());
    }

    #[test]
    fn config_keys() {
        let (f, m) = one(config_map(&json!({"data": {"bad key": "v"}})));
        assert_eq!(f, "data[bad key]");
        assert_eq!(m, format!("Invalid value: \"bad key\": {CONFIG_KEY_MSG}"));
        assert_eq!(
            one(config_map(&json!({"data": {"a": "x"}, "binaryData": {"a": "eA=="}}))),
            ("binaryData[a]".into(), "Invalid value: \"a\": duplicate of key present in data".into())
        );
        let old = json!({"data": {"a": "1"}, "immutable": true});
        assert_eq!(
            one(config_map_update(&json!({"data": {"a": "2"}, "immutable": true}), &old)),
            ("data".into(), "Forbidden: field is immutable when `immutable` is set".into())
        );
    }

    #[test]
    fn secrets() {
        assert_eq!(one(secret(&json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}))), ("data[tls.key]".into(), "Required value".into()));
        assert_eq!(
            one(secret_update(&json!({"type": "kubernetes.io/tls2"}), &json!({"type": "Opaque"}))),
            ("type".into(), "Invalid value: \"kubernetes.io/tls2\": field is immutable".into())
        );
        assert!(secret(&json!({"type": "Opaque", "data": {"a": "eA=="}})).is_empty());
    }

    #[test]
    fn service_policies() {
        let mut s = svc(json!([{"port": 80}]));
        s["spec"]["sessionAffinity"] = json!("ClientIP");
        s["spec"]["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 0}});
        assert_eq!(
            one(service(&s)),
            ("spec.sessionAffinityConfig.clientIP.timeoutSeconds".into(), "Invalid value: 0: must be greater than 0 and less than 86400".into())
        );
        let mut s = svc(json!([{"port": 80}]));
        s["spec"]["externalTrafficPolicy"] = json!("Everywhere");
        assert_eq!(
            one(service(&s)),
            ("spec.externalTrafficPolicy".into(), "Unsupported value: \"Everywhere\": supported values: \"Cluster\", \"Local\"".into())
        );
        let mut s = svc(json!([{"port": 80, "protocol": "ICMP"}]));
        s["spec"]["type"] = json!("NodePort");
        assert_eq!(one(service(&s)).0, "spec.ports[0].protocol");
    }

    #[test]
    fn secret_types() {
        assert_eq!(
            one(secret(&json!({"type": "kubernetes.io/dockerconfigjson", "data": {}}))),
            ("data[.dockerconfigjson]".into(), "Required value".into())
        );
        assert_eq!(
            one(secret(&json!({"type": "kubernetes.io/service-account-token"}))),
            ("metadata.annotations[kubernetes.io/service-account.name]".into(), "Required value".into())
        );
        let big = "A".repeat(1_500_000);
        assert_eq!(one(secret(&json!({"type": "Opaque", "data": {"a": big}}))).0, "data");
    }

    #[test]
    fn claims() {
        let c = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}});
        assert!(pvc(&c).is_empty());
        let bad = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(one(pvc(&bad)), ("spec.accessModes".into(), "Required value: at least 1 access mode is required".into()));
        let bad = json!({"spec": {"accessModes": ["ReadWriteOnce"]}});
        assert_eq!(one(pvc(&bad)), ("spec.resources[storage]".into(), "Required value".into()));
        let zero = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}}}});
        assert_eq!(one(pvc(&zero)), ("spec.resources[storage]".into(), "Invalid value: \"0\": must be greater than zero".into()));
        let mut n = c.clone();
        n["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(one(pvc_update(&n, &c)), ("spec".into(), format!("Forbidden: {PVC_UPDATE_MESSAGE}")));
    }
}
