//! The garbage collector: an ownerReference graph over every resource the server serves,
//! built from watches. Objects whose owners are all gone are deleted (background), owners
//! deleted with `foregroundDeletion` wait until their blocking dependents are gone before the
//! finalizer is removed, and owners deleted with the `orphan` finalizer have their dependents'
//! references removed first.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::discovery::ApiResource;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::discovery::Resources;
use crate::queue::{WorkQueue, run_workers};
use crate::util;
use crate::{ControllerContext, Error};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
/// How often discovery is re-read to watch newly added resources (custom resources).
const RESYNC_DISCOVERY: Duration = Duration::from_secs(30);

/// What the graph keeps of an object.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjInfo {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl ObjInfo {
    fn from_object(ar: &ApiResource, o: &DynamicObject) -> ObjInfo {
        ObjInfo {
            uid: o.metadata.uid.clone().unwrap_or_default(),
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: o.metadata.namespace.clone().unwrap_or_default(),
            name: o.name_any(),
            owners: o.owner_references().to_vec(),
            deleting: o.metadata.deletion_timestamp.is_some(),
            finalizers: o.finalizers().to_vec(),
        }
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waits for its blocking dependents.
    fn waiting_for_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }
}

enum GraphEvent {
    Upsert(ObjInfo),
    Delete(ObjInfo),
    /// A (re-)list of one resource: everything else of that resource is gone.
    Replace { resource: String, objects: Vec<ObjInfo> },
    Synced,
}

#[derive(Default)]
struct Node {
    info: Option<ObjInfo>,
    dependents: HashSet<String>,
    resource: String,
}

/// The ownership graph (uid -> node). Nodes without `info` are owners not observed (yet).
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

/// What to do about a dependent, given what is known of its owners.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// At least one owner exists: keep it, dropping references to owners that are gone.
    Keep { remove_refs: Vec<String> },
    /// No owner exists any more: delete with this propagation.
    Delete(&'static str),
}

/// Owners classified as upstream: solid (exists, not being deleted in the foreground),
/// dangling (gone), waiting (deleted in the foreground).
pub fn verdict(info: &ObjInfo, solid: &[String], dangling: &[String], waiting: &[String], has_dependents: bool) -> Verdict {
    if !solid.is_empty() {
        return Verdict::Keep { remove_refs: dangling.iter().chain(waiting).cloned().collect() };
    }
    if !waiting.is_empty() && has_dependents {
        return Verdict::Delete("Foreground");
    }
    if info.has_finalizer(ORPHAN) {
        Verdict::Delete("Orphan")
    } else if info.has_finalizer(FOREGROUND) || !waiting.is_empty() {
        Verdict::Delete("Foreground")
    } else {
        Verdict::Delete("Background")
    }
}

impl Graph {
    fn upsert(&mut self, resource: &str, info: ObjInfo, to_delete: &mut Vec<String>, to_orphan: &mut Vec<String>) {
        let uid = info.uid.clone();
        let old = self.nodes.get(&uid).and_then(|n| n.info.clone());
        let old_owners: HashSet<String> = old.as_ref().map(|o| o.owners.iter().map(|r| r.uid.clone()).collect()).unwrap_or_default();
        let new_owners: HashSet<String> = info.owners.iter().map(|r| r.uid.clone()).collect();
        for added in new_owners.difference(&old_owners) {
            let owner = self.nodes.entry(added.clone()).or_default();
            owner.dependents.insert(uid.clone());
            // An owner never observed: the dependent must check it exists.
            if owner.info.is_none() {
                to_delete.push(uid.clone());
            }
        }
        for removed in old_owners.difference(&new_owners) {
            if let Some(o) = self.nodes.get_mut(removed) {
                o.dependents.remove(&uid);
                if o.info.as_ref().is_some_and(|i| i.waiting_for_dependents()) {
                    to_delete.push(removed.clone());
                }
            }
        }
        if info.deleting {
            // A dependent going away may unblock an owner deleted in the foreground.
            for o in &new_owners {
                if self.nodes.get(o).and_then(|n| n.info.as_ref()).is_some_and(|i| i.waiting_for_dependents()) {
                    to_delete.push(o.clone());
                }
            }
        }
        let started_foreground = info.waiting_for_dependents() && !old.as_ref().is_some_and(|o| o.waiting_for_dependents());
        let node = self.nodes.entry(uid.clone()).or_default();
        node.resource = resource.to_string();
        if info.waiting_for_dependents() {
            to_delete.push(uid.clone());
            if started_foreground {
                to_delete.extend(node.dependents.iter().cloned());
            }
        }
        if info.deleting && info.has_finalizer(ORPHAN) {
            to_orphan.push(uid.clone());
        }
        let was_virtual = node.info.is_none();
        node.info = Some(info);
        // A placeholder became real: its dependents may have been waiting to check it.
        if was_virtual && old.is_none() {
            to_delete.extend(node.dependents.iter().cloned());
        }
    }

    fn remove(&mut self, info: &ObjInfo, to_delete: &mut Vec<String>) {
        let Some(node) = self.nodes.remove(&info.uid) else { return };
        let owners: Vec<String> = node.info.as_ref().map(|i| i.owners.iter().map(|r| r.uid.clone()).collect()).unwrap_or_default();
        for o in owners {
            if let Some(on) = self.nodes.get_mut(&o) {
                on.dependents.remove(&info.uid);
                if on.info.as_ref().is_some_and(|i| i.waiting_for_dependents()) {
                    to_delete.push(o.clone());
                }
                if on.info.is_none() && on.dependents.is_empty() {
                    self.nodes.remove(&o);
                }
            }
        }
        // Dependents lost an owner: check whether they still have one.
        to_delete.extend(node.dependents.iter().cloned());
        if !node.dependents.is_empty() {
            self.nodes.insert(info.uid.clone(), Node { info: None, dependents: node.dependents, resource: String::new() });
        }
    }

    fn uids_of_resource(&self, resource: &str) -> Vec<ObjInfo> {
        self.nodes.values().filter(|n| n.resource == resource).filter_map(|n| n.info.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

pub struct GarbageCollector {
    client: Client,
    graph: Mutex<Graph>,
    resources: RwLock<Resources>,
    delete_queue: Arc<WorkQueue>,
    orphan_queue: Arc<WorkQueue>,
    watched: Mutex<HashSet<String>>,
    pending_sync: Mutex<usize>,
    synced: tokio::sync::watch::Sender<bool>,
}

fn resource_key(ar: &ApiResource) -> String {
    format!("{}/{}", ar.api_version, ar.plural)
}

impl GarbageCollector {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        Arc::new(GarbageCollector {
            client: ctx.client.clone(),
            graph: Mutex::new(Graph::default()),
            resources: RwLock::new(Resources::default()),
            delete_queue: WorkQueue::new("garbage_collector_attempt_to_delete"),
            orphan_queue: WorkQueue::new("garbage_collector_attempt_to_orphan"),
            watched: Mutex::new(HashSet::new()),
            pending_sync: Mutex::new(0),
            synced: tokio::sync::watch::channel(false).0,
        })
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        let (tx, rx) = mpsc::unbounded_channel();
        let me = self.clone();
        tokio::spawn(async move { me.process_graph_changes(rx).await });
        // Discovery, then a watch per resource; re-read discovery for new resources.
        let me = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                match Resources::discover(&me.client).await {
                    Ok(r) => {
                        me.start_monitors(&r, &tx, first);
                        *me.resources.write().unwrap_or_else(|e| e.into_inner()) = r;
                        first = false;
                    }
                    Err(e) => warn!(error = %e, "garbage collector: discovery failed"),
                }
                tokio::time::sleep(if first { Duration::from_secs(1) } else { RESYNC_DISCOVERY }).await;
            }
        });
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
        info!("garbage collector: all resource monitors synced; collecting");
        let d = self.clone();
        let o = self.clone();
        let dq = self.delete_queue.clone();
        let oq = self.orphan_queue.clone();
        tokio::join!(
            run_workers(dq, workers, move |uid| {
                let d = d.clone();
                async move { d.attempt_to_delete(&uid).await }
            }),
            run_workers(oq, workers, move |uid| {
                let o = o.clone();
                async move { o.attempt_to_orphan(&uid).await }
            }),
        );
    }

    fn start_monitors(self: &Arc<Self>, r: &Resources, tx: &mpsc::UnboundedSender<GraphEvent>, first: bool) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        // Events never own anything and are numerous.
        let new: Vec<ApiResource> = r
            .preferred_with(&["list", "watch", "delete"])
            .into_iter()
            .map(|(ar, _)| ar)
            .filter(|ar| ar.plural != "events" && watched.insert(resource_key(ar)))
            .collect();
        if first {
            // Counted before any monitor runs, so the last one to sync sees zero.
            *self.pending_sync.lock().unwrap_or_else(|e| e.into_inner()) += new.len();
        }
        for ar in new {
            let key = resource_key(&ar);
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
            let tx = tx.clone();
            let me = self.clone();
            tokio::spawn(async move {
                let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
                futures::pin_mut!(stream);
                let mut buf = Vec::new();
                let mut synced_once = !first;
                while let Some(ev) = stream.next().await {
                    let ge = match ev {
                        Ok(Event::Apply(o)) => GraphEvent::Upsert(ObjInfo::from_object(&ar, &o)),
                        Ok(Event::Delete(o)) => GraphEvent::Delete(ObjInfo::from_object(&ar, &o)),
                        Ok(Event::Init) => {
                            buf.clear();
                            continue;
                        }
                        Ok(Event::InitApply(o)) => {
                            buf.push(ObjInfo::from_object(&ar, &o));
                            continue;
                        }
                        Ok(Event::InitDone) => GraphEvent::Replace { resource: key.clone(), objects: std::mem::take(&mut buf) },
                        Err(e) => {
                            debug!(resource = %key, error = %e, "garbage collector: watch error");
                            continue;
                        }
                    };
                    if tx.send(ge).is_err() {
                        return;
                    }
                    if !synced_once && me.monitor_synced() {
                        let _ = tx.send(GraphEvent::Synced);
                    }
                    synced_once = true;
                }
            });
        }
    }

    /// One monitor listed everything once; true when that was the last one.
    fn monitor_synced(&self) -> bool {
        let mut p = self.pending_sync.lock().unwrap_or_else(|e| e.into_inner());
        if *p == 0 {
            return false;
        }
        *p -= 1;
        *p == 0
    }

    async fn process_graph_changes(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<GraphEvent>) {
        while let Some(ev) = rx.recv().await {
            let (mut del, mut orph) = (Vec::new(), Vec::new());
            {
                let mut g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
                match ev {
                    GraphEvent::Upsert(info) => {
                        let res = g.nodes.get(&info.uid).map(|n| n.resource.clone()).unwrap_or_default();
                        let res = if res.is_empty() { format!("{}/{}", info.api_version, info.kind) } else { res };
                        g.upsert(&res, info, &mut del, &mut orph);
                    }
                    GraphEvent::Delete(info) => g.remove(&info, &mut del),
                    GraphEvent::Replace { resource, objects } => {
                        let listed: HashSet<String> = objects.iter().map(|o| o.uid.clone()).collect();
                        let res_kind = objects.first().map(|o| format!("{}/{}", o.api_version, o.kind));
                        let _ = res_kind;
                        for gone in g.uids_of_resource(&resource) {
                            if !listed.contains(&gone.uid) {
                                g.remove(&gone, &mut del);
                            }
                        }
                        for o in objects {
                            g.upsert(&resource, o, &mut del, &mut orph);
                        }
                    }
                    GraphEvent::Synced => {
                        self.synced.send_replace(true);
                    }
                }
            }
            for uid in del {
                self.delete_queue.add(uid);
            }
            for uid in orph {
                self.orphan_queue.add(uid);
            }
        }
    }

    fn api_for(&self, api_version: &str, kind: &str, namespace: &str) -> Option<(Api<DynamicObject>, bool)> {
        let r = self.resources.read().unwrap_or_else(|e| e.into_inner());
        let (ar, caps) = r.resolve(api_version, kind)?;
        let namespaced = Resources::is_namespaced(caps);
        let api = if namespaced { Api::namespaced_with(self.client.clone(), namespace, ar) } else { Api::all_with(self.client.clone(), ar) };
        Some((api, namespaced))
    }

    /// Is the owner there? `None` when its kind cannot be resolved (then it is kept as solid).
    async fn owner_state(&self, dependent: &ObjInfo, r: &OwnerReference) -> Result<Option<(bool, bool)>, Error> {
        let known = {
            let g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
            g.nodes.get(&r.uid).and_then(|n| n.info.clone())
        };
        if let Some(o) = known {
            return Ok(Some((true, o.waiting_for_dependents())));
        }
        let Some((api, namespaced)) = self.api_for(&r.api_version, &r.kind, &dependent.namespace) else {
            return Ok(None);
        };
        if namespaced && dependent.namespace.is_empty() {
            // A cluster-scoped object cannot be owned by a namespaced one.
            return Ok(Some((false, false)));
        }
        match api.get_opt(&r.name).await? {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                let waiting = o.metadata.deletion_timestamp.is_some() && o.finalizers().iter().any(|f| f == FOREGROUND);
                Ok(Some((true, waiting)))
            }
            _ => Ok(Some((false, false))),
        }
    }

    /// The one sync function for dependents (and owners being deleted in the foreground).
    pub async fn attempt_to_delete(&self, uid: &str) -> Result<Option<Duration>, Error> {
        let (info, dependents) = {
            let g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
            let Some(n) = g.nodes.get(uid) else { return Ok(None) };
            let Some(info) = n.info.clone() else { return Ok(None) };
            let deps: Vec<ObjInfo> = n.dependents.iter().filter_map(|d| g.nodes.get(d).and_then(|n| n.info.clone())).collect();
            (info, deps)
        };
        if info.deleting {
            if !info.has_finalizer(FOREGROUND) {
                return Ok(None);
            }
            let blocking: Vec<&ObjInfo> = dependents
                .iter()
                .filter(|d| d.owners.iter().any(|r| r.uid == info.uid && r.block_owner_deletion == Some(true)))
                .collect();
            if blocking.is_empty() {
                debug!(kind = %info.kind, name = %info.name, "foreground deletion: no blocking dependents left; removing finalizer");
                return self.remove_finalizer(&info, FOREGROUND).await;
            }
            for d in blocking {
                if !d.deleting {
                    self.delete_queue.add(d.uid.clone());
                }
            }
            return Ok(None);
        }
        if info.owners.is_empty() {
            return Ok(None);
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for r in &info.owners {
            match self.owner_state(&info, r).await? {
                None => solid.push(r.uid.clone()),
                Some((false, _)) => dangling.push(r.uid.clone()),
                Some((true, true)) => waiting.push(r.uid.clone()),
                Some((true, false)) => solid.push(r.uid.clone()),
            }
        }
        let Some((api, _)) = self.api_for(&info.api_version, &info.kind, &info.namespace) else { return Ok(None) };
        match verdict(&info, &solid, &dangling, &waiting, !dependents.is_empty()) {
            Verdict::Keep { remove_refs } if remove_refs.is_empty() => Ok(None),
            Verdict::Keep { remove_refs } => {
                let refs: Vec<&OwnerReference> = info.owners.iter().filter(|r| !remove_refs.contains(&r.uid)).collect();
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": info.uid}});
                match api.patch(&info.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => Ok(None),
                    Err(e) if util::is_status(&e, 404) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Verdict::Delete(policy) => {
                info!(kind = %info.kind, namespace = %info.namespace, name = %info.name, policy, "garbage collector: deleting object whose owners are gone");
                let dp = DeleteParams {
                    propagation_policy: Some(match policy {
                        "Foreground" => PropagationPolicy::Foreground,
                        "Orphan" => PropagationPolicy::Orphan,
                        _ => PropagationPolicy::Background,
                    }),
                    preconditions: Some(Preconditions { uid: Some(info.uid.clone()), resource_version: None }),
                    ..Default::default()
                };
                match api.delete(&info.name, &dp).await {
                    Ok(_) => Ok(None),
                    Err(e) if util::is_status(&e, 404) || util::is_status(&e, 409) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Remove the owner's references from its dependents, then the `orphan` finalizer.
    pub async fn attempt_to_orphan(&self, uid: &str) -> Result<Option<Duration>, Error> {
        let (info, dependents) = {
            let g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
            let Some(n) = g.nodes.get(uid) else { return Ok(None) };
            let Some(info) = n.info.clone() else { return Ok(None) };
            let deps: Vec<ObjInfo> = n.dependents.iter().filter_map(|d| g.nodes.get(d).and_then(|n| n.info.clone())).collect();
            (info, deps)
        };
        if !info.deleting || !info.has_finalizer(ORPHAN) {
            return Ok(None);
        }
        for d in dependents {
            let Some((api, _)) = self.api_for(&d.api_version, &d.kind, &d.namespace) else { continue };
            let Some(live) = api.get_opt(&d.name).await? else { continue };
            if live.metadata.uid.as_deref() != Some(d.uid.as_str()) {
                continue;
            }
            let refs: Vec<&OwnerReference> = live.owner_references().iter().filter(|r| r.uid != info.uid).collect();
            if refs.len() == live.owner_references().len() {
                continue;
            }
            let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": live.metadata.resource_version}});
            match api.patch(&d.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.remove_finalizer(&info, ORPHAN).await
    }

    async fn remove_finalizer(&self, info: &ObjInfo, finalizer: &str) -> Result<Option<Duration>, Error> {
        let Some((api, _)) = self.api_for(&info.api_version, &info.kind, &info.namespace) else { return Ok(None) };
        let Some(live) = api.get_opt(&info.name).await? else { return Ok(None) };
        if live.metadata.uid.as_deref() != Some(info.uid.as_str()) || !live.finalizers().iter().any(|f| f == finalizer) {
            return Ok(None);
        }
        let fins: Vec<&String> = live.finalizers().iter().filter(|f| *f != finalizer).collect();
        let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": live.metadata.resource_version}});
        match api.patch(&info.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(None),
            Err(e) if util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(uid: &str, owners: &[&str]) -> ObjInfo {
        ObjInfo {
            uid: uid.into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: "ns".into(),
            name: uid.into(),
            owners: owners
                .iter()
                .map(|o| OwnerReference { uid: (*o).into(), name: (*o).into(), kind: "ReplicaSet".into(), api_version: "apps/v1".into(), block_owner_deletion: Some(true), controller: Some(true) })
                .collect(),
            deleting: false,
            finalizers: vec![],
        }
    }

    #[test]
    fn verdicts_follow_upstream_classification() {
        let i = info("p", &["a", "b"]);
        assert_eq!(verdict(&i, &["a".into()], &["b".into()], &[], false), Verdict::Keep { remove_refs: vec!["b".into()] });
        assert_eq!(verdict(&i, &[], &["a".into(), "b".into()], &[], false), Verdict::Delete("Background"));
        assert_eq!(verdict(&i, &[], &[], &["a".into()], true), Verdict::Delete("Foreground"));
        let mut o = i.clone();
        o.finalizers = vec![ORPHAN.into()];
        assert_eq!(verdict(&o, &[], &["a".into()], &[], false), Verdict::Delete("Orphan"));
    }

    #[test]
    fn graph_tracks_dependents_and_queues_work() {
        let mut g = Graph::default();
        let (mut del, mut orph) = (Vec::new(), Vec::new());
        let mut owner = info("rs", &[]);
        owner.kind = "ReplicaSet".into();
        g.upsert("apps/v1/replicasets", owner.clone(), &mut del, &mut orph);
        g.upsert("v1/pods", info("p1", &["rs"]), &mut del, &mut orph);
        g.upsert("v1/pods", info("p2", &["rs"]), &mut del, &mut orph);
        assert!(del.is_empty(), "owners known: nothing to check");
        assert_eq!(g.nodes["rs"].dependents.len(), 2);
        // Foreground deletion starts: owner and dependents are queued.
        let mut fg = owner.clone();
        fg.deleting = true;
        fg.finalizers = vec![FOREGROUND.into()];
        g.upsert("apps/v1/replicasets", fg, &mut del, &mut orph);
        del.sort();
        assert_eq!(del, vec!["p1".to_string(), "p2".to_string(), "rs".to_string()]);
        del.clear();
        // A dependent disappears: the waiting owner is re-checked.
        g.remove(&info("p1", &["rs"]), &mut del);
        assert_eq!(del, vec!["rs".to_string()]);
        del.clear();
        // The owner disappears: its remaining dependent must be checked.
        g.remove(&owner, &mut del);
        assert_eq!(del, vec!["p2".to_string()]);
        // A dependent of an unseen owner is checked at once.
        del.clear();
        g.upsert("v1/pods", info("p3", &["ghost"]), &mut del, &mut orph);
        assert_eq!(del, vec!["p3".to_string()]);
        // Orphan finalizer queues orphaning.
        let mut o = info("x", &[]);
        o.deleting = true;
        o.finalizers = vec![ORPHAN.into()];
        g.upsert("v1/pods", o, &mut del, &mut orph);
        assert_eq!(orph, vec!["x".to_string()]);
    }
}
