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

/// A sum over all nodes' values kept up to date as single values change, so a cycle need not
/// walk every node to total them.
pub trait Aggregate<V>: Default {
    fn add(&mut self, v: &V);
    fn sub(&mut self, v: &V);
}

impl<V> Aggregate<V> for () {
    fn add(&mut self, _: &V) {}
    fn sub(&mut self, _: &V) {}
}

struct Entry<V, A> {
    /// Indexed like `Snapshot::nodes`: the generation the value was computed for.
    per_node: Vec<(u64, V)>,
    agg: A,
    last_used: u64,
}

/// Per-node values of one plugin, keyed by a string the plugin derives from the incoming pod,
/// with an optional running [`Aggregate`] of them.
pub struct NodeMemo<V, A = ()> {
    inner: Mutex<Inner<V, A>>,
    capacity: usize,
}

struct Inner<V, A> {
    entries: HashMap<String, Entry<V, A>>,
    clock: u64,
}

impl<V, A: Aggregate<V>> Default for NodeMemo<V, A> {
    fn default() -> Self {
        NodeMemo::with_capacity(DEFAULT_CAPACITY)
    }
}

impl<V, A: Aggregate<V>> NodeMemo<V, A> {
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
    /// generation changed) and hand them to `f`, indexed like `snap.nodes`, with their aggregate.
    pub fn with<R>(
        &self,
        key: String,
        snap: &Snapshot,
        compute: impl Fn(&NodeInfo) -> V,
        f: impl FnOnce(&[(u64, V)], &A) -> R,
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
            agg: A::default(),
            last_used: clock,
        });
        entry.last_used = clock;
        let nodes = &snap.nodes;
        if entry.per_node.len() > nodes.len() {
            for (_, v) in entry.per_node.drain(nodes.len()..) {
                entry.agg.sub(&v);
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            match entry.per_node.get_mut(i) {
                Some(slot) if slot.0 == node.generation => {}
                Some(slot) => {
                    entry.agg.sub(&slot.1);
                    *slot = (node.generation, compute(node));
                    entry.agg.add(&slot.1);
                }
                None => {
                    let v = compute(node);
                    entry.agg.add(&v);
                    entry.per_node.push((node.generation, v));
                }
            }
        }
        f(&entry.per_node, &entry.agg)
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
        let memo: NodeMemo<usize> = NodeMemo::default();
        let calls = Cell::new(0);
        let counts = memo.with(
            "web".into(),
            &snap,
            |n| count_app(n, &calls),
            |v, _| v.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        );
        assert_eq!(counts, [1, 0]);
        assert_eq!(calls.get(), 2);

        memo.with("web".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        assert_eq!(calls.get(), 2, "nothing changed, nothing recomputed");

        let p2 =
            crate::testing::pod_info(PodBuilder::new("p2").label("app", "web").node("b").build());
        let i = snap.index["b"];
        snap.nodes[i].add_pod(Arc::new(p2));
        let counts = memo.with(
            "web".into(),
            &snap,
            |n| count_app(n, &calls),
            |v, _| v.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        );
        assert_eq!(counts, [1, 1]);
        assert_eq!(calls.get(), 3, "only the changed node is recomputed");
    }

    #[test]
    fn a_replaced_node_at_the_same_index_is_recomputed() {
        let memo: NodeMemo<usize> = NodeMemo::default();
        let calls = Cell::new(0);
        let s1 = snapshot(
            vec![NodeBuilder::new("a").build()],
            vec![PodBuilder::new("p1").label("app", "web").node("a").build()],
        );
        memo.with("k".into(), &s1, |n| count_app(n, &calls), |_, _| ());
        // Same name, same index, a different (fresh) NodeInfo without pods.
        let s2 = snapshot(vec![NodeBuilder::new("a").build()], vec![]);
        let c = memo.with("k".into(), &s2, |n| count_app(n, &calls), |v, _| v[0].1);
        assert_eq!(c, 0);
        // A snapshot with fewer nodes truncates.
        let s3 = snapshot(vec![], vec![]);
        let len = memo.with("k".into(), &s3, |n| count_app(n, &calls), |v, _| v.len());
        assert_eq!(len, 0);
    }

    #[derive(Default)]
    struct Sum(usize);
    impl Aggregate<usize> for Sum {
        fn add(&mut self, v: &usize) {
            self.0 += v;
        }
        fn sub(&mut self, v: &usize) {
            self.0 -= v;
        }
    }

    #[test]
    fn the_aggregate_follows_changes_and_removals() {
        let memo: NodeMemo<usize, Sum> = NodeMemo::default();
        let calls = Cell::new(0);
        let web = |n: &str| PodBuilder::new(n).label("app", "web");
        let mut snap = snapshot(
            vec![NodeBuilder::new("a").build(), NodeBuilder::new("b").build()],
            vec![web("p1").node("a").build(), web("p2").node("b").build()],
        );
        let total =
            |snap: &Snapshot| memo.with("k".into(), snap, |n| count_app(n, &calls), |_, s| s.0);
        assert_eq!(total(&snap), 2);
        let i = snap.index["a"];
        snap.nodes[i].add_pod(Arc::new(crate::testing::pod_info(
            web("p3").node("a").build(),
        )));
        assert_eq!(total(&snap), 3);
        let i = snap.index["b"];
        let uid = snap.nodes[i].pods[0].uid.clone();
        snap.nodes[i].remove_pod(&uid);
        assert_eq!(total(&snap), 2);
        // A smaller snapshot drops the missing nodes' values from the total.
        let one = snapshot(
            vec![NodeBuilder::new("c").build()],
            vec![web("p4").node("c").build()],
        );
        assert_eq!(total(&one), 1);
    }

    #[test]
    fn least_recently_used_key_is_evicted() {
        let memo: NodeMemo<usize> = NodeMemo::with_capacity(2);
        let snap = snapshot(vec![NodeBuilder::new("a").build()], vec![]);
        let calls = Cell::new(0);
        memo.with("x".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        memo.with("y".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        memo.with("x".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        memo.with("z".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        assert_eq!(memo.len(), 2);
        assert_eq!(calls.get(), 3);
        memo.with("x".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        assert_eq!(calls.get(), 3, "x was kept (recently used)");
        memo.with("y".into(), &snap, |n| count_app(n, &calls), |_, _| ());
        assert_eq!(calls.get(), 4, "y was evicted");
    }
}
