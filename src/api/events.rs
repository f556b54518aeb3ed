//! `GET /v1/events`: the team's audit log (who changed what, when, by which request).
//! An account-level view: it needs `tokens:read`; a zone-restricted token sees only the
//! changes made in its zones.

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use uuid::Uuid;

use super::{ApiError, ApiResult, AppState, Caller, PageQuery, page};
use crate::domain::{Resource, Scope};

const TYPES: &[&str] = &["team", "token", "zone", "record", "project", "site"];

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(list))
}

#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "account",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("resource_type" = Option<String>, Query),
        ("resource_id" = Option<Uuid>, Query),
    ),
    responses((status = 200, body = super::openapi::EventList)),
)]
pub(super) async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery, uri: Uri) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Tokens))?.team.id;
    let zones = caller.0.zones.clone();
    let (mut rtype, mut rid) = (None, None);
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("resource_type", v) => {
                if !TYPES.contains(&v) {
                    return Err(ApiError::bad_request(
                        "invalid_filter",
                        format!("resource_type is one of {}", TYPES.join(", ")),
                    ));
                }
                rtype = Some(v.to_string());
            }
            ("resource_id", v) => {
                rid = Some(
                    Uuid::try_parse(v)
                        .map_err(|_| ApiError::bad_request("invalid_filter", "resource_id is not a UUID"))?,
                );
            }
            _ => {}
        }
    }
    let (after, limit) = (q.after, q.limit);
    let p = st
        .store
        .read(move |r| r.events(team, rtype, rid, zones.as_deref(), after, limit))
        .await?;
    Ok(page(p.items, &q, p.next, p.total))
}
