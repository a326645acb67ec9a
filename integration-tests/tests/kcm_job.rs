//! kube-controller-manager: Jobs to completion and to failure, Indexed jobs, the pod failure
//! policy, deadlines, suspend and ttl-after-finished (the test plays the kubelet).

mod kcm_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use integration_tests::{ApiServer, ApiServerOptions, ControllerManager};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kcm_support::*;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn finish_pod(client: &Client, ns: &str, name: &str, exit_code: i32) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let phase = if exit_code == 0 { "Succeeded" } else { "Failed" };
    let patch = json!({"status": {"phase": phase, "containerStatuses": [{
        "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": exit_code, "reason": if exit_code == 0 {"Completed"} else {"Error"}}}
    }]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

fn job_yaml(name: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
{spec_extra}  template:
    metadata: {{labels: {{job: {name}}}}}
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: busybox}}]
"
    )
}

/// Running pods of a job (not terminal, not deleting).
async fn running(client: &Client, ns: &str, job: &str) -> Vec<Pod> {
    pods(client, ns, &format!("job-name={job}"))
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .collect()
}

async fn condition(api: &Api<Job>, name: &str, type_: &str) -> Option<(String, String)> {
    let j = api.get(name).await.unwrap();
    j.status?.conditions?.into_iter().find(|c| c.type_ == type_ && c.status == "True").map(|c| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}

#[tokio::test]
async fn jobs_complete_fail_and_follow_policies() {
    let server = ApiServer::start(ApiServerOptions::embedded()).await;
    let client = server.client().await;
    let _kcm = ControllerManager::start(&server, &["--controllers=job,ttl-after-finished,garbagecollector"]);
    let ns = "jobs";
    create_namespace(&client, ns).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);

    // Completions 3, parallelism 2: never more than 2 running; done after 3 successes.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &job_yaml("work", "  completions: 3\n  parallelism: 2\n")).await;
    let done = Arc::new(AtomicUsize::new(0));
    wait_for(90, "3 successes", || {
        let (client, done) = (client.clone(), done.clone());
        async move {
            let run = running(&client, ns, "work").await;
            assert!(run.len() <= 2, "parallelism exceeded: {}", run.len());
            for p in run {
                finish_pod(&client, ns, &p.name_any(), 0).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
            (done.load(Ordering::SeqCst) >= 3).then_some(())
        }
    })
    .await;
    server.kubectl_ok(&["-n", ns, "wait", "--for=condition=complete", "job/work", "--timeout=60s"]).await;
    let j = jobs.get("work").await.unwrap();
    let st = j.status.unwrap();
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(st.active.unwrap_or(0), 0);
    assert!(st.completion_time.is_some());
    assert!(condition(&jobs, "work", "SuccessCriteriaMet").await.is_some());
    assert_eq!(pods(&client, ns, "job-name=work").await.len(), 3, "exactly three pods were created");
    // Counted pods lose the tracking finalizer.
    wait_for(30, "finalizers removed", || async {
        pods(&client, ns, "job-name=work").await.iter().all(|p| p.finalizers().is_empty()).then_some(())
    })
    .await;

    // backoffLimit 1: the second failure fails the job.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &job_yaml("flaky", "  backoffLimit: 1\n")).await;
    let failures = Arc::new(AtomicUsize::new(0));
    wait_for(90, "job failed", || {
        let (client, failures, jobs) = (client.clone(), failures.clone(), jobs.clone());
        async move {
            for p in running(&client, ns, "flaky").await {
                finish_pod(&client, ns, &p.name_any(), 1).await;
                failures.fetch_add(1, Ordering::SeqCst);
            }
            condition(&jobs, "flaky", "Failed").await
        }
    })
    .await;
    let (reason, _) = condition(&jobs, "flaky", "Failed").await.unwrap();
    assert_eq!(reason, "BackoffLimitExceeded");
    assert!(condition(&jobs, "flaky", "FailureTarget").await.is_some());
    assert_eq!(failures.load(Ordering::SeqCst), 2, "one retry after the first failure");
    assert_eq!(jobs.get("flaky").await.unwrap().status.unwrap().failed, Some(2));

    // Indexed: one pod per index, completedIndexes reported.
    server
        .kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &job_yaml("idx", "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n"))
        .await;
    let run = wait_for(30, "3 indexed pods", || async {
        let r = running(&client, ns, "idx").await;
        (r.len() == 3).then_some(r)
    })
    .await;
    let mut idx: Vec<String> = run.iter().map(|p| p.annotations()["batch.kubernetes.io/job-completion-index"].clone()).collect();
    idx.sort();
    assert_eq!(idx, vec!["0", "1", "2"]);
    for p in &run {
        let i = &p.annotations()["batch.kubernetes.io/job-completion-index"];
        assert_eq!(p.spec.as_ref().unwrap().hostname.as_deref(), Some(format!("idx-{i}").as_str()));
        finish_pod(&client, ns, &p.name_any(), 0).await;
    }
    wait_for(30, "indexed complete", || async { condition(&jobs, "idx", "Complete").await }).await;
    assert_eq!(jobs.get("idx").await.unwrap().status.unwrap().completed_indexes.as_deref(), Some("0-2"));

    // podFailurePolicy FailJob on exit code 42: no retries.
    let pfp = "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {containerName: c, operator: In, values: [42]}\n";
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &job_yaml("fatal", pfp)).await;
    let p = wait_for(30, "fatal pod", || async { running(&client, ns, "fatal").await.pop() }).await;
    finish_pod(&client, ns, &p.name_any(), 42).await;
    let (reason, _) = wait_for(30, "failed by policy", || async { condition(&jobs, "fatal", "Failed").await }).await;
    assert_eq!(reason, "PodFailurePolicy");

    // activeDeadlineSeconds: running pods are deleted and the job fails.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &job_yaml("slow", "  activeDeadlineSeconds: 2\n")).await;
    let (reason, _) = wait_for(30, "deadline", || async { condition(&jobs, "slow", "Failed").await }).await;
    assert_eq!(reason, "DeadlineExceeded");
    wait_for(30, "slow pods gone", || async { running(&client, ns, "slow").await.is_empty().then_some(()) }).await;

    // Suspend: no pods; resume: pods.
    server.kubectl_stdin_ok(&["-n", ns, "apply", "-f", "-"], &job_yaml("later", "  suspend: true\n")).await;
    wait_for(30, "suspended condition", || async { condition(&jobs, "later", "Suspended").await }).await;
    assert!(running(&client, ns, "later").await.is_empty());
    jobs.patch("later", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"suspend": false}}))).await.unwrap();
    let p = wait_for(30, "resumed pod", || async { running(&client, ns, "later").await.pop() }).await;

    // ttlSecondsAfterFinished: the finished job (and its pod) are deleted.
    jobs.patch("later", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"ttlSecondsAfterFinished": 1}}))).await.unwrap();
    finish_pod(&client, ns, &p.name_any(), 0).await;
    wait_for(60, "job deleted after ttl", || async { jobs.get_opt("later").await.unwrap().is_none().then_some(()) }).await;
    wait_for(60, "its pods collected", || async { pods(&client, ns, "job-name=later").await.is_empty().then_some(()) }).await;
}
