//! API tokens: mint, hash, verify, scopes.
//!
//! A secret is `ipxapi_` + the token's id (22 base62 chars) + 32 random base62 chars + a
//! 6-char CRC-32 checksum. The checksum lets a mistyped or made-up token be refused before
//! any store lookup, and lets secret scanners recognise ours. Only an argon2id hash of the
//! secret is stored. argon2 is deliberately slow, so a verified secret is remembered by a
//! keyed fingerprint; revocation drops it from that cache at once.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use uuid::Uuid;

use crate::domain::{Scope, now_rfc3339};
use crate::store::{Store, StoreError, Team, Token};

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
    pub expires: Option<u64>,
}

impl Principal {
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|s| s.grants(needed))
    }

    /// Whether the token may reach `zone` (a zone outside its list is as good as absent).
    pub fn reaches(&self, zone: Uuid) -> bool {
        self.zones.as_ref().is_none_or(|z| z.contains(&zone))
    }

    fn expired(&self) -> bool {
        self.expires.is_some_and(|e| crate::domain::unix_now() >= e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid or revoked token")]
    Invalid,
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
    let mut s = String::with_capacity(SECRET_LEN);
    s.push_str(PREFIX);
    base62(id.as_u128(), ID_LEN, &mut s);
    let mut random = [0u8; RANDOM_LEN];
    getrandom::fill(&mut random).expect("OS random source");
    // 62 * 4 = 248: rejecting bytes ≥ 248 keeps every character uniform.
    let mut i = 0;
    while i < RANDOM_LEN {
        for &b in &random {
            if b < 248 && i < RANDOM_LEN {
                s.push(ALPHABET[(b % 62) as usize] as char);
                i += 1;
            }
        }
        getrandom::fill(&mut random).expect("OS random source");
    }
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

/// A new token for `team`: the row to store and the secret to show once. Slow (argon2):
/// call it off the async runtime's threads. No scopes means all of them.
pub fn mint(team: Uuid, name: &str, scopes: &[Scope]) -> (Token, String) {
    let id = crate::store::new_token_id();
    let secret = new_secret(id);
    let hash = Argon2::default().hash_password(secret.as_bytes()).expect("argon2 with default params").to_string();
    let scopes = if scopes.is_empty() { Scope::all() } else { scopes.to_vec() };
    let token = Token {
        id,
        team_id: team,
        name: name.to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        hash,
        created_at: now_rfc3339(),
        revoked_at: None,
        zones: None,
        expires: None,
        hint: format!("{PREFIX}…{}", &secret[SECRET_LEN - CHECK_LEN - 4..SECRET_LEN - CHECK_LEN]),
        created_by: None,
    };
    (token, secret)
}

struct Cached {
    fingerprint: u64,
    principal: Arc<Principal>,
}

/// Verifies bearer tokens, remembering the ones that verified.
pub struct Authenticator {
    store: Store,
    keys: RandomState,
    cache: Mutex<HashMap<Uuid, Cached>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Authenticator { store, keys: RandomState::new(), cache: Mutex::default() }
    }

    pub async fn verify(&self, secret: &str) -> Result<Arc<Principal>, AuthError> {
        let id = parse_secret(secret).ok_or(AuthError::Invalid)?;
        let fingerprint = self.keys.hash_one(secret);
        if let Some(hit) = self.cache.lock().expect("auth cache").get(&id)
            && hit.fingerprint == fingerprint
        {
            if hit.principal.expired() {
                return Err(AuthError::Invalid);
            }
            return Ok(hit.principal.clone());
        }
        let secret = secret.to_string();
        let principal = self
            .store
            .read(move |r| {
                let Some(token) = r.token(id)? else { return Ok(None) };
                if token.revoked_at.is_some() {
                    return Ok(None);
                }
                let Some(team) = r.team(token.team_id)? else { return Ok(None) };
                let ok = PasswordHash::new(&token.hash)
                    .map(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
                    .unwrap_or(false);
                if !ok {
                    return Ok(None);
                }
                let scopes = token.scopes.iter().filter_map(|s| s.parse().ok()).collect();
                Ok(Some(Principal {
                    team,
                    token_id: token.id,
                    token_name: token.name,
                    scopes,
                    zones: token.zones,
                    expires: token.expires,
                }))
            })
            .await?
            .ok_or(AuthError::Invalid)?;
        if principal.expired() {
            return Err(AuthError::Invalid);
        }
        let principal = Arc::new(principal);
        self.cache.lock().expect("auth cache").insert(id, Cached { fingerprint, principal: principal.clone() });
        Ok(principal)
    }

    /// Forgets a token at once (revocation).
    pub fn forget(&self, id: Uuid) {
        self.cache.lock().expect("auth cache").remove(&id);
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
