//! Per-token rate limits in three classes (governor, GCRA: O(1) state per active token),
//! reported on every response in the IETF draft's fields (draft-ietf-httpapi-ratelimit-headers):
//! `RateLimit-Policy: "read";q=1200;w=60, …` and `RateLimit: "read";r=1199;t=0`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::config::RateLimitConfig;

type Limiter = RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Read,
    Write,
    Provision,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Read, Class::Write, Class::Provision];

    pub fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Provision => "provision",
        }
    }

    /// Which budget a request spends.
    pub fn of(method: &Method, path: &str) -> Class {
        if method == Method::GET || method == Method::HEAD {
            return Class::Read;
        }
        let provisioning = method == Method::POST
            && (path == "/v1/sites" || path.ends_with("/ssl") || path.ends_with("/wordpress"));
        if provisioning { Class::Provision } else { Class::Write }
    }
}

/// The limit state a request was admitted with; handlers may show it (whoami).
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    pub class: Class,
    pub remaining: u32,
}

pub struct Limits {
    limiters: [(u32, Limiter); 3],
    clock: DefaultClock,
}

impl Limits {
    pub fn new(c: &RateLimitConfig) -> Limits {
        let make = |n: u32| {
            let n = NonZeroU32::new(n).expect("config validated");
            (n.get(), RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>())
        };
        Limits { limiters: [make(c.read_per_minute), make(c.write_per_minute), make(c.provision_per_minute)], clock: DefaultClock::default() }
    }

    fn of(&self, class: Class) -> &(u32, Limiter) {
        &self.limiters[class as usize]
    }

    pub fn per_minute(&self, class: Class) -> u32 {
        self.of(class).0
    }

    /// Spends one request of `class` for `token`: the remaining budget, or how long to wait.
    pub fn check(&self, token: Uuid, class: Class) -> Result<u32, Duration> {
        match self.of(class).1.check_key(&token) {
            Ok(state) => Ok(state.remaining_burst_capacity()),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets tokens whose budgets are full again (keeps memory to active tokens).
    pub fn retain_recent(&self) {
        for (_, l) in &self.limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    pub fn policy_header(&self) -> String {
        Class::ALL.iter().map(|c| format!("\"{}\";q={};w=60", c.name(), self.per_minute(*c))).collect::<Vec<_>>().join(", ")
    }

    /// `RateLimit` for a class: `r` remaining, `t` seconds until the budget is whole again.
    fn state_header(&self, class: Class, remaining: u32) -> String {
        let q = self.per_minute(class);
        let t = ((q - remaining.min(q)) as u64 * 60).div_ceil(q as u64);
        format!("\"{}\";r={remaining};t={t}", class.name())
    }
}

fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// Authenticates the bearer token once for the whole request (handlers and the idempotency
/// layer find the principal in the request's extensions) and spends its budget.
pub async fn layer(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.split_once(' '));
    let principal = match token {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => st.auth.verify(t.trim()).await.ok(),
        _ => None,
    };
    let Some(principal) = principal else {
        let mut r = next.run(req).await; // the handler answers 401
        set(&mut r, "ratelimit-policy", &st.limits.policy_header());
        return r;
    };
    let class = Class::of(req.method(), req.uri().path());
    let mut response = match st.limits.check(principal.token_id, class) {
        Ok(remaining) => {
            let request_id = super::error::REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
            let actor = crate::store::Actor::token(principal.token_id, request_id);
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(Admitted { class, remaining });
            let mut r = crate::store::ACTOR.scope(actor, next.run(req)).await;
            set(&mut r, "ratelimit", &st.limits.state_header(class, remaining));
            r
        }
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this token has used its {} budget ({} a minute); retry in {secs} s", class.name(), st.limits.per_minute(class)),
            )
            .into_response();
            set(&mut r, "retry-after", &secs.to_string());
            set(&mut r, "ratelimit", &format!("\"{}\";r=0;t={secs}", class.name()));
            r
        }
    };
    set(&mut response, "ratelimit-policy", &st.limits.policy_header());
    response
}

/// Runs `retain_recent` every minute until the limits are dropped.
pub fn sweep(limits: Arc<Limits>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.retain_recent();
        }
    })
}
