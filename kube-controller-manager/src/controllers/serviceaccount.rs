//! The serviceaccount controller: every active namespace has a `default` ServiceAccount.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::informer::{Change, Informer};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util;
use crate::{ControllerContext, Error};

pub const DEFAULT_SA: &str = "default";

/// Whether a namespace accepts new content (not deleted, not Terminating).
pub fn namespace_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none() && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

pub struct ServiceAccountController {
    client: Client,
    namespaces: Arc<Informer<Namespace>>,
    accounts: Arc<Informer<ServiceAccount>>,
    queue: Arc<WorkQueue>,
}

impl ServiceAccountController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(ServiceAccountController {
            client: ctx.client.clone(),
            namespaces: ctx.informers.get::<Namespace>(),
            accounts: ctx.informers.get::<ServiceAccount>(),
            queue: WorkQueue::new("serviceaccount"),
        });
        let q = c.queue.clone();
        c.namespaces.add_handler(move |ch| {
            if !matches!(ch, Change::Deleted(_)) {
                q.add(ch.object().name_any());
            }
        });
        let q = c.queue.clone();
        c.accounts.add_handler(move |ch| {
            if let Change::Deleted(sa) = ch
                && sa.name_any() == DEFAULT_SA
            {
                q.add(sa.namespace().unwrap_or_default());
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.namespaces.wait_synced().await;
        self.accounts.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function: create `default` in the namespace if it is missing.
    pub async fn reconcile(&self, ns: &str) -> Result<Option<Duration>, Error> {
        let Some(n) = self.namespaces.get("", ns) else { return Ok(None) };
        if !namespace_active(&n) || self.accounts.get(ns, DEFAULT_SA).is_some() {
            return Ok(None);
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": DEFAULT_SA}})).map_err(|e| Error::Invalid(e.to_string()))?;
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => Ok(None),
            // Exists already, or the namespace started terminating meanwhile.
            Err(e) if util::is_status(&e, 409) || util::is_status(&e, 403) || util::is_status(&e, 404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminating_namespaces_get_nothing() {
        let active: Namespace = serde_json::from_value(json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}})).unwrap();
        assert!(namespace_active(&active));
        let term: Namespace = serde_json::from_value(json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})).unwrap();
        assert!(!namespace_active(&term));
    }
}
