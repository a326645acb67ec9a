//! The OpenAPI documents the server publishes: v2 (`/openapi/v2`, one swagger 2.0 document) and
//! v3 (`/openapi/v3`, an index of one document per group-version at `/openapi/v3/api/v1`,
//! `/openapi/v3/apis/<group>/<version>`).
//!
//! Why: kubectl 1.33 will not `create -f`/`apply -f` with its default `--validate=strict` until
//! the v3 document of the object's group-version shows a PATCH operation for its kind that takes
//! `fieldValidation`; `kubectl explain` reads the schemas from v3; client-side apply, `edit` and
//! `diff` read the strategic-merge-patch extensions from them.
//!
//! Schemas come from k8s-openapi's schemars implementations (already named as upstream names
//! them, with upstream's descriptions), fixed up where k8s-openapi departs from upstream and
//! completed with the list/map/patch extensions of [`markers`]. Operations are derived from the
//! resource table. Everything is built once, serialized, and hashed (SHA-512, as upstream) so
//! clients can cache documents by the `hash` in the index.

mod markers;
pub mod proto_v2;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use k8s_openapi::Resource;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions_v1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta_v1;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration_v1;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::resources::{self, ResourceInfo};

/// Where a v2 document keeps its schemas; v3 references are rewritten from this.
const V2_REF: &str = "#/definitions/";
const V3_REF: &str = "#/components/schemas/";

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Response content types of ordinary operations, and the extra ones of list/watch.
const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
/// Request content types of PATCH.
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
/// Request content types of POST and PUT.
const CONSUMES_ANY: &[&str] = &["*/*"];

/// Plurals whose DELETE answers with the deleted object rather than a Status, as upstream's
/// registries for them set `ReturnDeletedObject`.
const DELETE_RETURNS_OBJECT: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "podtemplates"),
    ("", "serviceaccounts"),
    ("", "persistentvolumes"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
];

/// A kind whose schema the documents carry, with how to generate it.
struct KindSchema {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    name: fn() -> Cow<'static, str>,
    add: fn(&mut SchemaGenerator),
}

macro_rules! kinds {
    ($($ty:ty),* $(,)?) => {
        &[$(KindSchema {
            group: <$ty as Resource>::GROUP,
            version: <$ty as Resource>::VERSION,
            kind: <$ty as Resource>::KIND,
            name: <$ty as JsonSchema>::schema_name,
            add: |g| {
                g.subschema_for::<$ty>();
            },
        }),*]
    };
}

/// Every kind served as a resource or a subresource body. A test checks this covers the
/// resource table, so a new row without a schema fails the build's tests.
static KINDS: &[KindSchema] = kinds![
    api::core::v1::Binding,
    api::core::v1::ConfigMap,
    api::core::v1::Endpoints,
    api::core::v1::Event,
    api::core::v1::LimitRange,
    api::core::v1::Namespace,
    api::core::v1::Node,
    api::core::v1::PersistentVolumeClaim,
    api::core::v1::PersistentVolume,
    api::core::v1::Pod,
    api::core::v1::PodTemplate,
    api::core::v1::ReplicationController,
    api::core::v1::ResourceQuota,
    api::core::v1::Secret,
    api::core::v1::ServiceAccount,
    api::core::v1::Service,
    apiregistration_v1::APIService,
    api::apps::v1::ControllerRevision,
    api::apps::v1::DaemonSet,
    api::apps::v1::Deployment,
    api::apps::v1::ReplicaSet,
    api::apps::v1::StatefulSet,
    api::events::v1::Event,
    api::authentication::v1::SelfSubjectReview,
    api::authentication::v1::TokenReview,
    api::authorization::v1::LocalSubjectAccessReview,
    api::authorization::v1::SelfSubjectAccessReview,
    api::authorization::v1::SelfSubjectRulesReview,
    api::authorization::v1::SubjectAccessReview,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::autoscaling::v1::HorizontalPodAutoscaler,
    api::batch::v1::CronJob,
    api::batch::v1::Job,
    api::certificates::v1::CertificateSigningRequest,
    api::networking::v1::IngressClass,
    api::networking::v1::Ingress,
    api::networking::v1::IPAddress,
    api::networking::v1::NetworkPolicy,
    api::networking::v1::ServiceCIDR,
    api::policy::v1::PodDisruptionBudget,
    api::rbac::v1::ClusterRoleBinding,
    api::rbac::v1::ClusterRole,
    api::rbac::v1::RoleBinding,
    api::rbac::v1::Role,
    api::storage::v1::CSIDriver,
    api::storage::v1::CSINode,
    api::storage::v1::CSIStorageCapacity,
    api::storage::v1::StorageClass,
    api::storage::v1::VolumeAttachment,
    api::admissionregistration::v1::MutatingWebhookConfiguration,
    api::admissionregistration::v1::ValidatingAdmissionPolicy,
    api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    api::admissionregistration::v1::ValidatingWebhookConfiguration,
    apiextensions_v1::CustomResourceDefinition,
    api::scheduling::v1::PriorityClass,
    api::coordination::v1::Lease,
    api::node::v1::RuntimeClass,
    api::discovery::v1::EndpointSlice,
    api::flowcontrol::v1::FlowSchema,
    api::flowcontrol::v1::PriorityLevelConfiguration,
    // Subresource bodies.
    api::autoscaling::v1::Scale,
    api::policy::v1::Eviction,
    api::authentication::v1::TokenRequest,
];

/// The schema name of `group/version, Kind=kind`, if it is one of [`KINDS`].
pub fn schema_name(group: &str, version: &str, kind: &str) -> Option<String> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
        .map(|k| (k.name)().into_owned())
}

/// The definition name (a key of [`schemas`]) of `group/version, Kind=kind`.
pub fn kind_schema_name(group: &str, version: &str, kind: &str) -> Option<String> {
    schema_name(group, version, kind)
}

/// One serialized document and the hash clients cache it by.
struct Document {
    bytes: Bytes,
    hash: String,
}

impl Document {
    fn new<T: Serialize>(value: &T) -> Document {
        let bytes = match serde_json::to_vec(value) {
            Ok(bytes) => Bytes::from(bytes),
            // Unreachable in practice: every key is a string and every value plain JSON.
            Err(error) => {
                tracing::error!(%error, "serializing an OpenAPI document");
                Bytes::from_static(b"{}")
            }
        };
        let hash = hex_upper(ring::digest::digest(&ring::digest::SHA512, &bytes).as_ref());
        Document { bytes, hash }
    }
}

/// A v3 document, serialized from borrowed schemas so they are not cloned per group-version.
#[derive(Serialize)]
struct V3Document<'a> {
    components: V3Components<'a>,
    info: Value,
    openapi: &'static str,
    paths: Map<String, Value>,
    security: Value,
}

#[derive(Serialize)]
struct V3Components<'a> {
    schemas: BTreeMap<&'a str, &'a Value>,
    #[serde(rename = "securitySchemes")]
    security_schemes: Value,
}

/// The swagger 2.0 document.
#[derive(Serialize)]
struct V2Document<'a> {
    definitions: &'a Map<String, Value>,
    info: Value,
    paths: Map<String, Value>,
    security: Value,
    #[serde(rename = "securityDefinitions")]
    security_definitions: Value,
    swagger: &'static str,
}

fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The server's OpenAPI documents, built once at start-up.
pub struct OpenApi {
    v3_index: Value,
    /// Keyed by index path: "api/v1", "apis/apps/v1", ...
    v3: BTreeMap<String, Document>,
    v2: Document,
    /// The v2 document as gnostic protobuf, made on first request.
    v2_protobuf: std::sync::OnceLock<Bytes>,
    /// When the documents were built: `/openapi/v2`'s Last-Modified.
    built: jiff::Timestamp,
}

/// How `/openapi/v2` answers one request.
#[derive(Debug)]
pub enum V2Answer<'a> {
    /// 200 with the document in the negotiated form.
    Document { content_type: &'static str, body: &'a Bytes },
    /// 304: the client's copy is current (by ETag, or by date without an ETag).
    NotModified,
    /// 406: the client takes neither JSON nor protobuf.
    NotAcceptable,
}

impl OpenApi {
    /// Generate every document from k8s-openapi's schemas and the resource table.
    pub fn build() -> OpenApi {
        let started = Instant::now();
        let definitions = schemas();
        let v3_definitions: Map<String, Value> = definitions
            .iter()
            .map(|(name, schema)| (name.clone(), v3_schema(name, schema)))
            .collect();
        let mut v2_paths = Map::new();
        let mut v3 = BTreeMap::new();
        let mut index = Map::new();
        for (group, versions) in resources::groups() {
            for version in versions {
                let items = group_version_paths(group, version);
                for item in &items {
                    v2_paths.insert(item.path.clone(), item.to_v2());
                }
                let document = Document::new(&v3_document(&items, definitions, &v3_definitions));
                let key = index_path(group, version);
                index.insert(
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", document.hash)}),
                );
                v3.insert(key, document);
            }
        }
        let v2 = V2Document {
            definitions,
            info: json!({"title": "Kubernetes", "version": crate::handler::KUBE_VERSION.2}),
            paths: v2_paths,
            security: json!([{"BearerToken": []}]),
            security_definitions: json!({"BearerToken": bearer_scheme()}),
            swagger: "2.0",
        };
        let api = OpenApi {
            v3_index: json!({"paths": index}),
            v3,
            v2: Document::new(&v2),
            v2_protobuf: std::sync::OnceLock::new(),
            built: jiff::Timestamp::now(),
        };
        tracing::debug!(elapsed = ?started.elapsed(), "built OpenAPI documents");
        api
    }

    /// The `/openapi/v3` index: `{"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}`.
    pub fn v3_index(&self) -> &Value {
        &self.v3_index
    }

    /// The serialized v3 document of one group-version, by index path ("api/v1",
    /// "apis/apps/v1"; a leading '/' is ignored).
    pub fn v3_doc(&self, path: &str) -> Option<&Bytes> {
        self.v3.get(path.trim_start_matches('/')).map(|d| &d.bytes)
    }

    /// The hash of a v3 document, as the index's `serverRelativeURL` carries it (also a
    /// suitable ETag).
    pub fn v3_hash(&self, path: &str) -> Option<&str> {
        self.v3
            .get(path.trim_start_matches('/'))
            .map(|d| d.hash.as_str())
    }

    /// Index paths of every v3 document.
    pub fn v3_paths(&self) -> impl Iterator<Item = &str> {
        self.v3.keys().map(String::as_str)
    }

    /// The serialized swagger 2.0 document.
    pub fn v2(&self) -> &Bytes {
        &self.v2.bytes
    }

    /// The v2 document in gnostic's protobuf form (`openapi.v2.Document`).
    pub fn v2_protobuf(&self) -> &Bytes {
        self.v2_protobuf.get_or_init(|| match serde_json::from_slice::<Value>(&self.v2.bytes) {
            Ok(doc) => Bytes::from(proto_v2::encode(&doc)),
            Err(error) => {
                tracing::error!(%error, "re-reading the OpenAPI v2 document");
                Bytes::new()
            }
        })
    }

    /// The hash of the v2 document (a suitable ETag).
    pub fn v2_hash(&self) -> &str {
        &self.v2.hash
    }

    /// The v2 document's Last-Modified value (its build time, as an HTTP date).
    pub fn v2_last_modified(&self) -> String {
        jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&self.built).unwrap_or_default()
    }

    /// Answer a request for `/openapi/v2` as upstream does: the form by `Accept`, then the
    /// conditional headers as Go's `http.ServeContent` reads them (`If-None-Match` against the
    /// ETag, which both forms share, and only without it `If-Modified-Since`).
    pub fn v2_answer(&self, accept: &str, if_none_match: Option<&str>, if_modified_since: Option<&str>) -> V2Answer<'_> {
        let Some(format) = proto_v2::negotiate(accept) else {
            return V2Answer::NotAcceptable;
        };
        let current = match if_none_match {
            Some(tags) => {
                let etag = format!("\"{}\"", self.v2.hash);
                tags.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag)
            }
            None => if_modified_since
                .and_then(|date| jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(date.trim()).ok())
                .is_some_and(|since| self.built.as_second() <= since.as_second()),
        };
        if current {
            return V2Answer::NotModified;
        }
        match format {
            proto_v2::Format::Json => V2Answer::Document { content_type: "application/json", body: self.v2() },
            proto_v2::Format::Protobuf => V2Answer::Document { content_type: proto_v2::CONTENT_TYPE, body: self.v2_protobuf() },
        }
    }
}

/// "api/v1" for the core group, "apis/<group>/<version>" otherwise.
fn index_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn bearer_scheme() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

// ---------------------------------------------------------------------------------------------
// Schemas

/// All schemas, in swagger 2.0 form (`#/definitions/` references with sibling keywords).
fn definitions() -> Map<String, Value> {
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.transforms.clear();
            s.meta_schema = None;
            s.definitions_path = "/definitions".into();
        })
        .into_generator();
    for k in KINDS {
        (k.add)(&mut generator);
    }
    generator.subschema_for::<meta_v1::Status>();
    generator.subschema_for::<meta_v1::DeleteOptions>();
    generator.subschema_for::<meta_v1::Patch>();
    generator.subschema_for::<meta_v1::APIResourceList>();
    generator.subschema_for::<meta_v1::ListMeta>();
    let mut defs = generator.take_definitions(false);

    for name in markers::UNTYPED {
        if let Some(Value::Object(schema)) = defs.get_mut(&format!("io.k8s.{name}")) {
            schema.retain(|k, _| k == "description");
        }
    }
    fix_required(&mut defs);
    apply_markers(&mut defs);
    // Upstream's swagger 2.0 forms; v3 gets its `oneOf` forms in `to_v3`.
    if let Some(Value::Object(s)) = defs.get_mut(INT_OR_STRING) {
        s.insert("type".into(), json!("string"));
        s.insert("format".into(), json!("int-or-string"));
    }
    if let Some(Value::Object(s)) = defs.get_mut(QUANTITY) {
        s.insert("type".into(), json!("string"));
    }
    add_lists(&mut defs);
    add_gvks(&mut defs);
    defs
}

/// Every schema in swagger 2.0 form (`#/definitions/` references), keyed by name, built once.
/// The documents are rendered from these, and request bodies are checked against them for
/// unknown fields (see [`crate::fieldvalidation`]).
pub fn schemas() -> &'static Map<String, Value> {
    static SCHEMAS: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    SCHEMAS.get_or_init(definitions)
}

/// Whether `schema` (a property, in v2 form) references `target`.
fn refers_to(schema: &Value, target: &str) -> bool {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .is_some_and(|r| r.strip_prefix(V2_REF) == Some(target))
}

fn fix_required(defs: &mut Map<String, Value>) {
    for schema in defs.values_mut() {
        let Some(obj) = schema.as_object_mut() else {
            continue;
        };
        let meta_is_object_meta = obj
            .get("properties")
            .and_then(|p| p.get("metadata"))
            .is_some_and(|m| refers_to(m, OBJECT_META) || refers_to(m, LIST_META));
        if meta_is_object_meta {
            remove_required(obj, "metadata");
        }
    }
    for (name, add, remove) in markers::REQUIRED {
        let Some(Value::Object(obj)) = defs.get_mut(&format!("io.k8s.{name}")) else {
            tracing::warn!(schema = name, "required fix-up names an unknown schema");
            continue;
        };
        for field in *remove {
            remove_required(obj, field);
        }
        for field in *add {
            let required = obj.entry("required").or_insert_with(|| json!([]));
            if let Some(list) = required.as_array_mut()
                && !list.iter().any(|v| v == field)
            {
                list.push(json!(field));
            }
        }
    }
}

fn remove_required(obj: &mut Map<String, Value>, field: &str) {
    let now_empty = match obj.get_mut("required").and_then(Value::as_array_mut) {
        Some(list) => {
            list.retain(|v| v != field);
            list.is_empty()
        }
        None => false,
    };
    if now_empty {
        obj.remove("required");
    }
}

fn apply_markers(defs: &mut Map<String, Value>) {
    for &(schema, field, list_type, keys, strategy, merge_key, map_type) in markers::FIELDS {
        let property = defs
            .get_mut(&format!("io.k8s.{schema}"))
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut);
        let Some(property) = property else {
            tracing::warn!(schema, field, "marker names an unknown property");
            continue;
        };
        let mut set = |key: &str, value: &str| {
            if !value.is_empty() {
                property.insert(key.into(), json!(value));
            }
        };
        set("x-kubernetes-list-type", list_type);
        set("x-kubernetes-patch-strategy", strategy);
        set("x-kubernetes-patch-merge-key", merge_key);
        set("x-kubernetes-map-type", map_type);
        if !keys.is_empty() {
            property.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
    for &(schema, map_type) in markers::MAP_TYPES {
        if let Some(Value::Object(s)) = defs.get_mut(&format!("io.k8s.{schema}")) {
            s.insert("x-kubernetes-map-type".into(), json!(map_type));
        }
    }
    for &(schema, discriminator, fields) in markers::UNIONS {
        if let Some(Value::Object(s)) = defs.get_mut(&format!("io.k8s.{schema}")) {
            let by: Map<String, Value> = fields
                .iter()
                .map(|(f, v)| ((*f).to_string(), json!(v)))
                .collect();
            s.insert(
                "x-kubernetes-unions".into(),
                json!([{"discriminator": discriminator, "fields-to-discriminateBy": by}]),
            );
        }
    }
}

/// k8s-openapi has no schemas for list kinds: build `<Kind>List` for every listable resource
/// from the kind's own `apiVersion`/`kind` properties.
fn add_lists(defs: &mut Map<String, Value>) {
    for r in resources::all().iter().filter(|r| r.supports("list")) {
        let Some(name) = schema_name(r.group, r.version, r.kind) else {
            continue;
        };
        let Some(props) = defs.get(&name).and_then(|s| s.get("properties")) else {
            continue;
        };
        let list = json!({
            "description": format!("{}List is a list of {}.", r.kind, r.kind),
            "type": "object",
            "properties": {
                "apiVersion": props.get("apiVersion").cloned().unwrap_or_else(|| json!({"type": "string"})),
                "items": {
                    "description": format!("List of {}.", r.plural),
                    "type": "array",
                    "items": {"$ref": format!("{V2_REF}{name}")},
                },
                "kind": props.get("kind").cloned().unwrap_or_else(|| json!({"type": "string"})),
                "metadata": {
                    "$ref": format!("{V2_REF}{LIST_META}"),
                    "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                },
            },
            "required": ["items"],
            "x-kubernetes-group-version-kind": [gvk(r.group, r.version, &format!("{}List", r.kind))],
        });
        defs.insert(format!("{name}List"), list);
    }
}

fn add_gvks(defs: &mut Map<String, Value>) {
    for k in KINDS {
        if let Some(Value::Object(s)) = defs.get_mut((k.name)().as_ref()) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(k.group, k.version, k.kind)]),
            );
        }
    }
    let meta = [(STATUS, "Status"), (API_RESOURCE_LIST, "APIResourceList")];
    for (name, kind) in meta {
        if let Some(Value::Object(s)) = defs.get_mut(name) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk("", "v1", kind)]),
            );
        }
    }
    // DeleteOptions is accepted in every group-version.
    let all: Vec<Value> = resources::groups()
        .into_iter()
        .flat_map(|(g, vs)| vs.into_iter().map(move |v| gvk(g, v, "DeleteOptions")))
        .collect();
    if let Some(Value::Object(s)) = defs.get_mut(DELETE_OPTIONS) {
        s.insert("x-kubernetes-group-version-kind".into(), Value::Array(all));
    }
}

/// Rewrite a swagger 2.0 schema into OpenAPI 3 form: references move to
/// `#/components/schemas/`, and a reference with sibling keywords (a description) becomes
/// `allOf: [{$ref}]` beside them, as upstream writes it (OpenAPI 3.0 ignores `$ref` siblings).
fn to_v3(schema: &Value) -> Value {
    match schema {
        Value::Object(obj) => {
            let mut out = Map::with_capacity(obj.len());
            for (k, v) in obj {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.insert(k.clone(), json!(v3_ref(r)));
                    }
                    // Property names and extension values are data, not schemas.
                    (
                        "x-kubernetes-group-version-kind"
                        | "x-kubernetes-list-map-keys"
                        | "x-kubernetes-unions"
                        | "required"
                        | "enum",
                        _,
                    ) => {
                        out.insert(k.clone(), v.clone());
                    }
                    ("properties", Value::Object(props)) => {
                        let props: Map<String, Value> =
                            props.iter().map(|(n, s)| (n.clone(), to_v3(s))).collect();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    _ => {
                        out.insert(k.clone(), to_v3(v));
                    }
                }
            }
            if out.len() > 1
                && let Some(r) = out.remove("$ref")
            {
                out.insert("allOf".into(), json!([{"$ref": r}]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

fn v3_ref(r: &str) -> String {
    match r.strip_prefix(V2_REF) {
        Some(name) => format!("{V3_REF}{name}"),
        None => r.to_string(),
    }
}

/// The schema of `name` in v3 form, with upstream's `oneOf` forms of the two scalar unions.
fn v3_schema(name: &str, schema: &Value) -> Value {
    let mut out = to_v3(schema);
    if let Some(obj) = out.as_object_mut() {
        match name {
            INT_OR_STRING => {
                obj.remove("type");
                obj.insert(
                    "oneOf".into(),
                    json!([{"type": "integer"}, {"type": "string"}]),
                );
            }
            QUANTITY => {
                obj.remove("type");
                obj.insert(
                    "oneOf".into(),
                    json!([{"type": "string"}, {"type": "number"}]),
                );
            }
            _ => {}
        }
    }
    out
}

/// Names of every schema `value` references.
fn collect_refs<'a>(value: &'a Value, prefix: &str, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                if k == "$ref" {
                    if let Some(name) = v.as_str().and_then(|r| r.strip_prefix(prefix)) {
                        out.push(name);
                    }
                } else {
                    collect_refs(v, prefix, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, prefix, out)),
        _ => {}
    }
}

/// The names `roots` reference, transitively.
fn reachable(roots: &[String], defs: &Map<String, Value>) -> BTreeSet<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = roots.to_vec();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = defs.get(&name) {
            let mut refs = Vec::new();
            collect_refs(schema, V2_REF, &mut refs);
            stack.extend(
                refs.into_iter()
                    .filter(|r| !seen.contains(*r))
                    .map(String::from),
            );
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Operations

#[derive(Clone, Copy, PartialEq, Eq)]
enum In {
    Path,
    Query,
}

struct Param {
    name: &'static str,
    location: In,
    ty: &'static str,
    description: Cow<'static, str>,
}

impl Param {
    fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
        Param {
            name,
            location: In::Query,
            ty,
            description: description.into(),
        }
    }

    fn to_v2(&self) -> Value {
        let mut p = json!({
            "name": self.name,
            "in": if self.location == In::Path { "path" } else { "query" },
            "description": self.description,
            "type": self.ty,
            "uniqueItems": true,
        });
        if self.location == In::Path {
            p["required"] = json!(true);
        }
        p
    }

    fn to_v3(&self) -> Value {
        let mut p = json!({
            "name": self.name,
            "in": if self.location == In::Path { "path" } else { "query" },
            "description": self.description,
            "schema": {"type": self.ty, "uniqueItems": true},
        });
        if self.location == In::Path {
            p["required"] = json!(true);
        }
        p
    }
}

fn p_dry_run() -> Param {
    Param::query(
        "dryRun",
        "string",
        "When present, modifications are not persisted. Valid values: All (every dry run stage is processed).",
    )
}

fn p_field_manager() -> Param {
    Param::query(
        "fieldManager",
        "string",
        "Name of the actor making these changes, at most 128 printable characters; required for apply patches.",
    )
}

fn p_field_validation() -> Param {
    Param::query(
        "fieldValidation",
        "string",
        "How the server handles unknown or duplicate fields in the request body: Ignore (drop them silently), Warn (drop them with a warning header per field; the default) or Strict (reject the request with BadRequest).",
    )
}

fn p_force() -> Param {
    Param::query(
        "force",
        "boolean",
        "Force an apply patch: take ownership of fields that conflict with other managers. Must be unset for other patch types.",
    )
}

fn list_params(watch: bool) -> Vec<Param> {
    let mut ps = Vec::new();
    if watch {
        ps.push(Param::query(
            "allowWatchBookmarks",
            "boolean",
            "Ask for BOOKMARK watch events; ignored when not watching.",
        ));
    }
    ps.push(Param::query(
        "continue",
        "string",
        "Token from a previous paginated list response, to fetch the next page.",
    ));
    ps.push(Param::query(
        "fieldSelector",
        "string",
        "Restrict the returned objects by their fields. Defaults to everything.",
    ));
    ps.push(Param::query(
        "labelSelector",
        "string",
        "Restrict the returned objects by their labels. Defaults to everything.",
    ));
    ps.push(Param::query(
        "limit",
        "integer",
        "Maximum number of objects to return; when more exist the list metadata carries a continue token.",
    ));
    ps.push(Param::query(
        "resourceVersion",
        "string",
        "Constrains which resource versions the request may be served from.",
    ));
    ps.push(Param::query(
        "resourceVersionMatch",
        "string",
        "How resourceVersion applies to the list: Exact or NotOlderThan.",
    ));
    ps.push(Param::query(
        "sendInitialEvents",
        "boolean",
        "With watch=true, start the stream with synthetic ADDED events for the current objects, followed by a bookmark.",
    ));
    ps.push(Param::query(
        "timeoutSeconds",
        "integer",
        "Timeout for the list or watch call.",
    ));
    if watch {
        ps.push(Param::query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and stream them as add, update and remove notifications.",
        ));
    }
    ps
}

fn delete_params() -> Vec<Param> {
    vec![
        Param::query(
            "gracePeriodSeconds",
            "integer",
            "Seconds before the object is deleted; zero deletes immediately. Defaults to the per-kind grace period.",
        ),
        Param::query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "Delete an object that cannot be read from storage (unsafe: skips finalizers and preconditions).",
        ),
        Param::query(
            "orphanDependents",
            "boolean",
            "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
        ),
        Param::query(
            "propagationPolicy",
            "string",
            "Garbage collection of dependents: Orphan, Background or Foreground.",
        ),
    ]
}

/// A request body: schema name and content types.
struct Body {
    schema: String,
    content_types: &'static [&'static str],
    required: bool,
}

struct Operation {
    method: &'static str,
    id: String,
    description: String,
    /// x-kubernetes-action; None for the group-version discovery document.
    action: Option<&'static str>,
    gvk: Option<(String, String, String)>,
    params: Vec<Param>,
    body: Option<Body>,
    /// (status code, description, schema name)
    responses: Vec<(u16, &'static str, String)>,
    produces: &'static [&'static str],
    tag: String,
}

impl Operation {
    fn to_v2(&self) -> Value {
        let mut params: Vec<Value> = self.params.iter().map(Param::to_v2).collect();
        if let Some(body) = &self.body {
            params.push(json!({
                "name": "body",
                "in": "body",
                "required": body.required,
                "schema": {"$ref": format!("{V2_REF}{}", body.schema)},
            }));
        }
        let mut responses = Map::new();
        for (code, description, schema) in &self.responses {
            responses.insert(
                code.to_string(),
                json!({"description": description, "schema": {"$ref": format!("{V2_REF}{schema}")}}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut op = json!({
            "description": self.description,
            "operationId": self.id,
            "produces": self.produces,
            "schemes": ["https"],
            "tags": [self.tag],
            "responses": responses,
        });
        if let Some(body) = &self.body {
            op["consumes"] = json!(body.content_types);
        } else {
            op["consumes"] = json!(["*/*"]);
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        self.extensions(&mut op);
        op
    }

    fn to_v3(&self) -> Value {
        let mut responses = Map::new();
        for (code, description, schema) in &self.responses {
            let content: Map<String, Value> = self
                .produces
                .iter()
                .map(|ct| {
                    (
                        (*ct).to_string(),
                        json!({"schema": {"$ref": format!("{V3_REF}{schema}")}}),
                    )
                })
                .collect();
            responses.insert(
                code.to_string(),
                json!({"description": description, "content": content}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut op = json!({
            "description": self.description,
            "operationId": self.id,
            "tags": [self.tag],
            "responses": responses,
        });
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params.iter().map(Param::to_v3).collect());
        }
        if let Some(body) = &self.body {
            let content: Map<String, Value> = body
                .content_types
                .iter()
                .map(|ct| {
                    (
                        (*ct).to_string(),
                        json!({"schema": {"$ref": format!("{V3_REF}{}", body.schema)}}),
                    )
                })
                .collect();
            let mut rb = json!({"content": content});
            if body.required {
                rb["required"] = json!(true);
            }
            op["requestBody"] = rb;
        }
        self.extensions(&mut op);
        op
    }

    fn extensions(&self, op: &mut Value) {
        if let Some(action) = self.action {
            op["x-kubernetes-action"] = json!(action);
        }
        if let Some((g, v, k)) = &self.gvk {
            op["x-kubernetes-group-version-kind"] = gvk(g, v, k);
        }
    }

    /// Names of the schemas the operation references.
    fn schemas(&self) -> impl Iterator<Item = &str> {
        self.body
            .iter()
            .map(|b| b.schema.as_str())
            .chain(self.responses.iter().map(|(_, _, s)| s.as_str()))
    }
}

/// One path with its path-level parameters and operations.
struct PathItem {
    path: String,
    params: Vec<Param>,
    ops: Vec<Operation>,
}

impl PathItem {
    fn to_v2(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.to_v2());
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                Value::Array(self.params.iter().map(Param::to_v2).collect()),
            );
        }
        Value::Object(item)
    }

    fn to_v3(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.to_v3());
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                Value::Array(self.params.iter().map(Param::to_v3).collect()),
            );
        }
        Value::Object(item)
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The group-version part of upstream's operation ids: "CoreV1", "AppsV1",
/// "RbacAuthorizationV1", "FlowcontrolApiserverV1".
fn gv_camel(group: &str, version: &str) -> String {
    let group = if group.is_empty() {
        "Core".to_string()
    } else {
        group
            .trim_end_matches(".k8s.io")
            .split(['.', '-'])
            .map(capitalize)
            .collect()
    };
    format!("{group}{}", capitalize(version))
}

/// Upstream's tag of a group-version: "core_v1", "apps_v1", "rbacAuthorization_v1".
fn tag(group: &str, version: &str) -> String {
    let camel = gv_camel(group, version);
    let group_part = &camel[..camel.len() - version.len()];
    let mut chars = group_part.chars();
    let lowered: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lowered}_{version}")
}

fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: In::Path,
        ty: "string",
        description: description.into(),
    }
}

fn pretty() -> Param {
    Param::query(
        "pretty",
        "string",
        "If 'true', the output is pretty printed.",
    )
}

/// Every path of one group-version, in the order upstream's documents sort them.
fn group_version_paths(group: &str, version: &str) -> Vec<PathItem> {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let camel = gv_camel(group, version);
    let tag = tag(group, version);
    let mut items = vec![PathItem {
        path: format!("{prefix}/"),
        params: Vec::new(),
        ops: vec![Operation {
            method: "get",
            id: format!("get{camel}APIResources"),
            description: "get available resources".into(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![(200, "OK", API_RESOURCE_LIST.to_string())],
            produces: PRODUCES,
            tag: tag.clone(),
        }],
    }];
    for r in resources::all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resource_paths(r, &prefix, &camel, &tag, &mut items);
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

fn resource_paths(
    r: &ResourceInfo,
    prefix: &str,
    camel: &str,
    tag: &str,
    items: &mut Vec<PathItem>,
) {
    let Some(schema) = schema_name(r.group, r.version, r.kind) else {
        tracing::warn!(kind = r.kind, group = r.group, "no schema for served kind");
        return;
    };
    let list_schema = format!("{schema}List");
    let kind = r.kind;
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let ns = if r.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let own_gvk = || Some((r.group.to_string(), r.version.to_string(), kind.to_string()));
    let op = |method: &'static str,
              id: String,
              description: String,
              action: &'static str,
              params: Vec<Param>,
              body: Option<Body>,
              responses: Vec<(u16, &'static str, String)>,
              produces: &'static [&'static str]| Operation {
        method,
        id,
        description,
        action: Some(action),
        gvk: own_gvk(),
        params,
        body,
        responses,
        produces,
        tag: tag.to_string(),
    };
    let namespace_param = || {
        path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects".to_string(),
        )
    };
    let name_param = || path_param("name", format!("name of the {kind}"));
    let write_params = || vec![p_dry_run(), p_field_manager(), p_field_validation()];
    let object_body = |schema: &str| Body {
        schema: schema.to_string(),
        content_types: CONSUMES_ANY,
        required: true,
    };
    let patch_body = || Body {
        schema: PATCH.to_string(),
        content_types: PATCH_TYPES,
        required: true,
    };

    // Collection.
    let mut collection = Vec::new();
    if r.supports("list") {
        collection.push(op(
            "get",
            format!("list{camel}{scope}{kind}"),
            format!("list or watch objects of kind {kind}"),
            "list",
            list_params(true),
            None,
            vec![(200, "OK", list_schema.clone())],
            PRODUCES_LIST,
        ));
    }
    if r.supports("create") {
        collection.push(op(
            "post",
            format!("create{camel}{scope}{kind}"),
            format!("create a {kind}"),
            "post",
            write_params(),
            Some(object_body(&schema)),
            vec![
                (200, "OK", schema.clone()),
                (201, "Created", schema.clone()),
                (202, "Accepted", schema.clone()),
            ],
            PRODUCES,
        ));
    }
    if r.supports("deletecollection") {
        let mut params = list_params(false);
        params.push(p_dry_run());
        params.extend(delete_params());
        params.sort_by(|a, b| a.name.cmp(b.name));
        collection.push(op(
            "delete",
            format!("delete{camel}Collection{scope}{kind}"),
            format!("delete collection of {kind}"),
            "deletecollection",
            params,
            Some(Body {
                schema: DELETE_OPTIONS.to_string(),
                content_types: CONSUMES_ANY,
                required: false,
            }),
            vec![(200, "OK", STATUS.to_string())],
            PRODUCES,
        ));
    }
    if !collection.is_empty() {
        let mut params = Vec::new();
        if r.namespaced {
            params.push(namespace_param());
        }
        params.push(pretty());
        items.push(PathItem {
            path: format!("{prefix}{ns}/{}", r.plural),
            params,
            ops: collection,
        });
    }

    // Across namespaces.
    if r.namespaced && r.supports("list") {
        items.push(PathItem {
            path: format!("{prefix}/{}", r.plural),
            params: vec![pretty()],
            ops: vec![op(
                "get",
                format!("list{camel}{kind}ForAllNamespaces"),
                format!("list or watch objects of kind {kind}"),
                "list",
                list_params(true),
                None,
                vec![(200, "OK", list_schema.clone())],
                PRODUCES_LIST,
            )],
        });
    }

    // Item.
    let item_params = || {
        let mut params = vec![name_param()];
        if r.namespaced {
            params.push(namespace_param());
        }
        params.push(pretty());
        params
    };
    let mut item = Vec::new();
    if r.supports("get") {
        item.push(op(
            "get",
            format!("read{camel}{scope}{kind}"),
            format!("read the specified {kind}"),
            "get",
            Vec::new(),
            None,
            vec![(200, "OK", schema.clone())],
            PRODUCES,
        ));
    }
    if r.supports("update") {
        item.push(op(
            "put",
            format!("replace{camel}{scope}{kind}"),
            format!("replace the specified {kind}"),
            "put",
            write_params(),
            Some(object_body(&schema)),
            vec![
                (200, "OK", schema.clone()),
                (201, "Created", schema.clone()),
            ],
            PRODUCES,
        ));
    }
    if r.supports("patch") {
        let mut params = write_params();
        params.push(p_force());
        item.push(op(
            "patch",
            format!("patch{camel}{scope}{kind}"),
            format!("partially update the specified {kind}"),
            "patch",
            params,
            Some(patch_body()),
            vec![
                (200, "OK", schema.clone()),
                (201, "Created", schema.clone()),
            ],
            PRODUCES,
        ));
    }
    if r.supports("delete") {
        let deleted = if DELETE_RETURNS_OBJECT.contains(&(r.group, r.plural)) {
            schema.clone()
        } else {
            STATUS.to_string()
        };
        let mut params = vec![p_dry_run()];
        params.extend(delete_params());
        item.push(op(
            "delete",
            format!("delete{camel}{scope}{kind}"),
            format!("delete a {kind}"),
            "delete",
            params,
            Some(Body {
                schema: DELETE_OPTIONS.to_string(),
                content_types: CONSUMES_ANY,
                required: false,
            }),
            vec![(200, "OK", deleted.clone()), (202, "Accepted", deleted)],
            PRODUCES,
        ));
    }
    if !item.is_empty() {
        items.push(PathItem {
            path: format!("{prefix}{ns}/{}/{{name}}", r.plural),
            params: item_params(),
            ops: item,
        });
    }

    // Subresources.
    for sub in r.subresources {
        let Some(sub_schema) = schema_name(sub.group, sub.version, sub.kind) else {
            tracing::warn!(
                subresource = sub.name,
                kind = sub.kind,
                "no schema for subresource body"
            );
            continue;
        };
        let sub_camel = capitalize(sub.name);
        let sub_gvk = || {
            Some((
                sub.group.to_string(),
                sub.version.to_string(),
                sub.kind.to_string(),
            ))
        };
        let sub_op =
            |method, id: String, description: String, action, params, body, responses| Operation {
                method,
                id,
                description,
                action: Some(action),
                gvk: sub_gvk(),
                params,
                body,
                responses,
                produces: PRODUCES,
                tag: tag.to_string(),
            };
        let mut ops = Vec::new();
        for verb in sub.verbs {
            match *verb {
                "get" => ops.push(sub_op(
                    "get",
                    format!("read{camel}{scope}{kind}{sub_camel}"),
                    format!("read {} of the specified {kind}", sub.name),
                    "get",
                    Vec::new(),
                    None,
                    vec![(200, "OK", sub_schema.clone())],
                )),
                "update" => ops.push(sub_op(
                    "put",
                    format!("replace{camel}{scope}{kind}{sub_camel}"),
                    format!("replace {} of the specified {kind}", sub.name),
                    "put",
                    write_params(),
                    Some(object_body(&sub_schema)),
                    vec![
                        (200, "OK", sub_schema.clone()),
                        (201, "Created", sub_schema.clone()),
                    ],
                )),
                "patch" => {
                    let mut params = write_params();
                    params.push(p_force());
                    ops.push(sub_op(
                        "patch",
                        format!("patch{camel}{scope}{kind}{sub_camel}"),
                        format!("partially update {} of the specified {kind}", sub.name),
                        "patch",
                        params,
                        Some(patch_body()),
                        vec![
                            (200, "OK", sub_schema.clone()),
                            (201, "Created", sub_schema.clone()),
                        ],
                    ))
                }
                "create" => ops.push(sub_op(
                    "post",
                    format!("create{camel}{scope}{kind}{sub_camel}"),
                    format!("create {} of a {kind}", sub.name),
                    "post",
                    write_params(),
                    Some(object_body(&sub_schema)),
                    vec![
                        (200, "OK", sub_schema.clone()),
                        (201, "Created", sub_schema.clone()),
                        (202, "Accepted", sub_schema.clone()),
                    ],
                )),
                _ => {}
            }
        }
        if !ops.is_empty() {
            items.push(PathItem {
                path: format!("{prefix}{ns}/{}/{{name}}/{}", r.plural, sub.name),
                params: item_params(),
                ops,
            });
        }
    }
}

/// The v3 document of one group-version: its paths and the schemas they reach (`defs` in v2
/// form to walk references, `v3_defs` the same schemas in v3 form to serialize).
fn v3_document<'a>(
    items: &[PathItem],
    defs: &Map<String, Value>,
    v3_defs: &'a Map<String, Value>,
) -> V3Document<'a> {
    let mut paths = Map::new();
    let mut roots = Vec::new();
    for item in items {
        paths.insert(item.path.clone(), item.to_v3());
        for op in &item.ops {
            roots.extend(op.schemas().map(String::from));
        }
    }
    let schemas = reachable(&roots, defs)
        .into_iter()
        .filter_map(|name| v3_defs.get_key_value(&name))
        .map(|(name, schema)| (name.as_str(), schema))
        .collect();
    V3Document {
        components: V3Components {
            schemas,
            security_schemes: json!({"BearerToken": bearer_scheme()}),
        },
        info: json!({"title": "Kubernetes", "version": "unversioned"}),
        openapi: "3.0.0",
        paths,
        security: json!([{"BearerToken": []}]),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema lookups for strategic merge patch

/// A position in a kind's schema, followed through references: lets a strategic merge patch
/// walk an object alongside its type.
#[derive(Debug, Clone, Copy)]
pub struct SchemaRef {
    schema: &'static Value,
}

/// One property of an object schema (or the value schema of a map): its patch markers and the
/// schema of its value. Empty strings mean the marker is absent.
#[derive(Debug, Clone, Copy)]
pub struct FieldSchema {
    /// `x-kubernetes-patch-strategy`: "merge", "replace", "retainKeys", "merge,retainKeys".
    pub patch_strategy: &'static str,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: &'static str,
    /// `x-kubernetes-list-type`: "atomic", "set", "map".
    pub list_type: &'static str,
    /// The value's schema (for a list, the list's; see [`SchemaRef::items`]).
    pub value: SchemaRef,
}

impl SchemaRef {
    /// The root schema of `group/version, Kind=kind`, if the server has one.
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<SchemaRef> {
        let name = schema_name(group, version, kind)?;
        schemas()
            .get(&name)
            .map(|schema| SchemaRef { schema }.resolved())
    }

    /// Follow `$ref` (alone or as a single `allOf`) to the schema it names.
    fn resolved(self) -> SchemaRef {
        let mut schema = self.schema;
        // References do not chain in practice; the bound only guards against a cycle.
        for _ in 0..8 {
            let reference = schema
                .get("$ref")
                .or_else(|| {
                    schema
                        .get("allOf")
                        .and_then(|a| a.get(0))
                        .and_then(|s| s.get("$ref"))
                })
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(V2_REF));
            match reference.and_then(|name| schemas().get(name)) {
                Some(next) => schema = next,
                None => break,
            }
        }
        SchemaRef { schema }
    }

    /// The field `name` of this object schema: a declared property, or any key of a map
    /// (`additionalProperties`).
    pub fn field(self, name: &str) -> Option<FieldSchema> {
        let marker =
            |prop: &'static Value, key: &str| prop.get(key).and_then(Value::as_str).unwrap_or("");
        if let Some(prop) = self.schema.get("properties").and_then(|p| p.get(name)) {
            return Some(FieldSchema {
                patch_strategy: marker(prop, "x-kubernetes-patch-strategy"),
                merge_key: marker(prop, "x-kubernetes-patch-merge-key"),
                list_type: marker(prop, "x-kubernetes-list-type"),
                value: SchemaRef { schema: prop }.resolved(),
            });
        }
        let values = self
            .schema
            .get("additionalProperties")
            .filter(|v| v.is_object())?;
        Some(FieldSchema {
            patch_strategy: "",
            merge_key: "",
            list_type: "",
            value: SchemaRef { schema: values }.resolved(),
        })
    }

    /// The element schema of this list schema.
    pub fn items(self) -> Option<SchemaRef> {
        self.schema
            .get("items")
            .filter(|v| v.is_object())
            .map(|schema| SchemaRef { schema }.resolved())
    }
}

/// The schema and patch markers of the field at `path` in `group/version, Kind=kind`; list
/// elements are stepped through implicitly (`["spec", "containers", "env"]`).
pub fn field_schema(group: &str, version: &str, kind: &str, path: &[&str]) -> Option<FieldSchema> {
    let mut at = SchemaRef::for_kind(group, version, kind)?;
    let mut found = None;
    for segment in path {
        if let Some(items) = at.items() {
            at = items;
        }
        let field = at.field(segment)?;
        at = field.value;
        found = Some(field);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn api() -> &'static OpenApi {
        static API: OnceLock<OpenApi> = OnceLock::new();
        API.get_or_init(OpenApi::build)
    }

    fn v3(path: &str) -> Value {
        let bytes = api()
            .v3_doc(path)
            .unwrap_or_else(|| panic!("no v3 document {path}"));
        serde_json::from_slice(bytes).expect("v3 document is JSON")
    }

    fn v2() -> Value {
        serde_json::from_slice(api().v2()).expect("v2 document is JSON")
    }

    /// Follow `$ref`/single `allOf` to the named schema in a v3 document.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        let reference = schema
            .get("$ref")
            .or_else(|| {
                schema
                    .get("allOf")
                    .and_then(|a| a.get(0))
                    .and_then(|s| s.get("$ref"))
            })
            .and_then(Value::as_str);
        match reference.and_then(|r| r.strip_prefix(V3_REF)) {
            Some(name) => &doc["components"]["schemas"][name],
            None => schema,
        }
    }

    fn param_names(op: &Value) -> Vec<&str> {
        op["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn index_lists_every_group_version_with_its_hash() {
        let index = api().v3_index();
        let paths = index["paths"].as_object().expect("paths");
        let mut expected = 0;
        for (group, versions) in resources::groups() {
            for version in versions {
                expected += 1;
                let key = index_path(group, version);
                let url = paths[&key]["serverRelativeURL"]
                    .as_str()
                    .expect("serverRelativeURL");
                let hash = api().v3_hash(&key).expect("hash");
                assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
                assert_eq!(hash.len(), 128, "SHA-512 in upper-case hex");
                assert!(
                    hash.chars()
                        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
                );
                assert!(api().v3_doc(&format!("/{key}")).is_some());
            }
        }
        assert_eq!(paths.len(), expected);
        assert!(paths.contains_key("api/v1") && paths.contains_key("apis/apps/v1"));
        assert!(api().v3_doc("apis/apps/v1beta1").is_none());
    }

    #[test]
    fn hashes_are_of_the_document_and_stable() {
        let again = OpenApi::build();
        for key in api().v3_paths() {
            assert_eq!(api().v3_hash(key), again.v3_hash(key), "{key}");
            assert_eq!(api().v3_doc(key), again.v3_doc(key), "{key}");
            let digest = ring::digest::digest(&ring::digest::SHA512, api().v3_doc(key).unwrap());
            assert_eq!(
                api().v3_hash(key),
                Some(hex_upper(digest.as_ref()).as_str())
            );
        }
        assert_eq!(api().v2_hash(), again.v2_hash());
        assert_ne!(api().v3_hash("api/v1"), api().v3_hash("apis/apps/v1"));
    }

    #[test]
    fn deployment_create_is_gvk_tagged_and_takes_field_validation() {
        let doc = v3("apis/apps/v1");
        assert_eq!(doc["openapi"], "3.0.0");
        let post = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        assert_eq!(post["operationId"], "createAppsV1NamespacedDeployment");
        assert_eq!(post["x-kubernetes-action"], "post");
        assert_eq!(
            post["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        let names = param_names(post);
        for p in ["dryRun", "fieldManager", "fieldValidation"] {
            assert!(names.contains(&p), "{p} missing from {names:?}");
        }
        assert_eq!(
            post["requestBody"]["content"]["*/*"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        assert_eq!(
            post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        let content = patch["requestBody"]["content"]
            .as_object()
            .expect("patch content");
        for ct in PATCH_TYPES {
            assert!(content.contains_key(*ct), "{ct}");
        }
        assert!(param_names(patch).contains(&"force"));
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["put"]["operationId"],
            "replaceAppsV1NamespacedDeploymentScale"
        );
        assert_eq!(
            scale["get"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        let all = &doc["paths"]["/apis/apps/v1/deployments"]["get"];
        assert_eq!(all["operationId"], "listAppsV1DeploymentForAllNamespaces");
        assert!(param_names(all).contains(&"watch"));
        assert_eq!(
            doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["delete"]["x-kubernetes-action"],
            "deletecollection"
        );
    }

    /// What kubectl's QueryParamVerifierV3 checks before leaving validation to the server:
    /// some PATCH operation of the kind's group-version document carries its GVK and a
    /// `fieldValidation` parameter; and every PATCH carrying that GVK does (it stops at the
    /// first one it meets, in map order).
    #[test]
    fn every_patchable_kind_passes_kubectls_field_validation_check() {
        for r in resources::all().iter().filter(|r| r.supports("patch")) {
            let doc = v3(&index_path(r.group, r.version));
            let want = gvk(r.group, r.version, r.kind);
            let mut found = 0;
            for item in doc["paths"].as_object().unwrap().values() {
                let op = &item["patch"];
                if op.is_null() || op["x-kubernetes-group-version-kind"] != want {
                    continue;
                }
                found += 1;
                assert!(
                    param_names(op).contains(&"fieldValidation"),
                    "{}",
                    op["operationId"]
                );
            }
            assert!(found >= 1, "no PATCH for {}", r.kind);
        }
    }

    #[test]
    fn operations_follow_the_verbs() {
        let core = v3("api/v1");
        let paths = &core["paths"];
        // Namespaces cannot be deleted as a collection; bindings are create-only.
        assert!(paths["/api/v1/namespaces"]["delete"].is_null());
        assert_eq!(
            paths["/api/v1/namespaces"]["post"]["operationId"],
            "createCoreV1Namespace"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"],
            "replaceCoreV1NamespaceFinalize"
        );
        assert!(paths["/api/v1/namespaces/{name}/finalize"]["get"].is_null());
        assert!(paths["/api/v1/namespaces/{namespace}/bindings"]["get"].is_null());
        assert!(paths["/api/v1/namespaces/{namespace}/bindings/{name}"].is_null());
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/bindings"]["post"]["operationId"],
            "createCoreV1NamespacedBinding"
        );
        let eviction = &paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"];
        assert_eq!(eviction["operationId"], "createCoreV1NamespacedPodEviction");
        assert_eq!(
            eviction["x-kubernetes-group-version-kind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        let item = &paths["/api/v1/namespaces/{namespace}/pods/{name}"];
        let path_params = param_names(item);
        assert_eq!(path_params, ["name", "namespace", "pretty"]);
        assert_eq!(
            item["delete"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Pod"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["delete"]["responses"]["200"]
                ["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status"
        );
        let list = &paths["/api/v1/namespaces/{namespace}/pods"]["get"];
        for p in [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "watch",
            "timeoutSeconds",
        ] {
            assert!(param_names(list).contains(&p), "{p}");
        }
        assert!(
            list["responses"]["200"]["content"]
                .as_object()
                .unwrap()
                .contains_key("application/json;stream=watch")
        );
        let rbac = v3("apis/rbac.authorization.k8s.io/v1");
        assert_eq!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["get"]["operationId"],
            "readRbacAuthorizationV1ClusterRole"
        );
        assert_eq!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["get"]["tags"],
            json!(["rbacAuthorization_v1"])
        );
        // Cluster-scoped: no namespace segment, no across-namespaces path.
        assert!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/clusterroles"]
                .is_null()
        );
        let authn = v3("apis/authentication.k8s.io/v1");
        assert_eq!(
            authn["paths"]["/apis/authentication.k8s.io/v1/tokenreviews"]["post"]["operationId"],
            "createAuthenticationV1TokenReview"
        );
    }

    #[test]
    fn pod_schema_carries_descriptions_and_merge_keys() {
        let doc = v3("api/v1");
        let schemas = &doc["components"]["schemas"];
        let pod = &schemas["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Pod"}])
        );
        assert!(
            pod.get("required").is_none(),
            "upstream does not require metadata"
        );
        let spec_prop = &pod["properties"]["spec"];
        assert!(
            spec_prop["description"]
                .as_str()
                .unwrap()
                .contains("desired behavior")
        );
        assert_eq!(
            spec_prop["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
        assert!(
            spec_prop.get("$ref").is_none(),
            "v3 wraps a described $ref in allOf"
        );
        let spec = resolve(&doc, spec_prop);
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert!(
            containers["description"]
                .as_str()
                .unwrap()
                .contains("containers")
        );
        assert_eq!(spec["required"], json!(["containers"]));
        let volumes = &spec["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        let container = resolve(&doc, &containers["items"]);
        assert_eq!(
            container["properties"]["env"]["x-kubernetes-patch-merge-key"],
            "name"
        );
        assert_eq!(
            container["properties"]["volumeMounts"]["x-kubernetes-patch-merge-key"],
            "mountPath"
        );
        assert_eq!(
            container["properties"]["ports"]["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        assert_eq!(
            spec["properties"]["tolerations"]["x-kubernetes-list-type"],
            "atomic"
        );
        assert!(
            spec["properties"]["tolerations"]
                .get("x-kubernetes-patch-merge-key")
                .is_none()
        );
        let meta = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
        assert_eq!(
            meta["properties"]["ownerReferences"]["x-kubernetes-patch-merge-key"],
            "uid"
        );
        assert_eq!(
            schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
        let status = &schemas["io.k8s.api.core.v1.PodStatus"];
        assert_eq!(
            status["properties"]["conditions"]["x-kubernetes-patch-merge-key"],
            "type"
        );
    }

    #[test]
    fn scalar_types_follow_upstream() {
        let doc = v3("api/v1");
        let schemas = &doc["components"]["schemas"];
        let ios = &schemas[INT_OR_STRING];
        assert_eq!(ios["format"], "int-or-string");
        assert_eq!(
            ios["oneOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(ios["x-kubernetes-int-or-string"], true);
        assert!(ios.get("type").is_none());
        assert_eq!(
            schemas[QUANTITY]["oneOf"],
            json!([{"type": "string"}, {"type": "number"}])
        );
        let time = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
        assert_eq!(
            (time["type"].as_str(), time["format"].as_str()),
            (Some("string"), Some("date-time"))
        );
        let v2 = v2();
        let defs = &v2["definitions"];
        assert_eq!(defs[INT_OR_STRING]["type"], "string");
        assert_eq!(defs[INT_OR_STRING]["format"], "int-or-string");
        assert_eq!(defs[QUANTITY]["type"], "string");
        let json_any = &defs["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"];
        assert!(json_any.get("type").is_none() && json_any["description"].is_string());
        let replicas = &defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
        assert_eq!(
            (replicas["type"].as_str(), replicas["format"].as_str()),
            (Some("integer"), Some("int32"))
        );
        let required = &defs["io.k8s.api.events.v1.Event"]["required"];
        assert!(
            required
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == "eventTime")
        );
        assert!(
            defs["io.k8s.api.core.v1.LocalObjectReference"]
                .get("required")
                .is_none()
        );
        // Upstream requires metadata of core/v1 Event alone.
        assert_eq!(
            defs["io.k8s.api.core.v1.Event"]["required"],
            json!(["involvedObject", "metadata"])
        );
    }

    fn assert_refs_resolve(doc: &Value, prefix: &str, container: &Value) -> usize {
        let mut refs = Vec::new();
        collect_refs(doc, prefix, &mut refs);
        let mut foreign = Vec::new();
        collect_refs(doc, "#", &mut foreign);
        assert_eq!(refs.len(), foreign.len(), "every $ref points into {prefix}");
        for name in &refs {
            assert!(container.get(*name).is_some(), "dangling $ref {name}");
        }
        refs.len()
    }

    #[test]
    fn every_ref_resolves_inside_its_document() {
        for key in api().v3_paths() {
            let doc = v3(key);
            let n = assert_refs_resolve(&doc, V3_REF, &doc["components"]["schemas"]);
            assert!(n > 0, "{key}");
            // No schema is carried that nothing reaches, and none is an empty placeholder.
            for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
                assert!(
                    schema.is_object() && schema["description"].is_string()
                        || name.ends_with("List"),
                    "{name}"
                );
            }
        }
        let v2 = v2();
        assert_refs_resolve(&v2, V2_REF, &v2["definitions"]);
    }

    #[test]
    fn v2_is_swagger_with_every_served_kind() {
        let v2 = v2();
        assert_eq!(v2["swagger"], "2.0");
        assert_eq!(v2["info"]["title"], "Kubernetes");
        let defs = v2["definitions"].as_object().expect("definitions");
        let paths = v2["paths"].as_object().expect("paths");
        let mut ids = BTreeSet::new();
        for item in paths.values() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    ids.insert(op["operationId"].as_str().unwrap().to_string()),
                    "duplicate {}",
                    op["operationId"]
                );
                assert!(
                    op["responses"]["200"]["schema"]["$ref"].is_string(),
                    "{}",
                    op["operationId"]
                );
                if matches!(method.as_str(), "post" | "put" | "patch") {
                    let params = param_names(op);
                    assert!(
                        params.contains(&"fieldValidation") && params.contains(&"body"),
                        "{}",
                        op["operationId"]
                    );
                }
            }
        }
        for r in resources::all() {
            let name = schema_name(r.group, r.version, r.kind).expect("schema for served kind");
            let schema = &defs[&name];
            assert_eq!(
                schema["x-kubernetes-group-version-kind"],
                json!([gvk(r.group, r.version, r.kind)]),
                "{name}"
            );
            assert!(
                schema["properties"]["metadata"]["$ref"].is_string(),
                "{name}"
            );
            if r.supports("list") {
                let list = &defs[&format!("{name}List")];
                assert_eq!(
                    list["properties"]["items"]["items"]["$ref"],
                    format!("{V2_REF}{name}")
                );
                assert_eq!(
                    list["x-kubernetes-group-version-kind"][0]["kind"],
                    format!("{}List", r.kind)
                );
            }
            let prefix = if r.group.is_empty() {
                "/api/v1".to_string()
            } else {
                format!("/apis/{}/{}", r.group, r.version)
            };
            let ns = if r.namespaced {
                "/namespaces/{namespace}"
            } else {
                ""
            };
            let collection = &paths[&format!("{prefix}{ns}/{}", r.plural)];
            assert_eq!(
                collection["post"]["x-kubernetes-group-version-kind"]["kind"],
                r.kind
            );
            for s in r.subresources {
                assert!(
                    paths.contains_key(&format!("{prefix}{ns}/{}/{{name}}/{}", r.plural, s.name))
                );
            }
        }
        let patch = &paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["consumes"], json!(PATCH_TYPES));
        assert_eq!(
            patch["parameters"].as_array().unwrap().last().unwrap()["schema"]["$ref"],
            format!("{V2_REF}{PATCH}")
        );
    }

    #[test]
    fn kinds_cover_the_resource_table() {
        for r in resources::all() {
            assert!(
                schema_name(r.group, r.version, r.kind).is_some(),
                "{} {}",
                r.group,
                r.kind
            );
            for s in r.subresources {
                assert!(
                    schema_name(s.group, s.version, s.kind).is_some(),
                    "{}",
                    s.kind
                );
            }
        }
        let names: BTreeSet<String> = KINDS.iter().map(|k| (k.name)().into_owned()).collect();
        assert_eq!(names.len(), KINDS.len(), "schema names are unique");
    }

    #[test]
    fn every_marker_names_a_generated_property() {
        let defs = definitions();
        for &(schema, field, ..) in markers::FIELDS {
            let name = format!("io.k8s.{schema}");
            assert!(
                defs.get(&name)
                    .is_some_and(|s| s["properties"].get(field).is_some()),
                "{name}.{field}"
            );
        }
        for &(schema, _) in markers::MAP_TYPES {
            assert!(defs.contains_key(&format!("io.k8s.{schema}")), "{schema}");
        }
        for &(schema, _, fields) in markers::UNIONS {
            let s = &defs[&format!("io.k8s.{schema}")];
            for (f, _) in fields {
                assert!(s["properties"].get(*f).is_some(), "{schema}.{f}");
            }
        }
        for &(schema, add, _) in markers::REQUIRED {
            let s = &defs[&format!("io.k8s.{schema}")];
            for f in add {
                assert!(s["properties"].get(*f).is_some(), "{schema}.{f}");
            }
        }
    }

    #[test]
    fn to_v3_wraps_described_refs_only() {
        let v = json!({
            "properties": {
                "a": {"$ref": "#/definitions/x.A", "description": "d"},
                "b": {"$ref": "#/definitions/x.B"},
                "$ref": {"type": "string"},
            },
            "required": ["a"],
        });
        let out = to_v3(&v);
        assert_eq!(
            out["properties"]["a"],
            json!({"allOf": [{"$ref": "#/components/schemas/x.A"}], "description": "d"})
        );
        assert_eq!(
            out["properties"]["b"],
            json!({"$ref": "#/components/schemas/x.B"})
        );
        assert_eq!(out["properties"]["$ref"], json!({"type": "string"}));
        assert_eq!(out["required"], json!(["a"]));
    }

    #[test]
    fn names_follow_upstream_conventions() {
        assert_eq!(gv_camel("", "v1"), "CoreV1");
        assert_eq!(gv_camel("apps", "v1"), "AppsV1");
        assert_eq!(
            gv_camel("rbac.authorization.k8s.io", "v1"),
            "RbacAuthorizationV1"
        );
        assert_eq!(
            gv_camel("flowcontrol.apiserver.k8s.io", "v1"),
            "FlowcontrolApiserverV1"
        );
        assert_eq!(gv_camel("autoscaling", "v2"), "AutoscalingV2");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(
            tag("admissionregistration.k8s.io", "v1"),
            "admissionregistration_v1"
        );
        assert_eq!(hex_upper(&[0x0f, 0xa0]), "0FA0");
    }
}

/// End-to-end: kubectl 1.33 against a throwaway HTTP server that serves only `/version`,
/// discovery and these documents, plus recording POST/PATCH handlers: no route of the real
/// server is involved.
#[cfg(test)]
mod kubectl_tests {
    use super::*;
    use crate::discovery::{self, Discovery};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

    struct Fake {
        api: OpenApi,
        discovery: Discovery,
        /// "METHOD path" of every request.
        requests: Mutex<Vec<String>>,
        /// Writes received: (method, query, content type, body).
        writes: Mutex<Vec<(String, String, String, Value)>>,
        /// Created objects by item path.
        objects: Mutex<BTreeMap<String, Value>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(body.into()));
        *resp.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(ct) = http::HeaderValue::from_str(content_type) {
            resp.headers_mut().insert(http::header::CONTENT_TYPE, ct);
        }
        resp
    }

    fn json_reply(status: u16, v: &Value) -> Response<Full<Bytes>> {
        reply(status, "application/json", v.to_string())
    }

    fn not_found() -> Response<Full<Bytes>> {
        json_reply(
            404,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    }

    async fn handle(
        state: Arc<Fake>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        lock(&state.requests).push(format!("{} {path}", req.method()));
        let method = req.method().clone();
        if method == http::Method::POST || method == http::Method::PATCH {
            let content_type = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            lock(&state.writes).push((method.to_string(), query, content_type, body.clone()));
            if method == http::Method::PATCH {
                // The stored object stands in for the patched one.
                let stored = lock(&state.objects).get(&path).cloned();
                return Ok(stored.map_or_else(not_found, |obj| json_reply(200, &obj)));
            }
            let mut obj = body;
            obj["metadata"]["uid"] = json!("0d3c5f6e-0000-4000-8000-000000000001");
            obj["metadata"]["resourceVersion"] = json!("1");
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            lock(&state.objects).insert(format!("{path}/{name}"), obj.clone());
            return Ok(json_reply(201, &obj));
        }
        if let Some(obj) = lock(&state.objects).get(&path) {
            return Ok(json_reply(200, obj));
        }
        let d = &state.discovery;
        let aggregated = discovery::wants_aggregated(&accept);
        let resp = match path.as_str() {
            "/version" => json_reply(
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}),
            ),
            "/api" if aggregated => {
                reply(200, discovery::AGGREGATED_V2, d.aggregated_core.to_string())
            }
            "/api" => json_reply(200, &d.api_versions),
            "/apis" if aggregated => {
                reply(200, discovery::AGGREGATED_V2, d.aggregated_apis.to_string())
            }
            "/apis" => json_reply(200, &d.api_group_list),
            "/openapi/v3" => json_reply(200, state.api.v3_index()),
            "/openapi/v2" => reply(200, "application/json", state.api.v2().clone()),
            p if p.starts_with("/openapi/v3/") => {
                match state.api.v3_doc(&p["/openapi/v3/".len()..]) {
                    Some(doc) => reply(200, "application/json", doc.clone()),
                    None => not_found(),
                }
            }
            "/api/v1" => d
                .resource_list("v1")
                .map_or_else(not_found, |v| json_reply(200, v)),
            p if p.starts_with("/apis/") => {
                let rest = &p["/apis/".len()..];
                let found = if rest.contains('/') {
                    d.resource_list(rest)
                } else {
                    d.group(rest)
                };
                found.map_or_else(not_found, |v| json_reply(200, v))
            }
            _ => not_found(),
        };
        Ok(resp)
    }

    async fn serve(state: Arc<Fake>) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), task)
    }

    async fn kubectl(server: &str, home: &Path, args: &[&str]) -> (bool, String) {
        let out = tokio::process::Command::new(KUBECTL)
            .env("HOME", home)
            .env("KUBECONFIG", home.join("no-such-kubeconfig"))
            .arg("--server")
            .arg(server)
            .arg("--cache-dir")
            .arg(home.join("cache"))
            .args(args)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
            .await
            .expect("kubectl finished")
            .expect("kubectl ran");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[tokio::test]
    async fn kubectl_explains_delegates_validation_and_merges_by_key() {
        if !Path::new(KUBECTL).exists() {
            eprintln!("skipping: {KUBECTL} not installed");
            return;
        }
        let state = Arc::new(Fake {
            api: OpenApi::build(),
            discovery: Discovery::build("127.0.0.1:6443"),
            requests: Mutex::new(Vec::new()),
            writes: Mutex::new(Vec::new()),
            objects: Mutex::new(BTreeMap::new()),
        });
        let (server, task) = serve(state.clone()).await;
        let home = tempfile::tempdir().expect("tempdir");

        let (ok, out) = kubectl(
            &server,
            home.path(),
            &["explain", "pod.spec.containers.resources"],
        )
        .await;
        assert!(ok, "{out}");
        for want in [
            "KIND:       Pod",
            "VERSION:    v1",
            "FIELD: resources <ResourceRequirements>",
            "ResourceRequirements describes the compute resource requirements.",
            "limits\t<map[string]Quantity>",
            "Limits describes the maximum amount of compute resources allowed.",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }

        let (ok, out) = kubectl(
            &server,
            home.path(),
            &["explain", "deployment", "--recursive"],
        )
        .await;
        assert!(ok, "{out}");
        for want in [
            "GROUP:      apps",
            "KIND:       Deployment",
            "  spec\t<DeploymentSpec>",
            "    selector\t<LabelSelector> -required-",
            "        maxSurge\t<IntOrString>",
            "        containers\t<[]Container> -required-",
            "          image\t<string>",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }

        // With the default --validate=strict, kubectl sends fieldValidation=Strict only when
        // the v3 document shows the kind's PATCH takes it; otherwise it validates client-side
        // against /openapi/v2 in protobuf (integration-tests/tests/openapi_v2.rs covers that).
        let pod = home.path().join("pod.yaml");
        std::fs::write(
            &pod,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: nginx\n",
        )
        .expect("write manifest");
        let (ok, out) = kubectl(
            &server,
            home.path(),
            &["create", "-f", &pod.to_string_lossy()],
        )
        .await;
        assert!(ok && out.contains("pod/web created"), "{out}");
        let deploy = home.path().join("deploy.yaml");
        let manifest = |image: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: c\n        image: {image}\n"
            )
        };
        std::fs::write(&deploy, manifest("nginx:1")).expect("write manifest");
        let deploy = deploy.to_string_lossy().into_owned();
        let (ok, out) = kubectl(&server, home.path(), &["apply", "-f", &deploy]).await;
        assert!(ok && out.contains("deployment.apps/web created"), "{out}");

        // Client-side apply of a change: kubectl computes a strategic merge patch from the v3
        // schema's merge keys (a `$setElementOrder` directive needs the containers' merge key).
        std::fs::write(home.path().join("deploy.yaml"), manifest("nginx:2"))
            .expect("write manifest");
        let (ok, out) = kubectl(&server, home.path(), &["apply", "-f", &deploy]).await;
        assert!(
            ok && out.contains("deployment.apps/web configured"),
            "{out}"
        );
        assert!(!out.contains("warning"), "{out}");

        let writes = lock(&state.writes).clone();
        let summary: Vec<(&str, &str, &str)> = writes
            .iter()
            .map(|(m, q, ct, _)| (m.as_str(), q.as_str(), ct.as_str()))
            .collect();
        assert_eq!(writes.len(), 3, "{summary:?}");
        assert!(
            writes
                .iter()
                .all(|(_, q, _, _)| q.contains("fieldValidation=Strict")),
            "{summary:?}"
        );
        let (method, _, content_type, patch) = &writes[2];
        assert_eq!(
            (method.as_str(), content_type.as_str()),
            ("PATCH", "application/strategic-merge-patch+json")
        );
        let spec = &patch["spec"]["template"]["spec"];
        assert_eq!(
            spec["$setElementOrder/containers"],
            json!([{"name": "c"}]),
            "{patch}"
        );
        assert_eq!(
            spec["containers"],
            json!([{"image": "nginx:2", "name": "c"}]),
            "{patch}"
        );
        let requests = lock(&state.requests).clone();
        assert!(
            !requests.iter().any(|r| r.contains("/openapi/v2")),
            "{requests:?}"
        );
        task.abort();
    }
}

#[cfg(test)]
mod patch_lookup_tests {
    use super::*;

    #[test]
    fn merge_keys_and_strategies_of_nested_fields() {
        let f = field_schema(
            "apps",
            "v1",
            "Deployment",
            &["spec", "template", "spec", "containers"],
        )
        .expect("containers");
        assert_eq!(
            (f.patch_strategy, f.merge_key, f.list_type),
            ("merge", "name", "map")
        );
        let f = field_schema(
            "apps",
            "v1",
            "Deployment",
            &["spec", "template", "spec", "containers", "ports"],
        )
        .expect("ports");
        assert_eq!((f.patch_strategy, f.merge_key), ("merge", "containerPort"));
        let f = field_schema("", "v1", "Pod", &["spec", "containers", "volumeMounts"])
            .expect("volumeMounts");
        assert_eq!(f.merge_key, "mountPath");
        let f = field_schema("", "v1", "Pod", &["spec", "volumes"]).expect("volumes");
        assert_eq!(
            (f.patch_strategy, f.merge_key),
            ("merge,retainKeys", "name")
        );
        let f = field_schema("apps", "v1", "Deployment", &["spec", "strategy"]).expect("strategy");
        assert_eq!(f.patch_strategy, "retainKeys");
        assert!(f.value.field("rollingUpdate").is_some());
        let f =
            field_schema("", "v1", "ConfigMap", &["metadata", "finalizers"]).expect("finalizers");
        assert_eq!((f.patch_strategy, f.merge_key), ("merge", ""));
        // Lists without a strategy, and map values.
        let f = field_schema("", "v1", "Pod", &["spec", "containers", "args"]).expect("args");
        assert_eq!(f.patch_strategy, "");
        assert!(f.value.items().is_some());
        assert!(field_schema("", "v1", "Pod", &["metadata", "labels", "app"]).is_some());
        assert!(field_schema("", "v1", "Pod", &["spec", "nope"]).is_none());
        assert!(
            SchemaRef::for_kind("autoscaling", "v1", "Scale")
                .is_some_and(|s| s.field("spec").is_some())
        );
        assert!(SchemaRef::for_kind("example.com", "v1", "Nope").is_none());
    }
}
