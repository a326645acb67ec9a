//! Builders for pods and nodes in unit tests (upstream's st.MakePod()/st.MakeNode()).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerImage, ContainerPort, Node, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus, Pod, PodAffinity,
    PodAffinityTerm, PodAntiAffinity, PodSpec, PreferredSchedulingTerm, ResourceRequirements,
    Taint, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::cache::Snapshot;
use crate::types::{LABEL_HOSTNAME, NodeInfo, PodInfo};

pub fn q(s: &str) -> Quantity {
    Quantity(s.to_string())
}

pub fn pod_info(p: Pod) -> PodInfo {
    let prio = p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    PodInfo::new(Arc::new(p), prio)
}

fn reqs(cpu: &str, mem: &str) -> Option<ResourceRequirements> {
    let mut m = BTreeMap::new();
    if !cpu.is_empty() {
        m.insert("cpu".to_string(), q(cpu));
    }
    if !mem.is_empty() {
        m.insert("memory".to_string(), q(mem));
    }
    Some(ResourceRequirements {
        requests: Some(m),
        ..Default::default()
    })
}

pub fn selector(kv: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

pub struct PodBuilder(Pod);

impl PodBuilder {
    pub fn new(name: &str) -> Self {
        PodBuilder(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("img".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        })
    }
    fn spec(&mut self) -> &mut PodSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }
    fn affinity(&mut self) -> &mut Affinity {
        self.spec().affinity.get_or_insert_with(Default::default)
    }
    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.into());
        self
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }
    pub fn node(mut self, n: &str) -> Self {
        self.spec().node_name = Some(n.into());
        self
    }
    pub fn priority(mut self, p: i32) -> Self {
        self.spec().priority = Some(p);
        self
    }
    /// Replace the default container on first call, add more after.
    pub fn container(mut self, cpu: &str, mem: &str) -> Self {
        let first = self.spec().containers.len() == 1
            && self.spec().containers[0].resources.is_none()
            && self.spec().containers[0].name == "c";
        let c = Container {
            name: format!("c{}", self.spec().containers.len()),
            image: Some("img".into()),
            resources: reqs(cpu, mem),
            ..Default::default()
        };
        if first {
            self.spec().containers[0] = c;
        } else {
            self.spec().containers.push(c);
        }
        self
    }
    pub fn image(mut self, image: &str) -> Self {
        let n = self.spec().containers.len();
        self.spec().containers.push(Container {
            name: format!("i{n}"),
            image: Some(image.into()),
            ..Default::default()
        });
        self
    }
    pub fn init_container(mut self, cpu: &str, mem: &str) -> Self {
        let c = Container {
            name: "init".into(),
            resources: reqs(cpu, mem),
            ..Default::default()
        };
        self.spec()
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(c);
        self
    }
    pub fn sidecar(mut self, cpu: &str) -> Self {
        let c = Container {
            name: "side".into(),
            resources: reqs(cpu, ""),
            restart_policy: Some("Always".into()),
            ..Default::default()
        };
        self.spec()
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(c);
        self
    }
    pub fn overhead(mut self, cpu: &str) -> Self {
        self.spec().overhead = Some([("cpu".to_string(), q(cpu))].into());
        self
    }
    pub fn host_port(mut self, port: i32) -> Self {
        let c = &mut self.spec().containers[0];
        c.ports.get_or_insert_with(Vec::new).push(ContainerPort {
            container_port: port,
            host_port: Some(port),
            ..Default::default()
        });
        self
    }
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.spec()
            .node_selector
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }
    pub fn required_node_affinity(mut self, key: &str, op: &str, values: &[&str]) -> Self {
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            }]),
            ..Default::default()
        };
        let na = self
            .affinity()
            .node_affinity
            .get_or_insert_with(NodeAffinity::default);
        na.required_during_scheduling_ignored_during_execution
            .get_or_insert_with(|| NodeSelector {
                node_selector_terms: vec![],
            })
            .node_selector_terms
            .push(term);
        self
    }
    pub fn preferred_node_affinity(mut self, weight: i32, key: &str, values: &[&str]) -> Self {
        let pref = PreferredSchedulingTerm {
            weight,
            preference: NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: key.into(),
                    operator: "In".into(),
                    values: Some(values.iter().map(|s| s.to_string()).collect()),
                }]),
                ..Default::default()
            },
        };
        let na = self
            .affinity()
            .node_affinity
            .get_or_insert_with(NodeAffinity::default);
        na.preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(pref);
        self
    }
    pub fn toleration(mut self, key: &str, op: &str, value: &str, effect: &str) -> Self {
        self.spec()
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some(key.into()),
                operator: Some(op.into()),
                value: (!value.is_empty()).then(|| value.into()),
                effect: (!effect.is_empty()).then(|| effect.into()),
                ..Default::default()
            });
        self
    }
    fn term(kv: &[(&str, &str)], topology: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(selector(kv)),
            topology_key: topology.into(),
            ..Default::default()
        }
    }
    pub fn pod_affinity(mut self, kv: &[(&str, &str)], topology: &str) -> Self {
        let t = Self::term(kv, topology);
        let pa = self
            .affinity()
            .pod_affinity
            .get_or_insert_with(PodAffinity::default);
        pa.required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(t);
        self
    }
    pub fn pod_anti_affinity(mut self, kv: &[(&str, &str)], topology: &str) -> Self {
        let t = Self::term(kv, topology);
        let pa = self
            .affinity()
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default);
        pa.required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(t);
        self
    }
    pub fn preferred_pod_affinity(
        mut self,
        weight: i32,
        kv: &[(&str, &str)],
        topology: &str,
    ) -> Self {
        let t = WeightedPodAffinityTerm {
            weight,
            pod_affinity_term: Self::term(kv, topology),
        };
        let pa = self
            .affinity()
            .pod_affinity
            .get_or_insert_with(PodAffinity::default);
        pa.preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(t);
        self
    }
    pub fn preferred_pod_anti_affinity(
        mut self,
        weight: i32,
        kv: &[(&str, &str)],
        topology: &str,
    ) -> Self {
        let t = WeightedPodAffinityTerm {
            weight,
            pod_affinity_term: Self::term(kv, topology),
        };
        let pa = self
            .affinity()
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default);
        pa.preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(t);
        self
    }
    pub fn spread(mut self, max_skew: i32, key: &str, when: &str, kv: &[(&str, &str)]) -> Self {
        self.spec()
            .topology_spread_constraints
            .get_or_insert_with(Vec::new)
            .push(TopologySpreadConstraint {
                max_skew,
                topology_key: key.into(),
                when_unsatisfiable: when.into(),
                label_selector: Some(selector(kv)),
                ..Default::default()
            });
        self
    }
    pub fn scheduling_gate(mut self, name: &str) -> Self {
        self.spec()
            .scheduling_gates
            .get_or_insert_with(Vec::new)
            .push(k8s_openapi::api::core::v1::PodSchedulingGate { name: name.into() });
        self
    }
    pub fn terminating(mut self) -> Self {
        self.0.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        self
    }
    pub fn build(self) -> Pod {
        self.0
    }
    pub fn info(self) -> Arc<PodInfo> {
        Arc::new(pod_info(self.0))
    }
}

pub struct NodeBuilder(Node);

impl NodeBuilder {
    pub fn new(name: &str) -> Self {
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_HOSTNAME.to_string(), name.to_string());
        NodeBuilder(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some([("pods".to_string(), q("110"))].into()),
                ..Default::default()
            }),
        })
    }
    fn alloc(&mut self) -> &mut BTreeMap<String, Quantity> {
        self.0
            .status
            .get_or_insert_with(Default::default)
            .allocatable
            .get_or_insert_with(Default::default)
    }
    pub fn cpu(mut self, c: &str) -> Self {
        self.alloc().insert("cpu".into(), q(c));
        self
    }
    pub fn memory(mut self, m: &str) -> Self {
        self.alloc().insert("memory".into(), q(m));
        self
    }
    pub fn pods(mut self, n: &str) -> Self {
        self.alloc().insert("pods".into(), q(n));
        self
    }
    pub fn capacity(self, cpu: &str, mem: &str) -> Self {
        self.cpu(cpu).memory(mem)
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }
    pub fn taint(mut self, k: &str, v: &str, effect: &str) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(Taint {
                key: k.into(),
                value: (!v.is_empty()).then(|| v.into()),
                effect: effect.into(),
                ..Default::default()
            });
        self
    }
    pub fn unschedulable(mut self) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        self
    }
    pub fn image(mut self, name: &str, size: i64) -> Self {
        self.0
            .status
            .get_or_insert_with(Default::default)
            .images
            .get_or_insert_with(Vec::new)
            .push(ContainerImage {
                names: Some(vec![name.into()]),
                size_bytes: Some(size),
            });
        self
    }
    pub fn build(self) -> Node {
        self.0
    }
    pub fn info(self) -> NodeInfo {
        NodeInfo::from_node(Arc::new(self.0))
    }
}

/// A snapshot of `nodes` with `pods` placed on their `spec.nodeName`.
pub fn snapshot(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
    let mut c = crate::cache::Cache::default();
    for n in nodes {
        c.add_node(Arc::new(n));
    }
    for p in pods {
        c.add_pod(Arc::new(pod_info(p)));
    }
    std::mem::take(&mut c.snap)
}
