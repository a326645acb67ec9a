//! `kubectl wait` on conditions and JSONPath, for an object whose status the test writes.

use std::time::Duration;

use integration_tests::ApiServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_condition_and_jsonpath() {
    let s = ApiServer::start_default().await;
    s.kubectl_ok(&["create", "deployment", "web", "--image=busybox", "--replicas=2"]).await;
    let mut cmd = s.kubectl_command(&["wait", "--for=condition=Available", "deployment/web", "--timeout=30s"]);
    let waiter = cmd.output();
    let writer = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        s.kubectl_ok(&[
            "patch", "deployment", "web", "--subresource=status", "--type=merge", "-p",
            r#"{"status":{"replicas":2,"readyReplicas":2,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"ok","lastUpdateTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
        ])
        .await;
    };
    let (out, ()) = tokio::join!(waiter, writer);
    let out = out.expect("kubectl wait runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout} stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "deployment.apps/web condition met");

    let out = s.kubectl_ok(&["wait", "--for=jsonpath={.status.readyReplicas}=2", "deployment/web", "--timeout=10s"]).await;
    assert_eq!(out.trim(), "deployment.apps/web condition met");
    // A condition that never comes times out with kubectl's error.
    let err = s.kubectl_err(&["wait", "--for=condition=Progressing", "deployment/web", "--timeout=2s"]).await;
    assert!(err.contains("timed out waiting for the condition"), "{err}");
    // --for=delete returns once the object is gone.
    s.kubectl_ok(&["delete", "deployment", "web", "--wait=false"]).await;
    s.kubectl_ok(&["wait", "--for=delete", "deployment/web", "--timeout=10s"]).await;
}
