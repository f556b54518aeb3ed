//! API tokens: mint, hash, verify, scopes.
//!
//! A secret is `ipxapi_` + the token's id (22 base62 chars) + 32 random base62 chars + a
//! 6-char CRC-32 checksum. The checksum lets a mistyped or made-up token be refused before
//! any store lookup, and lets secret scanners recognise ours. Only an argon2id hash of the
//! secret is stored. argon2 is deliberately slow, so a verified secret is remembered by a
//! keyed fingerprint; revocation drops it from that cache at once. Guessing is bounded: see
//! [`Authenticator`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::domain::{Scope, Team, Timestamp, Token, TokenState};
use crate::store::{Store, StoreError};

pub const PREFIX: &str = "ipxapi_";
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 22;
const RANDOM_LEN: usize = 32;
const CHECK_LEN: usize = 6;
pub const SECRET_LEN: usize = PREFIX.len() + ID_LEN + RANDOM_LEN + CHECK_LEN;

/// Who is calling: the token, its team and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub team: Team,
    pub token_id: Uuid,
    pub token_name: String,
    pub scopes: Vec<Scope>,
    /// `Some`: the only zones this token reaches.
    pub zones: Option<Vec<Uuid>>,
    /// Unix seconds after which the token is refused.
    pub expires: Option<Timestamp>,
}

impl Principal {
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|s| s.grants(needed))
    }

    /// Whether the token may reach `zone` (a zone outside its list is as good as absent).
    pub fn reaches(&self, zone: Uuid) -> bool {
        self.zones.as_ref().is_none_or(|z| z.contains(&zone))
    }

    /// Whether a site in `zone` (`None`: not yet in one) is within this token's reach.
    pub fn reaches_site(&self, zone: Option<Uuid>) -> bool {
        self.zones
            .as_ref()
            .is_none_or(|zones| zone.is_some_and(|z| zones.contains(&z)))
    }

    /// Whether a token restricted to `zones` is within this one's restriction (an
    /// unrestricted token is within no restriction).
    pub fn covers(&self, zones: Option<&[Uuid]>) -> bool {
        match (&self.zones, zones) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => theirs.iter().all(|z| mine.contains(z)),
            (Some(_), None) => false,
        }
    }

    fn expired(&self) -> bool {
        self.expires.is_some_and(Timestamp::is_past)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid or revoked token")]
    Invalid,
    /// Too many failed verifications for this token id or from this address.
    #[error("too many failed attempts")]
    Throttled(Duration),
    /// Every hash slot is taken and the queue is full.
    #[error("too many verifications at once")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn base62(mut n: u128, len: usize, out: &mut String) {
    let mut buf = vec![b'0'; len];
    for slot in buf.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.push_str(std::str::from_utf8(&buf).expect("ascii"));
}

fn unbase62(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |acc, c| {
        let d = ALPHABET.iter().position(|a| *a == c)? as u128;
        acc.checked_mul(62)?.checked_add(d)
    })
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Builds a fresh secret for token `id`.
fn new_secret(id: Uuid) -> String {
    let mut random = String::with_capacity(RANDOM_LEN);
    let mut bytes = [0u8; RANDOM_LEN];
    // 62 * 4 = 248: rejecting bytes ≥ 248 keeps every character uniform.
    while random.len() < RANDOM_LEN {
        getrandom::fill(&mut bytes).expect("OS random source");
        for &b in &bytes {
            if b < 248 && random.len() < RANDOM_LEN {
                random.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    format_secret(id, &random)
}

/// A well-formed secret for token `id` with the given 32 base62 characters of randomness
/// (the format is public; only the random part is secret). For tests and tooling.
pub fn format_secret(id: Uuid, random: &str) -> String {
    let mut s = String::with_capacity(SECRET_LEN);
    s.push_str(PREFIX);
    base62(id.as_u128(), ID_LEN, &mut s);
    s.push_str(random);
    let check = crc32(s.as_bytes());
    base62(check as u128, CHECK_LEN, &mut s);
    s
}

/// The token id of a well-formed secret; `None` for anything that is not one of ours.
pub fn parse_secret(secret: &str) -> Option<Uuid> {
    if secret.len() != SECRET_LEN || !secret.starts_with(PREFIX) || !secret.is_ascii() {
        return None;
    }
    let (body, check) = secret.split_at(SECRET_LEN - CHECK_LEN);
    if unbase62(check)? != crc32(body.as_bytes()) as u128 {
        return None;
    }
    unbase62(&body[PREFIX.len()..PREFIX.len() + ID_LEN]).map(Uuid::from_u128)
}

/// Token ids are random (v4): they appear inside secrets, which should not reveal when a
/// token was made.
fn new_token_id() -> Uuid {
    Uuid::new_v4()
}

/// A new token for `team`: the row to store and the secret to show once. Slow (argon2):
/// call it off the async runtime's threads. No scopes means all of them.
pub fn mint(team: Uuid, name: &str, scopes: &[Scope]) -> (Token, String) {
    let id = new_token_id();
    let secret = new_secret(id);
    let hash = Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 with default params")
        .to_string();
    let scopes = if scopes.is_empty() {
        Scope::all()
    } else {
        scopes.to_vec()
    };
    let token = Token {
        id,
        team_id: team,
        name: name.to_string(),
        scopes,
        hash,
        created_at: Timestamp::now(),
        revoked_at: None,
        zones: None,
        expires: None,
        hint: format!(
            "{PREFIX}…{}",
            &secret[SECRET_LEN - CHECK_LEN - 4..SECRET_LEN - CHECK_LEN]
        ),
        created_by: None,
    };
    (token, secret)
}

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
/// The failure window.
const WINDOW: Duration = Duration::from_secs(60);
/// Most ids and addresses whose failures are tracked; beyond it new ones are refused until
/// old windows expire (memory stays bounded whatever an attacker sends).
const MAX_TRACKED: usize = 100_000;

/// Who a failure counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Culprit {
    Token(Uuid),
    /// An IPv4 address, or the /64 of an IPv6 one.
    Address(IpAddr),
}

/// Failures per culprit in fixed one-minute windows.
#[derive(Default)]
struct Failures(Mutex<HashMap<Culprit, (Instant, u32)>>);

impl Failures {
    /// When `who` has used its `limit` this window: how long until it may try again.
    fn blocked(&self, who: Culprit, limit: u32) -> Option<Duration> {
        let map = self.0.lock().expect("failures");
        let (start, count) = *map.get(&who)?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (count >= limit).then_some(left)
    }

    fn record(&self, who: Culprit) {
        let mut map = self.0.lock().expect("failures");
        if map.len() >= MAX_TRACKED && !map.contains_key(&who) {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let now = Instant::now();
        let entry = map.entry(who).or_insert((now, 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Whether a new culprit can be tracked at all (else it is refused, bounded memory).
    fn full(&self, who: Culprit) -> bool {
        let map = self.0.lock().expect("failures");
        map.len() >= MAX_TRACKED && !map.contains_key(&who)
    }

    fn prune(&self) {
        self.0
            .lock()
            .expect("failures")
            .retain(|_, (start, _)| start.elapsed() < WINDOW);
    }
}

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

/// One argon2id verification for the hash threads: is `secret` the one `hash` was made from,
/// and how long did finding out take.
struct HashJob {
    secret: String,
    hash: String,
    reply: tokio::sync::oneshot::Sender<(bool, Duration)>,
}

/// Starts `n` threads that verify hashes at the lowest CPU priority (nice 19): under a
/// flood of guesses the scheduler runs DNS and the API before them, so guessing costs the
/// server's users nothing measurable. They stop when the sender is dropped.
fn hash_threads(n: usize) -> std::sync::mpsc::Sender<HashJob> {
    let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ipx-hash-{i}"))
            .spawn(move || {
                // SAFETY: setpriority only changes this thread's nice value (Linux: per thread).
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                loop {
                    let Ok(job) = rx.lock().expect("hash queue").recv() else {
                        return;
                    };
                    let started = Instant::now();
                    let ok = PasswordHash::new(&job.hash)
                        .map(|h| Argon2::default().verify_password(job.secret.as_bytes(), &h).is_ok())
                        .unwrap_or(false);
                    let _ = job.reply.send((ok, started.elapsed()));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a hash thread");
        }
    }
    tx
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_their_id_and_reject_typos() {
        let id = Uuid::now_v7();
        let s = new_secret(id);
        assert_eq!(s.len(), SECRET_LEN);
        assert!(s.starts_with("ipxapi_"));
        assert_eq!(parse_secret(&s), Some(id));
        let mut typo = s.clone().into_bytes();
        typo[30] = if typo[30] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse_secret(std::str::from_utf8(&typo).unwrap()), None);
        assert_eq!(parse_secret("ipxapi_short"), None);
        assert_eq!(parse_secret(&s.replace("ipxapi_", "ipxapx_")), None);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn minted_tokens_store_only_a_hash_that_verifies() {
        let (token, secret) = mint(Uuid::now_v7(), "t", &[]);
        assert!(!token.hash.contains(&secret[7..]));
        assert!(token.hash.starts_with("$argon2id$"));
        let h = PasswordHash::new(&token.hash).unwrap();
        assert!(Argon2::default().verify_password(secret.as_bytes(), &h).is_ok());
        assert_eq!(token.scopes.len(), Scope::all().len());
    }
}
