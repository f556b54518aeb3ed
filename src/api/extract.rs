//! Extractors whose rejections use the API's error envelope: a JSON body, a typed query
//! string, the authenticated caller, a page of a list, ids and `If-Match` from the path and
//! headers.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::auth::{AuthError, Principal};
use crate::config::ApiConfig;
use crate::domain::{Actor, Scope, Site};

/// A JSON request body: `415` unless the content type is JSON, `413` past the body limit,
/// `408` past the body timeout, `400` for malformed JSON, `422` for JSON of the wrong shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req.into_body(), &state.config.api).await?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("the body does not fit this endpoint: {e}"),
                ),
                _ => ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")),
            })
    }
}

/// Reads a whole request body: `413` past the body limit, `408` when the client does not
/// send it within the body timeout (a slow body holds a connection and a task).
pub async fn read_body(body: Body, api: &ApiConfig) -> Result<Bytes, ApiError> {
    let read = axum::body::to_bytes(body, api.max_body_bytes);
    match tokio::time::timeout(Duration::from_secs(api.body_read_timeout_secs), read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
        .with_header(header::CONNECTION, "close")),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => {
            Err(too_large())
        }
        Ok(Err(e)) => Err(ApiError::bad_request(
            "unreadable_body",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// `413` for a body over the limit.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server accepts",
    )
    .with_header(header::CONNECTION, "close")
}

/// A query string read into `T` by serde: percent-decoded, unknown parameters ignored, the
/// last of a repeated parameter kept. A value that does not fit is `400 invalid_filter`
/// with the field's message (`filter_value`).
pub fn query<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    let invalid = |e: serde_urlencoded::de::Error| ApiError::bad_request("invalid_filter", e.to_string());
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or("")).map_err(invalid)?;
    let last: std::collections::BTreeMap<String, String> = pairs.into_iter().collect();
    let text =
        serde_urlencoded::to_string(&last).map_err(|e| ApiError::bad_request("invalid_filter", e.to_string()))?;
    serde_urlencoded::from_str(&text).map_err(invalid)
}

/// One query parameter as `T` (an id, a state word), or `message(value)` as the error: for
/// `#[serde(deserialize_with)]` in a filter read by `query`.
pub fn filter_value<'de, D, T>(d: D, message: impl FnOnce(&str) -> String) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::{Error, IntoDeserializer};
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let value: Result<T, serde::de::value::Error> = T::deserialize(text.as_str().into_deserializer());
    value.map(Some).map_err(|_| D::Error::custom(message(&text)))
}

/// The id of the request, for audit events (set by the request-id layer).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The authenticated caller: the token's principal, and who to write audit events as.
/// Rejects with `401` and `WWW-Authenticate: Bearer`.
pub struct Caller {
    pub principal: Arc<Principal>,
    request_id: String,
}

impl Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl Caller {
    /// Who writes made for this request are by.
    pub fn actor(&self) -> Actor {
        Actor::token(self.principal.token_id, self.request_id.clone())
    }

    /// `404` for a zone outside the token's zone list, as if it did not exist.
    pub fn zone(&self, id: Uuid) -> Result<Uuid, ApiError> {
        if self.reaches(id) {
            Ok(id)
        } else {
            Err(ApiError::not_found("zone"))
        }
    }

    /// `404` for a site outside the token's zones (a site not yet in a zone is outside every
    /// restriction), as if it did not exist.
    pub fn site(&self, site: &Site) -> Result<(), ApiError> {
        if self.reaches_site(site.zone_id) {
            Ok(())
        } else {
            Err(ApiError::not_found("site"))
        }
    }

    /// `403` for actions that would reach beyond a zone-restricted token's zones.
    pub fn unrestricted(&self) -> Result<(), ApiError> {
        match self.principal.zones {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "zone_restricted",
                "this token is restricted to some zones and cannot act beyond them",
            )),
        }
    }

    /// `403 insufficient_scope` unless the token holds `needed`.
    pub fn require(&self, needed: Scope) -> Result<&Principal, ApiError> {
        if self.allows(needed) {
            Ok(&self.principal)
        } else {
            Err(ApiError::insufficient_scope(needed))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// The principal the gate verified; the gate left the reason when there is none.
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        if let Some(p) = parts.extensions.get::<Arc<Principal>>() {
            return Ok(Self {
                principal: p.clone(),
                request_id,
            });
        }
        let why = parts
            .extensions
            .get::<super::gate::Unauthenticated>()
            .map_or(AuthError::Missing, |u| u.0.clone());
        Err(why.into())
    }
}

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// `?limit=&cursor=` of list endpoints. A cursor is the position after the last item seen,
/// opaque to clients; a bad one is `400 invalid_cursor`, a bad limit `400 invalid_limit`.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub limit: usize,
    pub after: Option<Uuid>,
    /// The cursor as given, echoed in the page's `meta`.
    pub cursor: Option<String>,
}

/// The query parameters as sent, before they are checked.
#[derive(Deserialize)]
struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

pub fn encode_cursor(id: Uuid) -> String {
    format!("c1{}", id.simple())
}

fn decode_cursor(s: &str) -> Option<Uuid> {
    s.strip_prefix("c1")
        .filter(|h| h.len() == 32)
        .and_then(|h| Uuid::try_parse(h).ok())
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let p: PageParams = query(&parts.uri)?;
        let limit = match p.limit {
            None => DEFAULT_LIMIT,
            Some(v) => v.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?,
        };
        let after = match &p.cursor {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "the cursor is not one this API gave out; start again without it",
                )
            })?),
        };
        Ok(Self {
            limit,
            after,
            cursor: p.cursor,
        })
    }
}

/// A resource id from the path; anything that is not a UUID names nothing (404).
pub fn parse_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::not_found(what))
}

/// `If-Match` on zone writes: the zone's serial as its ETag (`"2026112602"`), or `*`.
/// `None` when absent or `*`; a value that is no ETag of ours can never match: 412.
pub fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<u32>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or("").trim();
    if v == "*" {
        return Ok(None);
    }
    v.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "If-Match takes a zone ETag, such as \"2026112602\"",
            )
        })
}

/// Sets the zone's serial as the response's `ETag`.
pub fn with_etag(mut response: axum::response::Response, serial: u32) -> axum::response::Response {
    if let Ok(v) = format!("\"{serial}\"").parse() {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}
