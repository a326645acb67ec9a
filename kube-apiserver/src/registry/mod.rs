//! The generic registry (upstream's `registry/generic/registry.Store`): create, get, list,
//! update, patch, delete and watch for every resource, over the [`Storage`] trait and the
//! resource's [`Cacher`]. Kind-specific behaviour comes from a [`strategy::Strategy`].

pub mod meta;
pub mod strategy;

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::cacher::{CacheError, Cacher, Subscription, set_resource_version};
use crate::errors::{ApiError, Cause};
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::{KeyValue, ListOptions, Revision, Storage, StorageError};
use crate::validation;
use strategy::Strategy;

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// `fieldValidation` of the request (`Ignore` for the server's own writes).
    pub field_validation: crate::fieldvalidation::Mode,
    /// Warnings for the client, sent back as `Warning` headers.
    pub warnings: Warnings,
    /// Who writes, for `metadata.managedFields`; `None` leaves them as they are.
    pub field_manager: Option<String>,
    /// The subresource a main-resource write comes through (`scale`), recorded with the manager.
    pub subresource: String,
}

/// Warnings gathered while serving one request (shared by the clones of its options).
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<std::sync::Mutex<Vec<String>>>);

impl Warnings {
    /// Add warnings, skipping ones already recorded.
    pub fn extend(&self, ws: impl IntoIterator<Item = String>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for w in ws {
            if !list.contains(&w) {
                list.push(w);
            }
        }
    }
    /// Replace the recorded warnings (a retried write recomputes them).
    pub fn set(&self, ws: Vec<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = ws;
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// `DeleteOptions`, from the body or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub dry_run: bool,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// `namespaces/finalize`: only `spec.finalizers`.
    Finalize,
    /// Internal writes that set spec and status together (e.g. `pods/binding`).
    Whole,
}

/// List and watch parameters (`ListOptions`).
#[derive(Debug, Default)]
pub struct ListQuery {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    pub limit: Option<i64>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// A list response (`<Kind>List`), serialized without copying the objects.
#[derive(Debug)]
pub struct ObjectList {
    pub kind: String,
    pub api_version: String,
    pub items: Vec<Arc<Value>>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

impl ObjectList {
    /// The list's `metadata`.
    pub fn metadata(&self) -> Value {
        let mut m = json!({"resourceVersion": self.resource_version.to_string()});
        if let Some(c) = &self.continue_token {
            m["continue"] = json!(c);
        }
        if let Some(r) = self.remaining {
            m["remainingItemCount"] = json!(r);
        }
        m
    }
}

impl serde::Serialize for ObjectList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Items<'a>(&'a [Arc<Value>]);
        impl serde::Serialize for Items<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|v| v.as_ref()))
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("apiVersion", &self.api_version)?;
        m.serialize_entry("metadata", &self.metadata())?;
        m.serialize_entry("items", &Items(&self.items))?;
        m.end()
    }
}

/// Where a client watch starts: objects to send as ADDED, then the subscription.
pub struct WatchStart {
    pub initial: Vec<Arc<Value>>,
    pub sub: Subscription,
}

pub struct Store {
    pub info: &'static ResourceInfo,
    pub strategy: Arc<dyn Strategy>,
    storage: Arc<dyn Storage>,
    /// Key prefix of this resource, ending in '/'.
    root: String,
    pub cacher: Arc<Cacher>,
    has_status: bool,
    /// events.k8s.io/v1 Events share storage with core/v1 Events and are converted on the way.
    /// How objects of this resource are stored when storage holds another version's form.
    stored_as: StoredAs,
}

/// Stored bytes to an object carrying its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, String> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| e.to_string())?;
    set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// Resources served from storage that holds another version's form, as upstream stores one
/// version of each resource and converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredAs {
    Itself,
    /// events.k8s.io/v1 Events, stored in core/v1 form.
    CoreEvent,
    /// autoscaling/v1 HorizontalPodAutoscalers, stored in autoscaling/v2 form.
    HpaV2,
}

impl StoredAs {
    fn of(info: &ResourceInfo) -> StoredAs {
        match (info.group, info.version, info.plural) {
            ("events.k8s.io", _, "events") => StoredAs::CoreEvent,
            ("autoscaling", "v1", "horizontalpodautoscalers") => StoredAs::HpaV2,
            _ => StoredAs::Itself,
        }
    }

    /// The served form of a stored object.
    fn served(self, v: Value) -> Value {
        match self {
            StoredAs::Itself => v,
            StoredAs::CoreEvent => crate::resources::convert_event(v, "events.k8s.io"),
            StoredAs::HpaV2 => crate::resources::convert_hpa(v, "v1"),
        }
    }

    /// The stored form of a served object (with the stored version's defaults).
    fn stored(self, v: &Value) -> Value {
        match self {
            StoredAs::Itself => v.clone(),
            StoredAs::CoreEvent => crate::resources::convert_event(v.clone(), ""),
            StoredAs::HpaV2 => {
                let mut v2 = crate::resources::convert_hpa(v.clone(), "v2");
                crate::defaults::apply("autoscaling", "HorizontalPodAutoscaler", &mut v2);
                v2
            }
        }
    }

    fn decoder(self) -> crate::cacher::Decoder {
        fn core_event(kv: &KeyValue) -> Result<Value, String> {
            decode(kv).map(|v| StoredAs::CoreEvent.served(v))
        }
        fn hpa_v1(kv: &KeyValue) -> Result<Value, String> {
            decode(kv).map(|v| StoredAs::HpaV2.served(v))
        }
        match self {
            StoredAs::Itself => decode,
            StoredAs::CoreEvent => core_event,
            StoredAs::HpaV2 => hpa_v1,
        }
    }
}

fn encode(obj: &Value) -> Vec<u8> {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&v).expect("JSON values serialize")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

fn parse_rv(s: &str) -> Result<Revision, ApiError> {
    s.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {s:?}")))
}

impl Store {
    pub fn new(
        info: &'static ResourceInfo,
        strategy: Arc<dyn Strategy>,
        storage: Arc<dyn Storage>,
        prefix: &str,
        watch_cache_size: usize,
    ) -> Self {
        let root = format!("{}/{}/", prefix.trim_end_matches('/'), crate::resources::storage_resource_path(info));
        let stored_as = StoredAs::of(info);
        let decoder = stored_as.decoder();
        let cacher = if info.is_virtual() {
            Cacher::idle(storage.clone(), root.clone(), watch_cache_size, decoder)
        } else {
            Cacher::start(storage.clone(), root.clone(), watch_cache_size, decoder)
        };
        let has_status = info.subresources.iter().any(|s| s.name == "status");
        Store { info, strategy, storage, root, cacher, has_status, stored_as }
    }

    fn decode_kv(&self, kv: &KeyValue) -> Result<Value, ApiError> {
        let v = decode(kv).map_err(ApiError::internal)?;
        Ok(self.stored_as.served(v))
    }

    fn encode(&self, obj: &Value) -> Vec<u8> {
        match self.stored_as {
            StoredAs::Itself => encode(obj),
            other => encode(&other.stored(obj)),
        }
    }

    /// The storage key of an object (with an empty name: the prefix of a namespace's objects).
    pub fn key(&self, ns: Option<&str>, name: &str) -> String {
        match ns {
            Some(ns) if self.info.namespaced => format!("{}{ns}/{name}", self.root),
            _ => format!("{}{name}", self.root),
        }
    }

    fn list_prefix(&self, ns: Option<&str>) -> String {
        match ns {
            Some(ns) if self.info.namespaced => format!("{}{ns}/", self.root),
            _ => self.root.clone(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.info.group.is_empty() {
            self.info.version.to_string()
        } else {
            format!("{}/{}", self.info.group, self.info.version)
        }
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(self.info.group, self.info.plural, name)
    }

    fn storage_err(&self, e: StorageError, name: &str) -> ApiError {
        ApiError::from_storage(e, self.info.group, self.info.plural, name)
    }

    fn invalid(&self, name: &str, causes: Vec<Cause>) -> ApiError {
        ApiError::invalid(self.info.kind, self.info.group, name, causes)
    }

    /// Check `kind`/`apiVersion` against this resource (filling them in when absent) and
    /// decode through the typed struct.
    pub fn decode_body(&self, mut obj: Value) -> Result<Value, ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::BadRequest("the body of the request was not a JSON object".into()));
        };
        let gv = self.api_version();
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v != gv => {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({v}) does not match the expected API version ({gv})"
                )));
            }
            _ => {}
        }
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if k != self.info.kind => {
                return Err(ApiError::BadRequest(format!(
                    "the object provided is unrecognized (must be of type {}): kind {k}",
                    self.info.kind
                )));
            }
            _ => {}
        }
        map.insert("apiVersion".into(), Value::String(gv));
        map.insert("kind".into(), Value::String(self.info.kind.into()));
        // Required selectors that k8s-openapi would turn from missing into `{}`.
        let selector_missing = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"].contains(&self.info.kind)
            && self.info.group == "apps"
            && obj["spec"].is_object()
            && obj["spec"]["selector"].is_null();
        let kind = self.info.kind;
        let version = self.info.version;
        let schema = crate::fieldvalidation::root_schema(self.info.group, version, kind);
        let type_error = schema.and_then(|s| crate::validation::decode::decode_error(kind, s, &obj));
        if let Some(e) = type_error {
            return Err(ApiError::cannot_decode(kind, version, e));
        }
        let mut v = (self.info.normalize)(obj)
            .map_err(|e| ApiError::cannot_decode(kind, version, e))?;
        if selector_missing {
            if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("selector");
            }
        }
        meta::meta_mut(&mut v);
        crate::defaults::apply(self.info.group, self.info.kind, &mut v);
        Ok(v)
    }

    fn set_namespace(&self, obj: &mut Value, ns: Option<&str>) -> Result<(), ApiError> {
        if !self.info.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or("default");
        let m = meta::meta_mut(obj);
        match m.get("namespace").and_then(Value::as_str) {
            Some(b) if !b.is_empty() && b != ns => Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            )),
            _ => {
                m.insert("namespace".into(), Value::String(ns.into()));
                Ok(())
            }
        }
    }

    fn validate_new(&self, obj: &Value) -> Result<(), ApiError> {
        let mut causes = validation::object_meta(obj, self.strategy.name_rule(), self.info.namespaced);
        causes.extend(self.strategy.validate(obj));
        if causes.is_empty() { Ok(()) } else { Err(self.invalid(meta::name(obj), causes)) }
    }

    // ---- create ----

    /// Create an object from a decoded body.
    pub async fn create(&self, ns: Option<&str>, obj: Value, opts: &WriteOptions) -> Result<Value, ApiError> {
        let mut obj = self.decode_body(obj)?;
        self.set_namespace(&mut obj, ns)?;
        self.create_decoded(obj, opts).await
    }

    async fn create_decoded(&self, mut obj: Value, opts: &WriteOptions) -> Result<Value, ApiError> {
        {
            let m = meta::meta_mut(&mut obj);
            for f in ["resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
                m.remove(f);
            }
            m.insert("uid".into(), Value::String(meta::new_uid()));
            m.insert("creationTimestamp".into(), Value::String(meta::now_rfc3339()));
        }
        if self.strategy.tracks_generation() {
            meta::meta_mut(&mut obj).insert("generation".into(), json!(1));
        }
        if self.has_status && !self.strategy.keeps_status_on_create() {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        // Names are generated before the strategy runs, so it can use them (Job labels).
        let generate = meta::name(&obj).is_empty() && !meta::generate_name_prefix(&obj).is_empty();
        let prefix = meta::generate_name_prefix(&obj).to_string();
        if generate {
            meta::meta_mut(&mut obj).insert("name".into(), Value::String(meta::generate_name(&prefix)));
        }
        // Ownership covers the decoded, defaulted object, not what admission or the strategy
        // add (as upstream's create handler records it before the registry runs).
        meta::prune_meta(&mut obj);
        crate::fieldmanager::track_write(self.info, Part::Main, None, &mut obj, opts);
        self.strategy.admit(&mut obj).await?;
        self.strategy.prepare_for_create(&mut obj);
        // Upstream defaults what it reads back from storage too, which covers what
        // `prepare_for_create` added (e.g. a Job's labels from its generated template labels).
        crate::defaults::apply(self.info.group, self.info.kind, &mut obj);
        meta::prune_meta(&mut obj);
        self.validate_new(&obj)?;
        self.strategy.before_create(&mut obj, opts.dry_run).await?;
        for attempt in 0..8 {
            if generate && attempt > 0 {
                // What `before_create` took names the old name (a Service's IPAddress): give it
                // back and take it again under the new one.
                self.strategy.rollback_create(&obj).await;
                meta::meta_mut(&mut obj).insert("name".into(), Value::String(meta::generate_name(&prefix)));
                self.strategy.prepare_for_create(&mut obj);
                crate::defaults::apply(self.info.group, self.info.kind, &mut obj);
                self.strategy.before_create(&mut obj, opts.dry_run).await?;
            }
            let name = meta::name(&obj).to_string();
            let key = self.key(Some(meta::namespace(&obj)), &name);
            if opts.dry_run {
                // A dry run still reports a name that is taken.
                match self.storage.get(&key).await {
                    Ok(None) => return Ok(obj),
                    Ok(Some(_)) if generate => continue,
                    Ok(Some(_)) => return Err(ApiError::already_exists(self.info.group, self.info.plural, &name)),
                    Err(e) => return Err(self.storage_err(e, &name)),
                }
            }
            match self.storage.create(&key, self.encode(&obj)).await {
                Ok(rev) => {
                    set_resource_version(&mut obj, rev);
                    return Ok(obj);
                }
                Err(StorageError::AlreadyExists(_)) if generate => continue,
                Err(e) => {
                    self.strategy.rollback_create(&obj).await;
                    return Err(self.storage_err(e, &name));
                }
            }
        }
        self.strategy.rollback_create(&obj).await;
        Err(ApiError::already_exists(self.info.group, self.info.plural, meta::name(&obj)))
    }

    // ---- read ----

    pub async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let key = self.key(ns, name);
        match self.storage.get(&key).await {
            Ok(Some(kv)) => self.decode_kv(&kv),
            Ok(None) => Err(self.not_found(name)),
            Err(e) => Err(self.storage_err(e, name)),
        }
    }

    /// A GET with `resourceVersion=0` may be served from the cache.
    pub async fn get_cached(&self, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        match self.cacher.get(&self.key(ns, name)) {
            Some(v) => Ok((*v).clone()),
            None => self.get(ns, name).await,
        }
    }

    fn matches(&self, q: &ListQuery, obj: &Value) -> bool {
        if let Some(l) = &q.label_selector {
            if !l.matches_value(obj) {
                return false;
            }
        }
        if let Some(f) = &q.field_selector {
            if !f.matches(&crate::selectors::field_set(self.info.group, self.info.plural, obj)) {
                return false;
            }
        }
        true
    }

    fn list_object(&self, items: Vec<Arc<Value>>, rv: Revision, cont: Option<String>, remaining: Option<i64>) -> ObjectList {
        ObjectList {
            kind: format!("{}List", self.info.kind),
            api_version: self.api_version(),
            items,
            resource_version: rv,
            continue_token: cont,
            remaining,
        }
    }

    /// LIST with upstream's resourceVersion, resourceVersionMatch, limit and continue semantics.
    pub async fn list(&self, ns: Option<&str>, q: &ListQuery) -> Result<ObjectList, ApiError> {
        let prefix = self.list_prefix(ns);
        let rv = q.resource_version.as_deref().filter(|s| !s.is_empty());
        let rv_match = q.resource_version_match.as_deref().filter(|s| !s.is_empty());
        let limit = q.limit.filter(|l| *l > 0);
        if let Some(token) = q.continue_token.as_deref().filter(|s| !s.is_empty()) {
            if rv.is_some() {
                return Err(ApiError::BadRequest("specifying resource version is not allowed when using continue".into()));
            }
            let t = decode_continue(token)?;
            return self.list_from_storage(&prefix, q, Some(t.rv), Some(format!("{prefix}{}", t.start)), limit).await;
        }
        match (rv, rv_match) {
            (None, _) => self.list_from_storage(&prefix, q, None, None, limit).await,
            (Some(r), Some("Exact")) => {
                let r = parse_rv(r)?;
                self.list_from_storage(&prefix, q, Some(r), None, limit).await
            }
            (Some(r), None) if limit.is_some() && r != "0" => {
                let r = parse_rv(r)?;
                self.list_from_storage(&prefix, q, Some(r), None, limit).await
            }
            (Some(r), _) => {
                let r = parse_rv(r)?;
                if self.cacher.wait_ready(std::time::Duration::from_secs(3)).await.is_ok() && self.cacher.revision() >= r {
                    let (objs, cache_rv) = self.cacher.snapshot(&prefix);
                    let items = objs.into_iter().filter(|o| self.matches(q, o)).collect();
                    Ok(self.list_object(items, cache_rv, None, None))
                } else {
                    // The cache only moves with this resource's writes; a consistent read is
                    // not older than `r` once storage has reached it.
                    self.wait_for_revision(r).await?;
                    self.list_from_storage(&prefix, q, None, None, limit).await
                }
            }
        }
    }

    /// Wait (up to 3 s, as upstream's watch cache does) until storage has reached `rv`;
    /// a resourceVersion from the future is a 504 `ResourceVersionTooLarge` after that.
    pub async fn wait_for_revision(&self, rv: Revision) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let current = self.storage.current_revision().await.map_err(|e| self.storage_err(e, ""))?;
            if current >= rv {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::ResourceVersionTooLarge { requested: rv, current });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn list_from_storage(
        &self,
        prefix: &str,
        q: &ListQuery,
        revision: Option<Revision>,
        start: Option<String>,
        limit: Option<i64>,
    ) -> Result<ObjectList, ApiError> {
        let filtered = q.label_selector.as_ref().is_some_and(|l| !l.is_empty())
            || q.field_selector.as_ref().is_some_and(|f| !f.is_empty());
        let mut items = Vec::new();
        let mut start_key = start;
        let mut revision = revision;
        loop {
            let want = limit.map(|l| (l - items.len() as i64).max(1));
            let page = self
                .storage
                .list(prefix, ListOptions { revision, limit: want, start_key: start_key.clone() })
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { .. } if start_key.is_none() => {
                        ApiError::Gone("The resourceVersion for the provided list is too old.".into())
                    }
                    StorageError::Compacted { .. } => ApiError::Gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
                    ),
                    e => self.storage_err(e, ""),
                })?;
            revision = Some(page.revision);
            let last_key = page.items.last().map(|kv| kv.key.clone());
            for kv in &page.items {
                let obj = self.decode_kv(kv)?;
                if self.matches(q, &obj) {
                    items.push(Arc::new(obj));
                }
            }
            let full = limit.is_some_and(|l| items.len() as i64 >= l);
            if !page.more {
                return Ok(self.list_object(items, page.revision, None, None));
            }
            let last = last_key.expect("more implies items");
            if full || limit.is_none() {
                let token = encode_continue(page.revision, &format!("{}\u{0}", &last[prefix.len()..]));
                let remaining = (!filtered).then_some(page.remaining);
                return Ok(self.list_object(items, page.revision, Some(token), remaining));
            }
            start_key = Some(format!("{last}\u{0}"));
        }
    }

    // ---- update / patch ----

    /// PUT: replace the object (or its status) with `body`.
    pub async fn update(
        &self,
        ns: Option<&str>,
        name: &str,
        part: Part,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let mut body = self.decode_body(body)?;
        let body_name = meta::name(&body);
        if body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        self.set_namespace(&mut body, ns)?;
        let precondition = match meta::resource_version(&body) {
            "" => None,
            rv => Some(parse_rv(rv)?),
        };
        let key = self.key(ns, name);
        if part == Part::Main && self.strategy.allow_create_on_update() {
            if let Ok(None) = self.storage.get(&key).await {
                return Ok((self.create_decoded(body, opts).await?, true));
            }
        }
        let updated = self.guaranteed_update(ns, name, part, precondition, opts, |_| Ok(body.clone())).await?;
        Ok((updated, false))
    }

    /// Read-modify-write with retries on conflicts. `mutate` maps the current object (with its
    /// resourceVersion) to the desired one. With `precondition`, a revision mismatch is a 409.
    pub async fn guaranteed_update(
        &self,
        ns: Option<&str>,
        name: &str,
        part: Part,
        precondition: Option<Revision>,
        opts: &WriteOptions,
        mut mutate: impl FnMut(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let key = self.key(ns, name);
        for _ in 0..32 {
            let kv = match self.storage.get(&key).await {
                Ok(Some(kv)) => kv,
                Ok(None) => return Err(self.not_found(name)),
                Err(e) => return Err(self.storage_err(e, name)),
            };
            if precondition.is_some_and(|p| p != kv.mod_revision) {
                return Err(ApiError::conflict(self.info.group, self.info.plural, name));
            }
            let mut old = self.decode_kv(&kv)?;
            // As upstream, what is read back is defaulted (objects stored by older versions).
            crate::defaults::apply(self.info.group, self.info.kind, &mut old);
            let desired = mutate(&old)?;
            let mut new = self.decode_body(desired)?;
            self.set_namespace(&mut new, ns)?;
            self.prepare_update(&mut new, &old, part)?;
            crate::fieldmanager::track_write(self.info, part, Some(&old), &mut new, opts);
            self.strategy.before_update(&mut new, &old, opts.dry_run).await?;
            if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && !self.keeps_while_finalizing(&new) {
                // The last finalizer is gone: the object goes away now.
                if opts.dry_run {
                    return Ok(new);
                }
                let deleted = self.storage.delete(&key, Some(kv.mod_revision)).await;
                self.strategy.rollback_update(&new, &old).await;
                match deleted {
                    Ok((rev, _)) => {
                        self.strategy.after_delete(&old).await;
                        set_resource_version(&mut new, rev);
                        return Ok(new);
                    }
                    Err(StorageError::Conflict { .. }) if precondition.is_none() => continue,
                    Err(e) => return Err(self.storage_err(e, name)),
                }
            }
            let mut old_cmp = old.clone();
            set_resource_version(&mut new, kv.mod_revision);
            set_resource_version(&mut old_cmp, kv.mod_revision);
            if new == old_cmp || opts.dry_run {
                return Ok(new);
            }
            let written = self.storage.update(&key, self.encode(&new), kv.mod_revision).await;
            if written.is_err() {
                // What `before_update` took for this attempt is given back; a retry takes again.
                self.strategy.rollback_update(&new, &old).await;
            }
            match written {
                Ok(rev) => {
                    self.strategy.after_update(&new, &old).await;
                    set_resource_version(&mut new, rev);
                    return Ok(new);
                }
                Err(StorageError::Conflict { .. }) if precondition.is_none() => continue,
                Err(StorageError::Conflict { .. }) => {
                    return Err(ApiError::conflict(self.info.group, self.info.plural, name));
                }
                Err(e) => return Err(self.storage_err(e, name)),
            }
        }
        Err(ApiError::conflict(self.info.group, self.info.plural, name))
    }

    /// Namespaces stay while `spec.finalizers` is non-empty, even with no metadata finalizers.
    fn keeps_while_finalizing(&self, obj: &Value) -> bool {
        self.info.group.is_empty()
            && self.info.plural == "namespaces"
            && obj["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
    }

    /// Carry over what a write may not change, split spec from status, bump generation, validate.
    fn prepare_update(&self, new: &mut Value, old: &Value, part: Part) -> Result<(), ApiError> {
        match part {
            Part::Status => {
                let status = new.get("status").cloned();
                // Server-side apply of status brings its own managedFields.
                let managed = new["metadata"].get("managedFields").cloned();
                *new = old.clone();
                if let Some(m) = managed {
                    meta::meta_mut(new).insert("managedFields".into(), m);
                }
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        new.as_object_mut().map(|o| o.remove("status"));
                    }
                }
            }
            Part::Finalize => {
                let fins = new["spec"]["finalizers"].clone();
                *new = old.clone();
                new["spec"]["finalizers"] = if fins.is_null() { json!([]) } else { fins };
            }
            Part::Main | Part::Whole => {
                if self.has_status && part == Part::Main {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            new.as_object_mut().map(|o| o.remove("status"));
                        }
                    }
                }
                let keep = ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"];
                let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
                let m = meta::meta_mut(new);
                for f in keep {
                    match old_meta.get(f) {
                        Some(v) => m.insert(f.into(), v.clone()),
                        None => m.remove(f),
                    };
                }
                if meta::is_deleting(old) {
                    // Finalizers may only be removed once deletion started.
                    let old_f = meta::finalizers(old);
                    let added: Vec<String> =
                        meta::finalizers(new).into_iter().filter(|f| !old_f.contains(f)).collect();
                    if !added.is_empty() {
                        return Err(self.invalid(
                            meta::name(old),
                            vec![Cause::forbidden(
                                "metadata.finalizers",
                                &format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                            )],
                        ));
                    }
                }
                if self.strategy.tracks_generation() && meta::spec_part(new) != meta::spec_part(old) {
                    let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                    meta::meta_mut(new).insert("generation".into(), json!(g));
                }
            }
        }
        meta::prune_meta(new);
        let mut causes = validation::object_meta(new, self.strategy.name_rule(), self.info.namespaced);
        // Status, finalize and internal whole-object writes (bindings) are not spec updates.
        if part == Part::Main {
            causes.extend(self.strategy.validate_update(new, old));
        }
        if causes.is_empty() { Ok(()) } else { Err(self.invalid(meta::name(new), causes)) }
    }

    // ---- delete ----

    /// DELETE. Returns the object and whether it is gone from storage now (false when it is
    /// only marked for deletion: finalizers, graceful pods, terminating namespaces).
    pub async fn delete(&self, ns: Option<&str>, name: &str, opts: &DeleteOptions) -> Result<(Value, bool), ApiError> {
        let key = self.key(ns, name);
        for _ in 0..32 {
            let kv = match self.storage.get(&key).await {
                Ok(Some(kv)) => kv,
                Ok(None) => return Err(self.not_found(name)),
                Err(e) => return Err(self.storage_err(e, name)),
            };
            let old = self.decode_kv(&kv)?;
            if let Some(uid) = &opts.precondition_uid {
                if uid != meta::uid(&old) {
                    return Err(ApiError::Conflict {
                        target: crate::errors::Target::new(self.info.group, self.info.plural, name),
                        message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::uid(&old)),
                    });
                }
            }
            if let Some(rv) = &opts.precondition_rv {
                if rv != meta::resource_version(&old) {
                    return Err(ApiError::Conflict {
                        target: crate::errors::Target::new(self.info.group, self.info.plural, name),
                        message: format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta::resource_version(&old)
                        ),
                    });
                }
            }
            let mut obj = old.clone();
            let mut fins = meta::finalizers(&obj);
            let orphan = opts.orphan_dependents == Some(true) || opts.propagation_policy.as_deref() == Some("Orphan");
            let foreground = opts.propagation_policy.as_deref() == Some("Foreground");
            if orphan && !fins.iter().any(|f| f == "orphan") {
                fins.push("orphan".into());
            }
            if foreground && !orphan && !fins.iter().any(|f| f == "foregroundDeletion") {
                fins.push("foregroundDeletion".into());
            }
            if !fins.is_empty() {
                meta::meta_mut(&mut obj).insert("finalizers".into(), json!(fins));
            }
            let marked = self.strategy.mark_for_deletion(&mut obj);
            let grace = self.strategy.graceful_period(&obj, opts.grace_period_seconds);
            let was_deleting = meta::is_deleting(&old);
            if !fins.is_empty() || marked || grace.is_some() {
                if !was_deleting || grace.is_some_and(|g| g < old["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(i64::MAX)) {
                    let g = grace.unwrap_or(0);
                    let m = meta::meta_mut(&mut obj);
                    m.insert("deletionTimestamp".into(), json!(meta::rfc3339_after(g)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(g));
                    if self.strategy.tracks_generation() {
                        let next_gen = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                        meta::meta_mut(&mut obj).insert("generation".into(), json!(next_gen));
                    }
                }
                if obj == old || opts.dry_run {
                    return Ok((obj, false));
                }
                match self.storage.update(&key, self.encode(&obj), kv.mod_revision).await {
                    Ok(rev) => {
                        set_resource_version(&mut obj, rev);
                        return Ok((obj, false));
                    }
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(self.storage_err(e, name)),
                }
            }
            if opts.dry_run {
                return Ok((old, true));
            }
            match self.storage.delete(&key, Some(kv.mod_revision)).await {
                Ok(_) => {
                    self.strategy.after_delete(&old).await;
                    return Ok((old, true));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(StorageError::NotFound(_)) => return Err(self.not_found(name)),
                Err(e) => return Err(self.storage_err(e, name)),
            }
        }
        Err(ApiError::conflict(self.info.group, self.info.plural, name))
    }

    /// DELETE on a collection: delete every matching object; returns them as a list.
    pub async fn delete_collection(&self, ns: Option<&str>, q: &ListQuery, opts: &DeleteOptions) -> Result<ObjectList, ApiError> {
        let list = self.list(ns, &ListQuery { label_selector: q.label_selector.clone(), field_selector: q.field_selector.clone(), ..Default::default() }).await?;
        let mut deleted = Vec::new();
        for item in &list.items {
            let ns = item["metadata"]["namespace"].as_str().map(String::from);
            match self.delete(ns.as_deref(), meta::name(item), opts).await {
                Ok((obj, _)) => deleted.push(Arc::new(obj)),
                Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.list_object(deleted, list.resource_version, None, None))
    }

    // ---- watch ----

    /// Where a watch with these parameters starts. `send_initial` is `sendInitialEvents`.
    pub async fn watch_start(&self, ns: Option<&str>, q: &ListQuery, send_initial: Option<bool>) -> Result<WatchStart, ApiError> {
        self.cacher
            .wait_ready(std::time::Duration::from_secs(10))
            .await
            .map_err(|_| ApiError::ServiceUnavailable("watch cache is not ready".into()))?;
        let prefix = self.list_prefix(ns);
        let rv = q.resource_version.as_deref().filter(|s| !s.is_empty());
        let too_old = |e: CacheError| match e {
            CacheError::TooOld { requested, oldest } => {
                ApiError::Gone(format!("too old resource version: {requested} ({oldest})"))
            }
            CacheError::NotReady => ApiError::ServiceUnavailable("watch cache is not ready".into()),
        };
        let filter = |objs: Vec<Arc<Value>>| -> Vec<Arc<Value>> { objs.into_iter().filter(|o| self.matches(q, o)).collect() };
        match (rv, send_initial) {
            (Some("0"), Some(false)) => {
                // "Start at any": no synthetic events, from whatever the cache holds now.
                let sub = self.cacher.subscribe(self.cacher.revision()).map_err(too_old)?;
                Ok(WatchStart { initial: Vec::new(), sub })
            }
            (Some("0"), _) | (Some(_), Some(true)) => {
                let (initial, sub) = self.cacher.snapshot_and_subscribe(&prefix).map_err(too_old)?;
                Ok(WatchStart { initial: filter(initial), sub })
            }
            (None, Some(false)) => {
                let current = self.storage.current_revision().await.map_err(|e| self.storage_err(e, ""))?;
                let sub = self.cacher.subscribe(current).map_err(too_old)?;
                Ok(WatchStart { initial: Vec::new(), sub })
            }
            (None, _) => {
                // Consistent start: the state at the latest revision, then what follows it.
                let list = self.storage.list(&prefix, ListOptions::default()).await.map_err(|e| self.storage_err(e, ""))?;
                let sub = self.cacher.subscribe(list.revision).map_err(too_old)?;
                let mut initial = Vec::new();
                for kv in &list.items {
                    initial.push(Arc::new(self.decode_kv(kv)?));
                }
                Ok(WatchStart { initial: filter(initial), sub })
            }
            (Some(r), _) => {
                let r = parse_rv(r)?;
                let sub = self.cacher.subscribe(r).map_err(too_old)?;
                Ok(WatchStart { initial: Vec::new(), sub })
            }
        }
    }

    /// Whether an object belongs to the watched namespace and matches the selectors.
    pub fn watch_matches(&self, ns: Option<&str>, q: &ListQuery, obj: &Value) -> bool {
        if let (Some(ns), true) = (ns, self.info.namespaced) {
            if meta::namespace(obj) != ns {
                return false;
            }
        }
        self.matches(q, obj)
    }

    /// Every stored object of this resource (for start-up bookkeeping).
    pub async fn list_all(&self) -> Result<Vec<Value>, ApiError> {
        let list = self.storage.list(&self.root, ListOptions::default()).await.map_err(|e| self.storage_err(e, ""))?;
        list.items.iter().map(|kv| self.decode_kv(kv)).collect()
    }
}

fn encode_continue(rv: Revision, start: &str) -> String {
    let t = ContinueToken { v: "meta.k8s.io/v1".into(), rv, start: start.into() };
    base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&t).expect("token serializes"))
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let bad = || ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into());
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" || t.rv <= 0 || t.start.contains("..") || t.start.starts_with('/') {
        return Err(bad());
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ListResult, WatchStream};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A store on which the first create finds its key taken, as a generated name may be.
    struct TakenOnce {
        inner: Arc<dyn Storage>,
        taken: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Storage for TakenOnce {
        async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError> {
            if key.contains("/services/") && !self.taken.swap(true, Ordering::SeqCst) {
                return Err(StorageError::AlreadyExists(key.to_string()));
            }
            self.inner.create(key, value).await
        }
        async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
            self.inner.list(prefix, opts).await
        }
        async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StorageError> {
            self.inner.update(key, value, expected).await
        }
        async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue), StorageError> {
            self.inner.delete(key, expected).await
        }
        async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
            self.inner.watch(prefix, after).await
        }
        async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
            self.inner.compact(revision).await
        }
        async fn current_revision(&self) -> Result<Revision, StorageError> {
            self.inner.current_revision().await
        }
        async fn compacted_revision(&self) -> Result<Revision, StorageError> {
            self.inner.compacted_revision().await
        }
        async fn health(&self) -> Result<(), StorageError> {
            self.inner.health().await
        }
    }

    #[tokio::test]
    async fn a_regenerated_name_takes_its_allocations_under_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let embedded: Arc<dyn Storage> = Arc::new(crate::storage::embedded::EmbeddedStorage::open(dir.path()).unwrap());
        let storage: Arc<dyn Storage> = Arc::new(TakenOnce { inner: embedded, taken: AtomicBool::new(false) });
        let allocator = Arc::new(crate::allocator::ServiceAllocator::new("10.0.0.0/24", "30000-32767", storage.clone(), "/registry").unwrap());
        let ips_info = crate::resources::find("networking.k8s.io", "v1", "ipaddresses").unwrap();
        let ips = Arc::new(Store::new(ips_info, Arc::new(strategy::Generic::default()), storage.clone(), "/registry", 100));
        allocator.attach_ip_store(ips.clone());
        let lookup = crate::admission::Lookup::new(storage.clone(), "/registry");
        let info = crate::resources::find("", "v1", "services").unwrap();
        let services = Store::new(info, strategy::for_resource("", "services", &allocator, &lookup), storage, "/registry", 100);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": "web-"},
                         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        let created = services.create(Some("default"), svc, &WriteOptions::default()).await.unwrap();
        let name = meta::name(&created);
        let ip = created["spec"]["clusterIP"].as_str().unwrap();
        let held = ips.list_all().await.unwrap();
        assert_eq!(held.len(), 1, "the first name's address was given back: {held:?}");
        assert_eq!(meta::name(&held[0]), ip);
        assert_eq!(held[0]["spec"]["parentRef"]["name"], name);
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "default/b\u{0}");
        let d = decode_continue(&t).unwrap();
        assert_eq!(d.rv, 42);
        assert_eq!(d.start, "default/b\u{0}");
        assert!(decode_continue("not-base64!!").is_err());
        let evil = base64::engine::general_purpose::URL_SAFE.encode(br#"{"v":"meta.k8s.io/v1","rv":1,"start":"../x"}"#);
        assert!(decode_continue(&evil).is_err());
    }
}
