//! `/v1/zones`: a team's DNS zones.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::parse_id;
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery, created, data, page};
use crate::domain::{DomainName, Resource, Scope};
use crate::store::{Zone, ZoneSeed};

pub fn routes() -> Router<AppState> {
    Router::new().route("/zones", get(list).post(create)).route("/zones/{zone_id}", get(show))
}

pub fn view(z: &Zone) -> Value {
    json!({
        "id": z.id,
        "name": z.name,
        "serial": z.serial,
        "nameservers": z.nameservers,
        "soa": {
            "mname": z.soa.mname, "rname": z.soa.rname, "refresh": z.soa.refresh, "retry": z.soa.retry,
            "expire": z.soa.expire, "minimum": z.soa.minimum, "ttl": z.soa.ttl,
        },
        "record_count": z.record_count + 1, // the SOA is a record too
        "created_at": z.created_at,
        "updated_at": z.updated_at,
    })
}

async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let (limit, after) = (q.limit, q.after);
    let p = st.store.read(move |r| r.zones(team, after, limit)).await?;
    Ok(page(p.items.iter().map(view).collect(), &q, p.next, p.total))
}

async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let id = parse_id(&id, "zone")?;
    let zone = st.store.read(move |r| r.team_zone(team, id)).await?;
    Ok(data(StatusCode::OK, view(&zone)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateZone {
    name: String,
}

async fn create(State(st): State<AppState>, caller: Caller, Json(body): Json<CreateZone>) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let name = DomainName::parse_zone(&body.name).map_err(|e| ApiError::invalid("invalid_zone", vec![("name", e.0)]))?;
    let seed = ZoneSeed::fresh(name, &st.config.dns, &st.config.zones);
    let zone = st.store.write(move |tx| tx.create_zone(team, seed)).await?;
    Ok(created(format!("/v1/zones/{}", zone.id), view(&zone)))
}
