//! The running scheduler: informers feeding the cache and the queue, the scheduling loop
//! (one pod at a time against the cache, under its lock), asynchronous binding, preemption's
//! evictions, and what users see (PodScheduled condition, nominatedNodeName, events).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Namespace, Node, ObjectReference, Pod, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use crate::algorithm::{self, ScheduleError};
use crate::cache::Cache;
use crate::config::SchedulerConfig;
use crate::framework::{ClusterEvent, CycleState, Framework, PostFilterResult};
use crate::metrics::Metrics;
use crate::plugins::{self, PluginContext};
use crate::queue::{LessFn, PreEnqueueFn, QueuedPodInfo, SchedulingQueue};
use crate::types::PodInfo;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("framework: {0}")]
    Framework(#[from] crate::framework::runtime::FrameworkError),
}

/// Binding requests in flight at most.
pub const MAX_IN_FLIGHT_BINDS: usize = 256;

/// Start a reflector for `K` in the background and return its store.
fn spawn_reflector<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        stream
            .for_each(|ev| {
                if let Err(e) = ev {
                    debug!(error = %e, "reflector watch error");
                }
                futures::future::ready(())
            })
            .await;
    });
    reader
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Events are published off the scheduling path, a bounded number at a time; when the backlog
/// is full new events are dropped (as upstream's broadcaster does).
#[derive(Clone)]
struct EventSink {
    tx: mpsc::Sender<(KEvent, ObjectReference, bool)>,
}

impl EventSink {
    fn start(client: kube::Client, reporter: Reporter) -> EventSink {
        let (tx, mut rx) = mpsc::channel::<(KEvent, ObjectReference, bool)>(10_000);
        let shared = Recorder::new(client.clone(), reporter.clone());
        let permits = Arc::new(Semaphore::new(16));
        tokio::spawn(async move {
            while let Some((ev, reference, aggregate)) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                // One-off events (Scheduled) skip the shared recorder's series cache, whose
                // per-publish sweep grows with every distinct event.
                let rec = if aggregate {
                    shared.clone()
                } else {
                    Recorder::new(client.clone(), reporter.clone())
                };
                tokio::spawn(async move {
                    if let Err(e) = rec.publish(&ev, &reference).await {
                        debug!(error = %e, reason = %ev.reason, "publishing event failed");
                    }
                    drop(permit);
                });
            }
        });
        EventSink { tx }
    }

    fn emit(
        &self,
        pod: &Pod,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
        aggregate: bool,
    ) {
        let ev = KEvent {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let _ = self.tx.try_send((ev, pod_ref(pod), aggregate));
    }
}

/// Everything the scheduler shares between its tasks.
pub struct Scheduler {
    client: kube::Client,
    cache: Mutex<Cache>,
    queue: Arc<SchedulingQueue>,
    profiles: HashMap<String, Arc<Framework>>,
    percentage: i32,
    pub metrics: Arc<Metrics>,
    events: EventSink,
    priority_classes: Store<PriorityClass>,
    next_start: Mutex<usize>,
    pods_synced: AtomicBool,
    nodes_synced: AtomicBool,
    /// Bounds in-flight binding requests (the client speaks HTTP/1.1: one connection each);
    /// the scheduling loop waits for a permit, so binds apply backpressure to it.
    bind_permits: Arc<Semaphore>,
    /// Other informer stores; kept so the plugins' views stay alive.
    _ctx: PluginContext,
}

impl Scheduler {
    /// Build the profiles and start the informers that plugins read through stores.
    pub fn new(
        client: kube::Client,
        cfg: &SchedulerConfig,
        metrics: Arc<Metrics>,
        identity: &str,
    ) -> Result<Arc<Scheduler>, SchedulerError> {
        let ctx = PluginContext {
            client: Some(client.clone()),
            pdbs: Some(spawn_reflector(Api::<PodDisruptionBudget>::all(
                client.clone(),
            ))),
            services: Some(spawn_reflector(Api::<Service>::all(client.clone()))),
            replica_sets: Some(spawn_reflector(Api::<ReplicaSet>::all(client.clone()))),
            stateful_sets: Some(spawn_reflector(Api::<StatefulSet>::all(client.clone()))),
            replication_controllers: Some(spawn_reflector(Api::<ReplicationController>::all(
                client.clone(),
            ))),
        };
        Self::with_context(client, cfg, metrics, identity, ctx)
    }

    fn with_context(
        client: kube::Client,
        cfg: &SchedulerConfig,
        metrics: Arc<Metrics>,
        identity: &str,
        ctx: PluginContext,
    ) -> Result<Arc<Scheduler>, SchedulerError> {
        let mut profiles = HashMap::new();
        for prof in &cfg.profiles {
            let mut instances = HashMap::new();
            for name in prof.plugin_names() {
                let p = plugins::new_plugin(&name, prof.plugin_args.get(&name), &ctx)?;
                instances.insert(name, p);
            }
            let fwk = Framework::new(prof, &instances)?;
            profiles.insert(prof.scheduler_name.clone(), Arc::new(fwk));
        }
        let mut interested: HashMap<ClusterEvent, HashSet<&'static str>> = HashMap::new();
        for f in profiles.values() {
            for (e, names) in f.interested_events() {
                interested.entry(e).or_default().extend(names);
            }
        }
        let less_profiles = profiles.clone();
        let less: LessFn = Arc::new(move |a, b| match less_profiles.get(&a.pod.scheduler_name) {
            Some(f) => f.less(a, b),
            None => crate::plugins::priority_sort::less(a, b),
        });
        let pe_profiles = profiles.clone();
        let pre_enqueue: PreEnqueueFn =
            Arc::new(
                move |p: &PodInfo| match pe_profiles.get(&p.scheduler_name) {
                    Some(f) => f.run_pre_enqueue(p),
                    None => crate::framework::Status::success(),
                },
            );
        let queue = Arc::new(SchedulingQueue::new(
            less,
            pre_enqueue,
            cfg.initial_backoff,
            cfg.max_backoff,
            interested,
        ));
        let reporter = Reporter {
            controller: cfg
                .profiles
                .first()
                .map(|p| p.scheduler_name.clone())
                .unwrap_or_else(|| "default-scheduler".into()),
            instance: Some(identity.to_string()),
        };
        Ok(Arc::new(Scheduler {
            events: EventSink::start(client.clone(), reporter),
            priority_classes: spawn_reflector(Api::<PriorityClass>::all(client.clone())),
            client,
            cache: Mutex::new(Cache::default()),
            queue,
            profiles,
            percentage: cfg.percentage_of_nodes_to_score,
            metrics,
            next_start: Mutex::new(0),
            pods_synced: AtomicBool::new(false),
            nodes_synced: AtomicBool::new(false),
            bind_permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT_BINDS)),
            _ctx: ctx,
        }))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Both pod and node informers have listed everything once.
    pub fn synced(&self) -> bool {
        self.pods_synced.load(Ordering::SeqCst) && self.nodes_synced.load(Ordering::SeqCst)
    }

    /// Refresh the gauges read at scrape time.
    pub fn update_gauges(&self) {
        let p = self.queue.pending();
        let g = &self.metrics.pending_pods;
        g.with_label_values(&["active"]).set(p.active as i64);
        g.with_label_values(&["backoff"]).set(p.backoff as i64);
        g.with_label_values(&["unschedulable"])
            .set(p.unschedulable as i64);
        g.with_label_values(&["gated"]).set(p.gated as i64);
        let c = self.cache();
        self.metrics
            .cache_size
            .with_label_values(&["nodes"])
            .set(c.node_count() as i64);
        self.metrics
            .cache_size
            .with_label_values(&["pods"])
            .set(c.pod_count() as i64);
    }

    /// spec.priority, else the PriorityClass's value, else the global default class, else 0.
    fn resolve_priority(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        let classes = self.priority_classes.state();
        if let Some(name) = spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            return classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name))
                .map(|c| c.value)
                .unwrap_or(0);
        }
        classes
            .iter()
            .find(|c| c.global_default == Some(true))
            .map(|c| c.value)
            .unwrap_or(0)
    }

    /// Start the informers (pods, nodes, namespaces) that feed cache and queue.
    pub fn start_informers(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move { this.run_pod_informer().await });
        let this = self.clone();
        tokio::spawn(async move { this.run_node_informer().await });
        let this = self.clone();
        tokio::spawn(async move { this.run_namespace_informer().await });
    }

    async fn run_pod_informer(self: Arc<Self>) {
        // Priorities come from PriorityClasses: have them before the first pod.
        if let Err(e) = self.priority_classes.wait_until_ready().await {
            warn!(error = %e, "priority class informer never became ready");
        }
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut known: HashSet<String> = HashSet::new();
        let mut relist: Option<HashSet<String>> = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init) => relist = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(p)) => {
                    if let (Some(seen), Some(uid)) = (relist.as_mut(), p.metadata.uid.clone()) {
                        seen.insert(uid);
                    }
                    self.on_pod(p, &mut known);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(seen) = relist.take() {
                        let gone: Vec<String> = known.difference(&seen).cloned().collect();
                        for uid in gone {
                            self.on_pod_gone(&uid, &mut known);
                        }
                    }
                    self.pods_synced.store(true, Ordering::SeqCst);
                }
                Ok(watcher::Event::Apply(p)) => self.on_pod(p, &mut known),
                Ok(watcher::Event::Delete(p)) => {
                    if let Some(uid) = p.metadata.uid.as_deref() {
                        self.on_pod_gone(uid, &mut known);
                    }
                }
                Err(e) => warn!(error = %e, "pod watch error"),
            }
        }
    }

    fn on_pod_gone(&self, uid: &str, known: &mut HashSet<String>) {
        known.remove(uid);
        self.queue.delete(uid);
        let was_cached = {
            let mut c = self.cache();
            let had = c.contains(uid);
            c.remove_pod(uid);
            had
        };
        if was_cached {
            self.queue.move_on_event(ClusterEvent::AssignedPodDelete);
        }
    }

    fn on_pod(&self, pod: Pod, known: &mut HashSet<String>) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if phase == "Succeeded" || phase == "Failed" {
            self.on_pod_gone(&uid, known);
            return;
        }
        known.insert(uid.clone());
        let priority = self.resolve_priority(&pod);
        let info = Arc::new(PodInfo::new(Arc::new(pod), priority));
        if !info.node_name.is_empty() {
            self.queue.delete(&uid);
            let event = {
                let mut c = self.cache();
                let existed = c.contains(&uid) && !c.is_assumed(&uid);
                c.add_pod(info);
                if existed {
                    ClusterEvent::AssignedPodUpdate
                } else {
                    ClusterEvent::AssignedPodAdd
                }
            };
            self.queue.move_on_event(event);
            return;
        }
        if info.terminating || !self.profiles.contains_key(&info.scheduler_name) {
            self.queue.delete(&uid);
            return;
        }
        {
            let mut c = self.cache();
            // Being bound by us right now: the watch shows the pre-binding object.
            if c.contains(&uid) {
                return;
            }
            let nominated = info.nominated_node_name().map(str::to_string);
            if c.nominated_node(&uid).map(str::to_string) != nominated {
                c.set_nominated(info.clone(), nominated.as_deref());
            }
        }
        if let Some(fwk) = self.profiles.get(&info.scheduler_name)
            && !fwk.run_pre_enqueue(&info).is_success()
        {
            self.mark_gated(&info);
        }
        self.queue.add(info);
    }

    async fn run_node_informer(self: Arc<Self>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut relist: Option<HashSet<String>> = None;
        let mut known: HashSet<String> = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init) => relist = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(n)) => {
                    if let (Some(seen), Some(name)) = (relist.as_mut(), n.metadata.name.clone()) {
                        seen.insert(name);
                    }
                    self.on_node(n, &mut known);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(seen) = relist.take() {
                        for name in known.difference(&seen).cloned().collect::<Vec<_>>() {
                            known.remove(&name);
                            self.cache().remove_node(&name);
                            self.queue.move_on_event(ClusterEvent::NodeDelete);
                        }
                    }
                    self.nodes_synced.store(true, Ordering::SeqCst);
                    // Pods that failed before the node list was complete get another chance.
                    self.queue.move_on_event(ClusterEvent::NodeAdd);
                }
                Ok(watcher::Event::Apply(n)) => self.on_node(n, &mut known),
                Ok(watcher::Event::Delete(n)) => {
                    if let Some(name) = n.metadata.name.as_deref() {
                        known.remove(name);
                        self.cache().remove_node(name);
                        self.queue.move_on_event(ClusterEvent::NodeDelete);
                    }
                }
                Err(e) => warn!(error = %e, "node watch error"),
            }
        }
    }

    fn on_node(&self, node: Node, known: &mut HashSet<String>) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let event = if known.insert(name) {
            ClusterEvent::NodeAdd
        } else {
            ClusterEvent::NodeUpdate
        };
        self.cache().add_node(Arc::new(node));
        self.queue.move_on_event(event);
    }

    async fn run_namespace_informer(self: Arc<Self>) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(ns)) | Ok(watcher::Event::InitApply(ns)) => {
                    if let Some(name) = ns.metadata.name.as_deref() {
                        self.cache().set_namespace(
                            name,
                            Some(ns.metadata.labels.clone().unwrap_or_default()),
                        );
                        self.queue.move_on_event(ClusterEvent::NamespaceChange);
                    }
                }
                Ok(watcher::Event::Delete(ns)) => {
                    if let Some(name) = ns.metadata.name.as_deref() {
                        self.cache().set_namespace(name, None);
                    }
                }
                Ok(_) => {}
                Err(e) => debug!(error = %e, "namespace watch error"),
            }
        }
    }

    /// Wait for the informers' first lists.
    pub async fn wait_for_sync(&self) {
        while !self.synced() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The scheduling loop; returns when the queue is closed.
    pub async fn run(self: Arc<Self>) {
        self.wait_for_sync().await;
        info!(profiles = ?self.profiles.keys().collect::<Vec<_>>(), "starting the scheduling loop");
        let q = self.queue.clone();
        let flusher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                q.flush_backoff_completed();
                n += 1;
                if n.is_multiple_of(30) {
                    q.flush_unschedulable_leftover();
                }
            }
        });
        while let Some(qpi) = self.queue.pop().await {
            self.schedule_one(qpi).await;
        }
        flusher.abort();
    }

    /// Stop the scheduling loop.
    pub fn stop(&self) {
        self.queue.close();
    }

    async fn schedule_one(self: &Arc<Self>, qpi: QueuedPodInfo) {
        let pod = qpi.pod.clone();
        let Some(fwk) = self.profiles.get(&pod.scheduler_name).cloned() else {
            self.queue.done(&pod.uid);
            return;
        };
        let start = Instant::now();
        enum Outcome {
            Assumed(Arc<PodInfo>, String, CycleState),
            Unschedulable(crate::algorithm::FitError, Option<PostFilterResult>),
            Error(String),
            Skip,
        }
        let outcome = {
            let mut cache = self.cache();
            if cache.contains(&pod.uid) {
                Outcome::Skip
            } else {
                let mut state = CycleState::default();
                let mut next = self.next_start.lock().unwrap_or_else(|e| e.into_inner());
                match algorithm::schedule_pod(
                    &fwk,
                    &mut state,
                    &pod,
                    cache.snapshot_for_cycle(),
                    &mut next,
                    self.percentage,
                ) {
                    Ok(r) => {
                        let assumed = Arc::new(pod.assumed_on(&r.node));
                        match cache.assume(assumed.clone()) {
                            Err(e) => Outcome::Error(e.to_string()),
                            Ok(()) => {
                                let st = fwk.run_reserve(&mut state, &assumed, &r.node);
                                let st = if st.is_success() {
                                    fwk.run_permit(&state, &assumed, &r.node)
                                } else {
                                    st
                                };
                                if st.is_success() {
                                    Outcome::Assumed(assumed, r.node, state)
                                } else {
                                    fwk.run_unreserve(&mut state, &assumed, &r.node);
                                    cache.forget(&pod.uid);
                                    Outcome::Error(st.message())
                                }
                            }
                        }
                    }
                    Err(ScheduleError::Fit(mut fe)) => {
                        let mut post = None;
                        if fwk.has_post_filter() && fe.num_all_nodes > 0 {
                            let (res, st) =
                                fwk.run_post_filter(&state, &pod, cache.snapshot(), &fe.statuses);
                            if !st.is_success() {
                                fe.post_filter_msg = st.message();
                            }
                            if let Some(n) = res.nominated_node.clone() {
                                cache.set_nominated(pod.clone(), Some(&n));
                                for p in &res.clear_nominations {
                                    cache.set_nominated(p.clone(), None);
                                }
                                post = Some(res);
                            }
                        }
                        Outcome::Unschedulable(fe, post)
                    }
                    Err(ScheduleError::Internal(st)) => Outcome::Error(st.message()),
                }
            }
        };
        let profile = fwk.profile.clone();
        match outcome {
            Outcome::Skip => self.queue.done(&pod.uid),
            Outcome::Assumed(assumed, node, state) => {
                let Ok(permit) = self.bind_permits.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    this.bind(fwk, qpi, assumed, node, state, start).await;
                    drop(permit);
                });
            }
            Outcome::Unschedulable(fe, post) => {
                self.metrics
                    .attempt(&profile, "unschedulable", start.elapsed().as_secs_f64());
                let msg = fe.message();
                let nominated = post.as_ref().and_then(|p| p.nominated_node.clone());
                if let Some(p) = post {
                    self.preempt(&pod, p);
                }
                let mut qpi = qpi;
                qpi.unschedulable_plugins = fe.unschedulable_plugins.clone();
                self.handle_failure(qpi, true, "Unschedulable", msg, nominated);
            }
            Outcome::Error(msg) => {
                self.metrics
                    .attempt(&profile, "error", start.elapsed().as_secs_f64());
                self.handle_failure(qpi, false, "SchedulerError", msg, None);
            }
        }
    }

    async fn bind(
        self: Arc<Self>,
        fwk: Arc<Framework>,
        qpi: QueuedPodInfo,
        assumed: Arc<PodInfo>,
        node: String,
        mut state: CycleState,
        start: Instant,
    ) {
        let mut st = fwk.run_pre_bind(&assumed, &node).await;
        if st.is_success() {
            st = fwk.run_bind(&assumed, &node).await;
        }
        if st.is_success() {
            self.queue.done(&assumed.uid);
            self.metrics
                .attempt(&fwk.profile, "scheduled", start.elapsed().as_secs_f64());
            self.metrics
                .e2e_duration
                .with_label_values(&[&qpi.attempts.min(15).to_string()])
                .observe(qpi.initial.elapsed().as_secs_f64());
            fwk.run_post_bind(&assumed, &node);
            let note = format!(
                "Successfully assigned {}/{} to {}",
                assumed.namespace, assumed.name, node
            );
            self.events.emit(
                &qpi.pod.pod,
                EventType::Normal,
                "Scheduled",
                "Binding",
                note,
                false,
            );
            return;
        }
        self.cache().forget(&assumed.uid);
        fwk.run_unreserve(&mut state, &assumed, &node);
        self.metrics
            .attempt(&fwk.profile, "error", start.elapsed().as_secs_f64());
        warn!(pod = %assumed.key(), node = %node, error = %st.message(), "binding failed");
        self.handle_failure(
            qpi,
            false,
            "SchedulerError",
            format!("Binding rejected: {}", st.message()),
            None,
        );
    }

    /// Evict the victims and clear displaced nominations (upstream's prepareCandidate).
    fn preempt(self: &Arc<Self>, preemptor: &Arc<PodInfo>, res: PostFilterResult) {
        let Some(node) = res.nominated_node.clone() else {
            return;
        };
        self.metrics.preemption_attempts.inc();
        self.metrics
            .preemption_victims
            .observe(res.victims.len() as f64);
        for v in res.victims {
            let this = self.clone();
            let preemptor = preemptor.clone();
            let node = node.clone();
            tokio::spawn(async move {
                let api: Api<Pod> = Api::namespaced(this.client.clone(), &v.namespace);
                let cond = json!({"status": {"conditions": merged_conditions(&v.pod, "DisruptionTarget", "True", "PreemptionByScheduler",
                    &format!("{}: preempting to accommodate a higher priority pod", preemptor_scheduler(&preemptor)))}});
                if let Err(e) = api
                    .patch_status(&v.name, &PatchParams::default(), &Patch::Merge(&cond))
                    .await
                {
                    debug!(pod = %v.key(), error = %e, "setting DisruptionTarget failed");
                }
                match api.delete(&v.name, &DeleteParams::default()).await {
                    Ok(_) => {
                        info!(victim = %v.key(), preemptor = %preemptor.key(), node = %node, "preempted");
                        let note = format!("Preempted by pod {} on node {}", preemptor.uid, node);
                        this.events.emit(
                            &v.pod,
                            EventType::Normal,
                            "Preempted",
                            "Preempting",
                            note,
                            true,
                        );
                    }
                    Err(e) => {
                        warn!(victim = %v.key(), error = %e, "deleting preemption victim failed")
                    }
                }
            });
        }
        for p in res.clear_nominations {
            let client = self.client.clone();
            tokio::spawn(async move {
                let api: Api<Pod> = Api::namespaced(client, &p.namespace);
                let body = json!({"status": {"nominatedNodeName": null}});
                if let Err(e) = api
                    .patch_status(&p.name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                {
                    debug!(pod = %p.key(), error = %e, "clearing nominatedNodeName failed");
                }
            });
        }
    }

    /// Upstream's condition for pods held back by scheduling gates.
    fn mark_gated(&self, pod: &Arc<PodInfo>) {
        const REASON: &str = "SchedulingGated";
        const MSG: &str = "Scheduling is blocked due to non-empty scheduling gates";
        let current = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        if current.is_some_and(|c| c.reason.as_deref() == Some(REASON)) {
            return;
        }
        let body = json!({"status": {"conditions": merged_conditions(&pod.pod, "PodScheduled", "False", REASON, MSG)}});
        let (client, pod) = (self.client.clone(), pod.clone());
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
            if let Err(e) = api
                .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                debug!(pod = %pod.key(), error = %e, "setting SchedulingGated failed");
            }
        });
    }

    /// Requeue, emit FailedScheduling, and set PodScheduled=False (plus nominatedNodeName).
    fn handle_failure(
        self: &Arc<Self>,
        qpi: QueuedPodInfo,
        unschedulable: bool,
        reason: &'static str,
        msg: String,
        nominated: Option<String>,
    ) {
        let pod = qpi.pod.clone();
        self.queue.requeue_failed(qpi, unschedulable);
        {
            // Bound meanwhile (e.g. by another scheduler): nothing to report.
            let c = self.cache();
            if c.contains(&pod.uid) && !c.is_assumed(&pod.uid) {
                return;
            }
        }
        debug!(pod = %pod.key(), reason, message = %msg, "unable to schedule pod");
        self.events.emit(
            &pod.pod,
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            msg.clone(),
            true,
        );
        let current = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let same_condition = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(msg.as_str())
        });
        let same_nomination =
            nominated.is_none() || nominated.as_deref() == pod.nominated_node_name();
        if same_condition && same_nomination {
            return;
        }
        let mut status = json!({"conditions": merged_conditions(&pod.pod, "PodScheduled", "False", reason, &msg)});
        if let Some(n) = nominated {
            status["nominatedNodeName"] = json!(n);
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
            if let Err(e) = api
                .patch_status(
                    &pod.name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({ "status": status })),
                )
                .await
            {
                debug!(pod = %pod.key(), error = %e, "updating pod status failed");
            }
        });
    }
}

fn preemptor_scheduler(p: &PodInfo) -> &str {
    &p.scheduler_name
}

/// The pod's conditions with `type_` replaced (lastTransitionTime kept when the status is unchanged).
fn merged_conditions(
    pod: &Pod,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut out = Vec::new();
    let mut found = false;
    for c in pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        let mut v = serde_json::to_value(c).unwrap_or_default();
        if c.type_ == type_ {
            found = true;
            let transition = if c.status == status {
                v["lastTransitionTime"].clone()
            } else {
                json!(now)
            };
            v = json!({"type": type_, "status": status, "reason": reason, "message": message, "lastProbeTime": null, "lastTransitionTime": transition});
        }
        out.push(v);
    }
    if !found {
        out.push(json!({"type": type_, "status": status, "reason": reason, "message": message, "lastProbeTime": null, "lastTransitionTime": now}));
    }
    serde_json::Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PodBuilder;

    #[test]
    fn conditions_are_replaced_in_place() {
        let mut pod = PodBuilder::new("p").build();
        let v = merged_conditions(&pod, "PodScheduled", "False", "Unschedulable", "no");
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["reason"], "Unschedulable");
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            conditions: Some(vec![
                k8s_openapi::api::core::v1::PodCondition {
                    type_: "Other".into(),
                    status: "True".into(),
                    ..Default::default()
                },
                k8s_openapi::api::core::v1::PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        });
        let v = merged_conditions(
            &pod,
            "PodScheduled",
            "False",
            "Unschedulable",
            "new message",
        );
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["type"], "Other");
        assert_eq!(a[1]["message"], "new message");
    }
}
