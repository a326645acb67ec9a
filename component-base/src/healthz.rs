//! `/healthz`, `/livez`, `/readyz` and `/metrics` on the component's `--bind-address`/`--secure-port`
//! (plain HTTP here; the endpoints carry no secrets).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Readiness shared between the component and its health endpoint.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Renders the Prometheus text for `/metrics`.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Bind `addr` and serve the health endpoints in the background; returns the bound address.
pub async fn serve(addr: SocketAddr, ready: Readiness, metrics: MetricsFn) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (ready, metrics) = (ready.clone(), metrics.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (ready, metrics) = (ready.clone(), metrics.clone());
                    async move { Ok::<_, Infallible>(route(req.uri().path(), &ready, &metrics)) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(local)
}

fn route(path: &str, ready: &Readiness, metrics: &MetricsFn) -> Response<Full<Bytes>> {
    let (code, body, ct) = match path {
        "/healthz" | "/livez" => (200, "ok".to_string(), "text/plain; charset=utf-8"),
        "/readyz" if ready.get() => (200, "ok".to_string(), "text/plain; charset=utf-8"),
        "/readyz" => (503, "not ready".to_string(), "text/plain; charset=utf-8"),
        "/metrics" => (200, metrics(), "text/plain; version=0.0.4; charset=utf-8"),
        _ => (404, "404 page not found".to_string(), "text/plain; charset=utf-8"),
    };
    Response::builder().status(code).header("Content-Type", ct).body(Full::new(Bytes::from(body))).expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let ready = Readiness::default();
        let m: MetricsFn = Arc::new(|| "x_total 1\n".to_string());
        assert_eq!(route("/healthz", &ready, &m).status(), 200);
        assert_eq!(route("/readyz", &ready, &m).status(), 503);
        ready.set(true);
        assert_eq!(route("/readyz", &ready, &m).status(), 200);
        assert_eq!(route("/metrics", &ready, &m).status(), 200);
        assert_eq!(route("/nope", &ready, &m).status(), 404);
    }
}
