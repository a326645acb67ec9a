//! Label selectors and node selectors compiled into a form that is cheap to evaluate millions
//! of times per second (the filter loop matches them against every node and pod).

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::types::Labels;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone)]
struct Req {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Req {
    fn matches(&self, value: Option<&String>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A compiled label selector: all requirements must hold. `nothing` matches no object (a nil
/// selector in the API), the empty selector matches everything.
#[derive(Debug, Clone)]
pub struct Selector {
    reqs: Vec<Req>,
    nothing: bool,
}

impl Selector {
    pub fn everything() -> Selector {
        Selector {
            reqs: Vec::new(),
            nothing: false,
        }
    }

    pub fn nothing() -> Selector {
        Selector {
            reqs: Vec::new(),
            nothing: true,
        }
    }

    pub fn from_map(m: &Labels) -> Selector {
        let mut s = Selector::everything();
        for (k, v) in m {
            s.add_in(k, v);
        }
        s
    }

    pub fn add_in(&mut self, key: &str, value: &str) {
        self.reqs.push(Req {
            key: key.to_string(),
            op: Op::In,
            values: vec![value.to_string()],
        });
    }

    pub fn add_not_in(&mut self, key: &str, value: &str) {
        self.reqs.push(Req {
            key: key.to_string(),
            op: Op::NotIn,
            values: vec![value.to_string()],
        });
    }

    /// AND another selector's requirements into this one.
    pub fn extend(&mut self, other: Selector) {
        self.nothing |= other.nothing;
        self.reqs.extend(other.reqs);
    }

    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    pub fn is_empty(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels.get(&r.key)))
    }
}

/// Compile k8s-openapi's `LabelSelector`.
pub trait LabelSelectorExt {
    fn compile(&self) -> Selector;
}

impl LabelSelectorExt for LabelSelector {
    fn compile(&self) -> Selector {
        let mut s = Selector::everything();
        for (k, v) in self.match_labels.iter().flatten() {
            s.add_in(k, v);
        }
        for e in self.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                // An invalid operator makes the selector match nothing, as upstream's conversion fails.
                _ => return Selector::nothing(),
            };
            s.reqs.push(Req {
                key: e.key.clone(),
                op,
                values: e.values.clone().unwrap_or_default(),
            });
        }
        s
    }
}

/// One node selector term: label expressions and `metadata.name` field expressions, ANDed.
#[derive(Debug, Clone)]
pub struct NodeTerm {
    labels: Vec<Req>,
    fields: Vec<Req>,
    /// A term with an unknown operator or no requirements matches no node.
    never: bool,
}

fn node_reqs(reqs: Option<&Vec<NodeSelectorRequirement>>) -> Option<Vec<Req>> {
    let mut out = Vec::new();
    for r in reqs.into_iter().flatten() {
        let op = match r.operator.as_str() {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        };
        out.push(Req {
            key: r.key.clone(),
            op,
            values: r.values.clone().unwrap_or_default(),
        });
    }
    Some(out)
}

impl NodeTerm {
    pub fn compile(t: &NodeSelectorTerm) -> NodeTerm {
        let labels = node_reqs(t.match_expressions.as_ref());
        let fields = node_reqs(t.match_fields.as_ref());
        match (labels, fields) {
            (Some(labels), Some(fields)) => {
                let never = labels.is_empty() && fields.is_empty();
                NodeTerm {
                    labels,
                    fields,
                    never,
                }
            }
            _ => NodeTerm {
                labels: Vec::new(),
                fields: Vec::new(),
                never: true,
            },
        }
    }

    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if self.never {
            return false;
        }
        let name = node_name.to_string();
        self.labels.iter().all(|r| r.matches(labels.get(&r.key)))
            && self
                .fields
                .iter()
                .all(|r| r.key == "metadata.name" && r.matches(Some(&name)))
    }

    /// The node names this term can only match, if it pins `metadata.name` with `In`.
    pub fn pinned_names(&self) -> Option<Vec<String>> {
        self.fields
            .iter()
            .find(|r| r.key == "metadata.name" && r.op == Op::In)
            .map(|r| r.values.clone())
    }
}

/// A required node selector: terms are ORed.
#[derive(Debug, Clone)]
pub struct CompiledNodeSelector {
    pub terms: Vec<NodeTerm>,
}

impl CompiledNodeSelector {
    pub fn compile(s: &NodeSelector) -> CompiledNodeSelector {
        CompiledNodeSelector {
            terms: s
                .node_selector_terms
                .iter()
                .map(NodeTerm::compile)
                .collect(),
        }
    }

    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        self.terms.iter().any(|t| t.matches(node_name, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_semantics() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        }
        .compile();
        assert!(sel.matches(&labels(&[("app", "web")])));
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!sel.matches(&labels(&[("app", "db")])));
        assert!(LabelSelector::default().compile().matches(&labels(&[])));
        assert!(!Selector::nothing().matches(&labels(&[])));
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Bogus".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(!bad.compile().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn node_terms_gt_lt_and_fields() {
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: "cores".into(),
                operator: "Gt".into(),
                values: Some(vec!["4".into()]),
            }]),
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec!["n1".into()]),
            }]),
        };
        let t = NodeTerm::compile(&term);
        assert!(t.matches("n1", &labels(&[("cores", "8")])));
        assert!(!t.matches("n1", &labels(&[("cores", "4")])));
        assert!(!t.matches("n2", &labels(&[("cores", "8")])));
        assert_eq!(t.pinned_names(), Some(vec!["n1".to_string()]));
        // An empty term matches nothing.
        assert!(!NodeTerm::compile(&NodeSelectorTerm::default()).matches("n1", &labels(&[])));
    }
}
