//! The in-tree plugins, one module each, and the registry that builds them by name with their
//! `pluginConfig` args.

pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod scheduling_gates;
pub mod taint_toleration;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::Store;

use crate::config::ConfigError;
use crate::framework::Plugin;

/// What plugins may use besides the snapshot: the API client and informer stores.
#[derive(Clone, Default)]
pub struct PluginContext {
    pub client: Option<kube::Client>,
    pub pdbs: Option<Store<PodDisruptionBudget>>,
    pub services: Option<Store<Service>>,
    pub replica_sets: Option<Store<ReplicaSet>>,
    pub stateful_sets: Option<Store<StatefulSet>>,
    pub replication_controllers: Option<Store<ReplicationController>>,
}

/// Every plugin name the registry knows.
pub const REGISTRY: &[&str] = &[
    priority_sort::NAME,
    scheduling_gates::NAME,
    node_unschedulable::NAME,
    node_name::NAME,
    taint_toleration::NAME,
    node_affinity::NAME,
    node_ports::NAME,
    node_resources_fit::NAME,
    balanced_allocation::NAME,
    inter_pod_affinity::NAME,
    pod_topology_spread::NAME,
    image_locality::NAME,
    default_preemption::NAME,
    default_binder::NAME,
];

/// Upstream plugins that need volumes/CSI; accepted in configurations but not implemented, so
/// configurations written for upstream still load.
pub const ACCEPTED_NOOP: &[&str] = &[
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
];

/// Build the plugin `name` with its args.
pub fn new_plugin(
    name: &str,
    args: Option<&serde_json::Value>,
    ctx: &PluginContext,
) -> Result<Arc<dyn Plugin>, ConfigError> {
    Ok(match name {
        priority_sort::NAME => Arc::new(priority_sort::PrioritySort),
        scheduling_gates::NAME => Arc::new(scheduling_gates::SchedulingGates),
        node_unschedulable::NAME => Arc::new(node_unschedulable::NodeUnschedulable),
        node_name::NAME => Arc::new(node_name::NodeName),
        taint_toleration::NAME => Arc::new(taint_toleration::TaintToleration),
        node_affinity::NAME => Arc::new(node_affinity::NodeAffinity::new(args)?),
        node_ports::NAME => Arc::new(node_ports::NodePorts),
        node_resources_fit::NAME => Arc::new(node_resources_fit::NodeResourcesFit::new(args)?),
        balanced_allocation::NAME => Arc::new(balanced_allocation::BalancedAllocation::new(args)?),
        inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity::new(args)?),
        pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread::new(
            args,
            ctx.clone(),
        )?),
        image_locality::NAME => Arc::new(image_locality::ImageLocality),
        default_preemption::NAME => Arc::new(default_preemption::DefaultPreemption::new(
            args,
            ctx.clone(),
        )?),
        default_binder::NAME => Arc::new(default_binder::DefaultBinder::new(ctx.client.clone())),
        n if ACCEPTED_NOOP.contains(&n) => Arc::new(Noop(
            ACCEPTED_NOOP
                .iter()
                .find(|x| **x == n)
                .copied()
                .unwrap_or("Noop"),
        )),
        other => {
            return Err(ConfigError::Invalid(format!(
                "plugin {other:?} is not registered"
            )));
        }
    })
}

/// Placeholder for an upstream plugin this scheduler accepts in configs but does not run.
struct Noop(&'static str);

impl Plugin for Noop {
    fn name(&self) -> &'static str {
        self.0
    }
}
