//! Name and metadata validation with upstream's messages (apimachinery's `validation` package).
//! kubectl users read these messages, so they are kept word for word.

pub mod core_kinds;
pub mod go;
pub mod pod;
pub mod quantity;
pub mod workloads;

use serde_json::Value;

use crate::errors::Cause;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// How a kind's names are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
    /// Any name usable as a URL path segment (RBAC objects).
    PathSegment,
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Errors for a DNS-1123 subdomain (empty = valid).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errs
}

pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_dns1123_label(s) {
        errs.push(DNS1123_LABEL_MSG.to_string());
    }
    errs
}

pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_dns1123_label(s) || !s.as_bytes()[0].is_ascii_lowercase() {
        errs.push(DNS1035_LABEL_MSG.to_string());
    }
    errs
}

pub fn path_segment_name(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Errors for a qualified name such as a label or annotation key (`prefix/name`).
pub fn qualified_name(s: &str) -> Vec<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(dns1123_subdomain(p).into_iter().map(|m| format!("prefix part {m}")));
        }
        if name.contains('/') {
            errs.push(format!("{QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return errs;
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 characters".to_string());
        }
        if !is_qualified_name_part(name) {
            errs.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    errs
}

pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

/// Validate a name under `rule`, as causes on `field`.
pub fn name(rule: NameRule, field: &str, value: &str) -> Vec<Cause> {
    let errs = match rule {
        NameRule::Dns1123Subdomain => dns1123_subdomain(value),
        NameRule::Dns1123Label => dns1123_label(value),
        NameRule::Dns1035Label => dns1035_label(value),
        NameRule::PathSegment => path_segment_name(value),
    };
    errs.into_iter().map(|m| Cause::invalid(field, value, &m)).collect()
}

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validate `metadata` of an object: name (or generateName), namespace, labels, annotations, finalizers.
pub fn object_meta(obj: &Value, rule: NameRule, namespaced: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let generate = meta["generateName"].as_str().unwrap_or("");
    if name.is_empty() {
        if generate.is_empty() {
            causes.push(Cause::required("metadata.name", "name or generateName is required"));
        } else {
            // The generated suffix is alphanumeric; validate the prefix as a name with a suffix.
            let probe = format!("{generate}a");
            causes.extend(name_with_field(rule, "metadata.generateName", generate, &probe));
        }
    } else {
        causes.extend(self::name(rule, "metadata.name", name));
    }
    if namespaced {
        if let Some(ns) = meta["namespace"].as_str() {
            if !ns.is_empty() {
                causes.extend(dns1123_label(ns).into_iter().map(|m| Cause::invalid("metadata.namespace", ns, &m)));
            }
        }
    } else if meta["namespace"].as_str().is_some_and(|ns| !ns.is_empty()) {
        causes.push(Cause::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            for m in qualified_name(k) {
                causes.push(Cause::invalid("metadata.labels", k, &m));
            }
            let v = v.as_str().unwrap_or("");
            for m in label_value(v) {
                causes.push(Cause::invalid(&format!("metadata.labels"), v, &m));
            }
        }
    }
    if let Some(ann) = meta["annotations"].as_object() {
        let mut total = 0;
        for (k, v) in ann {
            for m in qualified_name(&k.to_lowercase()) {
                causes.push(Cause::invalid("metadata.annotations", k, &m));
            }
            total += k.len() + v.as_str().map(str::len).unwrap_or(0);
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            causes.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
                field: "metadata.annotations".into(),
            });
        }
    }
    if let Some(fins) = meta["finalizers"].as_array() {
        for (i, f) in fins.iter().enumerate() {
            let f = f.as_str().unwrap_or("");
            let field = format!("metadata.finalizers[{i}]");
            for m in qualified_name(f) {
                causes.push(Cause::invalid(&field, f, &m));
            }
        }
    }
    causes
}

fn name_with_field(rule: NameRule, field: &str, shown: &str, checked: &str) -> Vec<Cause> {
    self::name(rule, field, checked)
        .into_iter()
        .map(|mut c| {
            c.message = c.message.replacen(&serde_json::json!(checked).to_string(), &serde_json::json!(shown).to_string(), 1);
            c
        })
        .collect()
}

/// The format regex for DNS-1123 labels, exposed for messages elsewhere.
pub fn dns1123_label_format() -> &'static str {
    DNS1123_LABEL_FMT
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subdomains() {
        assert!(dns1123_subdomain("a.b-c.d1").is_empty());
        assert!(!dns1123_subdomain("Bad_Name").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain(&"a".repeat(254)).is_empty());
    }

    #[test]
    fn labels_and_1035() {
        assert!(dns1123_label("1abc").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
        assert!(dns1035_label("abc-1").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("app").is_empty());
        assert!(qualified_name("example.com/My_Name").is_empty());
        assert!(!qualified_name("bad key").is_empty());
        assert!(!qualified_name("/x").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
    }

    #[test]
    fn meta_causes() {
        let c = object_meta(&json!({"metadata": {"name": "Bad_Name"}}), NameRule::Dns1123Subdomain, true);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "metadata.name");
        assert!(c[0].message.starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
        let c = object_meta(&json!({"metadata": {}}), NameRule::Dns1123Subdomain, true);
        assert_eq!(c[0].message, "Required value: name or generateName is required");
        let c = object_meta(&json!({"metadata": {"generateName": "web-"}}), NameRule::Dns1123Subdomain, true);
        assert!(c.is_empty());
        let c = object_meta(&json!({"metadata": {"name": "a", "labels": {"ok": "-bad"}}}), NameRule::Dns1123Subdomain, true);
        assert_eq!(c[0].field, "metadata.labels");
    }
}
