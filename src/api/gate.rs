//! Every request's first stop: who is calling (the bearer token, verified once per request)
//! and whether the budget allows the request. A valid token spends its team's budget of the
//! request's class; a request without one spends its address's unauthenticated budget and
//! goes on to be answered 401 by the handler (or served, for the few public routes).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::rate_limits::{Admitted, Class};
use super::request::Who;
use super::{ApiError, AppState};
use crate::auth::{AuthError, Principal};

/// Why a request has no principal, for the `Caller` extractor to answer with.
#[derive(Debug, Clone)]
pub struct Unauthenticated(pub AuthError);

fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn layer(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    let ip = client_ip(&req);
    let verified = match bearer(&req) {
        Some(token) => st.auth.verify(token, ip).await,
        None => Err(AuthError::Missing),
    };
    let mut response = match verified {
        Ok(principal) => admit(&st, principal, req, next).await,
        Err(e @ (AuthError::Missing | AuthError::Invalid)) => match st.rate_limits.check_unauthenticated(ip) {
            Ok(()) => {
                req.extensions_mut().insert(Unauthenticated(e));
                next.run(req).await
            }
            Err(wait) => {
                tarpit(wait).await;
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many requests without a valid token from this address ({} a minute); retry in {secs} s",
                        st.rate_limits.unauthenticated_per_minute()
                    ),
                )
                .with_header(header::RETRY_AFTER, &secs.to_string())
                .into_response()
            }
        },
        Err(e) => {
            if let AuthError::Throttled(wait) = e {
                tarpit(wait).await;
            }
            ApiError::from(e).into_response()
        }
    };
    set(&mut response, "ratelimit-policy", &st.rate_limits.policy_header());
    response
}

/// Longest a refused client is kept waiting for its answer.
const TARPIT: Duration = Duration::from_secs(1);

/// Holds the answer to a client that is over a budget for failures (not its team's budget)
/// for about a second: it costs us a sleeping task, and a flood of retries on the same
/// connections becomes a trickle instead of tens of thousands of answers a second. The
/// delay is spread (±50 %) so a flood's connections do not all wake at once.
async fn tarpit(wait: Duration) {
    let mut spread = [0u8; 2];
    let _ = getrandom::fill(&mut spread);
    let factor = 0.5 + f64::from(u16::from_ne_bytes(spread)) / f64::from(u16::MAX);
    tokio::time::sleep(wait.min(TARPIT).mul_f64(factor)).await;
}

/// Spends the team's budget for the request's class and runs it as the principal.
async fn admit(st: &AppState, principal: Arc<Principal>, mut req: Request, next: Next) -> Response {
    let class = Class::of(req.method(), req.uri().path());
    let who = Who {
        token: principal.token_id,
        team: principal.team.id,
    };
    let mut response = match st.rate_limits.check(principal.team.id, class) {
        Ok(remaining) => {
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(Admitted { class, remaining });
            let mut r = next.run(req).await;
            set(&mut r, "ratelimit", &st.rate_limits.state_header(class, remaining));
            r
        }
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this account has used its {} budget ({} a minute, shared by its tokens); retry in {secs} s",
                    class.name(),
                    st.rate_limits.per_minute(class)
                ),
            )
            .with_header(header::RETRY_AFTER, &secs.to_string())
            .into_response();
            set(&mut r, "ratelimit", &format!("\"{}\";r=0;t={secs}", class.name()));
            r
        }
    };
    response.extensions_mut().insert(who);
    response
}
