//! `/v1/zones/{zone_id}/records`: resource records, the platform's managed ones included.
//!
//! The SOA is not stored as a row: it is synthesised from the zone and listed first, with the
//! zone's id as its record id (zone ids are older than any of their records' UUIDv7 ids, so
//! the SOA sorts first and cursors need no special case).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::RecordType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{if_match, parse_id, with_etag};
use super::idempotency::Idempotency;
use super::respond::{Data, List, ListBody, created, data};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery};
use crate::domain::{
    DomainName, NewRecord, Record, RecordData, Resource, Scope, Timestamp, USER_TYPES, Zone, check_ttl, parse_rdata,
    rules, user_type,
};
use crate::store::{RecordPatch, StoreError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

/// A record as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub id: Uuid,
    pub zone_id: Uuid,
    /// Fully qualified, without the trailing dot.
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    /// RFC 1035 presentation format.
    pub content: String,
    pub ttl: u32,
    /// The platform's: it cannot be edited or deleted.
    pub managed: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Record> for RecordView {
    fn from(r: &Record) -> Self {
        Self {
            id: r.id,
            zone_id: r.zone_id,
            name: r.name.to_string(),
            rtype: r.rtype.to_string(),
            content: r.content.clone(),
            ttl: r.ttl,
            managed: r.managed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl RecordView {
    /// The zone's SOA, as a record whose id is the zone's.
    fn soa(z: &Zone) -> Self {
        let s = &z.soa;
        Self {
            id: z.id,
            zone_id: z.id,
            name: z.name.to_string(),
            rtype: RecordType::SOA.to_string(),
            content: format!(
                "{} {} {} {} {} {} {}",
                s.mname, s.rname, z.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
            ttl: s.ttl,
            managed: true,
            created_at: z.created_at,
            updated_at: z.updated_at,
        }
    }
}

fn managed_soa() -> ApiError {
    let message = "the SOA record is managed by the platform: its serial follows every change to the zone";
    StoreError::Forbidden {
        code: "managed_record",
        message: message.into(),
    }
    .into()
}

#[utoipa::path(
    get,
    path = "/zones/{zone_id}/records",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = List<RecordView>)),
)]
async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone_id): Path<String>,
    q: PageQuery,
) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    // The rows are copied into the body as they are read (`Record::public_part`): a page
    // costs no decoding, no views and no allocation per record.
    let mut body = ListBody::with_capacity(q.limit * 256);
    let (zone, end) = st.store.read_page(|r| {
        let zone = r.team_zone(team, zone_id)?;
        let mut limit = q.limit;
        if q.after.is_none() {
            body.push(&RecordView::soa(&zone));
            limit -= 1;
        }
        let end = r.record_rows(zone_id, q.after.or(Some(zone_id)), limit, |row| {
            match Record::public_part(row) {
                Some(part) => body.push_json(&[part, b"}"]),
                None => body.push(&RecordView::from(&serde_json::from_slice::<Record>(row).map_err(
                    |e| StoreError::Internal(format!("a stored record of zone {zone_id} does not decode: {e}")),
                )?)),
            }
            Ok(())
        })?;
        Ok((zone, end))
    })?;
    // A first page of one item holds the SOA alone: the records come next.
    let next = match end.next {
        None if q.after.is_none() && q.limit == 1 && end.total > 0 => Some(zone.id),
        next => next,
    };
    Ok(with_etag(body.finish(&q, next, end.total + 1), zone.serial))
}

#[utoipa::path(
    get,
    path = "/zones/{zone_id}/records/{record_id}",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("record_id" = Uuid, Path, description = "The record (the zone id for its SOA)"),
    ),
    responses((status = 200, body = Data<RecordView>)),
)]
async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let id = parse_id(&id, "record")?;
    let (zone, record) = st
        .store
        .read_page(move |r| Ok((r.team_zone(team, zone_id)?, r.record(zone_id, id)?)))?;
    let view = match record {
        Some(rec) => RecordView::from(&rec),
        None if id == zone.id => RecordView::soa(&zone),
        None => return Err(ApiError::not_found("record")),
    };
    Ok(with_etag(data(StatusCode::OK, view), zone.serial))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRecord {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) rtype: String,
    pub(super) content: String,
    pub(super) ttl: Option<i64>,
}

/// Checks every field and reports all that are wrong at once.
pub(super) fn validate(
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
    let data = match user_type(rtype) {
        None => {
            let types: Vec<String> = USER_TYPES.iter().map(ToString::to_string).collect();
            errors.push((
                "type",
                format!("{rtype:?} cannot be created here; use one of {}", types.join(", ")),
            ));
            None
        }
        Some(t) => parse_rdata(t, content, zone)
            .map_err(|e| errors.push(("content", e)))
            .ok(),
    };
    let ttl = ttl.and_then(|t| check_ttl(t).map_err(|e| errors.push(("ttl", e))).ok());
    match data {
        Some(data) if errors.is_empty() => Ok((name, data, ttl)),
        _ => Err(ApiError::invalid("invalid_record", errors)),
    }
}

#[utoipa::path(
    post,
    path = "/zones/{zone_id}/records",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    request_body = CreateRecord,
    responses((status = 201, body = Data<RecordView>, headers(("Location" = String), ("ETag" = String)))),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
    idem: Idempotency,
    Json(body): Json<CreateRecord>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Dns))?;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let expected = if_match(&headers)?;
    idem.once(&st, &caller, create_record(&st, &caller, zone_id, expected, body))
        .await
}

async fn create_record(
    st: &AppState,
    caller: &Caller,
    zone_id: Uuid,
    expected: Option<u32>,
    body: CreateRecord,
) -> ApiResult<Response> {
    let team = caller.team.id;
    let zone = st.store.read_page(|r| r.team_zone(team, zone_id))?;
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
        .write_as(caller.actor(), move |tx| {
            tx.check_if_match(team, zone_id, expected)?;
            let record = tx.create_record(team, zone_id, new)?;
            Ok((record, tx.zone_serial(team, zone_id, None)?))
        })
        .await?;
    let r = created(
        format!("/v1/zones/{zone_id}/records/{}", record.id),
        RecordView::from(&record),
    );
    Ok(with_etag(r, serial))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateRecord {
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    content: Option<String>,
    ttl: Option<i64>,
}

#[utoipa::path(
    patch,
    path = "/zones/{zone_id}/records/{record_id}",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("record_id" = Uuid, Path, description = "The record (the zone id for its SOA)"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    request_body = UpdateRecord,
    responses((status = 200, body = Data<RecordView>)),
)]
async fn update(
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
    rules::editable(&old).map_err(StoreError::from)?;
    let old_type = old.rtype.to_string();
    let type_changes = body
        .rtype
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case(&old_type));
    if type_changes && body.content.is_none() {
        return Err(ApiError::invalid(
            "invalid_record",
            vec![("content", "a new type needs new content".into())],
        ));
    }
    let rtype = body.rtype.as_deref().unwrap_or(&old_type);
    let content = body.content.as_deref().unwrap_or(&old.content);
    let (name, rdata, ttl) = validate(&zone.name, body.name.as_deref(), rtype, content, body.ttl)?;
    let patch = RecordPatch {
        name,
        data: Some(rdata),
        ttl,
    };
    let (record, serial) = st
        .store
        .write_as(caller.actor(), move |tx| {
            tx.check_if_match(team, zone_id, expected)?;
            let record = tx.update_record(team, zone_id, id, patch)?;
            Ok((record, tx.zone_serial(team, zone_id, None)?))
        })
        .await?;
    Ok(with_etag(data(StatusCode::OK, RecordView::from(&record)), serial))
}

#[utoipa::path(
    delete,
    path = "/zones/{zone_id}/records/{record_id}",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("record_id" = Uuid, Path, description = "The record (the zone id for its SOA)"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    responses((status = 204, description = "Deleted")),
)]
async fn remove(
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
        .write_as(caller.actor(), move |tx| {
            tx.check_if_match(team, zone_id, expected)?;
            tx.delete_record(team, zone_id, id)?;
            tx.zone_serial(team, zone_id, None)
        })
        .await;
    match result {
        Ok(serial) => Ok(with_etag(StatusCode::NO_CONTENT.into_response(), serial)),
        Err(StoreError::NotFound("record")) if id == zone_id => Err(managed_soa()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rtype: RecordType, content: &str, site: bool) -> Record {
        let zone = DomainName::parse("example.com").unwrap();
        let new = NewRecord {
            name: DomainName::parse("wWw.example.com").unwrap(),
            data: parse_rdata(rtype, content, &zone).unwrap(),
            ttl: 300,
            managed: site,
            site_id: site.then(Uuid::now_v7),
        };
        Record::new(Uuid::now_v7(), &new, Timestamp::now())
    }

    /// A page copies each row's public part: it must be the very JSON the view makes, for
    /// every kind of content (quotes and backslashes escaped, non-ASCII, site ids, empty).
    #[test]
    fn a_rows_public_part_is_its_view() {
        let records = [
            record(RecordType::A, "192.0.2.1", false),
            record(RecordType::A, "192.0.2.1", true),
            record(
                RecordType::TXT,
                r#""v=spf1 \"quoted\" \\ back,\"rdata\":\"" "é""#,
                false,
            ),
            record(RecordType::TXT, r#""},\"site_id\":\"x""#, true),
            record(RecordType::MX, "10 mail.example.com", false),
            record(RecordType::CAA, r#"0 issue "letsencrypt.org""#, false),
        ];
        for r in &records {
            let row = serde_json::to_vec(r).unwrap();
            let part = Record::public_part(&row).expect("a row in the current order has a public part");
            let view = serde_json::to_vec(&RecordView::from(r)).unwrap();
            assert_eq!([part, b"}"].concat(), view, "{}", String::from_utf8_lossy(&row));
        }
    }

    /// Rows in the older field order, or anything else, are not mistaken for the new order.
    #[test]
    fn other_rows_have_no_public_part() {
        let r = record(RecordType::A, "192.0.2.1", true);
        let (id, zone, site) = (r.id, r.zone_id, r.site_id.unwrap());
        let (created, updated) = (
            serde_json::to_string(&r.created_at).unwrap(),
            serde_json::to_string(&r.updated_at).unwrap(),
        );
        let old = format!(
            r#"{{"id":"{id}","zone_id":"{zone}","name":"www.example.com","type":"A","content":"192.0.2.1","ttl":300,"managed":true,"site_id":"{site}","rdata":"c0000201","created_at":{created},"updated_at":{updated}}}"#
        );
        let old = old.into_bytes();
        assert!(serde_json::from_slice::<Record>(&old).is_ok());
        for row in [
            &old[..],
            b"",
            b"\"}",
            b",\"rdata\":\"00\"}",
            b"{\"x\":1,\"rdata\":\"00\"}",
        ] {
            assert_eq!(Record::public_part(row), None, "{}", String::from_utf8_lossy(row));
        }
        // Any cut of a row, or a row whose time was emptied, is read without a panic.
        let row = serde_json::to_vec(&r).unwrap();
        for i in 0..row.len() {
            let _ = (Record::public_part(&row[..i]), Record::public_part(&row[i..]));
        }
        let emptied = String::from_utf8(row)
            .unwrap()
            .replace(&updated[1..updated.len() - 1], "");
        assert!(Record::public_part(emptied.as_bytes()).is_some());
        assert_eq!(Record::public_part(br#"{"x":1,"updated_at":","rdata":"00"}"#), None);
    }
}
