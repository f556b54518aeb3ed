//! `Idempotency-Key` on every POST (draft-ietf-httpapi-idempotency-key-header): the first
//! response for a key is stored in redb for 24 h and replayed for the same key; the same key
//! with another request is 422, and while the first request runs, 409. Claiming a key is one
//! write transaction, so concurrent duplicates cannot both run.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::store::Idem;

const MAX_KEY: usize = 255;

/// FNV-1a, 64 bits: stable across builds (the fingerprint is stored), and collisions only
/// matter between one team's own requests.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key") else { return next.run(req).await };
    // The key belongs to the token's team (verified by the rate-limit layer); an
    // unauthenticated request is answered (401) as usual.
    let Some(principal) = req.extensions().get::<std::sync::Arc<crate::auth::Principal>>().cloned() else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => k.to_string(),
        _ => {
            return ApiError::bad_request("invalid_idempotency_key", format!("an Idempotency-Key is 1 to {MAX_KEY} printable characters"))
                .into_response();
        }
    };
    let team = principal.team.id;
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, st.config.api.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than the server accepts")
                .into_response();
        }
    };
    let route_key = format!("{} {}\n{key}", parts.method, parts.uri.path());
    let fp = fingerprint(&[parts.method.as_str().as_bytes(), parts.uri.path().as_bytes(), &bytes]);
    let (k, f) = (route_key.clone(), fp.clone());
    match st.store.write(move |tx| tx.begin_idempotent(team, &k, &f)).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Idem::Mismatch) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key",
            )
            .into_response();
        }
        Ok(Idem::InFlight) => {
            return ApiError::new(StatusCode::CONFLICT, "idempotency_key_in_use", "the first request with this Idempotency-Key is still running")
                .with_header(header::RETRY_AFTER, "1")
                .into_response();
        }
        Ok(Idem::Replay(rec)) => {
            let status = StatusCode::from_u16(rec.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
            let mut r = (status, rec.body.unwrap_or_default()).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert("idempotent-replayed", HeaderValue::from_static("true"));
            if let Some(loc) = rec.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                h.insert(header::LOCATION, loc);
            }
            return r;
        }
        Ok(Idem::Proceed) => {}
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    // A server error is not an answer worth replaying: the key is released for a retry.
    let status = (!parts.status.is_server_error()).then_some(parts.status.as_u16());
    let location = parts.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Err(e) = st.store.write(move |tx| tx.finish_idempotent(team, &route_key, status, text, location)).await {
        tracing::error!(error = %e, "cannot store an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}
