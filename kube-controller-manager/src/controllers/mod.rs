//! One module per controller; each has one reconcile function. [`registry`] lists them with
//! upstream's `--controllers` names.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod garbagecollector;
pub mod job;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacert;
pub mod serviceaccount;
pub mod statefulset;

use futures::FutureExt;

use crate::{ControllerContext, ControllerDef, Error};

pub fn registry() -> Vec<ControllerDef> {
    vec![
        ControllerDef { name: "replicaset-controller", aliases: &["replicaset"], start: start_replicaset },
        ControllerDef {
            name: "replicationcontroller-controller",
            aliases: &["replicationcontroller"],
            start: start_replicationcontroller,
        },
        ControllerDef { name: "deployment-controller", aliases: &["deployment"], start: start_deployment },
        ControllerDef { name: "garbage-collector-controller", aliases: &["garbagecollector"], start: start_garbagecollector },
        ControllerDef { name: "namespace-controller", aliases: &["namespace"], start: start_namespace },
        ControllerDef { name: "serviceaccount-controller", aliases: &["serviceaccount"], start: start_serviceaccount },
        ControllerDef {
            name: "root-ca-certificate-publisher-controller",
            aliases: &["root-ca-cert-publisher"],
            start: start_rootcacert,
        },
        ControllerDef { name: "endpointslice-controller", aliases: &["endpointslice"], start: start_endpointslice },
        ControllerDef { name: "endpoints-controller", aliases: &["endpoint"], start: start_endpoints },
        ControllerDef { name: "job-controller", aliases: &["job"], start: start_job },
        ControllerDef { name: "ttl-after-finished-controller", aliases: &["ttl-after-finished"], start: start_ttl_after_finished },
        ControllerDef { name: "node-lifecycle-controller", aliases: &["nodelifecycle", "taint-eviction-controller"], start: start_nodelifecycle },
        ControllerDef { name: "pod-garbage-collector-controller", aliases: &["podgc"], start: start_podgc },
        ControllerDef { name: "cronjob-controller", aliases: &["cronjob"], start: start_cronjob },
        ControllerDef { name: "daemonset-controller", aliases: &["daemonset"], start: start_daemonset },
        ControllerDef { name: "statefulset-controller", aliases: &["statefulset"], start: start_statefulset },
        ControllerDef { name: "disruption-controller", aliases: &["disruption"], start: start_disruption },
        ControllerDef { name: "resourcequota-controller", aliases: &["resourcequota"], start: start_resourcequota },
    ]
}

fn start_resourcequota(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = resourcequota::ResourceQuotaController::new(ctx);
    Ok(c.run(ctx.options.concurrent_resource_quota_syncs).boxed())
}

fn start_disruption(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    // Upstream has no flag for this controller and runs one worker.
    let c = disruption::DisruptionController::new(ctx);
    Ok(c.run(1).boxed())
}

fn start_statefulset(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = statefulset::StatefulSetController::new(ctx);
    Ok(c.run(ctx.options.concurrent_statefulset_syncs).boxed())
}

fn start_daemonset(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = daemonset::DaemonSetController::new(ctx);
    Ok(c.run(ctx.options.concurrent_daemonset_syncs).boxed())
}

fn start_cronjob(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = cronjob::CronJobController::new(ctx);
    Ok(c.run(ctx.options.concurrent_cron_job_syncs).boxed())
}

fn start_nodelifecycle(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = nodelifecycle::NodeLifecycleController::new(ctx);
    Ok(c.run(4).boxed())
}

fn start_podgc(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = podgc::PodGc::new(ctx);
    Ok(c.run().boxed())
}

fn start_job(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = job::JobController::new(ctx);
    Ok(c.run(ctx.options.concurrent_job_syncs).boxed())
}

fn start_ttl_after_finished(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = job::TtlAfterFinishedController::new(ctx);
    Ok(c.run(ctx.options.concurrent_ttl_after_finished_syncs).boxed())
}

fn start_endpointslice(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = endpointslice::EndpointSliceController::new(ctx);
    Ok(c.run(ctx.options.concurrent_service_endpoint_syncs).boxed())
}

fn start_endpoints(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = endpoints::EndpointsController::new(ctx);
    Ok(c.run(ctx.options.concurrent_endpoint_syncs).boxed())
}

fn start_namespace(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = namespace::NamespaceController::new(ctx);
    Ok(c.run(ctx.options.concurrent_namespace_syncs).boxed())
}

fn start_serviceaccount(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = serviceaccount::ServiceAccountController::new(ctx);
    Ok(c.run(1).boxed())
}

fn start_rootcacert(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    match rootcacert::root_ca(ctx.options.root_ca_file.as_deref(), ctx.options.kubeconfig.as_deref()) {
        Some(ca) => {
            let c = rootcacert::RootCaPublisher::new(ctx, ca);
            Ok(c.run(1).boxed())
        }
        None => {
            tracing::warn!("no root CA (--root-ca-file or kubeconfig CA): not publishing kube-root-ca.crt");
            Ok(futures::future::pending().boxed())
        }
    }
}

fn start_garbagecollector(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = garbagecollector::GarbageCollector::new(ctx);
    Ok(c.run(ctx.options.concurrent_gc_syncs).boxed())
}

fn start_deployment(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = deployment::DeploymentController::new(ctx);
    Ok(c.run(ctx.options.concurrent_deployment_syncs).boxed())
}

fn start_replicaset(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = replicaset::ReplicaSetController::new(ctx, replicaset::Kind::ReplicaSet);
    Ok(c.run(ctx.options.concurrent_replicaset_syncs).boxed())
}

fn start_replicationcontroller(ctx: &ControllerContext) -> Result<futures::future::BoxFuture<'static, ()>, Error> {
    let c = replicaset::ReplicaSetController::new(ctx, replicaset::Kind::ReplicationController);
    Ok(c.run(ctx.options.concurrent_rc_syncs).boxed())
}
