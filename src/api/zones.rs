//! `/v1/zones`: a team's DNS zones.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::parse_id;
use super::idempotency::Idempotency;
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery, created, data, page};
use crate::domain::{DomainName, Resource, Scope};
use crate::store::{Zone, ZoneSeed};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/zones", get(list).post(create))
        .route("/zones/{zone_id}", get(show))
        .route("/zones/{zone_id}/export", get(export))
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

#[utoipa::path(
    get,
    path = "/v1/zones",
    tag = "dns",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = super::openapi::ZoneList)),
)]
pub(super) async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let (limit, after) = (q.limit, q.after);
    let only = caller.0.zones.clone();
    let p = st
        .store
        .read(move |r| match only {
            None => r.zones(team, after, limit),
            // A zone-restricted token lists its own few zones.
            Some(ids) => {
                let mut all: Vec<_> = ids.iter().filter_map(|id| r.team_zone(team, *id).ok()).collect();
                all.sort_by_key(|z| z.id);
                let total = all.len() as u64;
                let mut items: Vec<_> = all.into_iter().filter(|z| after.is_none_or(|a| z.id > a)).collect();
                let next = (items.len() > limit).then(|| items[limit - 1].id);
                items.truncate(limit);
                Ok(crate::store::Page { items, next, total })
            }
        })
        .await?;
    Ok(page(p.items.iter().map(view).collect(), &q, p.next, p.total))
}

#[utoipa::path(
    get,
    path = "/v1/zones/{zone_id}",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses(
        (status = 200, body = super::openapi::ZoneData, headers(("ETag" = String, description = "The zone serial"))),
    ),
)]
pub(super) async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    let zone = st.store.read(move |r| r.team_zone(team, id)).await?;
    let mut r = data(StatusCode::OK, view(&zone));
    let (name, value) = super::extract::etag(zone.serial);
    r.headers_mut().insert(name, value.parse().expect("digits"));
    Ok(r)
}

#[utoipa::path(
    get,
    path = "/v1/zones/{zone_id}/export",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses((status = 200, body = super::openapi::ZoneExportData)),
)]
pub(super) async fn export(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    let (zone, records) = st
        .store
        .read(move |r| {
            let zone = r.team_zone(team, id)?;
            let mut rows = Vec::with_capacity(zone.record_count as usize);
            r.each_record(id, |rec| {
                rows.push(rec);
                Ok(())
            })?;
            Ok((zone, rows))
        })
        .await?;
    let text = crate::zonefile::export(&zone, &records);
    Ok(data(
        StatusCode::OK,
        json!({ "zone_id": zone.id, "name": zone.name, "serial": zone.serial, "format": "rfc1035", "text": text }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateZone {
    name: Option<String>,
    /// An RFC 1035 master file whose records (but its SOA and apex NS: the platform's own
    /// replace them) become the zone's.
    zone_file: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/zones",
    tag = "dns",
    request_body = CreateZone,
    responses(
        (status = 201, body = super::openapi::ZoneData, headers(("Location" = String), ("ETag" = String))),
    ),
)]
pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateZone>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Dns))?;
    caller.unrestricted()?;
    idem.once(&st, me, create_zone(&st, me.team.id, body)).await
}

async fn create_zone(st: &AppState, team: uuid::Uuid, body: CreateZone) -> ApiResult<Response> {
    let given = match &body.name {
        Some(n) => Some(DomainName::parse_zone(n).map_err(|e| ApiError::invalid("invalid_zone", vec![("name", e.0)]))?),
        None => None,
    };
    let seed = match body.zone_file {
        None => {
            let name = given.ok_or_else(|| {
                ApiError::invalid(
                    "invalid_zone",
                    vec![("name", "give a name, a zone_file, or both".into())],
                )
            })?;
            ZoneSeed::fresh(name, &st.config.dns, &st.config.zones)
        }
        Some(text) => {
            let file = crate::zonefile::parse(&text, given.as_ref())
                .map_err(|e| ApiError::invalid("invalid_zone_file", vec![("zone_file", e)]))?;
            if given.as_ref().is_some_and(|g| *g != file.name) {
                return Err(ApiError::invalid(
                    "invalid_zone_file",
                    vec![(
                        "zone_file",
                        format!("the file is for {}, not {}", file.name, given.unwrap()),
                    )],
                ));
            }
            let unsupported: Vec<String> = file
                .records
                .iter()
                .filter(|r| !r.managed && !crate::domain::USER_TYPES.contains(&r.data.rtype.to_string().as_str()))
                .map(|r| format!("{} {}", r.name, r.data.rtype))
                .collect();
            if !unsupported.is_empty() {
                return Err(ApiError::invalid(
                    "invalid_zone_file",
                    vec![(
                        "zone_file",
                        format!("types the API does not take: {}", unsupported.join(", ")),
                    )],
                ));
            }
            let mut seed = ZoneSeed::fresh(file.name.clone(), &st.config.dns, &st.config.zones);
            seed.records.extend(file.records.into_iter().filter(|r| !r.managed));
            seed
        }
    };
    st.reserved
        .check(&seed.name)
        .map_err(|e| ApiError::invalid("reserved_name", vec![("name", e)]))?;
    let zone = st.store.write(move |tx| tx.create_zone(team, seed)).await?;
    let mut r = created(format!("/v1/zones/{}", zone.id), view(&zone));
    let (name, value) = super::extract::etag(zone.serial);
    r.headers_mut().insert(name, value.parse().expect("digits"));
    Ok(r)
}
