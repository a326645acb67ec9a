//! kubectl 1.33's client-side commands that send strategic merge patches, against the real
//! kube-apiserver binary: `apply -f` (create, unchanged, configured, pruning of fields dropped
//! from the file through the last-applied annotation), `edit`, `patch` (strategic, json,
//! merge), `diff` and `set image`.

use integration_tests::ApiServer;
use serde_json::Value;

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - name: A
          value: \"1\"
        - name: B
          value: \"2\"
      - name: side
        image: busybox:1.36
        command: [\"sleep\", \"3600\"]
";

/// The same Deployment with label `tier` and env var `B` removed and the web image bumped.
fn edited_deployment() -> String {
    let out = DEPLOYMENT
        .replace("    tier: front\n", "")
        .replace("        - name: B\n          value: \"2\"\n", "")
        .replace("nginx:1.25", "nginx:1.26");
    assert_ne!(out, DEPLOYMENT, "the edits apply to the manifest");
    out
}

async fn get_json(s: &ApiServer, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    let out = s.kubectl_ok(&args).await;
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kubectl get output is not JSON ({e}): {out}"))
}

fn container<'a>(deploy: &'a Value, name: &str) -> &'a Value {
    deploy["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {deploy}"))
}

fn env_names(c: &Value) -> Vec<&str> {
    c["env"]
        .as_array()
        .map(|e| e.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_then_reports_unchanged_then_configures_and_prunes() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("web.yaml", DEPLOYMENT);
    let path = file.to_str().unwrap();

    assert_eq!(
        s.kubectl_ok(&["apply", "-f", path]).await.trim(),
        "deployment.apps/web created"
    );
    let d = get_json(&s, &["deployment", "web"]).await;
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("apply records the last-applied configuration");
    assert!(last.contains("\"tier\":\"front\""), "{last}");

    assert_eq!(
        s.kubectl_ok(&["apply", "-f", path]).await.trim(),
        "deployment.apps/web unchanged"
    );

    // Something else adds a label the file never had: apply must keep it.
    s.kubectl_ok(&["label", "deployment", "web", "owner=ops"])
        .await;

    s.write_file("web.yaml", &edited_deployment());
    assert_eq!(
        s.kubectl_ok(&["apply", "-f", path]).await.trim(),
        "deployment.apps/web configured"
    );
    let d = get_json(&s, &["deployment", "web"]).await;
    let labels = d["metadata"]["labels"].as_object().expect("labels");
    assert!(
        !labels.contains_key("tier"),
        "label dropped from the file is pruned: {labels:?}"
    );
    assert_eq!(
        labels.get("owner").and_then(Value::as_str),
        Some("ops"),
        "labels set by others survive"
    );
    let web = container(&d, "web");
    assert_eq!(web["image"], "nginx:1.26");
    assert_eq!(env_names(web), ["A"], "B pruned: {web}");
    assert_eq!(web["ports"][0]["containerPort"], 80);
    assert_eq!(
        container(&d, "side")["image"],
        "busybox:1.36",
        "the other container is untouched"
    );

    assert_eq!(
        s.kubectl_ok(&["apply", "-f", path]).await.trim(),
        "deployment.apps/web unchanged"
    );

    // Dropping a whole container from the file deletes it; an env var someone else added to
    // the remaining container stays.
    s.kubectl_ok(&["set", "env", "deployment/web", "-c", "web", "EXTRA=x"])
        .await;
    let one = edited_deployment().replace(
        "      - name: side\n        image: busybox:1.36\n        command: [\"sleep\", \"3600\"]\n",
        "",
    );
    s.write_file("web.yaml", &one);
    assert_eq!(
        s.kubectl_ok(&["apply", "-f", path]).await.trim(),
        "deployment.apps/web configured"
    );
    let d = get_json(&s, &["deployment", "web"]).await;
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["web"]);
    assert_eq!(env_names(container(&d, "web")), ["A", "EXTRA"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_with_a_non_interactive_editor() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("web.yaml", DEPLOYMENT);
    s.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]).await;

    let out = s
        .kubectl_command(&["edit", "deployment/web"])
        .env_remove("KUBE_EDITOR")
        .env("EDITOR", "sed -i s/busybox:1.36/busybox:1.37/")
        .output()
        .await
        .expect("running kubectl edit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl edit failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "deployment.apps/web edited");
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(container(&d, "side")["image"], "busybox:1.37");
    assert_eq!(container(&d, "web")["image"], "nginx:1.25");
    assert_eq!(env_names(container(&d, "web")), ["A", "B"]);

    // An editor that changes nothing: kubectl reports the edit as cancelled.
    let out = s
        .kubectl_command(&["edit", "deployment/web"])
        .env_remove("KUBE_EDITOR")
        .env("EDITOR", "true")
        .output()
        .await
        .expect("running kubectl edit");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Edit cancelled, no changes made."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_strategic_json_and_merge() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("web.yaml", DEPLOYMENT);
    s.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]).await;

    // Default type is strategic: the env list merges by name.
    let out = s
        .kubectl_ok(&["patch", "deployment", "web", "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"C","value":"3"},{"name":"A","value":"10"}]}]}}}}"#])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let d = get_json(&s, &["deployment", "web"]).await;
    let web = container(&d, "web");
    assert_eq!(env_names(web), ["C", "A", "B"]);
    assert_eq!(web["env"][1]["value"], "10");
    assert_eq!(container(&d, "side")["image"], "busybox:1.36");

    // `$patch: delete` removes one element by its merge key.
    s.kubectl_ok(&["patch", "deployment", "web", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"B","$patch":"delete"}]}]}}}}"#])
        .await;
    assert_eq!(
        env_names(container(
            &get_json(&s, &["deployment", "web"]).await,
            "web"
        )),
        ["C", "A"]
    );

    // Merge type: lists are replaced wholesale.
    let out = s
        .kubectl_ok(&["patch", "deployment", "web", "--type=merge", "-p",
            r#"{"metadata":{"labels":{"tier":null,"m":"1"}},"spec":{"template":{"spec":{"containers":[{"name":"only","image":"nginx:1.27"}]}}}}"#])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(
        d["metadata"]["labels"],
        serde_json::json!({"app": "web", "m": "1"})
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // JSON patch.
    let out = s
        .kubectl_ok(&["patch", "deployment", "web", "--type=json", "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":2},{"op":"add","path":"/metadata/labels/j","value":"2"}]"#])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["labels"]["j"], "2");

    // A patch that changes nothing.
    let out = s
        .kubectl_ok(&[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"metadata":{"labels":{"j":"2"}}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web patched (no change)");

    // Malformed directives are refused with upstream's messages.
    let err = s
        .kubectl_err(&[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"strategy":{"$retainKeys":"type"}}}"#,
        ])
        .await;
    assert!(err.contains("invalid patch format of retainKeys"), "{err}");
    let err = s
        .kubectl_err(&[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","$patch":"merge"}]}}}}"#,
        ])
        .await;
    assert!(
        err.contains("merging lists cannot yet be specified in the patch"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_exits_one_with_a_diff_and_zero_when_equal() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("web.yaml", DEPLOYMENT);
    let path = file.to_str().unwrap();

    // Not there yet: the diff is a dry-run create, and nothing is created.
    let out = s.kubectl(&["diff", "-f", path]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+  name: web"));
    assert!(
        s.kubectl_err(&["get", "deployment", "web"])
            .await
            .contains("not found")
    );

    s.kubectl_ok(&["apply", "-f", path]).await;
    let before = get_json(&s, &["deployment", "web"]).await;
    let out = s.kubectl(&["diff", "-f", path]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    s.write_file("web.yaml", &edited_deployment());
    let out = s.kubectl(&["diff", "-f", path]).await;
    let diff = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "-    tier: front",
        "-        image: nginx:1.25",
        "+        image: nginx:1.26",
        "-        - name: B",
    ] {
        assert!(
            diff.lines().any(|l| l == line),
            "diff lacks {line:?}:\n{diff}"
        );
    }
    // The dry run left the object alone.
    let after = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(container(&after, "web")["image"], "nginx:1.25");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_updates_one_container() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("web.yaml", DEPLOYMENT);
    s.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]).await;

    let out = s
        .kubectl_ok(&["set", "image", "deployment/web", "side=busybox:1.37"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(container(&d, "side")["image"], "busybox:1.37");
    assert_eq!(container(&d, "web")["image"], "nginx:1.25");
    assert_eq!(env_names(container(&d, "web")), ["A", "B"]);
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["web", "side"], "container order is kept");

    let out = s
        .kubectl_ok(&["set", "image", "deployment/web", "*=nginx:1.27"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(container(&d, "side")["image"], "nginx:1.27");
    assert_eq!(container(&d, "web")["image"], "nginx:1.27");

    // A later apply of the unchanged file puts the file's images back.
    assert_eq!(
        s.kubectl_ok(&["apply", "-f", file.to_str().unwrap()])
            .await
            .trim(),
        "deployment.apps/web configured"
    );
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(container(&d, "side")["image"], "busybox:1.36");
}
