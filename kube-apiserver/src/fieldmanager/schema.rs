//! How an object's nodes are shaped for field ownership: which objects are structs (named
//! fields), which are maps, which lists are sets or keyed by fields, and what is atomic (owned
//! as a whole). Read from the server's OpenAPI schemas and their upstream markers
//! (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, and the
//! patch strategy/merge key of lists without a list type), the way upstream converts OpenAPI
//! into structured-merge-diff schemas.

use serde_json::{Map, Value};

use super::fieldpath::PathElement;

const REF_PREFIX: &str = "#/definitions/";

/// Key fields that default when an element leaves them out (upstream fills them from the
/// schema's defaults before keying the element).
const KEY_DEFAULTS: &[(&str, &str)] = &[("protocol", "TCP")];

/// A schema node; cheap to copy.
#[derive(Clone, Copy)]
pub enum Schema<'a> {
    /// A node of the OpenAPI definitions. `outer` is the property that refers to it (its
    /// extensions win over the referenced definition's).
    Typed {
        defs: &'a Map<String, Value>,
        outer: &'a Value,
        target: &'a Value,
    },
    /// No schema: objects are granular maps, everything else is atomic.
    Deduced,
}

/// The JSON kind a value is shaped as.
enum Kind {
    Object,
    Array,
    Other,
}

/// What a value is, under its schema.
pub enum Shape<'a> {
    /// Owned as a whole: scalars, atomic lists/maps/structs, untyped values, null.
    Leaf,
    /// An object with named fields.
    Struct,
    /// An object whose keys are data, with one element schema.
    Map(Schema<'a>),
    /// A granular list.
    List(Schema<'a>, ListKind<'a>),
}

/// How the elements of a granular list are identified.
#[derive(Clone)]
pub enum ListKind<'a> {
    /// By value (`listType: set`).
    Set,
    /// By these fields (`listType: map`).
    Keys(Vec<&'a str>),
    /// By position (associative lists without keys of non-scalar elements).
    Index,
}

fn resolve<'a>(defs: &'a Map<String, Value>, mut node: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX))
        {
            Some(name) => match defs.get(name) {
                Some(next) => node = next,
                None => return &Value::Null,
            },
            None => return node,
        }
    }
    node
}

impl<'a> Schema<'a> {
    /// The schema of a top-level definition.
    pub fn definition(defs: &'a Map<String, Value>, name: &str) -> Option<Schema<'a>> {
        defs.get(name).map(|node| Schema::node(defs, node))
    }

    fn node(defs: &'a Map<String, Value>, node: &'a Value) -> Schema<'a> {
        Schema::Typed {
            defs,
            outer: node,
            target: resolve(defs, node),
        }
    }

    fn ext(&self, key: &str) -> Option<&'a Value> {
        match self {
            Schema::Typed { outer, target, .. } => outer.get(key).or_else(|| target.get(key)),
            Schema::Deduced => None,
        }
    }

    fn ext_str(&self, key: &str) -> Option<&'a str> {
        self.ext(key).and_then(Value::as_str)
    }

    /// How `v` is shaped under this schema; a value that does not fit the schema is a leaf.
    /// `null` where the schema has a granular container is that container, empty.
    pub fn shape(&self, v: &Value) -> Shape<'a> {
        let Schema::Typed { defs, target, .. } = *self else {
            return match v {
                Value::Object(_) => Shape::Map(Schema::Deduced),
                _ => Shape::Leaf,
            };
        };
        let ty = target.get("type").and_then(Value::as_str);
        let props = target.get("properties").and_then(Value::as_object);
        let is_object = ty == Some("object") || props.is_some();
        let kind = match v {
            Value::Object(_) => Kind::Object,
            Value::Array(_) => Kind::Array,
            Value::Null if is_object => Kind::Object,
            Value::Null if ty == Some("array") => Kind::Array,
            _ => Kind::Other,
        };
        match kind {
            Kind::Object if is_object => {
                if self.ext_str("x-kubernetes-map-type") == Some("atomic") {
                    Shape::Leaf
                } else if props.is_some() {
                    Shape::Struct
                } else if let Some(elem) =
                    target.get("additionalProperties").filter(|a| a.is_object())
                {
                    Shape::Map(Schema::node(defs, elem))
                } else {
                    Shape::Leaf
                }
            }
            Kind::Array if ty == Some("array") => {
                let Some(items) = target.get("items") else {
                    return Shape::Leaf;
                };
                let elem = Schema::node(defs, items);
                let scalar_items = !matches!(elem, Schema::Typed { target, .. }
                    if target.get("type").and_then(Value::as_str) == Some("object") || target.get("properties").is_some());
                match self.ext_str("x-kubernetes-list-type") {
                    Some("atomic") => Shape::Leaf,
                    Some("set") => Shape::List(elem, ListKind::Set),
                    Some("map") => {
                        let keys: Vec<&str> = self
                            .ext("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|k| k.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        if keys.is_empty() {
                            Shape::Leaf
                        } else {
                            Shape::List(elem, ListKind::Keys(keys))
                        }
                    }
                    Some(_) => Shape::Leaf,
                    None => match self.ext_str("x-kubernetes-patch-strategy") {
                        Some(s) if s.split(',').any(|p| p == "merge") => {
                            match self.ext_str("x-kubernetes-patch-merge-key") {
                                Some(key) => Shape::List(elem, ListKind::Keys(vec![key])),
                                None if scalar_items => Shape::List(elem, ListKind::Set),
                                None => Shape::List(elem, ListKind::Index),
                            }
                        }
                        _ => Shape::Leaf,
                    },
                }
            }
            _ => Shape::Leaf,
        }
    }

    /// The definition name this schema refers to (without the `io.k8s.` prefix), if any.
    pub fn ref_name(&self) -> Option<&'a str> {
        match self {
            Schema::Typed { outer, .. } => outer
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
                .map(|n| n.strip_prefix("io.k8s.").unwrap_or(n)),
            Schema::Deduced => None,
        }
    }

    /// The names of a struct's required fields.
    pub fn required(&self) -> Vec<&'a str> {
        match self {
            Schema::Typed { target, .. } => target
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
            Schema::Deduced => Vec::new(),
        }
    }

    /// Whether values of this schema are granular structs.
    pub fn is_struct(&self) -> bool {
        matches!(self.shape(&Value::Null), Shape::Struct)
    }

    /// The schema of a struct's field; `None` when the schema does not declare it.
    pub fn field(&self, name: &str) -> Option<Schema<'a>> {
        match *self {
            Schema::Typed { defs, target, .. } => target
                .get("properties")
                .and_then(|p| p.get(name))
                .map(|node| Schema::node(defs, node)),
            Schema::Deduced => Some(Schema::Deduced),
        }
    }
}

/// The path element of a granular list's element.
pub fn item_element(
    kind: &ListKind<'_>,
    index: usize,
    item: &Value,
) -> Result<PathElement, String> {
    match kind {
        ListKind::Set => Ok(PathElement::Value(item.clone())),
        ListKind::Index => Ok(PathElement::Index(index)),
        ListKind::Keys(keys) => {
            let Value::Object(obj) = item else {
                return Err(
                    "associative list with keys has an element that is not a map type".into(),
                );
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match obj.get(*key) {
                    Some(v) => v.clone(),
                    None => match KEY_DEFAULTS.iter().find(|(k, _)| k == key) {
                        Some((_, d)) => Value::String((*d).into()),
                        None => {
                            return Err(format!(
                                "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                            ));
                        }
                    },
                };
                fields.push((key.to_string(), value));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> &'static Map<String, Value> {
        crate::openapi::schemas()
    }

    fn kind(group: &str, version: &str, kind: &str) -> Schema<'static> {
        let name = crate::openapi::kind_schema_name(group, version, kind).expect("served kind");
        Schema::definition(defs(), &name).expect("definition")
    }

    fn descend(mut s: Schema<'static>, fields: &[&str]) -> Schema<'static> {
        for f in fields {
            s = match s.shape(&json!({})) {
                Shape::Struct => s.field(f).unwrap_or_else(|| panic!("no field {f}")),
                _ => panic!("not a struct at {f}"),
            };
        }
        s
    }

    #[test]
    fn pod_spec_lists_are_keyed_by_their_markers() {
        let spec = descend(kind("", "v1", "Pod"), &["spec"]);
        let Shape::List(elem, ListKind::Keys(keys)) =
            spec.field("containers").unwrap().shape(&json!([]))
        else {
            panic!("containers should be a map list");
        };
        assert_eq!(keys, ["name"]);
        let Shape::List(_, ListKind::Keys(keys)) = elem.field("ports").unwrap().shape(&json!([]))
        else {
            panic!("ports should be a map list");
        };
        assert_eq!(keys, ["containerPort", "protocol"]);
        assert!(
            matches!(elem.field("args").unwrap().shape(&json!([])), Shape::Leaf),
            "args are atomic"
        );
        assert!(matches!(
            spec.field("tolerations").unwrap().shape(&json!([])),
            Shape::Leaf
        ));
        assert!(
            matches!(
                spec.field("nodeSelector").unwrap().shape(&json!({})),
                Shape::Leaf
            ),
            "atomic map"
        );
    }

    #[test]
    fn maps_structs_and_atomic_structs() {
        let meta = descend(kind("apps", "v1", "Deployment"), &["metadata"]);
        assert!(matches!(meta.shape(&json!({})), Shape::Struct));
        assert!(matches!(
            meta.field("labels").unwrap().shape(&json!({})),
            Shape::Map(_)
        ));
        assert!(matches!(
            meta.field("finalizers").unwrap().shape(&json!([])),
            Shape::List(_, ListKind::Set)
        ));
        let spec = descend(kind("apps", "v1", "Deployment"), &["spec"]);
        assert!(
            matches!(
                spec.field("selector").unwrap().shape(&json!({})),
                Shape::Leaf
            ),
            "LabelSelector is atomic"
        );
        assert!(matches!(
            spec.field("replicas").unwrap().shape(&json!(1)),
            Shape::Leaf
        ));
        assert!(spec.field("nope").is_none());
        // A property-level granular marker wins over the referenced schema's atomic one.
        let pv = descend(kind("", "v1", "PersistentVolume"), &["spec"]);
        assert!(matches!(
            pv.field("claimRef").unwrap().shape(&json!({})),
            Shape::Struct
        ));
        // Values that do not fit the schema are leaves.
        assert!(matches!(spec.shape(&json!("x")), Shape::Leaf));
    }

    #[test]
    fn item_keys() {
        let kind = ListKind::Keys(vec!["containerPort", "protocol"]);
        let pe = item_element(&kind, 0, &json!({"containerPort": 80})).unwrap();
        assert_eq!(pe.to_key(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        let kind = ListKind::Keys(vec!["name"]);
        let err = item_element(&kind, 0, &json!({"image": "x"})).unwrap_err();
        assert!(err.contains("omits key field \"name\""), "{err}");
        assert!(item_element(&kind, 0, &json!("x")).is_err());
    }
}
