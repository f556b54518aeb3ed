//! `GET /v1/whoami`: which team and token a request runs as, and the budgets it spends.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::rate_limits::{Admitted, Class};
use super::respond::{Data, data};
use super::{AppState, Caller};
use crate::domain::{Scope, Timestamp};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

#[derive(Serialize, ToSchema)]
pub struct WhoamiView {
    pub team: TeamView,
    pub token: WhoamiToken,
    pub rate_limits: RateLimitsView,
}

#[derive(Serialize, ToSchema)]
pub struct TeamView {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct WhoamiToken {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub zones: Option<Vec<Uuid>>,
    pub expires_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct RateLimitsView {
    pub policies: Vec<RatePolicy>,
    /// What is left of the read budget after this request.
    pub read_remaining: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RatePolicy {
    pub class: String,
    pub per_minute: u32,
    pub burst: u32,
}

#[utoipa::path(get, path = "/whoami", tag = "account", responses((status = 200, body = Data<WhoamiView>)))]
async fn show(State(st): State<AppState>, caller: Caller, admitted: Option<Extension<Admitted>>) -> Response {
    let limits = &st.rate_limits;
    let policies = Class::ALL
        .iter()
        .map(|c| RatePolicy {
            class: c.name().into(),
            per_minute: limits.per_minute(*c),
            burst: limits.per_minute(*c),
        })
        .collect();
    let p = &caller.principal;
    data(
        StatusCode::OK,
        WhoamiView {
            team: TeamView {
                id: p.team.id,
                name: p.team.name.clone(),
            },
            token: WhoamiToken {
                id: p.token_id,
                name: p.token_name.clone(),
                scopes: p.scopes.clone(),
                zones: p.zones.clone(),
                expires_at: p.expires,
            },
            rate_limits: RateLimitsView {
                policies,
                read_remaining: admitted.map(|Extension(a)| a.remaining),
            },
        },
    )
}
