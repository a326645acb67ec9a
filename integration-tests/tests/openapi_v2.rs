//! kubectl 1.33 validates with the swagger 2.0 document in gnostic's protobuf form whenever the
//! v3 document cannot vouch for a kind (a `kind: List` file, create-only kinds): `create -f` and
//! `apply -f` of such files work with kubectl's default `--validate=strict`, and unknown fields in
//! them are still reported.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_files_validate_against_the_protobuf_document() {
    let s = ApiServer::start_default().await;
    let out = s.kubectl_stdin_ok(&["create", "-f", "-"], LIST).await;
    assert!(out.contains("configmap/settings created") && out.contains("deployment.apps/web created"), "{out}");
    assert_eq!(s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "2");

    let out = s.kubectl_stdin_ok(&["apply", "-f", "-"], LIST).await;
    assert!(out.contains("configmap/settings configured") || out.contains("configmap/settings unchanged"), "{out}");
    let out = s.kubectl_stdin_ok(&["apply", "-f", "-"], LIST).await;
    assert!(out.contains("configmap/settings unchanged") && out.contains("deployment.apps/web unchanged"), "{out}");

    // An unknown field inside an item is caught by kubectl's own validation.
    let bad = LIST.replace("    replicas: 2\n", "    replicas: 2\n    replicaz: 3\n");
    let out = s.kubectl_stdin(&["create", "-f", "-"], &bad).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "unknown field accepted: {err}");
    assert!(err.contains("replicaz"), "{err}");
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
    let out = s.kubectl_stdin_ok(&["create", "-f", "-", "-o", "jsonpath={.status.allowed}"], review).await;
    assert_eq!(out, "true");

    let http = s.http();
    let resp = http
        .get(format!("{}/openapi/v2", s.url()))
        .header("Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    assert!(resp.headers().contains_key("etag"));
    let body = resp.bytes().await.unwrap();
    // Field 1 of the Document message is `swagger: "2.0"`.
    assert_eq!(&body[..5], b"\x0a\x032.0");
    let resp = http.get(format!("{}/openapi/v2", s.url())).header("Accept", "text/plain").send().await.unwrap();
    assert_eq!(resp.status(), 406);
}
