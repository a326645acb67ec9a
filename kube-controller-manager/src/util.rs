//! Helpers shared by the controllers: selectors, owner references, pod state, events, time.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::core::{Selector, SelectorExt};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};

/// `namespace/name` (just `name` for cluster-scoped objects), as client-go's MetaNamespaceKeyFunc.
pub fn key_of<K: Resource>(o: &K) -> String {
    match &o.meta().namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", o.meta().name.as_deref().unwrap_or("")),
        _ => o.meta().name.clone().unwrap_or_default(),
    }
}

pub fn key(ns: &str, name: &str) -> String {
    if ns.is_empty() { name.to_string() } else { format!("{ns}/{name}") }
}

/// Split a key into (namespace, name).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// A selector from a LabelSelector; `None` if it cannot be parsed. An empty selector selects
/// everything (callers that must not select everything check [`is_empty_selector`]).
pub fn selector(ls: &LabelSelector) -> Option<Selector> {
    Selector::try_from(ls.clone()).ok()
}

pub fn is_empty_selector(ls: &LabelSelector) -> bool {
    ls.match_labels.as_ref().is_none_or(|m| m.is_empty()) && ls.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

pub fn selector_matches(ls: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    !is_empty_selector(ls) && selector(ls).is_some_and(|s| s.matches(labels))
}

/// Map-style selector (ReplicationController, Service): every pair must match; empty selects nothing.
pub fn map_selector_matches(sel: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// A controller owner reference to `owner`.
pub fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn is_deleting(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

pub fn now() -> Timestamp {
    Timestamp::now()
}

pub fn now_time() -> Time {
    Time(Timestamp::now())
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

/// Not terminal and not being deleted (upstream's IsPodActive).
pub fn is_pod_active(pod: &Pod) -> bool {
    !is_pod_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's Ready condition: (status is True, lastTransitionTime).
pub fn pod_ready_condition(pod: &Pod) -> Option<(bool, Option<Timestamp>)> {
    let c = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status == "True", c.last_transition_time.as_ref().map(|t| t.0)))
}

pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_condition(pod).is_some_and(|(r, _)| r)
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's IsPodAvailable).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match pod_ready_condition(pod) {
        Some((true, since)) => {
            if min_ready_seconds <= 0 {
                return true;
            }
            since.is_some_and(|t| t.as_second() + i64::from(min_ready_seconds) <= now.as_second())
        }
        _ => false,
    }
}

/// An ObjectReference for events about `o`.
pub fn object_ref<K: Resource<DynamicType = ()>>(o: &K) -> ObjectReference {
    o.object_ref(&())
}

/// Records events (`kubectl describe` shows them) without slowing the sync that emits them.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: Client, component: &str) -> Self {
        Events { recorder: Recorder::new(client, Reporter { controller: component.to_string(), instance: None }) }
    }

    fn emit(&self, regarding: ObjectReference, type_: EventType, reason: &str, note: String) {
        let rec = self.recorder.clone();
        let ev = Event { type_, reason: reason.to_string(), note: Some(note), action: reason.to_string(), secondary: None };
        tokio::spawn(async move {
            if let Err(e) = rec.publish(&ev, &regarding).await {
                tracing::debug!(error = %e, "failed to record event");
            }
        });
    }

    pub fn normal(&self, regarding: ObjectReference, reason: &str, note: impl Into<String>) {
        self.emit(regarding, EventType::Normal, reason, note.into());
    }

    pub fn warning(&self, regarding: ObjectReference, reason: &str, note: impl Into<String>) {
        self.emit(regarding, EventType::Warning, reason, note.into());
    }
}

/// Whether an API error is "not found" / "already exists" / "conflict".
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

pub fn labels_of<K: Resource>(o: &K) -> BTreeMap<String, String> {
    o.labels().clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string()), ("tier".to_string(), "fe".to_string())]);
        let ls = LabelSelector { match_labels: Some(BTreeMap::from([("app".into(), "web".into())])), ..Default::default() };
        assert!(selector_matches(&ls, &labels));
        assert!(!selector_matches(&LabelSelector::default(), &labels), "empty selects nothing here");
        let ls = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement { key: "tier".into(), operator: "NotIn".into(), values: Some(vec!["fe".into()]) }]),
            ..Default::default()
        };
        assert!(!selector_matches(&ls, &labels));
        assert!(map_selector_matches(&BTreeMap::from([("app".into(), "web".into())]), &labels));
        assert!(!map_selector_matches(&BTreeMap::new(), &labels));
        assert_eq!(split_key("ns/a"), ("ns", "a"));
        assert_eq!(split_key("a"), ("", "a"));
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let pod = Pod {
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: "True".into(), last_transition_time: Some(Time(t0)), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(is_pod_ready(&pod));
        assert!(is_pod_available(&pod, 0, t0));
        assert!(!is_pod_available(&pod, 10, Timestamp::from_second(1_000_005).unwrap()));
        assert!(is_pod_available(&pod, 10, Timestamp::from_second(1_000_010).unwrap()));
        assert!(!is_pod_available(&Pod::default(), 0, t0));
    }
}
