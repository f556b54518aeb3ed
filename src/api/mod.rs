//! The `/v1` REST API: JSON only, team-scoped bearer tokens, one error envelope. Each
//! resource's file holds its handlers, its view types (the JSON it answers, and its OpenAPI
//! schema) and its routes; `router` puts them together under the shared layers.

mod batch;
mod certificates;
mod dnssec;
mod error;
mod events;
mod extract;
mod gate;
pub mod health;
pub mod idempotency;
pub mod openapi;
mod projects;
pub mod rate_limits;
mod records;
mod request;
mod respond;
pub mod server;
mod sites;
mod tokens;
mod tsig_keys;
mod whoami;
mod zones;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ApiResult};
pub use extract::{Caller, Json, PageQuery};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::hosting::Jobs;
use crate::store::Store;

/// Shared by every handler, behind one `Arc`: axum clones the state for every extractor and
/// middleware that takes it, several times a request, and a clone of the fields themselves
/// is a dozen reference counts.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` holds.
pub struct Shared {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub config: Arc<Config>,
    pub jobs: Jobs,
    pub rate_limits: Arc<rate_limits::RateLimits>,
    /// Zone names tenants may not own.
    pub reserved: Arc<crate::domain::Reserved>,
    /// Seals and opens the secrets the store keeps (`crate::seal`).
    pub sealer: Arc<crate::seal::Sealer>,
    /// Readiness and metrics (`health`).
    pub observe: health::Observe,
    /// The DNS listener's bound address (what clients are told, unless `[dns] public_address`).
    pub dns_addr: std::net::SocketAddr,
}

/// Every resource's routes under `/v1`, and the OpenAPI document they make.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(whoami::routes())
        .merge(zones::routes())
        .merge(dnssec::routes())
        .merge(records::routes())
        .merge(batch::routes())
        .merge(sites::routes())
        .merge(certificates::routes())
        .merge(projects::routes())
        .merge(tokens::routes())
        .merge(tsig_keys::routes())
        .merge(events::routes())
}

/// The API's OpenAPI 3.1 document, generated from the handlers and views.
pub fn openapi_document() -> serde_json::Value {
    let (_, doc) = OpenApiRouter::new().nest("/v1", v1()).split_for_parts();
    openapi::finish(doc)
}

pub fn router(state: AppState) -> Router {
    // Inside the nest, so the layer sees `/zones`, not `/v1/zones`: stored keys and
    // fingerprints have always been made from the path under `/v1`.
    let keyed = v1().route_layer(middleware::from_fn_with_state(state.clone(), idempotency::layer));
    let (v1, doc) = OpenApiRouter::new().nest("/v1", keyed).split_for_parts();
    let document = axum::body::Bytes::from(openapi::finish(doc).to_string());
    let v1 = v1.route("/v1/openapi.json", get(move || openapi::serve(document.clone())));
    let observe = state.observe.clone();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz).with_state(observe))
        .merge(v1)
        .route_layer(middleware::from_fn(request::route))
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
        .layer(middleware::from_fn_with_state(state.clone(), request::layer))
        .with_state(state)
}
