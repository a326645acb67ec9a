//! `metadata.managedFields`: who owns which fields, and how a write changes that.
//!
//! Every write records the fields it changed for its manager (operation `Update`, per API
//! version and subresource); an apply records the fields of its configuration (operation
//! `Apply`), merges the configuration into the live object, removes the fields the manager
//! applied before and no longer does (unless someone else owns them), and fails with conflicts
//! when it would change a field another manager owns, unless forced.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::fieldpath::{FieldSet, Path, PathElement, path_string};
use super::schema::Schema;
use super::typed::{self, Comparison};

/// At most this many `Update` entries are kept; older ones are folded into one per API version.
pub const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";
/// The annotation client-side apply keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// What identifies a managedFields entry: appliers are one entry whatever API version they
/// applied with; updaters are one entry per API version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Empty for appliers.
    pub api_version: String,
    pub subresource: String,
}

impl ManagerId {
    pub fn update(manager: &str, api_version: &str, subresource: &str) -> ManagerId {
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        ManagerId {
            manager: manager.into(),
            operation: Operation::Update,
            api_version: api_version.into(),
            subresource: subresource.into(),
        }
    }

    pub fn apply(manager: &str, subresource: &str) -> ManagerId {
        ManagerId {
            manager: manager.into(),
            operation: Operation::Apply,
            api_version: String::new(),
            subresource: subresource.into(),
        }
    }

    /// How conflicts name a manager: `"kubectl" with subresource "status"`, `"x" using v1`.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// One manager's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub set: FieldSet,
    pub api_version: String,
    pub time: Option<String>,
}

/// Decoded `managedFields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed(pub BTreeMap<ManagerId, Entry>);

impl Managed {
    /// Decode a `managedFields` list (absent: empty).
    pub fn decode(list: Option<&Value>) -> Result<Managed, String> {
        let mut out = Managed::default();
        let Some(list) = list.filter(|v| !v.is_null()) else {
            return Ok(out);
        };
        let entries = list.as_array().ok_or("managedFields must be a list")?;
        for (i, e) in entries.iter().enumerate() {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
            let operation = match s("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            if s("apiVersion").is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match s("fieldsType") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {other:?} in managed fields entry {i}"
                    ));
                }
            }
            let set = match e.get("fieldsV1") {
                Some(v) => FieldSet::from_fields_v1(v)?,
                None => FieldSet::new(),
            };
            let id = ManagerId {
                manager: s("manager").into(),
                operation,
                api_version: if operation == Operation::Update {
                    s("apiVersion").into()
                } else {
                    String::new()
                },
                subresource: s("subresource").into(),
            };
            let time = e.get("time").and_then(Value::as_str).map(String::from);
            out.0.insert(
                id,
                Entry {
                    set,
                    api_version: s("apiVersion").into(),
                    time,
                },
            );
        }
        Ok(out)
    }

    /// The `managedFields` list, in upstream's order (appliers first, then by time, manager,
    /// API version and subresource).
    pub fn encode(&self) -> Value {
        let mut entries: Vec<(&ManagerId, &Entry)> = self.0.iter().collect();
        entries.sort_by(|(a, ea), (b, eb)| {
            a.operation
                .cmp(&b.operation)
                .then_with(|| {
                    ea.time
                        .as_deref()
                        .unwrap_or("")
                        .cmp(eb.time.as_deref().unwrap_or(""))
                })
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| ea.api_version.cmp(&eb.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        let list = entries
            .into_iter()
            .map(|(id, e)| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(id.manager));
                m.insert("operation".into(), json!(id.operation.as_str()));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.set.to_fields_v1());
                if !id.subresource.is_empty() {
                    m.insert("subresource".into(), json!(id.subresource));
                }
                Value::Object(m)
            })
            .collect();
        Value::Array(list)
    }

    fn drop_empty(&mut self) {
        self.0.retain(|_, e| !e.set.is_empty());
    }

    /// Fold the oldest `Update` entries into `ancient-changes` entries (one per API version)
    /// until at most `max` remain.
    fn cap_updaters(&mut self, max: usize) {
        let mut updaters: Vec<(Option<String>, ManagerId)> = self
            .0
            .iter()
            .filter(|(id, _)| id.operation == Operation::Update)
            .map(|(id, e)| (e.time.clone(), id.clone()))
            .collect();
        if updaters.len() <= max {
            return;
        }
        updaters.sort();
        let mut count = updaters.len();
        let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
        for (time, id) in updaters {
            if count <= max {
                break;
            }
            let Some(entry) = self.0.get(&id).cloned() else {
                continue;
            };
            let version = entry.api_version.clone();
            let bucket = ManagerId::update(ANCIENT_CHANGES, &version, "");
            match first_of_version.get(&version) {
                Some(first) => {
                    if !self.0.contains_key(&bucket)
                        && let Some(e) = self.0.remove(first)
                    {
                        self.0.insert(bucket.clone(), e);
                    }
                    self.0.remove(&id);
                    if let Some(b) = self.0.get_mut(&bucket) {
                        b.set.extend(&entry.set);
                        b.time = time;
                    }
                    count -= 1;
                }
                None => {
                    first_of_version.insert(version, id);
                }
            }
        }
    }
}

/// Which top-level part a write does not track (upstream's reset fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    Nothing,
    /// The main resource of a kind with a status subresource: status is not tracked.
    Status,
    /// The status subresource: only status is tracked.
    AllButStatus,
}

impl Reset {
    fn ignores(self, path: &Path) -> bool {
        let under_status = matches!(path.first(), Some(PathElement::Field(f)) if f == "status");
        match self {
            Reset::Nothing => false,
            Reset::Status => under_status,
            Reset::AllButStatus => !under_status,
        }
    }
}

/// The resource a write is about.
#[derive(Clone)]
pub struct Resource<'a> {
    pub schema: Schema<'a>,
    /// The definition name of the kind's schema, without `io.k8s.`.
    pub definition: Option<String>,
    /// `v1`, `apps/v1`.
    pub api_version: &'a str,
    pub reset: Reset,
}

/// Fields that are never owned.
fn strip(set: &mut FieldSet) {
    const META: &[&str] = &[
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ];
    set.retain(|p| {
        let f = |i: usize| match p.get(i) {
            Some(PathElement::Field(f)) => Some(f.as_str()),
            _ => None,
        };
        !match p.len() {
            1 => matches!(f(0), Some("apiVersion" | "kind" | "metadata")),
            2 => f(0) == Some("metadata") && f(1).is_some_and(|x| META.contains(&x)),
            _ => false,
        }
    })
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let Some(o) = obj.as_object_mut() else { return };
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    let Some(m) = meta.as_object_mut() else {
        return;
    };
    if managed.0.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), managed.encode());
    }
}

/// Optional struct fields that upstream's Go types hold by value (not by pointer), so a zero
/// object already has them: `(schema, field)`, schemas named without `io.k8s.`.
const BY_VALUE: &[(&str, &str)] = &[
    ("api.apps.v1.DaemonSetSpec", "updateStrategy"),
    ("api.apps.v1.DeploymentSpec", "strategy"),
    ("api.apps.v1.ReplicaSetSpec", "template"),
    ("api.apps.v1.StatefulSetSpec", "updateStrategy"),
    ("api.batch.v1.JobTemplateSpec", "metadata"),
    ("api.batch.v1.JobTemplateSpec", "spec"),
    ("api.core.v1.Event", "source"),
    ("api.core.v1.PersistentVolumeClaimSpec", "resources"),
    ("api.core.v1.PodTemplate", "template"),
    ("api.core.v1.PodTemplateSpec", "metadata"),
    ("api.core.v1.PodTemplateSpec", "spec"),
];

/// What an object looked like before it existed, for comparing a create against: what
/// upstream's zero-valued typed object holds — `metadata`, `spec` and `status`, the structs
/// held by value below them, and `null` for required (non-omitempty) fields.
fn empty_object(res: &Resource<'_>) -> Value {
    let schema = res.schema;
    fn zero(s: Schema<'_>, name: Option<&str>, depth: usize) -> Value {
        let mut out = Map::new();
        if depth > 8 {
            return Value::Object(out);
        }
        for field in s.required() {
            if let Some(fs) = s.field(field) {
                let v = if fs.is_struct() {
                    zero(fs, fs.ref_name(), depth + 1)
                } else {
                    Value::Null
                };
                out.insert(field.into(), v);
            }
        }
        for &(schema, field) in BY_VALUE {
            if Some(schema) == name
                && let Some(fs) = s.field(field).filter(Schema::is_struct)
            {
                out.insert(field.into(), zero(fs, fs.ref_name(), depth + 1));
            }
        }
        Value::Object(out)
    }
    let Value::Object(mut out) = zero(schema, res.definition.as_deref(), 0) else {
        return json!({});
    };
    for top in ["metadata", "spec", "status"] {
        if let Some(fs) = schema.field(top).filter(Schema::is_struct) {
            out.entry(top).or_insert_with(|| zero(fs, fs.ref_name(), 1));
        }
    }
    Value::Object(out)
}

/// The set of changed fields, minus what the write does not track.
fn diff(res: &Resource<'_>, live: &Value, new: &Value) -> Comparison {
    let mut c = typed::compare(res.schema, live, new);
    c.exclude(|p| res.reset.ignores(p));
    c
}

/// `managedFields: [{}]` asks to drop all ownership.
fn is_reset(list: Option<&Value>) -> bool {
    matches!(list.and_then(Value::as_array).map(Vec::as_slice), Some([Value::Object(e)]) if e.is_empty())
}

/// Record a non-apply write of `new` over `live` (`None` on create) by `manager` in `new`'s
/// managedFields. Never fails: managedFields that cannot be read are replaced.
pub fn track_update(
    res: &Resource<'_>,
    live: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    let live_list = live.and_then(|l| l["metadata"].get("managedFields"));
    let live_managed = Managed::decode(live_list).unwrap_or_default();
    let new_list = new["metadata"].get("managedFields").cloned();
    let mut managed = if !subresource.is_empty() {
        live_managed.clone()
    } else if is_reset(new_list.as_ref()) {
        Managed::default()
    } else {
        match Managed::decode(new_list.as_ref()) {
            Ok(m) if !m.0.is_empty() => m,
            _ => live_managed.clone(),
        }
    };
    let live_clean = live
        .map(without_managed_fields)
        .unwrap_or_else(|| empty_object(res));
    let has_managed = new["metadata"].get("managedFields").is_some();
    let new_clean = if has_managed { Cow::Owned(without_managed_fields(new)) } else { Cow::Borrowed(&*new) };
    let Comparison { added, modified, removed } = diff(res, &live_clean, &new_clean);
    drop(new_clean);
    let mut changed = added;
    changed.append(modified);
    for entry in managed.0.values_mut() {
        entry.set = entry.set.difference(&changed).difference(&removed);
    }
    // Whether the write touches no owned field (only needed to keep an update's stored form).
    let touches_nothing = live.is_some() && {
        let mut touched = changed.union(&removed);
        strip(&mut touched);
        touched.is_empty()
    };
    let mut current = changed;
    strip(&mut current);
    if !current.is_empty() {
        let id = ManagerId::update(manager, res.api_version, subresource);
        let entry = managed.0.entry(id).or_insert_with(|| Entry {
            set: FieldSet::new(),
            api_version: String::new(),
            time: None,
        });
        entry.set.append(current);
        entry.api_version = res.api_version.to_string();
        entry.time = Some(now.to_string());
    }
    managed.drop_empty();
    managed.cap_updaters(MAX_UPDATE_MANAGERS);
    let same_but_times = || {
        let untimed = |m: &Managed| -> Vec<(ManagerId, FieldSet, String)> {
            m.0.iter()
                .map(|(id, e)| (id.clone(), e.set.clone(), e.api_version.clone()))
                .collect()
        };
        touches_nothing && untimed(&managed) == untimed(&live_managed)
    };
    if live.is_some() && (managed == live_managed || same_but_times()) {
        // Unchanged ownership (a write that only moves timestamps changes nothing either):
        // keep the stored form byte for byte.
        match live_list {
            Some(l) => new["metadata"]["managedFields"] = l.clone(),
            None => set_managed_fields(new, &managed),
        }
    } else {
        set_managed_fields(new, &managed);
    }
}

/// A field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: ManagerId,
    pub path: Path,
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    Conflicts(Vec<Conflict>),
    /// The configuration does not fit the schema (unknown fields, duplicate or unkeyable list
    /// elements).
    Invalid(Vec<String>),
}

/// Upstream's conflict message.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager.describe(),
            path_string(&c.path)
        );
    }
    let mut by_manager: BTreeMap<&ManagerId, Vec<String>> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(&c.manager)
            .or_default()
            .push(path_string(&c.path));
    }
    let mut lines = Vec::new();
    let mut managers: Vec<(&ManagerId, Vec<String>)> = by_manager.into_iter().collect();
    managers.sort_by_key(|(m, _)| m.describe());
    for (m, paths) in managers {
        lines.push(format!("conflicts with {}:", m.describe()));
        lines.extend(paths.into_iter().map(|p| format!("- {p}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Merge the applied `config` into `live` (`None`: the object does not exist yet) for
/// `manager`, returning the object to store with its managedFields. Returns `live` unchanged
/// when the apply changes nothing.
pub fn apply(
    res: &Resource<'_>,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    match apply_once(res, live, config, manager, subresource, force, now) {
        Err(ApplyError::Conflicts(conflicts)) if manager == "kubectl" && !force => {
            // Upgrading from client-side apply: conflicts on fields the last client-side
            // configuration set to their live values are taken over.
            let allowed = live.map(|l| from_last_applied(res, l)).unwrap_or_default();
            let remaining: Vec<Conflict> = conflicts
                .iter()
                .filter(|c| !allowed.contains(&c.path))
                .cloned()
                .collect();
            if remaining.is_empty() {
                apply_once(res, live, config, manager, subresource, true, now)
            } else {
                Err(ApplyError::Conflicts(remaining))
            }
        }
        other => other,
    }
}

/// The fields the last-applied annotation of `live` sets to the values they have.
fn from_last_applied(res: &Resource<'_>, live: &Value) -> FieldSet {
    let Some(text) = live["metadata"]["annotations"][LAST_APPLIED].as_str() else {
        return FieldSet::new();
    };
    let Ok(last) = serde_json::from_str::<Value>(text) else {
        return FieldSet::new();
    };
    if last["apiVersion"].as_str() != Some(res.api_version) {
        return FieldSet::new();
    }
    let Ok(set) = typed::to_field_set(res.schema, &last, true) else {
        return FieldSet::new();
    };
    let c = typed::compare(res.schema, &last, &without_managed_fields(live));
    set.difference(&c.modified)
        .difference(&c.added)
        .difference(&c.removed)
}

fn apply_once(
    res: &Resource<'_>,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let live_list = live.and_then(|l| l["metadata"].get("managedFields"));
    let live_managed = Managed::decode(live_list).unwrap_or_default();
    let mut managed = live_managed.clone();
    let live_clean = live
        .map(without_managed_fields)
        .unwrap_or_else(|| empty_object(res));
    let mut applied = typed::to_field_set(res.schema, config, true).map_err(ApplyError::Invalid)?;
    applied.retain(|p| !res.reset.ignores(p));
    let mut merged = typed::merge(res.schema, &live_clean, config);

    let id = ManagerId::apply(manager, subresource);
    let previous = managed.0.remove(&id);
    managed.0.insert(
        id.clone(),
        Entry {
            set: applied,
            api_version: res.api_version.to_string(),
            time: None,
        },
    );
    if let Some(last) = previous.as_ref().map(|e| &e.set).filter(|s| !s.is_empty()) {
        prune(res, &mut merged, last, &managed);
    }

    let c = diff(res, &live_clean, &merged);
    let changed = c.added.union(&c.modified);
    let mut conflicts = Vec::new();
    for (other, entry) in managed.0.iter_mut().filter(|(m, _)| **m != id) {
        let owned = entry.set.intersection(&changed);
        conflicts.extend(owned.iter().map(|p| Conflict {
            manager: other.clone(),
            path: p.clone(),
        }));
        entry.set = entry.set.difference(&owned).difference(&c.removed);
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager).then_with(|| a.path.cmp(&b.path)));
        return Err(ApplyError::Conflicts(conflicts));
    }

    let unchanged = merged == live_clean;
    if let Some(entry) = managed.0.get_mut(&id) {
        strip(&mut entry.set);
        entry.time = if unchanged {
            previous.and_then(|e| e.time)
        } else {
            Some(now.to_string())
        };
    }
    managed.drop_empty();
    managed.cap_updaters(MAX_UPDATE_MANAGERS);

    let mut out = if unchanged {
        live.cloned().unwrap_or(merged)
    } else {
        merged
    };
    if live.is_some() && managed == live_managed {
        match live_list {
            Some(l) => out["metadata"]["managedFields"] = l.clone(),
            None => set_managed_fields(&mut out, &managed),
        }
    } else {
        set_managed_fields(&mut out, &managed);
    }
    if manager == "kubectl"
        && live.is_some_and(|l| l["metadata"]["annotations"][LAST_APPLIED].is_string())
    {
        // Keep client-side apply's record in step with what kubectl applies server-side.
        let mut last = config.clone();
        if let Some(a) = last
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
            if a.is_empty() {
                last["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("annotations"));
            }
        }
        let text = format!("{}\n", serde_json::to_string(&last).unwrap_or_default());
        out["metadata"]["annotations"][LAST_APPLIED] = Value::String(text);
    }
    Ok(out)
}

/// Remove what the applier set last time and no longer sets, unless some manager owns it.
fn prune(res: &Resource<'_>, merged: &mut Value, last: &FieldSet, managed: &Managed) {
    let mut owned = FieldSet::new();
    for e in managed.0.values() {
        owned.extend(&e.set);
    }
    let present = typed::to_field_set(res.schema, merged, false).unwrap_or_default();
    let remove = |p: &Path, named: bool| {
        typed::has_named(last, p, named)
            && !typed::has_named(&owned, p, named)
            && typed::has_named(&present, p, named)
    };
    let descend = |p: &Path| last.has_descendant(p);
    typed::remove_where(res.schema, merged, &remove, &descend);
}

#[cfg(test)]
mod tests {
    use super::super::fieldpath::p;
    use super::*;

    fn res(kind: &str, group: &str, reset: Reset) -> Resource<'static> {
        let name = crate::openapi::kind_schema_name(group, "v1", kind).unwrap();
        let schema = Schema::definition(crate::openapi::schemas(), &name).unwrap();
        let api_version = if group.is_empty() { "v1" } else { "apps/v1" };
        let definition = name.strip_prefix("io.k8s.").map(String::from);
        Resource {
            schema,
            definition,
            api_version,
            reset,
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    fn entries(obj: &Value) -> Vec<Value> {
        obj["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn create_records_the_creator_with_dot_for_new_maps() {
        let r = res("ConfigMap", "", Reset::Nothing);
        let mut obj = cm(json!({"a": "1"}));
        obj["metadata"]["labels"] = json!({"x": "y"});
        track_update(
            &r,
            None,
            &mut obj,
            "kubectl-create",
            "",
            "2025-01-01T00:00:00Z",
        );
        assert_eq!(
            entries(&obj),
            vec![json!({
                "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2025-01-01T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}},
            })]
        );
    }

    #[test]
    fn create_compares_against_a_zero_object_like_upstream() {
        // What `kubectl create deployment nginx --image=nginx` sends.
        let r = res("Deployment", "apps", Reset::Status);
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}}, "strategy": {},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}}},
            "status": {},
        });
        track_update(&r, None, &mut d, "kubectl-create", "", "T");
        assert_eq!(
            entries(&d)[0]["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {}, "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}}},
                    },
                },
            })
        );
    }

    #[test]
    fn updates_move_ownership_and_keep_untouched_entries() {
        let r = res("ConfigMap", "", Reset::Nothing);
        let mut v1 = cm(json!({"a": "1", "b": "1"}));
        track_update(&r, None, &mut v1, "one", "", "T1");
        let mut v2 = cm(json!({"a": "2", "b": "1"}));
        track_update(&r, Some(&v1), &mut v2, "two", "", "T2");
        let m = Managed::decode(v2["metadata"].get("managedFields")).unwrap();
        assert_eq!(
            m.0[&ManagerId::update("one", "v1", "")].set,
            [p("data"), p("data.b")].into_iter().collect()
        );
        assert_eq!(
            m.0[&ManagerId::update("two", "v1", "")].set,
            [p("data.a")].into_iter().collect()
        );
        // A no-op write changes nothing, not even times.
        let mut v3 = v2.clone();
        v3["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        track_update(&r, Some(&v2), &mut v3, "three", "", "T3");
        assert_eq!(v3, v2);
        // Nor does a write that only moves timestamps.
        let mut v4 = v2.clone();
        v4["metadata"]["managedFields"][0]["time"] = json!("T9");
        v4["metadata"]["resourceVersion"] = json!("1");
        track_update(&r, Some(&v2), &mut v4, "three", "", "T4");
        assert_eq!(
            v4["metadata"]["managedFields"],
            v2["metadata"]["managedFields"]
        );
    }

    #[test]
    fn status_writes_are_recorded_with_their_subresource_only_for_status() {
        let r = res("Deployment", "apps", Reset::AllButStatus);
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let mut new = live.clone();
        new["status"] = json!({"replicas": 1});
        track_update(
            &r,
            Some(&live),
            &mut new,
            "kube-controller-manager",
            "status",
            "T",
        );
        let e = &entries(&new)[0];
        assert_eq!(e["subresource"], "status");
        assert_eq!(
            e["fieldsV1"],
            json!({"f:status": {".": {}, "f:replicas": {}}})
        );
    }

    #[test]
    fn apply_conflicts_force_and_prune() {
        let r = res("ConfigMap", "", Reset::Nothing);
        let mut live = cm(json!({"a": "1"}));
        track_update(&r, None, &mut live, "kubectl-client-side-apply", "", "T0");
        live["metadata"]["resourceVersion"] = json!("5");

        // Same value: shared ownership, no conflict.
        let shared = apply(
            &r,
            Some(&live),
            &cm(json!({"a": "1", "b": "2"})),
            "mgr",
            "",
            false,
            "T1",
        )
        .unwrap();
        assert_eq!(shared["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(entries(&shared).len(), 2);
        assert_eq!(entries(&shared)[0]["operation"], "Apply");
        assert_eq!(
            entries(&shared)[0]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        );

        // Re-applying the same configuration changes nothing.
        let again = apply(
            &r,
            Some(&shared),
            &cm(json!({"a": "1", "b": "2"})),
            "mgr",
            "",
            false,
            "T2",
        )
        .unwrap();
        assert_eq!(again, shared);

        // Another applier changing an owned value conflicts with both owners.
        let err = apply(
            &r,
            Some(&shared),
            &cm(json!({"a": "3"})),
            "other",
            "",
            false,
            "T3",
        )
        .unwrap_err();
        let ApplyError::Conflicts(cs) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            conflict_message(&cs),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using v1:\n- .data.a\nconflicts with \"mgr\":\n- .data.a"
        );
        assert_eq!(
            conflict_message(&cs[..1]),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
        );
        assert_eq!(
            conflict_message(&cs[1..]),
            "Apply failed with 1 conflict: conflict with \"mgr\": .data.a"
        );

        // Forcing takes the field over.
        let forced = apply(
            &r,
            Some(&shared),
            &cm(json!({"a": "3"})),
            "other",
            "",
            true,
            "T3",
        )
        .unwrap();
        assert_eq!(forced["data"], json!({"a": "3", "b": "2"}));
        let m = Managed::decode(forced["metadata"].get("managedFields")).unwrap();
        assert_eq!(
            m.0[&ManagerId::apply("mgr", "")].set,
            [p("data.b")].into_iter().collect()
        );
        assert_eq!(
            m.0[&ManagerId::apply("other", "")].set,
            [p("data.a")].into_iter().collect()
        );
        assert_eq!(
            m.0[&ManagerId::update("kubectl-client-side-apply", "v1", "")].set,
            [p("data")].into_iter().collect(),
            "only the map itself is left to the creator"
        );

        // Dropping a field from the configuration removes it when nobody else owns it.
        let pruned = apply(&r, Some(&forced), &cm(json!({})), "mgr", "", false, "T4").unwrap();
        assert_eq!(pruned["data"], json!({"a": "3"}));
        // ...and keeps it when someone else does.
        let kept = apply(
            &r,
            Some(&forced),
            &cm(json!({"b": "2"})),
            "other",
            "",
            false,
            "T4",
        )
        .unwrap();
        assert_eq!(
            kept["data"],
            json!({"b": "2"}),
            "other dropped a, which only it owned"
        );
    }

    #[test]
    fn apply_rejects_unknown_fields() {
        let r = res("ConfigMap", "", Reset::Nothing);
        let err = apply(&r, None, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "spec": {}}), "m", "", false, "T")
            .unwrap_err();
        assert_eq!(
            err,
            ApplyError::Invalid(vec![".spec: field not declared in schema".into()])
        );
    }

    #[test]
    fn client_side_apply_upgrade_takes_over_matching_fields() {
        let r = res("ConfigMap", "", Reset::Nothing);
        let mut live = cm(json!({"a": "1"}));
        live["metadata"]["annotations"] = json!({LAST_APPLIED: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"default"},"data":{"a":"1"}}"#});
        track_update(&r, None, &mut live, "kubectl-client-side-apply", "", "T0");
        // kubectl-client-side-apply owns data.a, which the annotation set to its live value.
        let out = apply(
            &r,
            Some(&live),
            &cm(json!({"a": "2"})),
            "kubectl",
            "",
            false,
            "T1",
        )
        .unwrap();
        assert_eq!(out["data"]["a"], "2");
        let text = out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        assert!(
            text.contains(r#""data":{"a":"2"}"#) && text.ends_with('\n'),
            "{text}"
        );
        assert!(
            apply(
                &r,
                Some(&live),
                &cm(json!({"a": "2"})),
                "other",
                "",
                false,
                "T1"
            )
            .is_err()
        );
    }

    #[test]
    fn many_updaters_fold_into_ancient_changes() {
        let mut m = Managed::default();
        for i in 0..12 {
            m.0.insert(
                ManagerId::update(&format!("m{i:02}"), "v1", ""),
                Entry {
                    set: [p(&format!("data.k{i}"))].into_iter().collect(),
                    api_version: "v1".into(),
                    time: Some(format!("T{i:02}")),
                },
            );
        }
        m.cap_updaters(MAX_UPDATE_MANAGERS);
        assert_eq!(m.0.len(), 10);
        let ancient = &m.0[&ManagerId::update(ANCIENT_CHANGES, "v1", "")];
        assert_eq!(ancient.set.len(), 3);
        assert!(!m.0.contains_key(&ManagerId::update("m00", "v1", "")));
        assert!(m.0.contains_key(&ManagerId::update("m11", "v1", "")));
    }
}
