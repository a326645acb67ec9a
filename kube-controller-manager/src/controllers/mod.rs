//! One module per controller; each has one reconcile function. [`registry`] lists them with
//! upstream's `--controllers` names.

pub mod deployment;
pub mod garbagecollector;
pub mod replicaset;

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
    ]
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
