//! `/metrics` of the controller manager: client-go's workqueue metrics per queue name
//! (`workqueue_depth`, `workqueue_adds_total`, `workqueue_retries_total`,
//! `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`), which is what
//! upstream dashboards watch to see a controller falling behind.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub depth: IntGaugeVec,
    pub adds: IntCounterVec,
    pub retries: IntCounterVec,
    pub queue_duration: HistogramVec,
    pub work_duration: HistogramVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let buckets = prometheus::exponential_buckets(1e-8, 10.0, 10)?;
    let depth = IntGaugeVec::new(
        Opts::new("workqueue_depth", "Current depth of workqueue"),
        &["name"],
    )?;
    let adds = IntCounterVec::new(
        Opts::new(
            "workqueue_adds_total",
            "Total number of adds handled by workqueue",
        ),
        &["name"],
    )?;
    let retries = IntCounterVec::new(
        Opts::new(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
        ),
        &["name"],
    )?;
    let queue_duration = HistogramVec::new(
        HistogramOpts::new(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
        )
        .buckets(buckets.clone()),
        &["name"],
    )?;
    let work_duration = HistogramVec::new(
        HistogramOpts::new(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
        )
        .buckets(buckets),
        &["name"],
    )?;
    registry.register(Box::new(depth.clone()))?;
    registry.register(Box::new(adds.clone()))?;
    registry.register(Box::new(retries.clone()))?;
    registry.register(Box::new(queue_duration.clone()))?;
    registry.register(Box::new(work_duration.clone()))?;
    Ok(Metrics {
        registry,
        depth,
        adds,
        retries,
        queue_duration,
        work_duration,
    })
}

/// The process-wide metrics (every queue reports here, as client-go's global provider).
pub static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().expect("static metric definitions are valid"));

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        METRICS.adds.with_label_values(&["metrics_test"]).inc();
        METRICS.depth.with_label_values(&["metrics_test"]).set(3);
        let text = METRICS.render();
        assert!(
            text.contains("workqueue_adds_total{name=\"metrics_test\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_depth{name=\"metrics_test\"} 3"),
            "{text}"
        );
    }
}
