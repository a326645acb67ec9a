//! `/healthz`, `/livez`, `/readyz` and `/metrics` over HTTPS on the component's
//! `--bind-address`/`--secure-port`, as upstream's secure serving: the pair from
//! `--tls-cert-file`/`--tls-private-key-file` when given, otherwise a self-signed certificate made
//! at start (kubeadm's probes use `scheme: HTTPS` and do not verify it).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

/// Upstream's serving-certificate flags.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct TlsFlags {
    /// File with the x509 certificate for HTTPS (CA cert, if any, after the server cert). Without it a
    /// self-signed certificate for localhost and the bind address is generated at start.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// File with the x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    HalfPair,
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The certificate chain and key to serve: from the flags, or self-signed for `bind`.
pub fn serving_cert(
    flags: &TlsFlags,
    bind: IpAddr,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ServeError> {
    match (&flags.tls_cert_file, &flags.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|source| ServeError::Read {
                    path: p.clone(),
                    source,
                })
            };
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&read(cert)?)
                .filter_map(Result::ok)
                .collect();
            if certs.is_empty() {
                return Err(ServeError::Pem {
                    path: cert.clone(),
                    what: "certificate",
                });
            }
            let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| ServeError::Pem {
                path: key.clone(),
                what: "private key",
            })?;
            Ok((certs, key))
        }
        (None, None) => {
            let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            if !bind.is_unspecified() && !bind.is_loopback() {
                sans.push(bind.to_string());
            }
            let ck = rcgen::generate_simple_self_signed(sans)?;
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).map_err(|_| {
                ServeError::Pem {
                    path: PathBuf::from("<generated>"),
                    what: "private key",
                }
            })?;
            Ok((vec![ck.cert.der().clone()], key))
        }
        _ => Err(ServeError::HalfPair),
    }
}

/// Bind `addr` and serve the health endpoints over HTTPS in the background; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    tls: &TlsFlags,
    ready: Readiness,
    metrics: MetricsFn,
) -> Result<SocketAddr, ServeError> {
    let (certs, key) = serving_cert(tls, addr.ip())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (ready, metrics, acceptor) = (ready.clone(), metrics.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    acceptor.accept(stream),
                )
                .await
                else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (ready, metrics) = (ready.clone(), metrics.clone());
                    async move { Ok::<_, Infallible>(route(req.uri().path(), &ready, &metrics)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
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
        _ => (
            404,
            "404 page not found".to_string(),
            "text/plain; charset=utf-8",
        ),
    };
    Response::builder()
        .status(code)
        .header("Content-Type", ct)
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
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

    fn insecure() -> reqwest::Client {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn serves_https_with_a_self_signed_certificate() {
        let ready = Readiness::default();
        let m: MetricsFn = Arc::new(|| "x_total 1\n".to_string());
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            &TlsFlags::default(),
            ready.clone(),
            m,
        )
        .await
        .unwrap();
        let get = |p: &'static str| async move {
            insecure()
                .get(format!("https://{addr}{p}"))
                .send()
                .await
                .unwrap()
        };
        assert_eq!(get("/healthz").await.text().await.unwrap(), "ok");
        assert_eq!(get("/readyz").await.status(), 503);
        ready.set(true);
        assert_eq!(get("/readyz").await.status(), 200);
        assert_eq!(get("/metrics").await.text().await.unwrap(), "x_total 1\n");
        // Plain HTTP is not served.
        assert!(
            reqwest::get(format!("http://{addr}/healthz"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn serves_the_configured_pair() {
        let dir = tempfile::tempdir().unwrap();
        let ck =
            rcgen::generate_simple_self_signed(vec!["configured.example".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        let flags = TlsFlags {
            tls_cert_file: Some(cert.clone()),
            tls_private_key_file: Some(key.clone()),
        };
        let (chain, _) = serving_cert(&flags, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(chain[0].as_ref(), ck.cert.der().as_ref());
        // Trusting exactly that certificate works for its name.
        let m: MetricsFn = Arc::new(String::new);
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            &flags,
            Readiness::default(),
            m,
        )
        .await
        .unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
            .resolve("configured.example", addr)
            .build()
            .unwrap();
        let body = client
            .get(format!(
                "https://configured.example:{}/healthz",
                addr.port()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "ok");

        let half = TlsFlags {
            tls_cert_file: Some(cert),
            tls_private_key_file: None,
        };
        assert!(matches!(
            serving_cert(&half, "127.0.0.1".parse().unwrap()),
            Err(ServeError::HalfPair)
        ));
        let bad = TlsFlags {
            tls_cert_file: Some(key.clone()),
            tls_private_key_file: Some(key),
        };
        assert!(matches!(
            serving_cert(&bad, "127.0.0.1".parse().unwrap()),
            Err(ServeError::Pem { .. })
        ));
    }
}
