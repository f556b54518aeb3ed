//! `GET /v1/whoami`: which team and token a request runs as.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use axum::Extension;
use axum::extract::State;

use super::limits::{Admitted, Class};
use super::{AppState, Caller, data};

#[utoipa::path(get, path = "/v1/whoami", tag = "account", responses((status = 200, body = super::openapi::WhoamiData)))]
pub async fn show(State(st): State<AppState>, caller: Caller, admitted: Option<Extension<Admitted>>) -> Response {
    let p = &caller.0;
    let policies: Vec<_> = Class::ALL
        .iter()
        .map(
            |c| json!({ "class": c.name(), "per_minute": st.limits.per_minute(*c), "burst": st.limits.per_minute(*c) }),
        )
        .collect();
    data(
        StatusCode::OK,
        json!({
            "team": { "id": p.team.id, "name": p.team.name },
            "token": {
                "id": p.token_id,
                "name": p.token_name,
                "scopes": p.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "zones": p.zones,
                "expires_at": p.expires.map(crate::domain::rfc3339_at),
            },
            "rate_limits": {
                "policies": policies,
                "read_remaining": admitted.map(|Extension(a)| a.remaining),
            },
        }),
    )
}
