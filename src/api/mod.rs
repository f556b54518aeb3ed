//! The `/v1` REST API: JSON only, team-scoped bearer tokens, one error envelope.

mod error;
mod events;
mod extract;
mod gate;
pub mod idempotency;
pub mod limits;
pub mod openapi;
mod projects;
mod records;
pub mod server;
mod sites;
mod tokens;
mod whoami;
mod zones;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

pub use error::{ApiError, ApiResult};
pub use extract::{Caller, Json, PageQuery};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::hosting::Jobs;
use crate::store::Store;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub config: Arc<Config>,
    pub jobs: Jobs,
    pub limits: Arc<limits::Limits>,
    /// Zone names tenants may not own.
    pub reserved: Arc<crate::domain::Reserved>,
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/whoami", get(whoami::show))
        .route("/openapi.json", get(openapi::serve))
        .merge(zones::routes())
        .merge(records::routes())
        .merge(projects::routes())
        .merge(sites::routes())
        .merge(tokens::routes())
        .merge(events::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotency::layer));
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/v1", v1)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(state.config.api.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), gate::layer))
        .layer(middleware::from_fn_with_state(state.clone(), request_id))
        .with_state(state)
}

/// 200 while the server can do its work; 503 once writes are refused (the database file
/// left its path), so a load balancer takes the instance out.
async fn healthz(axum::extract::State(st): axum::extract::State<AppState>) -> Response {
    match st.store.health() {
        Ok(()) => axum::Json(json!({ "data": { "status": "ok" } })).into_response(),
        Err(why) => {
            tracing::error!(problem = %why, "health check fails");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the server refuses writes: its database file is gone from the data directory",
            )
            .into_response()
        }
    }
}

/// Longest request target (path and query) accepted: 414 past it.
const MAX_URI: usize = 8 * 1024;
/// Most header bytes accepted: 431 past them.
const MAX_HEADERS: usize = 32 * 1024;

/// Gives every request an id (the client's `X-Request-Id` when it is sane), makes it
/// available to error bodies, and returns it in `X-Request-Id`. Refuses oversized request
/// targets, headers and declared bodies before anything else looks at them.
async fn request_id(
    axum::extract::State(st): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let too_big = if request.uri().to_string().len() > MAX_URI {
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
        Some(extract::too_large())
    } else {
        None
    };
    let mut response = match too_big {
        Some(e) => {
            error::REQUEST_ID
                .scope(id.clone(), async move { e.into_response() })
                .await
        }
        None => error::REQUEST_ID.scope(id.clone(), next.run(request)).await,
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
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `{"data": …}` with a status.
pub fn data<T: Serialize>(status: StatusCode, value: T) -> Response {
    (status, axum::Json(json!({ "data": value }))).into_response()
}

/// `201 Created` with `Location`.
pub fn created<T: Serialize>(location: String, value: T) -> Response {
    let mut response = data(StatusCode::CREATED, value);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    response
}

/// A list page: `{"data": […], "meta": {"pagination": …}}`.
pub fn page<T: Serialize>(items: Vec<T>, query: &PageQuery, next: Option<uuid::Uuid>, total: u64) -> Response {
    let body = json!({
        "data": items,
        "meta": { "pagination": {
            "limit": query.limit,
            "cursor": query.cursor_text,
            "next_cursor": next.map(extract::encode_cursor),
            "total": total,
        }},
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}
