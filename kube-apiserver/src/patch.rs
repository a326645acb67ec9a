//! Strategic merge patch (`application/strategic-merge-patch+json`), applied as upstream's
//! apimachinery `strategicpatch` applies it on the server.
//!
//! Why: `kubectl apply`, `edit`, `set image`, `patch` (default type) and `diff` send strategic
//! merge patches computed against the list semantics the OpenAPI documents publish. A JSON
//! merge patch would replace whole lists (every container, env var, port) instead of merging
//! them by key, so the server has to honour the same per-field strategies.
//!
//! Semantics: maps merge recursively and `null` deletes a key; a list whose field has patch
//! strategy `merge` merges by its merge key (lists of scalars as sets), any other list is
//! replaced. Directives: `$patch: replace|delete` on maps, `$patch: replace|delete` on list
//! elements (`merge` is refused there, as upstream), `$retainKeys`, `$setElementOrder/<field>`
//! and `$deleteFromPrimitiveList/<field>`. Field strategies come from [`crate::openapi`]'s
//! schemas; a field the schema does not know is treated as having no strategy.

use serde_json::{Map, Value};

use crate::errors::{ApiError, Cause, Target};
use crate::openapi::{FieldSchema, SchemaRef};
use crate::resources::{ResourceInfo, Subresource};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// The group/version/kind whose schema a patch is applied against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gvk<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

impl From<&ResourceInfo> for Gvk<'static> {
    fn from(info: &ResourceInfo) -> Self {
        Gvk {
            group: info.group,
            version: info.version,
            kind: info.kind,
        }
    }
}

impl From<&Subresource> for Gvk<'static> {
    fn from(sub: &Subresource) -> Self {
        Gvk {
            group: sub.group,
            version: sub.version,
            kind: sub.kind,
        }
    }
}

/// Why a strategic merge patch could not be applied. Messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("invalid JSON document")]
    BadJsonDoc,
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    #[error("merging lists cannot yet be specified in the patch")]
    MergeListDirective,
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch { patch: String, order: String },
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    #[error("list element types are not identical: {0}")]
    MixedElements(String),
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyDeclared(String),
}

impl From<PatchError> for ApiError {
    /// Upstream answers malformed directives with 400, lists of lists with 422, and passes
    /// every other patch error through as a 500 carrying the bare message.
    fn from(e: PatchError) -> Self {
        match e {
            PatchError::BadJsonDoc
            | PatchError::BadPrimitiveList
            | PatchError::BadRetainKeys
            | PatchError::BadSetElementOrder => ApiError::BadRequest(e.to_string()),
            PatchError::ListOfLists => ApiError::Invalid {
                kind: String::new(),
                target: Target::default(),
                causes: vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: e.to_string(),
                    field: String::new(),
                }],
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Apply a strategic merge patch document (the request body) to `original`, an object of
/// kind `gvk`.
pub fn apply_strategic(original: &Value, body: &[u8], gvk: Gvk<'_>) -> Result<Value, ApiError> {
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let patch = match patch {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(&other)
            )));
        }
    };
    let schema = SchemaRef::for_kind(gvk.group, gvk.version, gvk.kind);
    if schema.is_none() {
        tracing::debug!(
            ?gvk,
            "no schema: strategic merge patch without list strategies"
        );
    }
    Ok(strategic_merge(original, patch, schema)?)
}

/// Merge `patch` into `original` following the strategies of `schema` (none known: every
/// list is replaced).
pub fn strategic_merge(
    original: &Value,
    patch: Map<String, Value>,
    schema: Option<SchemaRef>,
) -> Result<Value, PatchError> {
    let original = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch, schema).map(Value::Object)
}

/// The list strategy ("merge", "replace" or "") and merge key of a field, with `retainKeys`
/// set aside: on the server it only matters through the `$retainKeys` directive.
fn strategy(field: Option<FieldSchema>) -> (&'static str, &'static str) {
    match field {
        Some(f) => (
            f.patch_strategy
                .split(',')
                .find(|s| *s != "retainKeys")
                .unwrap_or(""),
            f.merge_key,
        ),
        None => ("", ""),
    }
}

/// The field a `$setElementOrder/<field>` or `$deleteFromPrimitiveList/<field>` key names.
fn directive_field<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.strip_prefix(prefix)?.strip_prefix('/')
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Option<SchemaRef>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                merge_map(Map::new(), patch, schema)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::BadPatchType {
                directive: go_fmt(directive),
                map: go_fmt(&Value::Object(patch)),
            }),
        };
    }
    retain_keys(&mut original, &mut patch)?;
    set_element_order(&mut original, &mut patch, schema)?;
    let mut deletions = Vec::new();
    for (key, value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = directive_field(&key, DELETE_FROM_PRIMITIVE_LIST)
                .ok_or(PatchError::BadPrimitiveList)?;
            deletions.push((field.to_string(), value));
            continue;
        }
        if value.is_null() {
            original.remove(&key);
            continue;
        }
        let field = schema.and_then(|s| s.field(&key));
        let merged = match original.remove(&key) {
            Some(current) => merge_value(current, value, field)?,
            None => fresh(value, field)?,
        };
        original.insert(key, merged);
    }
    // Deletions run after additions so a list both added to and pruned ends up pruned.
    for (field, remove) in deletions {
        let Value::Array(remove) = remove else {
            return Err(PatchError::BadPrimitiveList);
        };
        if let Some(Value::Array(current)) = original.get_mut(&field) {
            current.retain(|v| !remove.contains(v));
        }
    }
    Ok(original)
}

fn merge_value(
    current: Value,
    patch: Value,
    field: Option<FieldSchema>,
) -> Result<Value, PatchError> {
    let (strategy, _) = strategy(field);
    match (current, patch) {
        (Value::Object(c), Value::Object(p)) if strategy != "replace" => {
            Ok(Value::Object(merge_map(c, p, field.map(|f| f.value))?))
        }
        (Value::Array(c), Value::Array(p)) if strategy == "merge" => {
            Ok(Value::Array(merge_list(c, p, field)?))
        }
        (Value::Array(_), Value::Array(p)) => Ok(Value::Array(p)),
        (_, p) => fresh(p, field),
    }
}

/// A patch value with nothing to merge into: its directives still apply (against nothing).
fn fresh(value: Value, field: Option<FieldSchema>) -> Result<Value, PatchError> {
    match value {
        Value::Object(p) => Ok(Value::Object(merge_map(
            Map::new(),
            p,
            field.map(|f| f.value),
        )?)),
        Value::Array(items) if strategy(field).0 == "merge" => {
            let items_schema = field.and_then(|f| f.value.items());
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Object(m) if m.contains_key(DIRECTIVE) => {
                        check_element_directive(&m)?;
                    }
                    Value::Object(m) => {
                        out.push(Value::Object(merge_map(Map::new(), m, items_schema)?))
                    }
                    other => out.push(other),
                }
            }
            Ok(Value::Array(out))
        }
        other => Ok(other),
    }
}

/// A list element's `$patch`: "delete" and "replace" are known, "merge" is refused.
fn check_element_directive(m: &Map<String, Value>) -> Result<&'static str, PatchError> {
    match m.get(DIRECTIVE).and_then(Value::as_str) {
        Some("delete") => Ok("delete"),
        Some("replace") => Ok("replace"),
        Some("merge") => Err(PatchError::MergeListDirective),
        _ => Err(PatchError::BadPatchType {
            directive: m.get(DIRECTIVE).map(go_fmt).unwrap_or_default(),
            map: go_fmt(&Value::Object(m.clone())),
        }),
    }
}

/// Merge two lists of a `merge` field: scalars as a set, maps by the merge key. The result
/// keeps the patch's order for its items and the live order for the rest.
fn merge_list(
    current: Vec<Value>,
    patch: Vec<Value>,
    field: Option<FieldSchema>,
) -> Result<Vec<Value>, PatchError> {
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    let (_, key) = strategy(field);
    if element_type(&[&current, &patch])? != "map" {
        let mut merged = current.clone();
        for v in &patch {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let mut seen = Vec::with_capacity(merged.len());
        merged.retain(|v| {
            let new = !seen.contains(v);
            if new {
                seen.push(v.clone());
            }
            new
        });
        return Ok(order(merged, &patch, &current, ""));
    }
    if key.is_empty() {
        return Err(PatchError::NoMergeKeyDeclared("a list of objects".into()));
    }
    let items_schema = field.and_then(|f| f.value.items());

    // Elements carrying `$patch` act on the live list and are not merged themselves.
    let mut current = current;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = item else {
            plain.push(item);
            continue;
        };
        if !m.contains_key(DIRECTIVE) {
            plain.push(Value::Object(m));
            continue;
        }
        match check_element_directive(&m)? {
            "delete" => {
                let value = m.get(key).ok_or_else(|| no_merge_key(&m, key))?;
                current.retain(|e| e.get(key) != Some(value));
            }
            _ => replace = true,
        }
    }
    if replace {
        return plain
            .into_iter()
            .map(|item| match item {
                Value::Object(m) => merge_map(Map::new(), m, items_schema).map(Value::Object),
                other => Ok(other),
            })
            .collect();
    }

    let server_order = current.clone();
    let mut merged = current;
    for item in &plain {
        let Value::Object(m) = item else {
            return Err(PatchError::BadArgType {
                expected: "map",
                actual: go_type(item),
            });
        };
        let value = m.get(key).ok_or_else(|| no_merge_key(m, key))?;
        let mut found = None;
        for (i, e) in merged.iter().enumerate() {
            match e {
                Value::Object(em) if em.get(key) == Some(value) => {
                    found = Some(i);
                    break;
                }
                Value::Object(_) => {}
                _ => {
                    return Err(PatchError::BadArgType {
                        expected: "map",
                        actual: go_type(e),
                    });
                }
            }
        }
        match found {
            Some(i) => {
                let Value::Object(live) = std::mem::take(&mut merged[i]) else {
                    unreachable!("checked to be an object above");
                };
                merged[i] = Value::Object(merge_map(live, m.clone(), items_schema)?);
            }
            None => merged.push(Value::Object(merge_map(
                Map::new(),
                m.clone(),
                items_schema,
            )?)),
        }
    }
    Ok(order(merged, &plain, &server_order, key))
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: go_fmt(&Value::Object(m.clone())),
        key: key.to_string(),
    }
}

/// What identifies a list element: its merge key's value, or the element itself for scalars.
fn identity<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    if key.is_empty() { Some(v) } else { v.get(key) }
}

fn position(list: &[Value], v: &Value, key: &str) -> Option<usize> {
    let id = identity(v, key);
    list.iter().position(|x| identity(x, key) == id)
}

/// Order `merged`: the items named in `patch_order` in that order, the others in
/// `server_order`'s order, interleaved where the live list puts a server-only item before a
/// patch item (upstream's `normalizeElementOrder`).
fn order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
) -> Vec<Value> {
    let (mut from_patch, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| position(patch_order, v, key).is_some());
    from_patch.sort_by_cached_key(|v| position(patch_order, v, key));
    server_only.sort_by_cached_key(|v| position(server_order, v, key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, key), position(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// `$retainKeys`: drop every live key the list does not name; the patch may only set named keys.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(list) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(PatchError::BadRetainKeys);
    };
    let retained = |k: &str| list.iter().any(|x| x.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadRetainKeys);
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge the field's patch list (if any) and order the result by
/// the directive, keeping server-only items where the live list had them.
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Option<SchemaRef>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in keys {
        let Some(order_list) = patch.remove(&directive) else {
            continue;
        };
        let name = directive_field(&directive, SET_ELEMENT_ORDER)
            .ok_or(PatchError::BadSetElementOrder)?
            .to_string();
        let Value::Array(order_list) = order_list else {
            return Err(PatchError::BadArgType {
                expected: "slice",
                actual: go_type(&order_list),
            });
        };
        let as_list = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(other) => Err(PatchError::BadArgType {
                expected: "slice",
                actual: go_type(other),
            }),
        };
        let live = as_list(original.get(&name))?;
        let patch_list = as_list(patch.get(&name))?;
        let field = schema.and_then(|s| s.field(&name));
        let (strategy, key) = strategy(field);
        validate_order(patch_list.as_deref().unwrap_or(&[]), &order_list, key)?;
        let merged = match (live.clone(), patch_list) {
            (Some(l), None) => l,
            (None, Some(p)) => match fresh(Value::Array(p), field)? {
                Value::Array(a) => a,
                _ => Vec::new(),
            },
            (Some(l), Some(p)) if strategy == "merge" => merge_list(l, p, field)?,
            (Some(_), Some(p)) => p,
            (None, None) => continue,
        };
        if matches!(patch.get(&name), Some(Value::Array(_))) {
            patch.remove(&name);
        }
        let ordered = order(merged, &order_list, live.as_deref().unwrap_or(&[]), key);
        original.insert(name, Value::Array(ordered));
    }
    Ok(())
}

/// The patch list's items (deletions aside) must appear in `$setElementOrder` in the same
/// relative order.
fn validate_order(patch_list: &[Value], order_list: &[Value], key: &str) -> Result<(), PatchError> {
    if patch_list.is_empty() || order_list.is_empty() {
        return Ok(());
    }
    let is_delete = |v: &Value| v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
    let items: Vec<&Value> = patch_list
        .iter()
        .filter(|v| key.is_empty() || !is_delete(v))
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order_list.len() {
        if items[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if key_equal(items[pi], &order_list[oi], key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() && oi >= order_list.len() {
        return Err(PatchError::OrderMismatch {
            patch: go_fmt(&Value::Array(patch_list.to_vec())),
            order: go_fmt(&Value::Array(order_list.to_vec())),
        });
    }
    Ok(())
}

fn key_equal(left: &Value, right: &Value, key: &str) -> Result<bool, PatchError> {
    if key.is_empty() {
        return Ok(left == right);
    }
    Ok(merge_key_value(left, key)? == merge_key_value(right, key)?)
}

fn merge_key_value<'v>(v: &'v Value, key: &str) -> Result<&'v Value, PatchError> {
    match v {
        Value::Object(m) => m.get(key).ok_or_else(|| no_merge_key(m, key)),
        other => Err(PatchError::BadArgType {
            expected: "map",
            actual: go_type(other),
        }),
    }
}

/// The one element type of some lists (Go's view: map, string, int64, ...); lists of lists
/// and mixed lists are refused.
fn element_type(lists: &[&[Value]]) -> Result<&'static str, PatchError> {
    let mut seen: Option<&'static str> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let kind = go_type(v);
        match seen {
            None if kind == "slice" => return Err(PatchError::ListOfLists),
            None => seen = Some(kind),
            Some(prev) if prev != kind => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::MixedElements(go_fmt(&Value::Array(all))));
            }
            Some(_) => {}
        }
    }
    Ok(seen.unwrap_or("invalid"))
}

/// Go's dynamic type of a decoded JSON value (its reflect kind, as type errors print it).
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map",
        Value::Array(_) => "slice",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::Null => "invalid",
    }
}

/// JSON's name of a value's type, as Go's decoder names it in errors.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// A value as Go's `%v` prints a decoded JSON value (`map[k:v]`, `[a b]`), for messages.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests;
