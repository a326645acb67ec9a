//! Server-side apply and `metadata.managedFields` (upstream's field manager over
//! structured-merge-diff).
//!
//! Why: clients share objects field by field. Every write records which fields its manager
//! set; `PATCH` with `application/apply-patch+yaml` merges a manager's whole intent into the
//! live object, drops what it stopped applying, and refuses to silently overwrite fields other
//! managers own (409 with one cause per field) unless forced. kubectl's `apply --server-side`,
//! controllers and kube-rs's `Patch::Apply` depend on it.
//!
//! Layout: [`fieldpath`] (paths, sets, `FieldsV1`), [`schema`] (list/map semantics from the
//! OpenAPI schemas and markers), [`typed`] (field sets, comparison, merge, removal),
//! [`managed`] (the ownership bookkeeping). This module connects them to requests and the
//! registry: [`track_write`] is called by the store on every tracked write, [`apply_request`]
//! serves apply patches.

pub mod fieldpath;
pub mod managed;
pub mod scale;
pub mod schema;
pub mod typed;

use std::collections::HashMap;

use http::{HeaderMap, Method, header};
use serde_json::Value;

use crate::errors::{ApiError, Cause};
use crate::registry::{Part, Store, WriteOptions, meta};
use crate::resources::ResourceInfo;
use managed::{ApplyError, Reset, Resource};
use schema::Schema;

/// The content type of apply patches.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";
/// Longest accepted `fieldManager`, in bytes.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The schema of a served kind and its definition name; objects of kinds without one are
/// walked without a schema.
fn kind_schema(info: &ResourceInfo) -> (Schema<'static>, Option<String>) {
    let name = crate::openapi::kind_schema_name(info.group, info.version, info.kind);
    match name
        .as_deref()
        .and_then(|n| Schema::definition(crate::openapi::schemas(), n))
    {
        Some(schema) => (
            schema,
            name.map(|n| n.strip_prefix("io.k8s.").map(String::from).unwrap_or(n)),
        ),
        None => (Schema::Deduced, None),
    }
}

fn resource<'a>(info: &ResourceInfo, part: Part, api_version: &'a str) -> Resource<'a> {
    let has_status = info.subresources.iter().any(|s| s.name == "status");
    let reset = match part {
        Part::Status => Reset::AllButStatus,
        _ if has_status => Reset::Status,
        _ => Reset::Nothing,
    };
    let (schema, definition) = kind_schema(info);
    Resource {
        schema,
        definition,
        api_version,
        reset,
    }
}

fn subresource(part: Part, opts: &WriteOptions) -> &str {
    if part == Part::Status {
        "status"
    } else {
        &opts.subresource
    }
}

/// Record the write of `new` over `old` (`None` on create) in `new`'s managedFields, for the
/// manager in `opts`; writes without a manager leave managedFields as they are.
pub fn track_write(
    info: &ResourceInfo,
    part: Part,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
) {
    let Some(manager) = opts.field_manager.as_deref() else {
        return;
    };
    let api_version = info.api_version();
    let res = resource(info, part, &api_version);
    managed::track_update(
        &res,
        old,
        new,
        manager,
        subresource(part, opts),
        &meta::now_rfc3339(),
    );
}

/// What a client is called when it does not say: the User-Agent up to its first '/', without
/// unprintable characters, cut to the length limit (as upstream).
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let head = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in head.chars().filter(|c| printable(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

fn printable(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace() || ('\u{e000}'..='\u{f8ff}').contains(&c))
}

/// The field manager of a write request, from `fieldManager` or the User-Agent, checked as
/// upstream checks Create/Update/PatchOptions; `None` for requests that write nothing.
pub fn request_manager(
    method: &Method,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let kind = match *method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        _ => return Ok(None),
    };
    let given = query.get("fieldManager").map(String::as_str).unwrap_or("");
    let mut causes = Vec::new();
    if *method == Method::PATCH {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ct = ct.split(';').next().unwrap_or("").trim();
        if ct == APPLY_PATCH {
            if given.is_empty() {
                causes.push(Cause::required(
                    "fieldManager",
                    "is required for apply patch",
                ));
            }
        } else if query.contains_key("force") {
            causes.push(Cause::forbidden(
                "force",
                "may not be specified for non-apply patch",
            ));
        }
    }
    if given.len() > FIELD_MANAGER_MAX_LENGTH {
        causes.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
            field: "fieldManager".into(),
        });
    }
    for (i, c) in given.char_indices().filter(|(_, c)| !printable(*c)) {
        causes.push(Cause::invalid(
            "fieldManager",
            given,
            &format!("invalid character U+{:04X} (at position {i})", c as u32),
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(kind, "meta.k8s.io", "", causes));
    }
    if !given.is_empty() {
        return Ok(Some(given.to_string()));
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(Some(manager_from_user_agent(ua)))
}

fn gvk_string(info: &ResourceInfo) -> String {
    format!("{}/{}, Kind={}", info.group, info.version, info.kind)
}

fn apply_error(e: ApplyError, info: &ResourceInfo, config: &Value) -> ApiError {
    match e {
        ApplyError::Conflicts(conflicts) => ApiError::ApplyConflict {
            message: managed::conflict_message(&conflicts),
            causes: conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with {}", c.manager.describe()),
                    field: fieldpath::path_string(&c.path),
                })
                .collect(),
        },
        ApplyError::Invalid(errs) => typed_patch_error(config, &gvk_string(info), &errs),
    }
}

/// Upstream's 500 for an applied configuration its schema (of `gvk`, as Go prints a
/// GroupVersionKind) cannot type.
fn typed_patch_error(config: &Value, gvk: &str, errs: &[String]) -> ApiError {
    let detail = match errs {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    ApiError::Unknown(format!(
        "failed to create typed patch object ({}/{}; {gvk}): {detail}",
        meta::namespace(config),
        meta::name(config),
    ))
}

/// Check an applied configuration against the request before merging it.
fn check_config(
    store: &Store,
    ns: Option<&str>,
    name: &str,
    config: &Value,
) -> Result<(), ApiError> {
    let gv = store.api_version();
    let got = config["apiVersion"].as_str().unwrap_or("");
    if got != gv {
        return Err(ApiError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {got}, expected: {gv}"
        )));
    }
    let kind = config["kind"].as_str().unwrap_or("");
    if kind != store.info.kind {
        return Err(ApiError::BadRequest(format!(
            "the object provided is unrecognized (must be of type {}): kind {kind:?}",
            store.info.kind
        )));
    }
    if !config["metadata"]["managedFields"].is_null() {
        return Err(ApiError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    match meta::name(config) {
        "" => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({name} based on URL) was undeterminable: name must be provided"
            )));
        }
        n if n != name => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    if let (Some(ns), true) = (ns, store.info.namespaced) {
        let given = meta::namespace(config);
        if !given.is_empty() && given != ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
    }
    Ok(())
}

/// Serve an apply patch of `part` of `ns/name`: create the object when it does not exist
/// (main resource only), otherwise merge into it. Returns the object and whether it was
/// created. `opts.field_manager` must be set (the handler checked it).
pub async fn apply_request(
    store: &Store,
    ns: Option<&str>,
    name: &str,
    part: Part,
    body: &[u8],
    opts: &WriteOptions,
    force: bool,
) -> Result<(Value, bool), ApiError> {
    // Upstream strict-decodes the body only after a successful merge: a conflict or a wrong
    // version is reported before duplicate fields.
    let dups = crate::fieldvalidation::apply_duplicates(body, opts);
    let config: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::BadRequest(
            "error decoding YAML: the applied configuration must be an object".into(),
        ));
    }
    check_config(store, ns, name, &config)?;
    apply_config(store, ns, name, part, &config, dups.as_deref(), opts, force).await
}

/// Merge a checked configuration into `part` of `ns/name` (creating the object when it does
/// not exist, main resource only); `dups` are the body's duplicate fields, resolved once the
/// merge succeeded.
#[allow(clippy::too_many_arguments)]
async fn apply_config(
    store: &Store,
    ns: Option<&str>,
    name: &str,
    part: Part,
    config: &Value,
    dups: Option<&str>,
    opts: &WriteOptions,
    force: bool,
) -> Result<(Value, bool), ApiError> {
    let manager = opts.field_manager.clone().unwrap_or_default();
    let api_version = store.api_version();
    let res = resource(store.info, part, &api_version);
    let sub = subresource(part, opts).to_string();
    // The merge computes managedFields itself: the store must not track this write again.
    let write_opts = WriteOptions {
        field_manager: None,
        ..opts.clone()
    };
    let want_rv = meta::resource_version(config).to_string();
    for _ in 0..8 {
        let now = meta::now_rfc3339();
        match store.get(ns, name).await {
            Err(ApiError::NotFound(_)) if part == Part::Main => {
                if !want_rv.is_empty() {
                    return Err(ApiError::not_found(
                        store.info.group,
                        store.info.plural,
                        name,
                    ));
                }
                let obj = managed::apply(&res, None, config, &manager, &sub, force, &now)
                    .map_err(|e| apply_error(e, store.info, config))?;
                crate::fieldvalidation::resolve_apply_duplicates(dups, opts)?;
                match store.create(ns, obj, &write_opts).await {
                    Ok(created) => return Ok((created, true)),
                    Err(ApiError::AlreadyExists(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
            Ok(_) => {
                let updated = store
                    .guaranteed_update(ns, name, part, None, &write_opts, |cur| {
                        if !want_rv.is_empty() && want_rv != meta::resource_version(cur) {
                            return Err(ApiError::conflict(
                                store.info.group,
                                store.info.plural,
                                name,
                            ));
                        }
                        let obj = managed::apply(&res, Some(cur), config, &manager, &sub, force, &now)
                            .map_err(|e| apply_error(e, store.info, config))?;
                        crate::fieldvalidation::resolve_apply_duplicates(dups, opts)?;
                        Ok(obj)
                    })
                    .await;
                match updated {
                    Err(ApiError::NotFound(_)) if part == Part::Main => continue,
                    other => return other.map(|o| (o, false)),
                }
            }
        }
    }
    Err(ApiError::conflict(
        store.info.group,
        store.info.plural,
        name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn managers_default_to_the_user_agent_prefix() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.33.0 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
        assert_eq!(
            manager_from_user_agent(
                "kube-controller-manager/v1.33.0 (linux/amd64) kubernetes/abc/system:serviceaccount:kube-system:x"
            ),
            "kube-controller-manager"
        );
        assert_eq!(manager_from_user_agent("a\u{7}b"), "ab");
        assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), 128);
        let m = request_manager(
            &Method::POST,
            &query(&[]),
            &headers(&[("user-agent", "curl/8.0")]),
        )
        .unwrap();
        assert_eq!(m.as_deref(), Some("curl"));
        let m = request_manager(
            &Method::PUT,
            &query(&[("fieldManager", "kubectl-edit")]),
            &headers(&[]),
        )
        .unwrap();
        assert_eq!(m.as_deref(), Some("kubectl-edit"));
        assert_eq!(
            request_manager(&Method::GET, &query(&[]), &headers(&[])).unwrap(),
            None
        );
    }

    #[test]
    fn patch_options_are_checked_as_upstream() {
        let apply = headers(&[("content-type", APPLY_PATCH)]);
        let e = request_manager(&Method::PATCH, &query(&[]), &apply).unwrap_err();
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.to_string(),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        let merge = headers(&[("content-type", "application/merge-patch+json")]);
        let e = request_manager(&Method::PATCH, &query(&[("force", "true")]), &merge).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
        );
        let e = request_manager(
            &Method::POST,
            &query(&[("fieldManager", "a\u{1}")]),
            &headers(&[]),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value"
            ),
            "{e}"
        );
        assert!(
            request_manager(
                &Method::PATCH,
                &query(&[("fieldManager", "m"), ("force", "true")]),
                &apply
            )
            .is_ok()
        );
    }
}
