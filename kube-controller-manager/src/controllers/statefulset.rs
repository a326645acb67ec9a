//! The StatefulSet controller: pods with stable names `<set>-<ordinal>`, started in order
//! (OrderedReady: each waits for its predecessors to be Running and Ready) or all at once
//! (Parallel), removed from the highest ordinal down; PersistentVolumeClaims from
//! volumeClaimTemplates; template revisions as ControllerRevisions; RollingUpdate (with
//! partition, highest ordinal first, one pod at a time) and OnDelete.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::controllers::deployment::compute_hash;
use crate::informer::{Change, Informer, enqueue_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, key, object_ref, owner_ref, split_key};
use crate::{ControllerContext, Error};

pub const REVISION_HASH: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of a pod of `set`, from its name.
pub fn ordinal(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn healthy(p: &Pod) -> bool {
    util::pod_phase(p) == "Running" && util::is_pod_ready(p) && p.metadata.deletion_timestamp.is_none()
}

/// What to do next for ordered/parallel management (pure; unit-tested).
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Create(Vec<i32>),
    Delete(Vec<i32>),
    Wait,
    Done,
}

/// `pods`: ordinal -> (exists-and-not-terminating, healthy, terminal).
pub fn next_step(replicas: i32, parallel: bool, pods: &BTreeMap<i32, (bool, bool, bool)>) -> Step {
    let terminal: Vec<i32> = pods.iter().filter(|(o, s)| **o < replicas && s.2).map(|(o, _)| *o).collect();
    if !terminal.is_empty() {
        return Step::Delete(if parallel { terminal } else { vec![terminal[0]] });
    }
    let missing: Vec<i32> = (0..replicas).filter(|o| !pods.get(o).is_some_and(|s| s.0)).collect();
    if parallel {
        if !missing.is_empty() {
            return Step::Create(missing);
        }
    } else {
        for o in 0..replicas {
            match pods.get(&o) {
                Some((true, true, _)) => continue,
                Some((true, false, _)) => return Step::Wait,
                _ => return Step::Create(vec![o]),
            }
        }
    }
    let condemned: Vec<i32> = pods.iter().filter(|(o, s)| **o >= replicas && s.0).map(|(o, _)| *o).rev().collect();
    if condemned.is_empty() {
        return if parallel && pods.iter().any(|(o, s)| *o < replicas && !s.1) { Step::Wait } else { Step::Done };
    }
    if parallel {
        return Step::Delete(condemned);
    }
    // Ordered: one at a time, highest first, only while every other pod is healthy.
    if pods.iter().filter(|(o, _)| **o < replicas).all(|(_, s)| s.1) { Step::Delete(vec![condemned[0]]) } else { Step::Wait }
}

pub struct StatefulSetController {
    client: Client,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    pvcs: Arc<Informer<PersistentVolumeClaim>>,
    queue: Arc<WorkQueue>,
    events: Events,
}

impl StatefulSetController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(StatefulSetController {
            client: ctx.client.clone(),
            sets: ctx.informers.get::<StatefulSet>(),
            pods: ctx.informers.get::<Pod>(),
            revisions: ctx.informers.get::<ControllerRevision>(),
            pvcs: ctx.informers.get::<PersistentVolumeClaim>(),
            queue: WorkQueue::new("statefulset"),
            events: Events::new(ctx.client.clone(), "statefulset-controller"),
        });
        enqueue_on_change(&c.sets, &c.queue);
        let weak = Arc::downgrade(&c);
        c.pods.add_handler(move |ch: &Change<Pod>| {
            let Some(c) = weak.upgrade() else { return };
            let p = ch.object();
            if let Some(r) = controller_ref(&p.metadata).filter(|r| r.kind == "StatefulSet") {
                c.queue.add(key(p.metadata.namespace.as_deref().unwrap_or(""), &r.name));
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.sets.wait_synced().await;
        self.pods.wait_synced().await;
        self.revisions.wait_synced().await;
        self.pvcs.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The ControllerRevision for the current template (created if missing).
    async fn update_revision(&self, set: &StatefulSet, hash: &str) -> Result<(String, i64), Error> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let name = format!("{}-{hash}", set.name_any());
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<ControllerRevision>> =
            self.revisions.list_namespace(&ns).into_iter().filter(|r| controller_ref(&r.metadata).is_some_and(|o| o.uid == uid)).collect();
        if let Some(r) = owned.iter().find(|r| r.name_any() == name) {
            return Ok((name, r.revision));
        }
        let revision = owned.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        let spec = set.spec.clone().unwrap_or_default();
        let mut labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        labels.insert(REVISION_HASH.into(), hash.to_string());
        let cr = ControllerRevision {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns.clone()), labels: Some(labels), owner_references: Some(vec![owner_ref(set)]), ..Default::default() },
            data: Some(RawExtension(json!({"spec": {"template": spec.template, "$patch": "replace"}}))),
            revision,
        };
        match Api::<ControllerRevision>::namespaced(self.client.clone(), &ns).create(&PostParams::default(), &cr).await {
            Ok(_) => Ok((name, revision)),
            Err(e) if util::is_status(&e, 409) => {
                let existing = Api::<ControllerRevision>::namespaced(self.client.clone(), &ns).get(&name).await?;
                Ok((name, existing.revision))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn pod_for(&self, set: &StatefulSet, ordinal: i32, hash: &str) -> Pod {
        let spec = set.spec.clone().unwrap_or_default();
        let tmeta = spec.template.metadata.clone().unwrap_or_default();
        let name = format!("{}-{ordinal}", set.name_any());
        let mut labels = tmeta.labels.clone().unwrap_or_default();
        labels.insert(REVISION_HASH.into(), hash.to_string());
        labels.insert(POD_NAME_LABEL.into(), name.clone());
        labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
        let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
        pod_spec.hostname = Some(name.clone());
        if !spec.service_name.clone().unwrap_or_default().is_empty() {
            pod_spec.subdomain = spec.service_name.clone();
        }
        for vct in spec.volume_claim_templates.iter().flatten() {
            let vname = vct.metadata.name.clone().unwrap_or_default();
            let vols = pod_spec.volumes.get_or_insert_with(Vec::new);
            vols.retain(|v| v.name != vname);
            vols.push(Volume {
                name: vname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: format!("{vname}-{name}"), read_only: None }),
                ..Default::default()
            });
        }
        Pod {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: set.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: tmeta.annotations.clone(),
                owner_references: Some(vec![owner_ref(set)]),
                ..Default::default()
            },
            spec: Some(pod_spec),
            status: None,
        }
    }

    async fn create_pod(&self, set: &StatefulSet, ordinal: i32, hash: &str) -> Result<(), Error> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let pod_name = format!("{}-{ordinal}", set.name_any());
        let spec = set.spec.clone().unwrap_or_default();
        let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for vct in spec.volume_claim_templates.iter().flatten() {
            let claim = format!("{}-{pod_name}", vct.metadata.name.clone().unwrap_or_default());
            if self.pvcs.get(&ns, &claim).is_some() {
                continue;
            }
            let mut pvc = vct.clone();
            pvc.metadata = ObjectMeta {
                name: Some(claim.clone()),
                namespace: Some(ns.clone()),
                labels: spec.selector.match_labels.clone(),
                annotations: vct.metadata.annotations.clone(),
                ..Default::default()
            };
            pvc.status = None;
            match pvc_api.create(&PostParams::default(), &pvc).await {
                Ok(_) => self.events.normal(object_ref(set), "SuccessfulCreate", format!("create Claim {claim} Pod {pod_name} in StatefulSet {} success", set.name_any())),
                Err(e) if util::is_status(&e, 409) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pod = self.pod_for(set, ordinal, hash);
        match Api::<Pod>::namespaced(self.client.clone(), &ns).create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.events.normal(object_ref(set), "SuccessfulCreate", format!("create Pod {pod_name} in StatefulSet {} successful", set.name_any()));
                Ok(())
            }
            Err(e) if util::is_status(&e, 409) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, name: &str) -> Result<(), Error> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        match Api::<Pod>::namespaced(self.client.clone(), &ns).delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.events.normal(object_ref(set), "SuccessfulDelete", format!("delete Pod {name} in StatefulSet {} successful", set.name_any()));
                Ok(())
            }
            Err(e) if util::is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.get(ns, name) else { return Ok(None) };
        let spec = set.spec.clone().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
        let hash = compute_hash(&spec.template, set.status.as_ref().and_then(|s| s.collision_count));
        let (update_rev, _) = self.update_revision(&set, &hash).await?;
        let pods: BTreeMap<i32, Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| controller_ref(&p.metadata).is_some_and(|r| r.uid == uid))
            .filter_map(|p| ordinal(name, &p.name_any()).map(|o| (o, p)))
            .collect();
        let view: BTreeMap<i32, (bool, bool, bool)> =
            pods.iter().map(|(o, p)| (*o, (p.metadata.deletion_timestamp.is_none(), healthy(p), util::is_pod_terminal(p)))).collect();
        let deleting = set.metadata.deletion_timestamp.is_some();
        let mut requeue = None;
        if !deleting {
            match next_step(replicas, parallel, &view) {
                Step::Create(os) => {
                    for o in os {
                        self.create_pod(&set, o, &hash).await?;
                    }
                }
                Step::Delete(os) => {
                    for o in os {
                        if let Some(p) = pods.get(&o) {
                            self.delete_pod(&set, &p.name_any()).await?;
                        }
                    }
                }
                Step::Wait => {}
                Step::Done => {
                    // Rolling update: highest ordinal first, down to the partition.
                    let strategy = spec.update_strategy.clone().unwrap_or_default();
                    if strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate" {
                        let partition = strategy.rolling_update.and_then(|r| r.partition).unwrap_or(0);
                        for o in (partition..replicas).rev() {
                            let Some(p) = pods.get(&o) else { break };
                            if p.labels().get(REVISION_HASH).map(String::as_str) != Some(hash.as_str()) {
                                self.delete_pod(&set, &p.name_any()).await?;
                                break;
                            }
                        }
                    }
                }
            }
        }
        // Status.
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = util::now();
        let active: Vec<&Arc<Pod>> = pods.values().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        let updated = active.iter().filter(|p| p.labels().get(REVISION_HASH) == Some(&hash)).count() as i32;
        let old = set.status.clone().unwrap_or_default();
        let current_rev = if updated == replicas && active.len() as i32 == replicas { update_rev.clone() } else { old.current_revision.clone().unwrap_or_else(|| update_rev.clone()) };
        let current_hash = current_rev.strip_prefix(&format!("{name}-")).unwrap_or("").to_string();
        let status = json!({
            "observedGeneration": set.metadata.generation,
            "replicas": active.len(),
            "readyReplicas": active.iter().filter(|p| util::is_pod_ready(p)).count(),
            "availableReplicas": active.iter().filter(|p| util::is_pod_available(p, min_ready, now)).count(),
            "currentReplicas": active.iter().filter(|p| p.labels().get(REVISION_HASH) == Some(&current_hash)).count(),
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": old.collision_count.unwrap_or(0),
        });
        let cur = serde_json::to_value(&old).unwrap_or_default();
        let changed = status.as_object().is_some_and(|m| m.iter().any(|(k, v)| cur.get(k).unwrap_or(&json!(0)) != v));
        if changed {
            Api::<StatefulSet>::namespaced(self.client.clone(), ns).patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await?;
        }
        if min_ready > 0 {
            requeue = Some(Duration::from_secs(min_ready as u64));
        }
        Ok(requeue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(v: &[(i32, bool, bool)]) -> BTreeMap<i32, (bool, bool, bool)> {
        v.iter().map(|(o, exists, healthy)| (*o, (*exists, *healthy, false))).collect()
    }

    #[test]
    fn ordered_start_and_reverse_scale_down() {
        assert_eq!(next_step(3, false, &view(&[])), Step::Create(vec![0]));
        assert_eq!(next_step(3, false, &view(&[(0, true, false)])), Step::Wait, "wait for web-0 to be ready");
        assert_eq!(next_step(3, false, &view(&[(0, true, true)])), Step::Create(vec![1]));
        assert_eq!(next_step(3, false, &view(&[(0, true, true), (1, true, true), (2, true, true)])), Step::Done);
        assert_eq!(next_step(1, false, &view(&[(0, true, true), (1, true, true), (2, true, true)])), Step::Delete(vec![2]));
        assert_eq!(next_step(1, false, &view(&[(0, true, false), (1, true, true)])), Step::Wait);
        assert_eq!(next_step(3, true, &view(&[(1, true, false)])), Step::Create(vec![0, 2]));
        assert_eq!(next_step(0, true, &view(&[(0, true, true), (1, true, true)])), Step::Delete(vec![1, 0]));
        let mut failed = view(&[(0, true, true), (1, true, false)]);
        failed.get_mut(&1).unwrap().2 = true;
        assert_eq!(next_step(2, false, &failed), Step::Delete(vec![1]), "failed pods are recreated");
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "webx-1"), None);
    }
}
