//! The root-ca-cert-publisher: a `kube-root-ca.crt` ConfigMap with the cluster's CA bundle
//! in every namespace, so pods can verify the apiserver.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::controllers::serviceaccount::namespace_active;
use crate::informer::{Change, Informer};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util;
use crate::{ControllerContext, Error};

pub const CONFIGMAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The CA bundle: `--root-ca-file`, else the CA of the kubeconfig's current cluster.
pub fn root_ca(root_ca_file: Option<&Path>, kubeconfig: Option<&Path>) -> Option<String> {
    if let Some(p) = root_ca_file {
        return std::fs::read_to_string(p).ok();
    }
    let kc = kube::config::Kubeconfig::read_from(kubeconfig?).ok()?;
    let ctx_name = kc.current_context.clone()?;
    let ctx = kc.contexts.iter().find(|c| c.name == ctx_name)?.context.clone()?;
    let cluster = kc.clusters.iter().find(|c| c.name == ctx.cluster)?.cluster.clone()?;
    if let Some(data) = cluster.certificate_authority_data {
        return base64::engine::general_purpose::STANDARD.decode(data.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    }
    std::fs::read_to_string(cluster.certificate_authority?).ok()
}

pub fn desired(ca: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    (
        BTreeMap::from([("ca.crt".to_string(), ca.to_string())]),
        BTreeMap::from([("kubernetes.io/description".to_string(), DESCRIPTION.to_string())]),
    )
}

pub struct RootCaPublisher {
    client: Client,
    ca: String,
    namespaces: Arc<Informer<Namespace>>,
    configmaps: Arc<Informer<ConfigMap>>,
    queue: Arc<WorkQueue>,
}

impl RootCaPublisher {
    pub fn new(ctx: &ControllerContext, ca: String) -> Arc<Self> {
        let c = Arc::new(RootCaPublisher {
            client: ctx.client.clone(),
            ca,
            namespaces: ctx.informers.get::<Namespace>(),
            configmaps: ctx.informers.get::<ConfigMap>(),
            queue: WorkQueue::new("root_ca_cert_publisher"),
        });
        let q = c.queue.clone();
        c.namespaces.add_handler(move |ch| {
            if !matches!(ch, Change::Deleted(_)) {
                q.add(ch.object().name_any());
            }
        });
        let q = c.queue.clone();
        c.configmaps.add_handler(move |ch| {
            if ch.object().name_any() == CONFIGMAP && !matches!(ch, Change::Added(_)) {
                q.add(ch.object().namespace().unwrap_or_default());
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.namespaces.wait_synced().await;
        self.configmaps.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function: create or correct the ConfigMap.
    pub async fn reconcile(&self, ns: &str) -> Result<Option<Duration>, Error> {
        let Some(n) = self.namespaces.get("", ns) else { return Ok(None) };
        if !namespace_active(&n) {
            return Ok(None);
        }
        let (data, anns) = desired(&self.ca);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let r = match self.configmaps.get(ns, CONFIGMAP) {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta { name: Some(CONFIGMAP.into()), annotations: Some(anns), ..Default::default() },
                    data: Some(data),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            }
            Some(cm) => {
                let has_anns = anns.iter().all(|(k, v)| cm.annotations().get(k) == Some(v));
                if cm.data.as_ref() == Some(&data) && has_anns {
                    return Ok(None);
                }
                let mut cm = (*cm).clone();
                cm.data = Some(data);
                cm.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(anns);
                api.replace(CONFIGMAP, &PostParams::default(), &cm).await.map(|_| ())
            }
        };
        match r {
            Ok(()) => Ok(None),
            Err(e) if util::is_status(&e, 409) || util::is_status(&e, 403) || util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_from_kubeconfig_data_or_file() {
        let dir = std::env::temp_dir().join(format!("kcm-rootca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, "PEM").unwrap();
        assert_eq!(root_ca(Some(&ca), None).as_deref(), Some("PEM"));
        let kc = dir.join("kc");
        let data = base64::engine::general_purpose::STANDARD.encode("DATA");
        std::fs::write(&kc, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: {data}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user: {{}}\n")).unwrap();
        assert_eq!(root_ca(None, Some(&kc)).as_deref(), Some("DATA"));
        let (d, a) = desired("PEM");
        assert_eq!(d["ca.crt"], "PEM");
        assert!(a["kubernetes.io/description"].starts_with("Contains a CA bundle"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
