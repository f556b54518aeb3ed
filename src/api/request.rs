//! Every request's first layer: an id (the client's `X-Request-Id` when it is sane) that error
//! bodies, audit events and every log line the request causes carry, returned in
//! `X-Request-Id`; and refusals of oversized request targets, headers and declared bodies
//! before anything else looks at them.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::extract::{RequestId, too_large};
use super::{ApiError, AppState, error};

/// Longest request target (path and query) accepted: 414 past it.
const MAX_URI: usize = 8 * 1024;
/// Most header bytes accepted: 431 past them.
const MAX_HEADERS: usize = 32 * 1024;

pub async fn layer(State(st): State<AppState>, mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
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
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
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
    response
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
