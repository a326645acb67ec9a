//! `meta.k8s.io/v1` Table output (what `kubectl get` asks for). k8s-openapi has no Table type,
//! so it is built as JSON here. Every resource gets upstream's default columns (Name, Age);
//! per-kind printer columns extend [`columns`].

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.";

/// Column definitions for a resource.
pub fn columns(_info: &ResourceInfo) -> Vec<Value> {
    vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
        json!({"name": "Age", "type": "string", "format": "", "description": AGE_DESCRIPTION, "priority": 0}),
    ]
}

/// Cells of one row, matching [`columns`].
pub fn cells(_info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    vec![json!(obj["metadata"]["name"]), json!(age(obj["metadata"]["creationTimestamp"].as_str()))]
}

/// Upstream's human duration since a timestamp ("5s", "3m", "2d3h", "<unknown>").
pub fn age(ts: Option<&str>) -> String {
    let Some(t) = ts.and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    human_duration(secs)
}

/// apimachinery's `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
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

fn row_object(obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
    }
}

/// A Table of `items`. `list_meta` supplies resourceVersion/continue; `with_columns` is false for
/// watch events after the first, as upstream.
pub fn object_table<'a>(
    info: &ResourceInfo,
    items: impl IntoIterator<Item = &'a Value>,
    list_meta: &Value,
    include: &str,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = items
        .into_iter()
        .map(|o| {
            let mut r = json!({"cells": cells(info, o)});
            let obj = row_object(o, include);
            if !obj.is_null() {
                r["object"] = obj;
            }
            r
        })
        .collect();
    let mut metadata = json!({});
    for k in ["resourceVersion", "continue", "remainingItemCount"] {
        if !list_meta[k].is_null() {
            metadata[k] = list_meta[k].clone();
        }
    }
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "rows": rows});
    t["columnDefinitions"] = if with_columns { json!(columns(info)) } else { json!([]) };
    t
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
