//! `GET /v1/whoami`: which team and token a request runs as.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{Caller, data};

pub async fn show(caller: Caller) -> Response {
    let p = &caller.0;
    data(
        StatusCode::OK,
        json!({
            "team": { "id": p.team.id, "name": p.team.name },
            "token": {
                "id": p.token_id,
                "name": p.token_name,
                "scopes": p.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            },
        }),
    )
}
