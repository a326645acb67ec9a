//! A Kubernetes client from `--kubeconfig` (or the usual defaults when the flag is empty).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("loading client configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("building the client: {0}")]
    Build(#[from] kube::Error),
}

/// Build a client with `user_agent` (upstream components identify themselves this way, and the
/// apiserver derives the default field manager from it).
pub async fn from_kubeconfig(
    path: Option<&Path>,
    user_agent: &str,
) -> Result<kube::Client, ClientError> {
    let config = match path {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).map_err(|source| {
                ClientError::Kubeconfig {
                    path: p.display().to_string(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::Kubeconfig {
                    path: p.display().to_string(),
                    source,
                })?
        }
        None => kube::Config::infer().await?,
    };
    let mut config = config;
    config.headers.push((
        http_user_agent(),
        user_agent
            .parse()
            .unwrap_or_else(|_| "kubernetes-component".parse().expect("static header value")),
    ));
    Ok(kube::Client::try_from(config)?)
}

fn http_user_agent() -> hyper::header::HeaderName {
    hyper::header::USER_AGENT
}
