//! ClusterIP and NodePort allocation for Services, safe across several API servers sharing one
//! store, as upstream v1.33 allocates them:
//!
//! - a ClusterIP is held by its `networking.k8s.io/v1` IPAddress object (named after the
//!   address, `spec.parentRef` pointing at the Service, labelled as upstream's
//!   `ipallocator.k8s.io` labels it). Allocating is creating that object: the store's
//!   create-if-absent is the cross-server lock, so `AlreadyExists` means someone else holds the
//!   address. Releasing deletes it.
//! - NodePorts are one `RangeAllocation` bitmap at upstream's key (`<prefix>/services/nodeports`),
//!   changed only by compare-and-swap on its revision, so two servers never hand out one port.
//!
//! Nothing is kept in memory between requests: every decision reads the store (the IPAddress
//! watch cache is only a hint of which addresses to skip). At start-up [`ServiceAllocator::reconcile`]
//! records what stored Services hold (data written before IPAddress objects existed), and the
//! default ServiceCIDR `kubernetes` is created from `--service-cluster-ip-range`.
//!
//! While the server runs, [`ServiceAllocator::repair`] (every `--service-repair-interval`, as
//! upstream's ipallocator and portallocator repair controllers) records allocations Services
//! hold but the store does not, and frees what no Service holds once it has looked leaked on
//! several passes in a row ([`Leaks`]), so an allocation in flight on another server survives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::errors::{ApiError, Cause};
use crate::registry::{DeleteOptions, Store, WriteOptions};
use crate::storage::{Storage, StorageError};

/// Upstream's `networking.k8s.io/v1` label keys and the allocator's manager name.
pub const LABEL_IP_FAMILY: &str = "ipaddress.kubernetes.io/ip-family";
pub const LABEL_MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "ipallocator.k8s.io";
/// The ServiceCIDR the API server creates from `--service-cluster-ip-range`.
pub const DEFAULT_SERVICE_CIDR: &str = "kubernetes";

/// IPAddresses whose Service is gone are deleted at start-up only when older than this: a
/// younger one may belong to a Service another server is creating right now.
const ORPHAN_MIN_AGE_SECS: i64 = 120;
/// Compare-and-swap rounds on the NodePort bitmap before giving up.
const CAS_ATTEMPTS: usize = 64;
/// Passes in a row a NodePort must look leaked before the repair frees it (upstream's
/// `numRepairsBeforeLeakCleanup`): its Service may still be being written.
const PORT_LEAK_PASSES: u32 = 3;
/// Passes in a row an IPAddress must look orphaned, once older than the grace period, before
/// the repair deletes it.
const IP_LEAK_PASSES: u32 = 2;
/// Event sources, as upstream's repair controllers name themselves.
const IP_REPAIR_COMPONENT: &str = "ipallocator-repair-controller";
const PORT_REPAIR_COMPONENT: &str = "portallocator-repair-controller";

#[derive(Debug, thiserror::Error)]
pub enum AllocatorError {
    #[error("invalid --service-cluster-ip-range {0:?}: expected an IPv4 CIDR with at least 8 addresses")]
    Cidr(String),
    #[error("invalid --service-node-port-range {0:?}: expected LOW-HIGH")]
    PortRange(String),
}

/// Why node ports could not be allocated.
#[derive(Debug, PartialEq, Eq)]
enum PortError {
    /// The port asked for at this index of the request is taken.
    Taken(usize),
    Full,
}

/// Upstream's repair `leaks` map: on how many passes in a row each suspect looked leaked.
#[derive(Debug)]
pub struct Leaks<K: Ord> {
    seen: BTreeMap<K, u32>,
    passes: u32,
}

impl<K: Ord + Clone> Leaks<K> {
    /// Suspects are released on their `passes`-th pass in a row (at least 1).
    pub fn new(passes: u32) -> Self {
        Leaks { seen: BTreeMap::new(), passes: passes.max(1) }
    }

    /// Record one pass's suspects and return those now seen on enough passes in a row. Those
    /// are forgotten (a later allocation of the same key starts over), and so are keys not
    /// suspected this pass.
    pub fn observe(&mut self, suspects: impl IntoIterator<Item = K>) -> Vec<K> {
        let mut next = BTreeMap::new();
        let mut ripe = Vec::new();
        for k in suspects {
            let n = self.seen.get(&k).copied().unwrap_or(0) + 1;
            if n >= self.passes {
                ripe.push(k);
            } else {
                next.insert(k, n);
            }
        }
        self.seen = next;
        ripe
    }

    /// Keys currently flagged, with the passes they were seen on.
    pub fn flagged(&self) -> &BTreeMap<K, u32> {
        &self.seen
    }
}

/// What the repair remembers between passes.
#[derive(Debug)]
pub struct RepairState {
    /// Marked NodePorts no Service holds.
    ports: Leaks<u16>,
    /// Orphaned IPAddresses past the grace period, by uid.
    ips: Leaks<String>,
}

impl Default for RepairState {
    fn default() -> Self {
        RepairState { ports: Leaks::new(PORT_LEAK_PASSES), ips: Leaks::new(IP_LEAK_PASSES) }
    }
}

/// What one repair pass changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub ports_recorded: Vec<u16>,
    pub ports_released: Vec<u16>,
    pub ips_recorded: Vec<String>,
    pub ips_deleted: Vec<String>,
}

pub struct ServiceAllocator {
    network: u32,
    size: u32,
    bits: u32,
    ports: (u16, u16),
    storage: Arc<dyn Storage>,
    /// `<prefix>/services/nodeports`: the NodePort `RangeAllocation`.
    nodeports_key: String,
    /// The IPAddress registry, attached once every store exists.
    ips: OnceLock<Arc<Store>>,
}

fn parse_cidr(s: &str) -> Option<(u32, u32, u32)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    if !(1..=29).contains(&bits) {
        return None;
    }
    let size = 1u32 << (32 - bits);
    Some((u32::from(ip) & !(size - 1), size, bits))
}

/// The name of `svc` as an IPAddress `parentRef` shows it.
fn parent_ref(svc: &Value) -> Value {
    json!({"group": "", "resource": "services", "namespace": svc["metadata"]["namespace"].as_str().unwrap_or(""),
           "name": svc["metadata"]["name"].as_str().unwrap_or("")})
}

/// Whether the IPAddress `ip` is held for the Service `svc` (same namespace and name).
fn held_by(ip: &Value, svc: &Value) -> bool {
    let p = &ip["spec"]["parentRef"];
    p["resource"] == "services"
        && p["group"].as_str().unwrap_or("").is_empty()
        && p["namespace"] == svc["metadata"]["namespace"]
        && p["name"] == svc["metadata"]["name"]
}

/// Whether one of `services` holds the IPAddress `ip`: it points at that Service and the
/// Service has its address.
fn held_by_any(ip: &Value, services: &[Value]) -> bool {
    let name = crate::registry::meta::name(ip);
    services.iter().any(|s| held_by(ip, s) && cluster_ips(s).iter().any(|c| c == name))
}

/// A NodePort bitmap as upstream stores it: a big-endian big integer whose bit `i` is port
/// `base + i` (Go's `big.Int.Bytes()`).
fn encode_bitmap(base: u16, ports: &BTreeSet<u16>) -> Vec<u8> {
    let Some(max) = ports.iter().next_back() else { return Vec::new() };
    let len = ((max - base) as usize) / 8 + 1;
    let mut out = vec![0u8; len];
    for p in ports {
        let off = (p - base) as usize;
        out[len - 1 - off / 8] |= 1 << (off % 8);
    }
    out
}

fn decode_bitmap(base: u16, data: &[u8]) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for (i, byte) in data.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                let off = (data.len() - 1 - i) * 8 + bit;
                if let Some(p) = u16::try_from(base as usize + off).ok() {
                    out.insert(p);
                }
            }
        }
    }
    out
}

/// The ports a stored NodePort `RangeAllocation` marks used.
pub fn range_allocation_ports(bytes: &[u8]) -> Option<BTreeSet<u16>> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let (lo, _) = v["range"].as_str()?.split_once('-')?;
    let base: u16 = lo.trim().parse().ok()?;
    let data = base64::engine::general_purpose::STANDARD.decode(v["data"].as_str().unwrap_or("")).ok()?;
    Some(decode_bitmap(base, &data))
}

/// The stored form of a NodePort `RangeAllocation` over `lo-hi` marking `used`.
pub fn range_allocation(lo: u16, hi: u16, used: &BTreeSet<u16>) -> Vec<u8> {
    let data = base64::engine::general_purpose::STANDARD.encode(encode_bitmap(lo, used));
    serde_json::to_vec(&json!({
        "kind": "RangeAllocation", "apiVersion": "v1", "metadata": {"creationTimestamp": null},
        "range": format!("{lo}-{hi}"), "data": data,
    }))
    .expect("JSON values serialize")
}

/// Seconds since `obj` was created (0 when unknown: treated as new).
fn age_secs(obj: &Value, now: jiff::Timestamp) -> i64 {
    obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| now.as_second() - t.as_second())
}

/// Write a Warning Event about `obj` (a Service or an IPAddress) as upstream's repair
/// controllers do; failures are only logged.
async fn record_event(events: Option<&Store>, obj: &Value, kind: &str, api_version: &str, component: &str, reason: &str, message: &str) {
    let Some(events) = events else { return };
    let name = crate::registry::meta::name(obj);
    let ns = match crate::registry::meta::namespace(obj) {
        "" => "default",
        ns => ns,
    };
    let now = crate::registry::meta::now_rfc3339();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut involved = json!({"kind": kind, "apiVersion": api_version, "name": name, "uid": crate::registry::meta::uid(obj),
                              "resourceVersion": crate::registry::meta::resource_version(obj)});
    if kind == "Service" {
        involved["namespace"] = json!(ns);
    }
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
        "involvedObject": involved, "reason": reason, "message": message, "type": "Warning",
        "source": {"component": component}, "reportingComponent": component, "reportingInstance": "",
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    });
    let opts = WriteOptions { field_manager: Some(component.into()), ..Default::default() };
    if let Err(e) = events.create(Some(ns), ev, &opts).await {
        warn!(%reason, object = %name, error = %e, "recording event");
    }
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    let mut ips: Vec<String> = svc["spec"]["clusterIPs"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if let Some(ip) = svc["spec"]["clusterIP"].as_str() {
        if !ips.iter().any(|i| i == ip) {
            ips.push(ip.to_string());
        }
    }
    ips
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["nodePort"].as_u64()).filter(|n| *n > 0).map(|n| n as u16).collect())
        .unwrap_or_default()
}

fn storage_error(e: StorageError) -> ApiError {
    ApiError::internal(format!("failed to allocate a nodePort: {e}"))
}

impl ServiceAllocator {
    pub fn new(cidr: &str, port_range: &str, storage: Arc<dyn Storage>, prefix: &str) -> Result<Self, AllocatorError> {
        let (network, size, bits) = parse_cidr(cidr).ok_or_else(|| AllocatorError::Cidr(cidr.into()))?;
        let ports = port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b && *a > 0)
            .ok_or_else(|| AllocatorError::PortRange(port_range.into()))?;
        let nodeports_key = format!("{}/services/nodeports", prefix.trim_end_matches('/'));
        Ok(ServiceAllocator { network, size, bits, ports, storage, nodeports_key, ips: OnceLock::new() })
    }

    /// Hand the allocator the IPAddress registry (built after the allocator, as the Service
    /// registry needs the allocator first).
    pub fn attach_ip_store(&self, store: Arc<Store>) {
        let _ = self.ips.set(store);
    }

    fn ip_store(&self) -> Result<&Arc<Store>, ApiError> {
        self.ips.get().ok_or_else(|| ApiError::internal("the IPAddress registry is not ready"))
    }

    /// The address of the `kubernetes` Service: the first usable address of the range.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    /// `--service-cluster-ip-range` in canonical form (the default ServiceCIDR's `spec.cidrs`).
    pub fn service_cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.bits)
    }

    fn offset(&self, ip: &str) -> Option<u32> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let v = u32::from(ip);
        (v > self.network && v < self.network + self.size - 1).then(|| v - self.network)
    }

    /// The `kubernetes` Service asking for its own address: an IPAddress already held for it
    /// (left by another server bootstrapping at the same time, or by a crash) is taken over,
    /// and never released by a failed create.
    fn is_kubernetes_ip(&self, svc: &Value, ip: &str) -> bool {
        svc["metadata"]["namespace"] == "default"
            && svc["metadata"]["name"] == "kubernetes"
            && ip == self.kubernetes_service_ip().to_string()
    }

    /// Offsets in a random order for dynamic allocation; offset 1 (the kubernetes Service's
    /// address) is never handed out dynamically.
    fn candidates(&self) -> impl Iterator<Item = u32> {
        let usable = self.size - 2;
        let start = rand::rng().random_range(0..usable);
        (0..usable).map(move |i| (start + i) % usable + 1).filter(|off| *off != 1)
    }

    /// Create the IPAddress object holding `ip` for `svc`: `AlreadyExists` when it is taken.
    async fn create_ip_object(&self, ip: &str, svc: &Value) -> Result<Value, ApiError> {
        let obj = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
            "metadata": {"name": ip, "labels": {LABEL_IP_FAMILY: "IPv4", LABEL_MANAGED_BY: MANAGED_BY}},
            "spec": {"parentRef": parent_ref(svc)},
        });
        let opts = WriteOptions { field_manager: Some("kube-apiserver".into()), ..Default::default() };
        self.ip_store()?.create(None, obj, &opts).await
    }

    /// Delete the IPAddress `name` if it is still the object with `uid`.
    async fn delete_ip_object(&self, name: &str, uid: &str) -> Result<(), ApiError> {
        let opts = DeleteOptions { precondition_uid: Some(uid.to_string()), ..Default::default() };
        self.ip_store()?.delete(None, name, &opts).await.map(drop)
    }

    /// Create the IPAddress of `ip` for the stored Service `svc`, and delete it again if `svc`
    /// no longer holds `ip` (deleted by another server since it was listed). Returns whether
    /// the address is now recorded; `AlreadyExists` when an IPAddress for `ip` exists.
    async fn record_ip(&self, services: &Store, svc: &Value, ip: &str) -> Result<bool, ApiError> {
        let obj = self.create_ip_object(ip, svc).await?;
        if self.service_holds(services, svc, ip).await? {
            return Ok(true);
        }
        let _ = self.delete_ip_object(ip, crate::registry::meta::uid(&obj)).await;
        Ok(false)
    }

    /// Claim the requested `ip` for `svc`. Returns whether this call created its IPAddress.
    async fn claim_ip(&self, ip: &str, svc: &Value, dry_run: bool) -> Result<bool, ApiError> {
        let name = svc["metadata"]["name"].as_str().unwrap_or("");
        let taken = || {
            ApiError::invalid("Service", "", name, vec![Cause::invalid(
                "spec.clusterIPs",
                ip,
                &format!("failed to allocate IP {ip}: provided IP is already allocated"),
            )])
        };
        let store = self.ip_store()?;
        if dry_run {
            return match store.get(None, ip).await {
                Ok(cur) if self.is_kubernetes_ip(svc, ip) && held_by(&cur, svc) => Ok(false),
                Ok(_) => Err(taken()),
                Err(ApiError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            };
        }
        match self.create_ip_object(ip, svc).await {
            Ok(_) => Ok(true),
            Err(ApiError::AlreadyExists(_)) if self.is_kubernetes_ip(svc, ip) => match store.get(None, ip).await {
                Ok(cur) if held_by(&cur, svc) => Ok(false),
                _ => Err(taken()),
            },
            Err(ApiError::AlreadyExists(_)) => Err(taken()),
            Err(e) => Err(e),
        }
    }

    /// Claim a free address for `svc` (dry run: only pick one that looks free).
    async fn claim_next_ip(&self, svc: &Value, dry_run: bool) -> Result<String, ApiError> {
        let store = self.ip_store()?;
        for off in self.candidates() {
            let ip = Ipv4Addr::from(self.network + off).to_string();
            // The watch cache may lag behind other servers' writes; the create decides.
            if store.cacher.get(&store.key(None, &ip)).is_some() {
                continue;
            }
            if dry_run {
                return Ok(ip);
            }
            match self.create_ip_object(&ip, svc).await {
                Ok(_) => return Ok(ip),
                Err(ApiError::AlreadyExists(_)) => {
                    info!(%ip, "mid-air collision allocating a ClusterIP, trying another");
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::Internal("Internal error occurred: failed to allocate a serviceIP: range is full".into()))
    }

    /// Delete the IPAddress of `ip` if it is held for `svc`.
    async fn release_ip(&self, ip: &str, svc: &Value) {
        if self.offset(ip).is_none() {
            return;
        }
        let Ok(store) = self.ip_store() else { return };
        match store.get(None, ip).await {
            Ok(cur) if held_by(&cur, svc) => {
                match self.delete_ip_object(ip, crate::registry::meta::uid(&cur)).await {
                    Ok(()) | Err(ApiError::NotFound(_)) => {}
                    Err(e) => warn!(%ip, error = %e, "releasing ClusterIP"),
                }
            }
            Ok(cur) => warn!(%ip, parent = %cur["spec"]["parentRef"], "not releasing a ClusterIP held for another object"),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => warn!(%ip, error = %e, "releasing ClusterIP"),
        }
    }

    // ---- node ports ----

    fn encode_range_allocation(&self, used: &BTreeSet<u16>) -> Vec<u8> {
        range_allocation(self.ports.0, self.ports.1, used)
    }

    /// The stored NodePort bitmap and the ports of this server's range it marks used (ports of
    /// another `--service-node-port-range` are dropped).
    async fn read_ports(&self) -> Result<(Option<crate::storage::KeyValue>, BTreeSet<u16>), ApiError> {
        let kv = self.storage.get(&self.nodeports_key).await.map_err(storage_error)?;
        let mut used = match &kv {
            Some(kv) => range_allocation_ports(&kv.value)
                .ok_or_else(|| ApiError::internal(format!("{} is not a RangeAllocation", self.nodeports_key)))?,
            None => BTreeSet::new(),
        };
        used.retain(|p| (self.ports.0..=self.ports.1).contains(p));
        Ok((kv, used))
    }

    /// Read-modify-write of the NodePort bitmap by compare-and-swap. `f` changes the set of used
    /// ports (only when it succeeds); nothing is written on a dry run or when nothing changed.
    async fn update_ports<R>(
        &self,
        dry_run: bool,
        mut f: impl FnMut(&mut BTreeSet<u16>) -> Result<R, PortError>,
    ) -> Result<Result<R, PortError>, ApiError> {
        for _ in 0..CAS_ATTEMPTS {
            let (kv, mut used) = self.read_ports().await?;
            let before = used.clone();
            let out = match f(&mut used) {
                Ok(out) => out,
                Err(e) => return Ok(Err(e)),
            };
            if dry_run || (used == before && kv.is_some()) {
                return Ok(Ok(out));
            }
            let value = self.encode_range_allocation(&used);
            let written = match &kv {
                Some(kv) => self.storage.update(&self.nodeports_key, value, kv.mod_revision).await,
                None => self.storage.create(&self.nodeports_key, value).await,
            };
            match written {
                Ok(_) => return Ok(Ok(out)),
                Err(StorageError::Conflict { .. } | StorageError::AlreadyExists(_) | StorageError::NotFound(_)) => continue,
                Err(e) => return Err(storage_error(e)),
            }
        }
        Err(ApiError::Internal("Internal error occurred: failed to allocate a nodePort: too many concurrent updates".into()))
    }

    /// Take the requested ports (`Some`) and pick free ones (`None`), all in one swap.
    async fn claim_ports(&self, requests: &[Option<u16>], dry_run: bool) -> Result<Result<Vec<u16>, PortError>, ApiError> {
        let (lo, hi) = self.ports;
        self.update_ports(dry_run, |used| {
            let mut got: Vec<u16> = Vec::with_capacity(requests.len());
            for (i, r) in requests.iter().enumerate() {
                if let Some(n) = r {
                    if used.contains(n) {
                        return Err(PortError::Taken(i));
                    }
                }
            }
            let wanted: Vec<u16> = requests.iter().flatten().copied().collect();
            for r in requests {
                let n = match r {
                    Some(n) => *n,
                    None => {
                        let span = (hi - lo) as u32 + 1;
                        let start = rand::rng().random_range(0..span);
                        (0..span)
                            .map(|i| lo + ((start + i) % span) as u16)
                            .find(|p| !used.contains(p) && !got.contains(p) && !wanted.contains(p))
                            .ok_or(PortError::Full)?
                    }
                };
                got.push(n);
            }
            used.extend(got.iter().copied());
            Ok(got)
        })
        .await
    }

    async fn release_ports(&self, ports: &[u16]) {
        if ports.is_empty() {
            return;
        }
        if let Err(e) = self.update_ports(false, |used| {
            for p in ports {
                used.remove(p);
            }
            Ok(())
        })
        .await
        {
            warn!(?ports, error = %e, "releasing node ports");
        }
    }

    /// Give `svc` the node ports its type needs, keeping what `old` already holds.
    async fn allocate_node_ports(&self, svc: &mut Value, old: Option<&Value>, ty: &str, dry_run: bool) -> Result<(), ApiError> {
        let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let invalid = |causes: Vec<Cause>| ApiError::invalid("Service", "", &name, causes);
        let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
        let old_ports: Vec<u16> = old.map(node_ports).unwrap_or_default();
        // (index in spec.ports, requested port)
        let mut requests: Vec<(usize, Option<u16>)> = Vec::new();
        if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
            for (i, p) in ports.iter_mut().enumerate() {
                if !wants_node_ports {
                    if let Some(o) = p.as_object_mut() {
                        o.remove("nodePort");
                    }
                    continue;
                }
                let field = format!("spec.ports[{i}].nodePort");
                match p["nodePort"].as_u64().filter(|n| *n > 0) {
                    Some(n) => {
                        let n = n as u16;
                        if old_ports.contains(&n) {
                            continue;
                        }
                        if n < self.ports.0 || n > self.ports.1 {
                            return Err(invalid(vec![Cause::invalid(
                                &field,
                                &n.to_string(),
                                &format!("provided port is not in the valid range. The range of valid ports is {}-{}", self.ports.0, self.ports.1),
                            )]));
                        }
                        if requests.iter().any(|(_, r)| *r == Some(n)) {
                            return Err(invalid(vec![Cause::invalid(&field, &n.to_string(), "provided port is already allocated")]));
                        }
                        requests.push((i, Some(n)));
                    }
                    None => requests.push((i, None)),
                }
            }
        }
        if requests.is_empty() {
            return Ok(());
        }
        let asked: Vec<Option<u16>> = requests.iter().map(|(_, r)| *r).collect();
        match self.claim_ports(&asked, dry_run).await? {
            Ok(got) => {
                for ((i, _), n) in requests.iter().zip(got) {
                    svc["spec"]["ports"][*i]["nodePort"] = json!(n);
                }
                Ok(())
            }
            Err(PortError::Taken(k)) => {
                let (i, n) = requests[k];
                let n = n.unwrap_or_default().to_string();
                Err(invalid(vec![Cause::invalid(&format!("spec.ports[{i}].nodePort"), &n, "provided port is already allocated")]))
            }
            Err(PortError::Full) => {
                Err(ApiError::Internal("Internal error occurred: failed to allocate a nodePort: range is full".into()))
            }
        }
    }

    // ---- the Service strategy's hooks ----

    /// Fill in `spec.clusterIP(s)` and node ports of `svc`, keeping what `old` already holds.
    /// On a dry run nothing is written; the answer shows what would be allocated.
    pub async fn allocate_for(&self, svc: &mut Value, old: Option<&Value>, dry_run: bool) -> Result<(), ApiError> {
        let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let invalid = |causes: Vec<Cause>| ApiError::invalid("Service", "", &name, causes);
        let ty = svc["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
        let mut created_ip = None;

        if ty == "ExternalName" {
            if let Some(spec) = svc["spec"].as_object_mut() {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        } else {
            let old_ip = old.and_then(|o| o["spec"]["clusterIP"].as_str()).filter(|s| !s.is_empty()).map(String::from);
            let wanted = svc["spec"]["clusterIP"].as_str().filter(|s| !s.is_empty()).map(String::from);
            let ip = match (old_ip, wanted) {
                (Some(o), Some(w)) if o != w => {
                    return Err(invalid(vec![Cause::invalid("spec.clusterIPs[0]", &w, "may not change once set")]));
                }
                (Some(o), _) => o,
                (None, Some(w)) if w == "None" => w,
                (None, Some(w)) => {
                    if self.offset(&w).is_none() {
                        return Err(invalid(vec![Cause::invalid(
                            "spec.clusterIPs",
                            &w,
                            &format!("failed to allocate IP {w}: the provided IP ({w}) is not in the valid range"),
                        )]));
                    }
                    if self.claim_ip(&w, svc, dry_run).await? {
                        created_ip = Some(w.clone());
                    }
                    w
                }
                (None, None) => {
                    let ip = self.claim_next_ip(svc, dry_run).await?;
                    if !dry_run {
                        created_ip = Some(ip.clone());
                    }
                    ip
                }
            };
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
            if ip != "None" || svc["spec"]["ipFamilies"].is_null() {
                svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            }
            if svc["spec"]["ipFamilyPolicy"].is_null() {
                svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }

        if let Err(e) = self.allocate_node_ports(svc, old, &ty, dry_run).await {
            if let Some(ip) = created_ip {
                self.release_ip(&ip, svc).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Return everything `svc` held (it is gone from storage).
    pub async fn release_for(&self, svc: &Value) {
        for ip in cluster_ips(svc) {
            self.release_ip(&ip, svc).await;
        }
        self.release_ports(&node_ports(svc)).await;
    }

    /// Undo `allocate_for(svc, None, false)` after the Service could not be stored.
    pub async fn rollback_create(&self, svc: &Value) {
        for ip in cluster_ips(svc) {
            if !self.is_kubernetes_ip(svc, &ip) {
                self.release_ip(&ip, svc).await;
            }
        }
        self.release_ports(&node_ports(svc)).await;
    }

    /// Undo `allocate_for(new, Some(old), false)` after the update could not be stored: return
    /// what `new` holds and `old` does not.
    pub async fn rollback_update(&self, new: &Value, old: &Value) {
        self.release_difference(new, old).await;
    }

    /// After an update is stored: return what `old` held and `new` no longer does (a type
    /// change to ExternalName or ClusterIP, a port removed).
    pub async fn after_update(&self, new: &Value, old: &Value) {
        self.release_difference(old, new).await;
    }

    /// Release what `from` holds and `keep` does not.
    async fn release_difference(&self, from: &Value, keep: &Value) {
        let keep_ips = cluster_ips(keep);
        for ip in cluster_ips(from) {
            if !keep_ips.contains(&ip) && !self.is_kubernetes_ip(from, &ip) {
                self.release_ip(&ip, from).await;
            }
        }
        let keep_ports = node_ports(keep);
        let gone: Vec<u16> = node_ports(from).into_iter().filter(|p| !keep_ports.contains(p)).collect();
        self.release_ports(&gone).await;
    }

    // ---- start-up ----

    /// Make the store agree with the stored Services: every in-range ClusterIP gets its
    /// IPAddress (Services written before allocation went through IPAddress objects), every
    /// NodePort its bit, and IPAddresses left by a crash between allocation and the Service's
    /// write are deleted once old enough that no server can still be creating their Service.
    pub async fn reconcile(&self, services: &Store) -> Result<(), ApiError> {
        let store = self.ip_store()?;
        let stored = services.list_all().await?;
        let mut created = 0;
        for svc in &stored {
            for ip in cluster_ips(svc) {
                if self.offset(&ip).is_none() {
                    continue;
                }
                match self.record_ip(services, svc, &ip).await {
                    Ok(true) => created += 1,
                    Ok(false) => {}
                    Err(ApiError::AlreadyExists(_)) => {
                        if let Ok(cur) = store.get(None, &ip).await {
                            if !held_by(&cur, svc) {
                                warn!(%ip, service = %parent_ref(svc), holder = %cur["spec"]["parentRef"],
                                      "ClusterIP is allocated to more than one object");
                            }
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if created > 0 {
            info!(count = created, "created IPAddress objects for stored Services");
        }

        // Orphans: managed by this allocator, pointing at a Service that does not hold them.
        let now = jiff::Timestamp::now();
        for ip in store.list_all().await? {
            let name = crate::registry::meta::name(&ip).to_string();
            if ip["metadata"]["labels"][LABEL_MANAGED_BY] != MANAGED_BY || ip["spec"]["parentRef"]["resource"] != "services" {
                continue;
            }
            if held_by_any(&ip, &stored) {
                continue;
            }
            if age_secs(&ip, now) <= ORPHAN_MIN_AGE_SECS {
                continue;
            }
            // Re-read the parent: it may have been created since the list.
            let p = &ip["spec"]["parentRef"];
            let parent = services.get(p["namespace"].as_str(), p["name"].as_str().unwrap_or("")).await;
            if matches!(&parent, Ok(s) if cluster_ips(s).contains(&name)) {
                continue;
            }
            info!(ip = %name, parent = %p, "deleting IPAddress of a missing Service");
            let _ = self.delete_ip_object(&name, crate::registry::meta::uid(&ip)).await;
        }

        // Node ports: mark what stored Services use; if a Service was deleted meanwhile (its
        // ports released by another server), un-mark what this pass added for it.
        let in_use: BTreeSet<u16> = stored.iter().flat_map(node_ports).filter(|p| (self.ports.0..=self.ports.1).contains(p)).collect();
        let added = self
            .update_ports(false, |used| {
                let added: Vec<u16> = in_use.difference(used).copied().collect();
                used.extend(added.iter().copied());
                Ok(added)
            })
            .await?
            .unwrap_or_default();
        if !added.is_empty() {
            info!(count = added.len(), "recorded node ports of stored Services");
            let now_used: BTreeSet<u16> = services.list_all().await?.iter().flat_map(node_ports).collect();
            let stale: Vec<u16> = added.into_iter().filter(|p| !now_used.contains(p)).collect();
            self.release_ports(&stale).await;
        }
        Ok(())
    }

    // ---- periodic repair ----

    /// Whether `svc` (same uid) is still stored and still holds `ip`.
    async fn service_holds(&self, services: &Store, svc: &Value, ip: &str) -> Result<bool, ApiError> {
        let ns = svc["metadata"]["namespace"].as_str();
        match services.get(ns, crate::registry::meta::name(svc)).await {
            Ok(cur) => Ok(crate::registry::meta::uid(&cur) == crate::registry::meta::uid(svc) && cluster_ips(&cur).iter().any(|c| c == ip)),
            Err(ApiError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One pass of the repair loop (upstream's ipallocator and portallocator repair
    /// controllers): record what stored Services hold and the store does not, and free what no
    /// Service holds once it has looked leaked on enough passes in a row; an IPAddress must
    /// also be older than `grace` (the request timeout: no create of its Service can still be
    /// in flight).
    pub async fn repair(&self, services: &Store, events: Option<&Store>, state: &mut RepairState, grace: std::time::Duration) -> Result<RepairReport, ApiError> {
        let mut report = RepairReport::default();
        // The bitmap is read before the Services are listed, so a port marked after this read
        // is not judged on this pass.
        let (_, snapshot) = self.read_ports().await?;
        let stored = services.list_all().await?;
        self.repair_ports(&stored, &snapshot, events, state, &mut report).await?;
        self.repair_ips(services, &stored, events, state, grace, &mut report).await?;
        Ok(report)
    }

    async fn repair_ports(
        &self,
        stored: &[Value],
        snapshot: &BTreeSet<u16>,
        events: Option<&Store>,
        state: &mut RepairState,
        report: &mut RepairReport,
    ) -> Result<(), ApiError> {
        let mut holders: BTreeMap<u16, &Value> = BTreeMap::new();
        for svc in stored {
            for p in node_ports(svc) {
                if !(self.ports.0..=self.ports.1).contains(&p) {
                    continue;
                }
                match holders.get(&p) {
                    Some(h) if crate::registry::meta::uid(h) != crate::registry::meta::uid(svc) => {
                        warn!(port = p, service = %parent_ref(svc), other = %parent_ref(h), "node port is assigned to more than one Service");
                        let msg = format!("Port {p} was assigned to multiple services; please recreate service");
                        record_event(events, svc, "Service", "v1", PORT_REPAIR_COMPONENT, "PortAlreadyAllocated", &msg).await;
                    }
                    Some(_) => {}
                    None => {
                        holders.insert(p, svc);
                    }
                }
            }
        }
        let suspects: Vec<u16> = snapshot.iter().filter(|p| !holders.contains_key(p)).copied().collect();
        for p in &suspects {
            if !state.ports.flagged().contains_key(p) {
                warn!(port = p, "the node port may have leaked: flagging for later clean up");
            }
        }
        let ripe = state.ports.observe(suspects);
        let missing: Vec<u16> = holders.keys().filter(|p| !snapshot.contains(p)).copied().collect();
        if ripe.is_empty() && missing.is_empty() {
            return Ok(());
        }
        // Applied to the current bitmap: only what is still missing is added, only what is
        // still marked is removed.
        let (added, removed) = self
            .update_ports(false, |used| {
                let added: Vec<u16> = missing.iter().filter(|p| !used.contains(p)).copied().collect();
                used.extend(added.iter().copied());
                let removed: Vec<u16> = ripe.iter().filter(|p| used.remove(p)).copied().collect();
                Ok((added, removed))
            })
            .await?
            .unwrap_or_default();
        for p in &added {
            let svc = holders[p];
            warn!(port = p, service = %parent_ref(svc), "the node port is not allocated; repairing");
            record_event(events, svc, "Service", "v1", PORT_REPAIR_COMPONENT, "PortNotAllocated", &format!("Port {p} is not allocated; repairing")).await;
        }
        for p in &removed {
            warn!(port = p, "the node port appears to have leaked: cleaning up");
        }
        report.ports_recorded = added;
        report.ports_released = removed;
        Ok(())
    }

    async fn repair_ips(
        &self,
        services: &Store,
        stored: &[Value],
        events: Option<&Store>,
        state: &mut RepairState,
        grace: std::time::Duration,
        report: &mut RepairReport,
    ) -> Result<(), ApiError> {
        use crate::registry::meta;
        let store = self.ip_store()?;
        // Listed after the Services: an IPAddress whose Service is written meanwhile is only
        // suspected, and the grace period covers it.
        let ip_objs = store.list_all().await?;
        let by_name: BTreeMap<&str, &Value> = ip_objs.iter().map(|o| (meta::name(o), o)).collect();

        // Services whose addresses have no IPAddress (deleted by hand, lost).
        for svc in stored {
            for ip in cluster_ips(svc) {
                if self.offset(&ip).is_none() {
                    continue;
                }
                match by_name.get(ip.as_str()) {
                    Some(cur) if held_by(cur, svc) => {}
                    Some(cur) => {
                        if held_by_any(cur, stored) {
                            warn!(%ip, service = %parent_ref(svc), holder = %cur["spec"]["parentRef"], "ClusterIP is assigned to more than one Service");
                            let msg = format!("Cluster IP [IPv4]:{ip} was assigned to multiple services; please recreate service");
                            record_event(events, svc, "Service", "v1", IP_REPAIR_COMPONENT, "ClusterIPAlreadyAllocated", &msg).await;
                        }
                        // Otherwise its IPAddress is an orphan: deleted below once past the grace
                        // period, then recreated for this Service on a later pass.
                    }
                    None => match self.record_ip(services, svc, &ip).await {
                        Ok(true) => {
                            warn!(%ip, service = %parent_ref(svc), "the ClusterIP is not allocated; repairing");
                            let msg = format!("Cluster IP [IPv4]: {ip} is not allocated; repairing");
                            record_event(events, svc, "Service", "v1", IP_REPAIR_COMPONENT, "ClusterIPNotAllocated", &msg).await;
                            report.ips_recorded.push(ip);
                        }
                        Ok(false) | Err(ApiError::AlreadyExists(_)) => {}
                        Err(e) => return Err(e),
                    },
                }
            }
        }

        // Orphans: managed by this allocator, not held by the Service they point at.
        let now = jiff::Timestamp::now();
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        let mut suspects: BTreeMap<String, &Value> = BTreeMap::new();
        for ip in &ip_objs {
            if ip["metadata"]["labels"][LABEL_MANAGED_BY] != MANAGED_BY {
                continue;
            }
            let name = meta::name(ip);
            if held_by_any(ip, stored) {
                continue;
            }
            if age_secs(ip, now) <= grace {
                continue;
            }
            if !state.ips.flagged().contains_key(meta::uid(ip)) {
                warn!(ip = %name, parent = %ip["spec"]["parentRef"], "the IPAddress may have leaked: flagging for later clean up");
            }
            suspects.insert(meta::uid(ip).to_string(), ip);
        }
        for uid in state.ips.observe(suspects.keys().cloned().collect::<Vec<_>>()) {
            let ip = suspects[&uid];
            let name = meta::name(ip).to_string();
            let p = &ip["spec"]["parentRef"];
            let (pns, pname) = (p["namespace"].as_str().unwrap_or(""), p["name"].as_str().unwrap_or(""));
            // Re-read the parent: it may have been written since the list.
            let (reason, msg) = if p["resource"] == "services" && p["group"].as_str().unwrap_or("").is_empty() {
                match services.get(Some(pns), pname).await {
                    Ok(s) if cluster_ips(&s).contains(&name) => continue,
                    Ok(_) => ("IPAddressWrongReference", format!("IPAddress: {name} for Service {pns}/{pname} has a wrong reference; cleaning up")),
                    Err(ApiError::NotFound(_)) => {
                        ("IPAddressNotAllocated", format!("IPAddress: {name} for Service {pns}/{pname} appears to have leaked: cleaning up"))
                    }
                    Err(e) => return Err(e),
                }
            } else {
                ("IPAddressNotAllocated", format!("IPAddress {name} appears to have been modified, not referencing a Service {p}: cleaning up"))
            };
            match self.delete_ip_object(&name, &uid).await {
                Ok(()) => {
                    warn!(ip = %name, parent = %p, "{msg}");
                    record_event(events, ip, "IPAddress", "networking.k8s.io/v1", IP_REPAIR_COMPONENT, reason, &msg).await;
                    report.ips_deleted.push(name);
                }
                Err(ApiError::NotFound(_) | ApiError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Create the default ServiceCIDR `kubernetes` from `--service-cluster-ip-range` and mark it
    /// Ready, as upstream's default-servicecidr controller does.
    pub async fn ensure_service_cidr(&self, cidrs: &Store) -> Result<(), ApiError> {
        let opts = WriteOptions { field_manager: Some("kube-apiserver".into()), ..Default::default() };
        let cidr = self.service_cidr();
        let obj = json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                         "metadata": {"name": DEFAULT_SERVICE_CIDR}, "spec": {"cidrs": [cidr]}});
        let cur = match cidrs.create(None, obj, &opts).await {
            Ok(v) => v,
            Err(ApiError::AlreadyExists(_)) => cidrs.get(None, DEFAULT_SERVICE_CIDR).await?,
            Err(e) => return Err(e),
        };
        if cur["spec"]["cidrs"] != json!([cidr]) {
            warn!(configured = %cidr, stored = %cur["spec"]["cidrs"], "the default ServiceCIDR does not match --service-cluster-ip-range");
            return Ok(());
        }
        let has_ready = cur["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| c["type"] == "Ready" && c["status"] != "Unknown")
        });
        if has_ready || crate::registry::meta::is_deleting(&cur) {
            return Ok(());
        }
        let mut body = cur;
        body["status"] = json!({"conditions": [{
            "type": "Ready", "status": "True", "reason": "", "message": "Kubernetes default Service CIDR is ready",
            "lastTransitionTime": crate::registry::meta::now_rfc3339(),
        }]});
        match cidrs.update(None, DEFAULT_SERVICE_CIDR, crate::registry::Part::Status, body, &opts).await {
            Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::Generic;
    use crate::storage::embedded::EmbeddedStorage;

    fn svc(name: &str, ty: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"type": ty, "ports": [{"port": 80}]}})
    }

    /// An allocator on `storage` (several of them act as several API servers on one store).
    fn allocator(storage: &Arc<dyn Storage>, cidr: &str, ports: &str) -> ServiceAllocator {
        let a = ServiceAllocator::new(cidr, ports, storage.clone(), "/registry").unwrap();
        let info = crate::resources::find("networking.k8s.io", "v1", "ipaddresses").unwrap();
        a.attach_ip_store(Arc::new(Store::new(info, Arc::new(Generic::default()), storage.clone(), "/registry", 100)));
        a
    }

    fn open() -> (tempfile::TempDir, Arc<dyn Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(EmbeddedStorage::open(dir.path()).unwrap());
        (dir, storage)
    }

    async fn ip_object(a: &ServiceAllocator, ip: &str) -> Option<Value> {
        a.ip_store().unwrap().get(None, ip).await.ok()
    }

    #[test]
    fn bitmap_is_a_big_endian_big_int() {
        let ports: BTreeSet<u16> = [30000, 30009, 30010].into();
        // bits 0, 9 and 10: 0b110_0000_0001
        assert_eq!(encode_bitmap(30000, &ports), vec![0x06, 0x01]);
        assert_eq!(decode_bitmap(30000, &[0x06, 0x01]), ports);
        assert!(encode_bitmap(30000, &BTreeSet::new()).is_empty());
        let all: BTreeSet<u16> = (30000..=32767).collect();
        assert_eq!(decode_bitmap(30000, &encode_bitmap(30000, &all)), all);
    }

    #[test]
    fn leaks_are_released_only_after_enough_passes_in_a_row() {
        let mut l = Leaks::new(3);
        assert!(l.observe([1u16, 2]).is_empty());
        assert_eq!(l.flagged().get(&1), Some(&1));
        // 2 is held again (not suspected): it is forgotten and starts over.
        assert!(l.observe([1]).is_empty());
        assert!(!l.flagged().contains_key(&2));
        assert_eq!(l.observe([1, 2]), vec![1]);
        // A released key is forgotten: allocated again and looking leaked, it waits again.
        assert!(!l.flagged().contains_key(&1));
        assert!(l.observe([1, 2]).is_empty());
        assert_eq!(l.observe([1, 2]), vec![2]);
        assert_eq!(l.observe([1]), vec![1]);
        assert!(l.flagged().is_empty());
        let mut now = Leaks::new(0);
        assert_eq!(now.observe(["a".to_string()]), vec!["a".to_string()]);
    }

    fn store_for(storage: &Arc<dyn Storage>, plural: &str) -> Store {
        let info = crate::resources::find("", "v1", plural).unwrap();
        Store::new(info, Arc::new(Generic::default()), storage.clone(), "/registry", 100)
    }

    #[tokio::test]
    async fn repair_frees_leaks_after_several_passes_and_records_missing_ip_objects() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/24", "30000-30009");
        let services = store_for(&storage, "services");
        let events = store_for(&storage, "events");
        let opts = WriteOptions::default();
        let mut s = svc("s", "NodePort");
        s["spec"]["clusterIP"] = json!("10.0.0.10");
        s["spec"]["ports"][0]["nodePort"] = json!(30001);
        a.allocate_for(&mut s, None, false).await.unwrap();
        let s = services.create(Some("default"), s, &opts).await.unwrap();
        let (ip, port, leaked) = ("10.0.0.10".to_string(), 30001, 30009);
        // A crash between allocation and the Service's write.
        a.claim_ports(&[Some(leaked)], false).await.unwrap().unwrap();
        a.create_ip_object("10.0.0.77", &svc("gone", "ClusterIP")).await.unwrap();
        // An IPAddress pointing at a Service that holds another address.
        a.create_ip_object("10.0.0.78", &svc("s", "ClusterIP")).await.unwrap();
        a.ip_store().unwrap().delete(None, &ip, &DeleteOptions::default()).await.unwrap();
        let marked = || async {
            let kv = storage.get("/registry/services/nodeports").await.unwrap().unwrap();
            range_allocation_ports(&kv.value).unwrap()
        };

        let mut state = RepairState::default();
        let hour = std::time::Duration::from_secs(3600);
        let r = a.repair(&services, Some(&events), &mut state, hour).await.unwrap();
        assert_eq!(r.ips_recorded, vec![ip.clone()]);
        let obj = ip_object(&a, &ip).await.expect("IPAddress re-created");
        assert_eq!(obj["spec"]["parentRef"], parent_ref(&s));
        let evs = events.list_all().await.unwrap();
        assert!(evs.iter().any(|e| e["reason"] == "ClusterIPNotAllocated" && e["involvedObject"]["name"] == "s"), "{evs:?}");
        assert!(r.ports_released.is_empty());
        assert!(a.repair(&services, Some(&events), &mut state, hour).await.unwrap().ports_released.is_empty());
        assert!(marked().await.contains(&leaked));
        let r = a.repair(&services, Some(&events), &mut state, hour).await.unwrap();
        assert_eq!(r.ports_released, vec![leaked]);
        assert_eq!(marked().await, BTreeSet::from([port]));
        // Young orphans survive any number of passes.
        assert!(r.ips_deleted.is_empty());
        assert!(ip_object(&a, "10.0.0.77").await.is_some());

        // Past the grace period, orphans go on their second pass.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let zero = std::time::Duration::ZERO;
        assert!(a.repair(&services, Some(&events), &mut state, zero).await.unwrap().ips_deleted.is_empty());
        let mut r = a.repair(&services, Some(&events), &mut state, zero).await.unwrap();
        r.ips_deleted.sort();
        assert_eq!(r.ips_deleted, vec!["10.0.0.77".to_string(), "10.0.0.78".to_string()]);
        assert!(ip_object(&a, &ip).await.is_some());
        let r = a.repair(&services, Some(&events), &mut state, zero).await.unwrap();
        assert_eq!(r, RepairReport::default());

        // A port a stored Service uses but the bitmap lost is marked again.
        a.release_ports(&[port]).await;
        let r = a.repair(&services, None, &mut state, zero).await.unwrap();
        assert_eq!(r.ports_recorded, vec![port]);
        assert_eq!(marked().await, BTreeSet::from([port]));
    }

    #[tokio::test]
    async fn allocates_unique_ips_as_ipaddress_objects_until_full() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/29", "30000-30002");
        let mut seen = BTreeSet::new();
        // /29 = 8 addresses, minus network, broadcast and the kubernetes IP = 5.
        for i in 0..5 {
            let mut s = svc(&format!("s{i}"), "ClusterIP");
            a.allocate_for(&mut s, None, false).await.unwrap();
            let ip = s["spec"]["clusterIP"].as_str().unwrap().to_string();
            let obj = ip_object(&a, &ip).await.expect("IPAddress created");
            assert_eq!(obj["spec"]["parentRef"], json!({"group": "", "resource": "services", "namespace": "default", "name": format!("s{i}")}));
            assert_eq!(obj["metadata"]["labels"][LABEL_MANAGED_BY], MANAGED_BY);
            assert_eq!(obj["metadata"]["labels"][LABEL_IP_FAMILY], "IPv4");
            assert!(seen.insert(ip));
        }
        assert!(!seen.contains("10.0.0.1"));
        let mut s = svc("full", "ClusterIP");
        assert_eq!(a.allocate_for(&mut s, None, false).await.unwrap_err().code(), 500);
    }

    #[tokio::test]
    async fn requested_ip_conflicts_across_allocators_and_release() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/24", "30000-32767");
        let b = allocator(&storage, "10.0.0.0/24", "30000-32767");
        let mut s = svc("s", "ClusterIP");
        s["spec"]["clusterIP"] = json!("10.0.0.10");
        a.allocate_for(&mut s, None, false).await.unwrap();
        let mut t = svc("t", "ClusterIP");
        t["spec"]["clusterIP"] = json!("10.0.0.10");
        let e = b.allocate_for(&mut t, None, false).await.unwrap_err();
        assert_eq!(e.code(), 422);
        assert!(e.to_string().contains("provided IP is already allocated"), "{e}");
        // Dry runs see the conflict too, and write nothing.
        assert_eq!(b.allocate_for(&mut t.clone(), None, true).await.unwrap_err().code(), 422);
        // Releasing another Service's address is a no-op.
        a.release_for(&t).await;
        assert!(ip_object(&a, "10.0.0.10").await.is_some());
        a.release_for(&s).await;
        assert!(ip_object(&a, "10.0.0.10").await.is_none());
        b.allocate_for(&mut t, None, false).await.unwrap();
        let mut u = svc("u", "ClusterIP");
        u["spec"]["clusterIP"] = json!("10.9.0.1");
        assert_eq!(a.allocate_for(&mut u, None, false).await.unwrap_err().code(), 422);
    }

    #[tokio::test]
    async fn dry_run_allocates_nothing() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/24", "30000-30001");
        let mut s = svc("s", "NodePort");
        a.allocate_for(&mut s, None, true).await.unwrap();
        assert!(s["spec"]["clusterIP"].as_str().is_some());
        assert!(s["spec"]["ports"][0]["nodePort"].as_u64().is_some());
        assert!(a.ip_store().unwrap().list_all().await.unwrap().is_empty());
        assert!(storage.get("/registry/services/nodeports").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn node_ports_are_shared_through_the_store() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/24", "30000-30001");
        let b = allocator(&storage, "10.0.0.0/24", "30000-30001");
        let mut s1 = svc("s1", "NodePort");
        a.allocate_for(&mut s1, None, false).await.unwrap();
        let mut s2 = svc("s2", "NodePort");
        b.allocate_for(&mut s2, None, false).await.unwrap();
        assert_ne!(s1["spec"]["ports"][0]["nodePort"], s2["spec"]["ports"][0]["nodePort"]);
        let mut s3 = svc("s3", "NodePort");
        assert_eq!(a.allocate_for(&mut s3, None, false).await.unwrap_err().code(), 500);
        // The failed allocation gave back the address it took.
        assert_eq!(a.ip_store().unwrap().list_all().await.unwrap().len(), 2);
        let mut s4 = svc("s4", "NodePort");
        s4["spec"]["ports"][0]["nodePort"] = s1["spec"]["ports"][0]["nodePort"].clone();
        let e = b.allocate_for(&mut s4, None, false).await.unwrap_err();
        assert!(e.to_string().contains("provided port is already allocated"), "{e}");
        // Stored as upstream's RangeAllocation.
        let kv = storage.get("/registry/services/nodeports").await.unwrap().unwrap();
        let v: Value = serde_json::from_slice(&kv.value).unwrap();
        assert_eq!(v["kind"], "RangeAllocation");
        assert_eq!(v["range"], "30000-30001");
        assert_eq!(v["data"], "Aw==");
        // Deleting s1 frees its port for the other server.
        a.release_for(&s1).await;
        b.allocate_for(&mut s3, None, false).await.unwrap();
        assert_eq!(s3["spec"]["ports"][0]["nodePort"], s1["spec"]["ports"][0]["nodePort"]);
    }

    #[tokio::test]
    async fn update_keeps_ip_rejects_change_and_releases_dropped_ports() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/24", "30000-30000");
        let mut s = svc("s", "NodePort");
        a.allocate_for(&mut s, None, false).await.unwrap();
        let mut n = svc("s", "ClusterIP");
        a.allocate_for(&mut n, Some(&s), false).await.unwrap();
        assert_eq!(n["spec"]["clusterIP"], s["spec"]["clusterIP"]);
        assert!(n["spec"]["ports"][0]["nodePort"].is_null());
        a.after_update(&n, &s).await;
        let mut other = svc("o", "NodePort");
        a.allocate_for(&mut other, None, false).await.unwrap();
        let mut c = svc("s", "ClusterIP");
        c["spec"]["clusterIP"] = json!("10.0.0.200");
        assert_eq!(a.allocate_for(&mut c, Some(&s), false).await.unwrap_err().code(), 422);
        // Changing to ExternalName and storing it releases the address.
        let mut e = svc("s", "ExternalName");
        a.allocate_for(&mut e, Some(&n), false).await.unwrap();
        a.after_update(&e, &n).await;
        assert!(ip_object(&a, n["spec"]["clusterIP"].as_str().unwrap()).await.is_none());
    }

    #[tokio::test]
    async fn kubernetes_service_takes_over_its_own_address() {
        let (_d, storage) = open();
        let a = allocator(&storage, "10.0.0.0/24", "30000-32767");
        let b = allocator(&storage, "10.0.0.0/24", "30000-32767");
        let mut k = svc("kubernetes", "ClusterIP");
        k["spec"]["clusterIP"] = json!("10.0.0.1");
        a.allocate_for(&mut k.clone(), None, false).await.unwrap();
        // The other server bootstrapping at the same time gets it too, and its failed create
        // does not take the address away.
        b.allocate_for(&mut k, None, false).await.unwrap();
        b.rollback_create(&k).await;
        assert!(ip_object(&a, "10.0.0.1").await.is_some());
        let mut x = svc("x", "ClusterIP");
        x["spec"]["clusterIP"] = json!("10.0.0.1");
        assert_eq!(b.allocate_for(&mut x, None, false).await.unwrap_err().code(), 422);
    }
}
