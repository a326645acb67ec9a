//! Pod, pod spec and pod template validation (upstream's `pkg/apis/core/validation`), with
//! upstream's field paths and messages. Objects are validated after defaulting, as upstream does.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::go;
use super::quantity;
use crate::errors::Cause;
use crate::selectors::LabelSelector;

pub(crate) fn join(base: &str, child: &str) -> String {
    if base.is_empty() { child.to_string() } else { format!("{base}.{child}") }
}

/// `must be greater than or equal to 0` for a present, negative integer.
pub fn nonnegative(v: &Value, field: &str) -> Vec<Cause> {
    match v.as_i64() {
        Some(n) if n < 0 => vec![Cause::invalid_raw(field, &n.to_string(), "must be greater than or equal to 0")],
        _ => Vec::new(),
    }
}

/// Upstream's `IsValidPortNum`.
pub fn port_number(v: &Value, field: &str) -> Vec<Cause> {
    let n = v.as_i64().unwrap_or(0);
    if (1..=65535).contains(&n) {
        Vec::new()
    } else {
        vec![Cause::invalid_raw(field, &n.to_string(), "must be between 1 and 65535, inclusive")]
    }
}

/// Upstream's `IsValidPortName` (an IANA service name).
pub fn port_name_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    errs
}

/// A port given as a number or an IANA name (`targetPort`, probe ports).
pub fn port_num_or_name(v: &Value, field: &str) -> Vec<Cause> {
    match v {
        Value::String(s) => port_name_errors(s).into_iter().map(|m| Cause::invalid(field, s, m)).collect(),
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if (1..=65535).contains(&n) {
                Vec::new()
            } else {
                vec![Cause::invalid_raw(field, &n.to_string(), "must be between 1 and 65535, inclusive")]
            }
        }
        _ => vec![Cause::required(field, "")],
    }
}

/// `ValidateLabels`: keys are qualified names, values label values; causes on `field`.
pub fn labels(v: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            for msg in super::qualified_name(k) {
                causes.push(Cause::invalid(field, k, &msg));
            }
            let val = val.as_str().unwrap_or("");
            for msg in super::label_value(val) {
                causes.push(Cause::invalid(field, val, &msg));
            }
        }
    }
    causes
}

/// `ValidateLabelSelector` for a `metav1.LabelSelector`.
pub fn label_selector(sel: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if !sel.is_object() {
        return causes;
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for (i, e) in exprs.iter().enumerate() {
            let ep = format!("{field}.matchExpressions[{i}]");
            let values = e["values"].as_array().map(Vec::len).unwrap_or(0);
            match e["operator"].as_str().unwrap_or("") {
                "In" | "NotIn" => {
                    if values == 0 {
                        causes.push(Cause::required(&join(&ep, "values"), "must be specified when `operator` is 'In' or 'NotIn'"));
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if values > 0 {
                        causes.push(Cause::forbidden(&join(&ep, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
                    }
                }
                op => causes.push(Cause::invalid(&join(&ep, "operator"), op, "not a valid selector operator")),
            }
            let key = e["key"].as_str().unwrap_or("");
            for msg in super::qualified_name(key) {
                causes.push(Cause::invalid(&join(&ep, "key"), key, &msg));
            }
        }
    }
    causes.extend(labels(&sel["matchLabels"], &join(field, "matchLabels")));
    causes
}

/// Whether `labels` (a JSON map) match a `metav1.LabelSelector` (JSON); invalid selectors
/// match nothing.
pub fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let Ok(ls) = serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(sel.clone()) else {
        return false;
    };
    let Ok(s) = LabelSelector::from_label_selector(&ls) else { return false };
    let set: BTreeMap<String, String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default();
    s.matches(&set)
}

/// Whether a selector has no requirements at all.
pub fn selector_is_empty(sel: &Value) -> bool {
    sel["matchLabels"].as_object().is_none_or(Map::is_empty) && sel["matchExpressions"].as_array().is_none_or(Vec::is_empty)
}

fn env_name_errors(name: &str) -> Option<&'static str> {
    // RelaxedEnvironmentVariableValidation is on by default in v1.33.
    let ok = !name.is_empty() && name.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=');
    (!ok).then_some("a valid environment variable name must consist only of printable ASCII characters other than '='")
}

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

fn resource_name_ok(name: &str) -> bool {
    name.contains('/') || STANDARD_CONTAINER_RESOURCES.contains(&name) || name.starts_with("hugepages-")
}

fn resources(r: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for part in ["limits", "requests"] {
        let Some(m) = r[part].as_object() else { continue };
        for (name, q) in m {
            let qp = format!("{field}.{part}[{name}]");
            if !resource_name_ok(name) {
                causes.push(Cause::invalid(&qp, name, "must be a standard resource for containers"));
                continue;
            }
            let qs = q.as_str().map(String::from).unwrap_or_else(|| q.to_string());
            if quantity::parse(&qs).is_some_and(|v| v < 0.0) {
                causes.push(Cause::invalid(&qp, &qs, "must be greater than or equal to 0"));
            }
        }
    }
    if let (Some(req), Some(lim)) = (r["requests"].as_object(), r["limits"].as_object()) {
        for (name, rq) in req {
            let Some(lm) = lim.get(name) else { continue };
            let (rs, ls) = (rq.as_str().unwrap_or(""), lm.as_str().unwrap_or(""));
            if let (Some(a), Some(b)) = (quantity::parse(rs), quantity::parse(ls)) {
                if a > b {
                    causes.push(Cause::invalid(
                        &format!("{field}.requests"),
                        rs,
                        &format!("must be less than or equal to {name} limit of {ls}"),
                    ));
                }
            }
        }
    }
    causes
}

fn probe(p: &Value, field: &str, liveness_or_startup: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    if !p.is_object() {
        return causes;
    }
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"].iter().filter(|h| !p[**h].is_null()).count();
    if handlers == 0 {
        causes.push(Cause::required(field, "must specify a handler type"));
    } else if handlers > 1 {
        causes.push(Cause::forbidden(field, "may not specify more than 1 handler type"));
    }
    for k in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        causes.extend(nonnegative(&p[k], &join(field, k)));
    }
    if liveness_or_startup {
        if let Some(n) = p["successThreshold"].as_i64().filter(|n| *n != 1) {
            causes.push(Cause::invalid_raw(&join(field, "successThreshold"), &n.to_string(), "must be 1"));
        }
    }
    if !p["httpGet"].is_null() {
        causes.extend(port_num_or_name(&p["httpGet"]["port"], &format!("{field}.httpGet.port")));
    }
    if !p["tcpSocket"].is_null() {
        causes.extend(port_num_or_name(&p["tcpSocket"]["port"], &format!("{field}.tcpSocket.port")));
    }
    causes
}

/// Validate one container. `pod` is true for Pods (images required), false for templates.
fn container(c: &Value, field: &str, volumes: &HashSet<String>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = c["name"].as_str().unwrap_or("");
    if name.is_empty() {
        causes.push(Cause::required(&join(field, "name"), ""));
    } else {
        causes.extend(super::name(super::NameRule::Dns1123Label, &join(field, "name"), name));
    }
    // Templates need an image too; only an empty one is missing (" " is a template token).
    if c["image"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::required(&join(field, "image"), ""));
    }
    match c["imagePullPolicy"].as_str() {
        None | Some("Always" | "IfNotPresent" | "Never") => {}
        Some(other) => causes.push(Cause::not_supported(&join(field, "imagePullPolicy"), other, &["Always", "IfNotPresent", "Never"])),
    }
    match c["terminationMessagePolicy"].as_str() {
        None | Some("File" | "FallbackToLogsOnError") => {}
        Some(other) => causes.push(Cause::not_supported(
            &join(field, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    let mut port_names = HashSet::new();
    for (i, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
        let pp = format!("{field}.ports[{i}]");
        if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
            for m in port_name_errors(n) {
                causes.push(Cause::invalid(&join(&pp, "name"), n, m));
            }
            if !port_names.insert(n.to_string()) {
                causes.push(Cause::duplicate(&join(&pp, "name"), n));
            }
        }
        causes.extend(port_number(&p["containerPort"], &join(&pp, "containerPort")));
        if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
            causes.extend(port_number(&p["hostPort"], &join(&pp, "hostPort")));
        }
        match p["protocol"].as_str() {
            None | Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => causes.push(Cause::not_supported(&join(&pp, "protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
    }
    for (i, e) in c["env"].as_array().into_iter().flatten().enumerate() {
        let ep = format!("{field}.env[{i}].name");
        let n = e["name"].as_str().unwrap_or("");
        if n.is_empty() {
            causes.push(Cause::required(&ep, ""));
        } else if let Some(m) = env_name_errors(n) {
            causes.push(Cause::invalid(&ep, n, m));
        }
    }
    causes.extend(resources(&c["resources"], &join(field, "resources")));
    causes.extend(probe(&c["livenessProbe"], &join(field, "livenessProbe"), true));
    causes.extend(probe(&c["readinessProbe"], &join(field, "readinessProbe"), false));
    causes.extend(probe(&c["startupProbe"], &join(field, "startupProbe"), true));
    for (i, m) in c["volumeMounts"].as_array().into_iter().flatten().enumerate() {
        let mp = format!("{field}.volumeMounts[{i}]");
        let n = m["name"].as_str().unwrap_or("");
        if n.is_empty() {
            causes.push(Cause::required(&join(&mp, "name"), ""));
        } else if !volumes.contains(n) {
            causes.push(Cause::not_found(&join(&mp, "name"), n));
        }
        if m["mountPath"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(&join(&mp, "mountPath"), ""));
        }
    }
    causes
}

/// `ValidatePodSpec` (the same for Pods and pod templates).
pub fn pod_spec(spec: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut volumes = HashSet::new();
    for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let np = format!("{field}.volumes[{i}].name");
        let n = v["name"].as_str().unwrap_or("");
        if n.is_empty() {
            causes.push(Cause::required(&np, ""));
        } else {
            causes.extend(super::name(super::NameRule::Dns1123Label, &np, n));
            if !volumes.insert(n.to_string()) {
                causes.push(Cause::duplicate(&np, n));
            }
        }
    }
    let mut names = HashSet::new();
    let mut check_names = |list: &str, causes: &mut Vec<Cause>| {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            if let Some(n) = c["name"].as_str().filter(|n| !n.is_empty()) {
                if !names.insert(n.to_string()) {
                    causes.push(Cause::duplicate(&format!("{field}.{list}[{i}].name"), n));
                }
            }
        }
    };
    match spec["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                causes.extend(container(c, &format!("{field}.containers[{i}]"), &volumes));
            }
            check_names("containers", &mut causes);
        }
        _ => causes.push(Cause::required(&join(field, "containers"), "")),
    }
    for (i, c) in spec["initContainers"].as_array().into_iter().flatten().enumerate() {
        causes.extend(container(c, &format!("{field}.initContainers[{i}]"), &volumes));
    }
    check_names("initContainers", &mut causes);
    match spec["restartPolicy"].as_str() {
        None | Some("Always" | "OnFailure" | "Never") => {}
        Some(other) => causes.push(Cause::not_supported(&join(field, "restartPolicy"), other, &["Always", "OnFailure", "Never"])),
    }
    match spec["dnsPolicy"].as_str() {
        None | Some("ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None") => {}
        Some(other) => causes.push(Cause::not_supported(
            &join(field, "dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if spec["dnsPolicy"] == "None" && spec["dnsConfig"].is_null() {
        causes.push(Cause::required(&join(field, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"));
    }
    if let Some(n) = spec["activeDeadlineSeconds"].as_i64() {
        if !(1..=i64::from(i32::MAX)).contains(&n) {
            causes.push(Cause::invalid_raw(
                &join(field, "activeDeadlineSeconds"),
                &n.to_string(),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    causes.extend(labels(&spec["nodeSelector"], &join(field, "nodeSelector")));
    for key in ["serviceAccountName", "nodeName"] {
        if let Some(n) = spec[key].as_str().filter(|n| !n.is_empty()) {
            causes.extend(super::name(super::NameRule::Dns1123Subdomain, &join(field, key), n));
        }
    }
    for key in ["hostname", "subdomain"] {
        if let Some(n) = spec[key].as_str().filter(|n| !n.is_empty()) {
            causes.extend(super::name(super::NameRule::Dns1123Label, &join(field, key), n));
        }
    }
    causes.extend(tolerations(&spec["tolerations"], &join(field, "tolerations")));
    causes
}

fn tolerations(v: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, t) in v.as_array().into_iter().flatten().enumerate() {
        let tp = format!("{field}[{i}]");
        let key = t["key"].as_str().unwrap_or("");
        if !key.is_empty() {
            for m in super::qualified_name(key) {
                causes.push(Cause::invalid(&join(&tp, "key"), key, &m));
            }
        }
        match t["operator"].as_str().unwrap_or("") {
            "" | "Equal" => {}
            "Exists" => {
                if t["value"].as_str().is_some_and(|v| !v.is_empty()) {
                    causes.push(Cause::invalid(
                        &join(&tp, "operator"),
                        t["value"].as_str().unwrap_or(""),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => causes.push(Cause::not_supported(&join(&tp, "operator"), other, &["Equal", "Exists"])),
        }
        let effect = t["effect"].as_str().unwrap_or("");
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            causes.push(Cause::not_supported(&join(&tp, "effect"), effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]));
        }
        if !t["tolerationSeconds"].is_null() && effect != "NoExecute" {
            causes.push(Cause::invalid(&join(&tp, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"));
        }
    }
    causes
}

/// The template's own labels and annotations, on `<field>.labels` and `<field>.annotations`
/// (upstream's paths skip `metadata` here).
pub fn template_meta(t: &Value, field: &str) -> Vec<Cause> {
    let mut causes = labels(&t["metadata"]["labels"], &join(field, "labels"));
    causes.extend(super::annotations(&t["metadata"]["annotations"], &join(field, "annotations")));
    causes
}

/// `ValidatePodTemplateSpec` at `field` (e.g. `spec.template`).
pub fn pod_template(t: &Value, field: &str) -> Vec<Cause> {
    let mut causes = template_meta(t, field);
    causes.extend(pod_spec(&t["spec"], &join(field, "spec")));
    causes
}

/// A new Pod: its spec, then what only pods check (`validateContainersOnlyForPod`).
pub fn validate_pod(obj: &Value) -> Vec<Cause> {
    let mut causes = pod_spec(&obj["spec"], "spec");
    for list in ["containers", "initContainers"] {
        for (i, c) in obj["spec"][list].as_array().into_iter().flatten().enumerate() {
            let image = c["image"].as_str().unwrap_or("");
            if image.trim() != image {
                causes.push(Cause::invalid(&format!("spec.{list}[{i}].image"), image, "must not have leading or trailing whitespace"));
            }
        }
    }
    causes
}

/// The fields of a pod spec an update may change, as upstream lists them.
pub const POD_UPDATE_MESSAGE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds, added tolerations and a few other
/// fields may change.
pub fn validate_pod_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = validate_pod(new);
    let (ns, os) = (&new["spec"], &old["spec"]);
    for list in ["containers", "initContainers"] {
        let (nl, ol) = (ns[list].as_array(), os[list].as_array());
        if let (Some(nl), Some(ol)) = (nl, ol) {
            if nl.len() == ol.len() {
                for (i, c) in nl.iter().enumerate() {
                    if c["image"].as_str().is_none_or(str::is_empty) && ol[i]["image"].as_str().is_some_and(|s| !s.is_empty()) {
                        causes.push(Cause::required(&format!("spec.{list}[{i}].image"), ""));
                    }
                }
            }
        }
    }
    match (os["activeDeadlineSeconds"].as_i64(), ns["activeDeadlineSeconds"].as_i64()) {
        (Some(_), None) => causes.push(Cause::invalid_raw(
            "spec.activeDeadlineSeconds",
            // Go's field errors print a nil pointer as the string "null", quoted.
            "\"null\"",
            "must not update from a positive integer to nil value",
        )),
        (Some(o), Some(n)) if n > o => causes.push(Cause::invalid_raw(
            "spec.activeDeadlineSeconds",
            &n.to_string(),
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    // Compare everything else with the updatable fields taken from the old spec.
    let mut munged = ns.clone();
    for list in ["containers", "initContainers"] {
        if let (Some(nl), Some(ol)) = (munged[list].as_array_mut(), os[list].as_array()) {
            if nl.len() == ol.len() {
                for (c, o) in nl.iter_mut().zip(ol) {
                    if let Some(m) = c.as_object_mut() {
                        match o.get("image") {
                            Some(img) => m.insert("image".into(), img.clone()),
                            None => m.remove("image"),
                        };
                    }
                }
            }
        }
    }
    let old_tolerations = os["tolerations"].as_array().cloned().unwrap_or_default();
    let new_tolerations = ns["tolerations"].as_array().cloned().unwrap_or_default();
    let additions_only = old_tolerations.iter().all(|t| new_tolerations.contains(t));
    for key in ["activeDeadlineSeconds", "terminationGracePeriodSeconds", "schedulingGates"] {
        copy_field(&mut munged, os, key);
    }
    if additions_only {
        copy_field(&mut munged, os, "tolerations");
    }
    if !spec_equal(&munged, os) {
        causes.push(Cause::forbidden("spec", &format!("{POD_UPDATE_MESSAGE}\n{}", spec_diff(os, &munged))));
    }
    causes
}

fn copy_field(to: &mut Value, from: &Value, key: &str) {
    if let Some(m) = to.as_object_mut() {
        match from.get(key) {
            Some(v) => m.insert(key.into(), v.clone()),
            None => m.remove(key),
        };
    }
}

/// Equality that treats absent, null and empty collections alike (Go's semantic equality of
/// nil and empty).
fn spec_equal(a: &Value, b: &Value) -> bool {
    strip_empty(a.clone()) == strip_empty(b.clone())
}

fn strip_empty(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, strip_empty(v)))
                .filter(|(_, v)| !(v.is_null() || v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_empty).collect()),
        other => other,
    }
}

/// A short account of what differs between two specs, field by field.
fn spec_diff(old: &Value, new: &Value) -> String {
    let (o, n) = (strip_empty(old.clone()), strip_empty(new.clone()));
    let empty = Map::new();
    let (om, nm) = (o.as_object().unwrap_or(&empty), n.as_object().unwrap_or(&empty));
    let mut keys: Vec<&String> = om.keys().chain(nm.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (a, b) = (om.get(k), nm.get(k));
        if a != b {
            if let Some(a) = a {
                out.push_str(&format!("- \t{k}: {a},\n"));
            }
            if let Some(b) = b {
                out.push_str(&format!("+ \t{k}: {b},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

/// Render a template's labels as upstream prints them for selector mismatches.
pub fn template_labels(t: &Value) -> String {
    go::string_map(&t["metadata"]["labels"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(causes: Vec<Cause>) -> (String, String) {
        assert_eq!(causes.len(), 1, "{causes:?}");
        (causes[0].field.clone(), causes[0].message.clone())
    }

    fn pod(containers: Value) -> Value {
        json!({"spec": {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}})
    }

    #[test]
    fn containers_required() {
        assert_eq!(one(validate_pod(&json!({"spec": {}}))), ("spec.containers".into(), "Required value".into()));
    }

    #[test]
    fn images() {
        let p = pod(json!([{"name": "c"}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[0].image".into(), "Required value".into()));
        assert_eq!(one(pod_template(&json!({"spec": p["spec"]}), "spec.template")), ("spec.template.spec.containers[0].image".into(), "Required value".into()));
        // Whitespace around an image is refused for pods only (templates use " " as a token).
        let p = pod(json!([{"name": "c", "image": " "}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[0].image".into(), "Invalid value: \" \": must not have leading or trailing whitespace".into()));
        assert!(pod_template(&json!({"spec": p["spec"]}), "spec.template").is_empty());
    }

    #[test]
    fn container_names() {
        let p = pod(json!([{"name": "Web", "image": "x"}]));
        let (f, m) = one(validate_pod(&p));
        assert_eq!(f, "spec.containers[0].name");
        assert!(m.starts_with("Invalid value: \"Web\": a lowercase RFC 1123 label must consist of"), "{m}");
        let p = pod(json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[1].name".into(), "Duplicate value: \"a\"".into()));
        let p = pod(json!([{"image": "x"}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[0].name".into(), "Required value".into()));
    }

    #[test]
    fn ports() {
        let p = pod(json!([{"name": "a", "image": "x", "ports": [{"containerPort": 0}]}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].ports[0].containerPort".into(), "Invalid value: 0: must be between 1 and 65535, inclusive".into())
        );
        let p = pod(json!([{"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].ports[0].protocol".into(), "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into())
        );
        let p = pod(json!([{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 70000}]}]));
        assert_eq!(one(validate_pod(&p)).0, "spec.containers[0].ports[0].hostPort");
    }

    #[test]
    fn restart_and_dns_policy() {
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["restartPolicy"] = json!("Sometimes");
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.restartPolicy".into(), "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into())
        );
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["dnsPolicy"] = json!("Cluster");
        assert_eq!(one(validate_pod(&p)).0, "spec.dnsPolicy");
    }

    #[test]
    fn resources_requests_within_limits() {
        let p = pod(json!([{"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].resources.requests".into(), "Invalid value: \"2\": must be less than or equal to cpu limit of 1".into())
        );
        let p = pod(json!([{"name": "a", "image": "x", "resources": {"requests": {"memory": "-1"}}}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].resources.requests[memory]".into(), "Invalid value: \"-1\": must be greater than or equal to 0".into())
        );
        let p = pod(json!([{"name": "a", "image": "x", "resources": {"limits": {"gpu": "1"}}}]));
        assert_eq!(one(validate_pod(&p)).1, "Invalid value: \"gpu\": must be a standard resource for containers");
    }

    #[test]
    fn probes_and_mounts() {
        let p = pod(json!([{"name": "a", "image": "x", "livenessProbe": {"periodSeconds": 10}}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[0].livenessProbe".into(), "Required value: must specify a handler type".into()));
        let p = pod(json!([{"name": "a", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[0].livenessProbe.successThreshold".into(), "Invalid value: 2: must be 1".into()));
        let p = pod(json!([{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]));
        assert_eq!(one(validate_pod(&p)), ("spec.containers[0].volumeMounts[0].name".into(), "Not found: \"v\"".into()));
    }

    #[test]
    fn tolerations_and_env() {
        let mut p = pod(json!([{"name": "a", "image": "x", "env": [{"name": "A=B"}]}]));
        assert_eq!(one(validate_pod(&p)).0, "spec.containers[0].env[0].name");
        p["spec"]["containers"][0]["env"] = json!([]);
        p["spec"]["tolerations"] = json!([{"key": "k", "operator": "Maybe"}]);
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.tolerations[0].operator".into(), "Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"".into())
        );
        p["spec"]["tolerations"] = json!([{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]);
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.tolerations[0].effect".into(), "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set".into())
        );
    }

    #[test]
    fn pod_updates() {
        let old = pod(json!([{"name": "a", "image": "x:1", "ports": [{"containerPort": 80}]}]));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("x:2");
        new["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
        assert!(validate_pod_update(&new, &old).is_empty());
        let mut new = old.clone();
        new["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(81);
        let (f, m) = one(validate_pod_update(&new, &old));
        assert_eq!(f, "spec");
        assert!(m.starts_with(&format!("Forbidden: {POD_UPDATE_MESSAGE}\n")), "{m}");
        let mut older = old.clone();
        older["spec"]["activeDeadlineSeconds"] = json!(10);
        let mut new = older.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(20);
        assert_eq!(
            one(validate_pod_update(&new, &older)),
            ("spec.activeDeadlineSeconds".into(), "Invalid value: 20: must be less than or equal to previous value".into())
        );
    }

    #[test]
    fn volumes_and_spec_fields() {
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]);
        assert_eq!(one(validate_pod(&p)), ("spec.volumes[1].name".into(), "Duplicate value: \"v\"".into()));
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["activeDeadlineSeconds"] = json!(0);
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.activeDeadlineSeconds".into(), "Invalid value: 0: must be between 1 and 2147483647, inclusive".into())
        );
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["dnsPolicy"] = json!("None");
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.dnsConfig".into(), "Required value: must provide `dnsConfig` when `dnsPolicy` is None".into())
        );
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["hostname"] = json!("Bad_Host");
        assert_eq!(one(validate_pod(&p)).0, "spec.hostname");
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["nodeSelector"] = json!({"bad key": "v"});
        assert_eq!(one(validate_pod(&p)).0, "spec.nodeSelector");
        let p = pod(json!([{"name": "a", "image": "x", "ports": [{"name": "Http", "containerPort": 80}]}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].ports[0].name".into(), "Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into())
        );
        let p = pod(json!([{"name": "a", "image": "x", "readinessProbe": {"httpGet": {"port": 0}}}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].readinessProbe.httpGet.port".into(), "Invalid value: 0: must be between 1 and 65535, inclusive".into())
        );
        let p = pod(json!([{"name": "a", "image": "x", "imagePullPolicy": "Sometimes"}]));
        assert_eq!(
            one(validate_pod(&p)),
            ("spec.containers[0].imagePullPolicy".into(), "Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"".into())
        );
        let mut p = pod(json!([{"name": "a", "image": "x"}]));
        p["spec"]["initContainers"] = json!([{"name": "a", "image": "y"}]);
        assert_eq!(one(validate_pod(&p)), ("spec.initContainers[0].name".into(), "Duplicate value: \"a\"".into()));
    }

    #[test]
    fn templates_check_labels() {
        let t = json!({"metadata": {"labels": {"ok": "-bad-"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        assert_eq!(
            one(pod_template(&t, "spec.template")),
            ("spec.template.labels".into(), format!("Invalid value: \"-bad-\": {}", crate::validation::LABEL_VALUE_MSG))
        );
        let t = json!({"metadata": {"annotations": {"bad key": "v"}}, "spec": {"containers": [{"name": "c"}]}});
        let causes: Vec<(String, String)> = pod_template(&t, "spec.template").into_iter().map(|c| (c.field, c.message)).collect();
        assert_eq!(
            causes,
            [
                ("spec.template.annotations".into(), format!("Invalid value: \"bad key\": {}", crate::validation::QUALIFIED_NAME_MSG)),
                ("spec.template.spec.containers[0].image".into(), "Required value".into()),
            ]
        );
    }

    #[test]
    fn selectors() {
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert_eq!(
            one(label_selector(&sel, "spec.selector")),
            ("spec.selector.matchExpressions[0].values".into(), "Required value: must be specified when `operator` is 'In' or 'NotIn'".into())
        );
        assert!(selector_matches(&json!({"matchLabels": {"a": "b"}}), &json!({"a": "b", "c": "d"})));
        assert!(!selector_matches(&json!({"matchLabels": {"a": "b"}}), &json!({"a": "c"})));
        assert!(!selector_matches(&json!({"matchLabels": {"a": "b"}}), &Value::Null));
    }
}
