//! API tokens: mint, hash, verify, scopes.
//!
//! A secret is `ipxapi_` + the token's id (22 base62 chars) + 32 random base62 chars + a
//! 6-char CRC-32 checksum. The checksum lets a mistyped or made-up token be refused before
//! any store lookup, and lets secret scanners recognise ours. Only an argon2id hash of the
//! secret is stored. argon2 is deliberately slow, so a verified secret is remembered by a
//! keyed fingerprint; revocation drops it from that cache at once. Guessing is bounded: see
//! [`Authenticator`].

mod authenticator;
mod failures;
mod hasher;
mod secret;

use std::time::Duration;

use uuid::Uuid;

pub use authenticator::{Authenticator, Policy};
pub use secret::{PREFIX, SECRET_LEN, format_secret, mint, parse_secret};

use crate::domain::{Scope, Team, Timestamp};
use crate::store::StoreError;

/// Who is calling: the token, its team and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub team: Team,
    pub token_id: Uuid,
    pub token_name: String,
    pub scopes: Vec<Scope>,
    /// `Some`: the only zones this token reaches.
    pub zones: Option<Vec<Uuid>>,
    /// When the token stops being accepted.
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
