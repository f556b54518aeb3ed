//! Per-team rate limits in three classes, shared by the team's tokens (governor, GCRA: O(1)
//! state per active team), reported on every response in the IETF draft's fields
//! (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy: "read";q=1200;w=60, …` and
//! `RateLimit: "read";r=1199;t=0`; and a per-address budget for requests without a valid
//! token.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use axum::http::Method;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::RateLimitConfig;

type Limiter = RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;
type AddressLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Read,
    Write,
    Provision,
}

impl Class {
    pub const ALL: [Self; 3] = [Self::Read, Self::Write, Self::Provision];

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Provision => "provision",
        }
    }

    /// Which budget a request spends.
    pub fn of(method: &Method, path: &str) -> Self {
        if method == Method::GET || method == Method::HEAD {
            return Self::Read;
        }
        let provisioning =
            method == Method::POST && (path == "/v1/sites" || path.ends_with("/ssl") || path.ends_with("/wordpress"));
        // Signing a zone whole (turning DNSSEC on, a key rollover) costs what the zone holds.
        let signing = (method == Method::PATCH && is_zone(path))
            || (method == Method::POST && path.ends_with("/dnssec/rollover"));
        if provisioning || signing {
            Self::Provision
        } else {
            Self::Write
        }
    }
}

/// `/v1/zones/{id}` itself.
fn is_zone(path: &str) -> bool {
    path.strip_prefix("/v1/zones/")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// The limit state a request was admitted with; handlers may show it (whoami).
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    pub class: Class,
    pub remaining: u32,
}

pub struct RateLimits {
    limiters: [(u32, Limiter); 3],
    unauthenticated: (u32, AddressLimiter),
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(c: &RateLimitConfig) -> Self {
        let make = |n: u32| {
            let n = NonZeroU32::new(n).expect("config validated");
            (
                n.get(),
                RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>(),
            )
        };
        let anon = NonZeroU32::new(c.unauthenticated_per_minute).expect("config validated");
        Self {
            limiters: [
                make(c.read_per_minute),
                make(c.write_per_minute),
                make(c.provision_per_minute),
            ],
            unauthenticated: (anon.get(), RateLimiter::keyed(Quota::per_minute(anon))),
            clock: DefaultClock::default(),
        }
    }

    fn of(&self, class: Class) -> &(u32, Limiter) {
        &self.limiters[class as usize]
    }

    pub fn per_minute(&self, class: Class) -> u32 {
        self.of(class).0
    }

    /// Spends one request of `class` for `team`: the remaining budget, or how long to wait.
    pub fn check(&self, team: Uuid, class: Class) -> Result<u32, Duration> {
        match self.of(class).1.check_key(&team) {
            Ok(state) => Ok(state.remaining_burst_capacity()),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Spends `n` more requests of `class` for `team` beyond the one the request itself took
    /// (a request that costs more than one: signing a zone whole costs its size): how long to
    /// wait when the budget does not hold them. Together with the request's own they are at
    /// most the whole quota, so the costliest request still goes through on a full budget.
    pub fn spend(&self, team: Uuid, class: Class, n: u32) -> Result<(), Duration> {
        let (quota, limiter) = self.of(class);
        let Some(n) = NonZeroU32::new(n.min(quota.saturating_sub(1))) else {
            return Ok(());
        };
        match limiter.check_key_n(&team, n) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            Err(_) => Err(Duration::from_secs(60)),
        }
    }

    /// Spends one unauthenticated request from `ip` (IPv6 counted per /64).
    pub fn check_unauthenticated(&self, ip: IpAddr) -> Result<(), Duration> {
        self.unauthenticated
            .1
            .check_key(&crate::listener::client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    pub fn unauthenticated_per_minute(&self) -> u32 {
        self.unauthenticated.0
    }

    /// Forgets teams and addresses whose budgets are full again (keeps memory to active ones).
    pub fn retain_recent(&self) {
        for (_, l) in &self.limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.unauthenticated.1.retain_recent();
        self.unauthenticated.1.shrink_to_fit();
    }

    pub fn policy_header(&self) -> String {
        Class::ALL
            .iter()
            .map(|c| format!("\"{}\";q={};w=60", c.name(), self.per_minute(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `RateLimit` for a class: `r` remaining, `t` seconds until the budget is whole again.
    pub fn state_header(&self, class: Class, remaining: u32) -> String {
        let q = self.per_minute(class);
        let t = ((q - remaining.min(q)) as u64 * 60).div_ceil(q as u64);
        format!("\"{}\";r={remaining};t={t}", class.name())
    }
}

/// Every minute, forgets budgets that are whole again and failure windows that are over.
pub fn sweep(limits: Arc<RateLimits>, auth: Arc<crate::auth::Authenticator>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.retain_recent();
            auth.prune();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_costliest_request_goes_through_on_a_full_budget_and_then_waits() {
        let limits = RateLimits::new(&RateLimitConfig {
            read_per_minute: 100,
            write_per_minute: 100,
            provision_per_minute: 10,
            unauthenticated_per_minute: 100,
        });
        let team = Uuid::from_u128(7);
        limits.check(team, Class::Provision).unwrap(); // the request's own
        limits.spend(team, Class::Provision, 1_000).unwrap(); // the rest of the quota, no more
        assert!(limits.check(team, Class::Provision).is_err());
        assert!(limits.spend(Uuid::from_u128(8), Class::Provision, 0).is_ok());
        let other = Uuid::from_u128(9);
        limits.check(other, Class::Provision).unwrap();
        limits.spend(other, Class::Provision, 3).unwrap();
        assert!(limits.spend(other, Class::Provision, 9).is_err(), "6 left, 9 asked");
    }
}
