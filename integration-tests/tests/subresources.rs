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
    // Unconditional updates: the same body is sent several times.
    body["metadata"].as_object_mut().unwrap().remove("resourceVersion");

    // Strict: 400 naming the unknown field.
    let resp = http.put(format!("{base}/status?fieldValidation=Strict")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "status.bogus""#
    );
    // No parameter means Warn: accepted with a Warning header.
    let resp = http.put(format!("{base}/status")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(warnings(&resp), [r#"299 - "unknown field \"status.bogus\"""#]);
    let resp = http.put(format!("{base}/status?fieldValidation=Ignore")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(warnings(&resp).is_empty());
    // Patches of status, of each type, under Strict and by default.
    for (ct, patch) in [
        ("application/merge-patch+json", r#"{"status":{"bogus":1}}"#),
        ("application/strategic-merge-patch+json", r#"{"status":{"bogus":1}}"#),
        ("application/json-patch+json", r#"[{"op":"add","path":"/status/bogus","value":1}]"#),
    ] {
        let send = |q: &str| http.patch(format!("{base}/status{q}")).header("Content-Type", ct).body(patch).send();
        let resp = send("?fieldValidation=Strict").await.unwrap();
        assert_eq!(resp.status(), 400, "{ct}");
        let status: Value = resp.json().await.unwrap();
        assert_eq!(status["message"], r#"strict decoding error: unknown field "status.bogus""#, "{ct}");
        let resp = send("").await.unwrap();
        assert_eq!(resp.status(), 200, "{ct}");
        assert_eq!(warnings(&resp), [r#"299 - "unknown field \"status.bogus\"""#], "{ct}");
    }

    // Scale bodies are checked against the Scale schema.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
                       "spec": {"replicas": 2, "bogus": true}});
    let resp = http.put(format!("{base}/scale?fieldValidation=Strict")).json(&scale).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        r#"Scale in version "v1" cannot be handled as a Scale: strict decoding error: unknown field "spec.bogus""#
    );
    let resp = http.put(format!("{base}/scale")).json(&scale).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(warnings(&resp), [r#"299 - "unknown field \"spec.bogus\"""#]);
    let resp = http.put(format!("{base}/scale?fieldValidation=Ignore")).json(&scale).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(warnings(&resp).is_empty());
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "2");
    let resp = http
        .patch(format!("{base}/scale?fieldValidation=Strict"))
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":3,"bogus":1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], r#"strict decoding error: unknown field "spec.bogus""#);
    // kubectl patch sends no fieldValidation: the server's default (Warn) reaches its stderr.
    let out = s.kubectl(&["patch", "deploy", "web", "--subresource=scale", "--type=merge", "-p", r#"{"spec":{"replicas":3,"bogus":1}}"#]).await;
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "Warning: unknown field \"spec.bogus\"\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "scale.autoscaling/web patched\n");
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "3");
    // A negative replica count is the Scale's 422, its value printed as Go prints an integer.
    let resp = http
        .put(format!("{base}/scale"))
        .json(&json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": -1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        r#"Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
    );
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

    // kubectl sends the file's object to the subresource: a Deployment is not a Scale.
    let out = s.kubectl_stdin(&["apply", "--server-side", "--subresource=scale", "-f", "-"], DEPLOYMENT).await;
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (BadRequest): Incorrect version specified in apply patch. Specified patch version: apps/v1, expected: autoscaling/v1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_scales_are_checked_as_upstream_checks_them() {
    let s = ApiServer::start_default().await;
    s.kubectl_stdin_ok(&["apply", "--server-side", "--field-manager=deployer", "-f", "-"], DEPLOYMENT).await;
    let http = s.http();
    let url = |q: &str| format!("{}/apis/apps/v1/namespaces/default/deployments/web/scale?{q}", s.url());
    let apply = |q: &str, body: &str| {
        http.patch(url(q)).header("Content-Type", "application/apply-patch+yaml").body(body.to_string()).send()
    };
    let scale = "apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\nspec:\n  replicas: 4\n";
    let rv = || s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let before = rv().await;
    let expect = async |q: &str, body: &str, code: u16, message: &str| {
        let resp = apply(q, body).await.unwrap();
        assert_eq!(resp.status(), code, "{body}");
        let status: Value = resp.json().await.unwrap();
        assert_eq!(status["message"], message, "{body}");
    };
    // The Scale schema types the configuration: unknown fields and kinds are upstream's 500.
    expect(
        "fieldManager=x&force=true",
        &scale.replace("  replicas: 4\n", "  replicas: 4\n  bogus: 1\n"),
        500,
        "failed to create typed patch object (/web; autoscaling/v1, Kind=Scale): .spec.bogus: field not declared in schema",
    )
    .await;
    expect(
        "fieldManager=x&force=true",
        &scale.replace("kind: Scale", "kind: Deployment"),
        500,
        "failed to create typed patch object (/web; autoscaling/v1, Kind=Deployment): no corresponding type for autoscaling/v1, Kind=Deployment",
    )
    .await;
    expect(
        "fieldManager=x&force=true",
        &scale.replace("  name: web\n", "  name: web\n  managedFields: []\n"),
        400,
        "metadata.managedFields must be nil",
    )
    .await;
    expect(
        "fieldManager=x&force=true",
        &scale.replace("name: web", "name: other"),
        400,
        "the name of the object (other) does not match the name on the URL (web)",
    )
    .await;
    // Conflicts are found before duplicate fields, names and replica counts, as upstream merges first.
    let dup = scale.replace("  name: web\n", "  name: web\n  name: web\n");
    let conflict = r#"Apply failed with 1 conflict: conflict with "deployer": .spec.replicas"#;
    expect("fieldManager=x&fieldValidation=Strict", &dup, 409, conflict).await;
    expect("fieldManager=x", &scale.replace("replicas: 4", "replicas: -1"), 409, conflict).await;
    expect(
        "fieldManager=x&fieldValidation=Strict&force=true",
        &dup,
        400,
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map",
    )
    .await;
    // A stale resourceVersion in the Scale is a precondition failure on the parent.
    expect(
        "fieldManager=x&force=true",
        &scale.replace("  name: web\n", "  name: web\n  resourceVersion: \"1\"\n"),
        409,
        r#"Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again"#,
    )
    .await;
    assert_eq!(rv().await, before, "no failed apply writes");

    // A server-side dry run answers with the would-be Scale and writes nothing.
    let resp = apply("fieldManager=x&force=true&dryRun=All", scale).await.unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!((answer["spec"]["replicas"].as_i64(), answer["metadata"]["resourceVersion"].as_str()), (Some(4), Some(before.as_str())));
    assert_eq!(rv().await, before);
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "1");
    // Under Warn, duplicate fields of an accepted apply are a warning.
    let resp = apply("fieldManager=x&force=true", &dup).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        warnings(&resp),
        [r#"299 - "error converting YAML to JSON: yaml: unmarshal errors:   line 5: key \"name\" already set in map""#]
    );
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scalable_kind_applies_its_scale() {
    let s = ApiServer::start_default().await;
    let objects = "\
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs1}
spec:
  replicas: 1
  selector: {matchLabels: {app: rs1}}
  template:
    metadata: {labels: {app: rs1}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss1}
spec:
  replicas: 1
  serviceName: ss1
  selector: {matchLabels: {app: ss1}}
  template:
    metadata: {labels: {app: ss1}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc1}
spec:
  replicas: 1
  selector: {app: rc1}
  template:
    metadata: {labels: {app: rc1}}
    spec: {containers: [{name: c, image: nginx}]}
";
    s.kubectl_stdin_ok(&["apply", "--server-side", "--field-manager=owner", "-f", "-"], objects).await;
    let http = s.http();
    for (path, kind, api_version) in [
        ("apis/apps/v1/namespaces/default/replicasets/rs1", "rs/rs1", "apps/v1"),
        ("apis/apps/v1/namespaces/default/statefulsets/ss1", "sts/ss1", "apps/v1"),
        ("api/v1/namespaces/default/replicationcontrollers/rc1", "rc/rc1", "v1"),
    ] {
        let name = path.rsplit('/').next().unwrap();
        let body = format!("apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n");
        let resp = http
            .patch(format!("{}/{path}/scale?fieldManager=scaler&force=true", s.url()))
            .header("Content-Type", "application/apply-patch+yaml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!((answer["kind"].as_str(), answer["spec"]["replicas"].as_i64()), (Some("Scale"), Some(3)), "{path}");
        assert_eq!(answer["status"]["selector"], format!("app={name}"), "{path}");
        assert_eq!(s.kubectl_ok(&["get", kind, "-o", "jsonpath={.spec.replicas}"]).await, "3", "{path}");
        let managed: Value = serde_json::from_str(
            &s.kubectl_ok(&["get", kind, "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields}"]).await,
        )
        .unwrap();
        let scaler = managed.as_array().unwrap().iter().find(|m| m["manager"] == "scaler").expect("scaler entry");
        assert_eq!(
            (scaler["operation"].as_str(), scaler["subresource"].as_str(), scaler["apiVersion"].as_str()),
            (Some("Apply"), Some("scale"), Some(api_version)),
            "{path}"
        );
        assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}), "{path}");
    }
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
    // Upstream strict-decodes only after the merge: a conflict is reported first.
    let resp = http
        .patch(format!("{}/api/v1/namespaces/default/configmaps/dup?fieldManager=other&fieldValidation=Strict", s.url()))
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body.replace("\"1\"", "\"2\""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], r#"Apply failed with 1 conflict: conflict with "m": .data.a"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_of_kubectl_write_commands_changes_nothing() {
    let s = ApiServer::start_default().await;
    s.kubectl_stdin_ok(&["apply", "--server-side", "-f", "-"], DEPLOYMENT).await;
    let rv = || s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let before = rv().await;
    let stored: Value = serde_json::from_str(&s.kubectl_ok(&["get", "deploy", "web", "--show-managed-fields", "-o", "json"]).await).unwrap();
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
    // Each dry run answers with the object it would have written.
    let print = "jsonpath={.spec.replicas} {.metadata.labels.tier} {.metadata.resourceVersion}";
    let out = s.kubectl_stdin_ok(&["apply", "--server-side", "--dry-run=server", "-f", "-", "-o", print], &changed).await;
    assert_eq!(out, format!("3  {before}"));
    let out = s.kubectl_ok(&["patch", "deploy", "web", "--dry-run=server", "-p", r#"{"spec":{"replicas":9}}"#, "-o", print]).await;
    assert_eq!(out, format!("9  {before}"));
    let out = s.kubectl_ok(&["label", "deploy", "web", "tier=front", "--dry-run=server", "-o", print]).await;
    assert_eq!(out, format!("1 front {before}"));
    let out = s.kubectl_stdin_ok(&["replace", "--dry-run=server", "-f", "-", "-o", print], &changed).await;
    assert_eq!(out, format!("3  {before}"));
    let out = s.kubectl_ok(&["scale", "deploy", "web", "--replicas=7", "--dry-run=server", "-o", "name"]).await;
    assert_eq!(out, "deployment.apps/web\n");
    let out = s.kubectl_ok(&["patch", "deploy", "web", "--subresource=scale", "--dry-run=server", "-p", r#"{"spec":{"replicas":6}}"#, "-o", "jsonpath={.kind} {.spec.replicas}"]).await;
    assert_eq!(out, "Scale 6");
    let out = s.kubectl_ok(&["annotate", "deploy", "web", "note=x", "--dry-run=server"]).await;
    assert_eq!(out, "deployment.apps/web annotated (server dry run)\n");

    // Nothing was written: the stored object, managedFields included, is as before.
    assert_eq!(rv().await, before);
    let now: Value = serde_json::from_str(&s.kubectl_ok(&["get", "deploy", "web", "--show-managed-fields", "-o", "json"]).await).unwrap();
    assert_eq!(now, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subresource_tables_and_metadata_in_the_negotiated_version() {
    let s = ApiServer::start_default().await;
    s.kubectl_stdin_ok(&["apply", "-f", "-"], DEPLOYMENT).await;
    let http = s.http();
    let base = format!("{}/apis/apps/v1/namespaces/default/deployments", s.url());
    for accept in ["application/json;as=Table;v=v1beta1;g=meta.k8s.io", "application/json;as=Table;v=v1;g=meta.k8s.io"] {
        let version = if accept.contains("v1beta1") { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" };
        for target in [base.clone(), format!("{base}/web"), format!("{base}/web/status"), format!("{base}/web/scale")] {
            let resp = http.get(&target).header("Accept", accept).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{target}");
            assert_eq!(resp.headers()["content-type"], accept, "{target}");
            let table: Value = resp.json().await.unwrap();
            assert_eq!((table["kind"].as_str(), table["apiVersion"].as_str()), (Some("Table"), Some(version)), "{target}");
            // Rows carry the object's metadata in the Table's own version.
            let row = &table["rows"][0]["object"];
            assert_eq!((row["kind"].as_str(), row["apiVersion"].as_str()), (Some("PartialObjectMetadata"), Some(version)), "{target}");
            assert_eq!(row["metadata"]["name"], "web", "{target}");
        }
    }
    // kubectl's own Accept list gets the v1 Table with its full media type.
    let resp = http
        .get(format!("{base}/web/scale"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json;as=Table;v=v1;g=meta.k8s.io");
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "--subresource=scale", "-o", "custom-columns=D:.spec.replicas"]).await, "D\n1\n");

    let accept = "application/json;as=PartialObjectMetadata;v=v1beta1;g=meta.k8s.io";
    for target in [format!("{base}/web/status"), format!("{base}/web/scale")] {
        let resp = http.get(&target).header("Accept", accept).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{target}");
        assert_eq!(resp.headers()["content-type"], accept, "{target}");
        let m: Value = resp.json().await.unwrap();
        assert_eq!((m["kind"].as_str(), m["apiVersion"].as_str()), (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1beta1")));
        assert_eq!(m["metadata"]["name"], "web");
    }
    // A Scale is not a list.
    let resp = http
        .get(format!("{base}/web/scale"))
        .header("Accept", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "NotAcceptable");
    assert_eq!(status["message"], "you requested PartialObjectMetadataList, but the requested object is not a list (*autoscaling.Scale)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_and_evictions_honour_field_validation_and_dry_run() {
    let s = ApiServer::start_default().await;
    s.kubectl_ok(&["run", "p1", "--image=nginx"]).await;
    s.kubectl_ok(&["run", "p2", "--image=nginx"]).await;
    let http = s.http();
    let pods = format!("{}/api/v1/namespaces/default/pods", s.url());
    let post = |url: String, body: Value| http.post(url).json(&body).send();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"}, "target": {"kind": "Node", "name": "n1"}});
    let mut bogus = binding.clone();
    bogus["bogus"] = json!(1);
    let node = || s.kubectl_ok(&["get", "pod", "p1", "-o", "jsonpath={.spec.nodeName}"]);

    // Strict: 400 before anything is bound; a dry run binds nothing, on both binding paths.
    for url in [format!("{pods}/p1/binding"), format!("{}/api/v1/namespaces/default/bindings", s.url())] {
        let resp = post(format!("{url}?fieldValidation=Strict"), bogus.clone()).await.unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["message"],
            r#"Binding in version "v1" cannot be handled as a Binding: strict decoding error: unknown field "bogus""#
        );
        let resp = post(format!("{url}?dryRun=All"), binding.clone()).await.unwrap();
        assert_eq!(resp.status(), 201, "{url}");
        assert_eq!(node().await, "", "{url}");
    }
    // By default (Warn) the binding is made, with a warning and upstream's bare Success.
    let resp = post(format!("{pods}/p1/binding"), bogus).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(warnings(&resp), [r#"299 - "unknown field \"bogus\"""#]);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}));
    assert_eq!(node().await, "n1");

    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p2"}});
    let mut bogus = eviction.clone();
    bogus["bogus"] = json!(1);
    let resp = post(format!("{pods}/p2/eviction?fieldValidation=Strict"), bogus.clone()).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        r#"Eviction in version "v1" cannot be handled as a Eviction: strict decoding error: unknown field "bogus""#
    );
    // The request's dryRun reaches the eviction's delete.
    let resp = post(format!("{pods}/p2/eviction?dryRun=All"), eviction).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(s.kubectl_ok(&["get", "pod", "p2", "-o", "name"]).await, "pod/p2\n");
    let resp = post(format!("{pods}/p2/eviction"), bogus).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(warnings(&resp), [r#"299 - "unknown field \"bogus\"""#]);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}));
    let err = s.kubectl_err(&["get", "pod", "p2"]).await;
    assert_eq!(err.trim(), r#"Error from server (NotFound): pods "p2" not found"#);
}
