//! ClusterIP and NodePort allocation for Services.
//!
//! The allocation state is derived from the stored Services at start-up and kept in memory
//! behind one lock, so it survives restarts without a separate bitmap object; every allocation
//! is checked against that state so no address or port is handed out twice.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use rand::Rng;
use serde_json::{Value, json};

use crate::errors::{ApiError, Cause};

#[derive(Debug, thiserror::Error)]
pub enum AllocatorError {
    #[error("invalid --service-cluster-ip-range {0:?}: expected an IPv4 CIDR with at least 8 addresses")]
    Cidr(String),
    #[error("invalid --service-node-port-range {0:?}: expected LOW-HIGH")]
    PortRange(String),
}

#[derive(Default)]
struct State {
    ips: HashSet<u32>,
    ports: HashSet<u16>,
}

pub struct ServiceAllocator {
    network: u32,
    size: u32,
    ports: (u16, u16),
    state: Mutex<State>,
}

fn parse_cidr(s: &str) -> Option<(u32, u32)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    if !(1..=29).contains(&bits) {
        return None;
    }
    let size = 1u32 << (32 - bits);
    Some((u32::from(ip) & !(size - 1), size))
}

impl ServiceAllocator {
    pub fn new(cidr: &str, port_range: &str) -> Result<Self, AllocatorError> {
        let (network, size) = parse_cidr(cidr).ok_or_else(|| AllocatorError::Cidr(cidr.into()))?;
        let ports = port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b && *a > 0)
            .ok_or_else(|| AllocatorError::PortRange(port_range.into()))?;
        Ok(ServiceAllocator { network, size, ports, state: Mutex::new(State::default()) })
    }

    /// The address of the `kubernetes` Service: the first usable address of the range.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    /// Record the addresses and ports held by already-stored Services.
    pub fn load<'a>(&self, services: impl IntoIterator<Item = &'a Value>) {
        let mut st = self.state.lock().expect("allocator lock");
        for svc in services {
            for ip in cluster_ips(svc) {
                if let Some(off) = self.offset(&ip) {
                    st.ips.insert(off);
                }
            }
            for p in node_ports(svc) {
                st.ports.insert(p);
            }
        }
    }

    fn offset(&self, ip: &str) -> Option<u32> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let v = u32::from(ip);
        (v > self.network && v < self.network + self.size - 1).then(|| v - self.network)
    }

    /// Fill in `spec.clusterIP(s)` and node ports of `svc`, keeping what `old` already holds.
    pub fn allocate_for(&self, svc: &mut Value, old: Option<&Value>, dry_run: bool) -> Result<(), ApiError> {
        let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let invalid = |causes: Vec<Cause>| ApiError::invalid("Service", "", &name, causes);
        let mut st = self.state.lock().expect("allocator lock");
        let ty = svc["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
        let mut new_ips = Vec::new();
        let mut new_ports = Vec::new();

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
                    let Some(off) = self.offset(&w) else {
                        return Err(invalid(vec![Cause::invalid(
                            "spec.clusterIPs",
                            &w,
                            &format!("failed to allocate IP {w}: the provided IP ({w}) is not in the valid range"),
                        )]));
                    };
                    if st.ips.contains(&off) {
                        return Err(invalid(vec![Cause::invalid(
                            "spec.clusterIPs",
                            &w,
                            &format!("failed to allocate IP {w}: provided IP is already allocated"),
                        )]));
                    }
                    new_ips.push(off);
                    w
                }
                (None, None) => {
                    let off = self.pick_ip(&st).ok_or_else(|| {
                        ApiError::Internal("Internal error occurred: failed to allocate a serviceIP: range is full".into())
                    })?;
                    new_ips.push(off);
                    Ipv4Addr::from(self.network + off).to_string()
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

        let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
        let old_ports: Vec<u16> = old.map(node_ports).unwrap_or_default();
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
                        if st.ports.contains(&n) || new_ports.contains(&n) {
                            return Err(invalid(vec![Cause::invalid(&field, &n.to_string(), "provided port is already allocated")]));
                        }
                        new_ports.push(n);
                    }
                    None => {
                        let n = self.pick_port(&st, &new_ports).ok_or_else(|| {
                            ApiError::Internal("Internal error occurred: failed to allocate a nodePort: range is full".into())
                        })?;
                        new_ports.push(n);
                        p["nodePort"] = json!(n);
                    }
                }
            }
        }
        if !dry_run {
            st.ips.extend(new_ips);
            st.ports.extend(new_ports);
        }
        Ok(())
    }

    fn pick_ip(&self, st: &State) -> Option<u32> {
        let usable = self.size - 2;
        let start = rand::rng().random_range(0..usable);
        // Offset 1 is reserved for the kubernetes Service.
        (0..usable).map(|i| (start + i) % usable + 1).find(|off| *off != 1 && !st.ips.contains(off))
    }

    fn pick_port(&self, st: &State, taken: &[u16]) -> Option<u16> {
        let n = (self.ports.1 - self.ports.0) as u32 + 1;
        let start = rand::rng().random_range(0..n);
        (0..n)
            .map(|i| self.ports.0 + ((start + i) % n) as u16)
            .find(|p| !st.ports.contains(p) && !taken.contains(p))
    }

    /// Return what `svc` held.
    pub fn release_for(&self, svc: &Value) {
        let mut st = self.state.lock().expect("allocator lock");
        for ip in cluster_ips(svc) {
            if let Some(off) = self.offset(&ip) {
                st.ips.remove(&off);
            }
        }
        for p in node_ports(svc) {
            st.ports.remove(&p);
        }
    }

    /// Reserve the kubernetes Service address.
    pub fn reserve_kubernetes_ip(&self) {
        self.state.lock().expect("allocator lock").ips.insert(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ty: &str) -> Value {
        json!({"metadata": {"name": "s"}, "spec": {"type": ty, "ports": [{"port": 80}]}})
    }

    #[test]
    fn allocates_unique_ips_until_full() {
        let a = ServiceAllocator::new("10.0.0.0/29", "30000-30002").unwrap();
        a.reserve_kubernetes_ip();
        let mut seen = HashSet::new();
        // /29 = 8 addresses, minus network, broadcast and the kubernetes IP = 5.
        for _ in 0..5 {
            let mut s = svc("ClusterIP");
            a.allocate_for(&mut s, None, false).unwrap();
            assert!(seen.insert(s["spec"]["clusterIP"].as_str().unwrap().to_string()));
        }
        assert!(!seen.contains("10.0.0.1"));
        let mut s = svc("ClusterIP");
        assert_eq!(a.allocate_for(&mut s, None, false).unwrap_err().code(), 500);
    }

    #[test]
    fn requested_ip_conflicts() {
        let a = ServiceAllocator::new("10.0.0.0/24", "30000-32767").unwrap();
        let mut s = svc("ClusterIP");
        s["spec"]["clusterIP"] = json!("10.0.0.10");
        a.allocate_for(&mut s, None, false).unwrap();
        let mut t = svc("ClusterIP");
        t["spec"]["clusterIP"] = json!("10.0.0.10");
        let e = a.allocate_for(&mut t, None, false).unwrap_err();
        assert_eq!(e.code(), 422);
        assert!(e.to_string().contains("provided IP is already allocated"));
        a.release_for(&s);
        a.allocate_for(&mut t, None, false).unwrap();
        let mut u = svc("ClusterIP");
        u["spec"]["clusterIP"] = json!("10.9.0.1");
        assert_eq!(a.allocate_for(&mut u, None, false).unwrap_err().code(), 422);
    }

    #[test]
    fn node_ports_and_restart_state() {
        let a = ServiceAllocator::new("10.0.0.0/24", "30000-30001").unwrap();
        let mut s1 = svc("NodePort");
        a.allocate_for(&mut s1, None, false).unwrap();
        let mut s2 = svc("NodePort");
        a.allocate_for(&mut s2, None, false).unwrap();
        assert_ne!(s1["spec"]["ports"][0]["nodePort"], s2["spec"]["ports"][0]["nodePort"]);
        let mut s3 = svc("NodePort");
        assert!(a.allocate_for(&mut s3, None, false).is_err());
        // A fresh allocator loaded from stored services sees the same state.
        let b = ServiceAllocator::new("10.0.0.0/24", "30000-30001").unwrap();
        b.load([&s1, &s2]);
        let mut s4 = svc("NodePort");
        assert!(b.allocate_for(&mut s4, None, false).is_err());
        let mut s5 = svc("ClusterIP");
        s5["spec"]["clusterIP"] = s1["spec"]["clusterIP"].clone();
        assert!(b.allocate_for(&mut s5, None, false).is_err());
    }

    #[test]
    fn update_keeps_ip_and_rejects_change() {
        let a = ServiceAllocator::new("10.0.0.0/24", "30000-32767").unwrap();
        let mut s = svc("ClusterIP");
        a.allocate_for(&mut s, None, false).unwrap();
        let mut n = svc("ClusterIP");
        a.allocate_for(&mut n, Some(&s), false).unwrap();
        assert_eq!(n["spec"]["clusterIP"], s["spec"]["clusterIP"]);
        let mut c = svc("ClusterIP");
        c["spec"]["clusterIP"] = json!("10.0.0.200");
        assert_eq!(a.allocate_for(&mut c, Some(&s), false).unwrap_err().code(), 422);
    }
}
