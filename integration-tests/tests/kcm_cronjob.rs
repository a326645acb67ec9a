//! kube-controller-manager: a CronJob with a one-minute schedule fires, tracks its active Job
//! and records the success; a suspended one never fires.

mod kcm_support;

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kcm_support::*;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

fn cronjob_yaml(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: '* * * * *'
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
{extra}  jobTemplate:
    metadata: {{labels: {{cron: {name}}}}}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: c, image: busybox}}]
"
    )
}

#[tokio::test]
async fn cronjob_fires_on_schedule() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=cronjob"]);
    let ns = "cron";
    create_namespace(&client, ns).await;
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &cronjob_yaml("tick", "")).await;
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &cronjob_yaml("paused", "  suspend: true\n")).await;
    let cjs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let tick = cjs.get("tick").await.unwrap();

    // Within a minute (plus slack) a Job for the scheduled minute exists.
    let job = wait_for(90, "first job", || async { jobs.list(&ListParams::default().labels("cron=tick")).await.unwrap().items.pop() }).await;
    let scheduled: k8s_openapi::jiff::Timestamp = job.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"].parse().unwrap();
    assert_eq!(scheduled.as_second() % 60, 0, "scheduled on a minute boundary");
    assert_eq!(job.name_any(), format!("tick-{}", scheduled.as_second() / 60));
    assert_eq!(job.owner_references()[0].uid, tick.uid().unwrap());
    let st = wait_for(30, "active job in status", || async {
        let s = cjs.get("tick").await.unwrap().status?;
        (s.active.as_ref().is_some_and(|a| a.len() == 1) && s.last_schedule_time.is_some()).then_some(s)
    })
    .await;
    assert_eq!(st.active.unwrap()[0].name.as_deref(), Some(job.name_any().as_str()));

    // The job finishes (the test plays the job controller): active empties, success recorded.
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let done = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now}
    ]}});
    jobs.patch_status(&job.name_any(), &PatchParams::default(), &Patch::Merge(&done)).await.unwrap();
    wait_for(30, "success recorded", || async {
        let s = cjs.get("tick").await.unwrap().status?;
        (s.active.as_ref().is_none_or(|a| a.is_empty()) && s.last_successful_time.is_some()).then_some(())
    })
    .await;
    assert!(jobs.list(&ListParams::default().labels("cron=paused")).await.unwrap().items.is_empty(), "suspended cronjob fired");
    let events = server.kubectl_ok(&["-n", ns, "get", "events", "--field-selector=involvedObject.name=tick", "-o", "custom-columns=R:.reason"]).await;
    assert!(events.contains("SuccessfulCreate") && events.contains("SawCompletedJob"), "{events}");
}
