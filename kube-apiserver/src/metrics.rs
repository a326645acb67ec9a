//! Process-wide Prometheus metrics with upstream names and labels, so dashboards and tests that
//! know kube-apiserver's `/metrics` work here too. The REST layer records; `/metrics` renders.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Upstream's `apiserver_request_duration_seconds` buckets.
const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0,
    45.0, 60.0,
];

const REQUEST_LABELS: &[&str] = &["verb", "group", "version", "resource", "subresource", "scope", "component"];

struct Metrics {
    registry: Registry,
    request_total: IntCounterVec,
    request_duration: HistogramVec,
    inflight: IntGaugeVec,
    storage_objects: IntGaugeVec,
    watch_events: IntCounterVec,
    registered_watchers: IntGaugeVec,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!("registering a metric: {e}");
    }
    metric
}

// Definitions are constants, so constructing them cannot fail at run time.
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let mut total_labels = REQUEST_LABELS.to_vec();
    total_labels.push("code");
    let request_total = IntCounterVec::new(
        Opts::new(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.",
        ),
        &total_labels,
    )
    .expect("valid metric definition");
    let request_duration = HistogramVec::new(
        HistogramOpts::new(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.",
        )
        .buckets(REQUEST_DURATION_BUCKETS.to_vec()),
        REQUEST_LABELS,
    )
    .expect("valid metric definition");
    let inflight = IntGaugeVec::new(
        Opts::new(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
        ),
        &["request_kind"],
    )
    .expect("valid metric definition");
    let storage_objects = IntGaugeVec::new(
        Opts::new("apiserver_storage_objects", "Number of stored objects at the time of last check split by kind."),
        &["resource"],
    )
    .expect("valid metric definition");
    let watch_events = IntCounterVec::new(
        Opts::new("apiserver_watch_events_total", "Number of events sent in watch clients"),
        &["group", "version", "kind"],
    )
    .expect("valid metric definition");
    let registered_watchers = IntGaugeVec::new(
        Opts::new("apiserver_registered_watchers", "Number of currently registered watchers for a given resources"),
        &["group", "version", "kind"],
    )
    .expect("valid metric definition");
    Metrics {
        request_total: register(&registry, request_total),
        request_duration: register(&registry, request_duration),
        inflight: register(&registry, inflight),
        storage_objects: register(&registry, storage_objects),
        watch_events: register(&registry, watch_events),
        registered_watchers: register(&registry, registered_watchers),
        registry,
    }
});

/// The process-wide registry, for modules that want to add their own metrics.
pub fn registry() -> &'static Registry {
    &METRICS.registry
}

/// Labels of one API request, with upstream's values: verb `GET`/`LIST`/`WATCH`/`POST`/`PUT`/
/// `PATCH`/`DELETE`/`APPLY`..., scope `resource`/`namespace`/`cluster`, component `apiserver`.
/// The core group is the empty string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestLabels<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub scope: &'a str,
    pub component: &'a str,
}

impl RequestLabels<'_> {
    fn values(&self) -> [&str; 7] {
        [self.verb, self.group, self.version, self.resource, self.subresource, self.scope, self.component]
    }
}

/// Count a finished request and record its latency.
pub fn observe_request(labels: &RequestLabels<'_>, code: u16, elapsed: Duration) {
    let values = labels.values();
    METRICS.request_duration.with_label_values(&values).observe(elapsed.as_secs_f64());
    let code = code.to_string();
    let mut with_code = values.to_vec();
    with_code.push(&code);
    METRICS.request_total.with_label_values(&with_code).inc();
}

/// Upstream's `request_kind` label of the inflight gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Mutating,
    ReadOnly,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Mutating => "mutating",
            RequestKind::ReadOnly => "readOnly",
        }
    }

    /// Mutating for every HTTP method but GET, HEAD and OPTIONS.
    pub fn for_method(method: &http::Method) -> Self {
        match *method {
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS => RequestKind::ReadOnly,
            _ => RequestKind::Mutating,
        }
    }
}

/// Counts a request as in flight until dropped.
#[must_use = "the request stops counting as in flight when the guard is dropped"]
#[derive(Debug)]
pub struct InflightGuard {
    gauge: IntGauge,
}

impl InflightGuard {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self { gauge }
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Mark one request of `kind` in flight for the lifetime of the returned guard.
pub fn inflight(kind: RequestKind) -> InflightGuard {
    InflightGuard::new(METRICS.inflight.with_label_values(&[kind.as_str()]))
}

/// Set the object count of a resource (upstream labels it `resource.group`, e.g. `deployments.apps`,
/// or just `pods` for the core group).
pub fn set_storage_objects(resource: &str, count: i64) {
    METRICS.storage_objects.with_label_values(&[resource]).set(count);
}

/// Count `n` watch events sent for a kind.
pub fn add_watch_events(group: &str, version: &str, kind: &str, n: u64) {
    METRICS.watch_events.with_label_values(&[group, version, kind]).inc_by(n);
}

/// Adjust the number of open watches of a kind by `delta` (+1 on start, -1 on end).
pub fn add_registered_watchers(group: &str, version: &str, kind: &str, delta: i64) {
    METRICS.registered_watchers.with_label_values(&[group, version, kind]).add(delta);
}

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric in the Prometheus text exposition format.
pub fn render() -> String {
    let families = METRICS.registry.gather();
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
        tracing::error!("encoding metrics: {e}");
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample line of `name` whose labels include all of `labels`, as (line, value).
    fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| labels.iter().all(|want| l.contains(want)))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn requests_are_counted_and_timed() {
        let labels = RequestLabels {
            verb: "POST",
            group: "apps",
            version: "v1",
            resource: "metricstestwidgets",
            scope: "namespace",
            component: "apiserver",
            ..Default::default()
        };
        observe_request(&labels, 201, Duration::from_millis(30));
        observe_request(&labels, 201, Duration::from_millis(3));
        observe_request(&labels, 409, Duration::from_millis(3));
        let text = render();
        assert!(text.contains("# TYPE apiserver_request_total counter"));
        assert!(text.contains("# TYPE apiserver_request_duration_seconds histogram"));
        let res = r#"resource="metricstestwidgets""#;
        assert_eq!(sample(&text, "apiserver_request_total", &[res, r#"code="201""#, r#"verb="POST""#]), Some(2.0));
        assert_eq!(sample(&text, "apiserver_request_total", &[res, r#"code="409""#]), Some(1.0));
        assert_eq!(sample(&text, "apiserver_request_duration_seconds_count", &[res]), Some(3.0));
        assert_eq!(sample(&text, "apiserver_request_duration_seconds_bucket", &[res, r#"le="0.005""#]), Some(2.0));
        assert_eq!(sample(&text, "apiserver_request_duration_seconds_bucket", &[res, r#"le="0.05""#]), Some(3.0));
        assert_eq!(sample(&text, "apiserver_request_duration_seconds_bucket", &[res, r#"le="60""#]), Some(3.0));
    }

    #[test]
    fn gauges_and_watch_counters() {
        set_storage_objects("metricstest.example.com", 7);
        add_watch_events("example.com", "v1", "MetricsTest", 3);
        add_watch_events("example.com", "v1", "MetricsTest", 2);
        add_registered_watchers("example.com", "v1", "MetricsTest", 2);
        add_registered_watchers("example.com", "v1", "MetricsTest", -1);
        let text = render();
        assert_eq!(sample(&text, "apiserver_storage_objects", &[r#"resource="metricstest.example.com""#]), Some(7.0));
        assert_eq!(sample(&text, "apiserver_watch_events_total", &[r#"kind="MetricsTest""#]), Some(5.0));
        assert_eq!(sample(&text, "apiserver_registered_watchers", &[r#"kind="MetricsTest""#]), Some(1.0));
    }

    #[test]
    fn inflight_guard() {
        // A private gauge: the process-wide one is shared with concurrently running tests.
        let gauge = IntGauge::new("test_inflight", "test").unwrap();
        let g1 = InflightGuard::new(gauge.clone());
        let g2 = InflightGuard::new(gauge.clone());
        assert_eq!(gauge.get(), 2);
        drop(g1);
        assert_eq!(gauge.get(), 1);
        drop(g2);
        assert_eq!(gauge.get(), 0);
        assert_eq!(RequestKind::for_method(&http::Method::GET), RequestKind::ReadOnly);
        assert_eq!(RequestKind::for_method(&http::Method::DELETE), RequestKind::Mutating);
        let _held = inflight(RequestKind::Mutating);
        assert!(render().contains(r#"apiserver_current_inflight_requests{request_kind="mutating"}"#));
    }
}
