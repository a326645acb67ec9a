//! Patch helpers. Strategic merge patch is applied as a JSON merge patch after removing its
//! `$`-directives; list merging by key is not implemented yet (tracked for the kubectl issue).

use serde_json::Value;

/// Remove strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`,
/// `$deleteFromPrimitiveList/...`) recursively.
pub fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k, strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips() {
        let p = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "a", "$patch": "merge"}]}});
        assert_eq!(strip_directives(p), json!({"spec": {"containers": [{"name": "a"}]}}));
    }
}
