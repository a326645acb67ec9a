//! The `status` and `scale` subresources as upstream serves them: `fieldValidation` on their
//! bodies, server-side apply of a `Scale` (`kubectl apply --server-side --subresource=scale`),
//! duplicate fields in applied configurations, and server-side dry runs of kubectl's write
//! commands.

use integration_tests::ApiServer;
use serde_json::{Value, json};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
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
        image: nginx:1.27
";

fn warnings(resp: &reqwest::Response) -> Vec<String> {
    resp.headers().get_all("warning").iter().map(|v| v.to_str().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_scale_bodies_honour_field_validation() {
    let s = ApiServer::start_default().await;
    s.kubectl_stdin_ok(&["apply", "-f", "-"], DEPLOYMENT).await;
    let http = s.http();
    let base = format!("{}/apis/apps/v1/namespaces/default/deployments/web", s.url());
    let current: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    let mut body = current.clone();
    body["status"]["bogus"] = json!(1);

    // Strict: 400 naming the unknown field.
    let resp = http.put(format!("{base}/status?fieldValidation=Strict")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "BadRequest");
    let msg = status["message"].as_str().unwrap();
    assert!(msg.contains(r#"strict decoding error: unknown field "status.bogus""#), "{msg}");
    // No parameter means Warn: accepted with a Warning header.
    let resp = http.put(format!("{base}/status")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(warnings(&resp).iter().any(|w| w.contains(r#"unknown field \"status.bogus\""#)), "{:?}", warnings(&resp));
    // A merge patch of status under Strict.
    let resp = http
        .patch(format!("{base}/status?fieldValidation=Strict"))
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"status":{"bogus":1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Scale bodies are checked against the Scale schema.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
                       "spec": {"replicas": 2, "bogus": true}});
    let resp = http.put(format!("{base}/scale?fieldValidation=Strict")).json(&scale).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let msg = resp.json::<Value>().await.unwrap()["message"].as_str().unwrap().to_string();
    assert!(msg.contains(r#"unknown field "spec.bogus""#), "{msg}");
    let resp = http.put(format!("{base}/scale?fieldValidation=Ignore")).json(&scale).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(warnings(&resp).is_empty());
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_of_a_scale() {
    let s = ApiServer::start_default().await;
    s.kubectl_stdin_ok(&["apply", "--server-side", "--field-manager=deployer", "-f", "-"], DEPLOYMENT).await;
    let scale = "apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\nspec:\n  replicas: 4\n";
    let http = s.http();
    let apply = |manager: &str, force: bool, body: String| {
        let url = format!(
            "{}/apis/apps/v1/namespaces/default/deployments/{}/scale?fieldManager={manager}&force={force}",
            s.url(),
            if body.contains("name: nope") { "nope" } else { "web" }
        );
        http.patch(url).header("Content-Type", "application/apply-patch+yaml").body(body).send()
    };
    // `deployer` owns spec.replicas: another manager conflicts, then takes it with force.
    let resp = apply("scaler", false, scale.to_string()).await.unwrap();
    assert_eq!(resp.status(), 409);
    let status: Value = resp.json().await.unwrap();
    let msg = status["message"].as_str().unwrap();
    assert!(msg.contains("conflict with \"deployer\"") && msg.contains(".spec.replicas"), "{msg}");
    let resp = apply("scaler", true, scale.to_string()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!((answer["kind"].as_str(), answer["spec"]["replicas"].as_i64()), (Some("Scale"), Some(4)));
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "4");
    let managed: Value = serde_json::from_str(
        &s.kubectl_ok(&["get", "deploy", "web", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields}"]).await,
    )
    .unwrap();
    let scaler = managed.as_array().unwrap().iter().find(|m| m["manager"] == "scaler").expect("scaler entry");
    assert_eq!(scaler["operation"], "Apply");
    assert_eq!(scaler["subresource"], "scale");
    assert_eq!(scaler["apiVersion"], "apps/v1");
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let deployer = managed.as_array().unwrap().iter().find(|m| m["manager"] == "deployer").expect("deployer entry");
    assert!(deployer["fieldsV1"]["f:spec"].get("f:replicas").is_none(), "{deployer}");

    // Applying again with no change is a no-op; a scale of a missing object is 404, never a create.
    let rv = s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]).await;
    assert_eq!(apply("scaler", false, scale.to_string()).await.unwrap().status(), 200);
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]).await, rv);
    let resp = apply("x", false, scale.replace("name: web", "name: nope")).await.unwrap();
    assert_eq!(resp.status(), 404);
    // A negative replica count is the Scale's 422.
    let resp = apply("scaler", true, scale.replace("replicas: 4", "replicas: -1")).await.unwrap();
    assert_eq!(resp.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_configurations_with_duplicate_fields() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let url = |q: &str| format!("{}/api/v1/namespaces/default/configmaps/dup?fieldManager=m{q}", s.url());
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\n  name: dup\ndata:\n  a: \"1\"\n";
    let send = |q: &'static str| {
        http.patch(url(q)).header("Content-Type", "application/apply-patch+yaml").body(body).send()
    };
    let resp = send("&fieldValidation=Strict").await.unwrap();
    assert_eq!(resp.status(), 400);
    let msg = resp.json::<Value>().await.unwrap()["message"].as_str().unwrap().to_string();
    assert_eq!(
        msg,
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map"
    );
    let resp = send("&fieldValidation=Warn").await.unwrap();
    assert_eq!(resp.status(), 201);
    assert!(warnings(&resp).iter().any(|w| w.contains("key \\\"name\\\" already set in map")), "{:?}", warnings(&resp));
    let resp = send("&fieldValidation=Ignore").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(warnings(&resp).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_of_kubectl_write_commands_changes_nothing() {
    let s = ApiServer::start_default().await;
    s.kubectl_stdin_ok(&["apply", "--server-side", "-f", "-"], DEPLOYMENT).await;
    let rv = || s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let before = rv().await;
    let changed = DEPLOYMENT.replace("replicas: 1", "replicas: 3");
    let out = s.kubectl_stdin_ok(&["apply", "--server-side", "--dry-run=server", "-f", "-"], &changed).await;
    assert!(out.contains("serverside-applied (server dry run)"), "{out}");
    let out = s.kubectl_ok(&["patch", "deploy", "web", "--dry-run=server", "-p", r#"{"spec":{"replicas":5}}"#]).await;
    assert!(out.contains("patched"), "{out}");
    let out = s.kubectl_ok(&["scale", "deploy", "web", "--replicas=7", "--dry-run=server"]).await;
    assert!(out.contains("scaled"), "{out}");
    let out = s.kubectl_ok(&["label", "deploy", "web", "tier=front", "--dry-run=server"]).await;
    assert!(out.contains("labeled"), "{out}");
    let out = s.kubectl_stdin_ok(&["replace", "--dry-run=server", "-f", "-"], &changed).await;
    assert!(out.contains("replaced"), "{out}");
    let yaml = s.kubectl_ok(&["patch", "deploy", "web", "--dry-run=server", "-p", r#"{"spec":{"replicas":9}}"#, "-o", "jsonpath={.spec.replicas}"]).await;
    assert_eq!(yaml, "9", "a dry run answers with the object it would have written");
    assert_eq!(rv().await, before);
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "1");
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]).await, "");
}
