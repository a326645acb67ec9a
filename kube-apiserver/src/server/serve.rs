//! The secure port: accept TCP, TLS handshake, HTTP/1.1 or HTTP/2 per connection (hyper-util
//! auto), authentication in front of the REST [`Handler`], and graceful shutdown.
//!
//! Authentication policy (as upstream with anonymous requests limited to public info):
//! valid credentials -> handler with the user; no credentials -> 401, except the public
//! health and version paths which reach the handler with no user; invalid credentials -> 401.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::auth::{AuthResult, Authenticator};
use super::tls::TlsMaterial;
use super::{Body, Handler};
use crate::config::Config;

/// Upper bound on how long shutdown waits for in-flight connections.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A client that does not finish the TLS handshake in this time is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams per HTTP/2 connection (client-go multiplexes every watch over one connection).
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Facts about the connection a request came in on, in the request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub remote_addr: SocketAddr,
    pub local_addr: SocketAddr,
}

/// A bound, not yet serving, secure port.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    acceptor: TlsAcceptor,
    auth: Arc<Authenticator>,
    handler: Arc<dyn Handler>,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

/// Bind `cfg.listen` (port 0 picks a free port; see [`Server::local_addr`]).
pub async fn bind(
    cfg: &Config,
    tls: TlsMaterial,
    auth: Authenticator,
    handler: Arc<dyn Handler>,
) -> Result<Server, ServeError> {
    let listener =
        TcpListener::bind(cfg.listen).await.map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
    tracing::info!(%local_addr, "serving securely");
    Ok(Server {
        listener,
        local_addr,
        acceptor: TlsAcceptor::from(tls.server_config),
        auth: Arc::new(auth),
        handler,
        shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
    })
}

/// Bind and serve until `shutdown` resolves, then drain connections (bounded) and return.
pub async fn serve(
    cfg: &Config,
    tls: TlsMaterial,
    auth: Authenticator,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    bind(cfg, tls, auth, handler).await?.run(shutdown).await
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Change how long shutdown waits for in-flight connections before cutting them.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Accept and serve connections until `shutdown` resolves; then stop accepting, let
    /// in-flight requests finish for up to the shutdown grace, abort the rest and return.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Server { listener, local_addr, acceptor, auth, handler, shutdown_grace } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        // Streams finished before their request body's END_STREAM arrives are reset by the h2
        // library and counted as "local error resets"; busy clients reach the default cap of
        // 1024 per connection, so the cap is lifted (remote resets stay limited by h2).
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
            .max_local_error_reset_streams(None);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut conns = JoinSet::new();

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!("connection task failed: {e}");
                    }
                }
                accepted = listener.accept() => {
                    let (stream, remote_addr) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            accept_error_backoff(e).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = Connection {
                        info: ConnInfo { remote_addr, local_addr },
                        acceptor: acceptor.clone(),
                        auth: auth.clone(),
                        handler: handler.clone(),
                        builder: builder.clone(),
                    };
                    // Subscribe before spawning so a shutdown signalled during the TLS
                    // handshake still reaches this connection.
                    let watcher = graceful.watcher();
                    conns.spawn(conn.run(stream, watcher));
                }
            }
        }

        drop(listener);
        tracing::info!(open_connections = conns.len(), "shutting down the secure port");
        let drained = tokio::time::timeout(shutdown_grace, async {
            graceful.shutdown().await;
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(remaining = conns.len(), "connections still open after {shutdown_grace:?}; closing them");
            conns.shutdown().await;
        }
        Ok(())
    }
}

/// Per-connection errors (client gone before accept) are skipped at once; others, such as
/// running out of file descriptors, are logged and retried after a short pause.
async fn accept_error_backoff(e: std::io::Error) {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionAborted | ConnectionReset | Interrupted => tracing::debug!("accept: {e}"),
        _ => {
            tracing::warn!("accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Connection {
    info: ConnInfo,
    acceptor: TlsAcceptor,
    auth: Arc<Authenticator>,
    handler: Arc<dyn Handler>,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        let remote = self.info.remote_addr;
        let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%remote, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        };
        // rustls has verified these against the client CA (when one is configured).
        let peer_certs: Option<Arc<[CertificateDer<'static>]>> =
            tls.get_ref().1.peer_certificates().filter(|c| !c.is_empty()).map(Arc::from);
        let Connection { info, auth, handler, builder, .. } = self;
        let service = service_fn(move |req| {
            let auth = auth.clone();
            let handler = handler.clone();
            let peer_certs = peer_certs.clone();
            async move { Ok::<_, Infallible>(handle(req, info, &auth, peer_certs.as_deref(), handler).await) }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
        if let Err(e) = watcher.watch(conn.into_owned()).await {
            tracing::debug!(%remote, "connection closed with error: {e}");
        }
    }
}

/// Paths anyone may read without credentials (upstream's system:public-info-viewer).
pub fn is_public_path(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"]
        .iter()
        .any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
        || path == "/version"
        || path == "/version/"
}

async fn handle(
    req: http::Request<Incoming>,
    info: ConnInfo,
    auth: &Authenticator,
    peer_certs: Option<&[CertificateDer<'static>]>,
    handler: Arc<dyn Handler>,
) -> http::Response<Body> {
    let head = req.method() == http::Method::HEAD;
    let resp = handle_any(req, info, auth, peer_certs, handler).await;
    if head { without_body(resp) } else { resp }
}

/// The answer to a HEAD request: the headers the request would get with its body, no body.
/// HTTP/1.1 drops the body of a HEAD response by itself; HTTP/2 does not, and a DATA frame on
/// a HEAD response is a protocol error to clients (curl, Go, h2), so the body goes here for both.
fn without_body(resp: http::Response<Body>) -> http::Response<Body> {
    use hyper::body::Body as _;
    let (mut parts, body) = resp.into_parts();
    let bodiless = matches!(parts.status, http::StatusCode::NO_CONTENT | http::StatusCode::NOT_MODIFIED);
    if let Some(len) = body.size_hint().exact().filter(|_| !bodiless) {
        parts.headers.entry(http::header::CONTENT_LENGTH).or_insert_with(|| http::HeaderValue::from(len));
    }
    http::Response::from_parts(parts, Full::new(Bytes::new()).boxed())
}

async fn handle_any(
    mut req: http::Request<Incoming>,
    info: ConnInfo,
    auth: &Authenticator,
    peer_certs: Option<&[CertificateDer<'static>]>,
    handler: Arc<dyn Handler>,
) -> http::Response<Body> {
    let user = match auth.authenticate(peer_certs, req.headers()) {
        AuthResult::Authenticated(user) => Some(user),
        AuthResult::Anonymous if is_public_path(req.uri().path()) => None,
        outcome => {
            tracing::debug!(remote = %info.remote_addr, path = req.uri().path(), ?outcome, "unauthorized");
            return status_response(http::StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        }
    };
    req.extensions_mut().insert(info);
    match AssertUnwindSafe(handler.handle(req, user)).catch_unwind().await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::error!(remote = %info.remote_addr, "request handler panicked");
            status_response(http::StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "an internal error occurred")
        }
    }
}

/// A metav1 Status failure response.
fn status_response(code: http::StatusCode, reason: &str, message: &str) -> http::Response<Body> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    let mut resp = http::Response::new(Full::new(Bytes::from(status.to_string())).boxed());
    *resp.status_mut() = code;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths() {
        for p in ["/healthz", "/healthz/etcd", "/livez", "/livez/ping", "/readyz", "/readyz/", "/version", "/version/"]
        {
            assert!(is_public_path(p), "{p}");
        }
        for p in ["/", "/healthzx", "/api", "/versions", "/version/x", "/metrics", "/apis/healthz"] {
            assert!(!is_public_path(p), "{p}");
        }
    }

    #[tokio::test]
    async fn head_answers_keep_the_headers_and_lose_the_body() {
        use hyper::body::Body as _;
        let get = status_response(http::StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        let len = get.body().size_hint().exact().unwrap();
        let head = without_body(get);
        assert_eq!(head.status(), 401);
        assert_eq!(head.headers()[http::header::CONTENT_TYPE], "application/json");
        assert_eq!(head.headers()[http::header::CONTENT_LENGTH], len.to_string().as_str());
        assert!(head.body().is_end_stream());
        let not_modified = http::Response::builder().status(304).body(Full::new(Bytes::new()).boxed()).unwrap();
        assert!(without_body(not_modified).headers().get(http::header::CONTENT_LENGTH).is_none());
    }

    #[tokio::test]
    async fn unauthorized_body() {
        let resp = status_response(http::StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()[http::header::CONTENT_TYPE], "application/json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }
}
