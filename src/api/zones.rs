//! `/v1/zones`: a team's DNS zones.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{if_match, parse_id, with_etag};
use super::idempotency::Idempotency;
use super::respond::{Data, List, created, data, page};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery};
use crate::domain::{DomainName, Resource, Scope, Soa, Timestamp, USER_TYPES, Zone, ZoneSeed, ZoneState};
use crate::store::Page;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(export))
}

/// A zone as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ZoneView {
    pub id: Uuid,
    pub name: String,
    pub serial: u32,
    /// The apex NS names: what to set at the registrar.
    pub nameservers: Vec<String>,
    pub soa: SoaView,
    /// Records of the zone, its SOA included.
    pub record_count: u64,
    /// Whether the zone is to be signed (DNSSEC); `GET …/dnssec` says where signing stands.
    pub dnssec: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Whether every secondary nameserver of the platform serves this serial: true once the
    /// change is answered everywhere (always, where there are none). Poll it after a change,
    /// before relying on it from the outside (an ACME challenge, say).
    pub propagated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SoaView {
    pub mname: String,
    pub rname: String,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    pub ttl: u32,
}

impl From<&Soa> for SoaView {
    fn from(s: &Soa) -> Self {
        Self {
            mname: s.mname.clone(),
            rname: s.rname.clone(),
            refresh: s.refresh,
            retry: s.retry,
            expire: s.expire,
            minimum: s.minimum,
            ttl: s.ttl,
        }
    }
}

impl ZoneView {
    /// `z` as shown, its propagation as `st`'s secondaries see it.
    fn of(st: &AppState, z: &Zone) -> Self {
        let propagated = st
            .observe
            .secondaries
            .as_ref()
            .is_none_or(|s| s.propagated(z.id, z.serial));
        Self {
            id: z.id,
            name: z.name.to_string(),
            serial: z.serial,
            nameservers: z.nameservers.clone(),
            soa: SoaView::from(&z.soa),
            record_count: z.record_count + 1, // the SOA is a record too
            dnssec: z.dnssec.as_ref().is_some_and(|d| d.state != ZoneState::Disabling),
            created_at: z.created_at,
            updated_at: z.updated_at,
            propagated,
        }
    }
}

/// A zone as an RFC 1035 master file.
#[derive(Serialize, ToSchema)]
pub struct ZoneExportView {
    pub zone_id: Uuid,
    pub name: String,
    pub serial: u32,
    /// Always `rfc1035`.
    pub format: String,
    pub text: String,
}

#[utoipa::path(
    get,
    path = "/zones",
    tag = "dns",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = List<ZoneView>)),
)]
async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let (limit, after) = (q.limit, q.after);
    let only = caller.zones.clone();
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
                Ok(Page { items, next, total })
            }
        })
        .await?;
    Ok(page(
        p.items.iter().map(|z| ZoneView::of(&st, z)).collect(),
        &q,
        p.next,
        p.total,
    ))
}

#[utoipa::path(
    get,
    path = "/zones/{zone_id}",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses((status = 200, body = Data<ZoneView>, headers(("ETag" = String, description = "The zone serial")))),
)]
async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    let zone = st.store.read_page(|r| r.team_zone(team, id))?;
    Ok(with_etag(data(StatusCode::OK, ZoneView::of(&st, &zone)), zone.serial))
}

/// What a zone PATCH changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateZone {
    /// `true` signs the zone (DNSSEC: a new key, every RRset signed, CDS/CDNSKEY published);
    /// `false` starts turning signing off (CDS/CDNSKEY DELETE; the zone stays signed until
    /// `POST …/dnssec/ds-seen` confirms the parent's DS is gone).
    dnssec: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/zones/{zone_id}",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone"), ("If-Match" = Option<String>, Header, description = "The zone's ETag")),
    request_body = UpdateZone,
    responses(
        (status = 200, body = Data<ZoneView>, headers(("ETag" = String, description = "The zone serial"))),
        (status = 409, description = "A rollover is under way (turning off waits for it)"),
        (status = 412, description = "The zone changed since the ETag given"),
    ),
)]
async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<UpdateZone>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    let expected = if_match(&headers)?;
    let Some(on) = body.dnssec else {
        return Err(ApiError::invalid(
            "invalid_zone",
            vec![("dnssec", "nothing to change: give dnssec: true or false".into())],
        ));
    };
    let config = &st.config.dnssec;
    let ttl = config.dnskey_ttl;
    if on {
        charge_signing(&st, team, id, expected, false).await?;
    }
    let (zone, _) = if on {
        let enable = crate::store::Enable {
            key: super::dnssec::new_key(&st, id).await?,
            denial: config.denial,
            dnskey_ttl: ttl,
        };
        st.store
            .write_as(caller.actor(), move |tx| tx.enable_dnssec(team, id, expected, enable))
            .await?
    } else {
        let waits = crate::dnssec::waits(config, 0); // only the parent's DS TTL is waited for
        st.store
            .write_as(caller.actor(), move |tx| {
                tx.disable_dnssec(team, id, expected, waits, ttl)
            })
            .await?
    };
    Ok(with_etag(data(StatusCode::OK, ZoneView::of(&st, &zone)), zone.serial))
}

#[utoipa::path(
    get,
    path = "/zones/{zone_id}/export",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses((status = 200, body = Data<ZoneExportView>)),
)]
async fn export(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
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
    let view = ZoneExportView {
        zone_id: zone.id,
        name: zone.name.to_string(),
        serial: zone.serial,
        format: "rfc1035".into(),
        text,
    };
    Ok(data(StatusCode::OK, view))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateZone {
    name: Option<String>,
    /// An RFC 1035 master file whose records (but its SOA and apex NS: the platform's own
    /// replace them) become the zone's.
    zone_file: Option<String>,
}

#[utoipa::path(
    post,
    path = "/zones",
    tag = "dns",
    request_body = CreateZone,
    responses((status = 201, body = Data<ZoneView>, headers(("Location" = String), ("ETag" = String)))),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateZone>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Dns))?;
    caller.unrestricted()?;
    idem.once(&st, &caller, create_zone(&st, &caller, me.team.id, body))
        .await
}

async fn create_zone(st: &AppState, caller: &Caller, team: Uuid, body: CreateZone) -> ApiResult<Response> {
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
        Some(text) => seed_from_file(st, &text, given)?,
    };
    st.reserved
        .check(&seed.name)
        .map_err(|e| ApiError::invalid("reserved_name", vec![("name", e)]))?;
    let zone = st
        .store
        .write_as(caller.actor(), move |tx| tx.create_zone(team, seed))
        .await?;
    Ok(with_etag(
        created(format!("/v1/zones/{}", zone.id), ZoneView::of(st, &zone)),
        zone.serial,
    ))
}

/// Records signed per `provision` request a whole-zone signing costs beyond its own: turning
/// DNSSEC on (or rolling the key of) a 100,000-record zone spends the whole `provision`
/// quota at the default (ten a minute), so no team keeps the store's writer signing.
const SIGNED_RECORDS_PER_REQUEST: u64 = 10_000;

/// Spends the `provision` budget a whole-zone signing of `zone` costs beyond the request's
/// own. Turning on a zone that is signed already signs nothing (`rollover`: a key rollover
/// always does). A request whose If-Match (`expected`) is stale fails first and spends
/// nothing.
pub(super) async fn charge_signing(
    st: &AppState,
    team: Uuid,
    zone: Uuid,
    expected: Option<u32>,
    rollover: bool,
) -> ApiResult<()> {
    let z = st.store.read_page(move |r| {
        r.check_if_match(team, zone, expected)?;
        r.team_zone(team, zone)
    })?;
    if !rollover && z.dnssec.is_some() {
        return Ok(());
    }
    let extra = (z.record_count / SIGNED_RECORDS_PER_REQUEST) as u32;
    st.rate_limits
        .spend(team, super::rate_limits::Class::Provision, extra)
        .map_err(|wait| {
            let secs = wait.as_secs().max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "signing {} records spends {} of this account's provision budget; retry in {secs} s",
                    z.record_count,
                    extra + 1
                ),
            )
            .with_header(axum::http::header::RETRY_AFTER, &secs.to_string())
        })
}

/// A zone from a master file: its records, under the platform's SOA and apex NS.
fn seed_from_file(st: &AppState, text: &str, given: Option<DomainName>) -> ApiResult<ZoneSeed> {
    let file = crate::zonefile::parse(text, given.as_ref())
        .map_err(|e| ApiError::invalid("invalid_zone_file", vec![("zone_file", e)]))?;
    if let Some(g) = given.filter(|g| *g != file.name) {
        return Err(ApiError::invalid(
            "invalid_zone_file",
            vec![("zone_file", format!("the file is for {}, not {g}", file.name))],
        ));
    }
    let unsupported: Vec<String> = file
        .records
        .iter()
        .filter(|r| !r.managed && !USER_TYPES.contains(&r.data.rtype))
        .map(|r| format!("{} {}", r.name, r.data.rtype))
        .collect();
    if !unsupported.is_empty() {
        let message = format!("types the API does not take: {}", unsupported.join(", "));
        return Err(ApiError::invalid("invalid_zone_file", vec![("zone_file", message)]));
    }
    let mut seed = ZoneSeed::fresh(file.name.clone(), &st.config.dns, &st.config.zones);
    seed.records.extend(file.records.into_iter().filter(|r| !r.managed));
    Ok(seed)
}
