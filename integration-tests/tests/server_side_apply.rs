//! Server-side apply and managedFields against the real kube-apiserver binary: kubectl 1.33's
//! `apply --server-side` (create, no-op re-apply, changes, conflicts, forced takeover, pruning
//! of dropped fields), managedFields of ordinary writes, the raw API's errors, and kube-rs's
//! `Patch::Apply`.

use std::collections::BTreeMap;

use integration_tests::ApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use serde_json::{Value, json};

const DEPLOY_V1: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  replicas: 2
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
        image: registry.k8s.io/pause:3.9
";

async fn get_json(s: &ApiServer, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&s.kubectl_ok(&all).await).expect("kubectl get -o json prints JSON")
}

/// The managedFields entry of `manager` with `operation`, if any.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or("").to_string(),
                        e["operation"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_lifecycle() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("web.yaml", DEPLOY_V1);
    let path = file.to_str().unwrap();

    // Create.
    let out = s.kubectl_ok(&["apply", "--server-side", "-f", path]).await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(managers(&d), [("kubectl".to_string(), "Apply".to_string())]);
    let e = entry(&d, "kubectl", "Apply").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    let f = &e["fieldsV1"];
    assert_eq!(
        f["f:metadata"]["f:labels"],
        json!({"f:app": {}, "f:tier": {}})
    );
    assert_eq!(f["f:spec"]["f:replicas"], json!({}));
    assert_eq!(
        f["f:spec"]["f:selector"],
        json!({}),
        "a LabelSelector is atomic"
    );
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    let rv = d["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // Applying the same configuration again is a no-op.
    s.kubectl_ok(&["apply", "--server-side", "-f", path]).await;
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(
        d["metadata"]["resourceVersion"],
        rv.as_str(),
        "re-apply must not write"
    );

    // A changed configuration is applied.
    let v2 = DEPLOY_V1.replace("pause:3.9", "pause:3.10");
    std::fs::write(&file, &v2).unwrap();
    s.kubectl_ok(&["apply", "--server-side", "-f", path]).await;
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/pause:3.10"
    );
    assert_ne!(d["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(d["metadata"]["generation"], 2);

    // Another manager changing an owned field conflicts...
    let other = s.write_file(
        "other.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n",
    );
    let other = other.to_str().unwrap();
    let err = s
        .kubectl_err(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            other,
        ])
        .await;
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "unexpected kubectl error:\n{err}"
    );
    assert!(
        err.contains("--force-conflicts"),
        "kubectl explains how to resolve:\n{err}"
    );
    assert_eq!(
        get_json(&s, &["deployment", "web"]).await["spec"]["replicas"],
        2
    );

    // ...unless forced, which moves ownership.
    s.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        other,
    ])
    .await;
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(d["spec"]["replicas"], 5);
    let theirs = entry(&d, "other", "Apply").expect("other's entry");
    assert_eq!(theirs["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let ours = entry(&d, "kubectl", "Apply").expect("kubectl keeps its other fields");
    assert!(
        ours["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "{ours}"
    );
    assert!(
        ours["fieldsV1"]["f:spec"].get("f:template").is_some(),
        "{ours}"
    );

    // Dropping fields from the configuration removes those only this manager owned.
    let v3 = v2
        .replace("    tier: front\n", "")
        .replace("  replicas: 2\n", "");
    std::fs::write(&file, &v3).unwrap();
    s.kubectl_ok(&["apply", "--server-side", "-f", path]).await;
    let d = get_json(&s, &["deployment", "web"]).await;
    assert_eq!(
        d["metadata"]["labels"],
        json!({"app": "web"}),
        "the dropped label is gone"
    );
    assert_eq!(
        d["spec"]["replicas"], 5,
        "replicas belongs to the other manager"
    );
    let ours = entry(&d, "kubectl", "Apply").unwrap();
    assert_eq!(
        ours["fieldsV1"]["f:metadata"]["f:labels"],
        json!({"f:app": {}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_writes_record_update_managers() {
    let s = ApiServer::start_default().await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n";
    s.kubectl_stdin_ok(&["create", "-f", "-"], cm).await;
    let c = get_json(&s, &["configmap", "settings"]).await;
    let created = entry(&c, "kubectl-create", "Update").expect("kubectl-create entry");
    assert_eq!(created["apiVersion"], "v1");
    assert_eq!(created["fieldsType"], "FieldsV1");
    assert_eq!(
        created["fieldsV1"],
        json!({"f:data": {".": {}, "f:color": {}}})
    );
    assert!(created.get("subresource").is_none());

    // Objects the server creates itself are the kube-apiserver's.
    let ns = get_json(&s, &["namespace", "default"]).await;
    let boot = entry(&ns, "kube-apiserver", "Update")
        .expect("kube-apiserver entry on the default namespace");
    assert_eq!(
        boot["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}}),
        "defaults count, what the strategy adds (spec.finalizers) does not"
    );

    // Each kubectl verb names itself; untouched entries stay.
    s.kubectl_ok(&["label", "configmap", "settings", "team=blue"])
        .await;
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"color":"green"}}"#,
    ])
    .await;
    let c = get_json(&s, &["configmap", "settings"]).await;
    assert_eq!(
        entry(&c, "kubectl-label", "Update").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}})
    );
    assert_eq!(
        entry(&c, "kubectl-patch", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {"f:color": {}}})
    );
    assert_eq!(
        entry(&c, "kubectl-create", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {}}),
        "the patched value moved to kubectl-patch; the map itself stays with its creator"
    );

    // Client-side apply's manager is what a server-side applier then conflicts with.
    let csa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: csa\ndata:\n  key: one\n";
    s.kubectl_stdin_ok(&["apply", "-f", "-"], csa).await;
    let changed = s.write_file("csa2.yaml", &csa.replace("one", "two"));
    let err = s
        .kubectl_err(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            changed.to_str().unwrap(),
        ])
        .await;
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.key"),
        "unexpected kubectl error:\n{err}"
    );

    // Status writes are recorded with their subresource.
    s.kubectl_stdin_ok(&["create", "-f", "-"], DEPLOY_V1).await;
    s.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":1}}"#,
    ])
    .await;
    let d = get_json(&s, &["deployment", "web"]).await;
    let status = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "status")
        .unwrap_or_else(|| panic!("no status entry in {}", d["metadata"]["managedFields"]));
    assert_eq!(status["manager"], "kubectl-patch");
    assert_eq!(status["operation"], "Update");
    // The Deployment was created with `status: {}` (Go's zero status), so the map itself is
    // nobody's: only the field the patch added is owned.
    assert_eq!(
        status["fieldsV1"],
        json!({"f:status": {"f:observedGeneration": {}}})
    );
    let create = entry(&d, "kubectl-create", "Update").unwrap();
    assert!(
        create["fieldsV1"].get("f:status").is_none(),
        "status is not tracked on the main resource"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_api_errors_and_kube_rs_apply() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let url = format!("{}/api/v1/namespaces/default/configmaps/raw", s.url());
    let body =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"1"}}"#;

    // fieldManager is required for apply.
    let r = http
        .patch(&url)
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let st: Value = r.json().await.unwrap();
    assert_eq!(
        st["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(st["details"]["causes"][0]["field"], "fieldManager");

    // force belongs to apply only.
    let r = http
        .patch(format!("{url}?force=true"))
        .header("Content-Type", "application/merge-patch+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);

    // Apply creates (201), then conflicts come back as a structured 409.
    let apply = |mgr: &'static str, body: &'static str| {
        http.patch(format!("{url}?fieldManager={mgr}"))
            .header("Content-Type", "application/apply-patch+yaml")
            .body(body)
            .send()
    };
    let r = apply("first", body).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = apply(
        "second",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\ndata:\n  a: '2'\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let st: Value = r.json().await.unwrap();
    assert_eq!(st["reason"], "Conflict");
    assert_eq!(
        st["message"],
        "Apply failed with 1 conflict: conflict with \"first\": .data.a"
    );
    assert_eq!(
        st["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"first\"", "field": ".data.a"}])
    );
    let r = apply(
        "second",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400, "name mismatch");
    let r = apply(
        "second",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"spec":{}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let st: Value = r.json().await.unwrap();
    assert_eq!(
        st["message"],
        "failed to create typed patch object (/raw; /v1, Kind=ConfigMap): .spec: field not declared in schema"
    );
    assert!(
        st.get("reason").is_none(),
        "upstream leaves this error unclassified: {st}"
    );

    // Apply does not create in a namespace that does not exist.
    let r = http
        .patch(format!(
            "{}/api/v1/namespaces/nope/configmaps/raw?fieldManager=first",
            s.url()
        ))
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let st: Value = r.json().await.unwrap();
    assert_eq!(st["message"], "namespaces \"nope\" not found");

    // kube-rs: Patch::Apply creates, re-applies and is refused on conflicts unless forced.
    let api: Api<ConfigMap> = Api::default_namespaced(s.client().await);
    let cm = |v: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some("kube-rs".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), v.to_string())])),
        ..Default::default()
    };
    let created = api
        .patch(
            "kube-rs",
            &PatchParams::apply("mgr"),
            &Patch::Apply(cm("1")),
        )
        .await
        .unwrap();
    let mf = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("mgr"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let again = api
        .patch(
            "kube-rs",
            &PatchParams::apply("mgr"),
            &Patch::Apply(cm("1")),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
    match api
        .patch(
            "kube-rs",
            &PatchParams::apply("mgr2"),
            &Patch::Apply(cm("2")),
        )
        .await
    {
        Err(kube::Error::Api(ae)) => {
            assert_eq!(ae.code, 409);
            assert_eq!(ae.reason, "Conflict");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = api
        .patch(
            "kube-rs",
            &PatchParams::apply("mgr2").force(),
            &Patch::Apply(cm("2")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["v"], "2");
    let owners: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.manager)
        .collect();
    assert_eq!(owners, ["mgr2"], "mgr lost its only field");
}
