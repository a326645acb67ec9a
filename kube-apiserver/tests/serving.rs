//! End-to-end tests of the secure port with a real HTTPS client: authentication (tokens,
//! client certificates, anonymous public paths), HTTP/1.1 and HTTP/2, handler failures and
//! graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use kube_apiserver::config::{Config, Options};
use kube_apiserver::server::auth::Authenticator;
use kube_apiserver::server::serve::{self, ConnInfo, ServeError};
use kube_apiserver::server::{Body, Handler, UserInfo, tls};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Echoes who is asking; `/panic` panics, `/slow` reports its start and waits for a release.
struct EchoHandler {
    started: mpsc::UnboundedSender<()>,
    release: Mutex<Option<oneshot::Receiver<()>>>,
}

#[async_trait::async_trait]
impl Handler for EchoHandler {
    async fn handle(&self, req: http::Request<hyper::body::Incoming>, user: Option<UserInfo>) -> http::Response<Body> {
        match req.uri().path() {
            "/panic" => panic!("handler bug"),
            "/slow" => {
                let _ = self.started.send(());
                if let Some(rx) = self.release.lock().await.take() {
                    let _ = rx.await;
                }
            }
            _ => {}
        }
        let conn = req.extensions().get::<ConnInfo>().copied();
        let body = json!({
            "user": user.as_ref().map(|u| &u.name),
            "groups": user.as_ref().map(|u| &u.groups),
            "path": req.uri().path(),
            "version": format!("{:?}", req.version()),
            "remoteIsLoopback": conn.map(|c| c.remote_addr.ip().is_loopback()),
        });
        http::Response::new(Full::new(Bytes::from(body.to_string())).boxed())
    }
}

struct TestServer {
    _dir: tempfile::TempDir,
    url: String,
    server_ca: String,
    client_ca: (String, String),
    shutdown: Option<oneshot::Sender<()>>,
    run: tokio::task::JoinHandle<Result<(), ServeError>>,
    started: mpsc::UnboundedReceiver<()>,
    release: Option<oneshot::Sender<()>>,
}

fn config(dir: &std::path::Path) -> Config {
    Options::parse_from([
        "kube-apiserver".to_string(),
        "--bind-address=127.0.0.1".into(),
        "--secure-port=0".into(),
        format!("--cert-dir={}", dir.join("certs").display()),
        format!("--client-ca-file={}", dir.join("client-ca.crt").display()),
        format!("--token-auth-file={}", dir.join("tokens.csv").display()),
    ])
    .into_config()
    .unwrap()
}

async fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let client_ca = tls::generate_ca("test-client-ca").unwrap();
    std::fs::write(dir.path().join("client-ca.crt"), &client_ca.0).unwrap();
    std::fs::write(
        dir.path().join("tokens.csv"),
        "admin-token,admin,uid-admin,\"system:masters,ops\"\nplain-token,bob,uid-bob\n",
    )
    .unwrap();
    let cfg = config(dir.path());
    let material = tls::load_or_generate(&cfg).unwrap();
    let server_ca = std::fs::read_to_string(material.ca_file.as_ref().unwrap()).unwrap();
    let auth = Authenticator::from_config(&cfg).unwrap();
    let (started_tx, started) = mpsc::unbounded_channel();
    let (release, release_rx) = oneshot::channel();
    let handler = Arc::new(EchoHandler { started: started_tx, release: Mutex::new(Some(release_rx)) });
    let server = serve::bind(&cfg, material, auth, handler).await.unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let run = tokio::spawn(server.run(async move {
        let _ = shutdown_rx.await;
    }));
    TestServer {
        _dir: dir,
        url: format!("https://{addr}"),
        server_ca,
        client_ca,
        shutdown: Some(shutdown),
        run,
        started,
        release: Some(release),
    }
}

impl TestServer {
    fn client(&self, identity: Option<&(String, String)>, http1_only: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.server_ca.as_bytes()).unwrap());
        if let Some((cert, key)) = identity {
            b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        if http1_only {
            b = b.http1_only();
        }
        b.build().unwrap()
    }

    async fn get(&self, client: &reqwest::Client, path: &str, token: Option<&str>) -> (u16, http::Version, Value) {
        let mut req = client.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let version = resp.version();
        let body = resp.json::<Value>().await.unwrap();
        (status, version, body)
    }

    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        self.run.await.unwrap().unwrap();
    }
}

fn unauthorized_status() -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":"Unauthorized","reason":"Unauthorized","code":401})
}

#[tokio::test]
async fn tokens_and_anonymous_access() {
    let srv = start().await;
    let c = srv.client(None, false);

    let (code, _, body) = srv.get(&c, "/api/v1/pods", Some("admin-token")).await;
    assert_eq!(code, 200);
    assert_eq!(body["user"], "admin");
    assert_eq!(body["groups"], json!(["system:masters", "ops", "system:authenticated"]));
    assert_eq!(body["path"], "/api/v1/pods");
    assert_eq!(body["remoteIsLoopback"], true);

    let (code, _, body) = srv.get(&c, "/api", Some("plain-token")).await;
    assert_eq!((code, &body["user"], &body["groups"]), (200, &json!("bob"), &json!(["system:authenticated"])));

    // Wrong token: 401 everywhere, even on public paths (as upstream).
    for path in ["/api", "/healthz"] {
        let (code, _, body) = srv.get(&c, path, Some("wrong")).await;
        assert_eq!(code, 401, "{path}");
        assert_eq!(body, unauthorized_status());
    }

    // No credentials: only the public paths reach the handler, with no user.
    for path in ["/api", "/apis/apps/v1", "/metrics", "/healthzfoo"] {
        let (code, _, body) = srv.get(&c, path, None).await;
        assert_eq!((code, body), (401, unauthorized_status()), "{path}");
    }
    for path in ["/healthz", "/healthz/etcd", "/livez", "/readyz", "/readyz/ping", "/version"] {
        let (code, _, body) = srv.get(&c, path, None).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(body["user"], Value::Null, "{path}");
        assert_eq!(body["path"], path);
    }
    // An authenticated user on a public path is still passed along.
    let (_, _, body) = srv.get(&c, "/version", Some("admin-token")).await;
    assert_eq!(body["user"], "admin");
    srv.stop().await;
}

#[tokio::test]
async fn client_certificates() {
    let srv = start().await;
    let alice = tls::generate_client_cert(&srv.client_ca.0, &srv.client_ca.1, "alice", &["devs"]).unwrap();
    let c = srv.client(Some(&alice), false);
    let (code, _, body) = srv.get(&c, "/api", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["user"], "alice");
    assert_eq!(body["groups"], json!(["devs", "system:authenticated"]));
    // The certificate identifies the client even when a token is sent as well.
    let (_, _, body) = srv.get(&c, "/api", Some("admin-token")).await;
    assert_eq!(body["user"], "alice");

    let admin =
        tls::generate_client_cert(&srv.client_ca.0, &srv.client_ca.1, "kube-admin", &["system:masters"]).unwrap();
    let (_, _, body) = srv.get(&srv.client(Some(&admin), true), "/api", None).await;
    assert_eq!(body["groups"], json!(["system:masters", "system:authenticated"]));

    // A certificate from an unknown CA is refused during the handshake.
    let rogue_ca = tls::generate_ca("rogue").unwrap();
    let mallory = tls::generate_client_cert(&rogue_ca.0, &rogue_ca.1, "mallory", &["system:masters"]).unwrap();
    let rogue = srv.client(Some(&mallory), false);
    assert!(rogue.get(format!("{}/api", srv.url)).send().await.is_err());

    // The server still works for everyone else.
    let (code, _, _) = srv.get(&c, "/api", None).await;
    assert_eq!(code, 200);
    srv.stop().await;
}

#[tokio::test]
async fn http2_and_http1() {
    let srv = start().await;
    let (code, version, body) = srv.get(&srv.client(None, false), "/api", Some("admin-token")).await;
    assert_eq!((code, version), (200, http::Version::HTTP_2));
    assert_eq!(body["version"], "HTTP/2.0");
    let (code, version, body) = srv.get(&srv.client(None, true), "/api", Some("admin-token")).await;
    assert_eq!((code, version), (200, http::Version::HTTP_11));
    assert_eq!(body["version"], "HTTP/1.1");
    srv.stop().await;
}

#[tokio::test]
async fn handler_panic_is_a_500_and_the_server_survives() {
    let srv = start().await;
    for http1 in [false, true] {
        let c = srv.client(None, http1);
        let (code, _, body) = srv.get(&c, "/panic", Some("admin-token")).await;
        assert_eq!(code, 500);
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["code"], 500);
        let (code, _, body) = srv.get(&c, "/api", Some("admin-token")).await;
        assert_eq!((code, &body["user"]), (200, &json!("admin")));
    }
    srv.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut srv = start().await;
    let c = srv.client(None, false);
    let url = format!("{}/slow", srv.url);
    let in_flight = tokio::spawn(async move { c.get(url).bearer_auth("admin-token").send().await });
    srv.started.recv().await.unwrap();

    srv.shutdown.take().unwrap().send(()).unwrap();
    // Wait until the listener is gone, so the release below happens during the drain.
    let addr = srv.url.trim_start_matches("https://").to_string();
    let mut refused = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting after shutdown");
    assert!(!srv.run.is_finished(), "run returned while a request was in flight");

    srv.release.take().unwrap().send(()).unwrap();
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["path"], "/slow");
    srv.run.await.unwrap().unwrap();
}

#[tokio::test]
async fn serve_returns_when_shutdown_is_already_due() {
    let dir = tempfile::tempdir().unwrap();
    let client_ca = tls::generate_ca("ca").unwrap();
    std::fs::write(dir.path().join("client-ca.crt"), &client_ca.0).unwrap();
    std::fs::write(dir.path().join("tokens.csv"), "t,u,1\n").unwrap();
    let cfg = config(dir.path());
    let (started, _) = mpsc::unbounded_channel();
    let handler = Arc::new(EchoHandler { started, release: Mutex::new(None) });
    let auth = Authenticator::from_config(&cfg).unwrap();
    serve::serve(&cfg, tls::load_or_generate(&cfg).unwrap(), auth, handler, std::future::ready(())).await.unwrap();
}

#[tokio::test]
async fn bind_conflict_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = Options::parse_from(["kube-apiserver", "--bind-address=127.0.0.1"]).into_config().unwrap();
    cfg.cert_dir = dir.path().to_path_buf();
    cfg.listen = taken.local_addr().unwrap();
    let (started, _) = mpsc::unbounded_channel();
    let handler = Arc::new(EchoHandler { started, release: Mutex::new(None) });
    let err =
        serve::bind(&cfg, tls::load_or_generate(&cfg).unwrap(), Authenticator::default(), handler).await.unwrap_err();
    assert!(matches!(err, ServeError::Bind { .. }));
}
