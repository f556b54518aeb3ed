//! The `/v1` REST API: JSON only, team-scoped bearer tokens, one error envelope.

mod error;
mod events;
mod extract;
mod idempotency;
pub mod limits;
mod projects;
mod records;
mod sites;
mod tokens;
mod whoami;
mod zones;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
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
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/whoami", get(whoami::show))
        .merge(zones::routes())
        .merge(records::routes())
        .merge(projects::routes())
        .merge(sites::routes())
        .merge(tokens::routes())
        .merge(events::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotency::layer));
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({ "data": { "status": "ok" } })) }))
        .nest("/v1", v1)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(DefaultBodyLimit::max(state.config.api.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), limits::layer))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Gives every request an id (the client's `X-Request-Id` when it is sane), makes it
/// available to error bodies, and returns it in `X-Request-Id`.
async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut response = error::REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
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
