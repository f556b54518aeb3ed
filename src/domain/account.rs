//! Tenants and their API tokens.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Scope, Timestamp};

/// A tenant: every other resource belongs to one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
}

/// An API token. Its secret is never kept: only an argon2id hash of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    /// Never empty: "all" is spelled out at creation. A stored scope this version does not
    /// know (a newer one wrote it) grants nothing, as before scopes were typed.
    #[serde(deserialize_with = "known_scopes")]
    pub scopes: Vec<Scope>,
    /// argon2id PHC string of the secret.
    pub hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// When set, the token reaches only these zones (others answer 404).
    #[serde(default)]
    pub zones: Option<Vec<Uuid>>,
    /// When the token stops working, to the second (stored as Unix seconds).
    #[serde(default, with = "super::time::unix_secs")]
    pub expires: Option<Timestamp>,
    /// The end of the secret, to tell tokens apart in listings (`ipxapi_…Xy9z`).
    #[serde(default)]
    pub hint: String,
    /// The token that minted this one through the API (`None`: an operator did).
    #[serde(default)]
    pub created_by: Option<Uuid>,
}

fn known_scopes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Scope>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect())
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl Token {
    pub fn state(&self) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires.is_some_and(Timestamp::is_past) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}
