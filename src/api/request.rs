//! Every request's first layer: an id (the client's `X-Request-Id` when it is sane) that error
//! bodies, audit events and every log line the request causes carry, returned in
//! `X-Request-Id`; refusals of oversized request targets, headers and declared bodies before
//! anything else looks at them; and once answered, the request's one access-log line and its
//! metrics.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use uuid::Uuid;

use super::extract::{RequestId, too_large};
use super::{ApiError, AppState, error};

/// Longest request target (path and query) accepted: 414 past it.
const MAX_URI: usize = 8 * 1024;
/// Most header bytes accepted: 431 past them.
const MAX_HEADERS: usize = 32 * 1024;

/// The route template a request matched (`/v1/zones/{id}`), passed out in the response's
/// extensions by `route` for the log line and the metrics: never the path itself, which a
/// client could make endless.
#[derive(Clone)]
pub(super) struct Route(String);

/// Who made a request, passed out by the gate for the log line.
#[derive(Clone, Copy)]
pub(super) struct Who {
    pub token: Uuid,
    pub team: Uuid,
}

/// Inside the router (a route layer: it runs once a route matched): hands the route's
/// template out.
pub async fn route(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(Route(m.as_str().to_string()));
    }
    response
}

pub async fn layer(State(st): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| Uuid::new_v4().simple().to_string(), str::to_string);
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let refused = if request.uri().to_string().len() > MAX_URI {
        Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is longer than {MAX_URI} bytes"),
        ))
    } else if header_bytes > MAX_HEADERS {
        Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request headers are larger than {MAX_HEADERS} bytes"),
        ))
    } else if declared_length(&request).is_some_and(|n| n > st.config.api.max_body_bytes as u64) {
        Some(too_large())
    } else {
        None
    };
    let span = tracing::info_span!("request", request_id = %id);
    let method = request.method().clone();
    let path = logged_path(request.uri().path());
    let request_bytes = declared_length(&request);
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = match refused {
        Some(e) => {
            error::REQUEST_ID
                .scope(id.clone(), async move { e.into_response() })
                .await
        }
        None => {
            error::REQUEST_ID
                .scope(id.clone(), next.run(request))
                .instrument(span)
                .await
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    let route = response
        .extensions()
        .get::<Route>()
        .map_or("unmatched", |r| r.0.as_str());
    let who = response.extensions().get::<Who>().copied();
    let status = response.status().as_u16();
    let access = Access {
        request_id: &id,
        method: method.as_str(),
        route,
        path: &path,
        status,
        latency_ms: elapsed.as_secs_f64() * 1e3,
        bytes: response.body().size_hint().exact(),
        request_bytes,
        token: who.map(|w| w.token),
        team: who.map(|w| w.team),
        client,
    };
    access.log();
    if let Some(m) = &st.observe.metrics {
        m.api_request(method.as_str(), route, status, elapsed);
    }
    response
}

/// One request's access-log line. Nothing in it is secret: ids, the path (tokens travel in
/// a header, never in the path), sizes and the time.
struct Access<'a> {
    request_id: &'a str,
    method: &'a str,
    route: &'a str,
    path: &'a str,
    status: u16,
    latency_ms: f64,
    bytes: Option<u64>,
    request_bytes: Option<u64>,
    token: Option<Uuid>,
    team: Option<Uuid>,
    client: Option<std::net::IpAddr>,
}

impl Access<'_> {
    /// At info, but probes (load balancers ask every few seconds) at debug.
    fn log(&self) {
        let probe = matches!(self.route, "/healthz" | "/readyz");
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "ipx::access",
                    $level,
                    request_id = self.request_id,
                    method = self.method,
                    route = self.route,
                    path = self.path,
                    status = self.status,
                    latency_ms = self.latency_ms,
                    bytes = self.bytes,
                    request_bytes = self.request_bytes,
                    token_id = self.token.map(tracing::field::display),
                    team_id = self.team.map(tracing::field::display),
                    client = self.client.map(tracing::field::display),
                    "request"
                )
            };
        }
        if probe {
            line!(tracing::Level::DEBUG);
        } else {
            line!(tracing::Level::INFO);
        }
    }
}

/// Longest path written in the access log: a line per request must stay a line, whatever a
/// client sends (the target may be 8 KiB, and a refused one longer).
const LOGGED_PATH: usize = 256;

fn logged_path(path: &str) -> String {
    match path.char_indices().nth(LOGGED_PATH) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path.to_string(),
    }
}

/// The body length a request declares in `Content-Length`.
fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
