//! The resource quota controller: keeps every ResourceQuota's `status.hard` equal to its spec
//! and `status.used` equal to what the namespace currently consumes of each resource named in
//! `spec.hard` (object counts, pod compute requests/limits, claimed storage), honouring the
//! quota's scopes. It recomputes when objects of the namespace change and, as upstream, fully
//! every `--resource-quota-sync-period`.
//!
//! Quantities are summed exactly (as nano-units in an i128) and printed in upstream's
//! canonical form ("1500m", "1", "128Mi", "1k"), so `status.used` reads as upstream's does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota,
    ResourceQuotaStatus, ResourceRequirements, ScopeSelector, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::{Client, ResourceExt};
use tracing::{debug, info};

use crate::discovery::Resources;
use crate::informer::{Change, Informer, enqueue_namespace, enqueue_namespace_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, split_key};
use crate::{ControllerContext, Error};

// ---- quantities ----

const NANO: i128 = 1_000_000_000;

/// How a quantity was written, which decides how a sum is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// An exact quantity: the value in nano-units and the format to print it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount {
    pub nanos: i128,
    pub format: Format,
}

impl Amount {
    pub fn count(n: i64) -> Amount {
        Amount {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSi,
        }
    }

    pub const ZERO: Amount = Amount {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// Parse a quantity string; fractions below a nano-unit round up, as upstream.
    pub fn parse(s: &str) -> Option<Amount> {
        let s = s.trim();
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_end);
        if num.is_empty()
            || num.matches('.').count() > 1
            || !num.chars().any(|c| c.is_ascii_digit())
        {
            return None;
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        // value = digits * 10^(-frac_len) * multiplier
        let digits: i128 = format!("{int_part}{frac_part}").parse().ok()?;
        let frac_len = frac_part.len() as i32;
        let (format, pow10, pow1024): (Format, i32, u32) = match suffix {
            "" => (Format::DecimalSi, 0, 0),
            "n" => (Format::DecimalSi, -9, 0),
            "u" => (Format::DecimalSi, -6, 0),
            "m" => (Format::DecimalSi, -3, 0),
            "k" => (Format::DecimalSi, 3, 0),
            "M" => (Format::DecimalSi, 6, 0),
            "G" => (Format::DecimalSi, 9, 0),
            "T" => (Format::DecimalSi, 12, 0),
            "P" => (Format::DecimalSi, 15, 0),
            "E" => (Format::DecimalSi, 18, 0),
            "Ki" => (Format::BinarySi, 0, 1),
            "Mi" => (Format::BinarySi, 0, 2),
            "Gi" => (Format::BinarySi, 0, 3),
            "Ti" => (Format::BinarySi, 0, 4),
            "Pi" => (Format::BinarySi, 0, 5),
            "Ei" => (Format::BinarySi, 0, 6),
            e if e.starts_with(['e', 'E']) => (Format::DecimalExponent, e[1..].parse().ok()?, 0),
            _ => return None,
        };
        let mut v = digits.checked_mul(1024i128.checked_pow(pow1024)?)?;
        // Scale to nano-units: multiply by 10^(9 + pow10 - frac_len).
        let shift = 9 + pow10 - frac_len;
        if shift >= 0 {
            v = v.checked_mul(10i128.checked_pow(shift as u32)?)?;
        } else {
            let d = 10i128.checked_pow((-shift) as u32)?;
            v = (v + d - 1) / d;
        }
        Some(Amount {
            nanos: if neg { -v } else { v },
            format,
        })
    }

    pub fn of(q: &Quantity) -> Option<Amount> {
        Amount::parse(&q.0)
    }

    /// Upstream's canonical string.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".into();
        }
        let mut format = self.format;
        if format == Format::BinarySi && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            format = Format::DecimalSi;
        }
        if format == Format::BinarySi {
            let (mut n, mut exp) = (self.nanos / NANO, 0usize);
            while exp < 6 && n % 1024 == 0 {
                n /= 1024;
                exp += 1;
            }
            return format!("{n}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp]);
        }
        let (mut m, mut exp) = (self.nanos, -9i32);
        while m % 10 == 0 {
            m /= 10;
            exp += 1;
        }
        let r = exp.rem_euclid(3);
        m *= 10i128.pow(r as u32);
        exp -= r;
        let si = match exp {
            -9 => Some("n"),
            -6 => Some("u"),
            -3 => Some("m"),
            0 => Some(""),
            3 => Some("k"),
            6 => Some("M"),
            9 => Some("G"),
            12 => Some("T"),
            15 => Some("P"),
            18 => Some("E"),
            _ => None,
        };
        match (format, si) {
            (Format::DecimalSi, Some(s)) => format!("{m}{s}"),
            (_, _) if exp == 0 => format!("{m}"),
            _ => format!("{m}e{exp}"),
        }
    }

    pub fn to_quantity(&self) -> Quantity {
        Quantity(self.canonical())
    }
}

pub type Usage = BTreeMap<String, Amount>;

fn add_to(u: &mut Usage, name: &str, a: Amount) {
    let cur = u.get(name).copied().unwrap_or(Amount::ZERO);
    u.insert(name.to_string(), cur + a);
}

fn add_all(u: &mut Usage, other: &Usage) {
    for (k, v) in other {
        add_to(u, k, *v);
    }
}

/// `a + b`, keeping `a`'s format unless it is zero (as upstream's Quantity.Add).
impl std::ops::Add for Amount {
    type Output = Amount;

    fn add(self, other: Amount) -> Amount {
        let format = if self.nanos == 0 {
            other.format
        } else {
            self.format
        };
        Amount {
            nanos: self.nanos + other.nanos,
            format,
        }
    }
}

// ---- evaluators ----

/// Upstream's QuotaV1Pod: terminal pods, and pods whose deletion grace period is over, no
/// longer use compute resources.
pub fn pod_counts(pod: &Pod, now: Timestamp) -> bool {
    if util::is_pod_terminal(pod) {
        return false;
    }
    if let (Some(dt), Some(grace)) = (
        &pod.metadata.deletion_timestamp,
        pod.metadata.deletion_grace_period_seconds,
    ) && now.as_second() > dt.0.as_second() + grace
    {
        return false;
    }
    true
}

/// A container's requests, with limits standing in for missing requests (as API defaulting
/// does), and its limits.
fn container_resources(r: Option<&ResourceRequirements>) -> (Usage, Usage) {
    let (mut req, mut lim) = (Usage::new(), Usage::new());
    let Some(r) = r else { return (req, lim) };
    for (k, q) in r.limits.iter().flatten() {
        if let Some(a) = Amount::of(q) {
            lim.insert(k.clone(), a);
        }
    }
    for (k, q) in r.requests.iter().flatten() {
        if let Some(a) = Amount::of(q) {
            req.insert(k.clone(), a);
        }
    }
    for (k, a) in &lim {
        req.entry(k.clone()).or_insert(*a);
    }
    (req, lim)
}

fn max_into(u: &mut Usage, other: &Usage) {
    for (k, v) in other {
        match u.get(k) {
            Some(cur) if cur.nanos >= v.nanos => {}
            _ => {
                u.insert(k.clone(), *v);
            }
        }
    }
}

/// The pod's effective requests and limits (upstream's PodRequests/PodLimits): the sum over
/// containers, at least each init container (plus the sidecars started before it), plus
/// the pod overhead.
pub fn pod_requests_limits(pod: &Pod) -> (Usage, Usage) {
    let (mut req, mut lim) = (Usage::new(), Usage::new());
    let Some(spec) = pod.spec.as_ref() else {
        return (req, lim);
    };
    for c in &spec.containers {
        let (r, l) = container_resources(c.resources.as_ref());
        add_all(&mut req, &r);
        add_all(&mut lim, &l);
    }
    let (mut side_req, mut side_lim) = (Usage::new(), Usage::new());
    let (mut init_req, mut init_lim) = (Usage::new(), Usage::new());
    for c in spec.init_containers.iter().flatten() {
        let (r, l) = container_resources(c.resources.as_ref());
        if c.restart_policy.as_deref() == Some("Always") {
            add_all(&mut req, &r);
            add_all(&mut lim, &l);
            add_all(&mut side_req, &r);
            add_all(&mut side_lim, &l);
            max_into(&mut init_req, &side_req);
            max_into(&mut init_lim, &side_lim);
        } else {
            let (mut tr, mut tl) = (r.clone(), l.clone());
            add_all(&mut tr, &side_req);
            add_all(&mut tl, &side_lim);
            max_into(&mut init_req, &tr);
            max_into(&mut init_lim, &tl);
        }
    }
    max_into(&mut req, &init_req);
    max_into(&mut lim, &init_lim);
    for (k, q) in spec.overhead.iter().flatten() {
        if let Some(a) = Amount::of(q) {
            add_to(&mut req, k, a);
            if lim.contains_key(k) {
                add_to(&mut lim, k, a);
            }
        }
    }
    (req, lim)
}

fn is_extended_resource(name: &str) -> bool {
    !name.starts_with("requests.")
        && !name.starts_with("limits.")
        && name.contains('/')
        && !name.starts_with("kubernetes.io/")
}

/// What one pod uses (upstream's PodUsageFunc).
pub fn pod_usage(pod: &Pod, now: Timestamp) -> Usage {
    let mut u = Usage::from([("count/pods".to_string(), Amount::count(1))]);
    if !pod_counts(pod, now) {
        return u;
    }
    u.insert("pods".into(), Amount::count(1));
    let (req, lim) = pod_requests_limits(pod);
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(a) = req.get(r) {
            u.insert(r.into(), *a);
            u.insert(format!("requests.{r}"), *a);
        }
        if let Some(a) = lim.get(r) {
            u.insert(format!("limits.{r}"), *a);
        }
    }
    for (r, a) in &req {
        if r.starts_with("hugepages-") {
            u.insert(r.clone(), *a);
            u.insert(format!("requests.{r}"), *a);
        } else if is_extended_resource(r) {
            u.insert(format!("requests.{r}"), *a);
        }
    }
    u
}

/// What one service uses (upstream's service evaluator).
pub fn service_usage(svc: &Service) -> Usage {
    let spec = svc.spec.clone().unwrap_or_default();
    let ports = spec.ports.as_ref().map_or(0, |p| p.len() as i64);
    let (mut lbs, mut node_ports) = (0, 0);
    match spec.type_.as_deref() {
        Some("NodePort") => node_ports = ports,
        Some("LoadBalancer") => {
            lbs = 1;
            node_ports = if spec.allocate_load_balancer_node_ports == Some(false) {
                spec.ports
                    .iter()
                    .flatten()
                    .filter(|p| p.node_port.is_some_and(|n| n != 0))
                    .count() as i64
            } else {
                ports
            };
        }
        _ => {}
    }
    Usage::from([
        ("count/services".to_string(), Amount::count(1)),
        ("services".to_string(), Amount::count(1)),
        ("services.loadbalancers".to_string(), Amount::count(lbs)),
        ("services.nodeports".to_string(), Amount::count(node_ports)),
    ])
}

pub const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// What one claim uses (upstream's PVC evaluator).
pub fn pvc_usage(pvc: &PersistentVolumeClaim) -> Usage {
    let mut u = Usage::from([
        ("count/persistentvolumeclaims".to_string(), Amount::count(1)),
        ("persistentvolumeclaims".to_string(), Amount::count(1)),
    ]);
    let spec = pvc.spec.clone().unwrap_or_default();
    let class = spec.storage_class_name.clone().or_else(|| {
        pvc.annotations()
            .get("volume.beta.kubernetes.io/storage-class")
            .cloned()
    });
    if let Some(c) = class.as_deref().filter(|c| !c.is_empty()) {
        u.insert(
            format!("{c}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Amount::count(1),
        );
    }
    let mut storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(Amount::of);
    // A claim being expanded counts its larger allocated size.
    if let Some(alloc) = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(Amount::of)
        && storage.is_none_or(|s| alloc.nanos > s.nanos)
    {
        storage = Some(alloc);
    }
    if let Some(s) = storage {
        u.insert("requests.storage".into(), s);
        if let Some(c) = class.as_deref().filter(|c| !c.is_empty()) {
            u.insert(format!("{c}{STORAGE_CLASS_SUFFIX}requests.storage"), s);
        }
    }
    u
}

/// The object-count resource name for `count/<resource>[.<group>]` and the legacy names.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    let legacy = [
        "services",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "resourcequotas",
    ];
    if legacy.contains(&name) {
        return Some((name.to_string(), String::new()));
    }
    let rest = name.strip_prefix("count/")?;
    Some(match rest.split_once('.') {
        Some((r, g)) => (r.to_string(), g.to_string()),
        None => (rest.to_string(), String::new()),
    })
}

fn has_qos_resources(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let all = spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    all.filter_map(|c| c.resources.as_ref()).any(|r| {
        [&r.requests, &r.limits].into_iter().flatten().any(|m| {
            m.iter().any(|(k, q)| {
                (k == "cpu" || k == "memory") && Amount::of(q).is_some_and(|a| a.nanos != 0)
            })
        })
    })
}

/// Whether a pod is in one scope (Terminating, NotTerminating, BestEffort, NotBestEffort,
/// PriorityClass with an operator and values).
pub fn pod_matches_scope(pod: &Pod, scope: &str, operator: &str, values: &[String]) -> bool {
    let spec = pod.spec.as_ref();
    let deadline = spec.and_then(|s| s.active_deadline_seconds);
    match scope {
        "Terminating" => deadline.is_some_and(|d| d >= 0),
        "NotTerminating" => deadline.is_none(),
        "BestEffort" => !has_qos_resources(pod),
        "NotBestEffort" => has_qos_resources(pod),
        "PriorityClass" => {
            let pc = spec
                .and_then(|s| s.priority_class_name.as_deref())
                .unwrap_or("");
            match operator {
                "In" => values.iter().any(|v| v == pc),
                "NotIn" => !values.iter().any(|v| v == pc),
                "Exists" => !pc.is_empty(),
                "DoesNotExist" => pc.is_empty(),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => {
            // Every term of pod affinity and anti-affinity, required and preferred.
            let aff = spec.and_then(|s| s.affinity.as_ref());
            let pa = aff.and_then(|a| a.pod_affinity.as_ref());
            let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
            let required = [
                pa.and_then(|p| p.required_during_scheduling_ignored_during_execution.as_ref()),
                paa.and_then(|p| p.required_during_scheduling_ignored_during_execution.as_ref()),
            ];
            let preferred = [
                pa.and_then(|p| p.preferred_during_scheduling_ignored_during_execution.as_ref()),
                paa.and_then(|p| p.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ];
            let mut terms = required.into_iter().flatten().flatten().chain(
                preferred.into_iter().flatten().flatten().map(|w| &w.pod_affinity_term),
            );
            terms.any(|t| {
                t.namespace_selector.is_some()
                    || t.namespaces.as_ref().is_some_and(|n| !n.is_empty())
            })
        }
        _ => false,
    }
}

/// The quota's scopes as (scope, operator, values): `spec.scopes` are `Exists`.
pub fn quota_scopes(
    scopes: Option<&Vec<String>>,
    selector: Option<&ScopeSelector>,
) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = scopes
        .into_iter()
        .flatten()
        .map(|s| (s.clone(), "Exists".to_string(), Vec::new()))
        .collect();
    for e in selector
        .into_iter()
        .flat_map(|s| s.match_expressions.iter().flatten())
    {
        out.push((
            e.scope_name.clone(),
            e.operator.clone(),
            e.values.clone().unwrap_or_default(),
        ));
    }
    out
}

/// Whether the resource name is tracked per pod (the only kind scopes apply to).
pub fn is_pod_resource(name: &str) -> bool {
    matches!(
        name,
        "pods" | "count/pods" | "cpu" | "memory" | "ephemeral-storage"
    ) || name.starts_with("requests.") && name != "requests.storage"
        || name.starts_with("limits.")
        || name.starts_with("hugepages-")
}

/// What the namespace's objects add up to for the resources in `hard` (pure; unit-tested).
/// `counts` holds object counts by (resource, group) for the count resources.
pub fn compute_used(
    hard: &BTreeSet<String>,
    scopes: &[(String, String, Vec<String>)],
    pods: &[Arc<Pod>],
    services: &[Arc<Service>],
    pvcs: &[Arc<PersistentVolumeClaim>],
    counts: &BTreeMap<(String, String), i64>,
    now: Timestamp,
) -> Usage {
    let mut total = Usage::new();
    let mut pods: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| scopes.iter().all(|(s, o, v)| pod_matches_scope(p, s, o, v)))
        .collect();
    // A stable order keeps the format of a mixed-format sum stable.
    pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    if hard.iter().any(|h| is_pod_resource(h)) {
        for p in pods {
            add_all(&mut total, &pod_usage(p, now));
        }
    }
    if scopes.is_empty() {
        for s in services {
            add_all(&mut total, &service_usage(s));
        }
        for c in pvcs {
            add_all(&mut total, &pvc_usage(c));
        }
    }
    let mut used = Usage::new();
    for h in hard {
        if scopes.is_empty()
            && let Some(rg) = counted_resource(h)
            && rg.0 != "pods"
            && rg.0 != "services"
            && rg.0 != "persistentvolumeclaims"
        {
            used.insert(
                h.clone(),
                Amount::count(counts.get(&rg).copied().unwrap_or(0)),
            );
            continue;
        }
        used.insert(h.clone(), total.get(h).copied().unwrap_or(Amount::ZERO));
    }
    used
}

/// Whether two resource lists hold the same values (formats aside).
pub fn same_values(a: Option<&BTreeMap<String, Quantity>>, b: &BTreeMap<String, Quantity>) -> bool {
    let a = a.cloned().unwrap_or_default();
    a.len() == b.len()
        && a.iter().all(|(k, q)| {
            b.get(k)
                .is_some_and(|o| Amount::of(q).map(|x| x.nanos) == Amount::of(o).map(|x| x.nanos))
        })
}

// ---- controller ----

pub struct ResourceQuotaController {
    client: Client,
    quotas: Arc<Informer<ResourceQuota>>,
    pods: Arc<Informer<Pod>>,
    services: Arc<Informer<Service>>,
    pvcs: Arc<Informer<PersistentVolumeClaim>>,
    configmaps: Arc<Informer<ConfigMap>>,
    secrets: Arc<Informer<Secret>>,
    rcs: Arc<Informer<ReplicationController>>,
    queue: Arc<WorkQueue>,
    resync: Duration,
    discovered: Mutex<Option<(Resources, std::time::Instant)>>,
}

/// Whether a pod change can change any usage.
fn pod_usage_changed(old: &Pod, new: &Pod) -> bool {
    let res = |p: &Pod| {
        p.spec.as_ref().map(|s| {
            let c: Vec<_> = s
                .containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .map(|c| c.resources.clone())
                .collect();
            (c, s.active_deadline_seconds)
        })
    };
    util::is_pod_terminal(old) != util::is_pod_terminal(new)
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.metadata.deletion_grace_period_seconds != new.metadata.deletion_grace_period_seconds
        || res(old) != res(new)
}

impl ResourceQuotaController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(ResourceQuotaController {
            client: ctx.client.clone(),
            quotas: ctx.informers.get::<ResourceQuota>(),
            pods: ctx.informers.get::<Pod>(),
            services: ctx.informers.get::<Service>(),
            pvcs: ctx.informers.get::<PersistentVolumeClaim>(),
            configmaps: ctx.informers.get::<ConfigMap>(),
            secrets: ctx.informers.get::<Secret>(),
            rcs: ctx.informers.get::<ReplicationController>(),
            queue: WorkQueue::new("resourcequota_primary"),
            resync: ctx.options.resource_quota_sync_period,
            discovered: Mutex::new(None),
        });
        // Quotas: on creation, spec changes and when someone else rewrote the status.
        let w = Arc::downgrade(&c);
        c.quotas.add_handler(move |ch| {
            let Some(c) = w.upgrade() else { return };
            let o = ch.object();
            let ns = o.namespace().unwrap_or_default();
            match ch {
                Change::Updated { old, new }
                    if old.spec == new.spec && old.status == new.status => {}
                _ => c.queue.add(util::key_of(o.as_ref())),
            }
            // Quotas count resourcequotas too.
            if !matches!(ch, Change::Updated { .. }) {
                enqueue_namespace(&c.quotas, &c.queue, &ns);
            }
        });
        enqueue_namespace_on_change(&c.pods, &c.quotas, &c.queue, pod_usage_changed);
        enqueue_namespace_on_change(&c.services, &c.quotas, &c.queue, |o, n| o.spec != n.spec);
        enqueue_namespace_on_change(&c.pvcs, &c.quotas, &c.queue, |o, n| {
            o.spec != n.spec
                || o.status.as_ref().map(|s| &s.allocated_resources)
                    != n.status.as_ref().map(|s| &s.allocated_resources)
        });
        enqueue_namespace_on_change(&c.configmaps, &c.quotas, &c.queue, |_, _| false);
        enqueue_namespace_on_change(&c.secrets, &c.quotas, &c.queue, |_, _| false);
        enqueue_namespace_on_change(&c.rcs, &c.quotas, &c.queue, |_, _| false);
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.quotas.wait_synced().await;
        self.pods.wait_synced().await;
        self.services.wait_synced().await;
        self.pvcs.wait_synced().await;
        self.configmaps.wait_synced().await;
        self.secrets.wait_synced().await;
        self.rcs.wait_synced().await;
        info!(
            controller = "resourcequota",
            "caches synced; starting workers"
        );
        // Full resync: every quota, every period (upstream's --resource-quota-sync-period).
        let me = self.clone();
        let resync = tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.resync.max(Duration::from_secs(1))).await;
                for q in me.quotas.list() {
                    me.queue.add(util::key_of(q.as_ref()));
                }
            }
        });
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move {
            c.reconcile(&key).await
        })
        .await;
        resync.abort();
    }

    /// Discovery, refreshed at most once per resync period (for `count/<resource>.<group>`
    /// of types without an informer here).
    async fn resources(&self) -> Result<Resources, Error> {
        if let Some((r, at)) = self
            .discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && at.elapsed() < self.resync
        {
            return Ok(r.clone());
        }
        let r = Resources::discover(&self.client).await?;
        *self.discovered.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((r.clone(), std::time::Instant::now()));
        Ok(r)
    }

    /// Objects of (resource, group) in `ns`: from an informer when there is one, else a list.
    async fn count(&self, ns: &str, resource: &str, group: &str) -> Result<i64, Error> {
        let n = match (group, resource) {
            ("", "configmaps") => self.configmaps.list_namespace(ns).len(),
            ("", "secrets") => self.secrets.list_namespace(ns).len(),
            ("", "replicationcontrollers") => self.rcs.list_namespace(ns).len(),
            ("", "resourcequotas") => self.quotas.list_namespace(ns).len(),
            ("", "pods") => self.pods.list_namespace(ns).len(),
            ("", "services") => self.services.list_namespace(ns).len(),
            ("", "persistentvolumeclaims") => self.pvcs.list_namespace(ns).len(),
            _ => {
                let res = self.resources().await?;
                let found = res.preferred_with(&["list"]).into_iter().find(|(ar, c)| {
                    ar.plural == resource && ar.group == group && Resources::is_namespaced(c)
                });
                let Some((ar, _)) = found else {
                    debug!(resource, group, "quota on an unknown resource");
                    return Ok(0);
                };
                let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
                api.list_metadata(&ListParams::default()).await?.items.len()
            }
        };
        Ok(n as i64)
    }

    /// The one sync function: recompute the quota's usage and write it if it changed.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(rq) = self.quotas.get(ns, name) else {
            return Ok(None);
        };
        let spec = rq.spec.clone().unwrap_or_default();
        let hard_map = spec.hard.clone().unwrap_or_default();
        let hard: BTreeSet<String> = hard_map.keys().cloned().collect();
        let scopes = quota_scopes(spec.scopes.as_ref(), spec.scope_selector.as_ref());
        let mut counts = BTreeMap::new();
        if scopes.is_empty() {
            for h in &hard {
                if let Some((r, g)) = counted_resource(h) {
                    let n = self.count(ns, &r, &g).await?;
                    counts.insert((r, g), n);
                }
            }
        }
        let now = util::now();
        let pods = self.pods.list_namespace(ns);
        let used = compute_used(
            &hard,
            &scopes,
            &pods,
            &self.services.list_namespace(ns),
            &self.pvcs.list_namespace(ns),
            &counts,
            now,
        );
        let used: BTreeMap<String, Quantity> = used
            .iter()
            .map(|(k, v)| (k.clone(), v.to_quantity()))
            .collect();
        let cur = rq.status.clone().unwrap_or_default();
        let hard_same = cur.hard.as_ref() == Some(&hard_map)
            || (hard_map.is_empty() && cur.hard.as_ref().is_none_or(|h| h.is_empty()));
        // Requeue when a terminating pod's grace period ends: it stops counting then.
        let requeue = pods
            .iter()
            .filter(|p| pod_counts(p, now))
            .filter_map(|p| {
                Some(
                    p.metadata.deletion_timestamp.as_ref()?.0.as_second()
                        + p.metadata.deletion_grace_period_seconds?,
                )
            })
            .min()
            .map(|t| Duration::from_secs((t - now.as_second()).max(0) as u64 + 1));
        if hard_same && same_values(cur.used.as_ref(), &used) {
            return Ok(requeue);
        }
        let mut next = (*rq).clone();
        next.status = Some(ResourceQuotaStatus {
            hard: Some(hard_map),
            used: Some(used),
        });
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        match api
            .replace_status(name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(requeue),
            Err(e) if util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(s: &str) -> String {
        Amount::parse(s).unwrap().canonical()
    }

    fn sum(xs: &[&str]) -> String {
        xs.iter()
            .fold(Amount::ZERO, |a, x| a + Amount::parse(x).unwrap())
            .canonical()
    }

    #[test]
    fn quantities_in_canonical_form() {
        assert_eq!(canon("100m"), "100m");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1.5"), "1500m");
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1200"), "1200");
        assert_eq!(canon("64Mi"), "64Mi");
        assert_eq!(canon("1024Mi"), "1Gi");
        assert_eq!(canon("1536Mi"), "1536Mi");
        assert_eq!(canon("512"), "512");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("0.1n"), "1n", "rounds up to a nano-unit");
        assert!(
            Amount::parse("1.2.3").is_none()
                && Amount::parse("5Q").is_none()
                && Amount::parse("").is_none()
        );
        assert_eq!(sum(&["100m", "200m"]), "300m");
        assert_eq!(sum(&["500m", "500m"]), "1");
        assert_eq!(sum(&["250m", "1"]), "1250m");
        assert_eq!(sum(&["64Mi", "64Mi"]), "128Mi");
        assert_eq!(sum(&["1Gi", "512Mi"]), "1536Mi");
        // The first non-zero amount decides the format.
        assert_eq!(sum(&["0", "1Ki", "1000"]), "2024");
        assert_eq!(sum(&["1k", "1Ki"]), "2024");
        assert_eq!(sum(&["1Ki", "1Ki"]), "2Ki");
    }

    fn pod(name: &str, cpu: &str, mem: &str, phase: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"containers": [
                    {"name": "a", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"cpu": "1", "memory": mem}}},
                    {"name": "b", "image": "x", "resources": {"limits": {"cpu": "200m"}}}
                ], "initContainers": [
                    {"name": "i", "image": "x", "resources": {"requests": {"cpu": "2"}}}
                ]},
                "status": {"phase": phase}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn pod_usage_sums_containers_and_init_maximum() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let p = pod("a", "100m", "64Mi", "Running");
        let u = pod_usage(&p, now);
        // containers: 100m + 200m (limit as request) = 300m; the init container needs 2.
        assert_eq!(u["requests.cpu"].canonical(), "2");
        assert_eq!(u["cpu"].canonical(), "2");
        assert_eq!(u["limits.cpu"].canonical(), "1200m");
        assert_eq!(u["requests.memory"].canonical(), "64Mi");
        assert_eq!(u["pods"].canonical(), "1");
        let done = pod("b", "100m", "64Mi", "Succeeded");
        let u = pod_usage(&done, now);
        assert_eq!(
            u.keys().collect::<Vec<_>>(),
            vec!["count/pods"],
            "terminal pods only count as objects"
        );
        let mut deleting = (*pod("c", "100m", "64Mi", "Running")).clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::from_second(999_000).unwrap(),
            ));
        deleting.metadata.deletion_grace_period_seconds = Some(30);
        assert!(!pod_counts(&deleting, now), "grace period over");
    }

    fn small_pod(
        name: &str,
        cpu: Option<&str>,
        deadline: Option<i64>,
        pc: Option<&str>,
    ) -> Arc<Pod> {
        let res = cpu
            .map(|c| json!({"requests": {"cpu": c, "memory": "100M"}}))
            .unwrap_or(json!({}));
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"containers": [{"name": "a", "image": "x", "resources": res}], "activeDeadlineSeconds": deadline, "priorityClassName": pc},
                "status": {"phase": "Running"}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn used_for_hard_resources_with_scopes() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let pods = vec![
            small_pod("a", Some("250m"), None, Some("high")),
            small_pod("b", Some("500m"), Some(60), None),
            small_pod("c", None, None, None),
        ];
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}})).unwrap();
        let lb: Service = serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})).unwrap();
        let pvc: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "c"}, "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}}))
                .unwrap();
        let hard: BTreeSet<String> = [
            "pods",
            "requests.cpu",
            "memory",
            "limits.memory",
            "services",
            "services.nodeports",
            "services.loadbalancers",
            "requests.storage",
            "fast.storageclass.storage.k8s.io/requests.storage",
            "count/configmaps",
            "configmaps",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let counts = BTreeMap::from([(("configmaps".to_string(), String::new()), 2)]);
        let svcs = vec![Arc::new(svc), Arc::new(lb)];
        let pvcs = vec![Arc::new(pvc)];
        let used = compute_used(&hard, &[], &pods, &svcs, &pvcs, &counts, now);
        let s = |k: &str| used[k].canonical();
        assert_eq!(
            (
                s("pods"),
                s("requests.cpu"),
                s("memory"),
                s("limits.memory")
            ),
            ("3".into(), "750m".into(), "200M".into(), "0".into())
        );
        assert_eq!(
            (
                s("services"),
                s("services.nodeports"),
                s("services.loadbalancers")
            ),
            ("2".into(), "3".into(), "1".into())
        );
        assert_eq!(
            (
                s("requests.storage"),
                s("fast.storageclass.storage.k8s.io/requests.storage")
            ),
            ("1Gi".into(), "1Gi".into())
        );
        assert_eq!(
            (s("count/configmaps"), s("configmaps")),
            ("2".into(), "2".into())
        );
        assert_eq!(used.len(), hard.len(), "only hard resources are tracked");

        let pod_hard: BTreeSet<String> = ["pods", "requests.cpu"]
            .into_iter()
            .map(String::from)
            .collect();
        let scoped = |sc: Vec<(String, String, Vec<String>)>| {
            let u = compute_used(&pod_hard, &sc, &pods, &svcs, &pvcs, &counts, now);
            (u["pods"].canonical(), u["requests.cpu"].canonical())
        };
        let ex = |s: &str| vec![(s.to_string(), "Exists".to_string(), vec![])];
        assert_eq!(scoped(ex("BestEffort")), ("1".into(), "0".into()));
        assert_eq!(scoped(ex("NotBestEffort")), ("2".into(), "750m".into()));
        assert_eq!(scoped(ex("Terminating")), ("1".into(), "500m".into()));
        assert_eq!(scoped(ex("NotTerminating")), ("2".into(), "250m".into()));
        assert_eq!(
            scoped(vec![(
                "PriorityClass".into(),
                "In".into(),
                vec!["high".into()]
            )]),
            ("1".into(), "250m".into())
        );
        assert_eq!(
            scoped(vec![(
                "PriorityClass".into(),
                "DoesNotExist".into(),
                vec![]
            )]),
            ("2".into(), "500m".into())
        );
    }

    #[test]
    fn cross_namespace_pod_affinity_scope() {
        let pod = |affinity: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"spec": {"containers": [], "affinity": affinity}}))
                .unwrap()
        };
        let term = |t: serde_json::Value| {
            json!([{"topologyKey": "kubernetes.io/hostname"}, t])
        };
        let weighted = |t: serde_json::Value| {
            json!([{"weight": 1, "podAffinityTerm": t}])
        };
        let cross = |p: &Pod| pod_matches_scope(p, "CrossNamespacePodAffinity", "Exists", &[]);
        let local = json!({"topologyKey": "zone", "namespaces": []});
        let other = json!({"topologyKey": "zone", "namespaces": ["b"]});
        let selector = json!({"topologyKey": "zone", "namespaceSelector": {}});
        assert!(!cross(&pod(json!({}))));
        assert!(!cross(&pod(json!({
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term(local.clone())},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": weighted(local.clone())},
        }))));
        assert!(cross(&pod(json!({
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term(other.clone())},
        }))));
        assert!(cross(&pod(json!({
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": weighted(selector.clone())},
        }))));
        assert!(cross(&pod(json!({
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term(selector)},
        }))));
        assert!(cross(&pod(json!({
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": weighted(other)},
        }))));
    }

    #[test]
    fn status_comparison_ignores_format() {
        let a = BTreeMap::from([("cpu".to_string(), Quantity("1000m".into()))]);
        let b = BTreeMap::from([("cpu".to_string(), Quantity("1".into()))]);
        assert!(same_values(Some(&a), &b));
        let c = BTreeMap::from([("cpu".to_string(), Quantity("2".into()))]);
        assert!(!same_values(Some(&a), &c));
        assert!(!same_values(None, &c));
        assert_eq!(
            counted_resource("count/deployments.apps"),
            Some(("deployments".into(), "apps".into()))
        );
        assert_eq!(
            counted_resource("count/pods"),
            Some(("pods".into(), String::new()))
        );
        assert_eq!(
            counted_resource("secrets"),
            Some(("secrets".into(), String::new()))
        );
        assert_eq!(counted_resource("requests.cpu"), None);
    }
}
