//! Malformed and conflicting requests get the upstream status codes and a metav1 Status body,
//! and none of them hurts the server.

use integration_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// Assert `resp` has status `code` and a JSON metav1 Status body; return the body.
async fn expect_status(resp: reqwest::Response, code: u16) -> Value {
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.unwrap();
    assert_eq!(status.as_u16(), code, "body: {text}");
    assert!(
        ctype.starts_with("application/json"),
        "content-type {ctype:?}, body: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("Status body not JSON ({e}): {text}"));
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["code"], code, "{body}");
    body
}

fn cm_json(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_status_errors_and_server_survives() {
    let s = ApiServer::start_default().await;
    let http = s.http();
    let url = |path: &str| format!("{}{path}", s.url());
    let post_raw = |body: String, ctype: &'static str| {
        http.post(url(CMS))
            .header(reqwest::header::CONTENT_TYPE, ctype)
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
    };

    // Malformed JSON.
    let resp = post_raw(
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"#.into(),
        "application/json",
    )
    .await
    .unwrap();
    expect_status(resp, 400).await;

    // YAML bodies are accepted with application/yaml...
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n";
    let resp = post_raw(yaml.into(), "application/yaml").await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["metadata"]["name"], "from-yaml");
    assert_eq!(created["data"]["k"], "v");
    // ...and malformed YAML is a 400.
    let resp = post_raw(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n  name: x\n".into(),
        "application/yaml",
    )
    .await
    .unwrap();
    expect_status(resp, 400).await;

    // Body kind / apiVersion not matching the URL.
    let mut wrong_kind = cm_json("wrong-kind");
    wrong_kind["kind"] = json!("Secret");
    let resp = post_raw(wrong_kind.to_string(), "application/json").await.unwrap();
    expect_status(resp, 400).await;
    let mut wrong_version = cm_json("wrong-version");
    wrong_version["apiVersion"] = json!("apps/v1");
    let resp = post_raw(wrong_version.to_string(), "application/json").await.unwrap();
    expect_status(resp, 400).await;

    // Invalid name.
    let resp = post_raw(cm_json("Bad_Name").to_string(), "application/json")
        .await
        .unwrap();
    let body = expect_status(resp, 422).await;
    assert_eq!(body["reason"], "Invalid", "{body}");
    let causes = body["details"]["causes"].as_array().cloned().unwrap_or_default();
    assert!(
        causes.iter().any(|c| c["field"] == "metadata.name"),
        "no metadata.name cause: {body}"
    );

    // Body over 3 MiB.
    let mut huge = cm_json("huge");
    huge["data"]["k"] = json!("x".repeat(3 * 1024 * 1024 + 1024));
    let resp = post_raw(huge.to_string(), "application/json").await.unwrap();
    expect_status(resp, 413).await;

    // Update with a stale resourceVersion.
    let resp = post_raw(cm_json("conflicted").to_string(), "application/json")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v1: Value = resp.json().await.unwrap();
    let mut update = v1.clone();
    update["data"]["k"] = json!("second");
    let resp = http
        .put(url(&format!("{CMS}/conflicted")))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v2: Value = resp.json().await.unwrap();
    assert_ne!(v2["metadata"]["resourceVersion"], v1["metadata"]["resourceVersion"]);
    update["data"]["k"] = json!("stale");
    let resp = http
        .put(url(&format!("{CMS}/conflicted")))
        .json(&update)
        .send()
        .await
        .unwrap();
    let body = expect_status(resp, 409).await;
    assert_eq!(body["reason"], "Conflict", "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("the object has been modified; please apply your changes to the latest version and try again"),
        "{msg}"
    );
    let current: Value = http
        .get(url(&format!("{CMS}/conflicted")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["data"]["k"], "second", "the stale update must not be applied");

    // GET of a missing object.
    let resp = http.get(url(&format!("{CMS}/x"))).send().await.unwrap();
    let body = expect_status(resp, 404).await;
    assert_eq!(body["reason"], "NotFound", "{body}");
    assert_eq!(body["message"], r#"configmaps "x" not found"#, "{body}");

    // Creating an existing object.
    let resp = post_raw(cm_json("conflicted").to_string(), "application/json")
        .await
        .unwrap();
    let body = expect_status(resp, 409).await;
    assert_eq!(body["reason"], "AlreadyExists", "{body}");

    // Unknown resource.
    let resp = http
        .get(url("/api/v1/namespaces/default/frobnicators"))
        .send()
        .await
        .unwrap();
    expect_status(resp, 404).await;

    // Still healthy.
    let resp = http.get(url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = http.get(url(CMS)).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert!(
        names.contains(&"from-yaml") && names.contains(&"conflicted"),
        "{names:?}"
    );
    for rejected in ["Bad_Name", "huge", "wrong-kind", "wrong-version"] {
        assert!(!names.contains(&rejected), "{rejected} was stored: {names:?}");
    }
}
