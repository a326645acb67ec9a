//! The namespace controller: when a namespace is deleted (phase Terminating, `kubernetes`
//! spec finalizer), delete every namespaced resource the server discovers in it, report
//! progress in the namespace conditions as upstream, and once it is empty remove the
//! `kubernetes` finalizer through `namespaces/{name}/finalize`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{debug, info};

use crate::discovery::Resources;
use crate::informer::Informer;
use crate::queue::{WorkQueue, run_reconciler};
use crate::util;
use crate::{ControllerContext, Error};

const FINALIZER: &str = "kubernetes";
/// How soon to look again while content remains.
const RECHECK: Duration = Duration::from_secs(2);

/// What one deletion pass found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub discovery_error: Option<String>,
    pub delete_errors: Vec<String>,
    /// plural (group-qualified) -> remaining count
    pub remaining: BTreeMap<String, usize>,
    /// finalizer -> number of objects carrying it
    pub finalizers: BTreeMap<String, usize>,
}

fn cond(type_: &str, on: bool, reason_on: &str, reason_off: &str, msg_on: String, msg_off: &str) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: Some(if on { reason_on } else { reason_off }.into()),
        message: Some(if on { msg_on } else { msg_off.to_string() }),
        last_transition_time: Some(util::now_time()),
    }
}

/// The five deletion conditions upstream maintains, from one pass's findings.
pub fn conditions(p: &Progress) -> Vec<NamespaceCondition> {
    let remaining = p.remaining.iter().map(|(r, n)| format!("{r} has {n} resource instances")).collect::<Vec<_>>().join(", ");
    let fins = p.finalizers.iter().map(|(f, n)| format!("{f} in {n} resource instances")).collect::<Vec<_>>().join(", ");
    vec![
        cond(
            "NamespaceDeletionDiscoveryFailure",
            p.discovery_error.is_some(),
            "DiscoveryFailed",
            "ResourcesDiscovered",
            format!("Discovery failed for some groups: {}", p.discovery_error.clone().unwrap_or_default()),
            "All resources successfully discovered",
        ),
        cond("NamespaceDeletionGroupVersionParsingFailure", false, "GroupVersionParsingFailed", "ParsedGroupVersions", String::new(), "All legacy kube types successfully parsed"),
        cond(
            "NamespaceDeletionContentFailure",
            !p.delete_errors.is_empty(),
            "ContentDeletionFailed",
            "ContentDeleted",
            format!("Failed to delete all resource types, {} remaining: {}", p.delete_errors.len(), p.delete_errors.join(", ")),
            "All content successfully deleted, may be waiting on finalization",
        ),
        cond(
            "NamespaceContentRemaining",
            !p.remaining.is_empty(),
            "SomeResourcesRemain",
            "ContentRemoved",
            format!("Some resources are remaining: {remaining}"),
            "All content successfully removed",
        ),
        cond(
            "NamespaceFinalizersRemaining",
            !p.finalizers.is_empty(),
            "SomeFinalizersRemain",
            "ContentHasNoFinalizers",
            format!("Some content in the namespace has finalizers remaining: {fins}"),
            "All content-preserving finalizers finished",
        ),
    ]
}

pub struct NamespaceController {
    client: Client,
    namespaces: Arc<Informer<Namespace>>,
    queue: Arc<WorkQueue>,
}

impl NamespaceController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(NamespaceController {
            client: ctx.client.clone(),
            namespaces: ctx.informers.get::<Namespace>(),
            queue: WorkQueue::new("namespace"),
        });
        let q = c.queue.clone();
        c.namespaces.add_handler(move |ch| {
            if ch.object().metadata.deletion_timestamp.is_some() {
                q.add(ch.object().name_any());
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.namespaces.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function.
    pub async fn reconcile(&self, name: &str) -> Result<Option<Duration>, Error> {
        let Some(ns) = self.namespaces.get("", name) else { return Ok(None) };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let has_finalizer = ns.spec.as_ref().and_then(|s| s.finalizers.as_ref()).is_some_and(|f| f.iter().any(|x| x == FINALIZER));
        if !has_finalizer {
            return Ok(None);
        }
        let progress = self.delete_all_content(name).await;
        self.update_conditions(&ns, &progress).await?;
        if progress.discovery_error.is_some() || !progress.delete_errors.is_empty() {
            return Err(Error::Invalid(format!("namespace {name}: content deletion incomplete: {:?} {:?}", progress.discovery_error, progress.delete_errors)));
        }
        if !progress.remaining.is_empty() {
            debug!(namespace = name, remaining = ?progress.remaining, "namespace content remains");
            return Ok(Some(RECHECK));
        }
        self.finalize(name).await?;
        info!(namespace = name, "namespace emptied and finalized");
        Ok(None)
    }

    async fn delete_all_content(&self, ns: &str) -> Progress {
        let mut p = Progress::default();
        let resources = match Resources::discover(&self.client).await {
            Ok(r) => r,
            Err(e) => {
                p.discovery_error = Some(e.to_string());
                return p;
            }
        };
        for (ar, caps) in resources.preferred_with(&["list", "delete"]) {
            if !Resources::is_namespaced(&caps) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
            let label = if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) };
            let deleted = if caps.supports_operation("deletecollection") {
                api.delete_collection(&DeleteParams::background(), &ListParams::default()).await.map(|_| ())
            } else {
                match api.list(&ListParams::default()).await {
                    Ok(list) => {
                        let mut r = Ok(());
                        for o in list.items {
                            if o.metadata.deletion_timestamp.is_some() {
                                continue;
                            }
                            if let Err(e) = api.delete(&o.name_any(), &DeleteParams::background()).await
                                && !util::is_status(&e, 404)
                            {
                                r = Err(e);
                            }
                        }
                        r
                    }
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = deleted {
                // Not found / method not allowed: nothing of this kind to delete here.
                if !(util::is_status(&e, 404) || util::is_status(&e, 405)) {
                    p.delete_errors.push(format!("{label}: {e}"));
                }
                continue;
            }
            match api.list(&ListParams::default()).await {
                Ok(list) if !list.items.is_empty() => {
                    p.remaining.insert(label, list.items.len());
                    for o in &list.items {
                        for f in o.finalizers() {
                            *p.finalizers.entry(f.clone()).or_default() += 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) if util::is_status(&e, 404) => {}
                Err(e) => p.delete_errors.push(format!("{label}: {e}")),
            }
        }
        p
    }

    async fn update_conditions(&self, ns: &Namespace, p: &Progress) -> Result<(), Error> {
        let mut new = conditions(p);
        // Keep the transition time of conditions whose status did not change.
        let old = ns.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        for c in new.iter_mut() {
            if let Some(o) = old.iter().find(|o| o.type_ == c.type_ && o.status == c.status) {
                c.last_transition_time = o.last_transition_time.clone();
            }
        }
        let same = new.len() == old.len()
            && new.iter().all(|c| old.iter().any(|o| o.type_ == c.type_ && o.status == c.status && o.reason == c.reason && o.message == c.message));
        if same {
            return Ok(());
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let patch = json!({"status": {"conditions": new}});
        match api.patch_status(&ns.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(e) if util::is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn finalize(&self, name: &str) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(mut ns) = api.get_opt(name).await? else { return Ok(()) };
        if let Some(spec) = ns.spec.as_mut() {
            spec.finalizers = Some(spec.finalizers.take().unwrap_or_default().into_iter().filter(|f| f != FINALIZER).collect());
        }
        match api.replace_subresource("finalize", name, &PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(e) if util::is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_report_remaining_content_as_upstream() {
        let done = conditions(&Progress::default());
        assert_eq!(done.len(), 5);
        assert!(done.iter().all(|c| c.status == "False"));
        assert_eq!(done[3].reason.as_deref(), Some("ContentRemoved"));
        let p = Progress {
            remaining: BTreeMap::from([("pods".to_string(), 2)]),
            finalizers: BTreeMap::from([("example.com/keep".to_string(), 1)]),
            ..Default::default()
        };
        let c = conditions(&p);
        assert_eq!(c[3].status, "True");
        assert_eq!(c[3].message.as_deref(), Some("Some resources are remaining: pods has 2 resource instances"));
        assert_eq!(c[4].reason.as_deref(), Some("SomeFinalizersRemain"));
    }
}
