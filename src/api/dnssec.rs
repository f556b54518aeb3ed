//! `/v1/zones/{zone_id}/dnssec`: a zone's signing, its keys and what the parent needs (DS),
//! a key rollover, and the confirmation that the parent's DS is as the zone asks.
//! Signing is switched on and off by `PATCH /v1/zones/{id}` (`zones`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{parse_id, with_etag};
use super::idempotency::Idempotency;
use super::respond::{Data, data};
use super::{ApiResult, AppState, Caller};
use crate::dnssec::keys::{dnskey_text, ds_text};
use crate::dnssec::records::{dnskey, ds};
use crate::domain::{DnssecKey, Phase, Resource, Scope, Timestamp, Zone};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(rollover))
        .routes(routes!(ds_seen))
}

/// A zone's DNSSEC.
#[derive(Serialize, ToSchema)]
pub struct DnssecView {
    /// The switch: whether the zone is to be signed (`false` while it is being turned off).
    pub enabled: bool,
    /// `unsigned`; `signed` (the parent's DS not confirmed yet); `secure` (confirmed by
    /// `ds-seen`); `disabling` (still signed, CDS/CDNSKEY DELETE published until `ds-seen`,
    /// or turning it off again, confirms the parent's DS is gone, and then until `unsigned_at`).
    pub state: String,
    /// While `disabling` once the parent's DS is confirmed gone: when the zone is served
    /// unsigned (resolvers may cache the DS until then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsigned_at: Option<Timestamp>,
    /// The zone's keys: one combined signing key, two while a rollover runs.
    pub keys: Vec<KeyView>,
    /// The rollover under way, if any.
    pub rollover: Option<RolloverView>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub tag: u16,
    /// 13 (ECDSAP256SHA256) or 15 (ED25519).
    pub algorithm: u8,
    /// 257: zone key and secure entry point (a CSK).
    pub flags: u16,
    /// The DNSKEY RDATA in presentation form.
    pub dnskey: String,
    /// The DS records for the parent, digest types 2 (SHA-256) and 4 (SHA-384), as
    /// `dnssec-dsfromkey` prints them after owner, class and type.
    pub ds: Vec<String>,
    /// `active` (signs the zone), `published` (a rollover's new key, not signing the zone
    /// yet) or `retiring` (a rollover's old key, leaving once caches forget it).
    pub state: String,
    pub created_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
pub struct RolloverView {
    /// `publish` (the new key is in the DNSKEY set; caches learn it), `ready` (the new key
    /// signs the zone and its CDS/CDNSKEY are published: put its DS at the parent, then
    /// `ds-seen`), `retire` (the old key leaves once caches forget it and its DS).
    pub state: String,
    /// `time` (the next step is taken at `next_step_at`) or `ds_seen`.
    pub waiting_for: String,
    pub next_step_at: Option<Timestamp>,
    pub started_at: Timestamp,
    pub old_key: u16,
    pub new_key: u16,
}

fn view(zone: &Zone, keys: &[DnssecKey]) -> DnssecView {
    let apex = zone.name.to_wire();
    let tag = |id: Uuid| keys.iter().find(|k| k.id == id).map_or(0, |k| k.tag);
    let Some(d) = &zone.dnssec else {
        return DnssecView {
            enabled: false,
            state: "unsigned".into(),
            unsigned_at: None,
            keys: Vec::new(),
            rollover: None,
        };
    };
    DnssecView {
        enabled: d.state != crate::domain::ZoneState::Disabling,
        state: d.state.as_str().into(),
        unsigned_at: d.unsign_at,
        keys: keys
            .iter()
            .map(|k| KeyView {
                tag: k.tag,
                algorithm: k.algorithm.number(),
                flags: k.flags,
                dnskey: dnskey_text(&dnskey(k)),
                ds: ds(&apex, k).iter().map(|d| ds_text(d)).collect(),
                state: k.state.as_str().into(),
                created_at: k.created_at,
            })
            .collect(),
        rollover: d.rollover.as_ref().map(|r| RolloverView {
            state: r.phase.as_str().into(),
            waiting_for: if r.phase == Phase::Ready { "ds_seen" } else { "time" }.into(),
            next_step_at: r.next_step_at,
            started_at: r.started_at,
            old_key: tag(r.old_key),
            new_key: tag(r.new_key),
        }),
    }
}

/// The zone's DNSSEC view with its ETag (the zone's serial), as read now.
async fn current(st: &AppState, team: Uuid, id: Uuid, status: StatusCode) -> ApiResult<Response> {
    let (zone, keys) = st
        .store
        .read(move |r| {
            let zone = r.team_zone(team, id)?;
            let keys = r.dnssec_keys(id)?;
            Ok((zone, keys))
        })
        .await?;
    Ok(with_etag(data(status, view(&zone, &keys)), zone.serial))
}

#[utoipa::path(
    get,
    path = "/zones/{zone_id}/dnssec",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses((status = 200, body = Data<DnssecView>, headers(("ETag" = String, description = "The zone serial")))),
)]
async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    current(&st, team, id, StatusCode::OK).await
}

/// A new signing key for `zone` with the configured algorithm, sealed; made on the blocking
/// pool (key generation and sealing are CPU work).
pub(super) async fn new_key(st: &AppState, zone: Uuid) -> ApiResult<DnssecKey> {
    let (sealer, algorithm) = (st.sealer.clone(), st.config.dnssec.algorithm);
    tokio::task::spawn_blocking(move || crate::dnssec::new_key(algorithm, zone, &sealer))
        .await
        .map_err(|e| super::ApiError::internal(format_args!("key generation failed: {e}")))
}

#[utoipa::path(
    post,
    path = "/zones/{zone_id}/dnssec/rollover",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses(
        (status = 202, body = Data<DnssecView>, description = "The rollover started; it moves on by itself (GET …/dnssec)"),
        (status = 409, description = "The zone is unsigned, being turned off, or already rolling"),
    ),
)]
async fn rollover(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    idem.once(&st, &caller, async {
        super::zones::charge_signing(&st, team, id, None, true).await?;
        let config = &st.config.dnssec;
        let key = new_key(&st, id).await?;
        let (waits, ttl) = (crate::dnssec::waits(config, 0), config.dnskey_ttl);
        st.store
            .write_as(caller.actor(), move |tx| tx.start_rollover(team, id, key, waits, ttl))
            .await?;
        current(&st, team, id, StatusCode::ACCEPTED).await
    })
    .await
}

#[utoipa::path(
    post,
    path = "/zones/{zone_id}/dnssec/ds-seen",
    tag = "dns",
    params(("zone_id" = Uuid, Path, description = "The zone")),
    responses(
        (status = 200, body = Data<DnssecView>, description = "The parent's DS is as the zone's CDS asks: for the active key (secure), for a rollover's new key (the old one retires), or gone (signing turned off)"),
        (status = 409, description = "The zone is unsigned, or a rollover is not waiting for a DS"),
    ),
)]
async fn ds_seen(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let id = caller.zone(parse_id(&id, "zone")?)?;
    idem.once(&st, &caller, async {
        let max_ttl = st
            .store
            .read(move |r| {
                let zone = r.team_zone(team, id)?;
                r.max_ttl(&zone)
            })
            .await?;
        let config = &st.config.dnssec;
        let (waits, ttl) = (crate::dnssec::waits(config, max_ttl), config.dnskey_ttl);
        st.store
            .write_as(caller.actor(), move |tx| tx.dnssec_ds_seen(team, id, waits, ttl))
            .await?;
        current(&st, team, id, StatusCode::OK).await
    })
    .await
}
