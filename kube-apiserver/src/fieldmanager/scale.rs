//! Server-side apply of a `Scale`: `PATCH .../scale` with an apply patch, as
//! `kubectl apply --server-side --subresource=scale` sends it.
//!
//! Why: upstream applies the Scale with a field manager of its own, over the Scale view of the
//! parent, and converts managedFields between the two (its `ScaleHandler`): the only field a
//! Scale can own on the parent is `spec.replicas`, recorded for the `scale` subresource in the
//! parent's version. Here the applied Scale is checked as upstream checks it (version,
//! managedFields, the Scale schema), then applied to the parent as a configuration holding only
//! `spec.replicas`, which records the same ownership and finds the same conflicts.

use serde_json::{Value, json};

use super::{apply_config, schema::Schema, typed, typed_patch_error};
use crate::errors::{ApiError, Cause};
use crate::registry::{Part, Store, WriteOptions, meta};

/// Apply the Scale in `body` to the scalable object `ns/name` of `store`; `scale_gvk` is the
/// subresource's body kind (autoscaling/v1 Scale). Returns the updated parent object.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    store: &Store,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
    opts: &WriteOptions,
    force: bool,
    scale_gvk: (&str, &str, &str),
) -> Result<Value, ApiError> {
    // The parent must exist (applying a Scale never creates it), and is read before the body.
    store.get(ns, name).await?;
    let dups = crate::fieldvalidation::apply_duplicates(body, opts);
    let scale = check_scale(body, scale_gvk)?;

    let mut config = json!({"apiVersion": store.api_version(), "kind": store.info.kind, "metadata": {"name": name}});
    if let Some(ns) = ns.filter(|_| store.info.namespaced) {
        config["metadata"]["namespace"] = json!(ns);
    }
    // A resourceVersion in the Scale is a precondition on the parent.
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str().filter(|rv| !rv.is_empty()) {
        config["metadata"]["resourceVersion"] = json!(rv);
    }
    if let Some(r) = scale["spec"].get("replicas") {
        config["spec"] = json!({"replicas": r});
    }

    // Upstream checks the name and validates the Scale after the merge: conflicts and strict
    // decoding errors come first. A dry run of the merge finds them without writing.
    if let Some(e) = late_error(&scale, name) {
        let probe = WriteOptions { dry_run: true, ..opts.clone() };
        apply_config(store, ns, name, Part::Main, &config, dups.as_deref(), &probe, force).await?;
        return Err(e);
    }
    let (obj, _) = apply_config(store, ns, name, Part::Main, &config, dups.as_deref(), opts, force).await?;
    Ok(obj)
}

/// Decode an applied Scale and check it as upstream's field manager does before merging.
fn check_scale(body: &[u8], (group, version, kind): (&str, &str, &str)) -> Result<Value, ApiError> {
    let scale: Value =
        serde_yaml::from_slice(body).map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
    if !scale.is_object() {
        return Err(ApiError::BadRequest("error decoding YAML: the applied configuration must be an object".into()));
    }
    let want = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let got = scale["apiVersion"].as_str().unwrap_or("");
    if got != want {
        return Err(ApiError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {got}, expected: {want}"
        )));
    }
    if !scale["metadata"]["managedFields"].is_null() {
        return Err(ApiError::BadRequest("metadata.managedFields must be nil".into()));
    }
    let got_kind = scale["kind"].as_str().unwrap_or("");
    let gvk = format!("{want}, Kind={got_kind}");
    let schema = crate::openapi::kind_schema_name(group, version, got_kind)
        .filter(|_| got_kind == kind)
        .and_then(|n| Schema::definition(crate::openapi::schemas(), &n));
    let Some(schema) = schema else {
        return Err(typed_patch_error(&scale, &gvk, &[format!("no corresponding type for {gvk}")]));
    };
    typed::to_field_set(schema, &scale, true).map_err(|errs| typed_patch_error(&scale, &gvk, &errs))?;
    Ok(scale)
}

/// The errors upstream finds only once the Scale is merged: a name other than the URL's, and
/// an invalid Scale (422).
fn late_error(scale: &Value, name: &str) -> Option<ApiError> {
    let given = meta::name(scale);
    if !given.is_empty() && given != name {
        return Some(ApiError::BadRequest(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    let replicas = scale["spec"]["replicas"].as_i64()?;
    (replicas < 0).then(|| {
        ApiError::invalid("Scale", "autoscaling", name, vec![Cause::invalid_raw(
            "spec.replicas",
            &replicas.to_string(),
            "must be greater than or equal to 0",
        )])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GVK: (&str, &str, &str) = ("autoscaling", "v1", "Scale");

    #[test]
    fn applied_scales_are_checked_as_upstream() {
        let ok = check_scale(b"apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\nspec:\n  replicas: 3\n", GVK).unwrap();
        assert_eq!(ok["spec"]["replicas"], 3);

        let e = check_scale(b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n", GVK).unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), (
            400,
            "Incorrect version specified in apply patch. Specified patch version: apps/v1, expected: autoscaling/v1"
        ));
        let e = check_scale(b"apiVersion: autoscaling/v1\nkind: Deployment\nmetadata:\n  name: web\n", GVK).unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), (
            500,
            "failed to create typed patch object (/web; autoscaling/v1, Kind=Deployment): no corresponding type for autoscaling/v1, Kind=Deployment"
        ));
        let e = check_scale(b"apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\n  namespace: d\nspec:\n  replicas: 3\n  bogus: 1\n", GVK)
            .unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), (
            500,
            "failed to create typed patch object (d/web; autoscaling/v1, Kind=Scale): .spec.bogus: field not declared in schema"
        ));
        let e = check_scale(b"apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\n  managedFields: []\n", GVK).unwrap_err();
        assert_eq!(e.to_string(), "metadata.managedFields must be nil");
        assert_eq!(check_scale(b"[1]", GVK).unwrap_err().code(), 400);
    }

    #[test]
    fn name_and_replicas_are_checked_after_the_merge() {
        let e = late_error(&json!({"metadata": {"name": "other"}, "spec": {"replicas": 1}}), "web").unwrap();
        assert_eq!(e.to_string(), "the name of the object (other) does not match the name on the URL (web)");
        let e = late_error(&json!({"metadata": {"name": "web"}, "spec": {"replicas": -1}}), "web").unwrap();
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.to_string(),
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert!(late_error(&json!({"metadata": {}, "spec": {"replicas": 0}}), "web").is_none());
        assert!(late_error(&json!({"metadata": {"name": "web"}}), "web").is_none());
    }
}
