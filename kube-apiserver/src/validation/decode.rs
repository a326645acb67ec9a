//! Decoding errors as upstream's JSON decoder words them.
//!
//! Why: bodies are decoded through k8s-openapi's structs, whose serde errors ("invalid type:
//! integer `2`, expected a string") are not what kubectl users see from a real server. Upstream
//! decodes with a fork of Go's `encoding/json`: a value of the wrong JSON type is skipped and the
//! first such error reported after the whole body is read (`json: cannot unmarshal number into
//! Go struct field ConfigMap.data of type string`), while a value that a type's own
//! `UnmarshalJSON` refuses (quantities, int-or-strings, times) stops decoding at once and wins.
//! Go types come from the server's OpenAPI schemas, plus a table of the named types the schema
//! cannot tell (`v1.ResourceList`, `v1.Protocol`, ...).

use serde_json::Value;

use super::quantity;
use crate::fieldvalidation::resolve;

/// Why a body cannot be decoded, as the text after `<Kind> in version "<v>" cannot be handled
/// as a <Kind>: `; `None` when every value fits its field. `kind` names the root struct.
pub fn decode_error(kind: &str, schema: &'static Value, value: &Value) -> Option<String> {
    let mut walk = Walk { path: Vec::new(), saved: None };
    match walk.value(schema, value, kind, None) {
        Err(fatal) => Some(fatal),
        Ok(()) => walk.saved,
    }
}

struct Walk {
    /// JSON field names from the root (no indexes, no map keys), as Go's error context keeps them.
    path: Vec<String>,
    /// The first non-fatal error (Go's `saveError`).
    saved: Option<String>,
}

/// Go's `UnmarshalTypeError` text with its struct-field context.
fn type_error(what: &str, owner: &str, path: &[String], go_type: &str) -> String {
    format!("json: cannot unmarshal {what} into Go struct field {owner}.{} of type {go_type}", path.join("."))
}

impl Walk {
    fn save(&mut self, e: String) {
        self.saved.get_or_insert(e);
    }

    /// Check `value` against `node`; `owner` is the innermost Go struct, `named` the Go type the
    /// table gives the field (for named scalars, slices and maps).
    fn value(&mut self, node: &'static Value, value: &Value, owner: &str, named: Option<&Named>) -> Result<(), String> {
        if value.is_null() {
            return Ok(());
        }
        if let Some(name) = ref_name(node) {
            match name {
                "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                    let ok = match value {
                        Value::String(s) => quantity::parse(s).is_some(),
                        Value::Number(_) => true,
                        _ => false,
                    };
                    return if ok { Ok(()) } else { Err(quantity::FORMAT_ERROR.to_string()) };
                }
                // `IntOrString.UnmarshalJSON` decodes anything but a string into an int32.
                "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                    return match value {
                        Value::String(_) => Ok(()),
                        Value::Number(n) if int_fits(n, "int32") => Ok(()),
                        Value::Number(n) => Err(type_error(&format!("number {n}"), owner, &self.path, "int32")),
                        other => Err(type_error(json_kind(other), owner, &self.path, "int32")),
                    };
                }
                "io.k8s.apimachinery.pkg.apis.meta.v1.Time" | "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => {
                    let micro = name.ends_with("MicroTime");
                    return match value {
                        // (MicroTime's layout has fractional seconds; its errors are not modelled.)
                        Value::String(s) => match go_time_error(s).filter(|_| !micro) {
                            None => Ok(()),
                            Some(e) => Err(e),
                        },
                        other => Err(type_error(json_kind(other), owner, &self.path, "string")),
                    };
                }
                _ => {}
            }
        }
        let s = resolve(node);
        let go_type = || named.map(Named::go_type).unwrap_or_else(|| go_type(node));
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            let Value::Object(m) = value else {
                self.save(type_error(json_kind(value), owner, &self.path, &go_type()));
                return Ok(());
            };
            let def = ref_name(node);
            let inner = def.and_then(|n| n.rsplit('.').next()).unwrap_or(owner).to_string();
            for (k, v) in m {
                let Some(child) = props.get(k) else { continue };
                let named = def.and_then(|d| named_type(d, k));
                self.path.push(k.clone());
                let r = self.value(child, v, &inner, named.as_ref());
                self.path.pop();
                r?;
            }
            return Ok(());
        }
        if let Some(values) = s.get("additionalProperties").filter(|v| v.is_object()) {
            let Value::Object(m) = value else {
                self.save(type_error(json_kind(value), owner, &self.path, &go_type()));
                return Ok(());
            };
            let elem = named.and_then(Named::elem);
            for v in m.values() {
                self.value(values, v, owner, elem.as_ref())?;
            }
            return Ok(());
        }
        if let Some(items) = s.get("items") {
            let Value::Array(a) = value else {
                self.save(type_error(json_kind(value), owner, &self.path, &go_type()));
                return Ok(());
            };
            let elem = named.and_then(Named::elem);
            for v in a {
                self.value(items, v, owner, elem.as_ref())?;
            }
            return Ok(());
        }
        match (s["type"].as_str(), s["format"].as_str(), value) {
            // `[]byte`: base64 text; a bad one is saved without field context.
            (Some("string"), Some("byte"), Value::String(text)) => {
                if let Some(at) = base64_error(text.as_bytes()) {
                    self.save(format!("illegal base64 data at input byte {at}"));
                }
            }
            (Some("string"), _, Value::String(_)) | (Some("boolean"), _, Value::Bool(_)) | (Some("number"), _, Value::Number(_)) => {}
            (Some("integer"), format, Value::Number(n)) => {
                if !int_fits(n, format.unwrap_or("int64")) {
                    self.save(type_error(&format!("number {n}"), owner, &self.path, &go_type()));
                }
            }
            (Some("string" | "boolean" | "number" | "integer"), _, other) => {
                self.save(type_error(json_kind(other), owner, &self.path, &go_type()));
            }
            _ => {}
        }
        Ok(())
    }
}

fn int_fits(n: &serde_json::Number, format: &str) -> bool {
    match n.as_i64() {
        Some(i) if format == "int32" => i32::try_from(i).is_ok(),
        Some(_) => true,
        None => false,
    }
}

/// JSON kinds as Go's decoder names them.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Definition name of a `$ref` node (`io.k8s.api.core.v1.ContainerPort`), also when wrapped
/// in a single `allOf` (OpenAPI v3 style).
fn ref_name(node: &Value) -> Option<&str> {
    let r = node
        .get("$ref")
        .or_else(|| node.get("allOf").and_then(Value::as_array).and_then(|a| a.first()).and_then(|f| f.get("$ref")))
        .and_then(Value::as_str)?;
    Some(r.trim_start_matches("#/definitions/").trim_start_matches("#/components/schemas/"))
}

/// `pkg.Type` of a definition name (`io.k8s.api.core.v1.PodSpec` is `v1.PodSpec`).
fn short(def: &str) -> String {
    let mut parts = def.rsplit('.');
    let (ty, pkg) = (parts.next().unwrap_or(def), parts.next().unwrap_or(""));
    format!("{pkg}.{ty}")
}

/// Go's name for the type a schema node describes (`v1.PodSpec`, `[]string`, `map[string]string`).
fn go_type(node: &'static Value) -> String {
    if let Some(name) = ref_name(node) {
        return short(name);
    }
    let s = resolve(node);
    if let Some(items) = s.get("items") {
        return format!("[]{}", go_type(items));
    }
    if let Some(values) = s.get("additionalProperties").filter(|v| v.is_object()) {
        return format!("map[string]{}", go_type(values));
    }
    match (s["type"].as_str(), s["format"].as_str()) {
        (Some("string"), Some("byte")) => "[]uint8".into(),
        (Some("string"), _) => "string".into(),
        (Some("integer"), Some(f @ ("int32" | "int64"))) => f.into(),
        (Some("integer"), _) => "int".into(),
        (Some("number"), _) => "float64".into(),
        (Some("boolean"), _) => "bool".into(),
        _ => "interface {}".into(),
    }
}

/// A Go type the schema cannot name: a named scalar (`v1.Protocol`), or a named or typed
/// slice or map whose elements may be named too.
#[derive(Debug, Clone, Copy)]
enum Named {
    Scalar(&'static str),
    /// `[]v1.Capability`: the element type.
    SliceOf(&'static str),
    /// A named map (`v1.ResourceList`) and its element type, if named.
    Map(&'static str, Option<&'static str>),
}

impl Named {
    fn go_type(&self) -> String {
        match self {
            Named::Scalar(t) | Named::Map(t, _) => (*t).to_string(),
            Named::SliceOf(t) => format!("[]{t}"),
        }
    }
    fn elem(&self) -> Option<Named> {
        match self {
            Named::SliceOf(t) => Some(Named::Scalar(t)),
            Named::Map(_, Some(t)) => Some(Named::Scalar(t)),
            _ => None,
        }
    }
}

/// Named Go types of fields, by definition and property.
fn named_type(def: &str, prop: &str) -> Option<Named> {
    use Named::*;
    let (group, ty) = def.strip_prefix("io.k8s.api.").map(|r| r.rsplit_once('.').unwrap_or(("", r)))?;
    Some(match (group, ty, prop) {
        ("core.v1", "ResourceRequirements" | "VolumeResourceRequirements", "limits" | "requests") => Map("v1.ResourceList", None),
        ("core.v1", "PodSpec", "overhead") => Map("v1.ResourceList", None),
        ("core.v1", "ResourceQuotaSpec" | "ResourceQuotaStatus", "hard" | "used") => Map("v1.ResourceList", None),
        ("core.v1", "NodeStatus", "capacity" | "allocatable") => Map("v1.ResourceList", None),
        ("core.v1", "LimitRangeItem", "max" | "min" | "default" | "defaultRequest" | "maxLimitRequestRatio") => Map("v1.ResourceList", None),
        ("core.v1", "PersistentVolumeSpec" | "PersistentVolumeClaimStatus", "capacity") => Map("v1.ResourceList", None),
        ("core.v1", "Container" | "EphemeralContainer", "imagePullPolicy") => Scalar("v1.PullPolicy"),
        ("core.v1", "Container" | "EphemeralContainer", "terminationMessagePolicy") => Scalar("v1.TerminationMessagePolicy"),
        ("core.v1", "ContainerPort" | "ServicePort" | "EndpointPort", "protocol") => Scalar("v1.Protocol"),
        ("core.v1", "PodSpec", "restartPolicy") => Scalar("v1.RestartPolicy"),
        ("core.v1", "PodSpec", "dnsPolicy") => Scalar("v1.DNSPolicy"),
        ("core.v1", "PodSpec", "preemptionPolicy") => Scalar("v1.PreemptionPolicy"),
        ("core.v1", "ServiceSpec", "type") => Scalar("v1.ServiceType"),
        ("core.v1", "ServiceSpec", "sessionAffinity") => Scalar("v1.ServiceAffinity"),
        ("core.v1", "ServiceSpec", "externalTrafficPolicy") => Scalar("v1.ServiceExternalTrafficPolicy"),
        ("core.v1", "ServiceSpec", "internalTrafficPolicy") => Scalar("v1.ServiceInternalTrafficPolicy"),
        ("core.v1", "ServiceSpec", "ipFamilyPolicy") => Scalar("v1.IPFamilyPolicy"),
        ("core.v1", "ServiceSpec", "ipFamilies") => SliceOf("v1.IPFamily"),
        ("core.v1", "Secret", "type") => Scalar("v1.SecretType"),
        ("core.v1", "Toleration", "operator") => Scalar("v1.TolerationOperator"),
        ("core.v1", "Toleration" | "Taint", "effect") => Scalar("v1.TaintEffect"),
        ("core.v1", "NodeSelectorRequirement", "operator") => Scalar("v1.NodeSelectorOperator"),
        ("core.v1", "Capabilities", "add" | "drop") => SliceOf("v1.Capability"),
        ("core.v1", "HTTPGetAction", "scheme") => Scalar("v1.URIScheme"),
        ("core.v1", "VolumeMount", "mountPropagation") => Scalar("v1.MountPropagationMode"),
        ("core.v1", "PersistentVolumeClaimSpec" | "PersistentVolumeSpec", "accessModes") => SliceOf("v1.PersistentVolumeAccessMode"),
        ("core.v1", "PersistentVolumeClaimSpec" | "PersistentVolumeSpec", "volumeMode") => Scalar("v1.PersistentVolumeMode"),
        ("core.v1", "NamespaceSpec", "finalizers") => SliceOf("v1.FinalizerName"),
        ("apps.v1", "DeploymentStrategy", "type") => Scalar("v1.DeploymentStrategyType"),
        ("apps.v1", "StatefulSetSpec", "podManagementPolicy") => Scalar("v1.PodManagementPolicyType"),
        ("apps.v1", "StatefulSetUpdateStrategy", "type") => Scalar("v1.StatefulSetUpdateStrategyType"),
        ("apps.v1", "DaemonSetUpdateStrategy", "type") => Scalar("v1.DaemonSetUpdateStrategyType"),
        ("batch.v1", "JobSpec", "completionMode") => Scalar("v1.CompletionMode"),
        ("batch.v1", "CronJobSpec", "concurrencyPolicy") => Scalar("v1.ConcurrencyPolicy"),
        ("networking.v1", "HTTPIngressPath", "pathType") => Scalar("v1.PathType"),
        _ => return None,
    })
    .or_else(|| (def == "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement" && prop == "operator").then_some(Scalar("v1.LabelSelectorOperator")))
}

/// Where Go's `base64.StdEncoding` stops on `src` (`CorruptInputError`), if it does.
fn base64_error(src: &[u8]) -> Option<usize> {
    let valid = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let newline = |c: u8| c == b'\n' || c == b'\r';
    let mut si = 0;
    while si < src.len() {
        let mut j = 0;
        loop {
            if si == src.len() {
                // A partial quantum at the end: padding was required.
                return if j == 0 { None } else { Some(si - j) };
            }
            let c = src[si];
            si += 1;
            if valid(c) {
                j += 1;
                if j == 4 {
                    break;
                }
                continue;
            }
            if newline(c) {
                continue;
            }
            if c != b'=' || j < 2 {
                return Some(si - 1);
            }
            if j == 2 {
                // "==" is expected; the first '=' is consumed.
                while si < src.len() && newline(src[si]) {
                    si += 1;
                }
                if si == src.len() {
                    return Some(src.len());
                }
                if src[si] != b'=' {
                    return Some(si - 1);
                }
                si += 1;
            }
            while si < src.len() && newline(src[si]) {
                si += 1;
            }
            // Anything after the padding is garbage.
            return (si < src.len()).then_some(si);
        }
    }
    None
}

/// Go's `time.Parse(time.RFC3339, s)` error for a string `metav1.Time` cannot read.
fn go_time_error(s: &str) -> Option<String> {
    const LAYOUT: &str = "2006-01-02T15:04:05Z07:00";
    let elem_err = |rest: &str, elem: &str| {
        Some(format!("parsing time {} as {}: cannot parse {} as {}", go_quote(s), go_quote(LAYOUT), go_quote(rest), go_quote(elem)))
    };
    let range_err = |what: &str| Some(format!("parsing time {}: {what} out of range", go_quote(s)));
    let digits = |v: &str, n: usize| v.len() >= n && v.as_bytes()[..n].iter().all(u8::is_ascii_digit);
    let mut v = s;
    // Year: four characters, read as a number.
    if v.len() < 4 || !v.is_char_boundary(4) || !digits(v, 4) {
        return elem_err(v, "2006");
    }
    let year: i64 = v[..4].parse().unwrap_or(0);
    v = &v[4..];
    let mut fields = [0i64; 5];
    // (literal before, layout element, fixed width, range name, max)
    let steps: [(&str, &str, bool, &str, i64); 5] = [
        ("-", "01", true, "month", 12),
        ("-", "02", true, "day", 31),
        ("T", "15", false, "hour", 23),
        (":", "04", true, "minute", 59),
        (":", "05", true, "second", 59),
    ];
    for (i, (lit, elem, fixed, name, max)) in steps.iter().enumerate() {
        let Some(rest) = v.strip_prefix(lit) else { return elem_err(v, lit) };
        v = rest;
        let n = if digits(v, 2) {
            2
        } else if !fixed && digits(v, 1) {
            1
        } else {
            return elem_err(v, elem);
        };
        let value: i64 = v[..n].parse().unwrap_or(0);
        v = &v[n..];
        let min = if *name == "month" || *name == "day" { 1 } else { 0 };
        if *name != "day" && (value < min || value > *max) {
            return range_err(name);
        }
        fields[i] = value;
    }
    // Fractional seconds are read even though the layout has none.
    if v.len() >= 2 && (v.starts_with('.') || v.starts_with(',')) && v.as_bytes()[1].is_ascii_digit() {
        let end = v[1..].find(|c: char| !c.is_ascii_digit()).map(|e| e + 1).unwrap_or(v.len());
        v = &v[end..];
    }
    if let Some(rest) = v.strip_prefix('Z') {
        v = rest;
    } else {
        let b = v.as_bytes();
        let ok = b.len() >= 6 && (b[0] == b'+' || b[0] == b'-') && b[3] == b':' && digits(&v[1..], 2) && digits(&v[4..], 2);
        if !ok {
            return elem_err(v, "Z07:00");
        }
        v = &v[6..];
    }
    if !v.is_empty() {
        return Some(format!("parsing time {}: extra text: {}", go_quote(s), go_quote(v)));
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (month, day) = (fields[0], fields[1]);
    if day < 1 || day > days[(month - 1) as usize] {
        return range_err("day");
    }
    None
}

fn go_quote(s: &str) -> String {
    super::go::quote(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(group: &str, kind: &str, v: Value) -> Option<String> {
        decode_error(kind, crate::fieldvalidation::root_schema(group, "v1", kind).unwrap(), &v)
    }

    fn deploy(spec: Value) -> Option<String> {
        err("apps", "Deployment", json!({"spec": spec}))
    }

    fn pod_container(c: Value) -> Option<String> {
        err("", "Pod", json!({"spec": {"containers": [c]}}))
    }

    #[test]
    fn type_errors_as_go_words_them() {
        assert_eq!(
            err("", "ConfigMap", json!({"data": {"a": 2}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field ConfigMap.data of type string")
        );
        assert_eq!(
            pod_container(json!({"name": "c", "ports": [{"containerPort": "80"}]})).as_deref(),
            Some("json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32")
        );
        assert_eq!(
            deploy(json!({"replicas": 1.5})).as_deref(),
            Some("json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32")
        );
        assert_eq!(
            deploy(json!({"replicas": 99999999999i64})).as_deref(),
            Some("json: cannot unmarshal number 99999999999 into Go struct field DeploymentSpec.spec.replicas of type int32")
        );
        assert_eq!(
            deploy(json!({"template": {"spec": {"containers": [{"name": "c", "args": "x"}]}}})).as_deref(),
            Some("json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.args of type []string")
        );
        assert_eq!(
            deploy(json!({"template": {"spec": {"containers": [{"name": "c", "args": [1]}]}}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.args of type string")
        );
        assert_eq!(deploy(json!({"paused": "yes"})).as_deref(), Some("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"));
        assert_eq!(
            deploy(json!({"template": "x"})).as_deref(),
            Some("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec")
        );
        assert_eq!(
            err("apps", "Deployment", json!({"metadata": {"labels": {"v": 1.0}}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string")
        );
        // Named types the schema does not name.
        assert_eq!(
            pod_container(json!({"name": "c", "resources": {"limits": "1"}})).as_deref(),
            Some("json: cannot unmarshal string into Go struct field ResourceRequirements.spec.containers.resources.limits of type v1.ResourceList")
        );
        assert_eq!(
            err("", "Pod", json!({"spec": {"restartPolicy": 1}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field PodSpec.spec.restartPolicy of type v1.RestartPolicy")
        );
        assert_eq!(
            pod_container(json!({"name": "c", "securityContext": {"capabilities": {"add": [1]}}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field Capabilities.spec.containers.securityContext.capabilities.add of type v1.Capability")
        );
        assert_eq!(
            err("", "Secret", json!({"data": {"a": 1}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field Secret.data of type []uint8")
        );
        // IntOrString and quantities take both forms; null is always accepted.
        assert_eq!(
            deploy(json!({"strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}, "replicas": null,
                "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}}})),
            None
        );
    }

    #[test]
    fn unmarshalers_stop_decoding_and_win() {
        // IntOrString reads anything but a string as an int32, with the field's context.
        assert_eq!(
            deploy(json!({"strategy": {"rollingUpdate": {"maxSurge": true}}})).as_deref(),
            Some("json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32")
        );
        assert_eq!(
            err("", "Service", json!({"spec": {"ports": [{"port": 80, "targetPort": 1.5}]}})).as_deref(),
            Some("json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.targetPort of type int32")
        );
        // A malformed quantity beats an earlier type error.
        assert_eq!(
            err("", "Pod", json!({"metadata": {"labels": {"a": 1}}, "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": true}}}]}}))
                .as_deref(),
            Some(quantity::FORMAT_ERROR)
        );
        assert_eq!(
            err("", "ConfigMap", json!({"metadata": {"creationTimestamp": 5}})).as_deref(),
            Some("json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string")
        );
        assert_eq!(
            err("", "ConfigMap", json!({"metadata": {"creationTimestamp": "x"}})).as_deref(),
            Some(r#"parsing time "x" as "2006-01-02T15:04:05Z07:00": cannot parse "x" as "2006""#)
        );
    }

    #[test]
    fn base64_like_go() {
        assert_eq!(base64_error(b"YWJj"), None);
        assert_eq!(base64_error(b"YQ=="), None);
        assert_eq!(base64_error(b"YWI="), None);
        assert_eq!(base64_error(b"YW\nJj"), None);
        assert_eq!(base64_error(b""), None);
        assert_eq!(base64_error(b"!!"), Some(0));
        assert_eq!(base64_error(b"abc"), Some(0));
        assert_eq!(base64_error(b"YWJjZ"), Some(4));
        assert_eq!(base64_error(b"YQ="), Some(3));
        assert_eq!(base64_error(b"Y==="), Some(1));
        assert_eq!(base64_error(b"YQ==YQ=="), Some(4));
        assert_eq!(
            err("", "Secret", json!({"data": {"a": "not base64"}})).as_deref(),
            Some("illegal base64 data at input byte 3")
        );
    }

    #[test]
    fn times_like_go() {
        assert_eq!(go_time_error("2024-02-29T10:00:00Z"), None);
        assert_eq!(go_time_error("2024-02-29T10:00:00.123+02:00"), None);
        assert_eq!(
            go_time_error("2024-13-01T00:00:00Z").as_deref(),
            Some(r#"parsing time "2024-13-01T00:00:00Z": month out of range"#)
        );
        assert_eq!(
            go_time_error("2023-02-29T00:00:00Z").as_deref(),
            Some(r#"parsing time "2023-02-29T00:00:00Z": day out of range"#)
        );
        assert_eq!(
            go_time_error("2024-01-01 00:00:00Z").as_deref(),
            Some(r#"parsing time "2024-01-01 00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 00:00:00Z" as "T""#)
        );
        assert_eq!(
            go_time_error("2024-01-01T00:00:00").as_deref(),
            Some(r#"parsing time "2024-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00""#)
        );
        assert_eq!(
            go_time_error("2024-01-01T00:00:00Zjunk").as_deref(),
            Some(r#"parsing time "2024-01-01T00:00:00Zjunk": extra text: "junk""#)
        );
    }
}
