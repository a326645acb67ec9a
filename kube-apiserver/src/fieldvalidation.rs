//! Server-side field validation: the `fieldValidation=Strict|Warn|Ignore` query parameter.
//!
//! Why: k8s-openapi's types drop unknown fields silently and JSON parsers keep the last of two
//! equal keys, so a typo in a manifest would vanish without a word. Upstream reports unknown
//! and duplicate fields as a 400 under `Strict` (kubectl's default since 1.25), as `Warning`
//! headers under `Warn` (the default when the parameter is absent) and not at all under
//! `Ignore`. Bodies are checked against the server's own OpenAPI schemas
//! ([`crate::openapi::schemas`]) before they are decoded into the typed structs.
//!
//! Order and wording follow upstream: for JSON bodies, problems in document order (a field that
//! is both unknown and repeated is reported once, as unknown); for YAML bodies, the YAML
//! parser's duplicate-key errors (with line numbers) first, then unknown fields in key order;
//! for merge and strategic-merge patches, the patch's duplicates, then the unknown fields of the
//! patched object in key order.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::errors::{ApiError, Cause};
use crate::registry::{Warnings, WriteOptions};
use crate::resources::ResourceInfo;

/// What to do about unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reject the request (400).
    Strict,
    /// Accept, and report each problem in a `Warning` header (requests without the parameter).
    Warn,
    /// Accept silently (and the server's own writes).
    #[default]
    Ignore,
}

impl Mode {
    /// Parse the `fieldValidation` query parameter; `options_kind` names the options type
    /// (`CreateOptions`, `UpdateOptions`, `PatchOptions`) for upstream's 422.
    pub fn from_query(v: Option<&str>, options_kind: &str) -> Result<Mode, ApiError> {
        match v.unwrap_or("") {
            "" | "Warn" => Ok(Mode::Warn),
            "Strict" => Ok(Mode::Strict),
            "Ignore" => Ok(Mode::Ignore),
            other => Err(ApiError::invalid(
                options_kind,
                "meta.k8s.io",
                "",
                vec![Cause::not_supported("fieldValidation", other, &["", "Ignore", "Strict", "Warn"])],
            )),
        }
    }
}

/// A decoded body and the field problems found in it, as upstream words them.
#[derive(Debug, Default)]
pub struct Checked {
    pub value: Value,
    pub problems: Vec<String>,
    /// YAML bodies report duplicates as one `yaml: unmarshal errors:` block in the error.
    yaml_duplicates: Vec<String>,
}

impl Checked {
    /// Under `Strict`, the 400 for a non-empty problem list; under `Warn`, the warnings.
    /// `kind`/`version` name the object for upstream's "cannot be handled as" prefix; `None`
    /// leaves the prefix out (patches).
    pub fn resolve(self, mode: Mode, kind_version: Option<(&str, &str)>) -> Result<(Value, Vec<String>), ApiError> {
        if self.problems.is_empty() && self.yaml_duplicates.is_empty() {
            return Ok((self.value, Vec::new()));
        }
        match mode {
            Mode::Ignore => Ok((self.value, Vec::new())),
            Mode::Warn => {
                let mut w = self.yaml_duplicates;
                w.extend(self.problems);
                Ok((self.value, w))
            }
            Mode::Strict => {
                let mut parts = Vec::new();
                if !self.yaml_duplicates.is_empty() {
                    parts.push(format!("yaml: unmarshal errors:\n  {}", self.yaml_duplicates.join("\n  ")));
                }
                parts.extend(self.problems);
                let msg = format!("strict decoding error: {}", parts.join(", "));
                Err(match kind_version {
                    Some((kind, version)) => ApiError::cannot_decode(kind, version, msg),
                    None => ApiError::BadRequest(msg),
                })
            }
        }
    }
}

/// The schema of a kind's root object, by schema name (see [`crate::openapi::schema_name`]).
pub fn root_schema(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    let name = crate::openapi::schema_name(group, version, kind)?;
    crate::openapi::schemas().get(&name)
}

/// The write options of a request: `dryRun` and `fieldValidation`, validated as upstream does
/// (422 on the options kind for unsupported values).
pub fn write_options(method: &http::Method, query: &std::collections::HashMap<String, String>) -> Result<WriteOptions, ApiError> {
    let options_kind = match *method {
        http::Method::POST => "CreateOptions",
        http::Method::PUT => "UpdateOptions",
        http::Method::PATCH => "PatchOptions",
        http::Method::DELETE => "DeleteOptions",
        _ => return Ok(WriteOptions::default()),
    };
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                options_kind,
                "meta.k8s.io",
                "",
                vec![Cause::not_supported_raw("dryRun", &format!("[]string{{{}}}", quote(other)), &["All"])],
            ));
        }
    };
    let field_validation = if *method == http::Method::DELETE {
        Mode::Ignore
    } else {
        Mode::from_query(query.get("fieldValidation").map(String::as_str), options_kind)?
    };
    Ok(WriteOptions { dry_run, field_validation, warnings: Warnings::default(), ..Default::default() })
}

/// Decode a create or update body, checking it for unknown and duplicate fields as the
/// request's `fieldValidation` says; warnings go to `opts.warnings`.
pub fn decode_checked(body: &[u8], content_type: &str, info: &ResourceInfo, opts: &WriteOptions) -> Result<Value, ApiError> {
    decode_checked_as(body, content_type, (info.group, info.version, info.kind), opts)
}

/// [`decode_checked`] for a body of kind `gvk` (group, version, kind), e.g. a `Scale`.
pub fn decode_checked_as(body: &[u8], content_type: &str, gvk: (&str, &str, &str), opts: &WriteOptions) -> Result<Value, ApiError> {
    let (group, version, kind) = gvk;
    let schema = root_schema(group, version, kind);
    let checked = match (opts.field_validation, content_type) {
        (Mode::Ignore, _) => return crate::handler::decode_body(body, content_type),
        (_, "" | "application/json" | "*/*") => {
            check_json(body, schema)
                .map_err(|e| ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}")))?
        }
        (_, "application/yaml" | "application/x-yaml" | "text/yaml") => {
            let c = check_yaml(body, schema).map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))?;
            if !c.value.is_object() {
                return Err(ApiError::BadRequest("couldn't get version/kind; the body is not an object".into()));
            }
            c
        }
        // Protobuf cannot carry unknown or duplicate fields; other types are refused there.
        _ => return crate::handler::decode_body(body, content_type),
    };
    // A wrong type is fatal and reported before unknown or duplicate fields, as upstream.
    if opts.field_validation == Mode::Strict && (!checked.problems.is_empty() || !checked.yaml_duplicates.is_empty()) {
        if let Some(e) = schema.and_then(|s| crate::validation::decode::decode_error(kind, s, &checked.value)) {
            return Err(ApiError::cannot_decode(kind, version, e));
        }
    }
    let (value, warnings) = checked.resolve(opts.field_validation, Some((kind, version)))?;
    opts.warnings.extend(warnings);
    Ok(value)
}

/// Duplicate keys of a server-side apply body (YAML, or JSON read as YAML), worded as upstream's
/// strict YAML decoding error; `None` when there are none or `fieldValidation` is `Ignore`.
/// Upstream checks this only once the apply has merged (see [`resolve_apply_duplicates`]).
pub fn apply_duplicates(body: &[u8], opts: &WriteOptions) -> Option<String> {
    if opts.field_validation == Mode::Ignore {
        return None;
    }
    let dups = yaml_duplicate_keys(&String::from_utf8_lossy(body));
    if dups.is_empty() {
        return None;
    }
    Some(format!("error converting YAML to JSON: yaml: unmarshal errors:\n  {}", dups.join("\n  ")))
}

/// What [`apply_duplicates`] found, after a successful merge: the 400 under `Strict`, a warning
/// under `Warn` (recorded once however often a conflicting write is retried).
pub fn resolve_apply_duplicates(dups: Option<&str>, opts: &WriteOptions) -> Result<(), ApiError> {
    let Some(err) = dups else {
        return Ok(());
    };
    match opts.field_validation {
        Mode::Strict => Err(ApiError::BadRequest(format!("error strict decoding YAML: {err}"))),
        Mode::Warn => {
            opts.warnings.extend(vec![err.to_string()]);
            Ok(())
        }
        Mode::Ignore => Ok(()),
    }
}

/// Problems of a patch body itself (checked once, before the patch is applied).
pub fn patch_problems(body: &[u8], content_type: &str, opts: &WriteOptions) -> Vec<String> {
    match (opts.field_validation, content_type) {
        (Mode::Ignore, _) => Vec::new(),
        (_, "application/json-patch+json") => patch_body_problems(body, true),
        (_, "application/merge-patch+json" | "application/strategic-merge-patch+json") => patch_body_problems(body, false),
        _ => Vec::new(),
    }
}

/// Check a patched object: the patch body's problems plus the unknown fields of the result.
/// Under `Strict` any problem fails the patch; under `Warn` they become the warnings.
pub fn check_patched(info: &ResourceInfo, patched: &Value, body_problems: &[String], opts: &WriteOptions) -> Result<(), ApiError> {
    check_patched_as((info.group, info.version, info.kind), patched, body_problems, opts)
}

/// [`check_patched`] for an object of kind `gvk` (group, version, kind), e.g. a `Scale`.
pub fn check_patched_as(gvk: (&str, &str, &str), patched: &Value, body_problems: &[String], opts: &WriteOptions) -> Result<(), ApiError> {
    if opts.field_validation == Mode::Ignore {
        return Ok(());
    }
    let mut problems = body_problems.to_vec();
    if let Some(schema) = root_schema(gvk.0, gvk.1, gvk.2) {
        problems.extend(unknown_fields(schema, patched));
    }
    let checked = Checked { value: Value::Null, problems, yaml_duplicates: Vec::new() };
    let (_, warnings) = checked.resolve(opts.field_validation, None)?;
    opts.warnings.set(warnings);
    Ok(())
}

/// Add the recorded warnings to a response as `Warning` headers.
pub fn with_warnings<B>(mut resp: http::Response<B>, warnings: &Warnings) -> http::Response<B> {
    for w in warnings.take() {
        if let Ok(v) = http::HeaderValue::from_str(&warning_header(&w)) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Schema shapes

/// What a schema node says about the JSON it describes, for field checking.
enum Shape<'s> {
    /// An object with known properties; other keys are unknown (unless `rest` allows them).
    Object { props: &'s Map<String, Value>, rest: Option<&'s Value> },
    /// A map: any key, values of one schema.
    MapOf(&'s Value),
    Array(&'s Value),
    /// Scalars and free-form values: nothing to check.
    Free,
}

/// Follow `$ref`s and single `allOf`s to the schema that describes the value.
pub(crate) fn resolve(mut s: &'static Value) -> &'static Value {
    for _ in 0..16 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/definitions/").trim_start_matches("#/components/schemas/");
            match crate::openapi::schemas().get(name) {
                Some(t) => s = t,
                None => return &Value::Null,
            }
        } else if let Some(first) = s.get("allOf").and_then(Value::as_array).and_then(|a| a.first()) {
            s = first;
        } else {
            return s;
        }
    }
    s
}

fn shape(s: Option<&'static Value>) -> Shape<'static> {
    let Some(s) = s.map(resolve) else { return Shape::Free };
    let rest = s.get("additionalProperties").filter(|v| v.is_object());
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        return Shape::Object { props, rest };
    }
    if let Some(values) = rest {
        return Shape::MapOf(values);
    }
    if let Some(items) = s.get("items") {
        return Shape::Array(items);
    }
    Shape::Free
}

// ---------------------------------------------------------------------------------------------
// Paths

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Index(usize),
    Key(String),
}

fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Checking a decoded value (patched objects, YAML bodies): unknown fields in key order

/// Unknown fields of `value` under `schema`, as `unknown field "a.b"`, in key order.
pub fn unknown_fields(schema: &'static Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(Some(schema), value, &mut path, &mut out);
    out.into_iter().map(|p| format!("unknown field {}", quote(&render_path(&p)))).collect()
}

fn walk(schema: Option<&'static Value>, value: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match (shape(schema), value) {
        (Shape::Object { props, rest }, Value::Object(m)) => {
            for (k, v) in m {
                path.push(Seg::Key(k.clone()));
                match props.get(k).or(rest) {
                    Some(child) => walk(Some(child), v, path, out),
                    None => out.push(path.clone()),
                }
                path.pop();
            }
        }
        (Shape::MapOf(values), Value::Object(m)) => {
            for (k, v) in m {
                path.push(Seg::Key(k.clone()));
                walk(Some(values), v, path, out);
                path.pop();
            }
        }
        (Shape::Array(items), Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                walk(Some(items), v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn quote(s: &str) -> String {
    // Go's %q: a double-quoted string with backslash escapes.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

// ---------------------------------------------------------------------------------------------
// Checking JSON while parsing: unknown and duplicate fields in document order

#[derive(Default)]
struct Recorder {
    path: Vec<Seg>,
    problems: Vec<String>,
}

struct Node<'r> {
    rec: &'r RefCell<Recorder>,
    /// `None`: free-form or inside an unknown field; nothing below is checked.
    schema: Option<&'static Value>,
    checked: bool,
    /// No schema at all (patch bodies): only duplicates are reported, everywhere.
    untyped: bool,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let items = match shape(self.schema) {
            Shape::Array(items) if self.checked => Some(items),
            _ => None,
        };
        let mut out = Vec::new();
        loop {
            self.rec.borrow_mut().path.push(Seg::Index(out.len()));
            let next = seq.next_element_seed(Node { rec: self.rec, schema: items, checked: items.is_some(), untyped: self.untyped });
            self.rec.borrow_mut().path.pop();
            match next? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let sh = if self.checked { shape(self.schema) } else { Shape::Free };
        let checking = self.untyped || !matches!(sh, Shape::Free | Shape::Array(_));
        let mut out = Map::new();
        let mut unknown_seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = match &sh {
                Shape::Object { props, rest } => props.get(&key).or(*rest).map(Some),
                Shape::MapOf(values) => Some(Some(*values)),
                _ => Some(None),
            };
            let child = match child {
                None if self.untyped => Some(None),
                c => c,
            };
            self.rec.borrow_mut().path.push(Seg::Key(key.clone()));
            if checking {
                let mut rec = self.rec.borrow_mut();
                match child {
                    None => {
                        if unknown_seen.insert(key.clone()) {
                            let p = render_path(&rec.path);
                            rec.problems.push(format!("unknown field {}", quote(&p)));
                        }
                    }
                    Some(_) if out.contains_key(&key) => {
                        let p = render_path(&rec.path);
                        rec.problems.push(format!("duplicate field {}", quote(&p)));
                    }
                    Some(_) => {}
                }
            }
            let schema = child.flatten();
            let value = map.next_value_seed(Node { rec: self.rec, schema, checked: schema.is_some(), untyped: self.untyped });
            self.rec.borrow_mut().path.pop();
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }
}

/// Parse JSON, noting unknown (under `schema`) and duplicate fields in document order.
/// Without a schema only duplicates are noted.
pub fn check_json(body: &[u8], schema: Option<&'static Value>) -> Result<Checked, serde_json::Error> {
    let rec = RefCell::new(Recorder::default());
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Node { rec: &rec, schema, checked: true, untyped: schema.is_none() }.deserialize(&mut de)?;
    de.end()?;
    Ok(Checked { value, problems: rec.into_inner().problems, yaml_duplicates: Vec::new() })
}

/// Duplicate keys of a YAML document, as go-yaml words them (`line N: key "k" already set in map`).
pub fn yaml_duplicate_keys(body: &str) -> Vec<String> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    /// One open collection; mappings track their keys and whether a key or value comes next.
    enum Frame {
        Map { keys: HashSet<String>, want_key: bool },
        Seq,
    }
    #[derive(Default)]
    struct Rx {
        stack: Vec<Frame>,
        out: Vec<String>,
    }
    impl Rx {
        /// A node finished inside the current collection.
        fn node_done(&mut self) {
            if let Some(Frame::Map { want_key, .. }) = self.stack.last_mut() {
                *want_key = !*want_key;
            }
        }
    }
    impl MarkedEventReceiver for Rx {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            match ev {
                Event::Scalar(s, ..) => {
                    if let Some(Frame::Map { keys, want_key: true }) = self.stack.last_mut() {
                        if !keys.insert(s.clone()) {
                            self.out.push(format!("line {}: key {} already set in map", mark.line(), quote(&s)));
                        }
                    }
                    self.node_done();
                }
                Event::Alias(_) => self.node_done(),
                Event::MappingStart(..) => self.stack.push(Frame::Map { keys: HashSet::new(), want_key: true }),
                Event::SequenceStart(..) => self.stack.push(Frame::Seq),
                Event::MappingEnd | Event::SequenceEnd => {
                    self.stack.pop();
                    self.node_done();
                }
                _ => {}
            }
        }
    }
    let mut rx = Rx::default();
    // Syntax errors are reported by the decoder proper.
    let _ = Parser::new_from_str(body).load(&mut rx, false);
    rx.out
}

/// Parse YAML, noting go-yaml's duplicate keys and the unknown fields (under `schema`).
pub fn check_yaml(body: &[u8], schema: Option<&'static Value>) -> Result<Checked, serde_yaml::Error> {
    let value: Value = serde_yaml::from_slice(body)?;
    let text = String::from_utf8_lossy(body);
    let yaml_duplicates = yaml_duplicate_keys(&text);
    let problems = match schema {
        Some(s) => unknown_fields(s, &value),
        None => Vec::new(),
    };
    Ok(Checked { value, problems, yaml_duplicates })
}

/// The JSON patch operation object; other keys are reported as `json patch unknown field`.
fn json_patch_schema() -> &'static Value {
    static S: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        serde_json::json!({"items": {"properties": {"op": {}, "path": {}, "value": {}, "from": {}}}})
    })
}

/// Problems in a patch body itself: duplicates of a merge patch, unknown or duplicate keys of
/// JSON patch operations. Malformed JSON yields nothing here (the patcher reports it).
pub fn patch_body_problems(body: &[u8], json_patch: bool) -> Vec<String> {
    if json_patch {
        match check_json(body, Some(json_patch_schema())) {
            Ok(c) => c.problems.into_iter().map(|p| format!("json patch {p}")).collect(),
            Err(_) => Vec::new(),
        }
    } else {
        match check_json(body, None) {
            Ok(c) => c.problems,
            Err(_) => Vec::new(),
        }
    }
}

/// A `Warning` header value (RFC 7234 form, as upstream sends it): `299 - "text"`.
pub fn warning_header(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    format!("299 - \"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> &'static Value {
        root_schema("apps", "v1", "Deployment").expect("Deployment schema")
    }

    const INVALID_JSON: &str = r#"{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "a", "name": "b", "unknownMeta": 1, "labels": {"app": "nginx"}},
        "spec": {
            "unknown1": "val1", "unknownDupe": "x", "unknownDupe": "y",
            "paused": true, "paused": false,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{
                "name": "nginx", "image": "nginx:latest", "unknownNested": "val1",
                "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}
        }
    }"#;

    #[test]
    fn json_problems_in_document_order() {
        let c = check_json(INVALID_JSON.as_bytes(), Some(deployment())).unwrap();
        assert_eq!(
            c.problems,
            [
                r#"duplicate field "metadata.name""#,
                r#"unknown field "metadata.unknownMeta""#,
                r#"unknown field "spec.unknown1""#,
                r#"unknown field "spec.unknownDupe""#,
                r#"duplicate field "spec.paused""#,
                r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
                r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
            ]
        );
        // The last of two equal keys wins, as in Go.
        assert_eq!(c.value["spec"]["paused"], false);
        assert_eq!(c.value["metadata"]["name"], "b");
    }

    #[test]
    fn strict_message_matches_upstream() {
        let c = check_json(br#"{"spec": {"foo": 1, "replicas": 1}}"#, Some(deployment())).unwrap();
        let e = c.resolve(Mode::Strict, Some(("Deployment", "v1"))).unwrap_err();
        assert_eq!(e.code(), 400);
        assert_eq!(
            e.to_string(),
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo""#
        );
        let c = check_json(br#"{"spec": {"foo": 1}}"#, Some(deployment())).unwrap();
        let (_, w) = c.resolve(Mode::Warn, None).unwrap();
        assert_eq!(w, [r#"unknown field "spec.foo""#]);
        let c = check_json(br#"{"spec": {"foo": 1}}"#, Some(deployment())).unwrap();
        let (v, w) = c.resolve(Mode::Ignore, None).unwrap();
        assert!(w.is_empty());
        assert_eq!(v["spec"]["foo"], 1);
    }

    #[test]
    fn maps_and_free_form_fields_accept_any_key() {
        let body = br#"{"metadata": {"labels": {"anything": "x"}, "annotations": {"a/b": "c"}},
            "spec": {"template": {"spec": {"nodeSelector": {"k": "v"}, "containers": [{"resources": {"limits": {"cpu": "1"}}}]}}}}"#;
        let c = check_json(body, Some(deployment())).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let crd = root_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap();
        let body = br#"{"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "default": {"x": 1}}}}}}]}}"#;
        let c = check_json(body, Some(crd)).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn yaml_duplicates_then_sorted_unknowns() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  name: b\n  unknownMeta: x\nspec:\n  unknownDupe: 1\n  unknownDupe: 2\n  unknown1: 1\n  paused: true\n  paused: false\n  template:\n    spec:\n      containers:\n      - name: c\n        unknownNested: 1\n";
        let c = check_yaml(yaml.as_bytes(), Some(deployment())).unwrap();
        let e = c.resolve(Mode::Strict, Some(("Deployment", "v1"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  line 9: key \"unknownDupe\" already set in map\n  line 12: key \"paused\" already set in map, unknown field \"metadata.unknownMeta\", unknown field \"spec.template.spec.containers[0].unknownNested\", unknown field \"spec.unknown1\", unknown field \"spec.unknownDupe\""
        );
        let c = check_yaml(yaml.as_bytes(), Some(deployment())).unwrap();
        let (_, w) = c.resolve(Mode::Warn, None).unwrap();
        assert_eq!(w[0], "line 5: key \"name\" already set in map");
        assert_eq!(w.len(), 7);
    }

    #[test]
    fn json_patch_operations() {
        let body = br#"[{"op": "add", "path": "/spec/a", "value": 1, "foo": "bar"},
                        {"op": "add", "path": "/x", "path": "/y", "value": 1}]"#;
        assert_eq!(
            patch_body_problems(body, true),
            [r#"json patch unknown field "[0].foo""#, r#"json patch duplicate field "[1].path""#]
        );
        assert_eq!(
            patch_body_problems(br#"{"spec": {"paused": true, "paused": false}}"#, false),
            [r#"duplicate field "spec.paused""#]
        );
    }

    #[test]
    fn options_values() {
        assert_eq!(Mode::from_query(None, "CreateOptions").unwrap(), Mode::Warn);
        assert_eq!(Mode::from_query(Some("Strict"), "CreateOptions").unwrap(), Mode::Strict);
        let e = Mode::from_query(Some("strict"), "CreateOptions").unwrap_err();
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.to_string(),
            r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
        );
    }

    #[test]
    fn warning_header_escapes_quotes() {
        assert_eq!(warning_header(r#"unknown field "spec.foo""#), r#"299 - "unknown field \"spec.foo\"""#);
    }
}
