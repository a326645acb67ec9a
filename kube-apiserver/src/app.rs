//! Assembling a running server from a [`Config`]: storage, registry, bootstrap objects,
//! compaction, TLS, authentication and the HTTPS listener.

use std::future::Future;
use std::sync::Arc;

use tracing::info;

use crate::config::{Config, StorageConfig};
use crate::handler::{App, AppError};
use crate::server::{auth, serve, tls};
use crate::storage::{Storage, StorageError, embedded::EmbeddedStorage, etcd::EtcdStorage};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error("tls: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("authentication: {0}")]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
}

/// Connect to (or open) the configured store.
pub async fn open_storage(cfg: &Config) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match &cfg.storage {
        StorageConfig::Etcd { endpoints, .. } => Arc::new(EtcdStorage::connect(endpoints).await?),
        StorageConfig::Embedded { data_dir, .. } => Arc::new(EmbeddedStorage::open(data_dir)?),
    })
}

/// Build everything and bind the secure port; the returned server is ready to `run`.
pub async fn build(cfg: Config) -> Result<(Arc<App>, serve::Server), RunError> {
    let storage = open_storage(&cfg).await?;
    let app = App::new(cfg.clone(), storage).await?;
    app.bootstrap().await?;
    app.spawn_compactor();
    app.spawn_service_repair();
    let mut sans = vec![cfg.advertise_address.to_string()];
    if let Some(ip) = tls::first_ip_of_cidr(&cfg.service_cluster_ip_range) {
        sans.push(ip.to_string());
    }
    let material = tls::load_or_generate_with_sans(&cfg, &sans)?;
    let authenticator = auth::Authenticator::from_config(&cfg)?;
    let _ = app.authenticator.set(std::sync::Arc::new(auth::Authenticator::from_config(&cfg)?));
    let server = serve::bind(&cfg, material, authenticator, app.clone()).await?;
    Ok((app, server))
}

/// Run until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let (app, server) = build(cfg).await?;
    info!(addr = %server.local_addr(), "kube-apiserver ready");
    server
        .run(async move {
            shutdown.await;
            app.stop_watches();
        })
        .await?;
    info!("kube-apiserver stopped");
    Ok(())
}
