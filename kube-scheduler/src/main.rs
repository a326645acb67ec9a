//! kube-scheduler: parse upstream's flags, set up logging, run the scheduler.

use clap::Parser;
use kube_scheduler::Options;

fn main() {
    let opts = Options::parse();
    let level = match opts.verbosity {
        0..=3 => "info",
        4..=5 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},kube_client=warn,hyper=warn,tower=warn,rustls=warn"
        ))
    });
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kube-scheduler: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(kube_scheduler::run(opts)) {
        eprintln!("kube-scheduler: {e}");
        std::process::exit(1);
    }
}
