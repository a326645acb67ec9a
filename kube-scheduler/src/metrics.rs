//! Prometheus metrics with upstream's names: scheduling attempts by result, attempt and
//! end-to-end (first enqueue to bound) latency histograms, pending pods per queue, preemption.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub schedule_attempts: IntCounterVec,
    pub attempt_duration: HistogramVec,
    pub e2e_duration: HistogramVec,
    pub pending_pods: IntGaugeVec,
    pub preemption_attempts: IntCounter,
    pub preemption_victims: prometheus::Histogram,
    pub cache_size: IntGaugeVec,
}

fn exp_buckets(start: f64, factor: f64, n: usize) -> Vec<f64> {
    prometheus::exponential_buckets(start, factor, n).unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let schedule_attempts = IntCounterVec::new(
            Opts::new(
                "scheduler_schedule_attempts_total",
                "Number of attempts to schedule pods, by the result.",
            ),
            &["result", "profile"],
        )?;
        let attempt_duration = HistogramVec::new(
            HistogramOpts::new(
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            )
            .buckets(exp_buckets(0.001, 2.0, 15)),
            &["result", "profile"],
        )?;
        let e2e_duration = HistogramVec::new(
            HistogramOpts::new(
                "scheduler_pod_scheduling_sli_duration_seconds",
                "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue until it is bound.",
            )
            .buckets(exp_buckets(0.01, 2.0, 20)),
            &["attempts"],
        )?;
        let pending_pods = IntGaugeVec::new(
            Opts::new(
                "scheduler_pending_pods",
                "Number of pending pods, by the queue type.",
            ),
            &["queue"],
        )?;
        let preemption_attempts = IntCounter::new(
            "scheduler_preemption_attempts_total",
            "Total preemption attempts in the cluster till now",
        )?;
        let preemption_victims = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "scheduler_preemption_victims",
                "Number of selected preemption victims",
            )
            .buckets(exp_buckets(1.0, 2.0, 7)),
        )?;
        let cache_size = IntGaugeVec::new(
            Opts::new(
                "scheduler_cache_size",
                "Number of nodes, pods, and assumed (bound) pods in the scheduler cache.",
            ),
            &["type"],
        )?;
        registry.register(Box::new(schedule_attempts.clone()))?;
        registry.register(Box::new(attempt_duration.clone()))?;
        registry.register(Box::new(e2e_duration.clone()))?;
        registry.register(Box::new(pending_pods.clone()))?;
        registry.register(Box::new(preemption_attempts.clone()))?;
        registry.register(Box::new(preemption_victims.clone()))?;
        registry.register(Box::new(cache_size.clone()))?;
        Ok(Metrics {
            registry,
            schedule_attempts,
            attempt_duration,
            e2e_duration,
            pending_pods,
            preemption_attempts,
            preemption_victims,
            cache_size,
        })
    }

    /// Record one attempt's result ("scheduled", "unschedulable" or "error") and duration.
    pub fn attempt(&self, profile: &str, result: &str, seconds: f64) {
        self.schedule_attempts
            .with_label_values(&[result, profile])
            .inc();
        self.attempt_duration
            .with_label_values(&[result, profile])
            .observe(seconds);
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let m = Metrics::new().unwrap();
        m.attempt("default-scheduler", "scheduled", 0.002);
        m.attempt("default-scheduler", "unschedulable", 0.001);
        m.pending_pods.with_label_values(&["active"]).set(3);
        m.e2e_duration.with_label_values(&["1"]).observe(0.5);
        let text = m.render();
        assert!(text.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1"), "{text}");
        assert!(text.contains("scheduler_pending_pods{queue=\"active\"} 3"));
        assert!(
            text.contains("scheduler_pod_scheduling_sli_duration_seconds_count{attempts=\"1\"} 1")
        );
        assert!(text.contains("scheduler_scheduling_attempt_duration_seconds_bucket"));
    }
}
