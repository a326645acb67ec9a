//! Schema-aware operations on objects: the set of fields a value sets, the difference between
//! two values, merging an applied configuration into a live object, and removing fields.
//! These follow structured-merge-diff's rules: struct fields are named, map keys and list
//! elements are members of their own, atomic values are owned (and replaced) as a whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::fieldpath::{FieldSet, Path, PathElement, path_string};
use super::schema::{ListKind, Schema, Shape, item_element};

/// How two versions of an object differ.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// Drop every path `ignored` says is not tracked.
    pub fn exclude(&mut self, ignored: impl Fn(&Path) -> bool) {
        self.added.retain(|p| !ignored(p));
        self.modified.retain(|p| !ignored(p));
        self.removed.retain(|p| !ignored(p));
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// The elements of a granular list with their path elements; elements that cannot be keyed are
/// reported in `errors`, repeated keys in `duplicates`.
struct Indexed<'v> {
    items: Vec<(PathElement, &'v Value)>,
    errors: Vec<String>,
    duplicates: Vec<PathElement>,
}

fn index_items<'v>(kind: &ListKind<'_>, list: &'v [Value]) -> Indexed<'v> {
    let mut seen = BTreeSet::new();
    let mut out = Indexed {
        items: Vec::with_capacity(list.len()),
        errors: Vec::new(),
        duplicates: Vec::new(),
    };
    for (i, item) in list.iter().enumerate() {
        match item_element(kind, i, item) {
            Ok(pe) => {
                if seen.insert(pe.clone()) {
                    out.items.push((pe, item));
                } else {
                    out.duplicates.push(pe);
                }
            }
            Err(e) => out.errors.push(format!("element {i}: {e}")),
        }
    }
    out
}

/// The fields `v` sets: leaves, atomic values, map entries and list elements. With `strict`,
/// fields the schema does not declare, unkeyable and duplicate list elements are errors (as
/// for an applied configuration); otherwise unknown fields are owned as a whole.
pub fn to_field_set(schema: Schema<'_>, v: &Value, strict: bool) -> Result<FieldSet, Vec<String>> {
    fn walk(
        s: Schema<'_>,
        v: &Value,
        path: &mut Path,
        out: &mut FieldSet,
        errs: &mut Vec<String>,
        strict: bool,
    ) {
        match s.shape(v) {
            Shape::Leaf => out.insert(path.clone()),
            Shape::Struct => {
                for (k, child) in v.as_object().into_iter().flatten() {
                    path.push(PathElement::Field(k.clone()));
                    match s.field(k) {
                        Some(fs) => walk(fs, child, path, out, errs, strict),
                        None if strict => errs.push(format!(
                            "{}: field not declared in schema",
                            path_string(path)
                        )),
                        None => out.insert(path.clone()),
                    }
                    path.pop();
                }
            }
            Shape::Map(elem) => {
                for (k, child) in v.as_object().into_iter().flatten() {
                    path.push(PathElement::Field(k.clone()));
                    walk(elem, child, path, out, errs, strict);
                    out.insert(path.clone());
                    path.pop();
                }
            }
            Shape::List(elem, kind) => {
                let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
                let indexed = index_items(&kind, list);
                if strict {
                    let at = path_string(path);
                    errs.extend(indexed.errors.iter().map(|e| format!("{at}: {e}")));
                    errs.extend(
                        indexed
                            .duplicates
                            .iter()
                            .map(|pe| format!("{at}: duplicate entries for key {pe}")),
                    );
                }
                for (pe, item) in indexed.items {
                    path.push(pe);
                    out.insert(path.clone());
                    walk(elem, item, path, out, errs, strict);
                    path.pop();
                }
            }
        }
    }
    let mut out = FieldSet::new();
    let mut errs = Vec::new();
    walk(schema, v, &mut Vec::new(), &mut out, &mut errs, strict);
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The keys of two maps, each once, in order (serde_json maps iterate in key order, so this is
/// a merge; were they not, a key would only be visited twice).
fn union_keys<'a>(
    l: Option<&'a serde_json::Map<String, Value>>,
    r: Option<&'a serde_json::Map<String, Value>>,
) -> impl Iterator<Item = &'a String> {
    let mut li = l.into_iter().flatten().map(|(k, _)| k).peekable();
    let mut ri = r.into_iter().flatten().map(|(k, _)| k).peekable();
    std::iter::from_fn(move || match (li.peek(), ri.peek()) {
        (Some(a), Some(b)) => match a.cmp(b) {
            std::cmp::Ordering::Less => li.next(),
            std::cmp::Ordering::Greater => ri.next(),
            std::cmp::Ordering::Equal => {
                ri.next();
                li.next()
            }
        },
        (Some(_), None) => li.next(),
        (None, _) => ri.next(),
    })
}

/// Which fields `rhs` adds, modifies and removes relative to `lhs`. Containers count as added
/// (removed) when they appear (disappear) as a whole.
pub fn compare(schema: Schema<'_>, lhs: &Value, rhs: &Value) -> Comparison {
    let mut c = Comparison::default();
    compare_at(schema, Some(lhs), Some(rhs), &mut Vec::new(), &mut c);
    c
}

fn compare_at(
    s: Schema<'_>,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
    c: &mut Comparison,
) {
    let leaf = |c: &mut Comparison, path: &Path| match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path.clone()),
        (Some(_), None) => c.removed.insert(path.clone()),
        (Some(a), Some(b)) if a != b => c.modified.insert(path.clone()),
        _ => {}
    };
    let Some(probe) = rhs.or(lhs) else {
        return;
    };
    let shape = s.shape(probe);
    // `null` on one side of a container is that container, empty.
    let same_kind = match (lhs, rhs) {
        (Some(Value::Null), _) | (_, Some(Value::Null)) => true,
        (Some(a), Some(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
        _ => true,
    };
    if matches!(shape, Shape::Leaf)
        || !same_kind
        || (is_empty_container(lhs) && is_empty_container(rhs))
    {
        leaf(c, path);
        return;
    }
    match shape {
        Shape::Struct | Shape::Map(_) => {
            let (l, r) = (
                lhs.and_then(Value::as_object),
                rhs.and_then(Value::as_object),
            );
            for k in union_keys(l, r) {
                let child = match &shape {
                    Shape::Map(elem) => *elem,
                    _ => s.field(k).unwrap_or(Schema::Deduced),
                };
                path.push(PathElement::Field(k.clone()));
                compare_at(
                    child,
                    l.and_then(|m| m.get(k)),
                    r.and_then(|m| m.get(k)),
                    path,
                    c,
                );
                path.pop();
            }
        }
        Shape::List(elem, kind) => {
            let empty = Vec::new();
            let l = index_items(&kind, lhs.and_then(Value::as_array).unwrap_or(&empty));
            let r = index_items(&kind, rhs.and_then(Value::as_array).unwrap_or(&empty));
            let lmap: BTreeMap<&PathElement, &Value> =
                l.items.iter().map(|(pe, v)| (pe, *v)).collect();
            let rmap: BTreeMap<&PathElement, &Value> =
                r.items.iter().map(|(pe, v)| (pe, *v)).collect();
            for (pe, rv) in &r.items {
                path.push(pe.clone());
                compare_at(elem, lmap.get(pe).copied(), Some(rv), path, c);
                path.pop();
            }
            for (pe, lv) in &l.items {
                if !rmap.contains_key(pe) {
                    path.push(pe.clone());
                    compare_at(elem, Some(lv), None, path, c);
                    path.pop();
                }
            }
        }
        Shape::Leaf => {}
    }
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path.clone()),
        (Some(_), None) => c.removed.insert(path.clone()),
        _ => {}
    }
}

/// Merge `rhs` (an applied configuration) into `lhs`: granular containers merge member by
/// member, everything else is replaced by `rhs`.
pub fn merge(schema: Schema<'_>, lhs: &Value, rhs: &Value) -> Value {
    let shape = schema.shape(rhs);
    if rhs.is_null() && !matches!(shape, Shape::Leaf) {
        // Applying `null` to a granular container leaves it as it is.
        return lhs.clone();
    }
    if std::mem::discriminant(lhs) != std::mem::discriminant(rhs) {
        return rhs.clone();
    }
    match shape {
        Shape::Leaf => rhs.clone(),
        Shape::Struct | Shape::Map(_) => {
            let (Some(l), Some(r)) = (lhs.as_object(), rhs.as_object()) else {
                return rhs.clone();
            };
            let mut out = l.clone();
            for (k, rv) in r {
                let child = match &shape {
                    Shape::Map(elem) => *elem,
                    _ => schema.field(k).unwrap_or(Schema::Deduced),
                };
                let merged = match l.get(k) {
                    Some(lv) => merge(child, lv, rv),
                    None => rv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Shape::List(elem, kind) => {
            let (Some(l), Some(r)) = (lhs.as_array(), rhs.as_array()) else {
                return rhs.clone();
            };
            Value::Array(merge_list(elem, &kind, l, r))
        }
    }
}

/// Shared elements come in the applied order; elements only the live list has stay after the
/// shared element they followed; elements only the applied list has stay before the shared
/// element they preceded.
fn merge_list(elem: Schema<'_>, kind: &ListKind<'_>, lhs: &[Value], rhs: &[Value]) -> Vec<Value> {
    let keyed = |list: &[Value]| -> Vec<Option<PathElement>> {
        let mut seen = BTreeSet::new();
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                item_element(kind, i, v)
                    .ok()
                    .filter(|pe| seen.insert(pe.clone()))
            })
            .collect()
    };
    let (lk, rk) = (keyed(lhs), keyed(rhs));
    let lpos: BTreeMap<&PathElement, usize> = lk
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.as_ref().map(|k| (k, i)))
        .collect();
    let rset: BTreeSet<&PathElement> = rk.iter().flatten().collect();
    let shared = |k: &Option<PathElement>| {
        k.as_ref()
            .is_some_and(|k| lpos.contains_key(k) && rset.contains(k))
    };

    // Live-only elements, grouped after the shared element they follow (None: before any).
    let mut trailing: BTreeMap<Option<&PathElement>, Vec<&Value>> = BTreeMap::new();
    let mut anchor: Option<&PathElement> = None;
    for (k, v) in lk.iter().zip(lhs) {
        if shared(k) {
            anchor = k.as_ref();
        } else {
            trailing.entry(anchor).or_default().push(v);
        }
    }
    let mut out: Vec<Value> = trailing
        .remove(&None)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    for (k, rv) in rk.iter().zip(rhs) {
        if shared(k) {
            let key = k.as_ref().expect("shared elements are keyed");
            out.push(merge(elem, &lhs[lpos[key]], rv));
            out.extend(trailing.remove(&Some(key)).into_iter().flatten().cloned());
        } else {
            out.push(rv.clone());
        }
    }
    out
}

/// Remove from `v` the nodes `remove` selects, given each node's path and whether it is a
/// named (struct) field. Descends only where `descend` says something below may be removed.
/// Containers emptied by the removal are removed too.
pub fn remove_where(
    schema: Schema<'_>,
    v: &mut Value,
    remove: &dyn Fn(&Path, bool) -> bool,
    descend: &dyn Fn(&Path) -> bool,
) {
    fn walk(
        s: Schema<'_>,
        v: &mut Value,
        path: &mut Path,
        remove: &dyn Fn(&Path, bool) -> bool,
        descend: &dyn Fn(&Path) -> bool,
    ) {
        let shape = s.shape(v);
        match shape {
            Shape::Leaf => {}
            Shape::Struct | Shape::Map(_) => {
                let named = matches!(shape, Shape::Struct);
                let Some(obj) = v.as_object_mut() else { return };
                let keys: Vec<String> = obj.keys().cloned().collect();
                for k in keys {
                    path.push(PathElement::Field(k.clone()));
                    if remove(path, named) {
                        obj.remove(&k);
                    } else if descend(path) {
                        let child = match &shape {
                            Shape::Map(elem) => *elem,
                            _ => s.field(&k).unwrap_or(Schema::Deduced),
                        };
                        if let Some(cv) = obj.get_mut(&k) {
                            let was_empty = is_empty_container(Some(cv));
                            walk(child, cv, path, remove, descend);
                            if !was_empty && is_empty_container(Some(cv)) {
                                obj.remove(&k);
                            }
                        }
                    }
                    path.pop();
                }
            }
            Shape::List(elem, kind) => {
                let Some(list) = v.as_array_mut() else { return };
                let mut out = Vec::with_capacity(list.len());
                for (i, mut item) in std::mem::take(list).into_iter().enumerate() {
                    let Ok(pe) = item_element(&kind, i, &item) else {
                        out.push(item);
                        continue;
                    };
                    path.push(pe);
                    if !remove(path, false) {
                        if descend(path) {
                            walk(elem, &mut item, path, remove, descend);
                        }
                        out.push(item);
                    }
                    path.pop();
                }
                *list = out;
            }
        }
    }
    walk(schema, v, &mut Vec::new(), remove, descend);
}

/// Whether `set` has `path`, where a named field also counts when something below it is in
/// the set (upstream's "named fields are members").
pub fn has_named(set: &FieldSet, path: &Path, named: bool) -> bool {
    set.contains(path) || (named && set.has_descendant(path))
}

#[cfg(test)]
mod tests {
    use super::super::fieldpath::p;
    use super::*;
    use serde_json::json;

    fn deploy() -> Schema<'static> {
        let name = crate::openapi::kind_schema_name("apps", "v1", "Deployment").unwrap();
        Schema::definition(crate::openapi::schemas(), &name).unwrap()
    }

    fn set(paths: &[&str]) -> FieldSet {
        paths.iter().map(|s| p(s)).collect()
    }

    #[test]
    fn field_set_of_an_applied_deployment() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "args": ["a"],
                    "ports": [{"containerPort": 80}]}]}},
            },
        });
        let got = to_field_set(deploy(), &obj, true).unwrap();
        let want = set(&[
            "apiVersion",
            "kind",
            "metadata.name",
            "metadata.labels.app",
            "spec.replicas",
            "spec.selector",
            "spec.template.spec.containers[name=web]",
            "spec.template.spec.containers[name=web].name",
            "spec.template.spec.containers[name=web].image",
            "spec.template.spec.containers[name=web].args",
            "spec.template.spec.containers[name=web].ports[containerPort=80,protocol=TCP]",
            "spec.template.spec.containers[name=web].ports[containerPort=80,protocol=TCP].containerPort",
        ]);
        assert_eq!(got, want, "{:#}", got.to_fields_v1());
    }

    #[test]
    fn strict_field_sets_reject_unknown_fields_and_duplicates() {
        let obj = json!({"spec": {"foo": 1, "template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}, {"image": "x"}]}}}});
        let errs = to_field_set(deploy(), &obj, true).unwrap_err();
        assert!(
            errs.contains(&".spec.foo: field not declared in schema".to_string()),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e
                    == r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains(
                "element 2: associative list with keys has an element that omits key field \"name\""
            )),
            "{errs:?}"
        );
        assert!(to_field_set(deploy(), &json!({"spec": {"foo": 1}}), false).is_ok());
    }

    #[test]
    fn comparison_marks_new_containers_and_changed_leaves() {
        let old = json!({"metadata": {"name": "a"}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let new = json!({"metadata": {"name": "a", "labels": {"k": "v"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let c = compare(deploy(), &old, &new);
        assert_eq!(c.modified, set(&["spec.replicas"]));
        assert_eq!(
            c.added,
            set(&[
                "metadata.labels",
                "metadata.labels.k",
                "spec.template.spec.containers[name=b]",
                "spec.template.spec.containers[name=b].name",
                "spec.template.spec.containers[name=b].image"
            ])
        );
        assert!(c.removed.is_empty());
        let back = compare(deploy(), &new, &old);
        assert_eq!(back.removed, c.added);
        assert!(compare(deploy(), &old, &old).is_empty());
    }

    #[test]
    fn merge_is_granular_except_for_atomic_values() {
        let live = json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"a": "1", "b": "2"}}, "template": {"spec": {"containers": [
            {"name": "a", "image": "x", "args": ["1", "2"]}, {"name": "side", "image": "s"}]}}}});
        let cfg = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "template": {"spec": {"containers": [
            {"name": "new", "image": "n"}, {"name": "a", "image": "y", "args": ["3"]}]}}}});
        let m = merge(deploy(), &live, &cfg);
        assert_eq!(m["spec"]["replicas"], 3);
        assert_eq!(
            m["spec"]["selector"],
            json!({"matchLabels": {"a": "1"}}),
            "atomic selector is replaced"
        );
        let names: Vec<&str> = m["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["new", "a", "side"]);
        assert_eq!(
            m["spec"]["template"]["spec"]["containers"][1],
            json!({"name": "a", "image": "y", "args": ["3"]})
        );
    }

    #[test]
    fn null_is_an_empty_container_but_a_scalar_value() {
        let cfg = json!({"metadata": {"labels": null}, "spec": {"replicas": null}});
        assert_eq!(
            to_field_set(deploy(), &cfg, true).unwrap(),
            set(&["spec.replicas"])
        );
        let live = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 2}});
        let m = merge(deploy(), &live, &cfg);
        assert_eq!(
            m["metadata"]["labels"],
            json!({"a": "1"}),
            "null leaves a granular map alone"
        );
        assert_eq!(m["spec"]["replicas"], Value::Null, "null replaces a scalar");
        let c = compare(
            deploy(),
            &json!({"spec": {"template": {"spec": {"containers": null}}}}),
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}),
        );
        assert_eq!(
            c.added,
            set(&[
                "spec.template.spec.containers[name=a]",
                "spec.template.spec.containers[name=a].name"
            ])
        );
    }

    #[test]
    fn removal_by_predicate_drops_emptied_containers() {
        let mut v =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1, "paused": true}});
        let doomed = set(&["metadata.labels.a", "spec.paused"]);
        remove_where(deploy(), &mut v, &|p, _| doomed.contains(p), &|p| {
            doomed.has_descendant(p)
        });
        assert_eq!(v, json!({"spec": {"replicas": 1}}));
    }
}
