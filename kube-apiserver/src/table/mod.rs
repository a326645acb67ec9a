//! The `meta.k8s.io` renderings of objects that clients ask for through `Accept`: Table (what
//! `kubectl get` prints) and PartialObjectMetadata(List) (what metadata-only clients such as
//! kube-rs' `get_metadata`/`list_metadata`/`metadata_watcher` read).
//!
//! k8s-openapi has no Table type, so both are built as JSON. Kinds with an upstream printer get
//! its columns and cells ([`printers`]); the rest get upstream's default table convertor
//! (`NAME`, `CREATED AT`).

mod printers;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::resources::ResourceInfo;

pub(crate) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub(crate) const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Column definitions for a resource, upstream's printer columns or the default convertor's.
pub fn columns(info: &ResourceInfo) -> Vec<Value> {
    match printers::columns_cache().get(&(info.group, info.plural)) {
        Some(cols) => cols.clone(),
        None => vec![
            json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
            json!({"name": "Created At", "type": "date", "format": "", "description": AGE_DESCRIPTION, "priority": 0}),
        ],
    }
}

/// Cells of one row, matching [`columns`] (always the wide form, as upstream's server prints).
pub fn cells(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    cells_at(info, obj, Timestamp::now())
}

fn cells_at(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    match printers::printer(info.group, info.plural) {
        Some(p) => (p.cells)(obj, now),
        None => vec![json!(obj["metadata"]["name"]), json!(rfc3339(&obj["metadata"]["creationTimestamp"]))],
    }
}

/// A timestamp as Go's `time.RFC3339` prints it in UTC (the zero time when unset).
fn rfc3339(v: &Value) -> String {
    match v.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Upstream's human duration since a timestamp ("5s", "3m", "2d3h", "<unknown>").
pub fn age(ts: Option<&str>) -> String {
    let Some(t) = ts.and_then(|s| s.parse::<Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    human_duration((Timestamp::now().as_millisecond() - t.as_millisecond()) / 1000)
}

/// apimachinery's `HumanDuration` of a number of seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", secs % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 { format!("{y}y") } else { format!("{y}y{}d", d % 365) }
    } else {
        format!("{}y", d / 365)
    }
}

/// An object's metadata as `PartialObjectMetadata` of `meta.k8s.io/<version>`.
pub fn partial_object_metadata(obj: &Value, version: &str) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": obj["metadata"]})
}

/// The Go type upstream names in its not-acceptable messages (`*core.Pod`, `*apps.DeploymentList`).
fn internal_type(info: &ResourceInfo, list: bool) -> String {
    let package = match info.group {
        "" | "events.k8s.io" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("*{package}.{}{}", info.kind, if list { "List" } else { "" })
}

/// A single object answered for `as=PartialObjectMetadata` (`want_list` false) or
/// `as=PartialObjectMetadataList`, which upstream refuses for an object that is not a list.
pub fn metadata_object(info: &ResourceInfo, obj: &Value, want_list: bool, version: &str) -> Result<Value, ApiError> {
    if want_list {
        return Err(ApiError::NotAcceptable(format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
            internal_type(info, false)
        )));
    }
    Ok(partial_object_metadata(obj, version))
}

/// A list answered for `as=PartialObjectMetadataList` (`want_list` true) or
/// `as=PartialObjectMetadata`, which upstream refuses for a list.
pub fn metadata_list<'a>(
    info: &ResourceInfo,
    items: impl IntoIterator<Item = &'a Value>,
    list_meta: &Value,
    want_list: bool,
    version: &str,
) -> Result<Value, ApiError> {
    if !want_list {
        return Err(ApiError::NotAcceptable(format!(
            "you requested PartialObjectMetadata, but the requested object is a list ({})",
            internal_type(info, true)
        )));
    }
    let items: Vec<Value> = items.into_iter().map(|o| partial_object_metadata(o, version)).collect();
    // Upstream appends to a nil slice: an empty list has `"items": null`.
    let items = if items.is_empty() { Value::Null } else { Value::Array(items) };
    Ok(json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_metadata(list_meta),
        "items": items,
    }))
}

fn list_metadata(list_meta: &Value) -> Value {
    let mut metadata = json!({});
    for k in ["resourceVersion", "continue", "remainingItemCount"] {
        if !list_meta[k].is_null() {
            metadata[k] = list_meta[k].clone();
        }
    }
    metadata
}

/// The `object` of a row for `includeObject` (None, Metadata — the default — or Object).
fn row_object(obj: &Value, include: &str) -> Result<Value, ApiError> {
    match include {
        "None" => Ok(Value::Null),
        "Object" => Ok(obj.clone()),
        "Metadata" | "" => Ok(partial_object_metadata(obj, "v1")),
        other => Err(ApiError::BadRequest(format!("unrecognized includeObject value: {}", json!(other)))),
    }
}

/// A Table of `items`. `list_meta` supplies resourceVersion/continue/remainingItemCount;
/// `with_columns` is false for watch events after the first (upstream's `NoHeaders`, which
/// leaves `columnDefinitions` null).
pub fn object_table<'a>(
    info: &ResourceInfo,
    items: impl IntoIterator<Item = &'a Value>,
    list_meta: &Value,
    include: &str,
    with_columns: bool,
) -> Result<Value, ApiError> {
    table_at(info, items, list_meta, include, with_columns, Timestamp::now())
}

/// A Table of one object; its resourceVersion is the object's, as upstream.
pub fn object_table_for(info: &ResourceInfo, obj: &Value, include: &str, with_columns: bool) -> Result<Value, ApiError> {
    let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
    object_table(info, std::iter::once(obj), &meta, include, with_columns)
}

/// A Table of an autoscaling/v1 Scale (`kubectl get --subresource=scale`).
pub fn scale_table(scale: &Value, include: &str) -> Result<Value, ApiError> {
    let p = printers::scale_printer();
    let row = json!({"cells": (p.cells)(scale, Timestamp::now()), "object": row_object(scale, include)?});
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": scale["metadata"]["resourceVersion"]},
        "columnDefinitions": (p.columns)(),
        "rows": [row],
    }))
}

fn table_at<'a>(
    info: &ResourceInfo,
    items: impl IntoIterator<Item = &'a Value>,
    list_meta: &Value,
    include: &str,
    with_columns: bool,
    now: Timestamp,
) -> Result<Value, ApiError> {
    let mut items: Vec<&Value> = items.into_iter().collect();
    if items.iter().any(|o| printers::sort_key(info.group, info.plural, o).is_some()) {
        items.sort_by_key(|o| printers::sort_key(info.group, info.plural, o));
    }
    let mut rows = Vec::with_capacity(items.len());
    for o in items {
        let mut r = json!({"cells": cells_at(info, o, now), "object": row_object(o, include)?});
        if let Some(c) = printers::row_conditions(info.group, info.plural, o) {
            r["conditions"] = c;
        }
        rows.push(r);
    }
    // The default convertor appends to a nil slice; printers start from an empty one.
    let rows = if rows.is_empty() && printers::printer(info.group, info.plural).is_none() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    let columns = if with_columns { json!(columns(info)) } else { Value::Null };
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata(list_meta),
        "columnDefinitions": columns,
        "rows": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(10 * 3600), "10h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(age(None), "<unknown>");
    }
}
