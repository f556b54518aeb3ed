//! `/v1/tsig-keys`: a team's TSIG keys for RFC 2136 UPDATE and zone transfers by standard
//! tools (nsupdate, lego, certbot, octoDNS, external-dns…). ipx makes the secret, shows it
//! once with ready-to-paste snippets, and keeps it only sealed. A zone-restricted token sees
//! and makes only keys within its zones.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::parse_id;
use super::idempotency::{Idempotency, Secrets};
use super::respond::{Data, List, created, data, page};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery};
use crate::domain::{
    DomainName, KeyRule, KeySpec, Resource, Scope, Timestamp, TsigAlgorithm, TsigKey, key_label, key_name,
};
use crate::store::StoreError;

/// Most rules one key may hold.
const MAX_RULES: usize = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, revoke))
}

/// What a key may change in one zone.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub zone_id: Uuid,
    /// Owner names matched exactly, fully qualified without the trailing dot.
    pub names: Vec<String>,
    /// Names matched with everything below them.
    pub subtrees: Vec<String>,
    /// Record types; empty: every type the API accepts.
    pub types: Vec<String>,
}

/// A TSIG key as the API shows it: never its secret.
#[derive(Serialize, ToSchema)]
pub struct TsigKeyView {
    pub id: Uuid,
    /// The key's DNS name, what clients put in their TSIG record.
    pub name: String,
    /// `hmac-sha256`, `hmac-sha384`, `hmac-sha512` or `hmac-sha1`.
    pub algorithm: String,
    pub rules: Vec<RuleView>,
    /// Whether the key may transfer (AXFR/IXFR) the zones its rules name.
    pub transfer: bool,
    pub created_at: Timestamp,
}

impl From<&TsigKey> for TsigKeyView {
    fn from(k: &TsigKey) -> Self {
        let text = |names: &[DomainName]| names.iter().map(ToString::to_string).collect();
        Self {
            id: k.id,
            name: k.name.to_string(),
            algorithm: k.algorithm.to_string(),
            rules: k
                .rules
                .iter()
                .map(|r| RuleView {
                    zone_id: r.zone_id,
                    names: text(&r.names),
                    subtrees: text(&r.subtrees),
                    types: r.types.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            transfer: k.transfer,
            created_at: k.created_at,
        }
    }
}

/// Ready-to-paste client configuration, secret included.
#[derive(Serialize, ToSchema)]
pub struct Snippets {
    /// A shell command: nsupdate (bind9-dnsutils) with the key, and a first update.
    pub nsupdate: String,
    /// The same with knsupdate (knot-dnsutils).
    pub knsupdate: String,
    /// lego's environment and command line (`--dns rfc2136`).
    pub lego: String,
    /// certbot's credentials file for `--dns-rfc2136`.
    pub certbot: String,
}

/// A key just made, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedTsigKeyView {
    #[serde(flatten)]
    pub view: TsigKeyView,
    /// The secret, base64 (`null` in an idempotent replay).
    pub secret: String,
    pub snippets: Snippets,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRule {
    zone_id: Uuid,
    /// Owner names (relative, `@`, or fully qualified) matched exactly.
    #[serde(default)]
    names: Vec<String>,
    /// Names matched with everything below them.
    #[serde(default)]
    subtrees: Vec<String>,
    /// Record types; none: every type the API accepts.
    #[serde(default)]
    types: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    /// One DNS label; the key's DNS name is made from it and the team.
    name: String,
    /// `hmac-sha256` (the default), `hmac-sha384`, `hmac-sha512` or `hmac-sha1`.
    algorithm: Option<String>,
    rules: Vec<CreateRule>,
    /// May transfer (AXFR/IXFR) the zones its rules name.
    #[serde(default)]
    transfer: bool,
}

/// A 422 `invalid_tsig_key` naming each field at fault (`rules[0].names[1]`).
fn invalid(errors: Vec<(String, String)>) -> ApiError {
    let message = match errors.as_slice() {
        [(field, msg)] => format!("{field}: {msg}"),
        _ => format!("{} fields are invalid", errors.len()),
    };
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_tsig_key", message);
    e.fields = errors.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    e
}

/// The key a request asks for, checked field by field (zones against `zones`, the names of
/// the team's zones this caller reaches).
fn spec(body: CreateKey, zones: &[(Uuid, Option<DomainName>)]) -> ApiResult<KeySpec> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let label = key_label(&body.name).map_err(|e| errors.push(("name".into(), e))).ok();
    let algorithm = match body.algorithm.as_deref() {
        None => TsigAlgorithm::default(),
        Some(text) => text.parse().unwrap_or_else(|e| {
            errors.push(("algorithm".into(), e));
            TsigAlgorithm::default()
        }),
    };
    if body.rules.is_empty() || body.rules.len() > MAX_RULES {
        errors.push(("rules".into(), format!("a key has 1 to {MAX_RULES} rules")));
    }
    let mut rules = Vec::new();
    for (i, r) in body.rules.iter().enumerate().take(MAX_RULES) {
        let zone = zones
            .iter()
            .find(|(id, _)| *id == r.zone_id)
            .and_then(|(_, n)| n.as_ref());
        let Some(zone) = zone else {
            errors.push((
                format!("rules[{i}].zone_id"),
                format!("no zone {} in this account", r.zone_id),
            ));
            continue;
        };
        match KeyRule::parse(r.zone_id, zone, &r.names, &r.subtrees, &r.types) {
            Ok(rule) => rules.push(rule),
            Err(e) => errors.extend(e.into_iter().map(|(field, m)| (format!("rules[{i}].{field}"), m))),
        }
    }
    let (Some(label), true) = (label, errors.is_empty()) else {
        return Err(invalid(errors));
    };
    Ok(KeySpec {
        label,
        algorithm,
        rules,
        transfer: body.transfer,
    })
}

/// The snippets for `key` with `secret`, reaching this server at `host`:`port`.
fn snippets(key: &TsigKey, secret: &str, zone: &DomainName, (host, port): (String, u16)) -> Snippets {
    let rule = &key.rules[0];
    let owner = rule.names.first().or(rule.subtrees.first()).cloned();
    let owner = owner.unwrap_or_else(|| DomainName::parse(&format!("_acme-challenge.{zone}")).unwrap_or(zone.clone()));
    let txt = rule.types.is_empty() || rule.types.contains(&hickory_proto::rr::RecordType::TXT);
    let change = if txt {
        format!("update add {owner}. 60 TXT \"hello from ipx\"")
    } else {
        format!("; update add {owner}. 300 TYPE DATA")
    };
    let script = format!("server {host} {port}\nzone {zone}.\n{change}\nsend\n");
    let (name, alg) = (&key.name, key.algorithm);
    let lego_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    Snippets {
        nsupdate: format!("nsupdate -y {alg}:{name}:{secret} <<'EOF'\n{script}EOF\n"),
        knsupdate: format!("knsupdate -y {alg}:{name}:{secret} <<'EOF'\n{script}EOF\n"),
        lego: format!(
            "RFC2136_NAMESERVER={lego_host}:{port} RFC2136_TSIG_ALGORITHM={alg}. RFC2136_TSIG_KEY={name} RFC2136_TSIG_SECRET={secret} \\\n  lego --email you@{zone} --dns rfc2136 --domains {zone} run\n"
        ),
        certbot: format!(
            "# certbot certonly --dns-rfc2136 --dns-rfc2136-credentials rfc2136.ini -d {zone}\ndns_rfc2136_server = {host}\ndns_rfc2136_port = {port}\ndns_rfc2136_name = {name}\ndns_rfc2136_secret = {secret}\ndns_rfc2136_algorithm = {}\n",
            alg.as_str().to_ascii_uppercase()
        ),
    }
}

#[utoipa::path(
    get,
    path = "/tsig-keys",
    tag = "dns",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = List<TsigKeyView>)),
)]
async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let mut keys = st.store.read(move |r| r.tsig_keys(team)).await?;
    keys.retain(|k| caller.covers(Some(&k.zones())));
    let total = keys.len() as u64;
    let start = q
        .after
        .and_then(|a| keys.iter().position(|k| k.id == a).map(|i| i + 1))
        .unwrap_or(0);
    let items: Vec<TsigKeyView> = keys.iter().skip(start).take(q.limit).map(TsigKeyView::from).collect();
    let next = (start + q.limit < keys.len()).then(|| keys[start + q.limit - 1].id);
    Ok(page(items, &q, next, total))
}

#[utoipa::path(
    post,
    path = "/tsig-keys",
    tag = "dns",
    request_body = CreateKey,
    responses((status = 201, body = Data<CreatedTsigKeyView>, headers(("Location" = String)))),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateKey>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Dns))?;
    idem.once(&st, &caller, make(&st, &caller, body)).await
}

async fn make(st: &AppState, caller: &Caller, body: CreateKey) -> ApiResult<Response> {
    let team = caller.team.id;
    // The zones the rules name, as far as this caller reaches: another's is "no zone".
    let wanted: Vec<Uuid> = body.rules.iter().take(MAX_RULES).map(|r| r.zone_id).collect();
    let reachable: Vec<Uuid> = wanted.into_iter().filter(|z| caller.reaches(*z)).collect();
    let zones: Vec<(Uuid, Option<DomainName>)> = st
        .store
        .read(move |r| {
            let name = |z: Uuid| match r.team_zone(team, z) {
                Ok(zone) => Ok((z, Some(zone.name))),
                Err(StoreError::NotFound(_)) => Ok((z, None)),
                Err(e) => Err(e),
            };
            reachable.into_iter().map(name).collect()
        })
        .await?;
    let spec = spec(body, &zones)?;
    let name = key_name(team, &spec.label);
    let configured = |k: &crate::config::TsigKey| k.name.trim_end_matches('.').eq_ignore_ascii_case(name.as_str());
    if st.config.dns.tsig_keys.iter().any(configured) {
        return Err(StoreError::conflict("tsig_key_exists", "that key name is taken; pick another").into());
    }
    let (key, secret) = spec.mint(team, Some(caller.token_id), &st.sealer);
    let row = key.clone();
    st.store
        .write_as(caller.actor(), move |tx| tx.create_tsig_key(&row))
        .await?;
    let zone = zones_name(&zones, key.rules[0].zone_id);
    let view = CreatedTsigKeyView {
        snippets: snippets(&key, &secret, &zone, st.config.dns.client_address(st.dns_addr)),
        view: TsigKeyView::from(&key),
        secret: secret.to_string(),
    };
    let mut r = created(format!("/v1/tsig-keys/{}", key.id), view);
    r.extensions_mut().insert(Secrets(&["/data/secret", "/data/snippets"]));
    Ok(r)
}

fn zones_name(zones: &[(Uuid, Option<DomainName>)], id: Uuid) -> DomainName {
    zones
        .iter()
        .find(|(z, _)| *z == id)
        .and_then(|(_, n)| n.clone())
        .expect("spec checked every rule's zone")
}

#[utoipa::path(
    get,
    path = "/tsig-keys/{id}",
    tag = "dns",
    params(("id" = Uuid, Path, description = "The key")),
    responses((status = 200, body = Data<TsigKeyView>)),
)]
async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Dns))?.team.id;
    let id = parse_id(&id, "TSIG key")?;
    let key = st.store.read_page(|r| r.team_tsig_key(team, id))?;
    if !caller.covers(Some(&key.zones())) {
        return Err(ApiError::not_found("TSIG key"));
    }
    Ok(data(StatusCode::OK, TsigKeyView::from(&key)))
}

#[utoipa::path(
    delete,
    path = "/tsig-keys/{id}",
    tag = "dns",
    params(("id" = Uuid, Path, description = "The key")),
    responses((status = 204, description = "Revoked: the next message signed with it is refused")),
)]
async fn revoke(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Dns))?.team.id;
    let id = parse_id(&id, "TSIG key")?;
    let me = caller.principal.clone();
    st.store
        .write_as(caller.actor(), move |tx| {
            // A key beyond the caller's zone restriction is as good as absent.
            if !me.covers(Some(&tx.team_tsig_key(team, id)?.zones())) {
                return Err(StoreError::NotFound("TSIG key"));
            }
            tx.revoke_tsig_key(id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
