//! Field paths and field sets, and their `FieldsV1` wire form.
//!
//! A path names one node of an object: a struct field or map key (`f:name`), an element of an
//! associative list by its key fields (`k:{"name":"web"}`), an element of a set by its value
//! (`v:"a"`) or an element by position (`i:0`). A [`FieldSet`] is the set of paths a manager
//! owns; `FieldsV1` nests them as a trie where `{}` marks a member and `".": {}` marks a member
//! that also has members below it.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;

use serde_json::{Map, Value};

/// One step of a [`Path`].
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A struct field or a map key.
    Field(String),
    /// An associative-list element, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// A set element, by its value.
    Value(Value),
    /// A list element by position (lists that have neither keys nor set semantics).
    Index(usize),
}

/// A path from the object root.
pub type Path = Vec<PathElement>;

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element.
    pub fn to_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(fields) => {
                let m: Map<String, Value> =
                    fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parse a `FieldsV1` key.
    pub fn from_key(key: &str) -> Result<PathElement, String> {
        let bad = |why: &str| format!("invalid path element {key:?}: {why}");
        let (kind, rest) = key.split_at_checked(2).ok_or_else(|| bad("too short"))?;
        match kind {
            "f:" => Ok(PathElement::Field(rest.to_string())),
            "k:" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) if !m.is_empty() => {
                    Ok(PathElement::Key(m.into_iter().collect()))
                }
                _ => Err(bad("key must be a non-empty JSON object")),
            },
            "v:" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| bad(&e.to_string())),
            "i:" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|_| bad("index must be a number")),
            _ => Err(bad("unknown prefix")),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let c = ka.cmp(kb).then_with(|| compare_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// A total order over JSON values: numbers, strings, booleans, lists, maps, null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((kp, p), (kq, q)) in x.iter().zip(y) {
                let c = kp.cmp(kq).then_with(|| compare_values(p, q));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Upstream's path form: `.spec.containers[name="web"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.0.contains(path)
    }

    /// Whether some member lies strictly below `path`.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        self.0
            .range::<[PathElement], _>((Bound::Excluded(path), Bound::Unbounded))
            .next()
            .is_some_and(|p| p.starts_with(path))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn extend(&mut self, other: &FieldSet) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Move every member of `other` into this set.
    pub fn append(&mut self, mut other: FieldSet) {
        if self.0.is_empty() {
            std::mem::swap(&mut self.0, &mut other.0);
        } else {
            self.0.append(&mut other.0);
        }
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn retain(&mut self, keep: impl FnMut(&Path) -> bool) {
        self.0.retain(keep);
    }

    /// The `FieldsV1` form.
    pub fn to_fields_v1(&self) -> Value {
        // The set is sorted, so the paths under one prefix are contiguous, a prefix first.
        fn render(paths: &[&[PathElement]], depth: usize) -> Value {
            let mut out = Map::new();
            let mut member = false;
            let mut i = 0;
            while i < paths.len() {
                let Some(pe) = paths[i].get(depth) else {
                    member = true;
                    i += 1;
                    continue;
                };
                let end = i + paths[i..].iter().take_while(|p| p.get(depth).is_some_and(|x| x.cmp(pe).is_eq())).count();
                out.insert(pe.to_key(), render(&paths[i..end], depth + 1));
                i = end;
            }
            if member && !out.is_empty() {
                out.insert(".".into(), Value::Object(Map::new()));
            }
            Value::Object(out)
        }
        let paths: Vec<&[PathElement]> = self.0.iter().map(Vec::as_slice).collect();
        render(&paths, 0)
    }

    /// Parse `FieldsV1`.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        fn walk(v: &Value, path: &mut Path, out: &mut FieldSet) -> Result<(), String> {
            let Value::Object(m) = v else {
                return Err(format!("expected an object at {}", path_string(path)));
            };
            for (k, child) in m {
                if k == "." {
                    if !path.is_empty() {
                        out.insert(path.clone());
                    }
                    continue;
                }
                path.push(PathElement::from_key(k)?);
                match child {
                    Value::Object(c) if c.is_empty() => out.insert(path.clone()),
                    _ => walk(child, path, out)?,
                }
                path.pop();
            }
            Ok(())
        }
        let mut out = FieldSet::new();
        walk(v, &mut Vec::new(), &mut out)?;
        Ok(out)
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(iter: I) -> Self {
        FieldSet(iter.into_iter().collect())
    }
}

#[cfg(test)]
pub(crate) fn p(s: &str) -> Path {
    // Test helper: "spec.replicas" or "spec.containers[name=web].image" (string keys only).
    let mut out = Vec::new();
    for part in s.split('.').filter(|x| !x.is_empty()) {
        let (field, rest) = part
            .split_once('[')
            .map_or((part, None), |(f, r)| (f, Some(r)));
        if !field.is_empty() {
            out.push(PathElement::Field(field.into()));
        }
        if let Some(r) = rest {
            let r = r.trim_end_matches(']');
            if let Some(v) = r.strip_prefix('=') {
                out.push(PathElement::Value(Value::String(v.into())));
            } else {
                let mut keys: Vec<(String, Value)> = r
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("k=v");
                        let v = v
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::String(v.into()));
                        (k.to_string(), v)
                    })
                    .collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(PathElement::Key(keys));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trip_with_dot_markers() {
        let set: FieldSet = [
            p("data"),
            p("data.a"),
            p("metadata.labels.app"),
            p("spec.containers[name=web]"),
            p("spec.containers[name=web].image"),
            p("spec.finalizers[=x]"),
        ]
        .into_iter()
        .collect();
        let v = set.to_fields_v1();
        assert_eq!(
            v,
            json!({
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}},
                    "f:finalizers": {"v:\"x\"": {}},
                },
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&v).unwrap(), set);
    }

    #[test]
    fn keys_serialize_sorted_and_numbers_compare_numerically() {
        let pe = PathElement::Key(vec![
            ("containerPort".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        assert_eq!(pe.to_key(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(PathElement::from_key(&pe.to_key()).unwrap(), pe);
        let nine = PathElement::Key(vec![("p".into(), json!(9))]);
        let ten = PathElement::Key(vec![("p".into(), json!(10))]);
        assert!(nine < ten);
        assert!(PathElement::Field("z".into()) < nine);
    }

    #[test]
    fn path_strings_follow_upstream() {
        let mut path = p("spec.template.spec.containers[name=web].image");
        assert_eq!(
            path_string(&path),
            r#".spec.template.spec.containers[name="web"].image"#
        );
        path = p("metadata.finalizers[=a]");
        assert_eq!(path_string(&path), r#".metadata.finalizers[="a"]"#);
        assert_eq!(path_string(&[PathElement::Index(2)]), "[2]");
    }

    #[test]
    fn descendants_and_bad_input() {
        let set: FieldSet = [p("spec.replicas"), p("spec2")].into_iter().collect();
        assert!(set.has_descendant(&p("spec")));
        assert!(!set.has_descendant(&p("spec.replicas")));
        assert!(!set.has_descendant(&p("status")));
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:[]": {}})).is_err());
    }
}
