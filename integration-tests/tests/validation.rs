//! Defaulting, validation, server-side field validation and dry run, end to end: raw HTTP for
//! exact status bodies and headers, kubectl 1.33 for what users see.

use integration_tests::ApiServer;
use serde_json::{Value, json};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str, selector: &str, template: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": selector}},
            "template": {"metadata": {"labels": {"app": template}},
                         "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]}},
        },
    })
}

/// POST/PUT/PATCH `body` and return (status, Warning headers, JSON body).
async fn send(s: &ApiServer, method: reqwest::Method, path: &str, ctype: &str, body: String) -> (u16, Vec<String>, Value) {
    let resp = s
        .http()
        .request(method, format!("{}{path}", s.url()))
        .header(reqwest::header::CONTENT_TYPE, ctype)
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all(reqwest::header::WARNING)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (code, warnings, body)
}

async fn post(s: &ApiServer, path: &str, body: &Value) -> (u16, Vec<String>, Value) {
    send(s, reqwest::Method::POST, path, "application/json", body.to_string()).await
}

/// Assert a 422 with exactly one cause.
fn assert_invalid(resp: &(u16, Vec<String>, Value), message: &str, field: &str, reason: &str) {
    let (code, _, body) = resp;
    assert_eq!(*code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    assert_eq!(body["message"], message, "{body}");
    let causes = body["details"]["causes"].as_array().unwrap_or_else(|| panic!("no causes: {body}"));
    assert_eq!(causes.len(), 1, "{body}");
    assert_eq!(causes[0]["field"], field, "{body}");
    assert_eq!(causes[0]["reason"], reason, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_get_422_with_upstream_causes() {
    let s = ApiServer::start_default().await;

    // A selector that does not match the template.
    let r = post(&s, DEPLOYMENTS, &deployment("web", "web", "other")).await;
    assert_invalid(
        &r,
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
        "spec.template.metadata.labels",
        "FieldValueInvalid",
    );
    assert_eq!(r.2["details"]["group"], "apps");
    assert_eq!(r.2["details"]["kind"], "Deployment");

    // A pod without an image.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
    let r = post(&s, "/api/v1/namespaces/default/pods", &pod).await;
    assert_invalid(&r, "Pod \"p\" is invalid: spec.containers[0].image: Required value", "spec.containers[0].image", "FieldValueRequired");

    // A service port out of range.
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 70000, "targetPort": 8080}]}});
    let r = post(&s, "/api/v1/namespaces/default/services", &svc).await;
    assert_invalid(
        &r,
        "Service \"svc\" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.ports[0].port",
        "FieldValueInvalid",
    );

    // A job whose pods would restart forever (restartPolicy defaults to Always).
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let r = post(&s, "/apis/batch/v1/namespaces/default/jobs", &job).await;
    assert_invalid(
        &r,
        "Job.batch \"j\" is invalid: spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        "spec.template.spec.restartPolicy",
        "FieldValueRequired",
    );

    // Requests above limits.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "greedy"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}});
    let r = post(&s, "/api/v1/namespaces/default/pods", &pod).await;
    assert_invalid(
        &r,
        "Pod \"greedy\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
        "spec.containers[0].resources.requests",
        "FieldValueInvalid",
    );

    // A deployment's selector cannot change.
    let (code, _, created) = post(&s, DEPLOYMENTS, &deployment("web", "web", "web")).await;
    assert_eq!(code, 201, "{created}");
    let mut changed = deployment("web", "web2", "web2");
    changed["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let r = send(&s, reqwest::Method::PUT, &format!("{DEPLOYMENTS}/web"), "application/json", changed.to_string()).await;
    assert_invalid(
        &r,
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        "spec.selector",
        "FieldValueInvalid",
    );

    // Most of a pod's spec is fixed once created; its image is not.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fixed"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1", "ports": [{"containerPort": 80}]}]}});
    let (code, _, _) = post(&s, "/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(code, 201);
    let path = "/api/v1/namespaces/default/pods/fixed";
    let patch = r#"{"spec":{"containers":[{"name":"c","image":"busybox:2","ports":[{"containerPort":80}]}]}}"#;
    let (code, _, body) = send(&s, reqwest::Method::PATCH, path, "application/merge-patch+json", patch.into()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["containers"][0]["image"], "busybox:2");
    let patch = r#"{"spec":{"containers":[{"name":"c","image":"busybox:2","ports":[{"containerPort":81}]}]}}"#;
    let (code, _, body) = send(&s, reqwest::Method::PATCH, path, "application/merge-patch+json", patch.into()).await;
    assert_eq!(code, 422, "{body}");
    let cause = &body["details"]["causes"][0];
    assert_eq!(cause["field"], "spec");
    assert_eq!(cause["reason"], "FieldValueForbidden");
    let msg = cause["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{msg}"
    );

    // Unsupported option values.
    let (code, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/namespaces/default/configmaps?fieldValidation=Loose",
        "application/json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}).to_string(),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
    let (code, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/namespaces/default/configmaps?dryRun=Some",
        "application/json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}).to_string(),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["message"], "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\"");

    // Malformed quantities are a decoding error.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"limits": {"memory": "lots"}}}]}});
    let (code, _, body) = post(&s, "/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_validation_strict_warn_and_ignore() {
    let s = ApiServer::start_default().await;
    let mut body = deployment("strict", "web", "web");
    body["spec"]["foo"] = json!(1);
    body["spec"]["template"]["spec"]["containers"][0]["bar"] = json!("x");

    let (code, warnings, status) = post(&s, &format!("{DEPLOYMENTS}?fieldValidation=Strict"), &body).await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.foo\", unknown field \"spec.template.spec.containers[0].bar\""
    );
    assert!(warnings.is_empty());

    // Warn is the default.
    for (name, query) in [("warned", "?fieldValidation=Warn"), ("defaulted", "")] {
        let mut b = body.clone();
        b["metadata"]["name"] = json!(name);
        let (code, warnings, created) = post(&s, &format!("{DEPLOYMENTS}{query}"), &b).await;
        assert_eq!(code, 201, "{created}");
        assert_eq!(
            warnings,
            [r#"299 - "unknown field \"spec.foo\"""#, r#"299 - "unknown field \"spec.template.spec.containers[0].bar\"""#]
        );
        assert!(created["spec"].get("foo").is_none());
    }

    let mut b = body.clone();
    b["metadata"]["name"] = json!("ignored");
    let (code, warnings, _) = post(&s, &format!("{DEPLOYMENTS}?fieldValidation=Ignore"), &b).await;
    assert_eq!(code, 201);
    assert!(warnings.is_empty());

    // Duplicate fields in JSON, in document order with the unknown ones.
    let dup = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"dup","name":"dup"},
        "spec":{"replicas":1,"replicas":2,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"pause"}]}}}}"#;
    let (code, _, status) =
        send(&s, reqwest::Method::POST, &format!("{DEPLOYMENTS}?fieldValidation=Strict"), "application/json", dup.into()).await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: duplicate field \"metadata.name\", duplicate field \"spec.replicas\""
    );

    // YAML bodies: go-yaml's duplicate-key errors first, then unknown fields.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  name: y\n  bogus: 1\ndata:\n  a: b\n";
    let (code, _, status) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        "application/yaml",
        yaml.into(),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map, unknown field \"metadata.bogus\""
    );
    let (code, warnings, _) =
        send(&s, reqwest::Method::POST, "/api/v1/namespaces/default/configmaps", "application/yaml", yaml.into()).await;
    assert_eq!(code, 201);
    assert_eq!(warnings, [r#"299 - "line 5: key \"name\" already set in map""#, r#"299 - "unknown field \"metadata.bogus\"""#]);

    // Patches: the patched object is checked.
    let path = format!("{DEPLOYMENTS}/ignored");
    let (code, _, status) = send(
        &s,
        reqwest::Method::PATCH,
        &format!("{path}?fieldValidation=Strict"),
        "application/merge-patch+json",
        r#"{"spec":{"foo":1}}"#.into(),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["message"], "strict decoding error: unknown field \"spec.foo\"");
    let (code, warnings, _) =
        send(&s, reqwest::Method::PATCH, &path, "application/merge-patch+json", r#"{"spec":{"paused":true,"paused":false,"foo":1}}"#.into())
            .await;
    assert_eq!(code, 200);
    assert_eq!(warnings, [r#"299 - "duplicate field \"spec.paused\"""#, r#"299 - "unknown field \"spec.foo\"""#]);
    let (code, _, status) = send(
        &s,
        reqwest::Method::PATCH,
        &format!("{path}?fieldValidation=Strict"),
        "application/json-patch+json",
        r#"[{"op":"add","path":"/spec/paused","value":true,"extra":1}]"#.into(),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["message"], "strict decoding error: json patch unknown field \"[0].extra\"");
}

const UNKNOWN_FIELD_MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: 1
  replica: 2
  selector:
    matchLabels:
      app: typo
  template:
    metadata:
      labels:
        app: typo
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reports_unknown_fields() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("typo.yaml", UNKNOWN_FIELD_MANIFEST);
    let path = file.to_str().unwrap();
    let err = s.kubectl_err(&["create", "-f", path]).await;
    assert!(
        err.contains(&format!(
            "Error from server (BadRequest): error when creating \"{path}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\""
        )),
        "{err}"
    );
    assert!(s.kubectl_err(&["get", "deployment", "typo"]).await.contains("NotFound"));

    let out = s.kubectl(&["create", "--validate=warn", "-f", path]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Warning: unknown field \"spec.replica\""), "{stderr}");
    let replicas = s.kubectl_ok(&["get", "deployment", "typo", "-o", "jsonpath={.spec.replicas}"]).await;
    assert_eq!(replicas, "1");
}

async fn get_json(s: &ApiServer, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&s.kubectl_ok(&all).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_generators_get_upstream_defaults() {
    let s = ApiServer::start_default().await;
    let creates: &[&[&str]] = &[
        &["create", "deployment", "web", "--image=nginx"],
        &["create", "service", "clusterip", "svc", "--tcp=80:8080"],
        &["create", "configmap", "cm", "--from-literal=a=b"],
        &["create", "secret", "generic", "sec", "--from-literal=user=admin"],
        &["create", "job", "once", "--image=busybox:1.36"],
        &["create", "cronjob", "tick", "--image=busybox:1.36", "--schedule=*/5 * * * *"],
        &["create", "namespace", "team"],
        &["create", "serviceaccount", "robot"],
        &["create", "role", "reader", "--verb=get,list", "--resource=pods"],
        &["create", "rolebinding", "read", "--role=reader", "--user=alice"],
    ];
    for args in creates {
        s.kubectl_ok(args).await;
    }

    let d = get_json(&s, &["deployment", "web"]).await;
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"], json!({}));
    let c = &pod["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["resources"], json!({}));

    let svc = get_json(&s, &["service", "svc"]).await;
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    assert_eq!(svc["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);

    let sec = get_json(&s, &["secret", "sec"]).await;
    assert_eq!(sec["type"], "Opaque");
    assert_eq!(sec["data"]["user"], "YWRtaW4=");
    assert_eq!(get_json(&s, &["configmap", "cm"]).await["data"]["a"], "b");

    let job = get_json(&s, &["job", "once"]).await;
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["manualSelector"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(spec["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
    let labels = json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "once",
        "controller-uid": uid, "job-name": "once"});
    assert_eq!(spec["template"]["metadata"]["labels"], labels);
    assert_eq!(job["metadata"]["labels"], labels);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(spec["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");

    let cj = get_json(&s, &["cronjob", "tick"]).await;
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["suspend"], false);
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);

    let ns = get_json(&s, &["namespace", "team"]).await;
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(get_json(&s, &["serviceaccount", "robot"]).await["metadata"]["name"], "robot");
    assert_eq!(get_json(&s, &["role", "reader"]).await["rules"][0]["verbs"], json!(["get", "list"]));
    let rb = get_json(&s, &["rolebinding", "read"]).await;
    assert_eq!(rb["subjects"][0], json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}));

    // Pods also pass through admission: service account, tolerations, priority.
    s.kubectl_ok(&["run", "one", "--image=nginx:1.27", "--restart=Never"]).await;
    let p = get_json(&s, &["pod", "one"]).await;
    let spec = &p["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );
    // With the account stored, its token is mounted.
    s.kubectl_ok(&["create", "serviceaccount", "default", "-n", "team"]).await;
    s.kubectl_ok(&["run", "two", "-n", "team", "--image=nginx"]).await;
    let p = get_json(&s, &["pod", "two", "-n", "team"]).await;
    let vol = &p["spec"]["volumes"][0];
    assert!(vol["name"].as_str().unwrap().starts_with("kube-api-access-"), "{vol}");
    assert_eq!(p["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(get_json(&s, &["priorityclass", "system-node-critical"]).await["value"], 2000001000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_dry_run_persists_nothing() {
    let s = ApiServer::start_default().await;

    // create --dry-run=server prints the defaulted object and stores nothing.
    let out = s.kubectl_ok(&["create", "deployment", "dry", "--image=nginx:1.27", "--dry-run=server", "-o", "yaml"]).await;
    let d: Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(d["metadata"]["name"], "dry");
    assert!(d["metadata"]["uid"].is_string(), "{out}");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert!(s.kubectl_err(&["get", "deployment", "dry"]).await.contains("NotFound"));

    // A dry-run create of a taken name still conflicts.
    s.kubectl_ok(&["create", "configmap", "keep", "--from-literal=a=1"]).await;
    let err = s.kubectl_err(&["create", "configmap", "keep", "--from-literal=a=2", "--dry-run=server"]).await;
    assert!(err.contains("configmaps \"keep\" already exists"), "{err}");

    // delete --dry-run=server reports the delete and keeps the object.
    let out = s.kubectl_ok(&["delete", "configmap", "keep", "--dry-run=server"]).await;
    assert_eq!(out.trim(), "configmap \"keep\" deleted (server dry run)");
    assert_eq!(s.kubectl_ok(&["get", "configmap", "keep", "-o", "jsonpath={.data.a}"]).await, "1");

    // apply --dry-run=server, for a new object and for a change.
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n";
    let out = s.kubectl_stdin_ok(&["apply", "--dry-run=server", "-f", "-"], manifest).await;
    assert_eq!(out.trim(), "configmap/applied created (server dry run)");
    assert!(s.kubectl_err(&["get", "configmap", "applied"]).await.contains("NotFound"));
    s.kubectl_stdin_ok(&["apply", "-f", "-"], manifest).await;
    let changed = manifest.replace("\"1\"", "\"2\"");
    let out = s.kubectl_stdin_ok(&["apply", "--dry-run=server", "-f", "-"], &changed).await;
    assert_eq!(out.trim(), "configmap/applied configured (server dry run)");
    assert_eq!(s.kubectl_ok(&["get", "configmap", "applied", "-o", "jsonpath={.data.a}"]).await, "1");

    // DeleteOptions in the body.
    let resp = s
        .http()
        .delete(format!("{}/api/v1/namespaces/default/configmaps/applied", s.url()))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(s.kubectl_ok(&["get", "configmap", "applied", "-o", "jsonpath={.data.a}"]).await, "1");

    // Invalid objects fail a dry run like a real one.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nope"}, "spec": {"containers": [{"name": "c"}]}});
    let (code, _, _) = post(&s, "/api/v1/namespaces/default/pods?dryRun=All", &pod).await;
    assert_eq!(code, 422);
}

/// The single cause of a 422 as (field, reason, message), and the Status message.
fn only_cause(resp: &(u16, Vec<String>, Value)) -> (String, String, String, String) {
    let (code, _, body) = resp;
    assert_eq!(*code, 422, "{body}");
    let causes = body["details"]["causes"].as_array().unwrap_or_else(|| panic!("no causes: {body}"));
    assert_eq!(causes.len(), 1, "{body}");
    let c = &causes[0];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    (s(&c["field"]), s(&c["reason"]), s(&c["message"]), s(&body["message"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_labels_selectors_quantities_and_types_get_upstream_errors() {
    let s = ApiServer::start_default().await;
    let cm = |meta: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta});
    const CMS: &str = "/api/v1/namespaces/default/configmaps";

    let r = post(&s, CMS, &cm(json!({"name": "Bad_Name"}))).await;
    let subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    assert_eq!(
        only_cause(&r),
        ("metadata.name".into(), "FieldValueInvalid".into(), format!("Invalid value: \"Bad_Name\": {subdomain}"),
         format!("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {subdomain}"))
    );

    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "my.svc"}, "spec": {"ports": [{"port": 80}]}});
    let r = post(&s, "/api/v1/namespaces/default/services", &svc).await;
    let (field, reason, message, _) = only_cause(&r);
    assert_eq!((field.as_str(), reason.as_str()), ("metadata.name", "FieldValueInvalid"));
    assert_eq!(message, "Invalid value: \"my.svc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");

    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}});
    let r = post(&s, "/api/v1/namespaces", &ns).await;
    let (field, _, message, _) = only_cause(&r);
    assert_eq!(field, "metadata.name");
    assert_eq!(message, "Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");

    let r = post(&s, CMS, &cm(json!({"name": "l1", "labels": {"bad key": "v"}}))).await;
    let (field, _, message, _) = only_cause(&r);
    assert_eq!(field, "metadata.labels");
    assert_eq!(message, "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    let r = post(&s, CMS, &cm(json!({"name": "l2", "labels": {"k": "-bad"}}))).await;
    let (field, _, message, _) = only_cause(&r);
    assert_eq!(field, "metadata.labels");
    assert_eq!(message, "Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
    let r = post(&s, CMS, &cm(json!({"name": "a1", "annotations": {"bad key": "v"}}))).await;
    assert_eq!(
        only_cause(&r),
        ("metadata.annotations".into(), "FieldValueInvalid".into(),
         "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into(),
         "ConfigMap \"a1\" is invalid: metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into())
    );

    // A deployment without a selector: required, and its template matches nothing.
    let mut d = deployment("nosel", "x", "web");
    d["spec"].as_object_mut().unwrap().remove("selector");
    let (code, _, body) = post(&s, DEPLOYMENTS, &d).await;
    assert_eq!(code, 422, "{body}");
    let causes: Vec<(String, String)> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["field"].as_str().unwrap().to_string(), c["message"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        causes,
        [
            ("spec.selector".to_string(), "Required value".to_string()),
            ("spec.template.metadata.labels".to_string(), "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`".to_string()),
        ]
    );

    // Negative quantities.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "neg"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "-1"}}}]}});
    let r = post(&s, "/api/v1/namespaces/default/pods", &pod).await;
    let (field, reason, message, _) = only_cause(&r);
    assert_eq!(
        (field.as_str(), reason.as_str(), message.as_str()),
        ("spec.containers[0].resources.requests[cpu]", "FieldValueInvalid", "Invalid value: \"-1\": must be greater than or equal to 0")
    );

    // A Job's pod template is immutable.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}}}});
    let (code, _, created) = post(&s, "/apis/batch/v1/namespaces/default/jobs", &job).await;
    assert_eq!(code, 201, "{created}");
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}"#;
    let r = send(&s, reqwest::Method::PATCH, "/apis/batch/v1/namespaces/default/jobs/once", "application/strategic-merge-patch+json", patch.into()).await;
    let (field, reason, message, _) = only_cause(&r);
    assert_eq!((field.as_str(), reason.as_str()), ("spec.template", "FieldValueInvalid"));
    assert!(message.ends_with(": field is immutable"), "{message}");

    // Wrong JSON types are decoding errors, worded as Go's decoder does.
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": {"a": 2}});
    let (code, _, body) = post(&s, CMS, &bad).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")), "{body}");
    assert_eq!(
        body["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    );
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": "80"}]}]}});
    let (code, _, body) = post(&s, "/api/v1/namespaces/default/pods", &bad).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
    );
}

/// (field, reason, message) of every cause of a 422.
fn all_causes(resp: &(u16, Vec<String>, Value)) -> Vec<(String, String, String)> {
    let (code, _, body) = resp;
    assert_eq!(*code, 422, "{body}");
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    body["details"]["causes"].as_array().unwrap_or_else(|| panic!("no causes: {body}")).iter().map(|c| (s(&c["field"]), s(&c["reason"]), s(&c["message"]))).collect()
}

fn cause(field: &str, reason: &str, message: &str) -> (String, String, String) {
    (field.into(), reason.into(), message.into())
}

/// A 400 whose message says the body cannot be decoded.
fn decode_failure(resp: &(u16, Vec<String>, Value)) -> String {
    let (code, _, body) = resp;
    assert_eq!((*code, body["reason"].as_str()), (400, Some("BadRequest")), "{body}");
    body["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_rules_and_decode_errors_match_upstream() {
    let s = ApiServer::start_default().await;
    let apps = |kind: &str, spec: Value| json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, "spec": spec});
    let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let mismatch = cause(
        "spec.template.metadata.labels",
        "FieldValueInvalid",
        "Invalid value: map[string]string{\"app\":\"w\"}: `selector` does not match template `labels`",
    );
    let required = cause("spec.selector", "FieldValueRequired", "Required value");

    // Without a selector: required for ReplicaSets and StatefulSets, and nothing is matched; a
    // DaemonSet only reports the mismatch.
    let r = post(&s, "/apis/apps/v1/namespaces/default/replicasets", &apps("ReplicaSet", json!({"template": template}))).await;
    assert_eq!(all_causes(&r), [required.clone(), mismatch.clone()]);
    let r = post(&s, "/apis/apps/v1/namespaces/default/statefulsets", &apps("StatefulSet", json!({"serviceName": "w", "template": template}))).await;
    assert_eq!(all_causes(&r), [required.clone(), mismatch.clone()]);
    let r = post(&s, "/apis/apps/v1/namespaces/default/daemonsets", &apps("DaemonSet", json!({"template": template}))).await;
    assert_eq!(all_causes(&r), [mismatch.clone()]);
    // An empty selector is a different error.
    let r = post(&s, DEPLOYMENTS, &apps("Deployment", json!({"selector": {}, "template": template}))).await;
    assert_eq!(
        all_causes(&r),
        [cause(
            "spec.selector",
            "FieldValueInvalid",
            "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        )]
    );

    // Long-running workloads forbid activeDeadlineSeconds; template labels are on `spec.template.labels`.
    let mut t = template.clone();
    t["spec"]["activeDeadlineSeconds"] = json!(30);
    t["metadata"]["labels"]["tier"] = json!("-web");
    let r = post(&s, DEPLOYMENTS, &apps("Deployment", json!({"selector": {"matchLabels": {"app": "w"}}, "template": t}))).await;
    assert_eq!(
        all_causes(&r),
        [
            cause("spec.template.labels", "FieldValueInvalid", "Invalid value: \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
            cause("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden", "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"),
        ]
    );
    // v1.33 does not validate a StatefulSet's pod spec (its pods fail later instead).
    let mut t = template.clone();
    t["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    let (code, _, body) = post(&s, "/apis/apps/v1/namespaces/default/statefulsets",
        &apps("StatefulSet", json!({"serviceName": "w", "selector": {"matchLabels": {"app": "w"}}, "template": t}))).await;
    assert_eq!(code, 201, "{body}");

    // A pod's activeDeadlineSeconds may not be removed; Go prints the nil pointer as "null".
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deadline"},
        "spec": {"activeDeadlineSeconds": 60, "containers": [{"name": "c", "image": "busybox"}]}});
    let (code, _, body) = post(&s, "/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(code, 201, "{body}");
    let r = send(&s, reqwest::Method::PATCH, "/api/v1/namespaces/default/pods/deadline", "application/merge-patch+json",
        r#"{"spec":{"activeDeadlineSeconds":null}}"#.into()).await;
    assert_eq!(
        all_causes(&r),
        [cause("spec.activeDeadlineSeconds", "FieldValueInvalid", "Invalid value: \"null\": must not update from a positive integer to nil value")]
    );

    // Decoding: int-or-strings read anything but a string as an int32, with the field's context.
    let mut d = apps("Deployment", json!({"selector": {"matchLabels": {"app": "w"}}, "template": template,
        "strategy": {"rollingUpdate": {"maxSurge": true}}}));
    assert_eq!(
        decode_failure(&post(&s, DEPLOYMENTS, &d).await),
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32"
    );
    d["spec"]["strategy"] = json!({});
    d["spec"]["replicas"] = json!(4_000_000_000u64);
    assert_eq!(
        decode_failure(&post(&s, DEPLOYMENTS, &d).await),
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number 4000000000 into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    // Named Go types, base64 data.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": "1"}}]}});
    assert_eq!(
        decode_failure(&post(&s, "/api/v1/namespaces/default/pods", &pod).await),
        "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field ResourceRequirements.spec.containers.resources.limits of type v1.ResourceList"
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "data": {"a": "not base64"}});
    assert_eq!(
        decode_failure(&post(&s, "/api/v1/namespaces/default/secrets", &secret).await),
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );
    // A malformed quantity stops decoding, so it wins over an earlier wrong type.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t", "labels": {"a": 1}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"cpu": true}}}]}});
    assert_eq!(
        decode_failure(&post(&s, "/api/v1/namespaces/default/pods", &pod).await),
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    // Under fieldValidation=Strict a wrong type is fatal and reported before unknown fields.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "bogus": 1, "data": {"a": 2}});
    let r = send(&s, reqwest::Method::POST, "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json", cm.to_string()).await;
    assert_eq!(
        decode_failure(&r),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "bogus": 1, "data": {"a": "2"}});
    let r = send(&s, reqwest::Method::POST, "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json", cm.to_string()).await;
    assert_eq!(decode_failure(&r), "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\"");
}
