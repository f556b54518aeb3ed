//! `/v1/tokens`: self-service tokens. A token mints only tokens with a subset of its own
//! scopes, zones and lifetime; the secret is shown once, in the create response.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::parse_id;
use super::idempotency::{Idempotency, Secrets};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery, created, page};
use crate::auth::Principal;
use crate::domain::{Resource, Scope, rfc3339_at, unix_now};
use crate::store::Token;

/// Most zones one token may be restricted to.
const MAX_TOKEN_ZONES: usize = 1000;

/// Longest lifetime a minted token may ask for: ten years.
const MAX_LIFETIME_SECS: u64 = 10 * 365 * 86_400;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

fn view(t: &Token) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "scopes": t.scopes,
        "zones": t.zones,
        "hint": t.hint,
        "expires_at": t.expires.map(rfc3339_at),
        "revoked_at": t.revoked_at,
        "created_at": t.created_at,
        "created_by": t.created_by,
    })
}

#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "account",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = super::openapi::TokenList)),
)]
pub(super) async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Tokens))?.team.id;
    let mut tokens = st.store.read(move |r| r.tokens(team)).await?;
    // A zone-restricted token sees only tokens within its own restriction.
    tokens.retain(|t| caller.0.covers(t.zones.as_deref()));
    tokens.sort_by_key(|t| (t.created_at.clone(), t.id));
    let total = tokens.len() as u64;
    let start = q
        .after
        .and_then(|a| tokens.iter().position(|t| t.id == a).map(|i| i + 1))
        .unwrap_or(0);
    let items: Vec<Value> = tokens.iter().skip(start).take(q.limit).map(view).collect();
    let next = (start + q.limit < tokens.len()).then(|| tokens[start + q.limit - 1].id);
    Ok(page(items, &q, next, total))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    name: String,
    /// Defaults to the caller's own scopes.
    scopes: Option<Vec<String>>,
    /// Restrict the new token to these zones.
    zones: Option<Vec<Uuid>>,
    /// Lifetime in seconds; defaults to the caller's remaining one (or none).
    expires_in: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "account",
    request_body = CreateToken,
    responses((status = 201, body = super::openapi::TokenCreatedData)),
)]
pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateToken>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Tokens))?;
    idem.once(&st, me, mint_token(&st, me, body)).await
}

async fn mint_token(st: &AppState, me: &Principal, body: CreateToken) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let name = crate::domain::label_text(&body.name, 100).unwrap_or_default();
    if name.is_empty() {
        errors.push(("name", "a token name is 1 to 100 printable characters".to_string()));
    }
    let scopes = match body.scopes {
        None => me.scopes.clone(),
        Some(list) if list.is_empty() => {
            errors.push((
                "scopes",
                "name at least one scope, or leave scopes out to copy yours".into(),
            ));
            Vec::new()
        }
        Some(list) => list
            .iter()
            .filter_map(|s| s.parse::<Scope>().map_err(|e| errors.push(("scopes", e))).ok())
            .collect(),
    };
    let expires = match body.expires_in {
        Some(0) => {
            errors.push(("expires_in", "a lifetime is at least one second".into()));
            None
        }
        Some(s) if s > MAX_LIFETIME_SECS => {
            errors.push((
                "expires_in",
                format!("a lifetime is at most {MAX_LIFETIME_SECS} seconds"),
            ));
            None
        }
        Some(s) => Some(unix_now() + s),
        None => me.expires,
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid("invalid_token_request", errors));
    }
    // Never more than the caller has.
    if let Some(beyond) = scopes.iter().find(|s| !me.allows(**s)) {
        return Err(ApiError::insufficient_scope(*beyond));
    }
    if let (Some(mine), Some(wanted)) = (me.expires, expires)
        && wanted > mine
    {
        return Err(ApiError::invalid(
            "invalid_token_request",
            vec![("expires_in", "a token cannot outlive the token that mints it".into())],
        ));
    }
    // One entry per zone, and no more zones than an account may hold.
    let wanted = match body.zones {
        Some(list) if list.is_empty() || list.len() > MAX_TOKEN_ZONES => {
            return Err(ApiError::invalid(
                "invalid_token_request",
                vec![(
                    "zones",
                    format!("name 1 to {MAX_TOKEN_ZONES} zones, or leave zones out"),
                )],
            ));
        }
        Some(mut list) => {
            let mut seen = std::collections::HashSet::new();
            list.retain(|z| seen.insert(*z));
            Some(list)
        }
        None => None,
    };
    let zones = match (&me.zones, wanted) {
        (None, z) => z,
        (Some(mine), None) => Some(mine.clone()),
        (Some(mine), Some(wanted)) => {
            if let Some(z) = wanted.iter().find(|z| !mine.contains(z)) {
                return Err(ApiError::not_found(&format!("zone {z}")));
            }
            Some(wanted)
        }
    };
    let team = me.team.id;
    if let Some(list) = &zones {
        let list = list.clone();
        let missing = st
            .store
            .read(move |r| Ok(list.iter().copied().find(|z| r.team_zone(team, *z).is_err())))
            .await?;
        if let Some(z) = missing {
            return Err(ApiError::invalid(
                "invalid_token_request",
                vec![("zones", format!("no zone {z} in this account"))],
            ));
        }
    }
    let (creator, scopes_for_mint) = (me.token_id, scopes.clone());
    let (mut token, secret) = tokio::task::spawn_blocking(move || crate::auth::mint(team, &name, &scopes_for_mint))
        .await
        .map_err(ApiError::internal)?;
    token.zones = zones;
    token.expires = expires;
    token.created_by = Some(creator);
    let row = token.clone();
    st.store.write(move |tx| tx.create_token(&row)).await?;
    let mut v = view(&token);
    v["token"] = Value::String(secret);
    let mut r = created(format!("/v1/tokens/{}", token.id), v);
    r.extensions_mut().insert(Secrets(&["/data/token"]));
    Ok(r)
}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "account",
    params(("id" = Uuid, Path, description = "The token")),
    responses((status = 204, description = "Revoked")),
)]
pub(super) async fn revoke(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Tokens))?.team.id;
    let id = parse_id(&id, "token")?;
    let me = caller.0.clone();
    st.store
        .write(move |tx| {
            // A token beyond the caller's zone restriction is as good as absent.
            if !me.covers(tx.team_token(team, id)?.zones.as_deref()) {
                return Err(crate::store::StoreError::NotFound("token"));
            }
            tx.revoke_token(id)
        })
        .await?;
    st.auth.forget(id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
