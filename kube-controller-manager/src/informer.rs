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
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

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
