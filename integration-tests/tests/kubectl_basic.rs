//! kubectl 1.33 against the real kube-apiserver binary: discovery, CRUD, output formats,
//! selectors, chunked lists, watch, and namespaces.

use std::collections::BTreeSet;
use std::process::Stdio;

use integration_tests::{ApiServer, within};
use tokio::io::{AsyncBufReadExt, BufReader};

const APP_MANIFESTS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  labels:
    app: x
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: x
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
        image: registry.k8s.io/pause:3.10
";

fn lines(s: &str) -> BTreeSet<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_version_api_versions_api_resources() {
    let s = ApiServer::start_default().await;

    let v: serde_json::Value = serde_json::from_str(&s.kubectl_ok(&["version", "-o", "json"]).await).unwrap();
    let git = v["serverVersion"]["gitVersion"].as_str().unwrap_or_default();
    assert!(git.starts_with("v1.33"), "server gitVersion {git:?} in {v}");
    assert_eq!(v["serverVersion"]["major"], "1");

    let versions = lines(&s.kubectl_ok(&["api-versions"]).await);
    for gv in ["v1", "apps/v1"] {
        assert!(versions.contains(gv), "api-versions lacks {gv}: {versions:?}");
    }

    let table = s.kubectl_ok(&["api-resources"]).await;
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
    let find = |name: &str, version: &str| {
        rows.iter()
            .find(|r| r.first() == Some(&name) && r.contains(&version))
            .unwrap_or_else(|| panic!("api-resources has no {name} {version}:\n{table}"))
            .clone()
    };
    assert_eq!(find("pods", "v1"), ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(
        find("deployments", "apps/v1"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        find("configmaps", "v1"),
        ["configmaps", "cm", "v1", "true", "ConfigMap"]
    );
    assert_eq!(
        find("namespaces", "v1"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(find("services", "v1"), ["services", "svc", "v1", "true", "Service"]);

    let names = lines(&s.kubectl_ok(&["api-resources", "-o", "name"]).await);
    for n in ["pods", "deployments.apps", "configmaps", "namespaces"] {
        assert!(names.contains(n), "api-resources -o name lacks {n}: {names:?}");
    }

    // Short names resolve through discovery.
    s.kubectl_ok(&["create", "configmap", "short", "--from-literal=a=b"])
        .await;
    assert_eq!(
        s.kubectl_ok(&["get", "cm", "-o", "name"]).await.trim(),
        "configmap/short"
    );
    let deploys = s.kubectl(&["get", "deploy"]).await;
    assert!(deploys.status.success(), "{}", String::from_utf8_lossy(&deploys.stderr));
    assert!(String::from_utf8_lossy(&deploys.stderr).contains("No resources found in default namespace"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_file_and_get_in_every_format() {
    let s = ApiServer::start_default().await;
    let file = s.write_file("app.yaml", APP_MANIFESTS);
    let out = s.kubectl_ok(&["create", "-f", file.to_str().unwrap()]).await;
    assert_eq!(
        lines(&out),
        set(&["configmap/app-config created", "deployment.apps/web created"])
    );

    // Plain table.
    let plain = s.kubectl_ok(&["get", "configmap", "app-config"]).await;
    let rows: Vec<Vec<&str>> = plain.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{plain}");
    assert_eq!(rows[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(&rows[1][..2], ["app-config", "1"]);
    let deploy = s.kubectl_ok(&["get", "deployments.apps", "web", "-o", "name"]).await;
    assert_eq!(deploy.trim(), "deployment.apps/web");

    // YAML.
    let y: serde_yaml::Value =
        serde_yaml::from_str(&s.kubectl_ok(&["get", "cm", "app-config", "-o", "yaml"]).await).unwrap();
    assert_eq!(y["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(y["apiVersion"].as_str(), Some("v1"));
    assert_eq!(y["data"]["greeting"].as_str(), Some("hello"));
    assert_eq!(y["metadata"]["namespace"].as_str(), Some("default"));
    assert!(
        !y["metadata"]["resourceVersion"].as_str().unwrap_or_default().is_empty(),
        "{y:?}"
    );
    assert!(!y["metadata"]["uid"].as_str().unwrap_or_default().is_empty(), "{y:?}");
    assert!(y["metadata"]["creationTimestamp"].as_str().is_some(), "{y:?}");

    // JSON.
    let j: serde_json::Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "deployment", "web", "-o", "json"]).await).unwrap();
    assert_eq!(j["kind"], "Deployment");
    assert_eq!(j["apiVersion"], "apps/v1");
    assert_eq!(j["spec"]["replicas"], 1);
    assert_eq!(
        j["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/pause:3.10"
    );

    // JSONPath.
    let name = s
        .kubectl_ok(&["get", "cm", "app-config", "-o", "jsonpath={.metadata.name}"])
        .await;
    assert_eq!(name, "app-config");

    // Label selector.
    s.kubectl_ok(&["create", "configmap", "x-two", "--from-literal=a=b"])
        .await;
    s.kubectl_ok(&["label", "configmap", "x-two", "app=x"]).await;
    s.kubectl_ok(&["create", "configmap", "y-one", "--from-literal=a=b"])
        .await;
    s.kubectl_ok(&["label", "configmap", "y-one", "app=y"]).await;
    let by_label = lines(&s.kubectl_ok(&["get", "configmaps", "-l", "app=x", "-o", "name"]).await);
    assert_eq!(by_label, set(&["configmap/app-config", "configmap/x-two"]));
    let deploys = lines(&s.kubectl_ok(&["get", "deployments", "-l", "app=x", "-o", "name"]).await);
    assert_eq!(deploys, set(&["deployment.apps/web"]));

    // Field selector.
    s.kubectl_ok(&["create", "configmap", "a", "--from-literal=k=v"]).await;
    s.kubectl_ok(&["create", "configmap", "b", "--from-literal=k=v"]).await;
    let by_field = lines(
        &s.kubectl_ok(&["get", "configmaps", "--field-selector", "metadata.name=a", "-o", "name"])
            .await,
    );
    assert_eq!(by_field, set(&["configmap/a"]));

    // Chunked list: 5 objects in pages of 2 come back complete, via continue tokens.
    s.kubectl_ok(&["create", "namespace", "chunk"]).await;
    for i in 0..5 {
        s.kubectl_ok(&[
            "create",
            "configmap",
            &format!("c{i}"),
            "-n",
            "chunk",
            "--from-literal=k=v",
        ])
        .await;
    }
    let out = s
        .kubectl(&[
            "get",
            "configmaps",
            "-n",
            "chunk",
            "--chunk-size=2",
            "-o",
            "name",
            "-v=6",
        ])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(got.len(), 5, "expected 5 names without duplicates:\n{stdout}");
    assert_eq!(
        lines(&stdout),
        set(&[
            "configmap/c0",
            "configmap/c1",
            "configmap/c2",
            "configmap/c3",
            "configmap/c4"
        ])
    );
    assert!(
        stderr.contains("limit=2"),
        "kubectl did not request pages of 2:\n{stderr}"
    );
    assert!(
        stderr.contains("continue="),
        "kubectl never followed a continue token:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_new_objects() {
    let s = ApiServer::start_default().await;
    s.kubectl_ok(&["create", "configmap", "before-watch", "--from-literal=a=b"])
        .await;

    let mut cmd = s.kubectl_command(&["get", "configmaps", "-w", "-o", "name"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning kubectl get -w");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = async |needle: &str, seen: &mut Vec<String>| {
        within(60, &format!("kubectl get -w printing {needle}"), async {
            loop {
                match rx.recv().await {
                    Some(line) => {
                        let hit = line.contains(needle);
                        seen.push(line);
                        if hit {
                            return;
                        }
                    }
                    None => panic!("kubectl get -w exited; output so far: {seen:?}"),
                }
            }
        })
        .await
    };
    // The initial list has been printed, so the watch is running from its resourceVersion.
    wait_for("configmap/before-watch", &mut seen).await;
    s.kubectl_ok(&["create", "configmap", "after-watch", "--from-literal=a=b"])
        .await;
    wait_for("configmap/after-watch", &mut seen).await;

    assert!(
        child.try_wait().unwrap().is_none(),
        "kubectl get -w should still be watching"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_annotate_patch_replace_scale_delete() {
    let s = ApiServer::start_default().await;
    let get = async |path: &str| {
        s.kubectl_ok(&["get", "configmap", "mut", "-o", &format!("jsonpath={path}")])
            .await
    };

    s.kubectl_ok(&["create", "configmap", "mut", "--from-literal=k=v1"])
        .await;

    let out = s.kubectl_ok(&["label", "configmap", "mut", "tier=db"]).await;
    assert_eq!(out.trim(), "configmap/mut labeled");
    assert_eq!(get("{.metadata.labels.tier}").await, "db");

    let out = s.kubectl_ok(&["annotate", "configmap", "mut", "note=hello"]).await;
    assert_eq!(out.trim(), "configmap/mut annotated");
    assert_eq!(get("{.metadata.annotations.note}").await, "hello");

    let out = s
        .kubectl_ok(&[
            "patch",
            "configmap",
            "mut",
            "--type=json",
            r#"-p=[{"op":"replace","path":"/data/k","value":"v2"}]"#,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/mut patched");
    assert_eq!(get("{.data.k}").await, "v2");

    let out = s
        .kubectl_ok(&[
            "patch",
            "configmap",
            "mut",
            "--type=merge",
            r#"-p={"data":{"m":"merged"}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/mut patched");
    assert_eq!(get("{.data.m}").await, "merged");
    assert_eq!(get("{.data.k}").await, "v2");

    // replace -f with the current object, edited.
    let mut obj: serde_json::Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "configmap", "mut", "-o", "json"]).await).unwrap();
    obj["data"] = serde_json::json!({"k": "replaced"});
    let file = s.write_file("mut.json", &obj.to_string());
    let out = s.kubectl_ok(&["replace", "-f", file.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "configmap/mut replaced");
    assert_eq!(get("{.data.k}").await, "replaced");
    assert_eq!(get("{.data.m}").await, "", "replace drops fields absent from the file");
    assert_eq!(get("{.metadata.labels.tier}").await, "db");

    // scale through the deployment's scale subresource.
    let file = s.write_file("app.yaml", APP_MANIFESTS);
    s.kubectl_ok(&["create", "-f", file.to_str().unwrap()]).await;
    let out = s.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]).await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let replicas = s
        .kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(replicas, "3");

    let out = s.kubectl_ok(&["delete", "configmap", "mut"]).await;
    assert_eq!(out.trim(), r#"configmap "mut" deleted"#);
    let err = s.kubectl_err(&["get", "configmap", "mut"]).await;
    assert!(err.contains(r#"configmaps "mut" not found"#), "{err}");
    let err = s.kubectl_err(&["delete", "configmap", "mut"]).await;
    assert!(err.contains(r#"configmaps "mut" not found"#), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_scope_objects() {
    let s = ApiServer::start_default().await;
    let out = s.kubectl_ok(&["create", "namespace", "team-a"]).await;
    assert_eq!(out.trim(), "namespace/team-a created");
    let all = lines(&s.kubectl_ok(&["get", "namespaces", "-o", "name"]).await);
    assert!(
        all.contains("namespace/team-a") && all.contains("namespace/default"),
        "{all:?}"
    );

    s.kubectl_ok(&["create", "configmap", "in-ns", "-n", "team-a", "--from-literal=a=b"])
        .await;
    let in_ns = s.kubectl_ok(&["get", "configmaps", "-n", "team-a", "-o", "name"]).await;
    assert_eq!(lines(&in_ns), set(&["configmap/in-ns"]));
    let ns = s
        .kubectl_ok(&[
            "get",
            "configmap",
            "in-ns",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.metadata.namespace}",
        ])
        .await;
    assert_eq!(ns, "team-a");
    // Not visible from another namespace.
    let err = s.kubectl_err(&["get", "configmap", "in-ns"]).await;
    assert!(err.contains(r#"configmaps "in-ns" not found"#), "{err}");
    // Visible across namespaces.
    let everywhere = s.kubectl_ok(&["get", "configmaps", "-A", "-o", "name"]).await;
    assert!(lines(&everywhere).contains("configmap/in-ns"), "{everywhere}");

    let err = s
        .kubectl_err(&["create", "configmap", "x", "-n", "nope", "--from-literal=a=b"])
        .await;
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");
}
