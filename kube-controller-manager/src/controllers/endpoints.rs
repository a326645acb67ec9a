//! The Endpoints controller: the legacy `Endpoints` object of every Service with a selector,
//! mirroring the selected pods (ready ones in `addresses`, the rest in `notReadyAddresses`),
//! one subset per resolved port set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};

use crate::controllers::endpointslice::{HEADLESS_LABEL, PodEndpoint, enqueue_services_for_pod, group_by_ports, selected_endpoints};
use crate::informer::{Change, Informer, enqueue_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, split_key};
use crate::{ControllerContext, Error};

fn address(e: &PodEndpoint) -> EndpointAddress {
    EndpointAddress { ip: e.ip.clone(), hostname: e.hostname.clone(), node_name: e.node_name.clone(), target_ref: Some(e.target.clone()) }
}

/// Subsets for the selected pods (pure; unit-tested).
pub fn subsets(eps: Vec<PodEndpoint>) -> Vec<EndpointSubset> {
    group_by_ports(eps)
        .into_iter()
        .filter(|(ports, _)| !ports.is_empty())
        .map(|(ports, eps)| {
            let ready: Vec<EndpointAddress> = eps.iter().filter(|e| e.ready).map(address).collect();
            let not_ready: Vec<EndpointAddress> = eps.iter().filter(|e| !e.ready).map(address).collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|p| EndpointPort {
                            name: p.name.filter(|n| !n.is_empty()),
                            port: p.port.unwrap_or(0),
                            protocol: p.protocol,
                            app_protocol: p.app_protocol,
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

pub struct EndpointsController {
    client: Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
    queue: Arc<WorkQueue>,
}

impl EndpointsController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(EndpointsController {
            client: ctx.client.clone(),
            services: ctx.informers.get::<Service>(),
            pods: ctx.informers.get::<Pod>(),
            endpoints: ctx.informers.get::<Endpoints>(),
            queue: WorkQueue::new("endpoint"),
        });
        enqueue_on_change(&c.services, &c.queue);
        let weak = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            if let Some(c) = weak.upgrade() {
                enqueue_services_for_pod(&c.services, &c.queue, ch);
            }
        });
        let q = c.queue.clone();
        c.endpoints.add_handler(move |ch| {
            if !matches!(ch, Change::Added(_)) {
                q.add(util::key_of(ch.object().as_ref()));
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        self.endpoints.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(ns, name) else {
            // The service is gone: so is its Endpoints object (if we had made one).
            if self.endpoints.get(ns, name).is_some() {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if util::is_status(&e, 404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(None);
        };
        let Some(eps) = selected_endpoints(&self.pods, ns, &svc, false) else { return Ok(None) };
        let subsets = subsets(eps);
        let mut labels: BTreeMap<String, String> = svc.labels().clone();
        if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        let want_subsets = (!subsets.is_empty()).then_some(subsets);
        let r = match self.endpoints.get(ns, name) {
            Some(cur) => {
                if cur.subsets == want_subsets && cur.labels() == &labels {
                    return Ok(None);
                }
                let mut next = (*cur).clone();
                next.subsets = want_subsets;
                next.metadata.labels = Some(labels);
                api.replace(name, &PostParams::default(), &next).await.map(|_| ())
            }
            None => {
                let ep = Endpoints {
                    metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), labels: Some(labels), ..Default::default() },
                    subsets: want_subsets,
                };
                api.create(&PostParams::default(), &ep).await.map(|_| ())
            }
        };
        match r {
            Ok(()) => Ok(None),
            Err(e) if util::is_status(&e, 403) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::endpointslice::pod_endpoint;
    use serde_json::json;

    #[test]
    fn ready_and_not_ready_addresses() {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": 8080}]}})).unwrap();
        let mk = |name: &str, ip: &str, ready: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .unwrap()
        };
        let eps = vec![mk("x", "10.0.0.2", true), mk("y", "10.0.0.1", false)].iter().filter_map(|p| pod_endpoint(&svc, p, false)).collect();
        let s = subsets(eps);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
        assert_eq!(s[0].not_ready_addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
        assert_eq!(s[0].ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(s[0].ports.as_ref().unwrap()[0].name, None);
    }
}
