//! The Job controller: runs pods until `completions` succeed (NonIndexed) or every index in
//! `0..completions` succeeded (Indexed), at most `parallelism` at a time; failed pods are
//! replaced with exponential backoff until `backoffLimit`; `activeDeadlineSeconds`,
//! `podFailurePolicy`, `successPolicy` and `suspend` behave as upstream, with the
//! SuccessCriteriaMet/Complete and FailureTarget/Failed conditions. Terminated pods are
//! counted once: pods carry the `batch.kubernetes.io/job-tracking` finalizer until their
//! outcome is recorded in the Job status.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::expectations::Expectations;
use crate::informer::{Change, Informer, enqueue_on_change_with_expectations, enqueue_owner_with_expectations};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, object_ref, owner_ref, split_key};
use crate::{ControllerContext, Error};

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
pub const INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// Parse `"1,3-5"` into indexes below `completions`.
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            out.extend((a..=b).filter(|i| *i >= 0 && *i < completions));
        }
    }
    out
}

/// Format indexes as upstream: sorted, consecutive runs collapsed to `a-b`.
pub fn format_indexes(idx: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut it = idx.iter().peekable();
    while let Some(&start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    parts.join(",")
}

/// The first podFailurePolicy rule matching a failed pod (its action), if any.
pub fn failure_policy_action<'a>(rules: &'a [PodFailurePolicyRule], pod: &Pod) -> Option<&'a str> {
    let statuses: Vec<_> = pod.status.iter().flat_map(|s| s.container_statuses.iter().flatten()).collect();
    for rule in rules {
        if let Some(req) = &rule.on_exit_codes {
            let matched = statuses.iter().filter(|c| req.container_name.as_ref().is_none_or(|n| n == &c.name)).any(|c| {
                let Some(code) = c.state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code) else { return false };
                match req.operator.as_str() {
                    "In" => code != 0 && req.values.contains(&code),
                    "NotIn" => code != 0 && !req.values.contains(&code),
                    _ => false,
                }
            });
            if matched {
                return Some(rule.action.as_str());
            }
        }
        if let Some(pats) = &rule.on_pod_conditions {
            let conds = pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            if pats.iter().any(|p| conds.iter().any(|c| c.type_ == p.type_ && c.status == p.status)) {
                return Some(rule.action.as_str());
            }
        }
    }
    None
}

fn pod_index(p: &Pod) -> Option<i32> {
    p.annotations().get(INDEX_ANNOTATION).and_then(|v| v.parse().ok())
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn condition_true(s: &JobStatus, t: &str) -> bool {
    s.conditions.iter().flatten().any(|c| c.type_ == t && c.status == "True")
}

pub fn is_finished(job: &Job) -> bool {
    job.status.as_ref().is_some_and(|s| condition_true(s, "Complete") || condition_true(s, "Failed"))
}

fn set_condition(s: &mut JobStatus, type_: &str, status: &str, reason: &str, message: &str) {
    let now = util::now_time();
    let conds = s.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = Some(now.clone());
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(now);
        return;
    }
    conds.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    });
}

pub struct JobController {
    client: Client,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    /// Per job: the failure count last seen and when it grew (for the backoff).
    backoff: Mutex<HashMap<String, (i32, Instant)>>,
    events: Events,
}

impl JobController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(JobController {
            client: ctx.client.clone(),
            jobs: ctx.informers.get::<Job>(),
            pods: ctx.informers.get::<Pod>(),
            queue: WorkQueue::new("job"),
            expectations: Arc::new(Expectations::default()),
            backoff: Mutex::new(HashMap::new()),
            events: Events::new(ctx.client.clone(), "job-controller"),
        });
        enqueue_on_change_with_expectations(&c.jobs, &c.queue, &c.expectations);
        enqueue_owner_with_expectations(&c.pods, &c.jobs, &c.queue, &c.expectations);
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.jobs.wait_synced().await;
        self.pods.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn remove_tracking_finalizers(&self, pods: &[Arc<Pod>]) -> Result<(), Error> {
        let results = join_all(pods.iter().filter(|p| p.finalizers().iter().any(|f| f == TRACKING_FINALIZER)).map(|p| async move {
            let fins: Vec<&String> = p.finalizers().iter().filter(|f| *f != TRACKING_FINALIZER).collect();
            let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": p.metadata.resource_version}});
            self.pod_api(p.metadata.namespace.as_deref().unwrap_or("")).patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await
        }))
        .await;
        let mut retry = false;
        for r in results {
            match r {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) if util::is_status(&e, 409) => retry = true,
                Err(e) => return Err(e.into()),
            }
        }
        if retry {
            return Err(Error::Invalid("pod changed while removing the tracking finalizer; retrying".into()));
        }
        Ok(())
    }

    async fn delete_pods(&self, job: &Job, key: &str, pods: &[Arc<Pod>]) -> Result<(), Error> {
        if pods.is_empty() {
            return Ok(());
        }
        self.expectations.expect_deletions(key, pods.iter().filter_map(|p| p.metadata.uid.clone()));
        let results = join_all(pods.iter().map(|p| async move {
            (p.name_any(), p.metadata.uid.clone(), self.pod_api(p.metadata.namespace.as_deref().unwrap_or("")).delete(&p.name_any(), &DeleteParams::background()).await)
        }))
        .await;
        for (name, uid, r) in results {
            match r {
                Ok(_) => self.events.normal(object_ref(job), "SuccessfulDelete", format!("Deleted pod: {name}")),
                Err(e) => {
                    self.expectations.deletion_observed(key, uid.as_deref().unwrap_or(""));
                    if !util::is_status(&e, 404) {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(ns, name) else {
            self.backoff.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(None);
        };
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> =
            self.pods.list_namespace(ns).into_iter().filter(|p| controller_ref(&p.metadata).is_some_and(|r| r.uid == uid)).collect();
        if is_finished(&job) {
            // Everything is counted; let the pods go.
            self.remove_tracking_finalizers(&pods).await?;
            let u = job.status.as_ref().and_then(|s| s.uncounted_terminated_pods.clone()).unwrap_or_default();
            if u.succeeded.is_some_and(|l| !l.is_empty()) || u.failed.is_some_and(|l| !l.is_empty()) {
                let patch = json!({"status": {"uncountedTerminatedPods": {"succeeded": null, "failed": null}}});
                Api::<Job>::namespaced(self.client.clone(), ns).patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            return Ok(None);
        }
        let spec = job.spec.clone().unwrap_or_default();
        let old = job.status.clone().unwrap_or_default();
        let mut status = old.clone();
        let indexed = is_indexed(&job);
        let completions = spec.completions;
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let rules = spec.pod_failure_policy.as_ref().map(|p| p.rules.clone()).unwrap_or_default();
        let tracked = |p: &Pod| p.finalizers().iter().any(|f| f == TRACKING_FINALIZER);

        // Terminated pods are counted exactly once: their uids go into
        // status.uncountedTerminatedPods together with the new counts (one write), the tracking
        // finalizer is removed afterwards, and the uid leaves the list once the finalizer is gone.
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let still_tracked: BTreeSet<String> = pods.iter().filter(|p| tracked(p)).filter_map(|p| p.metadata.uid.clone()).collect();
        for list in [&mut uncounted.succeeded, &mut uncounted.failed] {
            if let Some(l) = list.as_mut() {
                l.retain(|u| still_tracked.contains(u));
            }
        }
        let in_uncounted = |uid: &str| uncounted.succeeded.iter().chain(uncounted.failed.iter()).flatten().any(|u| u == uid);
        let already: BTreeSet<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).filter(|u| in_uncounted(u)).collect();
        let mut newly_counted: Vec<Arc<Pod>> = pods.iter().filter(|p| p.metadata.uid.as_ref().is_some_and(|u| already.contains(u))).cloned().collect();
        let mut completed = parse_indexes(status.completed_indexes.as_deref().unwrap_or(""), completions.unwrap_or(0));
        let mut fail_job: Option<(String, String)> = None;
        for p in &pods {
            if !tracked(p) || p.metadata.uid.as_ref().is_some_and(|u| already.contains(u)) {
                continue;
            }
            let uid = p.metadata.uid.clone().unwrap_or_default();
            match util::pod_phase(p) {
                "Succeeded" => {
                    if indexed {
                        if let Some(i) = pod_index(p) {
                            completed.insert(i);
                        }
                    } else {
                        status.succeeded = Some(status.succeeded.unwrap_or(0) + 1);
                    }
                    uncounted.succeeded.get_or_insert_with(Vec::new).push(uid);
                    newly_counted.push(p.clone());
                }
                phase if phase == "Failed" || p.metadata.deletion_timestamp.is_some() => {
                    match failure_policy_action(&rules, p) {
                        Some("Ignore") => {}
                        Some("FailJob") => {
                            status.failed = Some(status.failed.unwrap_or(0) + 1);
                            fail_job = Some((
                                "PodFailurePolicy".into(),
                                format!("Container for pod {}/{} failed with a FailJob rule of the pod failure policy", ns, p.name_any()),
                            ));
                        }
                        _ => status.failed = Some(status.failed.unwrap_or(0) + 1),
                    }
                    uncounted.failed.get_or_insert_with(Vec::new).push(uid);
                    newly_counted.push(p.clone());
                }
                _ => {}
            }
        }
        if indexed {
            status.completed_indexes = Some(format_indexes(&completed));
            status.succeeded = Some(completed.len() as i32);
        }
        let active: Vec<Arc<Pod>> = pods.iter().filter(|p| util::is_pod_active(p)).cloned().collect();
        let succeeded = status.succeeded.unwrap_or(0);
        let failed = status.failed.unwrap_or(0);
        let suspended = spec.suspend == Some(true);
        let now = util::now();

        if fail_job.is_none() && failed > backoff_limit {
            fail_job = Some(("BackoffLimitExceeded".into(), "Job has reached the specified backoff limit".into()));
        }
        if fail_job.is_none()
            && !suspended
            && let (Some(deadline), Some(start)) = (spec.active_deadline_seconds, status.start_time.as_ref())
            && start.0.as_second() + deadline <= now.as_second()
        {
            fail_job = Some(("DeadlineExceeded".into(), "Job was active longer than specified deadline".into()));
        }
        // Success: by completions, by index set, or by the success policy.
        let mut success = match (indexed, completions) {
            (true, Some(c)) => completed.len() as i32 >= c,
            (false, Some(c)) => succeeded >= c,
            (_, None) => succeeded > 0 && active.is_empty(),
        };
        let mut success_reason = "CompletionsReached";
        if !success && indexed && let Some(sp) = &spec.success_policy {
            for rule in &sp.rules {
                let wanted = rule.succeeded_indexes.as_deref().map(|s| parse_indexes(s, completions.unwrap_or(0)));
                let done = match &wanted {
                    Some(w) => w.intersection(&completed).count() as i32,
                    None => completed.len() as i32,
                };
                let all_wanted = wanted.as_ref().is_none_or(|w| w.is_subset(&completed));
                let ok = match rule.succeeded_count {
                    Some(n) => done >= n,
                    None => all_wanted && wanted.is_some(),
                };
                if ok {
                    success = true;
                    success_reason = "SuccessPolicy";
                    break;
                }
            }
        }

        let mut requeue = None;
        status.ready = Some(active.iter().filter(|p| util::is_pod_ready(p)).count() as i32);
        status.terminating = Some(pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some() && !util::is_pod_terminal(p)).count() as i32);
        if let Some((reason, message)) = fail_job {
            self.delete_pods(&job, key, &active).await?;
            set_condition(&mut status, "FailureTarget", "True", &reason, &message);
            set_condition(&mut status, "Failed", "True", &reason, &message);
            status.active = Some(0);
            self.events.warning(object_ref(job.as_ref()), &reason, message);
        } else if success {
            self.delete_pods(&job, key, &active).await?;
            let msg = if success_reason == "SuccessPolicy" { "Matched rules at index 0" } else { "Reached expected number of succeeded pods" };
            set_condition(&mut status, "SuccessCriteriaMet", "True", success_reason, msg);
            set_condition(&mut status, "Complete", "True", success_reason, msg);
            status.completion_time = Some(util::now_time());
            status.active = Some(0);
            self.events.normal(object_ref(job.as_ref()), "Completed", "Job completed");
        } else if suspended {
            self.delete_pods(&job, key, &active).await?;
            if !condition_true(&status, "Suspended") {
                set_condition(&mut status, "Suspended", "True", "JobSuspended", "Job suspended");
                self.events.normal(object_ref(job.as_ref()), "Suspended", "Job suspended");
            }
            status.active = Some(0);
        } else {
            if condition_true(&status, "Suspended") {
                set_condition(&mut status, "Suspended", "False", "JobResumed", "Job resumed");
                self.events.normal(object_ref(job.as_ref()), "Resumed", "Job resumed");
                status.start_time = Some(util::now_time());
            }
            if status.start_time.is_none() {
                status.start_time = Some(util::now_time());
            }
            if let Some(d) = spec.active_deadline_seconds {
                let start = status.start_time.as_ref().map(|t| t.0.as_second()).unwrap_or(now.as_second());
                requeue = Some(Duration::from_secs((start + d - now.as_second()).max(1) as u64));
            }
            if self.expectations.satisfied(key) {
                let wait = self.backoff_wait(key, failed);
                if wait.is_zero() {
                    self.manage(&job, key, &active, &completed, succeeded, parallelism, completions, indexed).await?;
                } else {
                    requeue = Some(requeue.map_or(wait, |r: Duration| r.min(wait)));
                }
            }
            status.active = Some(active.len() as i32);
        }
        for list in [&mut uncounted.succeeded, &mut uncounted.failed] {
            if list.as_ref().is_some_and(|l| l.is_empty()) {
                *list = None;
            }
        }
        status.uncounted_terminated_pods = Some(uncounted);
        status.succeeded = Some(status.succeeded.unwrap_or(0));
        status.failed = Some(status.failed.unwrap_or(0));
        if status != old {
            let patch = json!({"status": status});
            Api::<Job>::namespaced(self.client.clone(), ns).patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        // Recorded: the counted pods may go now.
        self.remove_tracking_finalizers(&newly_counted).await?;
        Ok(requeue)
    }

    /// Time left before replacing failed pods: 10s, 20s, 40s ... up to 6 minutes after the
    /// last observed failure.
    fn backoff_wait(&self, key: &str, failed: i32) -> Duration {
        if failed == 0 {
            return Duration::ZERO;
        }
        let mut m = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let entry = m.entry(key.to_string()).or_insert((failed, Instant::now()));
        if entry.0 != failed {
            *entry = (failed, Instant::now());
        }
        let delay = BACKOFF_BASE.saturating_mul(1u32 << (failed - 1).clamp(0, 10) as u32).min(BACKOFF_MAX);
        delay.saturating_sub(entry.1.elapsed())
    }

    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        job: &Job,
        key: &str,
        active: &[Arc<Pod>],
        completed: &BTreeSet<i32>,
        succeeded: i32,
        parallelism: i32,
        completions: Option<i32>,
        indexed: bool,
    ) -> Result<(), Error> {
        let active_n = active.len() as i32;
        let want = match completions {
            Some(c) if !indexed => parallelism.min((c - succeeded).max(0)),
            Some(c) => parallelism.min((c - completed.len() as i32).max(0)),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        if active_n > want {
            // Newest first, as upstream does when parallelism shrinks.
            let mut extra: Vec<Arc<Pod>> = active.to_vec();
            extra.sort_by(|a, b| crate::controllers::replicaset::deletion_order(a, b));
            extra.truncate((active_n - want) as usize);
            return self.delete_pods(job, key, &extra).await;
        }
        if active_n == want {
            return Ok(());
        }
        let mut indexes: Vec<Option<i32>> = Vec::new();
        if indexed {
            let running: BTreeSet<i32> = active.iter().filter_map(|p| pod_index(p)).collect();
            indexes = (0..completions.unwrap_or(0))
                .filter(|i| !completed.contains(i) && !running.contains(i))
                .take((want - active_n) as usize)
                .map(Some)
                .collect();
        } else {
            indexes.resize((want - active_n) as usize, None);
        }
        if indexes.is_empty() {
            return Ok(());
        }
        self.expectations.expect_creations(key, indexes.len());
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let results = join_all(indexes.iter().map(|i| {
            let pod = self.pod_for(job, *i);
            let api = self.pod_api(&ns);
            async move { api.create(&PostParams::default(), &pod).await }
        }))
        .await;
        let mut err = None;
        for r in results {
            match r {
                Ok(p) => self.events.normal(object_ref(job), "SuccessfulCreate", format!("Created pod: {}", p.name_any())),
                Err(e) => {
                    self.expectations.creation_observed(key);
                    self.events.warning(object_ref(job), "FailedCreate", format!("Error creating: {e}"));
                    err = Some(e);
                }
            }
        }
        err.map_or(Ok(()), |e| Err(e.into()))
    }

    fn pod_for(&self, job: &Job, index: Option<i32>) -> Pod {
        let spec = job.spec.clone().unwrap_or_default();
        let tmeta = spec.template.metadata.clone().unwrap_or_default();
        let name = job.name_any();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let mut labels = tmeta.labels.clone().unwrap_or_default();
        for (k, v) in [("batch.kubernetes.io/controller-uid", &uid), ("batch.kubernetes.io/job-name", &name), ("controller-uid", &uid), ("job-name", &name)] {
            labels.insert(k.to_string(), v.clone());
        }
        let mut annotations = tmeta.annotations.clone().unwrap_or_default();
        let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
        let mut generate_name = format!("{name}-");
        if let Some(i) = index {
            annotations.insert(INDEX_ANNOTATION.into(), i.to_string());
            labels.insert(INDEX_LABEL.into(), i.to_string());
            generate_name = format!("{name}-{i}-");
            if pod_spec.hostname.is_none() {
                pod_spec.hostname = Some(format!("{name}-{i}"));
            }
            for c in pod_spec.containers.iter_mut().chain(pod_spec.init_containers.iter_mut().flatten()) {
                let env = c.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    env.push(EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value: None,
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector { api_version: None, field_path: format!("metadata.annotations['{INDEX_ANNOTATION}']") }),
                            ..Default::default()
                        }),
                    });
                }
            }
        }
        let mut finalizers = tmeta.finalizers.clone().unwrap_or_default();
        finalizers.push(TRACKING_FINALIZER.into());
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(generate_name),
                namespace: job.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                finalizers: Some(finalizers),
                owner_references: Some(vec![owner_ref(job)]),
                ..Default::default()
            },
            spec: Some(pod_spec),
            status: None,
        }
    }
}

/// The ttl-after-finished controller: deletes finished Jobs `ttlSecondsAfterFinished` after
/// they finished (their pods go with them through the garbage collector).
pub struct TtlAfterFinishedController {
    client: Client,
    jobs: Arc<Informer<Job>>,
    queue: Arc<WorkQueue>,
}

impl TtlAfterFinishedController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(TtlAfterFinishedController { client: ctx.client.clone(), jobs: ctx.informers.get::<Job>(), queue: WorkQueue::new("ttl_jobs_to_delete") });
        let q = c.queue.clone();
        c.jobs.add_handler(move |ch| {
            let j = ch.object();
            if !matches!(ch, Change::Deleted(_)) && j.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished).is_some() && is_finished(j) {
                q.add(util::key_of(j.as_ref()));
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.jobs.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(ns, name) else { return Ok(None) };
        let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else { return Ok(None) };
        if !is_finished(&job) || job.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let st = job.status.clone().unwrap_or_default();
        let finished_at = st
            .completion_time
            .clone()
            .or_else(|| st.conditions.iter().flatten().find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True").and_then(|c| c.last_transition_time.clone()))
            .map(|t| t.0.as_second())
            .unwrap_or(util::now().as_second());
        let left = finished_at + i64::from(ttl) - util::now().as_second();
        if left > 0 {
            return Ok(Some(Duration::from_secs(left as u64)));
        }
        info!(job = key, "deleting finished job past its ttlSecondsAfterFinished");
        let dp = DeleteParams { propagation_policy: Some(kube::api::PropagationPolicy::Foreground), ..Default::default() };
        match Api::<Job>::namespaced(self.client.clone(), ns).delete(name, &dp).await {
            Ok(_) => Ok(None),
            Err(e) if util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sets_round_trip() {
        let s = parse_indexes("0,2-4,7", 6);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec![0, 2, 3, 4]);
        assert_eq!(format_indexes(&s), "0,2-4");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert_eq!(format_indexes(&BTreeSet::from([5])), "5");
    }

    #[test]
    fn pod_failure_policy_matches_exit_codes_and_conditions() {
        let rules: Vec<PodFailurePolicyRule> = serde_json::from_value(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0, 42]}}
        ]))
        .unwrap();
        let pod = |code: i32, disrupted: bool| -> Pod {
            serde_json::from_value(json!({"status": {
                "phase": "Failed",
                "conditions": if disrupted { json!([{"type": "DisruptionTarget", "status": "True"}]) } else { json!([]) },
                "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code}}}]
            }}))
            .unwrap()
        };
        assert_eq!(failure_policy_action(&rules, &pod(42, false)), Some("FailJob"));
        assert_eq!(failure_policy_action(&rules, &pod(1, false)), Some("Count"));
        assert_eq!(failure_policy_action(&rules, &pod(42, true)), Some("Ignore"));
        assert_eq!(failure_policy_action(&[], &pod(1, false)), None);
    }
}
