//! `/v1/zones/{zone_id}/records`: resource records, the platform's managed ones included.
//!
//! The SOA is not stored as a row: it is synthesised from the zone and listed first, with the
//! zone's id as its record id (zone ids are older than any of their records' UUIDv7 ids, so
//! the SOA sorts first and cursors need no special case).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use axum::http::HeaderMap;

use super::extract::{etag, if_match, parse_id};
use super::idempotency::Idempotency;
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery, created, data, page};
use crate::domain::{DomainName, RecordData, Resource, Scope, USER_TYPES, check_ttl, parse_rdata};
use crate::store::{NewRecord, Record, RecordPatch, StoreError, Zone};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/zones/{zone_id}/records", get(list).post(create))
        .route("/zones/{zone_id}/records/batch", axum::routing::post(batch))
        .route(
            "/zones/{zone_id}/records/{record_id}",
            get(show).patch(update).delete(remove),
        )
}

pub fn view(r: &Record) -> Value {
    json!({
        "id": r.id, "zone_id": r.zone_id, "name": r.name, "type": r.rtype, "content": r.content,
        "ttl": r.ttl, "managed": r.managed, "created_at": r.created_at, "updated_at": r.updated_at,
    })
}

fn soa_view(z: &Zone) -> Value {
    let s = &z.soa;
    json!({
        "id": z.id, "zone_id": z.id, "name": z.name, "type": "SOA",
        "content": format!("{} {} {} {} {} {} {}", s.mname, s.rname, z.serial, s.refresh, s.retry, s.expire, s.minimum),
        "ttl": s.ttl, "managed": true, "created_at": z.created_at, "updated_at": z.updated_at,
    })
}

fn with_etag(r: &mut Response, serial: u32) {
    let (name, value) = etag(serial);
    if let Ok(v) = value.parse() {
        r.headers_mut().insert(name, v);
    }
}

fn managed_soa() -> ApiError {
    StoreError::Forbidden {
        code: "managed_record",
        message: "the SOA record is managed by the platform: its serial follows every change to the zone".into(),
    }
    .into()
}

#[utoipa::path(
    get,
    path = "/v1/zones/{zone_id}/records",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = super::openapi::RecordList)),
)]
pub(super) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone_id): Path<String>,
    q: PageQuery,
) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let (limit, after) = (q.limit, q.after);
    let (zone, p) = st
        .store
        .read(move |r| {
            let zone = r.team_zone(team, zone_id)?;
            let with_soa = after.is_none();
            let p = r.records(zone_id, after.or(Some(zone_id)), limit - usize::from(with_soa))?;
            Ok((zone, p))
        })
        .await?;
    let mut items = Vec::with_capacity(p.items.len() + 1);
    let mut next = p.next;
    if q.after.is_none() {
        items.push(soa_view(&zone));
        if q.limit == 1 && p.total > 0 {
            next = Some(zone.id);
        }
    }
    items.extend(p.items.iter().map(view));
    let mut r = page(items, &q, next, p.total + 1);
    with_etag(&mut r, zone.serial);
    Ok(r)
}

#[utoipa::path(
    get,
    path = "/v1/zones/{zone_id}/records/{record_id}",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("record_id" = Uuid, Path, description = "The record (the zone id for its SOA)"),
    ),
    responses((status = 200, body = super::openapi::RecordData)),
)]
pub(super) async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let id = parse_id(&id, "record")?;
    let (zone, record) = st
        .store
        .read(move |r| Ok((r.team_zone(team, zone_id)?, r.record(zone_id, id)?)))
        .await?;
    let mut r = match record {
        Some(rec) => data(StatusCode::OK, view(&rec)),
        None if id == zone.id => data(StatusCode::OK, soa_view(&zone)),
        None => return Err(ApiError::not_found("record")),
    };
    with_etag(&mut r, zone.serial);
    Ok(r)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRecord {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    content: String,
    ttl: Option<i64>,
}

/// Checks every field and reports all that are wrong at once.
fn validate(
    zone: &DomainName,
    name: Option<&str>,
    rtype: &str,
    content: &str,
    ttl: Option<i64>,
) -> Result<(Option<DomainName>, RecordData, Option<u32>), ApiError> {
    let mut errors = Vec::new();
    let name = name.and_then(|n| {
        DomainName::resolve_in(n, zone)
            .map_err(|e| errors.push(("name", e.0)))
            .ok()
    });
    let upper = rtype.to_ascii_uppercase();
    let data = if !USER_TYPES.contains(&upper.as_str()) {
        errors.push((
            "type",
            format!("{rtype:?} cannot be created here; use one of {}", USER_TYPES.join(", ")),
        ));
        None
    } else {
        parse_rdata(&upper, content, zone)
            .map_err(|e| errors.push(("content", e)))
            .ok()
    };
    let ttl = ttl.and_then(|t| check_ttl(t).map_err(|e| errors.push(("ttl", e))).ok());
    match data {
        Some(data) if errors.is_empty() => Ok((name, data, ttl)),
        _ => Err(ApiError::invalid("invalid_record", errors)),
    }
}

#[utoipa::path(
    post,
    path = "/v1/zones/{zone_id}/records",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    request_body = CreateRecord,
    responses(
        (status = 201, body = super::openapi::RecordData, headers(("Location" = String), ("ETag" = String))),
    ),
)]
pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
    idem: Idempotency,
    Json(body): Json<CreateRecord>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Dns))?;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let expected = if_match(&headers)?;
    idem.once(&st, me, create_record(&st, me.team.id, zone_id, expected, body))
        .await
}

async fn create_record(
    st: &AppState,
    team: uuid::Uuid,
    zone_id: uuid::Uuid,
    expected: Option<u32>,
    body: CreateRecord,
) -> ApiResult<Response> {
    let zone = st.store.read(move |r| r.team_zone(team, zone_id)).await?;
    let (name, data, ttl) = validate(&zone.name, Some(&body.name), &body.rtype, &body.content, body.ttl)?;
    let new = NewRecord {
        name: name.expect("validated"),
        data,
        ttl: ttl.unwrap_or(st.config.zones.default_ttl),
        managed: false,
        site_id: None,
    };
    let (record, serial) = st
        .store
        .write(move |tx| {
            tx.zone_serial(team, zone_id, expected)?;
            let record = tx.create_record(team, zone_id, new)?;
            Ok((record, tx.zone_serial(team, zone_id, None)?))
        })
        .await?;
    let mut r = created(format!("/v1/zones/{zone_id}/records/{}", record.id), view(&record));
    with_etag(&mut r, serial);
    Ok(r)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateRecord {
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    content: Option<String>,
    ttl: Option<i64>,
}

#[utoipa::path(
    patch,
    path = "/v1/zones/{zone_id}/records/{record_id}",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("record_id" = Uuid, Path, description = "The record (the zone id for its SOA)"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    request_body = UpdateRecord,
    responses((status = 200, body = super::openapi::RecordData)),
)]
pub(super) async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<UpdateRecord>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let expected = if_match(&headers)?;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let id = parse_id(&id, "record")?;
    let (zone, old) = st
        .store
        .read(move |r| Ok((r.team_zone(team, zone_id)?, r.record(zone_id, id)?)))
        .await?;
    let old = match old {
        Some(old) => old,
        None if id == zone.id => return Err(managed_soa()),
        None => return Err(ApiError::not_found("record")),
    };
    if old.managed {
        return Err(crate::store::managed_error(&old).into());
    }
    let type_changes = body
        .rtype
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case(&old.rtype));
    if type_changes && body.content.is_none() {
        return Err(ApiError::invalid(
            "invalid_record",
            vec![("content", "a new type needs new content".into())],
        ));
    }
    let rtype = body.rtype.as_deref().unwrap_or(&old.rtype);
    let content = body.content.as_deref().unwrap_or(&old.content);
    let (name, data, ttl) = validate(&zone.name, body.name.as_deref(), rtype, content, body.ttl)?;
    let patch = RecordPatch {
        name,
        data: Some(data),
        ttl,
    };
    let (record, serial) = st
        .store
        .write(move |tx| {
            tx.zone_serial(team, zone_id, expected)?;
            let record = tx.update_record(team, zone_id, id, patch)?;
            Ok((record, tx.zone_serial(team, zone_id, None)?))
        })
        .await?;
    let mut r = super::data(StatusCode::OK, view(&record));
    with_etag(&mut r, serial);
    Ok(r)
}

#[utoipa::path(
    delete,
    path = "/v1/zones/{zone_id}/records/{record_id}",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("record_id" = Uuid, Path, description = "The record (the zone id for its SOA)"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    responses((status = 204, description = "Deleted")),
)]
pub(super) async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let id = parse_id(&id, "record")?;
    let expected = if_match(&headers)?;
    let result = st
        .store
        .write(move |tx| {
            tx.zone_serial(team, zone_id, expected)?;
            tx.delete_record(team, zone_id, id)?;
            tx.zone_serial(team, zone_id, None)
        })
        .await;
    match result {
        Ok(serial) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            with_etag(&mut r, serial);
            Ok(r)
        }
        Err(StoreError::NotFound("record")) if id == zone_id => Err(managed_soa()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchPatch {
    id: uuid::Uuid,
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    content: Option<String>,
    ttl: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchBody {
    #[serde(default)]
    deletes: Vec<uuid::Uuid>,
    #[serde(default)]
    patches: Vec<BatchPatch>,
    #[serde(default)]
    creates: Vec<CreateRecord>,
}

/// `POST /v1/zones/{id}/records/batch`: deletes, patches and creates applied in one
/// transaction and one snapshot swap, or not at all (422 naming each failing item).
#[utoipa::path(
    post,
    path = "/v1/zones/{zone_id}/records/batch",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    request_body = BatchBody,
    responses((status = 200, body = super::openapi::BatchData)),
)]
pub(super) async fn batch(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
    idem: Idempotency,
    Json(body): Json<BatchBody>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Dns))?;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let expected = if_match(&headers)?;
    idem.once(&st, me, apply_batch(&st, me.team.id, zone_id, expected, body))
        .await
}

async fn apply_batch(
    st: &AppState,
    team: uuid::Uuid,
    zone_id: uuid::Uuid,
    expected: Option<u32>,
    body: BatchBody,
) -> ApiResult<Response> {
    use crate::store::{Batch, MAX_BATCH_ITEMS};
    let items = body.deletes.len() + body.patches.len() + body.creates.len();
    if items == 0 || items > MAX_BATCH_ITEMS {
        return Err(ApiError::invalid(
            "invalid_batch",
            vec![(
                "batch",
                format!("a batch holds 1 to {MAX_BATCH_ITEMS} items, not {items}"),
            )],
        ));
    }
    let ids: Vec<uuid::Uuid> = body.patches.iter().map(|p| p.id).collect();
    let (zone, olds) = st
        .store
        .read(move |r| {
            let zone = r.team_zone(team, zone_id)?;
            let olds = ids
                .iter()
                .map(|id| r.record(zone_id, *id))
                .collect::<crate::store::Result<Vec<_>>>()?;
            Ok((zone, olds))
        })
        .await?;
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut batch = Batch {
        deletes: body.deletes,
        ..Default::default()
    };
    let default_ttl = st.config.zones.default_ttl;
    for (i, (p, old)) in body.patches.into_iter().zip(olds).enumerate() {
        let Some(old) = old else {
            errors.push((format!("patches[{i}].id"), "no such record in this zone".into()));
            continue;
        };
        let rtype = p.rtype.unwrap_or_else(|| old.rtype.clone());
        let content = p.content.unwrap_or_else(|| old.content.clone());
        match validate(
            &zone.name,
            Some(p.name.as_deref().unwrap_or(old.name.as_str())),
            &rtype,
            &content,
            p.ttl,
        ) {
            Ok((name, data, ttl)) => batch.patches.push((
                p.id,
                NewRecord {
                    name: name.expect("given"),
                    data,
                    ttl: ttl.unwrap_or(old.ttl),
                    managed: false,
                    site_id: None,
                },
            )),
            Err(e) => errors.extend(
                e.fields
                    .into_iter()
                    .map(|(k, v)| (format!("patches[{i}].{k}"), v.as_str().unwrap_or("").to_string())),
            ),
        }
    }
    for (i, c) in body.creates.into_iter().enumerate() {
        match validate(&zone.name, Some(&c.name), &c.rtype, &c.content, c.ttl) {
            Ok((name, data, ttl)) => batch.creates.push(NewRecord {
                name: name.expect("given"),
                data,
                ttl: ttl.unwrap_or(default_ttl),
                managed: false,
                site_id: None,
            }),
            Err(e) => errors.extend(
                e.fields
                    .into_iter()
                    .map(|(k, v)| (format!("creates[{i}].{k}"), v.as_str().unwrap_or("").to_string())),
            ),
        }
    }
    if !errors.is_empty() {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_batch",
            format!("{} items of the batch are invalid; nothing was applied", errors.len()),
        );
        e.fields = errors.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        return Err(e);
    }
    let outcome = st
        .store
        .write(move |tx| {
            tx.zone_serial(team, zone_id, expected)?;
            tx.apply_batch(team, zone_id, batch)
        })
        .await?;
    let mut r = super::data(
        StatusCode::OK,
        json!({
            "deleted": outcome.deleted,
            "updated": outcome.updated.iter().map(view).collect::<Vec<_>>(),
            "created": outcome.created.iter().map(view).collect::<Vec<_>>(),
            "serial": outcome.serial,
        }),
    );
    with_etag(&mut r, outcome.serial);
    Ok(r)
}
