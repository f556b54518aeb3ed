//! `Idempotency-Key` on POSTs (draft-ietf-httpapi-idempotency-key-header). The first
//! response for a key is stored in redb for 24 h and replayed for the same key; the same key
//! with another request is 422, and while the first request runs, 409.
//!
//! A key belongs to one token (not its team) and is looked up only after the handler has
//! authorized the request: a middleware reads and fingerprints the body, and the handler
//! calls [`Idempotency::once`] once the caller's scopes and zones allow the request. So a
//! replay is never served to a caller the request itself would refuse, and one token can
//! neither read nor poison another's keys. A stored response never holds a secret.

use std::future::Future;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{ApiError, ApiResult, AppState, Caller};
use crate::store::Idem;

const MAX_KEY: usize = 255;

/// The key of a request and the fingerprint of its method, path and body.
#[derive(Clone)]
struct Claim {
    key: String,
    fingerprint: String,
}

/// Fields of a response that hold a secret shown once (JSON pointers, e.g. `/data/token`):
/// the stored copy has them set to `null`. Handlers put it in the response's extensions.
#[derive(Clone, Copy)]
pub struct Secrets(pub &'static [&'static str]);

/// SHA-256 of the parts, each length-prefixed: a key is reused for another request only if
/// the fingerprints differ.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    data_encoding::HEXLOWER.encode(ctx.finish().as_ref())
}

/// For a POST with `Idempotency-Key`: checks the key, reads the body and leaves the claim for
/// the handler. Nothing is looked up here: the caller is not yet authorized.
pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
            k.to_string()
        }
        _ => {
            return ApiError::bad_request(
                "invalid_idempotency_key",
                format!("an Idempotency-Key is 1 to {MAX_KEY} printable characters"),
            )
            .into_response();
        }
    };
    let (mut parts, body) = req.into_parts();
    let bytes = match super::extract::read_body(body, &st.config.api).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let claim = Claim {
        key: format!("{} {}\n{key}", parts.method, parts.uri.path()),
        fingerprint: fingerprint(&[parts.method.as_str().as_bytes(), parts.uri.path().as_bytes(), &bytes]),
    };
    parts.extensions.insert(claim);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The request's idempotency claim, if it made one.
pub struct Idempotency(Option<Claim>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Claim>().cloned()))
    }
}

impl Idempotency {
    /// Runs `work` unless `caller` already ran this request under this key, in which case
    /// its stored response is replayed. Call it after every authorization check.
    pub async fn once(
        self,
        st: &AppState,
        caller: &Caller,
        work: impl Future<Output = ApiResult<Response>>,
    ) -> ApiResult<Response> {
        let Some(Claim { key, fingerprint }) = self.0 else {
            return work.await;
        };
        let token = caller.token_id;
        let (k, f) = (key.clone(), fingerprint);
        match st
            .store
            .write_as(caller.actor(), move |tx| tx.begin_idempotent(token, &k, &f))
            .await?
        {
            Idem::Mismatch => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                ));
            }
            Idem::InFlight => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "the first request with this Idempotency-Key is still running",
                )
                .with_header(header::RETRY_AFTER, "1"));
            }
            Idem::Replay(rec) => {
                let status = StatusCode::from_u16(rec.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
                let mut r = (status, rec.body.unwrap_or_default()).into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert("idempotent-replayed", HeaderValue::from_static("true"));
                for (name, value) in [(header::LOCATION, rec.location), (header::ETAG, rec.etag)] {
                    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                        h.insert(name, v);
                    }
                }
                return Ok(r);
            }
            Idem::Proceed => {}
        }
        let response = work.await.unwrap_or_else(IntoResponse::into_response);
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
        // A server error is not an answer worth replaying: the key is released for a retry.
        let status = (!parts.status.is_server_error()).then_some(parts.status.as_u16());
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, etag) = (header(header::LOCATION), header(header::ETAG));
        let stored = redacted(&body, parts.extensions.get::<Secrets>().copied());
        if let Err(e) = st
            .store
            .write_as(caller.actor(), move |tx| {
                tx.finish_idempotent(token, &key, status, stored, location, etag)
            })
            .await
        {
            tracing::error!(error = %e, "cannot store an idempotent response");
        }
        Ok(Response::from_parts(parts, Body::from(body)))
    }
}

/// Removes expired keys every ten minutes (and at start), until the task is dropped.
pub fn sweep(store: crate::store::Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            loop {
                match store
                    .write_as(crate::domain::Actor::system(), |tx| {
                        tx.sweep_idempotent(crate::domain::unix_now())
                    })
                    .await
                {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "expired idempotency keys swept"),
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot sweep idempotency keys");
                        break;
                    }
                }
            }
        }
    })
}

/// The body as it may be stored: the declared secret fields, and any string that is an API
/// token, set to `null`.
fn redacted(body: &[u8], secrets: Option<Secrets>) -> String {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    for pointer in secrets.map_or(&[][..], |s| s.0) {
        if let Some(v) = value.pointer_mut(pointer) {
            *v = Value::Null;
        }
    }
    null_tokens(&mut value);
    value.to_string()
}

fn null_tokens(value: &mut Value) {
    match value {
        Value::String(s) if crate::auth::parse_secret(s).is_some() => *value = Value::Null,
        Value::Array(items) => items.iter_mut().for_each(null_tokens),
        Value::Object(map) => map.values_mut().for_each(null_tokens),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bodies_lose_declared_secrets_and_anything_that_is_a_token() {
        let (_, secret) = crate::auth::mint(uuid::Uuid::nil(), "t", &[]);
        let body = serde_json::json!({ "data": { "token": secret, "name": "x", "nested": [{ "again": secret }], "other": "s3cr3t" } });
        let stored = redacted(body.to_string().as_bytes(), Some(Secrets(&["/data/other"])));
        assert!(!stored.contains(&secret[7..]) && !stored.contains("s3cr3t"), "{stored}");
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["data"]["name"], "x");
        assert!(
            v["data"]["token"].is_null() && v["data"]["other"].is_null() && v["data"]["nested"][0]["again"].is_null()
        );
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"POST", b"/v1/x"]).len(), 64);
    }
}
