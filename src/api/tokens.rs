//! `/v1/tokens`: self-service tokens. A token mints only tokens with a subset of its own
//! scopes, zones and lifetime; the secret is shown once, in the create response.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::parse_id;
use super::idempotency::{Idempotency, Secrets};
use super::respond::{Data, List, created, page};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery};
use crate::auth::Principal;
use crate::domain::{Resource, Scope, Timestamp, Token, label_text};
use crate::store::StoreError;

/// Most zones one token may be restricted to.
const MAX_TOKEN_ZONES: usize = 1000;

/// Longest lifetime a minted token may ask for: ten years.
const MAX_LIFETIME_SECS: u64 = 10 * 365 * 86_400;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// A token as the API shows it: never its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub zones: Option<Vec<Uuid>>,
    /// The end of the secret (`ipxapi_…Xy9z`).
    pub hint: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: Option<Uuid>,
}

impl From<&Token> for TokenView {
    fn from(t: &Token) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            zones: t.zones.clone(),
            hint: t.hint.clone(),
            expires_at: t.expires,
            revoked_at: t.revoked_at,
            created_at: t.created_at,
            created_by: t.created_by,
        }
    }
}

/// A token just made, with its secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedTokenView {
    #[serde(flatten)]
    pub view: TokenView,
    /// The secret, shown this once (`null` in an idempotent replay).
    pub token: String,
}

#[utoipa::path(
    get,
    path = "/tokens",
    tag = "account",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = List<TokenView>)),
)]
async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Tokens))?.team.id;
    let mut tokens = st.store.read(move |r| r.tokens(team)).await?;
    // A zone-restricted token sees only tokens within its own restriction.
    tokens.retain(|t| caller.covers(t.zones.as_deref()));
    tokens.sort_by_key(|t| (t.created_at, t.id));
    let total = tokens.len() as u64;
    let start = q
        .after
        .and_then(|a| tokens.iter().position(|t| t.id == a).map(|i| i + 1))
        .unwrap_or(0);
    let items: Vec<TokenView> = tokens.iter().skip(start).take(q.limit).map(TokenView::from).collect();
    let next = (start + q.limit < tokens.len()).then(|| tokens[start + q.limit - 1].id);
    Ok(page(items, &q, next, total))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    /// Defaults to the caller's own scopes.
    scopes: Option<Vec<String>>,
    /// Restrict the new token to these zones.
    zones: Option<Vec<Uuid>>,
    /// Lifetime in seconds; defaults to the caller's remaining one (or none).
    expires_in: Option<u64>,
}

/// What a token may be minted with, once checked against the request and its minter.
struct Grant {
    name: String,
    scopes: Vec<Scope>,
    zones: Option<Vec<Uuid>>,
    expires: Option<Timestamp>,
}

/// Every field of the request checked at once, then against what `me` may pass on: never
/// more scopes, zones or lifetime than its own.
fn grant(body: CreateToken, me: &Principal) -> ApiResult<Grant> {
    let mut errors = Vec::new();
    let name = label_text(&body.name, 100).unwrap_or_default();
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
        Some(s) => Some(Timestamp::in_secs(s)),
        None => me.expires,
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid("invalid_token_request", errors));
    }
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
            let message = format!("name 1 to {MAX_TOKEN_ZONES} zones, or leave zones out");
            return Err(ApiError::invalid("invalid_token_request", vec![("zones", message)]));
        }
        Some(mut list) => {
            let mut seen = HashSet::new();
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
    Ok(Grant {
        name,
        scopes,
        zones,
        expires,
    })
}

#[utoipa::path(
    post,
    path = "/tokens",
    tag = "account",
    request_body = CreateToken,
    responses((status = 201, body = Data<CreatedTokenView>)),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateToken>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Tokens))?;
    idem.once(&st, &caller, mint(&st, &caller, body)).await
}

async fn mint(st: &AppState, caller: &Caller, body: CreateToken) -> ApiResult<Response> {
    let Grant {
        name,
        scopes,
        zones,
        expires,
    } = grant(body, caller)?;
    let team = caller.team.id;
    if let Some(list) = zones.clone() {
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
    let (mut token, secret) = tokio::task::spawn_blocking(move || crate::auth::mint(team, &name, &scopes))
        .await
        .map_err(ApiError::internal)?;
    token.zones = zones;
    token.expires = expires;
    token.created_by = Some(caller.token_id);
    let row = token.clone();
    st.store
        .write_as(caller.actor(), move |tx| tx.create_token(&row))
        .await?;
    let view = CreatedTokenView {
        view: TokenView::from(&token),
        token: secret,
    };
    let mut r = created(format!("/v1/tokens/{}", token.id), view);
    r.extensions_mut().insert(Secrets(&["/data/token"]));
    Ok(r)
}

#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "account",
    params(("id" = Uuid, Path, description = "The token")),
    responses((status = 204, description = "Revoked")),
)]
async fn revoke(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Tokens))?.team.id;
    let id = parse_id(&id, "token")?;
    let me = caller.principal.clone();
    st.store
        .write_as(caller.actor(), move |tx| {
            // A token beyond the caller's zone restriction is as good as absent.
            if !me.covers(tx.team_token(team, id)?.zones.as_deref()) {
                return Err(StoreError::NotFound("token"));
            }
            tx.revoke_token(id)
        })
        .await?;
    st.auth.forget(id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
