//! Verifying bearer secrets: a cache of the ones that verified, and everything that bounds
//! the cost of guessing (failure windows, hash slots, equal timing for dead ids).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use uuid::Uuid;

use super::failures::{Culprit, Failures, WINDOW};
use super::hasher::{HashJob, hash_threads};
use super::{AuthError, Principal, parse_secret};
use crate::domain::TokenState;
use crate::store::{Store, StoreError};

struct Cached {
    fingerprint: u64,
    principal: Arc<Principal>,
}

/// How an unverified secret is checked: what bounds the cost of guessing.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failed verifications per minute for one token id, and for one client address.
    pub failures_per_token: u32,
    pub failures_per_address: u32,
    /// argon2id verifications at once.
    pub hash_slots: usize,
}

impl Policy {
    pub fn from_config(c: &crate::config::AuthConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hash_slots = if c.max_concurrent_hashes == 0 {
            cores.saturating_sub(1).max(1)
        } else {
            c.max_concurrent_hashes
        };
        Self {
            failures_per_token: c.failures_per_minute_per_token,
            failures_per_address: c.failures_per_minute_per_address,
            hash_slots,
        }
    }
}

/// Requests that may wait for a hash slot, per slot; past that, `Busy` at once.
const WAITERS_PER_SLOT: usize = 4;
/// Longest wait for a hash slot before `Busy`.
const SLOT_WAIT: Duration = Duration::from_secs(2);

/// Verifies bearer tokens, remembering the ones that verified.
///
/// A secret seen before is checked against a keyed fingerprint (no argon2). Otherwise the
/// caller's address and the token id must have failures left this minute; an unknown,
/// revoked or expired id is refused without hashing, after the time a hash takes (so a live
/// id cannot be told from a dead one); a live one waits for one of a few hash slots.
pub struct Authenticator {
    store: Store,
    keys: RandomState,
    cache: Mutex<HashMap<Uuid, Cached>>,
    policy: Policy,
    failures: Failures,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Recent argon2 verification time, microseconds (moving average).
    hash_micros: AtomicU64,
    /// argon2 verifications run so far.
    hashes: AtomicU64,
    /// One verification per token id at a time: parallel first uses of a new token wait for
    /// the first and find it cached; parallel guesses for one id queue here.
    in_flight: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// The hash threads' queue.
    hasher: std::sync::mpsc::Sender<HashJob>,
}

impl Authenticator {
    pub fn new(store: Store, policy: Policy) -> Self {
        Self {
            store,
            keys: RandomState::new(),
            cache: Mutex::default(),
            slots: Arc::new(Semaphore::new(policy.hash_slots)),
            policy,
            failures: Failures::default(),
            waiting: AtomicUsize::new(0),
            hash_micros: AtomicU64::new(40_000),
            hashes: AtomicU64::new(0),
            in_flight: Mutex::default(),
            hasher: hash_threads(policy.hash_slots),
        }
    }

    fn cached(&self, id: Uuid, fingerprint: u64) -> Option<Result<Arc<Principal>, AuthError>> {
        let cache = self.cache.lock().expect("auth cache");
        let hit = cache.get(&id).filter(|hit| hit.fingerprint == fingerprint)?;
        Some(if hit.principal.expired() {
            Err(AuthError::Invalid)
        } else {
            Ok(hit.principal.clone())
        })
    }

    /// Verifies `secret` for a request from `from`.
    pub async fn verify(&self, secret: &str, from: IpAddr) -> Result<Arc<Principal>, AuthError> {
        let started = Instant::now();
        let address = Culprit::Address(crate::listener::client_key(from));
        let Some(id) = parse_secret(secret) else {
            self.failures.record(address);
            return Err(AuthError::Invalid);
        };
        let fingerprint = self.keys.hash_one(secret);
        if let Some(hit) = self.cached(id, fingerprint) {
            return hit;
        }
        let lock = self.in_flight.lock().expect("in flight").entry(id).or_default().clone();
        let guard = tokio::time::timeout(SLOT_WAIT, lock.lock())
            .await
            .map_err(|_| AuthError::Busy)?;
        let result = match self.cached(id, fingerprint) {
            Some(hit) => hit,
            None => self.verify_uncached(secret, id, fingerprint, address).await,
        };
        drop(guard);
        {
            let mut in_flight = self.in_flight.lock().expect("in flight");
            if Arc::strong_count(&lock) == 2 {
                in_flight.remove(&id); // nobody else waits for this id
            }
        }
        if matches!(result, Err(AuthError::Invalid)) {
            // No sooner than a hash would have answered (one that ran has taken that long
            // already), so a dead id looks like a live one; outside the id's lock.
            let typical = Duration::from_micros(self.hash_micros.load(Ordering::Relaxed));
            tokio::time::sleep_until((started + typical).into()).await;
        }
        result
    }

    async fn verify_uncached(
        &self,
        secret: &str,
        id: Uuid,
        fingerprint: u64,
        address: Culprit,
    ) -> Result<Arc<Principal>, AuthError> {
        let token = Culprit::Token(id);
        let blocked = self
            .failures
            .blocked(address, self.policy.failures_per_address)
            .or(self.failures.blocked(token, self.policy.failures_per_token));
        if let Some(wait) = blocked {
            return Err(AuthError::Throttled(wait));
        }
        if self.failures.full(address) || self.failures.full(token) {
            return Err(AuthError::Throttled(WINDOW));
        }
        let row = self
            .store
            .read(move |r| {
                let Some(token) = r.token(id)? else { return Ok(None) };
                let Some(team) = r.team(token.team_id)? else {
                    return Ok(None);
                };
                Ok(Some((token, team)))
            })
            .await?;
        let live = row.filter(|(t, _)| t.state() == TokenState::Active);
        let Some((token_row, team)) = live else {
            self.fail(address, token);
            return Err(AuthError::Invalid);
        };
        let ok = self.hash_check(secret, token_row.hash.clone()).await?;
        if !ok {
            self.fail(address, token);
            return Err(AuthError::Invalid);
        }
        let scopes = token_row.scopes.clone();
        let principal = Arc::new(Principal {
            team,
            token_id: token_row.id,
            token_name: token_row.name,
            scopes,
            zones: token_row.zones,
            expires: token_row.expires,
        });
        self.cache.lock().expect("auth cache").insert(
            id,
            Cached {
                fingerprint,
                principal: principal.clone(),
            },
        );
        Ok(principal)
    }

    /// Counts a failure against the address and the token id.
    fn fail(&self, address: Culprit, token: Culprit) {
        self.failures.record(address);
        self.failures.record(token);
    }

    /// Runs argon2id in one of the hash threads, once a slot is free.
    async fn hash_check(&self, secret: &str, hash: String) -> Result<bool, AuthError> {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let permit = if waiting >= self.policy.hash_slots * WAITERS_PER_SLOT {
            None
        } else {
            tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let Some(permit) = permit else {
            return Err(AuthError::Busy);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = HashJob {
            secret: secret.to_string(),
            hash,
            reply,
        };
        self.hasher
            .send(job)
            .map_err(|_| AuthError::Store(StoreError::Internal("the hash threads stopped".into())))?;
        let (ok, took) = answer
            .await
            .map_err(|_| AuthError::Store(StoreError::Internal("a hash thread failed".into())))?;
        drop(permit);
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let old = self.hash_micros.load(Ordering::Relaxed);
        self.hash_micros
            .store((old * 7 + took.as_micros() as u64) / 8, Ordering::Relaxed);
        Ok(ok)
    }

    /// argon2 verifications run since start.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Forgets a token at once (revocation).
    pub fn forget(&self, id: Uuid) {
        self.cache.lock().expect("auth cache").remove(&id);
    }

    /// Drops failure windows that are over (called periodically).
    pub fn prune(&self) {
        self.failures.prune();
    }
}
