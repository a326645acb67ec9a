//! kube-controller-manager binary: flags, logging, then run until SIGINT/SIGTERM or lost leadership.

use clap::Parser;
use kube_controller_manager::{Options, run};

fn main() -> std::process::ExitCode {
    let opts = Options::parse();
    let level = match opts.verbosity {
        0 => "warn",
        1..=2 => "info",
        3..=5 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("building the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        tokio::select! {
            r = run(opts) => match r {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "kube-controller-manager exiting");
                    std::process::ExitCode::FAILURE
                }
            },
            _ = shutdown_signal() => std::process::ExitCode::SUCCESS,
        }
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else { return std::future::pending().await };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
