//! Name and metadata validation with upstream's messages (apimachinery's `validation` package).
//! kubectl users read these messages, so they are kept word for word.

pub mod core_kinds;
pub mod decode;
pub mod go;
pub mod pod;
pub mod quantity;
pub mod workloads;

use serde_json::Value;

use crate::errors::Cause;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
pub(crate) const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(crate) const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub(crate) const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
pub(crate) const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
pub(crate) const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

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
    // Names are generated before validation, so both are checked (as upstream does).
    if !generate.is_empty() {
        let checked = if rule == NameRule::PathSegment { generate.to_string() } else { mask_trailing_dash(generate) };
        causes.extend(name_with_field(rule, "metadata.generateName", generate, &checked));
    }
    if name.is_empty() {
        causes.push(Cause::required("metadata.name", "name or generateName is required"));
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
    causes.extend(pod::labels(&meta["labels"], "metadata.labels"));
    causes.extend(annotations(&meta["annotations"], "metadata.annotations"));
    let fins: Vec<&str> = meta["finalizers"].as_array().into_iter().flatten().map(|f| f.as_str().unwrap_or("")).collect();
    for f in &fins {
        for m in qualified_name(f) {
            causes.push(Cause::invalid("metadata.finalizers", f, &m));
        }
    }
    if fins.contains(&"orphan") && fins.contains(&"foregroundDeletion") {
        let list: Vec<String> = fins.iter().map(|f| go::quote(f)).collect();
        causes.push(Cause::invalid_raw(
            "metadata.finalizers",
            &format!("[]string{{{}}}", list.join(", ")),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    causes
}

/// Upstream's `maskTrailingDash` for generated-name prefixes: a trailing dash (and the
/// character before it) become one letter, so the prefix validates as a name.
fn mask_trailing_dash(prefix: &str) -> String {
    if prefix.len() > 1 && prefix.ends_with('-') {
        let mut cut = prefix.len() - 2;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}a", &prefix[..cut])
    } else {
        prefix.to_string()
    }
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively), and all of them
/// together at most 256 KiB; causes on `field`.
pub fn annotations(v: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(ann) = v.as_object() else { return causes };
    let mut total = 0;
    for (k, v) in ann {
        for m in qualified_name(&k.to_lowercase()) {
            causes.push(Cause::invalid(field, k, &m));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(Cause::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    causes
}

fn name_with_field(rule: NameRule, field: &str, shown: &str, checked: &str) -> Vec<Cause> {
    self::name(rule, field, checked)
        .into_iter()
        .map(|mut c| {
            c.message = c.message.replacen(&go::quote(checked), &go::quote(shown), 1);
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

    fn qualified(prefix: &str) -> String {
        format!("{prefix}{QUALIFIED_NAME_MSG}")
    }

    #[test]
    fn subdomains() {
        assert_eq!(dns1123_subdomain("a.b-c.d1"), Vec::<String>::new());
        for bad in ["Bad_Name", "-a", "a-", "a..b", ".a", ""] {
            assert_eq!(dns1123_subdomain(bad), [DNS1123_SUBDOMAIN_MSG], "{bad}");
        }
        assert_eq!(dns1123_subdomain(&"a".repeat(253)), Vec::<String>::new());
        assert_eq!(dns1123_subdomain(&"a".repeat(254)), ["must be no more than 253 characters"]);
        assert_eq!(dns1123_subdomain(&format!("{}_", "a".repeat(254))), ["must be no more than 253 characters", DNS1123_SUBDOMAIN_MSG]);
    }

    #[test]
    fn labels_and_1035() {
        assert_eq!(dns1123_label("1abc"), Vec::<String>::new());
        assert_eq!(dns1035_label("1abc"), [DNS1035_LABEL_MSG]);
        assert_eq!(dns1035_label("abc-1"), Vec::<String>::new());
        assert_eq!(dns1123_label("a.b"), [DNS1123_LABEL_MSG]);
        assert_eq!(dns1123_label(&"a".repeat(64)), ["must be no more than 63 characters"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
        assert_eq!(path_segment_name("a/b%c"), ["may not contain '/'", "may not contain '%'"]);
    }

    #[test]
    fn qualified_names() {
        assert_eq!(qualified_name("app"), Vec::<String>::new());
        assert_eq!(qualified_name("example.com/My_Name"), Vec::<String>::new());
        assert_eq!(qualified_name("bad key"), [qualified("")]);
        assert_eq!(qualified_name("/x"), ["prefix part must be non-empty"]);
        assert_eq!(qualified_name("x/"), ["name part must be non-empty"]);
        assert_eq!(
            qualified_name("a/b/c"),
            [format!("{QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]
        );
        assert_eq!(qualified_name("Example.com/x"), [format!("prefix part {DNS1123_SUBDOMAIN_MSG}")]);
        assert_eq!(qualified_name(&"a".repeat(64)), ["name part must be no more than 63 characters"]);
        assert_eq!(label_value(""), Vec::<String>::new());
        assert_eq!(label_value("-x"), [LABEL_VALUE_MSG]);
        assert_eq!(label_value(&"a".repeat(64)), ["must be no more than 63 characters"]);
    }

    /// (field, reason, message) of each cause.
    fn causes(obj: Value, rule: NameRule) -> Vec<(String, String, String)> {
        object_meta(&obj, rule, true).into_iter().map(|c| (c.field, c.reason, c.message)).collect()
    }

    fn cause(field: &str, reason: &str, message: &str) -> (String, String, String) {
        (field.into(), reason.into(), message.into())
    }

    #[test]
    fn meta_causes() {
        let sub = NameRule::Dns1123Subdomain;
        assert_eq!(
            causes(json!({"metadata": {"name": "Bad_Name"}}), sub),
            [cause("metadata.name", "FieldValueInvalid", &format!("Invalid value: \"Bad_Name\": {DNS1123_SUBDOMAIN_MSG}"))]
        );
        assert_eq!(
            causes(json!({"metadata": {"name": "my.svc"}}), NameRule::Dns1035Label),
            [cause("metadata.name", "FieldValueInvalid", &format!("Invalid value: \"my.svc\": {DNS1035_LABEL_MSG}"))]
        );
        assert_eq!(
            causes(json!({"metadata": {}}), sub),
            [cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
        );
        // Generated names are checked with their prefix (a trailing dash masked) and in full.
        assert_eq!(causes(json!({"metadata": {"generateName": "web-", "name": "web-x1y2z"}}), sub), []);
        assert_eq!(
            causes(json!({"metadata": {"generateName": "Web-", "name": "Web-x1y2z"}}), sub),
            [
                cause("metadata.generateName", "FieldValueInvalid", &format!("Invalid value: \"Web-\": {DNS1123_SUBDOMAIN_MSG}")),
                cause("metadata.name", "FieldValueInvalid", &format!("Invalid value: \"Web-x1y2z\": {DNS1123_SUBDOMAIN_MSG}")),
            ]
        );
        assert_eq!(
            causes(json!({"metadata": {"name": "a", "labels": {"ok": "-bad", "bad key": "v"}}}), sub),
            [
                cause("metadata.labels", "FieldValueInvalid", &format!("Invalid value: \"bad key\": {}", qualified(""))),
                cause("metadata.labels", "FieldValueInvalid", &format!("Invalid value: \"-bad\": {LABEL_VALUE_MSG}")),
            ]
        );
        // Annotation keys are case-insensitive.
        assert_eq!(
            causes(json!({"metadata": {"name": "a", "annotations": {"Example.com/OK": "", "bad key": "v"}}}), sub),
            [cause("metadata.annotations", "FieldValueInvalid", &format!("Invalid value: \"bad key\": {}", qualified("")))]
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        assert_eq!(
            causes(json!({"metadata": {"name": "a", "annotations": {"k": big}}}), sub),
            [cause("metadata.annotations", "FieldValueTooLong", "Too long: may not be more than 262144 bytes")]
        );
        assert_eq!(
            causes(json!({"metadata": {"name": "a", "namespace": "Bad"}}), sub),
            [cause("metadata.namespace", "FieldValueInvalid", &format!("Invalid value: \"Bad\": {DNS1123_LABEL_MSG}"))]
        );
        assert_eq!(
            object_meta(&json!({"metadata": {"name": "a", "namespace": "x"}}), sub, false)[0].message,
            "Forbidden: not allowed on this type"
        );
        assert_eq!(
            causes(json!({"metadata": {"name": "a", "finalizers": ["bad/fin/x", "orphan", "foregroundDeletion"]}}), sub),
            [
                cause("metadata.finalizers", "FieldValueInvalid", &format!("Invalid value: \"bad/fin/x\": {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")),
                cause("metadata.finalizers", "FieldValueInvalid", "Invalid value: []string{\"bad/fin/x\", \"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"),
            ]
        );
    }

    #[test]
    fn values_are_quoted_as_go_does() {
        assert_eq!(
            causes(json!({"metadata": {"name": "a\tb"}}), NameRule::PathSegment),
            Vec::<(String, String, String)>::new()
        );
        assert_eq!(
            causes(json!({"metadata": {"name": "tab\tname"}}), NameRule::Dns1123Subdomain)[0].2,
            format!("Invalid value: \"tab\\tname\": {DNS1123_SUBDOMAIN_MSG}")
        );
    }
}
