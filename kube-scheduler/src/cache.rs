//! The scheduler cache: every node with the pods bound to it, plus the pods the scheduler has
//! *assumed* onto a node (decided, binding in flight, watch not yet confirming). Counting
//! assumed pods is what keeps two back-to-back cycles from overcommitting a node between a
//! bind and its watch event. Also tracks nominated pods (preemptors waiting for victims to go).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::types::{LABEL_ZONE, Labels, NodeInfo, PodInfo};

/// What scheduling cycles read: the nodes in a stable order, and lookups plugins need.
#[derive(Default)]
pub struct Snapshot {
    pub nodes: Vec<NodeInfo>,
    pub index: HashMap<String, usize>,
    /// Image name to how many nodes have it (ImageLocality's spread factor).
    pub image_nodes: HashMap<String, usize>,
    pub namespaces: HashMap<String, Labels>,
    /// Bumped whenever `namespaces` changes (part of the memo keys of namespace-aware plugins).
    pub namespaces_generation: u64,
    /// Node name to pods nominated to it by preemption.
    pub nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn namespace_labels(&self, ns: &str) -> Option<&Labels> {
        self.namespaces.get(ns)
    }

    /// Pods nominated to `node` that a pod of `priority` must leave room for.
    pub fn nominated_for(&self, node: &str, priority: i32, except_uid: &str) -> Vec<Arc<PodInfo>> {
        self.nominated
            .get(node)
            .map(|v| {
                v.iter()
                    .filter(|p| p.priority >= priority && p.uid != except_uid)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Build from nodes and pods (tests and tools).
    pub fn from_parts(nodes: Vec<NodeInfo>) -> Snapshot {
        let mut c = Cache::default();
        for n in nodes {
            let pods = n.pods.clone();
            if let Some(node) = n.node.clone() {
                c.add_node(node);
            }
            for p in pods {
                c.add_pod(p);
            }
        }
        c.snap
    }
}

#[derive(Debug)]
struct PodState {
    node: String,
    assumed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("pod {0} is already in the cache")]
    AlreadyPresent(String),
    #[error("pod {0} has no node name")]
    NoNode(String),
}

/// The cache proper. Not thread-safe by itself: the scheduler keeps it behind one lock.
#[derive(Default)]
pub struct Cache {
    pub snap: Snapshot,
    /// Nodes we have seen pods for but no Node object (yet, or any more).
    ghosts: HashMap<String, NodeInfo>,
    pods: HashMap<String, PodState>,
    nominated_by_uid: HashMap<String, String>,
    /// Nodes were added, removed or changed zone since the last [`Cache::snapshot_for_cycle`].
    order_dirty: bool,
}

/// Upstream's zone key: region and zone labels (current or legacy beta names).
fn zone_key(ni: &NodeInfo) -> (String, String) {
    let get = |a: &str, b: &str| {
        ni.labels
            .get(a)
            .or_else(|| ni.labels.get(b))
            .cloned()
            .unwrap_or_default()
    };
    (
        get(
            "topology.kubernetes.io/region",
            "failure-domain.beta.kubernetes.io/region",
        ),
        get(LABEL_ZONE, "failure-domain.beta.kubernetes.io/zone"),
    )
}

impl Cache {
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// The snapshot with nodes interleaved across zones (first node of each zone, then the
    /// second of each, ...), as upstream's node tree lists them, so that a cycle that stops
    /// after the first feasible nodes (percentageOfNodesToScore) still sees every zone.
    pub fn snapshot_for_cycle(&mut self) -> &Snapshot {
        if self.order_dirty {
            self.order_dirty = false;
            let mut zones: Vec<((String, String), Vec<NodeInfo>)> = Vec::new();
            for ni in std::mem::take(&mut self.snap.nodes) {
                let key = zone_key(&ni);
                match zones.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push(ni),
                    None => zones.push((key, vec![ni])),
                }
            }
            let mut iters: Vec<_> = zones.into_iter().map(|(_, v)| v.into_iter()).collect();
            let mut out = Vec::with_capacity(self.snap.index.len());
            loop {
                let before = out.len();
                for it in iters.iter_mut() {
                    if let Some(ni) = it.next() {
                        out.push(ni);
                    }
                }
                if out.len() == before {
                    break;
                }
            }
            self.snap.index = out
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name.clone(), i))
                .collect();
            self.snap.nodes = out;
        }
        &self.snap
    }

    pub fn node_count(&self) -> usize {
        self.snap.nodes.len()
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    fn node_info_mut(&mut self, name: &str) -> &mut NodeInfo {
        if let Some(i) = self.snap.index.get(name) {
            return &mut self.snap.nodes[*i];
        }
        self.ghosts
            .entry(name.to_string())
            .or_insert_with(|| NodeInfo::empty(name))
    }

    fn count_images(&mut self, ni_images: &HashMap<String, i64>, delta: isize) {
        for img in ni_images.keys() {
            let e = self.snap.image_nodes.entry(img.clone()).or_default();
            *e = (*e as isize + delta).max(0) as usize;
            if *e == 0 {
                self.snap.image_nodes.remove(img);
            }
        }
    }

    /// Add or update a Node.
    pub fn add_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(i) = self.snap.index.get(&name).copied() {
            let zone = zone_key(&self.snap.nodes[i]);
            let old = std::mem::take(&mut self.snap.nodes[i].images);
            self.count_images(&old, -1);
            self.snap.nodes[i].set_node(node);
            let new = self.snap.nodes[i].images.clone();
            self.count_images(&new, 1);
            if zone_key(&self.snap.nodes[i]) != zone {
                self.order_dirty = true;
            }
            return;
        }
        let mut ni = self
            .ghosts
            .remove(&name)
            .unwrap_or_else(|| NodeInfo::empty(&name));
        ni.set_node(node);
        let imgs = ni.images.clone();
        self.count_images(&imgs, 1);
        self.snap.index.insert(name, self.snap.nodes.len());
        self.snap.nodes.push(ni);
        self.order_dirty = true;
    }

    pub fn update_node(&mut self, node: Arc<Node>) {
        self.add_node(node);
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.snap.index.remove(name) else {
            return;
        };
        self.order_dirty = true;
        let mut ni = self.snap.nodes.swap_remove(i);
        if i < self.snap.nodes.len() {
            let moved = self.snap.nodes[i].name.clone();
            self.snap.index.insert(moved, i);
        }
        let imgs = std::mem::take(&mut ni.images);
        self.count_images(&imgs, -1);
        if !ni.pods.is_empty() {
            ni.node = None;
            self.ghosts.insert(name.to_string(), ni);
        }
    }

    /// A bound pod from the watch (add or update). Confirms an assumed pod.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        if pod.node_name.is_empty() {
            return;
        }
        if let Some(st) = self.pods.remove(&pod.uid) {
            let node = st.node;
            self.node_info_mut(&node).remove_pod(&pod.uid);
            self.cleanup_ghost(&node);
        }
        self.remove_nomination(&pod.uid);
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: pod.node_name.clone(),
                assumed: false,
            },
        );
        let node = pod.node_name.clone();
        self.node_info_mut(&node).add_pod(pod);
    }

    pub fn update_pod(&mut self, pod: Arc<PodInfo>) {
        self.add_pod(pod);
    }

    /// A pod was deleted (or stopped counting: terminal phase).
    pub fn remove_pod(&mut self, uid: &str) {
        self.remove_nomination(uid);
        if let Some(st) = self.pods.remove(uid) {
            self.node_info_mut(&st.node).remove_pod(uid);
            self.cleanup_ghost(&st.node);
        }
    }

    fn cleanup_ghost(&mut self, node: &str) {
        if self.ghosts.get(node).is_some_and(|g| g.pods.is_empty()) {
            self.ghosts.remove(node);
        }
    }

    /// Account for `pod` (already carrying its chosen node) before the bind completes.
    pub fn assume(&mut self, pod: Arc<PodInfo>) -> Result<(), CacheError> {
        if pod.node_name.is_empty() {
            return Err(CacheError::NoNode(pod.key()));
        }
        if self.pods.contains_key(&pod.uid) {
            return Err(CacheError::AlreadyPresent(pod.key()));
        }
        self.remove_nomination(&pod.uid);
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: pod.node_name.clone(),
                assumed: true,
            },
        );
        let node = pod.node_name.clone();
        self.node_info_mut(&node).add_pod(pod);
        Ok(())
    }

    /// Undo [`Cache::assume`] after a failed bind. Does nothing if the watch already confirmed it.
    pub fn forget(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|s| s.assumed) {
            self.remove_pod(uid);
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|s| s.assumed)
    }

    /// Whether the pod is bound or assumed.
    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// Record (or clear, with `None`) the node a preemptor is nominated to.
    pub fn set_nominated(&mut self, pod: Arc<PodInfo>, node: Option<&str>) {
        self.remove_nomination(&pod.uid);
        if let Some(node) = node.filter(|n| !n.is_empty()) {
            self.nominated_by_uid
                .insert(pod.uid.clone(), node.to_string());
            self.snap
                .nominated
                .entry(node.to_string())
                .or_default()
                .push(pod);
        }
    }

    pub fn nominated_node(&self, uid: &str) -> Option<&str> {
        self.nominated_by_uid.get(uid).map(String::as_str)
    }

    fn remove_nomination(&mut self, uid: &str) {
        if let Some(node) = self.nominated_by_uid.remove(uid)
            && let Some(v) = self.snap.nominated.get_mut(&node)
        {
            v.retain(|p| p.uid != uid);
            if v.is_empty() {
                self.snap.nominated.remove(&node);
            }
        }
    }

    pub fn set_namespace(&mut self, name: &str, labels: Option<Labels>) {
        self.snap.namespaces_generation = crate::types::next_generation();
        match labels {
            Some(l) => {
                self.snap.namespaces.insert(name.to_string(), l);
            }
            None => {
                self.snap.namespaces.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, pod_info};

    #[test]
    fn cycles_see_nodes_interleaved_across_zones() {
        let mut c = Cache::default();
        for (n, z) in [
            ("a1", "a"),
            ("a2", "a"),
            ("a3", "a"),
            ("b1", "b"),
            ("b2", "b"),
            ("c1", "c"),
        ] {
            c.add_node(Arc::new(NodeBuilder::new(n).label(LABEL_ZONE, z).build()));
        }
        let names = |s: &Snapshot| s.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(c.snapshot_for_cycle()),
            ["a1", "b1", "c1", "a2", "b2", "a3"]
        );
        let snap = c.snapshot_for_cycle();
        assert!(
            snap.nodes
                .iter()
                .enumerate()
                .all(|(i, n)| snap.index[&n.name] == i)
        );
        // A node moving to another zone and a removal re-interleave.
        c.add_node(Arc::new(
            NodeBuilder::new("a3").label(LABEL_ZONE, "c").build(),
        ));
        c.remove_node("b2");
        assert_eq!(
            names(c.snapshot_for_cycle()),
            ["a1", "b1", "c1", "a2", "a3"]
        );
        assert_eq!(
            c.snapshot_for_cycle().get("a3").unwrap().labels[LABEL_ZONE],
            "c"
        );
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let mut c = Cache::default();
        c.add_node(Arc::new(NodeBuilder::new("n1").cpu("2").build()));
        let p = pod_info(PodBuilder::new("a").uid("u1").container("1", "").build());
        c.assume(Arc::new(p.assumed_on("n1"))).unwrap();
        assert!(c.is_assumed("u1"));
        assert_eq!(c.snapshot().get("n1").unwrap().requested.milli_cpu, 1000);
        assert!(
            c.assume(Arc::new(p.assumed_on("n1"))).is_err(),
            "double assume is refused"
        );
        c.forget("u1");
        assert_eq!(c.snapshot().get("n1").unwrap().requested.milli_cpu, 0);

        // Assume then confirm via the watch: counted once, no longer assumed; forget is a no-op.
        c.assume(Arc::new(p.assumed_on("n1"))).unwrap();
        c.add_pod(Arc::new(p.assumed_on("n1")));
        assert!(!c.is_assumed("u1"));
        c.forget("u1");
        let n = c.snapshot().get("n1").unwrap();
        assert_eq!((n.requested.milli_cpu, n.pods.len()), (1000, 1));
        c.remove_pod("u1");
        assert_eq!(c.snapshot().get("n1").unwrap().pods.len(), 0);
    }

    #[test]
    fn pods_before_their_node_and_node_removal() {
        let mut c = Cache::default();
        let p = pod_info(
            PodBuilder::new("a")
                .uid("u1")
                .node("n9")
                .container("1", "")
                .build(),
        );
        c.add_pod(Arc::new(p));
        assert_eq!(c.node_count(), 0);
        c.add_node(Arc::new(
            NodeBuilder::new("n9").cpu("4").image("img:1", 100).build(),
        ));
        assert_eq!(c.snapshot().get("n9").unwrap().requested.milli_cpu, 1000);
        assert_eq!(c.snapshot().image_nodes.get("img:1"), Some(&1));
        c.add_node(Arc::new(NodeBuilder::new("n8").cpu("4").build()));
        c.remove_node("n9");
        assert_eq!(c.node_count(), 1);
        assert!(c.snapshot().get("n8").is_some());
        assert!(c.snapshot().image_nodes.is_empty());
        // Re-adding the node brings its pods back.
        c.add_node(Arc::new(NodeBuilder::new("n9").cpu("4").build()));
        assert_eq!(c.snapshot().get("n9").unwrap().pods.len(), 1);
    }

    #[test]
    fn nominations() {
        let mut c = Cache::default();
        let p = Arc::new(pod_info(
            PodBuilder::new("a").uid("u1").priority(10).build(),
        ));
        c.set_nominated(p.clone(), Some("n1"));
        assert_eq!(c.snapshot().nominated_for("n1", 5, "x").len(), 1);
        assert_eq!(c.snapshot().nominated_for("n1", 20, "x").len(), 0);
        assert_eq!(c.snapshot().nominated_for("n1", 5, "u1").len(), 0);
        c.set_nominated(p, None);
        assert!(c.snapshot().nominated.is_empty());
    }
}
