//! HTTP request handling: routing of `/api` and `/apis` paths onto the generic registry,
//! request decoding and content negotiation, subresources, watch streaming, discovery and
//! the health and metrics endpoints. Transport (TLS, authentication) is in [`crate::server`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::allocator::ServiceAllocator;
use crate::cacher::{CachedEvent, EventType, filter_event};
use crate::config::Config;
use crate::discovery::{self, Discovery};
use crate::errors::{ApiError, Cause, Target};
use crate::registry::{self, DeleteOptions, ListQuery, Part, Store, WriteOptions, meta};
use crate::resources;
use crate::selectors::{self, FieldSelector, LabelSelector};
use crate::server::{Body, Handler, UserInfo};
use crate::storage::Storage;
use crate::table;

/// The Kubernetes version this server reports.
pub const KUBE_VERSION: (&str, &str, &str) = ("1", "33", "v1.33.0");

/// A parsed resource request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Legacy `/watch/` path prefix.
    pub watch: bool,
}

/// Parse `/api/v1/...` and `/apis/<group>/<version>/...` into a [`ResourcePath`];
/// `None` for anything that is not a resource path.
pub fn parse_resource_path(path: &str) -> Option<ResourcePath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        r => (false, r),
    };
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let mk = |ns: Option<&str>, res: &str, name: Option<&&str>, sub: Option<&&str>| ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace: ns.map(String::from),
        resource: res.into(),
        name: name.map(|s| s.to_string()),
        subresource: sub.map(|s| s.to_string()),
        watch,
    };
    match rest {
        ["namespaces", ns, res, tail @ ..] if tail.len() <= 2 && !(tail.is_empty() && is_namespace_sub(res)) => {
            Some(mk(Some(ns), res, tail.first(), tail.get(1)))
        }
        ["namespaces", tail @ ..] if tail.len() <= 2 => Some(mk(None, "namespaces", tail.first(), tail.get(1))),
        [res, tail @ ..] if tail.len() <= 2 => Some(mk(None, res, tail.first(), tail.get(1))),
        _ => None,
    }
}

fn is_namespace_sub(s: &str) -> bool {
    s == "status" || s == "finalize"
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes()).into_owned().collect()
}

fn truthy(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true" | "1"))
}

/// The response encoding a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
    /// `as=Table` in `meta.k8s.io/<version>`.
    Table { version: &'static str },
    /// `as=PartialObjectMetadata` (`list` false) or `as=PartialObjectMetadataList`, in
    /// `meta.k8s.io/<version>`.
    Metadata { list: bool, version: &'static str },
}

fn negotiate(accept: &str) -> Result<Format, ApiError> {
    if accept.is_empty() {
        return Ok(Format::Json);
    }
    for range in accept.split(',') {
        let params: Vec<&str> = range.split(';').map(str::trim).collect();
        let mime = params[0];
        if params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io") {
            if mime == "application/json" {
                if let Some((_, version)) = [("v=v1", "v1"), ("v=v1beta1", "v1beta1")].into_iter().find(|(p, _)| params.contains(p)) {
                    return Ok(Format::Table { version });
                }
            }
            continue;
        }
        if let Some(f) = metadata_format(&params) {
            return Ok(f);
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        match mime {
            "application/json" | "*/*" | "application/*" | "application/json-patch+json" | "application/merge-patch+json" => {
                return Ok(Format::Json);
            }
            "application/yaml" | "text/yaml" => return Ok(Format::Yaml),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml".into(),
    ))
}

/// `application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1|v1beta1`.
fn metadata_format(params: &[&str]) -> Option<Format> {
    if params[0] != "application/json" || !params.contains(&"g=meta.k8s.io") {
        return None;
    }
    let version = [("v=v1", "v1"), ("v=v1beta1", "v1beta1")].into_iter().find(|(p, _)| params.contains(p))?.1;
    let list = match params.iter().find_map(|p| p.strip_prefix("as="))? {
        "PartialObjectMetadata" => false,
        "PartialObjectMetadataList" => true,
        _ => return None,
    };
    Some(Format::Metadata { list, version })
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).map_err(|e: Infallible| match e {}).boxed()
}

fn respond(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .header("Cache-Control", "no-cache, private")
        .body(full(body))
        .expect("valid response")
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    respond(code, "application/json", serde_json::to_vec(v).expect("JSON serializes"))
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code(), &e.to_status());
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from(secs));
    }
    r
}

impl Format {
    /// The media type of a response in this format, with the parameters that name it.
    fn content_type(self) -> String {
        match self {
            Format::Json => "application/json".into(),
            Format::Yaml => "application/yaml".into(),
            Format::Table { version } => format!("application/json;as=Table;v={version};g=meta.k8s.io"),
            Format::Metadata { list, version } => {
                let kind = if list { "PartialObjectMetadataList" } else { "PartialObjectMetadata" };
                format!("application/json;as={kind};v={version};g=meta.k8s.io")
            }
        }
    }

    /// A Table rendered for this format: in the negotiated `meta.k8s.io` version, with its rows'
    /// PartialObjectMetadata (`includeObject=Metadata`) in that version too.
    fn versioned_table(self, mut table: Value) -> Value {
        if let Format::Table { version } = self {
            let api_version = json!(format!("meta.k8s.io/{version}"));
            for row in table["rows"].as_array_mut().into_iter().flatten() {
                if row["object"]["kind"] == "PartialObjectMetadata" {
                    row["object"]["apiVersion"] = api_version.clone();
                }
            }
            table["apiVersion"] = api_version;
        }
        table
    }
}

/// A Table or PartialObjectMetadata(List) response, typed by its media type.
fn meta_response(code: u16, v: &Value, format: Format) -> Response<Body> {
    let body = serde_json::to_vec(&format.versioned_table(v.clone())).expect("JSON serializes");
    respond(code, &format.content_type(), body)
}

fn encode_as(code: u16, v: &Value, format: Format) -> Response<Body> {
    match format {
        Format::Yaml => match serde_yaml::to_string(v) {
            Ok(s) => respond(code, "application/yaml", s),
            Err(e) => error_response(&ApiError::internal(e)),
        },
        _ => json_response(code, v),
    }
}

fn success_status(details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// The bare Success a binding or an eviction answers (no details, as upstream).
fn plain_success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
}

/// Metric labels gathered while routing a request.
#[derive(Debug, Default)]
pub struct ReqLabels {
    verb: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: String,
}

/// The whole REST layer.
pub struct App {
    cfg: Config,
    storage: Arc<dyn Storage>,
    stores: HashMap<(String, String, String), Arc<Store>>,
    discovery: Discovery,
    openapi: crate::openapi::OpenApi,
    pub allocator: Arc<ServiceAllocator>,
    /// Set once the serving layer is built; answers TokenReviews.
    pub authenticator: std::sync::OnceLock<Arc<crate::server::auth::Authenticator>>,
    /// Flips to true at shutdown: open watches end cleanly so clients reconnect elsewhere.
    stopping: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Allocator(#[from] crate::allocator::AllocatorError),
    #[error("bootstrap failed: {0}")]
    Bootstrap(ApiError),
}

/// What a resource request is about, resolved against the registry.
struct Ctx<'a> {
    store: &'a Arc<Store>,
    user: Option<UserInfo>,
    path: ResourcePath,
    query: HashMap<String, String>,
    format: Format,
}

impl App {
    /// End every open watch (at shutdown); new watches are not refused, they end at once.
    pub fn stop_watches(&self) {
        self.stopping.send_replace(true);
    }

    pub async fn new(cfg: Config, storage: Arc<dyn Storage>) -> Result<Arc<Self>, AppError> {
        let prefix = match &cfg.storage {
            crate::config::StorageConfig::Etcd { prefix, .. } | crate::config::StorageConfig::Embedded { prefix, .. } => {
                prefix.clone()
            }
        };
        let allocator = Arc::new(ServiceAllocator::new(
            &cfg.service_cluster_ip_range,
            &cfg.service_node_port_range,
            storage.clone(),
            &prefix,
        )?);
        let mut stores = HashMap::new();
        let lookup = crate::admission::Lookup::new(storage.clone(), &prefix);
        for info in resources::all() {
            let strategy = registry::strategy::for_resource(info.group, info.plural, &allocator, &lookup);
            let store = Store::new(info, strategy, storage.clone(), &prefix, cfg.watch_cache_size);
            stores.insert((info.group.to_string(), info.version.to_string(), info.plural.to_string()), Arc::new(store));
        }
        if let Some(ips) = stores.get(&("networking.k8s.io".to_string(), "v1".to_string(), "ipaddresses".to_string())) {
            allocator.attach_ip_store(ips.clone());
        }
        let discovery = Discovery::build(&format!("{}:{}", cfg.advertise_address, cfg.listen.port()));
        let openapi = crate::openapi::OpenApi::build();
        let stopping = tokio::sync::watch::Sender::new(false);
        Ok(Arc::new(App { cfg, storage, stores, discovery, openapi, allocator, authenticator: std::sync::OnceLock::new(), stopping }))
    }

    pub fn store(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<Store>> {
        self.stores.get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    fn core(&self, plural: &str) -> &Arc<Store> {
        self.store("", "v1", plural).expect("core resource registered")
    }

    /// Create the system namespaces, the default ServiceCIDR and the `kubernetes` Service, and
    /// reconcile Service allocations with what is stored.
    pub async fn bootstrap(&self) -> Result<(), AppError> {
        if let Some(cidrs) = self.store("networking.k8s.io", "v1", "servicecidrs") {
            self.allocator.ensure_service_cidr(cidrs).await.map_err(AppError::Bootstrap)?;
        }
        self.allocator.reconcile(self.core("services")).await.map_err(AppError::Bootstrap)?;
        let opts = WriteOptions { field_manager: Some("kube-apiserver".into()), ..Default::default() };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            match self.core("namespaces").create(None, obj, &opts).await {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(e) => return Err(AppError::Bootstrap(e)),
            }
        }
        crate::admission::bootstrap_priority_classes(self.store("scheduling.k8s.io", "v1", "priorityclasses").map(|s| &**s))
            .await
            .map_err(AppError::Bootstrap)?;
        let ip = self.allocator.kubernetes_service_ip().to_string();
        let port = self.cfg.listen.port();
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        });
        // Its address is never handed out dynamically; creating it creates its IPAddress (or
        // takes over the one another server bootstrapping at the same time created).
        match self.core("services").get(Some("default"), "kubernetes").await {
            Ok(_) => {}
            Err(ApiError::NotFound(_)) => match self.core("services").create(Some("default"), svc, &opts).await {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(e) => return Err(AppError::Bootstrap(e)),
            },
            Err(e) => return Err(AppError::Bootstrap(e)),
        }
        let addr = self.cfg.advertise_address.to_string();
        let endpoints = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": addr}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        self.core("endpoints")
            .update(Some("default"), "kubernetes", Part::Main, endpoints, &opts)
            .await
            .map_err(AppError::Bootstrap)?;
        if let Some(slices) = self.store("discovery.k8s.io", "v1", "endpointslices") {
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [addr], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            });
            match slices.create(Some("default"), slice.clone(), &opts).await {
                Ok(_) => {}
                Err(ApiError::AlreadyExists(_)) => {
                    let mut s = slice;
                    if let Ok(cur) = slices.get(Some("default"), "kubernetes").await {
                        s["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
                    }
                    slices.update(Some("default"), "kubernetes", Part::Main, s, &opts).await.map_err(AppError::Bootstrap)?;
                }
                Err(e) => return Err(AppError::Bootstrap(e)),
            }
        }
        Ok(())
    }

    /// Update `apiserver_storage_objects` from the watch caches.
    fn record_object_counts(&self) {
        for store in self.stores.values() {
            if store.info.is_virtual() {
                continue;
            }
            let name = if store.info.group.is_empty() {
                store.info.plural.to_string()
            } else {
                format!("{}.{}", store.info.plural, store.info.group)
            };
            crate::metrics::set_storage_objects(&name, store.cacher.len() as i64);
        }
    }

    /// Run the Service allocation repair every `--service-repair-interval` until shutdown.
    pub fn spawn_service_repair(self: &Arc<Self>) {
        let interval = self.cfg.service_repair_interval;
        if interval.is_zero() {
            return;
        }
        let app = self.clone();
        let mut stopping = self.stopping.subscribe();
        tokio::spawn(async move {
            info!(?interval, "starting the Service allocation repair loop");
            let mut state = crate::allocator::RepairState::default();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopping.wait_for(|s| *s) => break,
                }
                let services = app.core("services");
                let events = app.store("", "v1", "events").map(|s| &**s);
                let pass = app.allocator.repair(services, events, &mut state, app.cfg.request_timeout);
                tokio::select! {
                    r = pass => match r {
                        Ok(report) if report != Default::default() => info!(?report, "repaired Service allocations"),
                        Ok(_) => debug!("Service allocations are consistent"),
                        Err(e) => warn!(error = %e, "repairing Service allocations"),
                    },
                    _ = stopping.wait_for(|s| *s) => break,
                }
            }
            info!("Service allocation repair loop stopped");
        });
    }

    /// Periodically compact storage history older than one interval.
    pub fn spawn_compactor(self: &Arc<Self>) {
        let interval = self.cfg.compaction_interval;
        if interval.is_zero() {
            return;
        }
        let storage = self.storage.clone();
        tokio::spawn(async move {
            let mut last: Option<i64> = None;
            loop {
                tokio::time::sleep(interval).await;
                match storage.current_revision().await {
                    Ok(now) => {
                        if let Some(prev) = last {
                            if let Err(e) = storage.compact(prev).await {
                                warn!(error = %e, revision = prev, "compaction failed");
                            } else {
                                debug!(revision = prev, "compacted");
                            }
                        }
                        last = Some(now);
                    }
                    Err(e) => warn!(error = %e, "compaction: cannot read current revision"),
                }
            }
        });
    }

    async fn route(&self, req: Request<Incoming>, user: Option<UserInfo>, labels: &mut ReqLabels) -> Response<Body> {
        let path = req.uri().path().to_string();
        let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        match path.as_str() {
            "/version" | "/version/" => return json_response(200, &version_info()),
            "/metrics" => {
                self.record_object_counts();
                return respond(200, crate::metrics::CONTENT_TYPE, crate::metrics::render());
            }
            "/readyz" | "/healthz" | "/livez" => {
                return match (path.as_str(), self.storage.health().await) {
                    ("/livez", _) | (_, Ok(())) => respond(200, "text/plain; charset=utf-8", "ok"),
                    (_, Err(e)) => respond(500, "text/plain; charset=utf-8", format!("[-]etcd failed: {e}\nreadyz check failed")),
                };
            }
            p if p.starts_with("/healthz/") || p.starts_with("/livez/") || p.starts_with("/readyz/") => {
                return respond(200, "text/plain; charset=utf-8", "ok");
            }
            "/openapi/v2" | "/openapi/v2/" => {
                // JSON, or gnostic's protobuf form that kubectl asks for; both share one ETag.
                use crate::openapi::V2Answer;
                let header_text = |name| req.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
                let answer = self.openapi.v2_answer(&accept, header_text(header::IF_NONE_MATCH), header_text(header::IF_MODIFIED_SINCE));
                let mut resp = match answer {
                    V2Answer::Document { content_type, body } => {
                        let mut resp = respond(200, content_type, body.clone());
                        if let Ok(date) = header::HeaderValue::from_str(&self.openapi.v2_last_modified()) {
                            resp.headers_mut().insert(header::LAST_MODIFIED, date);
                        }
                        resp
                    }
                    V2Answer::NotModified => Response::builder()
                        .status(304)
                        .header(header::CACHE_CONTROL, "no-cache, private")
                        .body(full(Bytes::new()))
                        .expect("valid response"),
                    V2Answer::NotAcceptable => {
                        return error_response(&ApiError::NotAcceptable(
                            "only application/json and application/com.github.proto-openapi.spec.v2@v1.0+protobuf are served for /openapi/v2".into(),
                        ));
                    }
                };
                if let Ok(etag) = header::HeaderValue::from_str(&format!("\"{}\"", self.openapi.v2_hash())) {
                    resp.headers_mut().insert(header::ETAG, etag);
                }
                resp.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
                return resp;
            }
            "/openapi/v3" | "/openapi/v3/" => return json_response(200, self.openapi.v3_index()),
            p if p.starts_with("/openapi/v3/") => {
                let doc_path = &p["/openapi/v3/".len()..];
                let Some(doc) = self.openapi.v3_doc(doc_path) else {
                    return error_response(&ApiError::NotFound(Target::default()));
                };
                let hash = self.openapi.v3_hash(doc_path).unwrap_or("");
                let query = parse_query(req.uri().query());
                let etag = format!("\"{hash}\"");
                if req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                    return Response::builder().status(304).header(header::ETAG, etag).body(full(Bytes::new())).expect("valid response");
                }
                let cache = if query.get("hash").map(String::as_str) == Some(hash) { "public, immutable" } else { "no-cache, private" };
                return Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::CACHE_CONTROL, cache)
                    .header(header::ETAG, etag)
                    .body(full(doc.clone()))
                    .expect("valid response");
            }
            "/api" | "/api/" => {
                return if discovery::wants_aggregated(&accept) {
                    respond(200, discovery::AGGREGATED_V2, serde_json::to_vec(&self.discovery.aggregated_core).expect("json"))
                } else {
                    json_response(200, &self.discovery.api_versions)
                };
            }
            "/apis" | "/apis/" => {
                return if discovery::wants_aggregated(&accept) {
                    respond(200, discovery::AGGREGATED_V2, serde_json::to_vec(&self.discovery.aggregated_apis).expect("json"))
                } else {
                    json_response(200, &self.discovery.api_group_list)
                };
            }
            _ => {}
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segs.as_slice() {
            ["api", v] => {
                return match self.discovery.resource_list(v) {
                    Some(doc) => json_response(200, doc),
                    None => error_response(&ApiError::NotFound(Target::default())),
                };
            }
            ["apis", g] => {
                return match self.discovery.group(g) {
                    Some(doc) => json_response(200, doc),
                    None => error_response(&ApiError::NotFound(Target::default())),
                };
            }
            ["apis", g, v] => {
                return match self.discovery.resource_list(&format!("{g}/{v}")) {
                    Some(doc) => json_response(200, doc),
                    None => error_response(&ApiError::NotFound(Target::default())),
                };
            }
            _ => {}
        }
        let Some(rp) = parse_resource_path(&path) else {
            return error_response(&ApiError::NotFound(Target::default()));
        };
        labels.group = rp.group.clone();
        labels.version = rp.version.clone();
        labels.resource = rp.resource.clone();
        labels.subresource = rp.subresource.clone().unwrap_or_default();
        labels.scope = if rp.name.is_some() {
            "resource".into()
        } else if rp.namespace.is_some() {
            "namespace".into()
        } else {
            "cluster".into()
        };
        let Some(store) = self.store(&rp.group, &rp.version, &rp.resource) else {
            return error_response(&ApiError::NotFound(Target::default()));
        };
        let format = match negotiate(&accept) {
            Ok(f) => f,
            Err(e) => return error_response(&e),
        };
        let query = parse_query(req.uri().query());
        let ctx = Ctx { store, user, path: rp, query, format };
        let watch = ctx.path.watch || truthy(ctx.query.get("watch"));
        labels.verb = verb_label(req.method(), &ctx.path, watch).into();
        if watch && req.method() == Method::GET && ctx.path.name.is_none() {
            return match self.watch(&ctx).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            };
        }
        // `?timeout=` (kubectl --request-timeout) may shorten, never lengthen, the server's limit.
        let mut timeout = self.cfg.request_timeout;
        if let Some(t) = ctx.query.get("timeout") {
            match component_base::duration::parse_duration(t) {
                Ok(d) if !d.is_zero() && d < timeout => timeout = d,
                Ok(_) => {}
                Err(_) => return error_response(&ApiError::BadRequest("invalid timeout specified in the request URL".into())),
            }
        }
        match tokio::time::timeout(timeout, self.serve_resource(req, &ctx)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => error_response(&e),
            Err(_) => error_response(&ApiError::Timeout(format!(
                "Timeout: request did not complete within requested timeout - context deadline exceeded"
            ))),
        }
    }

    async fn read_body(&self, req: Request<Incoming>) -> Result<(Bytes, String), ApiError> {
        let limit = self.cfg.max_request_body_bytes;
        let too_large = || ApiError::RequestEntityTooLarge(format!("Request entity too large: limit is {limit}"));
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
            if len > limit {
                return Err(too_large());
            }
        }
        let body = Limited::new(req.into_body(), limit).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                too_large()
            } else {
                ApiError::BadRequest(format!("unable to read request body: {e}"))
            }
        })?;
        Ok((body.to_bytes(), ct))
    }

    async fn serve_resource(&self, req: Request<Incoming>, ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
        let method = req.method().clone();
        let store = ctx.store;
        let ns = if store.info.namespaced { ctx.path.namespace.as_deref() } else { None };
        if store.info.namespaced && ctx.path.namespace.is_none() && !(method == Method::GET && ctx.path.name.is_none()) {
            return Err(ApiError::NotFound(Target::default()));
        }
        if !store.info.namespaced && ctx.path.namespace.is_some() {
            return Err(ApiError::NotFound(Target::default()));
        }
        if let Some(sub) = ctx.path.subresource.as_deref() {
            if !store.info.subresources.iter().any(|s| s.name == sub) {
                return Err(ApiError::NotFound(Target::default()));
            }
            let name = ctx.path.name.clone().unwrap_or_default();
            return self.serve_subresource(req, ctx, ns, &name, sub).await;
        }
        if store.info.is_virtual() {
            if method != Method::POST || ctx.path.name.is_some() {
                return Err(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource".into()));
            }
            let opts = crate::fieldvalidation::write_options(&method, &ctx.query)?;
            let (body, ct) = self.read_body(req).await?;
            let obj = store.decode_body(crate::fieldvalidation::decode_checked(&body, &ct, store.info, &opts)?)?;
            let answer = self.review(store, ns, obj, ctx.user.as_ref(), &opts).await?;
            return Ok(crate::fieldvalidation::with_warnings(json_response(201, &answer), &opts.warnings));
        }
        let verb = match (&method, ctx.path.name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) => "list",
            (&Method::POST, false) => "create",
            (&Method::PUT, true) => "update",
            (&Method::PATCH, true) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "",
        };
        if !store.info.supports(verb) {
            return Err(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource".into()));
        }
        let mut opts = crate::fieldvalidation::write_options(&method, &ctx.query)?;
        opts.field_manager = crate::fieldmanager::request_manager(&method, &ctx.query, req.headers())?;
        let result = match (&method, ctx.path.name.as_deref()) {
            (&Method::GET, Some(name)) => {
                let rv = ctx.query.get("resourceVersion").map(String::as_str).filter(|v| !v.is_empty());
                let obj = if rv == Some("0") {
                    store.get_cached(ns, name).await?
                } else {
                    if let Some(rv) = rv {
                        let rv = rv.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?;
                        store.wait_for_revision(rv).await?;
                    }
                    store.get(ns, name).await?
                };
                Ok(self.render_object(200, &obj, ctx))
            }
            (&Method::GET, None) => {
                validate_list_options(&ctx.query, false)?;
                let q = list_query(&ctx.query, store)?;
                let list = store.list(ns, &q).await?;
                Ok(self.render_list(&list, ctx))
            }
            (&Method::POST, None) => {
                let (body, ct) = self.read_body(req).await?;
                let obj = crate::fieldvalidation::decode_checked(&body, &ct, store.info, &opts)?;
                if store.info.namespaced {
                    self.check_namespace_open(ns.unwrap_or("default")).await?;
                }
                let created = store.create(ns, obj, &opts).await?;
                Ok(self.render_object(201, &created, ctx))
            }
            (&Method::PUT, Some(name)) => {
                let (body, ct) = self.read_body(req).await?;
                let obj = crate::fieldvalidation::decode_checked(&body, &ct, store.info, &opts)?;
                let (obj, created) = store.update(ns, name, Part::Main, obj, &opts).await?;
                Ok(self.render_object(if created { 201 } else { 200 }, &obj, ctx))
            }
            (&Method::PATCH, Some(name)) => {
                let (body, ct) = self.read_body(req).await?;
                if ct == crate::fieldmanager::APPLY_PATCH {
                    let force = truthy(ctx.query.get("force"));
                    if store.info.namespaced && matches!(store.get(ns, name).await, Err(ApiError::NotFound(_))) {
                        self.check_namespace_open(ns.unwrap_or("default")).await?;
                    }
                    let (obj, created) = crate::fieldmanager::apply_request(store, ns, name, Part::Main, &body, &opts, force).await?;
                    Ok(self.render_object(if created { 201 } else { 200 }, &obj, ctx))
                } else {
                    let obj = self.patch(store, ns, name, Part::Main, &body, &ct, &opts).await?;
                    Ok(self.render_object(200, &obj, ctx))
                }
            }
            (&Method::DELETE, Some(name)) => {
                let (body, ct) = self.read_body(req).await?;
                let dopts = delete_options(&body, &ct, &ctx.query)?;
                if store.info.group.is_empty() && store.info.plural == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name) {
                    return Err(ApiError::Forbidden(
                        format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
                        Some(Target::new("", "namespaces", name)),
                    ));
                }
                let (obj, gone) = store.delete(ns, name, &dopts).await?;
                let code = if gone { 200 } else { 202 };
                if gone && !(store.info.group.is_empty() && store.info.plural == "pods") {
                    let details = json!({"name": name, "group": store.info.group, "kind": store.info.plural, "uid": meta::uid(&obj)});
                    return Ok(json_response(code, &success_status(details)));
                }
                Ok(self.render_object(code, &obj, ctx))
            }
            (&Method::DELETE, None) => {
                validate_list_options(&ctx.query, false)?;
                let (body, ct) = self.read_body(req).await?;
                let dopts = delete_options(&body, &ct, &ctx.query)?;
                let q = list_query(&ctx.query, store)?;
                let list = store.delete_collection(ns, &q, &dopts).await?;
                Ok(self.render_list(&list, ctx))
            }
            _ => Err(ApiError::MethodNotAllowed(format!("the server does not allow this method on the requested resource"))),
        };
        result.map(|r| crate::fieldvalidation::with_warnings(r, &opts.warnings))
    }

    async fn serve_subresource(
        &self,
        req: Request<Incoming>,
        ctx: &Ctx<'_>,
        ns: Option<&str>,
        name: &str,
        sub: &str,
    ) -> Result<Response<Body>, ApiError> {
        let method = req.method().clone();
        let mut opts = match sub {
            "status" | "scale" | "finalize" | "binding" | "eviction" => crate::fieldvalidation::write_options(&method, &ctx.query)?,
            _ => WriteOptions { dry_run: ctx.query.get("dryRun").is_some_and(|v| v == "All"), ..Default::default() },
        };
        if matches!(sub, "status" | "scale" | "finalize") {
            opts.field_manager = crate::fieldmanager::request_manager(&method, &ctx.query, req.headers())?;
        }
        opts.subresource = sub.to_string();
        let result = self.serve_subresource_with(req, ctx, ns, name, sub, &opts).await;
        result.map(|r| crate::fieldvalidation::with_warnings(r, &opts.warnings))
    }

    async fn serve_subresource_with(
        &self,
        req: Request<Incoming>,
        ctx: &Ctx<'_>,
        ns: Option<&str>,
        name: &str,
        sub: &str,
        opts: &WriteOptions,
    ) -> Result<Response<Body>, ApiError> {
        let store = ctx.store;
        let method = req.method().clone();
        let opts = opts.clone();
        match (sub, &method) {
            ("status", &Method::GET) => Ok(self.render_object(200, &store.get(ns, name).await?, ctx)),
            ("status" | "finalize", &Method::PUT) => {
                let part = if sub == "status" { Part::Status } else { Part::Finalize };
                let (body, ct) = self.read_body(req).await?;
                let obj = crate::fieldvalidation::decode_checked(&body, &ct, store.info, &opts)?;
                let (obj, _) = store.update(ns, name, part, obj, &opts).await?;
                Ok(self.render_object(200, &obj, ctx))
            }
            ("status", &Method::PATCH) => {
                let (body, ct) = self.read_body(req).await?;
                if ct == crate::fieldmanager::APPLY_PATCH {
                    let force = truthy(ctx.query.get("force"));
                    let (obj, _) = crate::fieldmanager::apply_request(store, ns, name, Part::Status, &body, &opts, force).await?;
                    return Ok(self.render_object(200, &obj, ctx));
                }
                let obj = self.patch(store, ns, name, Part::Status, &body, &ct, &opts).await?;
                Ok(self.render_object(200, &obj, ctx))
            }
            ("scale", &Method::GET) => Ok(render_scale(200, &to_scale(&store.get(ns, name).await?), ctx)),
            ("scale", &Method::PATCH) if ctx_content_type(&req) == crate::fieldmanager::APPLY_PATCH => {
                let (body, _) = self.read_body(req).await?;
                let force = truthy(ctx.query.get("force"));
                let updated = crate::fieldmanager::scale::apply(store, ns, name, &body, &opts, force, scale_kind(store.info)).await?;
                Ok(render_scale(200, &to_scale(&updated), ctx))
            }
            ("scale", &Method::PUT | &Method::PATCH) => {
                let (body, ct) = self.read_body(req).await?;
                let is_patch = method == Method::PATCH;
                let scale_gvk = scale_kind(store.info);
                let body_val = if is_patch {
                    None
                } else {
                    Some(crate::fieldvalidation::decode_checked_as(&body, &ct, scale_gvk, &opts)?)
                };
                let patch_problems = crate::fieldvalidation::patch_problems(&body, &ct, &opts);
                let precondition = body_val
                    .as_ref()
                    .map(|b| meta::resource_version(b).to_string())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {s:?}"))))
                    .transpose()?;
                let updated = store
                    .guaranteed_update(ns, name, Part::Main, precondition, &opts, |cur| {
                        let scale = match &body_val {
                            Some(b) => b.clone(),
                            None => {
                                let gvk = crate::patch::Gvk { group: scale_gvk.0, version: scale_gvk.1, kind: scale_gvk.2 };
                                let patched = apply_patch(&to_scale(cur), &body, &ct, gvk)?;
                                crate::fieldvalidation::check_patched_as(scale_gvk, &patched, &patch_problems, &opts)?;
                                patched
                            }
                        };
                        if is_patch {
                            let rv = meta::resource_version(&scale);
                            if !rv.is_empty() && rv != meta::resource_version(cur) {
                                return Err(ApiError::conflict(store.info.group, store.info.plural, name));
                            }
                        }
                        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
                        if replicas < 0 {
                            return Err(ApiError::invalid("Scale", "autoscaling", name, vec![crate::errors::Cause::invalid_raw(
                                "spec.replicas", &replicas.to_string(), "must be greater than or equal to 0")]));
                        }
                        let mut next = cur.clone();
                        next["spec"]["replicas"] = json!(replicas);
                        Ok(next)
                    })
                    .await?;
                Ok(render_scale(200, &to_scale(&updated), ctx))
            }
            ("binding", &Method::POST) => {
                let (body, ct) = self.read_body(req).await?;
                let binding = crate::fieldvalidation::decode_checked_as(&body, &ct, subresource_kind(store.info, sub), &opts)?;
                self.bind(ns.unwrap_or("default"), name, &binding, &opts).await?;
                Ok(json_response(201, &plain_success()))
            }
            ("eviction", &Method::POST) => {
                let (body, ct) = self.read_body(req).await?;
                let eviction = crate::fieldvalidation::decode_checked_as(&body, &ct, subresource_kind(store.info, sub), &opts)?;
                self.evict(ns.unwrap_or("default"), name, &eviction, opts.dry_run).await?;
                Ok(json_response(201, &plain_success()))
            }
            _ => Err(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource".into())),
        }
    }

    /// Create-only resources: reviews are answered, a Binding binds its pod.
    async fn review(&self, store: &Store, ns: Option<&str>, mut obj: Value, user: Option<&UserInfo>, opts: &WriteOptions) -> Result<Value, ApiError> {
        let user_info = |u: Option<&UserInfo>| match u {
            Some(u) => json!({"username": u.name, "uid": u.uid, "groups": u.groups}),
            None => json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
        };
        match (store.info.group, store.info.plural) {
            ("", "bindings") => {
                let name = meta::name(&obj).to_string();
                self.bind(ns.unwrap_or("default"), &name, &obj, &WriteOptions { dry_run: opts.dry_run, ..Default::default() }).await?;
                return Ok(plain_success());
            }
            ("authentication.k8s.io", "selfsubjectreviews") => obj["status"] = json!({"userInfo": user_info(user)}),
            ("authentication.k8s.io", "tokenreviews") => {
                let token = obj["spec"]["token"].as_str().unwrap_or("").to_string();
                obj["status"] = match self.authenticator.get().and_then(|a| a.lookup_token(&token)) {
                    Some(u) => json!({"authenticated": true, "user": user_info(Some(&u))}),
                    None => json!({"authenticated": false, "error": "invalid bearer token"}),
                };
            }
            ("authorization.k8s.io", "selfsubjectrulesreviews") => {
                obj["status"] = json!({
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    "incomplete": false,
                });
            }
            ("authorization.k8s.io", _) => {
                // No authorizer is configured yet: every authenticated request is allowed.
                obj["status"] = json!({"allowed": true, "reason": "no authorization mode is configured (AlwaysAllow)"});
            }
            _ => return Err(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource".into())),
        }
        meta::meta_mut(&mut obj).insert("creationTimestamp".into(), Value::Null);
        Ok(obj)
    }

    /// Bind a pod to a node (`pods/binding` and the `bindings` resource).
    async fn bind(&self, ns: &str, name: &str, binding: &Value, opts: &WriteOptions) -> Result<(), ApiError> {
        let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
        if node.is_empty() {
            return Err(ApiError::invalid("Binding", "", name, vec![crate::errors::Cause::required("target.name", "")]));
        }
        self.core("pods")
            .guaranteed_update(Some(ns), name, Part::Whole, None, opts, |cur| {
                if let Some(existing) = cur["spec"]["nodeName"].as_str().filter(|s| !s.is_empty()) {
                    return Err(ApiError::Conflict {
                        target: Target::new("", "pods/binding", name),
                        message: format!("pod {name} is already assigned to node \"{existing}\""),
                    });
                }
                if meta::is_deleting(cur) {
                    return Err(ApiError::Conflict {
                        target: Target::new("", "pods/binding", name),
                        message: format!("pod {name} is being deleted, cannot be assigned to a host"),
                    });
                }
                let mut next = cur.clone();
                next["spec"]["nodeName"] = json!(node);
                if let Some(ann) = binding["metadata"]["annotations"].as_object() {
                    for (k, v) in ann {
                        meta::meta_mut(&mut next).entry("annotations").or_insert_with(|| json!({}))[k] = v.clone();
                    }
                }
                set_condition(&mut next, "PodScheduled", "True", None);
                Ok(next)
            })
            .await?;
        Ok(())
    }

    /// `pods/eviction`: delete the pod unless a PodDisruptionBudget forbids it. A dry run is
    /// asked for in the Eviction's deleteOptions or by the request's `dryRun` (upstream copies
    /// the latter into the former).
    async fn evict(&self, ns: &str, name: &str, eviction: &Value, dry_run: bool) -> Result<(), ApiError> {
        let pods = self.core("pods");
        let pod = pods.get(Some(ns), name).await?;
        let dopts_v = &eviction["deleteOptions"];
        let dopts = DeleteOptions {
            grace_period_seconds: dopts_v["gracePeriodSeconds"].as_i64(),
            precondition_uid: dopts_v["preconditions"]["uid"].as_str().map(String::from),
            precondition_rv: dopts_v["preconditions"]["resourceVersion"].as_str().map(String::from),
            dry_run: dry_run || dopts_v["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All")),
            ..Default::default()
        };
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let terminal = phase == "Succeeded" || phase == "Failed" || phase == "Pending" || meta::is_deleting(&pod);
        if !terminal {
            if let Some(pdbs) = self.store("policy", "v1", "poddisruptionbudgets") {
                let labels = pod["metadata"]["labels"].clone();
                let (all, _) = pdbs.cacher.snapshot(&pdbs.key(Some(ns), ""));
                let matching: Vec<Value> = all
                    .iter()
                    .filter(|p| meta::namespace(p) == ns)
                    .filter(|p| {
                        // policy/v1: an empty selector selects every pod, a missing one none.
                        serde_json::from_value(p["spec"]["selector"].clone())
                            .ok()
                            .and_then(|s| LabelSelector::from_label_selector(&s).ok())
                            .is_some_and(|sel: LabelSelector| sel.matches_value(&json!({"metadata": {"labels": labels}})))
                    })
                    .map(|p| (**p).clone())
                    .collect();
                if matching.len() > 1 {
                    return Err(ApiError::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."));
                }
                if let Some(pdb) = matching.first() {
                    let pdb_name = meta::name(pdb).to_string();
                    let violation = "Cannot evict pod as it would violate the pod's disruption budget.";
                    let observed = pdb["status"]["observedGeneration"].as_i64().unwrap_or(0);
                    let budget_cause = |message: String| Cause { reason: "DisruptionBudget".into(), message, field: String::new() };
                    let processing = || ApiError::TooManyRequests {
                        message: violation.into(),
                        retry_after: 10,
                        causes: vec![budget_cause(format!("The disruption budget {pdb_name} is still being processed by the server."))],
                    };
                    if observed < pdb["metadata"]["generation"].as_i64().unwrap_or(0) {
                        return Err(processing());
                    }
                    let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
                    if allowed < 0 {
                        return Err(ApiError::Forbidden(
                            format!("poddisruptionbudgets.policy \"{pdb_name}\" is forbidden: pdb disruptions allowed is negative"),
                            Some(Target::new("policy", "poddisruptionbudgets", &pdb_name)),
                        ));
                    }
                    if allowed == 0 {
                        let desired = pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0);
                        let current = pdb["status"]["currentHealthy"].as_i64().unwrap_or(0);
                        return Err(ApiError::TooManyRequests {
                            message: violation.into(),
                            retry_after: 0,
                            causes: vec![budget_cause(format!(
                                "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                            ))],
                        });
                    }
                    if !dopts.dry_run {
                        let pod_name = name.to_string();
                        pdbs.guaranteed_update(Some(ns), &pdb_name, Part::Status, meta::resource_version(pdb).parse().ok(), &WriteOptions::default(), |cur| {
                            let mut next = cur.clone();
                            next["status"]["disruptionsAllowed"] = json!(allowed - 1);
                            next["status"]["disruptedPods"][&pod_name] = json!(meta::now_rfc3339());
                            Ok(next)
                        })
                        .await
                        .map_err(|e| match e {
                            ApiError::Conflict { .. } => processing(),
                            e => e,
                        })?;
                    }
                }
            }
        }
        pods.delete(Some(ns), name, &dopts).await?;
        Ok(())
    }

    /// Refuse creation in a missing or terminating namespace (the NamespaceLifecycle admission).
    async fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
        let store = self.core("namespaces");
        let obj = match store.cacher.get(&store.key(None, ns)) {
            Some(o) => o,
            None => Arc::new(store.get(None, ns).await?),
        };
        if meta::is_deleting(&obj) || obj["status"]["phase"] == "Terminating" {
            return Err(ApiError::Forbidden(
                format!("unable to create new content in namespace {ns} because it is being terminated"),
                Some(Target::new("", "namespaces", ns)),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn patch(
        &self,
        store: &Store,
        ns: Option<&str>,
        name: &str,
        part: Part,
        body: &[u8],
        ct: &str,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        patch_kind(ct)?;
        let precondition = None;
        let patch_problems = crate::fieldvalidation::patch_problems(body, ct, opts);
        store
            .guaranteed_update(ns, name, part, precondition, opts, |cur| {
                let next = apply_patch(cur, body, ct, store.info.into())?;
                crate::fieldvalidation::check_patched(store.info, &next, &patch_problems, opts)?;
                let rv = meta::resource_version(&next);
                if !rv.is_empty() && rv != meta::resource_version(cur) {
                    return Err(ApiError::conflict(store.info.group, store.info.plural, name));
                }
                Ok(next)
            })
            .await
    }

    fn render_object(&self, code: u16, obj: &Value, ctx: &Ctx<'_>) -> Response<Body> {
        let rendered = match ctx.format {
            Format::Table { .. } => table::object_table_for(ctx.store.info, obj, include_object(&ctx.query), true),
            Format::Metadata { list, version } => table::metadata_object(ctx.store.info, obj, list, version),
            _ => return encode_as(code, obj, ctx.format),
        };
        match rendered {
            Ok(v) => meta_response(code, &v, ctx.format),
            Err(e) => error_response(&e),
        }
    }

    fn render_list(&self, list: &registry::ObjectList, ctx: &Ctx<'_>) -> Response<Body> {
        match ctx.format {
            Format::Table { .. } => {
                let items = list.items.iter().map(|a| a.as_ref());
                match table::object_table(ctx.store.info, items, &list.metadata(), include_object(&ctx.query), true) {
                    Ok(t) => meta_response(200, &t, ctx.format),
                    Err(e) => error_response(&e),
                }
            }
            Format::Metadata { list: want_list, version } => {
                let items = list.items.iter().map(|a| a.as_ref());
                match table::metadata_list(ctx.store.info, items, &list.metadata(), want_list, version) {
                    Ok(v) => meta_response(200, &v, ctx.format),
                    Err(e) => error_response(&e),
                }
            }
            Format::Yaml => match serde_yaml::to_string(list) {
                Ok(s) => respond(200, "application/yaml", s),
                Err(e) => error_response(&ApiError::internal(e)),
            },
            Format::Json => respond(200, "application/json", serde_json::to_vec(list).expect("JSON serializes")),
        }
    }

    /// Stream a watch: initial objects, then cached events, bookmarks, until timeout or disconnect.
    async fn watch(&self, ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
        let store = ctx.store.clone();
        let ns = if store.info.namespaced { ctx.path.namespace.clone() } else { None };
        let q = list_query(&ctx.query, &store)?;
        let bookmarks = truthy(ctx.query.get("allowWatchBookmarks"));
        validate_list_options(&ctx.query, true)?;
        let send_initial = ctx.query.get("sendInitialEvents").filter(|v| !v.is_empty()).map(|v| truthy(Some(v)));
        let timeout = match ctx.query.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()) {
            Some(s) => Duration::from_secs(s),
            None => {
                let min = self.cfg.min_request_timeout.as_secs().max(1);
                Duration::from_secs(rand::rng().random_range(min..=2 * min))
            }
        };
        let format = ctx.format;
        let include = include_object(&ctx.query).to_string();
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let start = match store.watch_start(ns.as_deref(), &q, send_initial).await {
            Ok(s) => Some(s),
            Err(e @ ApiError::Gone(_)) => {
                // Upstream reports an expired resourceVersion as an ERROR event on the stream.
                let line = watch_line("ERROR", &e.to_status());
                let _ = tx.send(line).await;
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(start) = start {
            let info = store.info;
            let tx = tx.clone();
            let mut stopping = self.stopping.subscribe();
            tokio::spawn(async move {
                crate::metrics::add_registered_watchers(info.group, info.version, info.kind, 1);
                let _unregister = WatcherGuard(info);
                let mut first_table = true;
                let encode = |ty: &str, obj: &Value, first: &mut bool| -> Bytes {
                    if matches!(format, Format::Table { .. }) && ty != "BOOKMARK" && ty != "ERROR" {
                        match table::object_table_for(info, obj, &include, *first) {
                            Ok(t) => {
                                *first = false;
                                watch_line(ty, &format.versioned_table(t))
                            }
                            Err(e) => watch_line("ERROR", &e.to_status()),
                        }
                    } else if let (Format::Metadata { version, .. }, false) = (format, ty == "ERROR") {
                        watch_line(ty, &table::partial_object_metadata(obj, version))
                    } else {
                        watch_line(ty, obj)
                    }
                };
                // An event sent as it is, in JSON, is encoded once for all its watchers.
                let encode_event = |ev: &CachedEvent, ty: EventType, obj: &Value, first: &mut bool| -> Bytes {
                    if matches!(format, Format::Json) && ty == ev.event_type {
                        ev.encoded(|| encode(ty.as_str(), obj, first))
                    } else {
                        encode(ty.as_str(), obj, first)
                    }
                };
                let deadline = tokio::time::Instant::now() + timeout;
                let mut sub = start.sub;
                let mut last_rv = sub.after;
                for obj in &start.initial {
                    if tx.send(encode("ADDED", obj, &mut first_table)).await.is_err() {
                        return;
                    }
                }
                if send_initial == Some(true) {
                    let bm = bookmark(info, last_rv, true);
                    if tx.send(watch_line("BOOKMARK", &bm)).await.is_err() {
                        return;
                    }
                }
                let backlog = std::mem::take(&mut sub.backlog);
                for ev in backlog {
                    last_rv = last_rv.max(ev.rv);
                    if let Some((ty, obj)) = filter_event(&ev, |o| store.watch_matches(ns.as_deref(), &q, o)) {
                        if tx.send(encode_event(&ev, ty, &obj, &mut first_table)).await.is_err() {
                            return;
                        }
                    }
                }
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                tick.tick().await;
                loop {
                    tokio::select! {
                        ev = sub.live.recv() => match ev {
                            Ok(ev) => {
                                if ev.rv <= last_rv { continue; }
                                last_rv = ev.rv;
                                if let Some((ty, obj)) = filter_event(&ev, |o| store.watch_matches(ns.as_deref(), &q, o)) {
                                    if tx.send(encode_event(&ev, ty, &obj, &mut first_table)).await.is_err() { return; }
                                }
                            }
                            // Too slow or the cache was reset: end the watch; the client resumes.
                            Err(_) => return,
                        },
                        _ = tick.tick(), if bookmarks => {
                            if tx.send(watch_line("BOOKMARK", &bookmark(info, last_rv, false))).await.is_err() { return; }
                        }
                        _ = tokio::time::sleep_until(deadline) => return,
                        _ = tx.closed() => return,
                        _ = async {
                            while !*stopping.borrow_and_update() {
                                if stopping.changed().await.is_err() {
                                    std::future::pending::<()>().await;
                                }
                            }
                        } => return,
                    }
                }
            });
        }
        drop(tx);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        let content_type = if matches!(format, Format::Table { .. }) { format.content_type() } else { "application/json".to_string() };
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header("Cache-Control", "no-cache, private")
            .body(StreamBody::new(stream).boxed())
            .expect("valid response"))
    }
}

/// Lowers the registered-watchers gauge when a watch ends.
struct WatcherGuard(&'static resources::ResourceInfo);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        crate::metrics::add_registered_watchers(self.0.group, self.0.version, self.0.kind, -1);
    }
}

fn include_object(q: &HashMap<String, String>) -> &str {
    q.get("includeObject").map(String::as_str).unwrap_or("Metadata")
}

fn bookmark(info: &resources::ResourceInfo, rv: i64, initial_end: bool) -> Value {
    let gv = if info.group.is_empty() { info.version.to_string() } else { format!("{}/{}", info.group, info.version) };
    let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": info.kind, "apiVersion": gv, "metadata": metadata})
}

fn watch_line(ty: &str, obj: &impl serde::Serialize) -> Bytes {
    #[derive(serde::Serialize)]
    struct Event<'a, T> {
        #[serde(rename = "type")]
        ty: &'a str,
        object: &'a T,
    }
    let mut v = serde_json::to_vec(&Event { ty, object: obj }).expect("JSON serializes");
    v.push(b'\n');
    Bytes::from(v)
}

fn version_info() -> Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "gitVersion": KUBE_VERSION.2,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

fn verb_label(method: &Method, p: &ResourcePath, watch: bool) -> &'static str {
    match (method, p.name.is_some()) {
        (&Method::GET, _) if watch => "WATCH",
        (&Method::GET, true) => "GET",
        (&Method::GET, false) => "LIST",
        (&Method::POST, _) => "POST",
        (&Method::PUT, _) => "PUT",
        (&Method::PATCH, _) => "PATCH",
        (&Method::DELETE, true) => "DELETE",
        (&Method::DELETE, false) => "DELETECOLLECTION",
        _ => "OTHER",
    }
}

/// Decode a request body by content type.
pub fn decode_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    match content_type {
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let v: Value = serde_yaml::from_slice(body).map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))?;
            if !v.is_object() {
                return Err(ApiError::BadRequest("couldn't get version/kind; the body is not an object".into()));
            }
            Ok(v)
        }
        crate::protobuf::CONTENT_TYPE => {
            crate::protobuf::decode(body).map_err(|e| ApiError::BadRequest(format!("unable to decode protobuf body: {e}")))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

enum PatchKind {
    Json,
    Merge,
    Strategic,
}

fn patch_kind(ct: &str) -> Result<PatchKind, ApiError> {
    match ct {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other})"
        ))),
    }
}

/// Apply a patch document to `cur`, an object of kind `gvk` (its schema gives strategic merge
/// patch the list strategies).
pub fn apply_patch(cur: &Value, body: &[u8], ct: &str, gvk: crate::patch::Gvk<'_>) -> Result<Value, ApiError> {
    let mut doc = cur.clone();
    match patch_kind(ct)? {
        PatchKind::Json => {
            let p: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("json: cannot unmarshal the patch: {e}")))?;
            json_patch::patch(&mut doc, &p).map_err(|e| ApiError::Invalid {
                kind: String::new(),
                target: Target::default(),
                causes: vec![crate::errors::Cause { reason: "FieldValueInvalid".into(), message: e.to_string(), field: String::new() }],
            })?;
        }
        PatchKind::Merge => {
            let p: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("json: cannot unmarshal the patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::BadRequest("the patch must be a JSON object".into()));
            }
            json_patch::merge(&mut doc, &p);
        }
        PatchKind::Strategic => doc = crate::patch::apply_strategic(&doc, body, gvk)?,
    }
    Ok(doc)
}

/// Upstream's `ValidateListOptions`: the resourceVersion/resourceVersionMatch/sendInitialEvents
/// combinations a list or a watch accepts (422 on `ListOptions.meta.k8s.io` otherwise).
fn validate_list_options(q: &HashMap<String, String>, watch: bool) -> Result<(), ApiError> {
    use crate::errors::Cause;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let rv_match = get("resourceVersionMatch");
    let send_initial = get("sendInitialEvents");
    let mut causes = Vec::new();
    let field = "resourceVersionMatch";
    if watch {
        if send_initial.is_some() && rv_match != Some("NotOlderThan") {
            causes.push(Cause::forbidden(field, "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
        }
        if let Some(m) = rv_match {
            if send_initial.is_none() {
                causes.push(Cause::forbidden(field, "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"));
            }
            if m != "NotOlderThan" {
                causes.push(Cause::not_supported(field, m, &["NotOlderThan"]));
            }
        }
    } else {
        if let Some(m) = rv_match {
            if get("resourceVersion").is_none() {
                causes.push(Cause::forbidden(field, "resourceVersionMatch is forbidden unless resourceVersion is provided"));
            }
            if get("continue").is_some() {
                causes.push(Cause::forbidden(field, "resourceVersionMatch is forbidden when continue is provided"));
            }
            match m {
                "Exact" if get("resourceVersion") == Some("0") => {
                    causes.push(Cause::forbidden(field, "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
                }
                "Exact" | "NotOlderThan" => {}
                _ => causes.push(Cause::not_supported(field, m, &["Exact", "NotOlderThan", ""])),
            }
        }
        if send_initial.is_some() {
            causes.push(Cause::forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"));
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", causes)) }
}

fn list_query(q: &HashMap<String, String>, store: &Store) -> Result<ListQuery, ApiError> {
    let label_selector = match q.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(LabelSelector::parse(s).map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?),
        None => None,
    };
    let field_selector = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => {
            let f = FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            selectors::check_supported(&f, store.info.group, store.info.plural).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Some(f)
        }
        None => None,
    };
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("invalid limit: {s:?}")))?),
        None => None,
    };
    Ok(ListQuery {
        label_selector,
        field_selector,
        limit,
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    })
}

fn delete_options(body: &[u8], ct: &str, q: &HashMap<String, String>) -> Result<DeleteOptions, ApiError> {
    let v = if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { decode_body(body, ct)? };
    let dry_run = v["dryRun"].as_array().is_some_and(|a| a.iter().any(|x| x == "All")) || q.get("dryRun").is_some_and(|d| d == "All");
    let grace = v["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| q.get("gracePeriodSeconds").and_then(|s| s.parse().ok()));
    let propagation = v["propagationPolicy"].as_str().map(String::from).or_else(|| q.get("propagationPolicy").cloned());
    if let Some(p) = &propagation {
        if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
            return Err(ApiError::invalid("DeleteOptions", "", "", vec![crate::errors::Cause::not_supported(
                "propagationPolicy", p, &["Foreground", "Background", "Orphan", "nil"])]));
        }
    }
    let orphan = v["orphanDependents"].as_bool().or_else(|| q.get("orphanDependents").map(|s| s == "true"));
    if orphan.is_some() && propagation.is_some() {
        return Err(ApiError::invalid("DeleteOptions", "", "", vec![crate::errors::Cause::invalid(
            "propagationPolicy", propagation.as_deref().unwrap_or(""), "orphanDependents and deletionPropagation cannot be both set")]));
    }
    Ok(DeleteOptions {
        grace_period_seconds: grace,
        precondition_uid: v["preconditions"]["uid"].as_str().map(String::from),
        precondition_rv: v["preconditions"]["resourceVersion"].as_str().map(String::from),
        propagation_policy: propagation,
        orphan_dependents: orphan,
        dry_run,
    })
}

/// The autoscaling/v1 Scale view of a scalable object.
/// A Scale in the form the client asked for (JSON, Table or metadata only).
/// Group, version and kind of a resource's `scale` subresource body (autoscaling/v1 Scale).
fn scale_kind(info: &resources::ResourceInfo) -> (&'static str, &'static str, &'static str) {
    info.subresource("scale").map_or(("autoscaling", "v1", "Scale"), |s| (s.group, s.version, s.kind))
}

/// Group, version and kind of a subresource's request body (e.g. policy/v1 Eviction).
fn subresource_kind(info: &resources::ResourceInfo, sub: &str) -> (&'static str, &'static str, &'static str) {
    info.subresource(sub).map_or((info.group, info.version, info.kind), |s| (s.group, s.version, s.kind))
}

/// The media type of a request body, without parameters.
fn ctx_content_type(req: &Request<Incoming>) -> &str {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
}

fn render_scale(code: u16, scale: &Value, ctx: &Ctx<'_>) -> Response<Body> {
    let rendered = match ctx.format {
        Format::Table { .. } => table::scale_table(scale, include_object(&ctx.query)),
        Format::Metadata { list: false, version } => Ok(table::partial_object_metadata(scale, version)),
        Format::Metadata { list: true, .. } => Err(ApiError::NotAcceptable(
            "you requested PartialObjectMetadataList, but the requested object is not a list (*autoscaling.Scale)".into(),
        )),
        _ => return encode_as(code, scale, ctx.format),
    };
    match rendered {
        Ok(v) => meta_response(code, &v, ctx.format),
        Err(e) => error_response(&e),
    }
}

fn to_scale(obj: &Value) -> Value {
    let m = &obj["metadata"];
    let selector = match &obj["spec"]["selector"] {
        Value::Object(o) if o.contains_key("matchLabels") || o.contains_key("matchExpressions") => {
            serde_json::from_value(obj["spec"]["selector"].clone())
                .ok()
                .and_then(|s| LabelSelector::from_label_selector(&s).ok())
                .map(|s: LabelSelector| s.to_string())
                .unwrap_or_default()
        }
        Value::Object(o) => {
            let mut parts: Vec<String> = o.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
            parts.sort();
            parts.join(",")
        }
        _ => String::new(),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: Option<&str>) {
    let now = meta::now_rfc3339();
    let mut cond = json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        cond["reason"] = json!(r);
    }
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    let conds = obj["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    if let Some(arr) = conds.as_array_mut() {
        arr.retain(|c| c["type"] != ty);
        arr.push(cond);
    }
}

#[async_trait::async_trait]
impl Handler for App {
    async fn handle(&self, req: Request<Incoming>, user: Option<UserInfo>) -> Response<Body> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let is_watch = req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
            || req.uri().path().contains("/watch/");
        let _inflight = (!is_watch).then(|| crate::metrics::inflight(crate::metrics::RequestKind::for_method(&method)));
        let accept_encoding = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
        let compression = crate::compression::Policy::for_request(&method, &path, accept_encoding, is_watch);
        let mut labels = ReqLabels::default();
        let resp = self.route(req, user.clone(), &mut labels).await;
        let resp = crate::compression::apply(compression, resp).await;
        let code = resp.status().as_u16();
        if !labels.verb.is_empty() {
            let l = crate::metrics::RequestLabels {
                verb: &labels.verb,
                group: &labels.group,
                version: &labels.version,
                resource: &labels.resource,
                subresource: &labels.subresource,
                scope: &labels.scope,
                component: "apiserver",
            };
            crate::metrics::observe_request(&l, code, start.elapsed());
        }
        let encoding = resp.headers().get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
        debug!(%method, %path, code, user = user.as_ref().map(|u| u.name.as_str()).unwrap_or("-"), elapsed_us = start.elapsed().as_micros() as u64, encoding, "request");
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_resource_path("/api/v1/namespaces/default/pods/web/status").unwrap();
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(p.resource, "pods");
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.subresource.as_deref(), Some("status"));
        let p = parse_resource_path("/api/v1/namespaces/kube-system").unwrap();
        assert_eq!((p.resource.as_str(), p.name.as_deref(), p.namespace.as_deref()), ("namespaces", Some("kube-system"), None));
        let p = parse_resource_path("/api/v1/namespaces/x/finalize").unwrap();
        assert_eq!((p.resource.as_str(), p.name.as_deref(), p.subresource.as_deref()), ("namespaces", Some("x"), Some("finalize")));
        let p = parse_resource_path("/apis/apps/v1/deployments").unwrap();
        assert_eq!((p.group.as_str(), p.resource.as_str(), p.name.as_deref()), ("apps", "deployments", None));
        let p = parse_resource_path("/api/v1/watch/namespaces/default/configmaps").unwrap();
        assert!(p.watch);
        assert_eq!(p.resource, "configmaps");
        assert!(parse_resource_path("/api/v1").is_none());
        assert!(parse_resource_path("/api/v1/namespaces/a/pods/b/c/d").is_none());
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate("").unwrap(), Format::Json);
        assert_eq!(
            negotiate("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json").unwrap(),
            Format::Table { version: "v1" }
        );
        assert_eq!(negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io").unwrap(), Format::Table { version: "v1beta1" });
        assert_eq!(
            Format::Metadata { list: true, version: "v1" }.content_type(),
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
        );
        assert_eq!(negotiate("application/yaml").unwrap(), Format::Yaml);
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io, application/json").unwrap(),
            Format::Metadata { list: true, version: "v1" }
        );
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1").unwrap(),
            Format::Metadata { list: false, version: "v1beta1" }
        );
        assert_eq!(negotiate("application/json;as=Other;g=meta.k8s.io;v=v1, application/json").unwrap(), Format::Json);
        // A v1beta1 Table carries its rows' metadata in v1beta1 as well.
        let t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": [
            {"cells": [], "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}},
            {"cells": [], "object": {"kind": "Deployment", "apiVersion": "apps/v1"}},
            {"cells": [], "object": null},
        ]});
        let v = Format::Table { version: "v1beta1" }.versioned_table(t.clone());
        assert_eq!(v["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(v["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(v["rows"][1]["object"]["apiVersion"], "apps/v1");
        assert!(v["rows"][2]["object"].is_null());
        assert_eq!(Format::Table { version: "v1" }.versioned_table(t.clone())["rows"], t["rows"]);
        assert!(negotiate("application/vnd.kubernetes.protobuf").is_err());
    }

    const CM: crate::patch::Gvk<'static> = crate::patch::Gvk { group: "", version: "v1", kind: "ConfigMap" };

    #[test]
    fn patches() {
        let cur = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let merged = apply_patch(&cur, br#"{"metadata":{"labels":{"x":null,"y":"2"}}}"#, "application/merge-patch+json", CM).unwrap();
        assert_eq!(merged["metadata"]["labels"], json!({"y": "2"}));
        let j = apply_patch(&cur, br#"[{"op":"replace","path":"/data/k","value":"w"}]"#, "application/json-patch+json", CM).unwrap();
        assert_eq!(j["data"]["k"], "w");
        let e = apply_patch(&cur, br#"[{"op":"test","path":"/data/k","value":"nope"}]"#, "application/json-patch+json", CM).unwrap_err();
        assert_eq!(e.code(), 422);
        assert_eq!(apply_patch(&cur, b"{", "application/merge-patch+json", CM).unwrap_err().code(), 400);
        assert_eq!(apply_patch(&cur, b"{}", "text/plain", CM).unwrap_err().code(), 415);
        // Strategic: finalizers merge as a set where a merge patch would replace them.
        let cur = json!({"metadata": {"name": "a", "finalizers": ["x"]}});
        let s = apply_patch(&cur, br#"{"metadata":{"finalizers":["y"]}}"#, "application/strategic-merge-patch+json", CM).unwrap();
        assert_eq!(s["metadata"]["finalizers"], json!(["y", "x"]));
        let m = apply_patch(&cur, br#"{"metadata":{"finalizers":["y"]}}"#, "application/merge-patch+json", CM).unwrap();
        assert_eq!(m["metadata"]["finalizers"], json!(["y"]));
        assert_eq!(apply_patch(&cur, b"[]", "application/strategic-merge-patch+json", CM).unwrap_err().code(), 400);
    }

    #[test]
    fn scale_view() {
        let d = json!({"metadata": {"name": "d", "namespace": "n", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}}}, "status": {"replicas": 2}});
        let s = to_scale(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["selector"], "app=x");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
    }
}
