//! The EndpointSlice controller (and the shared pod-to-endpoint logic the Endpoints controller
//! uses): for every Service with a selector, slices of at most `--max-endpoints-per-slice`
//! endpoints, grouped by resolved port set, with ready/serving/terminating conditions from pod
//! readiness, owned by the Service and labelled `endpointslice.kubernetes.io/managed-by`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};

use crate::informer::{Change, Informer, enqueue_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, key, owner_ref, split_key};
use crate::{ControllerContext, Error};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// One pod as an endpoint of a service.
#[derive(Clone, Debug, PartialEq)]
pub struct PodEndpoint {
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    pub target: ObjectReference,
    /// The service's ports resolved against this pod (ports that do not resolve are left out).
    pub ports: Vec<EndpointPort>,
}

pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec.as_ref()?.selector.as_ref().filter(|s| !s.is_empty())
}

/// The service port's target on `pod`: a number, or a named container port.
pub fn resolve_port(target: Option<&IntOrString>, port: i32, pod: &Pod, protocol: &str) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(0)) => Some(port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod.spec.as_ref()?.containers.iter().flat_map(|c| c.ports.iter().flatten()).find_map(|cp| {
            (cp.name.as_deref() == Some(name.as_str()) && cp.protocol.as_deref().unwrap_or("TCP") == protocol).then_some(cp.container_port)
        }),
    }
}

/// The pod as an endpoint of `svc`, if it has an IPv4 address and is not terminal.
/// `include_terminating` is true for slices, false for the legacy Endpoints.
pub fn pod_endpoint(svc: &Service, pod: &Pod, include_terminating: bool) -> Option<PodEndpoint> {
    let spec = svc.spec.as_ref()?;
    let publish = spec.publish_not_ready_addresses == Some(true);
    if util::is_pod_terminal(pod) {
        return None;
    }
    let terminating = pod.metadata.deletion_timestamp.is_some();
    if terminating && !include_terminating && !publish {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ip = status
        .pod_ips
        .as_ref()
        .and_then(|ips| ips.iter().map(|i| i.ip.clone()).find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()))
        .or_else(|| status.pod_ip.clone().filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()))?;
    let ready = util::is_pod_ready(pod);
    let mut ports: Vec<EndpointPort> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            let proto = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
            let port = resolve_port(sp.target_port.as_ref(), sp.port, pod, &proto)?;
            Some(EndpointPort { name: Some(sp.name.clone().unwrap_or_default()), port: Some(port), protocol: Some(proto), app_protocol: sp.app_protocol.clone() })
        })
        .collect();
    ports.sort_by(|a, b| a.name.cmp(&b.name));
    let pspec = pod.spec.as_ref();
    let svc_name = svc.name_any();
    let hostname = pspec
        .and_then(|s| s.hostname.clone().filter(|_| s.subdomain.as_deref() == Some(svc_name.as_str())))
        .filter(|h| !h.is_empty());
    Some(PodEndpoint {
        ip,
        ready: (ready && !terminating) || publish,
        serving: ready || publish,
        terminating,
        node_name: pspec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        hostname,
        target: ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        ports,
    })
}

/// Endpoints of the selected pods grouped by port set (sorted, deterministic).
pub fn group_by_ports(eps: Vec<PodEndpoint>) -> Vec<(Vec<EndpointPort>, Vec<PodEndpoint>)> {
    let mut groups: BTreeMap<String, (Vec<EndpointPort>, Vec<PodEndpoint>)> = BTreeMap::new();
    for ep in eps {
        let k = serde_json::to_string(&ep.ports).unwrap_or_default();
        groups.entry(k).or_insert_with(|| (ep.ports.clone(), Vec::new())).1.push(ep);
    }
    groups
        .into_values()
        .map(|(p, mut e)| {
            e.sort_by(|a, b| a.ip.cmp(&b.ip).then_with(|| a.target.name.cmp(&b.target.name)));
            (p, e)
        })
        .collect()
}

fn to_slice_endpoint(e: &PodEndpoint) -> Endpoint {
    Endpoint {
        addresses: vec![e.ip.clone()],
        conditions: Some(EndpointConditions { ready: Some(e.ready), serving: Some(e.serving), terminating: Some(e.terminating) }),
        hostname: e.hostname.clone(),
        node_name: e.node_name.clone(),
        target_ref: Some(e.target.clone()),
        ..Default::default()
    }
}

/// The slices a service should have: (ports, endpoints) per slice.
pub fn desired_slices(eps: Vec<PodEndpoint>, max_per_slice: usize) -> Vec<(Vec<EndpointPort>, Vec<Endpoint>)> {
    let mut out = Vec::new();
    for (ports, group) in group_by_ports(eps) {
        for chunk in group.chunks(max_per_slice.max(1)) {
            out.push((ports.clone(), chunk.iter().map(to_slice_endpoint).collect()));
        }
    }
    out
}

/// Labels of a managed slice: the service's own plus the controller's.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = svc.labels().iter().filter(|(k, _)| k.as_str() != MANAGED_BY_LABEL).map(|(k, v)| (k.clone(), v.clone())).collect();
    l.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
    l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l
}

/// The endpoints of the cached pods of `ns` that `svc` selects ([`pod_endpoint`]), or `None` when
/// the service has no selector (its endpoints are not managed by the controllers) or is being
/// deleted: the start of both the endpoints and the endpointslice controllers' sync.
pub fn selected_endpoints(pods: &Informer<Pod>, ns: &str, svc: &Service, include_terminating: bool) -> Option<Vec<PodEndpoint>> {
    let selector = service_selector(svc)?;
    if svc.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let eps = pods
        .list_namespace(ns)
        .iter()
        .filter(|p| util::map_selector_matches(selector, p.labels()))
        .filter_map(|p| pod_endpoint(svc, p, include_terminating))
        .collect();
    Some(eps)
}

/// The keys of every service in the pod's namespace whose selector matches the pod.
fn services_for_pod(services: &Informer<Service>, pod: &Pod, out: &mut Vec<String>) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    for svc in services.list_namespace(ns) {
        if service_selector(&svc).is_some_and(|sel| util::map_selector_matches(sel, pod.labels())) {
            out.push(key(ns, &svc.name_any()));
        }
    }
}

/// Queue the services whose selector matches a changed pod, before and after an update (a pod
/// that stops matching must leave the old service's endpoints): the pod handler shared by the
/// endpoints and endpointslice controllers.
pub fn enqueue_services_for_pod(services: &Informer<Service>, queue: &WorkQueue, ch: &Change<Pod>) {
    let mut keys = Vec::new();
    if let Change::Updated { old, .. } = ch {
        services_for_pod(services, old, &mut keys);
    }
    services_for_pod(services, ch.object(), &mut keys);
    for k in keys {
        queue.add(k);
    }
}

pub struct EndpointSliceController {
    client: Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    slices: Arc<Informer<EndpointSlice>>,
    queue: Arc<WorkQueue>,
    max_per_slice: usize,
}

impl EndpointSliceController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(EndpointSliceController {
            client: ctx.client.clone(),
            services: ctx.informers.get::<Service>(),
            pods: ctx.informers.get::<Pod>(),
            slices: ctx.informers.get::<EndpointSlice>(),
            queue: WorkQueue::new("endpoint_slice"),
            max_per_slice: ctx.options.max_endpoints_per_slice,
        });
        enqueue_on_change(&c.services, &c.queue);
        let weak = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            if let Some(c) = weak.upgrade() {
                enqueue_services_for_pod(&c.services, &c.queue, ch);
            }
        });
        let q = c.queue.clone();
        c.slices.add_handler(move |ch| {
            let s = ch.object();
            if s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
                && let Some(svc) = s.labels().get(SERVICE_NAME_LABEL)
            {
                q.add(key(s.metadata.namespace.as_deref().unwrap_or(""), svc));
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        self.slices.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function: make the service's managed slices match its pods.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        // A deleted service's slices go with it (owner reference).
        let Some(svc) = self.services.get(ns, name) else { return Ok(None) };
        let Some(eps) = selected_endpoints(&self.pods, ns, &svc, true) else { return Ok(None) };
        let mut desired = desired_slices(eps, self.max_per_slice);
        if desired.is_empty() {
            // Upstream keeps one empty placeholder slice.
            desired.push((Vec::new(), Vec::new()));
        }
        let mut existing: Vec<EndpointSlice> = self
            .slices
            .list_namespace(ns)
            .iter()
            .filter(|s| s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY))
            .filter(|s| s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name))
            .map(|s| (**s).clone())
            .collect();
        existing.sort_by_key(|s| s.name_any());
        let labels = slice_labels(&svc);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        for (ports, endpoints) in desired {
            let ports_opt = (!ports.is_empty()).then_some(ports.clone());
            // Reuse a slice with the same ports if there is one.
            let pos = existing.iter().position(|s| s.ports.clone().unwrap_or_default() == ports);
            match pos {
                Some(i) => {
                    let cur = existing.remove(i);
                    let owned = cur.owner_references().iter().any(|r| Some(&r.uid) == svc.metadata.uid.as_ref());
                    if cur.endpoints == endpoints && cur.labels() == &labels && owned && cur.address_type == "IPv4" {
                        continue;
                    }
                    let mut next = cur.clone();
                    next.endpoints = endpoints;
                    next.metadata.labels = Some(labels.clone());
                    next.metadata.owner_references = Some(vec![owner_ref(svc.as_ref())]);
                    match api.replace(&cur.name_any(), &PostParams::default(), &next).await {
                        Ok(_) => {}
                        Err(e) if util::is_status(&e, 404) => return Err(Error::Invalid("slice vanished; retrying".into())),
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    let slice = EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{name}-")),
                            namespace: Some(ns.to_string()),
                            labels: Some(labels.clone()),
                            owner_references: Some(vec![owner_ref(svc.as_ref())]),
                            ..Default::default()
                        },
                        address_type: "IPv4".into(),
                        endpoints,
                        ports: ports_opt,
                    };
                    match api.create(&PostParams::default(), &slice).await {
                        Ok(_) => {}
                        Err(e) if util::is_status(&e, 403) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        for stale in existing {
            match api.delete(&stale.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "metrics", "port": 9090}
            ]}
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    #[test]
    fn endpoints_from_pods() {
        let s = svc();
        let e = pod_endpoint(&s, &pod("a", "10.0.0.1", true, "http"), true).unwrap();
        assert!(e.ready && e.serving && !e.terminating);
        assert_eq!(e.ports.iter().map(|p| (p.name.clone().unwrap(), p.port.unwrap())).collect::<Vec<_>>(), vec![("http".into(), 8080), ("metrics".into(), 9090)]);
        let nr = pod_endpoint(&s, &pod("b", "10.0.0.2", false, "http"), true).unwrap();
        assert!(!nr.ready && !nr.serving);
        // A named port the pod lacks is left out for that pod.
        let other = pod_endpoint(&s, &pod("c", "10.0.0.3", true, "web"), true).unwrap();
        assert_eq!(other.ports.len(), 1);
        let mut term = pod("d", "10.0.0.4", true, "http");
        term.metadata.deletion_timestamp = Some(util::now_time());
        let t = pod_endpoint(&s, &term, true).unwrap();
        assert!(t.terminating && !t.ready && t.serving);
        assert!(pod_endpoint(&s, &term, false).is_none(), "legacy Endpoints skip terminating pods");
        let mut no_ip = pod("e", "", true, "http");
        no_ip.status.as_mut().unwrap().pod_ip = None;
        assert!(pod_endpoint(&s, &no_ip, true).is_none());
    }

    #[test]
    fn slices_group_by_ports_and_respect_the_maximum() {
        let s = svc();
        let mut eps: Vec<PodEndpoint> = (0..5).map(|i| pod_endpoint(&s, &pod(&format!("p{i}"), &format!("10.0.0.{i}"), true, "http"), true).unwrap()).collect();
        eps.push(pod_endpoint(&s, &pod("odd", "10.0.1.1", true, "web"), true).unwrap());
        let slices = desired_slices(eps, 2);
        // 5 pods with both ports in slices of 2 (3 slices), 1 pod with one port (1 slice).
        assert_eq!(slices.len(), 4);
        assert_eq!(slices.iter().map(|(_, e)| e.len()).sum::<usize>(), 6);
        assert!(slices.iter().all(|(_, e)| e.len() <= 2));
        let l = slice_labels(&s);
        assert_eq!(l[SERVICE_NAME_LABEL], "web");
        assert_eq!(l[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(l["team"], "a");
    }
}
