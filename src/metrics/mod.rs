//! Prometheus metrics. Each server owns its registry (`Metrics`, shared behind an `Arc` by
//! whatever counts), so several servers in one process (the tests) never mix their counts.
//! The DNS answer path has lock-free counters of its own (`dns`); the rarer events (API
//! requests, commits, jobs, transfers) go through `metrics` crate handles into
//! metrics-exporter-prometheus; what the server holds and the process's own figures are
//! read at scrape time (`inventory`, `process`). `render` puts the three together.
//!
//! Every label takes its values from a closed set (route templates, methods, status codes,
//! job steps, outcomes) or from the configuration (secondaries, and zones only while they
//! are few): no client can make new series.

pub mod dns;
pub mod inventory;
mod process;
pub mod ready;

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub use dns::DnsMetrics;
pub use inventory::Inventory;
pub use ready::Readiness;

/// Buckets of the API's latency histogram, in seconds.
const API_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of commit and publish times: a commit is an fsync, a publish a few µs per change.
const STORE_SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Buckets of writes per commit (the writer takes at most 512 at once).
const BATCH_WRITES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

const META: Metadata<'static> = Metadata::new("ipx", Level::INFO, None);

/// One server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pub dns: Arc<DnsMetrics>,
    commit_seconds: Histogram,
    commit_writes: Histogram,
    commit_failures: Counter,
    publish_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let builder = PrometheusBuilder::new();
        let builder = [
            ("ipx_api_request_duration_seconds", API_SECONDS),
            ("ipx_store_commit_duration_seconds", STORE_SECONDS),
            ("ipx_dns_snapshot_publish_duration_seconds", STORE_SECONDS),
            ("ipx_store_commit_writes", BATCH_WRITES),
        ]
        .into_iter()
        .fold(builder, |b, (name, buckets)| {
            b.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
                .expect("buckets are not empty")
        });
        let recorder = builder.build_recorder();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(name.into(), unit, help.into());
        };
        describe(
            "ipx_api_requests_total",
            None,
            "API requests answered, by method, route template and status.",
        );
        describe(
            "ipx_api_request_duration_seconds",
            Some(Unit::Seconds),
            "Time from an API request's arrival to its response, by method and route template.",
        );
        describe(
            "ipx_store_commit_duration_seconds",
            Some(Unit::Seconds),
            "Time to commit one write transaction (with its fsync); one transaction carries every write waiting.",
        );
        describe(
            "ipx_store_commit_writes",
            None,
            "Writes made durable by one commit (group commit).",
        );
        describe(
            "ipx_store_commit_failures_total",
            None,
            "Write transactions that failed; none of their writes was acknowledged.",
        );
        describe(
            "ipx_dns_snapshot_publish_duration_seconds",
            Some(Unit::Seconds),
            "Time to apply one commit's changes to the DNS snapshots, before its writes are acknowledged.",
        );
        describe(
            "ipx_dns_transfers_total",
            None,
            "Zone transfers asked of us, by type (AXFR, IXFR) and outcome.",
        );
        describe(
            "ipx_dns_notifies_sent_total",
            None,
            "NOTIFY rounds to a secondary, by outcome (acknowledged, or unanswered after every retry).",
        );
        describe(
            "ipx_dnssec_failures_total",
            None,
            "Background DNSSEC work that failed, by kind: resign (signing again what came due), step (a rollover or switch-off step), keys (a signed zone's keys do not open); signatures run out unless it stops.",
        );
        describe(
            "ipx_jobs_finished_total",
            None,
            "Provisioning job runs ended, by step and state (done, failed).",
        );
        let handle = recorder.handle();
        let key = |name: &'static str| Key::from_static_name(name);
        Arc::new(Self {
            commit_seconds: recorder.register_histogram(&key("ipx_store_commit_duration_seconds"), &META),
            commit_writes: recorder.register_histogram(&key("ipx_store_commit_writes"), &META),
            commit_failures: recorder.register_counter(&key("ipx_store_commit_failures_total"), &META),
            publish_seconds: recorder.register_histogram(&key("ipx_dns_snapshot_publish_duration_seconds"), &META),
            recorder,
            handle,
            dns: DnsMetrics::new(),
        })
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder.register_counter(&Key::from_parts(name, labels), &META)
    }

    /// One API request answered. `route` is the matched route's template, never the path.
    pub fn api_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method.to_string(),
            _ => "other".to_string(),
        };
        self.counter(
            "ipx_api_requests_total",
            vec![
                Label::new("method", method.clone()),
                Label::new("route", route.to_string()),
                Label::new("status", status.to_string()),
            ],
        )
        .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    "ipx_api_request_duration_seconds",
                    vec![Label::new("method", method), Label::new("route", route.to_string())],
                ),
                &META,
            )
            .record(elapsed.as_secs_f64());
    }

    /// A write transaction committed `writes` writes in `elapsed`.
    pub fn committed(&self, writes: usize, elapsed: Duration) {
        self.commit_seconds.record(elapsed.as_secs_f64());
        self.commit_writes.record(writes as f64);
    }

    pub fn commit_failed(&self) {
        self.commit_failures.increment(1);
    }

    /// A commit's changes reached the DNS snapshots in `elapsed`.
    pub fn published(&self, elapsed: Duration) {
        self.publish_seconds.record(elapsed.as_secs_f64());
    }

    /// A zone transfer of `kind` (AXFR, IXFR) ended with `outcome`.
    pub fn transfer(&self, kind: &'static str, outcome: &'static str) {
        self.counter(
            "ipx_dns_transfers_total",
            vec![Label::new("type", kind), Label::new("outcome", outcome)],
        )
        .increment(1);
    }

    /// A NOTIFY round to a secondary ended: `acknowledged` or `unanswered`.
    pub fn notify_sent(&self, outcome: &'static str) {
        self.counter("ipx_dns_notifies_sent_total", vec![Label::new("outcome", outcome)])
            .increment(1);
    }

    /// Background DNSSEC work of `kind` (resign, step, keys) failed for a zone.
    pub fn dnssec_failed(&self, kind: &'static str) {
        self.counter("ipx_dnssec_failures_total", vec![Label::new("kind", kind)])
            .increment(1);
    }

    /// A provisioning job's run ended in `state` (done, failed).
    pub fn job_finished(&self, step: &'static str, state: &'static str) {
        self.counter(
            "ipx_jobs_finished_total",
            vec![Label::new("step", step), Label::new("state", state)],
        )
        .increment(1);
    }

    /// Drains the histograms' pending samples into their buckets. The exporter keeps every
    /// sample until then, so something must call this often whether or not anyone scrapes
    /// (`app` does, every few seconds).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The whole exposition: the registry's series, the DNS counters, then `extra` (what the
    /// server holds, gathered by the caller) and the process's figures.
    pub fn render(&self, extra: &str) -> String {
        let mut out = self.handle.render();
        self.dns.render(&mut out);
        out.push_str(extra);
        process::render(&mut out);
        out
    }
}
