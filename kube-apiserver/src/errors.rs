//! API errors and their `metav1.Status` form.
//!
//! Every failure the REST layer returns is an [`ApiError`], rendered as the same `Status` object,
//! reason and code that upstream returns, because clients (kubectl, client-go, kube-rs) branch on
//! `reason` and `code` and sometimes parse `message`.

use serde_json::{Value, json};

use crate::storage::StorageError;
use crate::validation::go::quote;

/// One field-level cause of an error (`details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueForbidden`.
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {detail}", quote(value)),
            field: field.into(),
        }
    }
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Cause { reason: "FieldValueRequired".into(), message, field: field.into() }
    }
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Cause { reason: "FieldValueForbidden".into(), message: format!("Forbidden: {detail}"), field: field.into() }
    }
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {}: supported values: {}", quote(value), list.join(", ")),
            field: field.into(),
        }
    }
    /// An invalid value already rendered as Go prints it (`5`, `map[string]string{...}`).
    pub fn invalid_raw(field: &str, rendered: &str, detail: &str) -> Self {
        Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {rendered}: {detail}"), field: field.into() }
    }
    /// An unsupported value already rendered as Go prints it.
    pub fn not_supported_raw(field: &str, rendered: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {rendered}: supported values: {}", list.join(", ")),
            field: field.into(),
        }
    }
    pub fn not_found(field: &str, value: &str) -> Self {
        Cause { reason: "FieldValueNotFound".into(), message: format!("Not found: {}", quote(value)), field: field.into() }
    }
    pub fn too_long(field: &str, max: usize) -> Self {
        Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {max} bytes"),
            field: field.into(),
        }
    }
    pub fn duplicate(field: &str, value: &str) -> Self {
        Cause { reason: "FieldValueDuplicate".into(), message: format!("Duplicate value: {}", quote(value)), field: field.into() }
    }
    /// Upstream's "field: message" form used in the summary message.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Identifies the object an error is about, for `details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    /// Plural resource name (`details.kind` holds the resource for most errors, as upstream).
    pub resource: String,
    pub name: String,
}

impl Target {
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Target { group: group.into(), resource: resource.into(), name: name.into() }
    }
    /// `configmaps` or `deployments.apps`, as upstream prints a GroupResource.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.resource.clone() } else { format!("{}.{}", self.resource, self.group) }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{}", not_found_message(.0))]
    NotFound(Target),
    #[error("{} \"{}\" already exists", .0.group_resource(), .0.name)]
    AlreadyExists(Target),
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .target.group_resource(), .target.name, .message)]
    Conflict { target: Target, message: String },
    /// 422: `kind` is the object's Kind.
    #[error("{} {} is invalid: {}", qualified_kind(.kind, &.target.group), quote(&.target.name), causes_summary(.causes))]
    Invalid { kind: String, target: Target, causes: Vec<Cause> },
    /// 409 from server-side apply: fields owned by other managers (causes say which).
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<Cause> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String, Option<Target>),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// 429; `retry_after` seconds (0 = none) go to `details.retryAfterSeconds` and the
    /// `Retry-After` header, as upstream's `NewTooManyRequests`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u32, causes: Vec<Cause> },
    #[error("{0}")]
    Timeout(String),
    /// 504 for a resourceVersion the server has not reached (upstream's
    /// `NewTooLargeResourceVersionError`: a `ResourceVersionTooLarge` cause, retry after 1 s).
    #[error("Too large resource version: {requested}, current: {current}")]
    ResourceVersionTooLarge { requested: i64, current: i64 },
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Internal(String),
    /// 500 without a reason: an error upstream does not classify (it answers with the bare
    /// message, as for server-side apply's schema errors).
    #[error("{0}")]
    Unknown(String),
    /// 429/504-style "try again" from storage contention.
    #[error("{0}")]
    Unauthorized(String),
}

fn not_found_message(t: &Target) -> String {
    if t.name.is_empty() {
        format!("the server could not find the requested resource")
    } else {
        format!("{} \"{}\" not found", t.group_resource(), t.name)
    }
}

/// `Deployment.apps`, or `Pod` for the core group, as upstream prints a GroupKind.
fn qualified_kind(kind: &str, group: &str) -> String {
    if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") }
}

fn causes_summary(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes.iter().map(Cause::summary).collect();
    if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) }
}

pub const CONFLICT_MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl ApiError {
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::NotFound(Target::new(group, resource, name))
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError::AlreadyExists(Target::new(group, resource, name))
    }
    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        ApiError::Conflict { target: Target::new(group, resource, name), message: CONFLICT_MODIFIED.into() }
    }
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        ApiError::Invalid { kind: kind.into(), target: Target::new(group, "", name), causes }
    }
    pub fn too_many_requests(message: impl Into<String>, retry_after: u32) -> Self {
        ApiError::TooManyRequests { message: message.into(), retry_after, causes: Vec::new() }
    }
    /// Seconds for the `Retry-After` header, when the error asks the client to come back.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::TooManyRequests { retry_after, .. } if *retry_after > 0 => Some(*retry_after),
            ApiError::ResourceVersionTooLarge { .. } => Some(1),
            _ => None,
        }
    }
    /// 400 for a body that does not decode as `kind`, as upstream's codec words it.
    pub fn cannot_decode(kind: &str, version: &str, why: impl std::fmt::Display) -> Self {
        ApiError::BadRequest(format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {why}"))
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(format!("Internal error occurred: {e}"))
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(..) => 403,
            ApiError::Gone(_) => 410,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::RequestEntityTooLarge(_) => 413,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Timeout(_) | ApiError::ResourceVersionTooLarge { .. } => 504,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::Internal(_) | ApiError::Unknown(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(..) => "Forbidden",
            ApiError::Gone(_) => "Expired",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Timeout(_) | ApiError::ResourceVersionTooLarge { .. } => "Timeout",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unknown(_) => "",
        }
    }

    /// The `metav1.Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if self.reason().is_empty() {
            status.as_object_mut().map(|s| s.remove("reason"));
        }
        let details = match self {
            ApiError::NotFound(t) | ApiError::AlreadyExists(t) | ApiError::Conflict { target: t, .. } => {
                if t.name.is_empty() && t.resource.is_empty() {
                    None
                } else {
                    Some(json!({"name": t.name, "group": t.group, "kind": t.resource}))
                }
            }
            ApiError::Forbidden(_, Some(t)) => Some(json!({"name": t.name, "group": t.group, "kind": t.resource})),
            ApiError::Invalid { kind, target, causes } => Some(json!({
                "name": target.name,
                "group": target.group,
                "kind": kind,
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            })),
            ApiError::ApplyConflict { causes, .. } => Some(json!({
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            })),
            ApiError::TooManyRequests { retry_after, causes, .. } => {
                let mut d = json!({});
                if *retry_after > 0 {
                    d["retryAfterSeconds"] = json!(retry_after);
                }
                if !causes.is_empty() {
                    d["causes"] = causes.iter().map(|c| json!({"reason": c.reason, "message": c.message})).collect();
                }
                Some(d)
            }
            ApiError::ResourceVersionTooLarge { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            })),
            _ => None,
        };
        if let Some(mut d) = details {
            if let Some(obj) = d.as_object_mut() {
                obj.retain(|_, v| v.as_str().map(|s| !s.is_empty()).unwrap_or(true));
            }
            status["details"] = d;
        }
        status
    }

    /// Map a storage error, naming the object it concerns.
    pub fn from_storage(e: StorageError, group: &str, resource: &str, name: &str) -> Self {
        match e {
            StorageError::AlreadyExists(_) => ApiError::already_exists(group, resource, name),
            StorageError::NotFound(_) => ApiError::not_found(group, resource, name),
            StorageError::Conflict { .. } => ApiError::conflict(group, resource, name),
            StorageError::Compacted { requested, compacted } => {
                ApiError::Gone(format!("too old resource version: {requested} ({compacted})"))
            }
            StorageError::FutureRevision { requested, current } => ApiError::ResourceVersionTooLarge { requested, current },
            StorageError::Unavailable(m) => ApiError::ServiceUnavailable(format!("storage is unavailable: {m}")),
            StorageError::Internal(m) => ApiError::internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_matches_upstream() {
        let e = ApiError::not_found("", "configmaps", "x");
        assert_eq!(e.to_string(), "configmaps \"x\" not found");
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["kind"], "configmaps");
        assert!(s["details"].get("group").is_none());
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.to_string(), "deployments.apps \"web\" not found");
    }

    #[test]
    fn conflict_message() {
        let e = ApiError::conflict("", "configmaps", "x");
        assert_eq!(
            e.to_string(),
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(e.code(), 409);
    }

    #[test]
    fn too_many_requests_details() {
        let e = ApiError::too_many_requests("slow down", 10);
        let s = e.to_status();
        assert_eq!((s["code"].as_u64(), s["reason"].as_str()), (Some(429), Some("TooManyRequests")));
        assert_eq!(s["details"]["retryAfterSeconds"], 10);
        assert_eq!(e.retry_after(), Some(10));
        let e = ApiError::TooManyRequests {
            message: "no".into(),
            retry_after: 0,
            causes: vec![Cause { reason: "DisruptionBudget".into(), message: "needs 2".into(), field: String::new() }],
        };
        let s = e.to_status();
        assert!(s["details"].get("retryAfterSeconds").is_none());
        assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid("ConfigMap", "", "Bad_Name", vec![Cause::invalid("metadata.name", "Bad_Name", "bad")]);
        assert_eq!(e.to_string(), "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": bad");
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
    }
}
