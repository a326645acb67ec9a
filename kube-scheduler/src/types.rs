//! The scheduler's pre-digested views of pods and nodes. Every scheduling cycle looks at
//! thousands of nodes, so quantities, selectors, affinity terms and ports are parsed once when
//! an object enters the cache (here), never in the filter/score hot loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::selector::{LabelSelectorExt, Selector};

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// Default requests used for scoring pods that request nothing (upstream's non-zero defaults).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

pub type Labels = BTreeMap<String, String>;

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The next node generation; never repeats within the process.
pub fn next_generation() -> u64 {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Parse a quantity into its value in milli-units (cpu), rounding up like Go's `MilliValue`.
pub fn milli_value(q: &Quantity) -> i64 {
    scaled(q, 1000.0)
}

/// Parse a quantity into its integer value, rounding up like Go's `Value`.
pub fn value(q: &Quantity) -> i64 {
    scaled(q, 1.0)
}

fn scaled(q: &Quantity, factor: f64) -> i64 {
    let Ok(p) = kube_quantity::ParsedQuantity::try_from(q) else {
        return 0;
    };
    let Some(f) = p.to_bytes_f64() else { return 0 };
    let v = f * factor;
    let r = v.round();
    // Float noise from decimal suffixes must not round 100m up to 101m.
    if (v - r).abs() < 1e-6 {
        r as i64
    } else {
        v.ceil() as i64
    }
}

/// Requested or allocatable resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages and anything else countable, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resource {
        let mut r = Resource::default();
        if let Some(list) = list {
            for (name, q) in list {
                r.set(name, q);
            }
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = milli_value(q),
            "memory" => self.memory = value(q),
            "ephemeral-storage" => self.ephemeral_storage = value(q),
            "pods" => self.allowed_pod_number = value(q),
            other => {
                self.scalar.insert(other.to_string(), value(q));
            }
        }
    }

    /// The amount of the named resource.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Element-wise maximum.
    pub fn max_with(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Requests of one container: explicit requests, falling back to limits (API defaulting).
fn container_requests(c: &k8s_openapi::api::core::v1::Container) -> Resource {
    let res = c.resources.as_ref();
    let mut r = Resource::from_list(res.and_then(|r| r.limits.as_ref()));
    r.allowed_pod_number = 0;
    if let Some(req) = res.and_then(|r| r.requests.as_ref()) {
        for (name, q) in req {
            r.set(name, q);
        }
    }
    r
}

/// A pod's effective requests as upstream computes them: the sum of the app (and sidecar)
/// containers, at least the largest init container's needs at its point in the sequence,
/// plus the pod overhead. Also returns the non-zero cpu/memory used for scoring.
pub fn pod_requests(pod: &Pod) -> (Resource, i64, i64) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resource::default(), 0, 0);
    };
    let mut reqs = Resource::default();
    let (mut nz_cpu, mut nz_mem) = (0i64, 0i64);
    for c in &spec.containers {
        let r = container_requests(c);
        nz_cpu += if r.milli_cpu == 0 {
            DEFAULT_MILLI_CPU_REQUEST
        } else {
            r.milli_cpu
        };
        nz_mem += if r.memory == 0 {
            DEFAULT_MEMORY_REQUEST
        } else {
            r.memory
        };
        reqs.add(&r);
    }
    // Restartable init containers (sidecars) run alongside everything after them.
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    let (mut nz_init_cpu, mut nz_init_mem) = (0i64, 0i64);
    let (mut nz_side_cpu, mut nz_side_mem) = (0i64, 0i64);
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        let c_cpu = if r.milli_cpu == 0 {
            DEFAULT_MILLI_CPU_REQUEST
        } else {
            r.milli_cpu
        };
        let c_mem = if r.memory == 0 {
            DEFAULT_MEMORY_REQUEST
        } else {
            r.memory
        };
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            nz_side_cpu += c_cpu;
            nz_side_mem += c_mem;
            let mut at = sidecars.clone();
            at.allowed_pod_number = 0;
            init_max.max_with(&at);
            nz_init_cpu = nz_init_cpu.max(nz_side_cpu);
            nz_init_mem = nz_init_mem.max(nz_side_mem);
        } else {
            let mut at = sidecars.clone();
            at.add(&r);
            init_max.max_with(&at);
            nz_init_cpu = nz_init_cpu.max(nz_side_cpu + c_cpu);
            nz_init_mem = nz_init_mem.max(nz_side_mem + c_mem);
        }
    }
    reqs.add(&sidecars);
    nz_cpu += nz_side_cpu;
    nz_mem += nz_side_mem;
    reqs.max_with(&init_max);
    nz_cpu = nz_cpu.max(nz_init_cpu);
    nz_mem = nz_mem.max(nz_init_mem);
    if let Some(overhead) = spec.overhead.as_ref() {
        let o = Resource::from_list(Some(overhead));
        reqs.add(&o);
        nz_cpu += o.milli_cpu;
        nz_mem += o.memory;
    }
    (reqs, nz_cpu, nz_mem)
}

/// One pod-affinity term with its selectors compiled.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Namespaces the term selects by name (the pod's own when neither list nor selector is set).
    pub namespaces: Vec<String>,
    pub namespace_selector: Option<Selector>,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn from_api(
        t: &k8s_openapi::api::core::v1::PodAffinityTerm,
        pod: &Pod,
        pod_labels: &Labels,
    ) -> AffinityTerm {
        let own_ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut namespaces = t.namespaces.clone().unwrap_or_default();
        let namespace_selector = t.namespace_selector.as_ref().map(|s| s.compile());
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(own_ns);
        }
        let mut selector = t
            .label_selector
            .as_ref()
            .map(LabelSelector::compile)
            .unwrap_or_else(Selector::nothing);
        // matchLabelKeys / mismatchLabelKeys add the incoming pod's own label values.
        for k in t.match_label_keys.iter().flatten() {
            if let Some(v) = pod_labels.get(k) {
                selector.add_in(k, v);
            }
        }
        for k in t.mismatch_label_keys.iter().flatten() {
            if let Some(v) = pod_labels.get(k) {
                selector.add_not_in(k, v);
            }
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: t.topology_key.clone(),
        }
    }

    /// Whether `pod` (with its namespace's labels) is selected by this term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches(ns_labels.unwrap_or(&EMPTY_LABELS)));
        ns_ok && self.selector.matches(&pod.labels)
    }
}

static EMPTY_LABELS: Labels = BTreeMap::new();

#[derive(Debug, Clone)]
pub struct WeightedAffinityTerm {
    pub weight: i64,
    pub term: AffinityTerm,
}

/// A host port a container asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// A pod as the scheduler sees it, parsed once.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resource,
    pub non_zero_cpu: i64,
    pub non_zero_mem: i64,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub node_name: String,
    pub scheduler_name: String,
    pub terminating: bool,
}

impl PodInfo {
    /// Build from the API object; `priority` is the resolved priority (spec.priority, else the
    /// PriorityClass's value).
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let (requests, nz_cpu, nz_mem) = pod_requests(&pod);
        let spec = pod.spec.as_ref();
        let aff = spec.and_then(|s| s.affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        let req = |v: Option<&Vec<k8s_openapi::api::core::v1::PodAffinityTerm>>| {
            v.into_iter()
                .flatten()
                .map(|t| AffinityTerm::from_api(t, &pod, &labels))
                .collect::<Vec<_>>()
        };
        let pref = |v: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            v.into_iter()
                .flatten()
                .map(|w| WeightedAffinityTerm {
                    weight: w.weight as i64,
                    term: AffinityTerm::from_api(&w.pod_affinity_term, &pod, &labels),
                })
                .collect::<Vec<_>>()
        };
        let required_affinity = req(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = req(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_affinity = pref(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = pref(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let mut host_ports = Vec::new();
        if let Some(s) = spec {
            let restartable_inits = s
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in s.containers.iter().chain(restartable_inits) {
                for p in c.ports.iter().flatten() {
                    if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                        let ip = p
                            .host_ip
                            .clone()
                            .filter(|i| !i.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into());
                        let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                        host_ports.push(HostPort {
                            ip,
                            protocol,
                            port: hp,
                        });
                    }
                }
            }
        }
        PodInfo {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            priority,
            requests,
            non_zero_cpu: nz_cpu,
            non_zero_mem: nz_mem,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            host_ports,
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
            node_name: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            scheduler_name: spec
                .and_then(|s| s.scheduler_name.clone())
                .unwrap_or_else(|| "default-scheduler".into()),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            labels,
            pod,
        }
    }

    /// `namespace/name`, as upstream's messages and events print pods.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    pub fn spec(&self) -> Option<&k8s_openapi::api::core::v1::PodSpec> {
        self.pod.spec.as_ref()
    }

    pub fn nominated_node_name(&self) -> Option<&str> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// Start time, for preemption's tie-breaking (later-started victims are preferred).
    pub fn start_time(&self) -> Option<jiff_ts::Timestamp> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
    }

    /// A copy of this pod bound to `node` (the assumed pod the cache holds until the watch
    /// confirms the binding).
    pub fn assumed_on(&self, node: &str) -> PodInfo {
        let mut pod = (*self.pod).clone();
        if let Some(s) = pod.spec.as_mut() {
            s.node_name = Some(node.to_string());
        }
        let mut pi = PodInfo::new(Arc::new(pod), self.priority);
        pi.node_name = node.to_string();
        pi
    }
}

/// Re-export of the timestamp type k8s-openapi uses.
pub mod jiff_ts {
    pub use k8s_openapi::jiff::Timestamp;
}

/// A node plus everything scheduled or assumed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while only pods referring to the node have been seen.
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resource,
    pub requested: Resource,
    pub non_zero_cpu: i64,
    pub non_zero_mem: i64,
    pub pods: Vec<Arc<PodInfo>>,
    /// Pods with any (anti-)affinity, for InterPodAffinity's pre-computations.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub used_ports: HashMap<HostPort, u32>,
    /// Image name (every tag/digest alias) to size in bytes.
    pub images: HashMap<String, i64>,
    /// A fresh value from [`next_generation`] on every change, unique across all nodes, so
    /// `generation` alone identifies one state of one node (what [`crate::memo`] relies on).
    pub generation: u64,
}

impl NodeInfo {
    pub fn empty(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            node: None,
            labels: Labels::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable: Resource::default(),
            requested: Resource::default(),
            non_zero_cpu: 0,
            non_zero_mem: 0,
            pods: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            used_ports: HashMap::new(),
            images: HashMap::new(),
            generation: next_generation(),
        }
    }

    pub fn from_node(node: Arc<Node>) -> NodeInfo {
        let mut ni = NodeInfo::empty(node.metadata.name.as_deref().unwrap_or_default());
        ni.set_node(node);
        ni
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(
            status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref())),
        );
        self.images.clear();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for n in img.names.iter().flatten() {
                self.images
                    .insert(normalize_image(n), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
        self.generation = next_generation();
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.requested.allowed_pod_number = 0;
        self.non_zero_cpu += pod.non_zero_cpu;
        self.non_zero_mem += pod.non_zero_mem;
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        for hp in &pod.host_ports {
            *self.used_ports.entry(hp.clone()).or_default() += 1;
        }
        self.pods.push(pod);
        self.generation = next_generation();
    }

    /// Remove the pod with `uid`; returns whether it was there.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.requested.allowed_pod_number = 0;
        self.non_zero_cpu -= pod.non_zero_cpu;
        self.non_zero_mem -= pod.non_zero_mem;
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        for hp in &pod.host_ports {
            if let Some(c) = self.used_ports.get_mut(hp) {
                *c -= 1;
                if *c == 0 {
                    self.used_ports.remove(hp);
                }
            }
        }
        self.generation = next_generation();
        true
    }
}

/// Image names as the kubelet reports them: a reference without tag or digest means `:latest`.
pub fn normalize_image(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The first taint (with one of `effects`) that no toleration tolerates.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PodBuilder, q};

    #[test]
    fn quantities_round_up_like_go() {
        assert_eq!(milli_value(&q("100m")), 100);
        assert_eq!(milli_value(&q("1.5")), 1500);
        assert_eq!(milli_value(&q("2")), 2000);
        assert_eq!(milli_value(&q("0.0001")), 1);
        assert_eq!(value(&q("1Gi")), 1 << 30);
        assert_eq!(value(&q("1k")), 1000);
        assert_eq!(value(&q("500M")), 500_000_000);
        assert_eq!(value(&q("garbage")), 0);
    }

    #[test]
    fn pod_requests_include_init_sidecars_and_overhead() {
        let pod = PodBuilder::new("p")
            .container("1", "1Gi")
            .container("500m", "")
            .build();
        let (r, nzc, nzm) = pod_requests(&pod);
        assert_eq!(r.milli_cpu, 1500);
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(nzc, 1500);
        assert_eq!(nzm, (1 << 30) + DEFAULT_MEMORY_REQUEST);

        // An init container larger than the app containers dominates.
        let pod = PodBuilder::new("p")
            .container("1", "")
            .init_container("3", "")
            .build();
        assert_eq!(pod_requests(&pod).0.milli_cpu, 3000);
        // A sidecar adds to the app containers.
        let pod = PodBuilder::new("p")
            .container("1", "")
            .sidecar("500m")
            .build();
        assert_eq!(pod_requests(&pod).0.milli_cpu, 1500);
        // Overhead is added on top.
        let pod = PodBuilder::new("p")
            .container("1", "")
            .overhead("250m")
            .build();
        assert_eq!(pod_requests(&pod).0.milli_cpu, 1250);
    }

    #[test]
    fn limits_default_requests() {
        let mut pod = PodBuilder::new("p").build();
        let c = &mut pod.spec.as_mut().unwrap().containers[0];
        c.resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some([("cpu".to_string(), q("2"))].into()),
            ..Default::default()
        });
        assert_eq!(pod_requests(&pod).0.milli_cpu, 2000);
    }

    #[test]
    fn toleration_matching() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = |k: &str, op: &str, v: &str, e: &str| Toleration {
            key: Some(k.into()),
            operator: Some(op.into()),
            value: Some(v.into()),
            effect: Some(e.into()),
            ..Default::default()
        };
        assert!(tolerates(&t("k", "Equal", "v", "NoSchedule"), &taint));
        assert!(tolerates(&t("k", "Exists", "", ""), &taint));
        assert!(tolerates(&t("", "Exists", "", ""), &taint));
        assert!(!tolerates(&t("k", "Equal", "x", "NoSchedule"), &taint));
        assert!(!tolerates(&t("k", "Equal", "v", "NoExecute"), &taint));
        assert!(!tolerates(&t("other", "Exists", "", ""), &taint));
    }

    #[test]
    fn node_info_accounting() {
        let mut ni = NodeInfo::empty("n");
        let p = Arc::new(PodInfo::new(
            Arc::new(
                PodBuilder::new("a")
                    .container("1", "1Gi")
                    .host_port(80)
                    .build(),
            ),
            0,
        ));
        ni.add_pod(p.clone());
        assert_eq!(ni.requested.milli_cpu, 1000);
        assert_eq!(ni.used_ports.len(), 1);
        assert!(ni.remove_pod(&p.uid));
        assert_eq!(ni.requested.milli_cpu, 0);
        assert!(ni.used_ports.is_empty());
        assert!(!ni.remove_pod(&p.uid));
    }

    #[test]
    fn image_names_normalize() {
        assert_eq!(normalize_image("nginx"), "nginx:latest");
        assert_eq!(normalize_image("nginx:1.2"), "nginx:1.2");
        assert_eq!(
            normalize_image("localhost:5000/nginx"),
            "localhost:5000/nginx:latest"
        );
        assert_eq!(normalize_image("a@sha256:abc"), "a@sha256:abc");
    }
}
