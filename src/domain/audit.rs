//! Audit events: who changed what, when, through which request.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// An API token.
    Token,
    /// The CLI.
    Operator,
    /// A provisioning job.
    System,
    /// An RFC 2136 UPDATE signed with a team's TSIG key.
    TsigKey,
}

/// Who a write is for; its audit event names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    pub token_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// The TSIG key an UPDATE was signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
}

impl Actor {
    pub fn operator() -> Self {
        Self {
            kind: ActorKind::Operator,
            token_id: None,
            request_id: None,
            key_id: None,
        }
    }

    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            token_id: None,
            request_id: None,
            key_id: None,
        }
    }

    pub fn tsig_key(key_id: Uuid) -> Self {
        Self {
            kind: ActorKind::TsigKey,
            token_id: None,
            request_id: None,
            key_id: Some(key_id),
        }
    }

    pub fn token(token_id: Uuid, request_id: String) -> Self {
        Self {
            kind: ActorKind::Token,
            token_id: Some(token_id),
            request_id: Some(request_id),
            key_id: None,
        }
    }
}

/// What kind of resource an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Team,
    Token,
    Zone,
    Record,
    Project,
    Site,
    TsigKey,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Token => "token",
            Self::Zone => "zone",
            Self::Record => "record",
            Self::Project => "project",
            Self::Site => "site",
            Self::TsigKey => "tsig_key",
        }
    }
}

/// One change, as the audit log keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub at: Timestamp,
    /// e.g. `record.created`, `zone.created`, `site.ssl_requested`, `token.revoked`.
    pub action: String,
    pub resource_type: ResourceKind,
    pub resource_id: Uuid,
    pub actor: Actor,
    /// A short human summary (`www.example.com A 192.0.2.1`).
    pub summary: String,
    /// The zone the change was made in, when it was made in one: what a zone-restricted
    /// token may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<Uuid>,
}
