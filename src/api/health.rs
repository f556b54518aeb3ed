//! What operators and their machines ask the server, on the API's listener and on the
//! metrics listener (`[metrics] listen`): `/healthz` (the process answers), `/readyz` (it can
//! take traffic: store writable, snapshots built, listeners serving) and, on the metrics
//! listener alone, `/metrics` in the Prometheus text format.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::ApiError;
use crate::dns::rrl::Rrl;
use crate::dns::secondaries::Secondaries;
use crate::metrics::inventory::write_one;
use crate::metrics::{Metrics, Readiness};
use crate::store::Store;

/// What the probes and the scrape read. Cheap to clone.
#[derive(Clone)]
pub struct Observe {
    pub store: Store,
    pub ready: Arc<Readiness>,
    /// `None` with the metrics listener off.
    pub metrics: Option<Arc<Metrics>>,
    pub rrl: Option<Arc<Rrl>>,
    /// The secondaries' standing, when there are any (`[dns] also_notify`).
    pub secondaries: Option<Arc<Secondaries>>,
    /// Zones the server may hold and still export per-zone series.
    pub per_zone_series_limit: usize,
    /// One scrape at a time: a flood of scrapes queues instead of reading the store in
    /// parallel.
    pub scraping: Arc<tokio::sync::Mutex<()>>,
}

/// The metrics listener's routes.
pub fn router(observe: Observe) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .with_state(observe)
}

/// 200 while the process answers. Deliberately nothing more: a liveness probe that failed
/// on a broken data directory would have the server restarted onto an empty database.
pub async fn healthz() -> Response {
    axum::Json(json!({ "data": { "status": "ok" } })).into_response()
}

/// 200 once the server can take traffic; 503 (saying what it waits for) before the
/// snapshots are built and the listeners serve, and once writes are refused because the
/// database file left its path.
pub async fn readyz(State(o): State<Observe>) -> Response {
    if let Err(why) = o.store.health() {
        tracing::error!(problem = %why, "readiness check fails");
        return not_ready(
            "store_unavailable",
            "the server refuses writes: its database file is gone from the data directory".into(),
            json!(["store"]),
        );
    }
    if o.ready.is_stopping() {
        return not_ready("stopping", "the server is shutting down".into(), json!([]));
    }
    let waiting = o.ready.waiting_for();
    if !waiting.is_empty() {
        return not_ready(
            "not_ready",
            format!("starting: waiting for {}", waiting.join(", ")),
            json!(waiting),
        );
    }
    axum::Json(json!({ "data": { "status": "ready" } })).into_response()
}

fn not_ready(code: &'static str, message: String, waiting: Value) -> Response {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
    e.fields.insert("waiting_for".into(), waiting);
    e.with_header(header::RETRY_AFTER, "1").into_response()
}

async fn metrics(State(o): State<Observe>) -> Response {
    let Some(metrics) = o.metrics.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "metrics are off").into_response();
    };
    let _one_at_a_time = o.scraping.lock().await;
    let (store, rrl, limit) = (o.store.clone(), o.rrl.clone(), o.per_zone_series_limit);
    let standings = o.secondaries.as_ref().map(|s| s.standings());
    let ready = o.ready.waiting_for().is_empty() && !o.ready.is_stopping() && o.store.health().is_ok();
    let text = tokio::task::spawn_blocking(move || {
        let mut extra = String::new();
        match store.read_blocking(|r| r.inventory(limit)) {
            Ok(inventory) => inventory.render(&mut extra),
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the store's figures"),
        }
        if let Some(rrl) = rrl {
            let (slipped, dropped) = rrl.counts();
            write_one(
                &mut extra,
                "ipx_dns_rrl_slipped_total",
                "counter",
                "UDP answers sent truncated by response rate limiting.",
                slipped,
            );
            write_one(
                &mut extra,
                "ipx_dns_rrl_dropped_total",
                "counter",
                "UDP answers dropped by response rate limiting.",
                dropped,
            );
        }
        write_one(
            &mut extra,
            "ipx_ready",
            "gauge",
            "1 when /readyz says the server takes traffic.",
            u8::from(ready),
        );
        if let Some(standings) = standings {
            secondaries(&mut extra, &standings);
        }
        extra.push_str("# HELP ipx_build_info Always 1; the label says which version runs.\n");
        extra.push_str("# TYPE ipx_build_info gauge\n");
        extra.push_str(concat!(
            "ipx_build_info{version=\"",
            env!("CARGO_PKG_VERSION"),
            "\"} 1\n"
        ));
        metrics.render(&extra)
    })
    .await;
    match text {
        Ok(text) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn secondaries(out: &mut String, standings: &[crate::dns::secondaries::Standing]) {
    use std::fmt::Write;
    out.push_str("# HELP ipx_dns_secondary_zones_behind Zones whose newest serial a configured secondary is not seen serving yet.\n");
    out.push_str("# TYPE ipx_dns_secondary_zones_behind gauge\n");
    for s in standings {
        let _ = writeln!(
            out,
            "ipx_dns_secondary_zones_behind{{secondary=\"{}\"}} {}",
            s.addr, s.zones_behind
        );
    }
    out.push_str("# HELP ipx_dns_secondary_lag_seconds Time since the oldest change a configured secondary is not seen serving (0: current).\n");
    out.push_str("# TYPE ipx_dns_secondary_lag_seconds gauge\n");
    for s in standings {
        let _ = writeln!(
            out,
            "ipx_dns_secondary_lag_seconds{{secondary=\"{}\"}} {}",
            s.addr,
            s.lag.as_secs_f64()
        );
    }
}
