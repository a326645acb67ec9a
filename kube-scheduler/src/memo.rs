//! Reuse of per-node plugin results across scheduling cycles.
//!
//! PodTopologySpread and InterPodAffinity count, every cycle, the pods on every node that match
//! the incoming pod's selectors: with 5000 nodes and 10000 pods that walk dominates the cycle.
//! The count on one node depends only on that node's pods and on what the plugin derives from
//! the incoming pod (its memo key). Node generations are unique across nodes and never reused
//! ([`crate::types::next_generation`]), so a value stored with a generation stays right until
//! that node changes; a cycle recomputes only the nodes changed since the last cycle with the
//! same key (usually the one node the previous pod of the same workload went to).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cache::Snapshot;
use crate::types::NodeInfo;

/// How many distinct keys (workloads) are remembered; the least recently used is dropped.
pub const DEFAULT_CAPACITY: usize = 16;

struct Entry<V> {
    /// Indexed like `Snapshot::nodes`: the generation the value was computed for.
    per_node: Vec<(u64, V)>,
    last_used: u64,
}

/// Per-node values of one plugin, keyed by a string the plugin derives from the incoming pod.
pub struct NodeMemo<V> {
    inner: Mutex<Inner<V>>,
    capacity: usize,
}

struct Inner<V> {
    entries: HashMap<String, Entry<V>>,
    clock: u64,
}

impl<V> Default for NodeMemo<V> {
    fn default() -> Self {
        NodeMemo::with_capacity(DEFAULT_CAPACITY)
    }
}

impl<V> NodeMemo<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        NodeMemo {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                clock: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    /// Bring the values for `key` up to date with `snap` (calling `compute` for nodes whose
    /// generation changed) and hand them to `f`, indexed like `snap.nodes`.
    pub fn with<R>(
        &self,
        key: String,
        snap: &Snapshot,
        compute: impl Fn(&NodeInfo) -> V,
        f: impl FnOnce(&[(u64, V)]) -> R,
    ) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        inner.clock += 1;
        let clock = inner.clock;
        if !inner.entries.contains_key(&key) && inner.entries.len() >= self.capacity {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.entries.remove(&k);
            }
        }
        let entry = inner.entries.entry(key).or_insert_with(|| Entry {
            per_node: Vec::new(),
            last_used: clock,
        });
        entry.last_used = clock;
        let nodes = &snap.nodes;
        entry.per_node.truncate(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            match entry.per_node.get_mut(i) {
                Some(slot) if slot.0 == node.generation => {}
                Some(slot) => *slot = (node.generation, compute(node)),
                None => entry.per_node.push((node.generation, compute(node))),
            }
        }
        f(&entry.per_node)
    }

    /// Number of keys currently remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};
    use std::cell::Cell;
    use std::sync::Arc;

    fn count_app(node: &NodeInfo, calls: &Cell<usize>) -> usize {
        calls.set(calls.get() + 1);
        node.pods
            .iter()
            .filter(|p| p.labels.get("app").map(String::as_str) == Some("web"))
            .count()
    }

    #[test]
    fn recomputes_only_changed_nodes() {
        let nodes = vec![NodeBuilder::new("a").build(), NodeBuilder::new("b").build()];
        let pods = vec![PodBuilder::new("p1").label("app", "web").node("a").build()];
        let mut snap = snapshot(nodes, pods);
        let memo = NodeMemo::default();
        let calls = Cell::new(0);
        let counts = memo.with(
            "web".into(),
            &snap,
            |n| count_app(n, &calls),
            |v| v.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        );
        assert_eq!(counts, [1, 0]);
        assert_eq!(calls.get(), 2);

        memo.with("web".into(), &snap, |n| count_app(n, &calls), |_| ());
        assert_eq!(calls.get(), 2, "nothing changed, nothing recomputed");

        let p2 =
            crate::testing::pod_info(PodBuilder::new("p2").label("app", "web").node("b").build());
        let i = snap.index["b"];
        snap.nodes[i].add_pod(Arc::new(p2));
        let counts = memo.with(
            "web".into(),
            &snap,
            |n| count_app(n, &calls),
            |v| v.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        );
        assert_eq!(counts, [1, 1]);
        assert_eq!(calls.get(), 3, "only the changed node is recomputed");
    }

    #[test]
    fn a_replaced_node_at_the_same_index_is_recomputed() {
        let memo = NodeMemo::default();
        let calls = Cell::new(0);
        let s1 = snapshot(
            vec![NodeBuilder::new("a").build()],
            vec![PodBuilder::new("p1").label("app", "web").node("a").build()],
        );
        memo.with("k".into(), &s1, |n| count_app(n, &calls), |_| ());
        // Same name, same index, a different (fresh) NodeInfo without pods.
        let s2 = snapshot(vec![NodeBuilder::new("a").build()], vec![]);
        let c = memo.with("k".into(), &s2, |n| count_app(n, &calls), |v| v[0].1);
        assert_eq!(c, 0);
        // A snapshot with fewer nodes truncates.
        let s3 = snapshot(vec![], vec![]);
        let len = memo.with("k".into(), &s3, |n| count_app(n, &calls), |v| v.len());
        assert_eq!(len, 0);
    }

    #[test]
    fn least_recently_used_key_is_evicted() {
        let memo: NodeMemo<usize> = NodeMemo::with_capacity(2);
        let snap = snapshot(vec![NodeBuilder::new("a").build()], vec![]);
        let calls = Cell::new(0);
        memo.with("x".into(), &snap, |n| count_app(n, &calls), |_| ());
        memo.with("y".into(), &snap, |n| count_app(n, &calls), |_| ());
        memo.with("x".into(), &snap, |n| count_app(n, &calls), |_| ());
        memo.with("z".into(), &snap, |n| count_app(n, &calls), |_| ());
        assert_eq!(memo.len(), 2);
        assert_eq!(calls.get(), 3);
        memo.with("x".into(), &snap, |n| count_app(n, &calls), |_| ());
        assert_eq!(calls.get(), 3, "x was kept (recently used)");
        memo.with("y".into(), &snap, |n| count_app(n, &calls), |_| ());
        assert_eq!(calls.get(), 4, "y was evicted");
    }
}
