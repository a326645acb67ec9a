//! The disruption controller: keeps every PodDisruptionBudget's status current so the
//! apiserver's eviction subresource can decide whether a voluntary disruption is allowed.
//! It counts the healthy (Ready, not deleting, not recently evicted) pods the budget selects,
//! derives how many must stay healthy from `minAvailable`/`maxUnavailable` (percentages of the
//! scale of the pods' controllers), and prunes the `disruptedPods` entries the eviction
//! subresource leaves behind once their pod is gone or two minutes have passed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::core::SelectorExt;
use kube::{Client, ResourceExt};
use tracing::{debug, info};

use crate::informer::{Change, Informer, Object, enqueue_namespace_on_change, enqueue_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, key, split_key};
use crate::{ControllerContext, Error};

/// How long an evicted pod may stay in `disruptedPods` before it counts again (upstream's
/// DeletionTimeout).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// Whether a PDB selects pods with these labels. In policy/v1 an empty selector selects every
/// pod of the namespace and a missing one selects none.
pub fn pdb_selects(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    match sel {
        None => false,
        Some(ls) if util::is_empty_selector(ls) => true,
        Some(ls) => util::selector(ls).is_some_and(|s| s.matches(labels)),
    }
}

/// `v` as an absolute number against `total`: an integer as is, `"N%"` scaled, rounding up or
/// down (upstream's GetScaledValueFromIntOrPercent).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let prod = pct * i64::from(total);
            let v = if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// What the budget needs: (expectedPods, desiredHealthy). `expected_scale` sums the scale of
/// the selected pods' controllers; it is only consulted for percentages and maxUnavailable.
pub fn expected_and_desired(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    selected_pods: usize,
    expected_scale: impl FnOnce() -> Result<i32, String>,
) -> Result<(i32, i32), String> {
    if let Some(mu) = max_unavailable {
        let expected = expected_scale()?;
        let max_unavailable = scaled_value(mu, expected, true)?;
        return Ok((expected, (expected - max_unavailable).max(0)));
    }
    match min_available {
        Some(IntOrString::Int(n)) => Ok((selected_pods as i32, *n)),
        Some(ma) => {
            let expected = expected_scale()?;
            Ok((expected, scaled_value(ma, expected, true)?))
        }
        None => Ok((0, 0)),
    }
}

/// The `disruptedPods` entries still in force at `now`, and when the earliest of them expires.
/// Entries of pods that are gone or being deleted are dropped, as are expired ones.
pub fn live_disrupted_pods(
    pods: &[Arc<Pod>],
    recorded: Option<&BTreeMap<String, Time>>,
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<String>) {
    let (mut live, mut recheck, mut expired) = (BTreeMap::new(), None::<Timestamp>, Vec::new());
    let Some(recorded) = recorded else {
        return (live, recheck, expired);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.name_any();
        let Some(t) = recorded.get(&name) else {
            continue;
        };
        let deadline = t.0.as_millisecond() + DELETION_TIMEOUT.as_millis() as i64;
        if deadline < now.as_millisecond() {
            expired.push(name);
        } else {
            if recheck.is_none_or(|r| deadline < r.as_millisecond()) {
                recheck = Timestamp::from_millisecond(deadline).ok();
            }
            live.insert(name, t.clone());
        }
    }
    (live, recheck, expired)
}

/// Ready pods that are neither being deleted nor waiting for an eviction to take effect.
pub fn count_healthy(pods: &[Arc<Pod>], disrupted: &BTreeMap<String, Time>) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(&p.name_any()))
        .filter(|p| util::is_pod_ready(p))
        .count() as i32
}

/// Set (or update) a condition, moving lastTransitionTime only when the status changes.
pub fn set_condition(conds: &mut Vec<Condition>, mut c: Condition) {
    match conds.iter_mut().find(|x| x.type_ == c.type_) {
        Some(cur) => {
            if cur.status != c.status {
                cur.status = std::mem::take(&mut c.status);
                cur.last_transition_time = c.last_transition_time;
            }
            cur.reason = c.reason;
            cur.message = c.message;
            cur.observed_generation = c.observed_generation;
        }
        None => conds.push(c),
    }
}

fn allowed_condition(allowed: i32, generation: Option<i64>, now: Timestamp) -> Condition {
    let (status, reason) = if allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// The status the budget should have, or `None` if its current status is already that
/// (upstream's updatePdbStatus + UpdateDisruptionAllowedCondition).
pub fn next_status(
    pdb: &PodDisruptionBudget,
    current_healthy: i32,
    desired_healthy: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    // A budget over no expected pods allows nothing: its first pods may appear before the
    // controller has counted them.
    let allowed = if expected <= 0 {
        0
    } else {
        (current_healthy - desired_healthy).max(0)
    };
    let cur = pdb.status.clone().unwrap_or_default();
    let generation = pdb.metadata.generation;
    let cond_ok = cur
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
        .is_some_and(|c| {
            if allowed > 0 {
                c.status == "True" && c.reason == SUFFICIENT_PODS
            } else {
                c.status == "False" && c.reason == INSUFFICIENT_PODS
            }
        });
    let cur_disrupted = cur.disrupted_pods.clone().unwrap_or_default();
    if cur.current_healthy == current_healthy
        && cur.desired_healthy == desired_healthy
        && cur.expected_pods == expected
        && cur.disruptions_allowed == allowed
        && cur_disrupted == disrupted
        && cur.observed_generation == generation
        && cond_ok
    {
        return None;
    }
    let mut conditions = cur.conditions.clone().unwrap_or_default();
    set_condition(&mut conditions, allowed_condition(allowed, generation, now));
    Some(PodDisruptionBudgetStatus {
        current_healthy,
        desired_healthy,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: generation,
        conditions: Some(conditions),
    })
}

pub struct DisruptionController {
    client: Client,
    pdbs: Arc<Informer<PodDisruptionBudget>>,
    pods: Arc<Informer<Pod>>,
    rss: Arc<Informer<ReplicaSet>>,
    deployments: Arc<Informer<Deployment>>,
    statefulsets: Arc<Informer<StatefulSet>>,
    rcs: Arc<Informer<ReplicationController>>,
    queue: Arc<WorkQueue>,
    events: Events,
}

impl DisruptionController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(DisruptionController {
            client: ctx.client.clone(),
            pdbs: ctx.informers.get::<PodDisruptionBudget>(),
            pods: ctx.informers.get::<Pod>(),
            rss: ctx.informers.get::<ReplicaSet>(),
            deployments: ctx.informers.get::<Deployment>(),
            statefulsets: ctx.informers.get::<StatefulSet>(),
            rcs: ctx.informers.get::<ReplicationController>(),
            queue: WorkQueue::new("disruption"),
            events: Events::new(ctx.client.clone(), "controllermanager"),
        });
        enqueue_on_change(&c.pdbs, &c.queue);
        let weak = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            if let Change::Updated { old, .. } = ch {
                c.enqueue_for_pod(old);
            }
            c.enqueue_for_pod(ch.object());
        });
        // The expected count of percentage budgets follows the controllers' scale.
        fn on_scale_change<K: Object>(
            c: &DisruptionController,
            inf: &Informer<K>,
            replicas: fn(&K) -> Option<i32>,
        ) {
            enqueue_namespace_on_change(inf, &c.pdbs, &c.queue, move |o, n| {
                replicas(o) != replicas(n)
            });
        }
        on_scale_change(&c, &c.rss, |o| o.spec.as_ref().and_then(|s| s.replicas));
        on_scale_change(&c, &c.deployments, |o| o.spec.as_ref().and_then(|s| s.replicas));
        on_scale_change(&c, &c.statefulsets, |o| o.spec.as_ref().and_then(|s| s.replicas));
        on_scale_change(&c, &c.rcs, |o| o.spec.as_ref().and_then(|s| s.replicas));
        c
    }

    fn enqueue_for_pod(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        for p in self.pdbs.list_namespace(ns) {
            if pdb_selects(
                p.spec.as_ref().and_then(|s| s.selector.as_ref()),
                pod.labels(),
            ) {
                self.queue.add(key(ns, &p.name_any()));
            }
        }
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.pdbs.wait_synced().await;
        self.pods.wait_synced().await;
        self.rss.wait_synced().await;
        self.deployments.wait_synced().await;
        self.statefulsets.wait_synced().await;
        self.rcs.wait_synced().await;
        info!(controller = "disruption", "caches synced; starting workers");
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move {
            c.reconcile(&key).await
        })
        .await;
    }

    /// The scale of the controller of `pod` as (controller uid, replicas), following a
    /// ReplicaSet up to its Deployment (upstream's finders).
    fn controller_scale(&self, ns: &str, pod: &Pod) -> Option<(String, i32)> {
        let r = controller_ref(&pod.metadata)?;
        match (
            r.api_version.split('/').next().unwrap_or(""),
            r.kind.as_str(),
        ) {
            ("apps", "ReplicaSet") => {
                let rs = self
                    .rss
                    .get(ns, &r.name)
                    .filter(|rs| rs.metadata.uid.as_deref() == Some(r.uid.as_str()))?;
                match controller_ref(&rs.metadata) {
                    Some(d) if d.kind == "Deployment" => {
                        let dep = self
                            .deployments
                            .get(ns, &d.name)
                            .filter(|x| x.metadata.uid.as_deref() == Some(d.uid.as_str()))?;
                        Some((
                            d.uid.clone(),
                            dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                        ))
                    }
                    _ => Some((
                        r.uid.clone(),
                        rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )),
                }
            }
            ("apps", "StatefulSet") => {
                let ss = self
                    .statefulsets
                    .get(ns, &r.name)
                    .filter(|x| x.metadata.uid.as_deref() == Some(r.uid.as_str()))?;
                Some((
                    r.uid.clone(),
                    ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            ("v1", "ReplicationController") => {
                let rc = self
                    .rcs
                    .get(ns, &r.name)
                    .filter(|x| x.metadata.uid.as_deref() == Some(r.uid.as_str()))?;
                Some((
                    r.uid.clone(),
                    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            _ => None,
        }
    }

    /// Sum of the scales of the pods' controllers; pods without a controller are reported
    /// separately (upstream's getExpectedScale).
    fn expected_scale(
        &self,
        ns: &str,
        pods: &[Arc<Pod>],
        unmanaged: &mut Vec<String>,
    ) -> Result<i32, String> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        for pod in pods {
            let Some(r) = controller_ref(&pod.metadata) else {
                unmanaged.push(pod.name_any());
                continue;
            };
            if scales.contains_key(&r.uid) {
                continue;
            }
            let (uid, n) = self
                .controller_scale(ns, pod)
                .ok_or_else(|| format!("found no controllers for pod {:?}", pod.name_any()))?;
            scales.insert(uid, n);
        }
        Ok(scales.values().sum())
    }

    /// The one sync function: recompute the budget's status from its pods.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(pdb) = self.pdbs.get(ns, name) else {
            return Ok(None);
        };
        let spec = pdb.spec.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| pdb_selects(spec.selector.as_ref(), p.labels()))
            .collect();
        let oref = util::object_ref(pdb.as_ref());
        if pods.is_empty() {
            self.events
                .normal(oref.clone(), "NoPods", "No matching pods found");
        }
        let mut unmanaged = Vec::new();
        let counted = expected_and_desired(
            spec.min_available.as_ref(),
            spec.max_unavailable.as_ref(),
            pods.len(),
            || self.expected_scale(ns, &pods, &mut unmanaged),
        );
        let now = util::now();
        let (expected, desired) = match counted {
            Ok(v) => v,
            Err(msg) => {
                self.events.warning(
                    oref,
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {msg}"),
                );
                return self.fail_safe(&pdb, &msg, now).await;
            }
        };
        if !unmanaged.is_empty() {
            debug!(pdb = key, pods = ?unmanaged, "unmanaged pods");
            self.events.warning(
                oref,
                "UnmanagedPods",
                format!(
                    "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                    spec.selector.as_ref().and_then(util::selector).map(|s| s.to_string()).unwrap_or_default()
                ),
            );
        }
        let (disrupted, recheck, expired) = live_disrupted_pods(
            &pods,
            pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()),
            now,
        );
        for p in &expired {
            if let Some(pod) = self.pods.get(ns, p) {
                self.events.warning(
                    util::object_ref(pod.as_ref()),
                    "NotDeleted",
                    format!("Pod was expected by PDB {ns}/{name} to be deleted but it wasn't"),
                );
            }
        }
        let healthy = count_healthy(&pods, &disrupted);
        if let Some(status) = next_status(&pdb, healthy, desired, expected, disrupted, now) {
            self.write_status(&pdb, status).await?;
        }
        Ok(recheck.map(|t| {
            Duration::from_millis((t.as_millisecond() - now.as_millisecond()).max(0) as u64 + 1000)
        }))
    }

    /// On failure no disruption is allowed until a sync succeeds again.
    async fn fail_safe(
        &self,
        pdb: &PodDisruptionBudget,
        msg: &str,
        now: Timestamp,
    ) -> Result<Option<Duration>, Error> {
        let mut status = pdb.status.clone().unwrap_or_default();
        status.disruptions_allowed = 0;
        let mut conds = status.conditions.take().unwrap_or_default();
        set_condition(
            &mut conds,
            Condition {
                type_: DISRUPTION_ALLOWED.into(),
                status: "False".into(),
                reason: SYNC_FAILED.into(),
                message: msg.to_string(),
                observed_generation: status.observed_generation,
                last_transition_time: Time(now),
            },
        );
        status.conditions = Some(conds);
        if pdb.status.as_ref() != Some(&status) {
            self.write_status(pdb, status).await?;
        }
        Err(Error::Invalid(msg.to_string()))
    }

    /// Update (not patch) the status: the resourceVersion makes a concurrent eviction's
    /// decrement win, and this sync retries against the newer object.
    async fn write_status(
        &self,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<(), Error> {
        let ns = pdb.metadata.namespace.as_deref().unwrap_or("");
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), ns);
        let mut next = pdb.clone();
        next.status = Some(status);
        match api
            .replace_status(&pdb.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if util::is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn percentages_round_up() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&pct("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&pct("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&pct("10%"), 1, true), Ok(1));
        assert_eq!(scaled_value(&pct("0%"), 7, true), Ok(0));
        assert_eq!(scaled_value(&IntOrString::Int(4), 100, true), Ok(4));
        assert!(scaled_value(&pct("half"), 3, true).is_err());

        // minAvailable 2 over 3 pods: the pod count, no controllers needed.
        let none = || -> Result<i32, String> { Err("must not be asked".into()) };
        assert_eq!(
            expected_and_desired(Some(&IntOrString::Int(2)), None, 3, none),
            Ok((3, 2))
        );
        // minAvailable 50% of a scale of 3 rounds up to 2.
        assert_eq!(
            expected_and_desired(Some(&pct("50%")), None, 3, || Ok(3)),
            Ok((3, 2))
        );
        // maxUnavailable 25% of 4 -> 1 may be down -> 3 desired; of 5 -> ceil(1.25)=2 -> 3.
        assert_eq!(
            expected_and_desired(None, Some(&pct("25%")), 4, || Ok(4)),
            Ok((4, 3))
        );
        assert_eq!(
            expected_and_desired(None, Some(&pct("25%")), 5, || Ok(5)),
            Ok((5, 3))
        );
        // maxUnavailable larger than the scale never wants a negative count.
        assert_eq!(
            expected_and_desired(None, Some(&IntOrString::Int(5)), 2, || Ok(2)),
            Ok((2, 0))
        );
        assert!(
            expected_and_desired(None, Some(&pct("25%")), 4, || Err(
                "found no controllers".into()
            ))
            .is_err()
        );
    }

    #[test]
    fn healthy_pods_and_disrupted_map() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let mut deleting = (*pod("d", true)).clone();
        deleting.metadata.deletion_timestamp = Some(Time(now));
        let pods = vec![
            pod("a", true),
            pod("b", true),
            pod("c", false),
            Arc::new(deleting),
            pod("e", true),
        ];
        let recorded = BTreeMap::from([
            (
                "b".to_string(),
                Time(Timestamp::from_second(1_000_000 - 30).unwrap()),
            ),
            ("d".to_string(), Time(now)),
            (
                "e".to_string(),
                Time(Timestamp::from_second(1_000_000 - 121).unwrap()),
            ),
            ("gone".to_string(), Time(now)),
        ]);
        let (live, recheck, expired) = live_disrupted_pods(&pods, Some(&recorded), now);
        assert_eq!(
            live.keys().collect::<Vec<_>>(),
            vec!["b"],
            "deleting, gone and expired entries are dropped"
        );
        assert_eq!(expired, vec!["e".to_string()]);
        assert_eq!(
            recheck,
            Some(Timestamp::from_second(1_000_000 - 30 + 120).unwrap())
        );
        // a and e are healthy; b was just evicted, c is not ready, d is being deleted.
        assert_eq!(count_healthy(&pods, &live), 2);
    }

    #[test]
    fn status_and_condition() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let mut pdb: PodDisruptionBudget =
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns", "generation": 2}, "spec": {"minAvailable": 2}})).unwrap();
        let s = next_status(&pdb, 3, 2, 3, BTreeMap::new(), now).unwrap();
        assert_eq!((s.disruptions_allowed, s.observed_generation), (1, Some(2)));
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (DISRUPTION_ALLOWED, "True", SUFFICIENT_PODS)
        );
        pdb.status = Some(s);
        assert!(
            next_status(&pdb, 3, 2, 3, BTreeMap::new(), now).is_none(),
            "up to date: no write"
        );
        let later = Timestamp::from_second(1_000_100).unwrap();
        let s = next_status(&pdb, 1, 2, 3, BTreeMap::new(), later).unwrap();
        assert_eq!(s.disruptions_allowed, 0);
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                c.status.as_str(),
                c.reason.as_str(),
                c.last_transition_time.0
            ),
            ("False", INSUFFICIENT_PODS, later)
        );
        // No expected pods: nothing allowed even when the arithmetic says otherwise.
        assert_eq!(
            next_status(&pdb, 0, -1, 0, BTreeMap::new(), now)
                .unwrap()
                .disruptions_allowed,
            0
        );
        assert!(
            pdb_selects(Some(&LabelSelector::default()), &BTreeMap::new()),
            "empty selects all in policy/v1"
        );
        assert!(!pdb_selects(None, &BTreeMap::new()));
    }
}
