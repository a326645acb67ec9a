//! Shared informers: one watch per resource type for the whole process, feeding an in-memory
//! store (indexed by namespace) that every controller reads, and change handlers that map
//! changes to work-queue keys. This is client-go's shared informer, built on kube's `watcher`
//! (which lists, watches, re-lists on expiry and backs off on errors).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::expectations::Expectations;
use crate::queue::WorkQueue;
use crate::util::{controller_ref, key, key_of};

/// One observed change. `Updated` carries the previous state so handlers can compare.
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The newest state (the last known state for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;
type Objects<K> = HashMap<String, HashMap<String, Arc<K>>>;

/// A shared informer for one resource type (all namespaces).
pub struct Informer<K> {
    api: Api<K>,
    store: RwLock<Objects<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
    started: AtomicBool,
}

fn ns_of<K: Resource>(o: &K) -> String {
    o.meta().namespace.clone().unwrap_or_default()
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(api: Api<K>) -> Arc<Self> {
        Arc::new(Informer {
            api,
            store: RwLock::new(HashMap::new()),
            handlers: RwLock::new(Vec::new()),
            synced: watch::channel(false).0,
            started: AtomicBool::new(false),
        })
    }

    /// Register a change handler; it runs on the informer's task, so it must be quick
    /// (typically: compute keys and add them to a queue).
    pub fn add_handler(&self, f: impl Fn(&Change<K>) + Send + Sync + 'static) {
        self.handlers.write().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
    }

    /// The cached object `namespace/name` (namespace "" for cluster-scoped objects).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let s = self.store.read().unwrap_or_else(|e| e.into_inner());
        s.get(namespace).and_then(|m| m.get(name)).cloned()
    }

    /// All cached objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let s = self.store.read().unwrap_or_else(|e| e.into_inner());
        s.get(namespace).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// All cached objects.
    pub fn list(&self) -> Vec<Arc<K>> {
        let s = self.store.read().unwrap_or_else(|e| e.into_inner());
        s.values().flat_map(|m| m.values().cloned()).collect()
    }

    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Wait until the first full list has been loaded.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn notify(&self, change: Change<K>) {
        let hs = self.handlers.read().unwrap_or_else(|e| e.into_inner());
        for h in hs.iter() {
            h(&change);
        }
    }

    fn apply(&self, o: K) {
        let o = Arc::new(o);
        let (ns, name) = (ns_of(o.as_ref()), o.name_any());
        let old = {
            let mut s = self.store.write().unwrap_or_else(|e| e.into_inner());
            s.entry(ns).or_default().insert(name, o.clone())
        };
        match old {
            Some(old) => self.notify(Change::Updated { old, new: o }),
            None => self.notify(Change::Added(o)),
        }
    }

    fn delete(&self, o: K) {
        let (ns, name) = (ns_of(&o), o.name_any());
        let old = {
            let mut s = self.store.write().unwrap_or_else(|e| e.into_inner());
            let removed = s.get_mut(&ns).and_then(|m| m.remove(&name));
            if s.get(&ns).is_some_and(|m| m.is_empty()) {
                s.remove(&ns);
            }
            removed
        };
        // The watch event carries the final state; prefer it.
        let _ = old;
        self.notify(Change::Deleted(Arc::new(o)));
    }

    /// Replace the whole store after a (re-)list: objects missing from the list were deleted.
    fn replace(&self, listed: Vec<K>) {
        let mut fresh: Objects<K> = HashMap::new();
        for o in listed {
            fresh.entry(ns_of(&o)).or_default().insert(o.name_any(), Arc::new(o));
        }
        let old = {
            let mut s = self.store.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *s, fresh.clone())
        };
        for (ns, objs) in &fresh {
            for (name, o) in objs {
                match old.get(ns).and_then(|m| m.get(name)) {
                    Some(prev) => self.notify(Change::Updated { old: prev.clone(), new: o.clone() }),
                    None => self.notify(Change::Added(o.clone())),
                }
            }
        }
        for (ns, objs) in old {
            for (name, o) in objs {
                if !fresh.get(&ns).is_some_and(|m| m.contains_key(&name)) {
                    self.notify(Change::Deleted(o));
                }
            }
        }
        self.synced.send_replace(true);
    }

    /// Start the watch loop once (later calls return `None`).
    pub fn start(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        if self.started.swap(true, Ordering::SeqCst) {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move { me.run().await }))
    }

    async fn run(self: Arc<Self>) {
        let stream = watcher::watcher(self.api.clone(), watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let mut buffer: Vec<K> = Vec::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(o)) => self.apply(o),
                Ok(Event::Delete(o)) => self.delete(o),
                Ok(Event::Init) => buffer.clear(),
                Ok(Event::InitApply(o)) => buffer.push(o),
                Ok(Event::InitDone) => self.replace(std::mem::take(&mut buffer)),
                Err(e) => debug!(resource = %self.api.resource_url(), error = %e, "watch error"),
            }
        }
    }
}

/// What an [`Informer`] holds and its handlers see: any API object type (shorthand for the
/// bounds of the functions below).
pub trait Object: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}

impl<K> Object for K where K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}

impl<K> Informer<K>
where
    K: Object + Resource<DynamicType = ()>,
{
    /// The key of the cached owner that `meta`'s controller reference points to: the reference
    /// must name a `K` in the object's namespace, and the cached `K` must have the referenced uid
    /// (a same-named object that replaced the owner is not the owner).
    pub fn controller_key(&self, meta: &ObjectMeta) -> Option<String> {
        let r = controller_ref(meta).filter(|r| r.kind == K::kind(&()))?;
        let ns = meta.namespace.as_deref().unwrap_or("");
        let owner = self.get(ns, &r.name)?;
        (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then(|| key(ns, &r.name))
    }
}

// Handlers that feed work queues (client-go's ResourceEventHandlers that enqueue keys), for the
// wiring that several controllers share.

/// On every change (added, updated, deleted) queue the object's key ([`key_of`]): the handler of
/// a controller's primary resource.
pub fn enqueue_on_change<K: Object>(informer: &Informer<K>, queue: &Arc<WorkQueue>) {
    let q = queue.clone();
    informer.add_handler(move |ch| q.add(key_of(ch.object().as_ref())));
}

/// As [`enqueue_on_change`], for a controller that keeps [`Expectations`] per object: when the
/// object is deleted its expectations are dropped too.
pub fn enqueue_on_change_with_expectations<K: Object>(informer: &Informer<K>, queue: &Arc<WorkQueue>, expectations: &Arc<Expectations>) {
    let (q, exp) = (queue.clone(), expectations.clone());
    informer.add_handler(move |ch| {
        let k = key_of(ch.object().as_ref());
        if matches!(ch, Change::Deleted(_)) {
            exp.delete(&k);
        }
        q.add(k);
    });
}

/// Wire the informer of owned objects (pods) to the owners' queue, for a controller with
/// [`Expectations`]: a change to an object controlled by a cached owner ([`Informer::controller_key`])
/// is observed in the owner's expectations (a creation when it is added, a deletion when it is
/// deleted or marked for deletion) and the owner's key is queued. Other objects are ignored.
pub fn enqueue_owner_with_expectations<K, O>(owned: &Informer<K>, owners: &Arc<Informer<O>>, queue: &Arc<WorkQueue>, expectations: &Arc<Expectations>)
where
    K: Object,
    O: Object + Resource<DynamicType = ()>,
{
    let (owners, q, exp) = (owners.clone(), queue.clone(), expectations.clone());
    owned.add_handler(move |ch| {
        let o = ch.object().meta();
        let Some(k) = owners.controller_key(o) else { return };
        let uid = o.uid.as_deref().unwrap_or("");
        match ch {
            Change::Added(_) => exp.creation_observed(&k),
            Change::Deleted(_) => exp.deletion_observed(&k, uid),
            Change::Updated { .. } if o.deletion_timestamp.is_some() => exp.deletion_observed(&k, uid),
            _ => {}
        }
        q.add(k);
    });
}

/// Queue the key of every cached object of namespace `ns` (a change there may concern any of them).
pub fn enqueue_namespace<K: Object>(informer: &Informer<K>, queue: &WorkQueue, ns: &str) {
    for o in informer.list_namespace(ns) {
        queue.add(key(ns, &o.name_any()));
    }
}

/// When a `K` is added or deleted, or updated so that `relevant(old, new)`, queue every cached
/// object of `targets` in its namespace ([`enqueue_namespace`]): for controllers whose objects
/// summarize a namespace (quotas count its objects, budgets follow its workloads' scale).
pub fn enqueue_namespace_on_change<K: Object, T: Object>(informer: &Informer<K>, targets: &Arc<Informer<T>>, queue: &Arc<WorkQueue>, relevant: impl Fn(&K, &K) -> bool + Send + Sync + 'static) {
    let (targets, q) = (targets.clone(), queue.clone());
    informer.add_handler(move |ch| {
        if let Change::Updated { old, new } = ch
            && !relevant(old, new)
        {
            return;
        }
        enqueue_namespace(&targets, &q, ch.object().meta().namespace.as_deref().unwrap_or(""));
    });
}

trait Startable: Send + Sync {
    fn start_dyn(&self) -> Option<JoinHandle<()>>;
}

impl<K> Startable for Arc<Informer<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn start_dyn(&self) -> Option<JoinHandle<()>> {
        self.start()
    }
}

/// Hands out one shared [`Informer`] per type; [`InformerFactory::start`] starts all of them.
pub struct InformerFactory {
    client: Client,
    informers: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    startables: Mutex<Vec<Box<dyn Startable>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl InformerFactory {
    pub fn new(client: Client) -> Arc<Self> {
        Arc::new(InformerFactory {
            client,
            informers: Mutex::new(HashMap::new()),
            startables: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared informer for `K` (created on first use, started by [`Self::start`]).
    pub fn get<K>(&self) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut m = self.informers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = m.get(&TypeId::of::<K>())
            && let Ok(i) = i.clone().downcast::<Informer<K>>()
        {
            return i;
        }
        let inf = Informer::new(Api::<K>::all(self.client.clone()));
        m.insert(TypeId::of::<K>(), inf.clone());
        self.startables.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(inf.clone()));
        inf
    }

    /// Start every informer handed out so far that is not running yet.
    pub fn start(&self) {
        let s = self.startables.lock().unwrap_or_else(|e| e.into_inner());
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.extend(s.iter().filter_map(|i| i.start_dyn()));
    }

    /// Stop every informer task.
    pub fn shutdown(&self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet};
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn informer<K: Object + Resource<DynamicType = ()>>() -> Arc<Informer<K>> {
        // Never started: the tests feed the store directly.
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        Informer::new(Api::all(client))
    }

    fn meta(name: &str, uid: &str) -> ObjectMeta {
        ObjectMeta { namespace: Some("ns".into()), name: Some(name.into()), uid: Some(uid.into()), ..Default::default() }
    }

    fn pod(name: &str, owner_kind: &str, owner_uid: &str) -> Pod {
        let r = OwnerReference { kind: owner_kind.into(), name: "a".into(), uid: owner_uid.into(), controller: Some(true), ..Default::default() };
        Pod { metadata: ObjectMeta { owner_references: Some(vec![r]), ..meta(name, &format!("{name}-uid")) }, ..Default::default() }
    }

    #[tokio::test]
    async fn owned_objects_are_observed_in_their_owners_expectations() {
        let (dss, pods) = (informer::<DaemonSet>(), informer::<Pod>());
        let (q, exp) = (WorkQueue::new("informer_test"), Arc::new(Expectations::default()));
        enqueue_on_change_with_expectations(&dss, &q, &exp);
        enqueue_owner_with_expectations(&pods, &dss, &q, &exp);
        dss.apply(DaemonSet { metadata: meta("a", "uid-a"), ..Default::default() });
        assert_eq!(q.get().await.as_deref(), Some("ns/a"));
        q.done("ns/a");

        exp.expect_creations("ns/a", 1);
        // Not ours: another kind, or a former owner of the same name.
        pods.apply(pod("p0", "ReplicaSet", "uid-a"));
        pods.apply(pod("p1", "DaemonSet", "uid-old"));
        assert!(q.is_empty() && !exp.satisfied("ns/a"));
        assert_eq!(dss.controller_key(&pod("p1", "DaemonSet", "uid-a").metadata).as_deref(), Some("ns/a"));
        assert_eq!(informer::<ReplicaSet>().controller_key(&pod("p0", "ReplicaSet", "uid-a").metadata), None, "owner not cached");

        pods.apply(pod("p2", "DaemonSet", "uid-a"));
        assert!(exp.satisfied("ns/a"), "creation observed");
        assert_eq!(q.len(), 1);

        exp.expect_deletions("ns/a", ["p2-uid".to_string(), "p3-uid".to_string()]);
        let mut terminating = pod("p2", "DaemonSet", "uid-a");
        terminating.metadata.deletion_timestamp = Some(crate::util::now_time());
        pods.apply(terminating);
        pods.apply(pod("p3", "DaemonSet", "uid-a"));
        assert!(!exp.satisfied("ns/a"), "an addition is not a deletion");
        pods.delete(pod("p3", "DaemonSet", "uid-a"));
        assert!(exp.satisfied("ns/a"), "marked for deletion, then deleted");

        exp.expect_creations("ns/a", 5);
        dss.delete(DaemonSet { metadata: meta("a", "uid-a"), ..Default::default() });
        assert!(exp.satisfied("ns/a"), "a deleted owner's expectations are dropped");
        assert_eq!(q.len(), 1, "one key, queued once");
    }

    #[tokio::test]
    async fn namespace_targets_follow_relevant_changes() {
        let (pods, dss) = (informer::<Pod>(), informer::<DaemonSet>());
        let q = WorkQueue::new("informer_test_ns");
        enqueue_namespace_on_change(&pods, &dss, &q, |o, n| o.metadata.labels != n.metadata.labels);
        dss.apply(DaemonSet { metadata: meta("a", "uid-a"), ..Default::default() });
        dss.apply(DaemonSet { metadata: meta("b", "uid-b"), ..Default::default() });
        pods.apply(pod("p", "ReplicaSet", "x"));
        assert_eq!(q.len(), 2, "an addition queues every target of the namespace");
        for _ in 0..2 {
            let k = q.get().await.unwrap();
            q.done(&k);
        }
        pods.apply(pod("p", "ReplicaSet", "x"));
        assert!(q.is_empty(), "an irrelevant update queues nothing");
        pods.delete(pod("p", "ReplicaSet", "x"));
        assert_eq!(q.len(), 2);
    }
}
