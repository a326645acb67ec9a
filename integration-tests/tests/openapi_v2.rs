//! kubectl 1.33 validates with the swagger 2.0 document in gnostic's protobuf form whenever the
//! v3 document cannot vouch for a kind (a `kind: List` file, create-only kinds): `create -f` and
//! `apply -f` of such files work with kubectl's default `--validate=strict`, and unknown fields in
//! them are still reported, in the words of kubectl's own (v2) validation.

use integration_tests::ApiServer;

const LIST: &str = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: settings
  data:
    mode: fast
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
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
          image: nginx:1.27
";

const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_files_create_and_apply_with_default_validation() {
    let s = ApiServer::start_default().await;
    let out = s.kubectl_stdin_ok(&["create", "-f", "-"], LIST).await;
    assert_eq!(out.trim(), "configmap/settings created\ndeployment.apps/web created");
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "2");
    assert_eq!(s.kubectl_ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]).await, "fast");

    // Applied twice into a fresh namespace: created, then unchanged.
    s.kubectl_ok(&["create", "namespace", "applied"]).await;
    let out = s.kubectl_stdin_ok(&["apply", "-n", "applied", "-f", "-"], LIST).await;
    assert_eq!(out.trim(), "configmap/settings created\ndeployment.apps/web created");
    let out = s.kubectl_stdin_ok(&["apply", "-n", "applied", "-f", "-"], LIST).await;
    assert_eq!(out.trim(), "configmap/settings unchanged\ndeployment.apps/web unchanged");
    let annotations = s
        .kubectl_ok(&["get", "-n", "applied", "deploy", "web", "-o", "jsonpath={.metadata.annotations}"])
        .await;
    assert!(annotations.contains("kubectl.kubernetes.io/last-applied-configuration"), "{annotations}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_in_list_items_are_rejected_by_kubectl() {
    let s = ApiServer::start_default().await;
    let bad = LIST
        .replace("    replicas: 2\n", "    replicas: 2\n    replicaz: 3\n")
        .replace("    mode: fast\n", "    mode: fast\n  color: blue\n");
    let out = s.kubectl_stdin(&["create", "-f", "-"], &bad).await;
    assert!(!out.status.success(), "unknown fields accepted");
    // What kubectl's client-side validation says against any server: every item is checked
    // before anything is sent.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: error validating \"STDIN\": error validating data: [\
         ValidationError(ConfigMap): unknown field \"color\" in io.k8s.api.core.v1.ConfigMap, \
         ValidationError(Deployment.spec): unknown field \"replicaz\" in io.k8s.api.apps.v1.DeploymentSpec]; \
         if you choose to ignore these errors, turn validation off with --validate=false"
    );
    let err = s.kubectl_err(&["get", "configmap", "settings"]).await;
    assert!(err.contains("NotFound") || err.contains("not found"), "{err}");

    // The same file with kubectl's validation off: the server drops the unknown fields.
    let out = s.kubectl_stdin_ok(&["create", "--validate=false", "-f", "-"], &bad).await;
    assert_eq!(out.trim(), "configmap/settings created\ndeployment.apps/web created");
    let spec = s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec}"]).await;
    assert!(!spec.contains("replicaz"), "{spec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_kinds_validate_against_the_protobuf_document() {
    let s = ApiServer::start_default().await;
    let review = "\
apiVersion: authorization.k8s.io/v1
kind: SelfSubjectAccessReview
spec:
  resourceAttributes:
    verb: list
    resource: pods
";
    let out = s.kubectl_stdin_ok(&["create", "-f", "-", "-o", "yaml"], review).await;
    let status: serde_json::Value = serde_yaml::from_str(&out).expect("YAML output");
    assert_eq!(status["kind"], "SelfSubjectAccessReview", "{out}");
    assert_eq!(status["status"]["allowed"], true, "{out}");

    let pod = "\
apiVersion: v1
kind: Pod
metadata:
  name: pinned
spec:
  containers:
  - name: c
    image: nginx
";
    s.kubectl_stdin_ok(&["create", "-f", "-"], pod).await;
    let binding = "\
apiVersion: v1
kind: Binding
metadata:
  name: pinned
target:
  apiVersion: v1
  kind: Node
  name: node-a
";
    s.kubectl_stdin_ok(&["create", "-f", "-"], binding).await;
    assert_eq!(s.kubectl_ok(&["get", "pod", "pinned", "-o", "jsonpath={.spec.nodeName}"]).await, "node-a");

    // A typo in a create-only kind is caught by kubectl against the v2 document too.
    let out = s.kubectl_stdin(&["create", "-f", "-"], &binding.replace("  name: node-a\n", "  name: node-a\n  nmae: x\n")).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("ValidationError(Binding.target): unknown field \"nmae\" in io.k8s.api.core.v1.ObjectReference"),
        "{err}"
    );

    // `explain` still reads the v3 documents.
    let out = s.kubectl_ok(&["explain", "deployment.spec.replicas"]).await;
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_document_is_negotiated_and_cached_as_upstream() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let url = format!("{}/openapi/v2", s.url());
    let get = |accept: &'static str| http.get(&url).header("Accept", accept).send();

    let proto = get(PROTOBUF).await.unwrap();
    assert_eq!(proto.status(), 200);
    assert_eq!(proto.headers()["content-type"], "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    // kube-openapi's gziphandler adds its Vary before the handler's own.
    let vary: Vec<_> = proto.headers().get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(vary, ["Accept-Encoding", "Accept"]);
    let etag = proto.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = proto.headers()["last-modified"].to_str().unwrap().to_string();
    let body = proto.bytes().await.unwrap();
    // Field 1 of the Document message is `swagger: "2.0"`.
    assert_eq!(&body[..5], b"\x0a\x032.0");

    let json = get("application/json").await.unwrap();
    assert_eq!(json.status(), 200);
    assert_eq!(json.headers()["content-type"], "application/json");
    // One ETag for both forms, as upstream (it hashes the JSON).
    assert_eq!(json.headers()["etag"].to_str().unwrap(), etag);
    let doc: serde_json::Value = json.json().await.unwrap();
    assert_eq!(doc["swagger"], "2.0");

    let cached = http.get(&url).header("Accept", PROTOBUF).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"].to_str().unwrap(), etag);
    assert!(cached.bytes().await.unwrap().is_empty());
    let dated = http.get(&url).header("If-Modified-Since", &last_modified).send().await.unwrap();
    assert_eq!(dated.status(), 304);
    let stale = http.get(&url).header("Accept", PROTOBUF).header("If-None-Match", "\"old\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap(), body);

    // JSON first when the client ranks it first; protobuf when it ranks it higher.
    let ranked = get("application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf").await.unwrap();
    assert_eq!(ranked.headers()["content-type"], "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    let ranked = get("application/json, application/com.github.proto-openapi.spec.v2.v1.0+protobuf").await.unwrap();
    assert_eq!(ranked.headers()["content-type"], "application/json");
    assert_eq!(get("text/plain").await.unwrap().status(), 406);
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out).expect("a valid gzip stream");
    out
}

/// kube-openapi serves /openapi/v2 through gziphandler: gzip whenever the client accepts it (any
/// size from 1400 bytes), one ETag for the compressed and the plain forms, 304s uncompressed.
/// /openapi/v3 (handler3) is never compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_document_is_gzipped_when_the_client_accepts_gzip() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let url = format!("{}/openapi/v2", s.url());
    for accept in [PROTOBUF, "application/json"] {
        let plain = http.get(&url).header("Accept", accept).send().await.unwrap();
        assert_eq!(plain.status(), 200);
        assert!(plain.headers().get("content-encoding").is_none());
        let etag = plain.headers()["etag"].to_str().unwrap().to_string();
        let plain = plain.bytes().await.unwrap();

        let gz = http.get(&url).header("Accept", accept).header("Accept-Encoding", "gzip").send().await.unwrap();
        assert_eq!(gz.status(), 200);
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        assert_eq!(gz.headers()["etag"].to_str().unwrap(), etag);
        let vary: Vec<_> = gz.headers().get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(vary, ["Accept-Encoding", "Accept"]);
        let wire = gz.bytes().await.unwrap();
        assert!(wire.len() < plain.len() / 3, "{} compressed to {}", plain.len(), wire.len());
        assert_eq!(gunzip(&wire), plain);

        // The ETag still answers 304, with nothing to compress.
        let cached = http
            .get(&url)
            .header("Accept", accept)
            .header("Accept-Encoding", "gzip")
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304);
        assert!(cached.headers().get("content-encoding").is_none());
        assert_eq!(cached.headers()["etag"].to_str().unwrap(), etag);
    }
    // gzip refused with q=0: plain.
    let r = http.get(&url).header("Accept-Encoding", "gzip;q=0, identity").send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    // HEAD is never compressed.
    let r = http.head(&url).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());

    let index: serde_json::Value =
        http.get(format!("{}/openapi/v3", s.url())).send().await.unwrap().json().await.unwrap();
    let doc_url = index["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap();
    let r = http.get(format!("{}{doc_url}", s.url())).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.0");
}
