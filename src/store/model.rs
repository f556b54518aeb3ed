//! Rows as stored in redb (JSON values), and the change events a commit publishes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::DomainName;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    /// Scope strings (`dns:write`); never empty: "all" is spelled out at creation.
    pub scopes: Vec<String>,
    /// argon2id PHC string of the secret; the secret itself is never stored.
    pub hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// When set, the token reaches only these zones (others answer 404).
    #[serde(default)]
    pub zones: Option<Vec<Uuid>>,
    /// Unix seconds after which the token is refused.
    #[serde(default)]
    pub expires: Option<u64>,
    /// The end of the secret, to tell tokens apart in listings (`ipxapi_…Xy9z`).
    #[serde(default)]
    pub hint: String,
    /// The token that minted this one through the API (`None`: an operator did).
    #[serde(default)]
    pub created_by: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Soa {
    pub mname: String,
    pub rname: String,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    pub ttl: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Zone {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: DomainName,
    /// Bumped (RFC 1982) by every change to the zone's records.
    pub serial: u32,
    pub soa: Soa,
    /// The apex NS names given when the zone was made: what to set at the registrar.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Records stored for the zone (the SOA, synthesised from this row, not counted).
    pub record_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: DomainName,
    #[serde(rename = "type")]
    pub rtype: String,
    pub content: String,
    pub ttl: u32,
    pub managed: bool,
    /// The site whose provisioning made this (managed) record; it goes with the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<Uuid>,
    /// RDATA in wire form, what the DNS snapshot is built from.
    #[serde(with = "hex")]
    pub rdata: Vec<u8>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a committed transaction changed, in commit order; the DNS snapshots are updated from
/// these before the writer acknowledges the transaction.
#[derive(Debug, Clone)]
pub enum Change {
    /// A zone was created or its row changed (serial, SOA).
    ZonePut(Zone),
    ZoneRemoved(Zone),
    RecordPut {
        old: Option<Record>,
        new: Record,
    },
    RecordRemoved(Record),
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A hosted site. The state words are documented in docs/hosting.md.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Site {
    pub id: Uuid,
    pub team_id: Uuid,
    #[schema(value_type = String)]
    pub domain: DomainName,
    pub project_id: Option<Uuid>,
    pub zone_id: Option<Uuid>,
    /// provisioning, active, updating, failed, suspended
    pub status: String,
    pub php_version: String,
    /// none, pending, active, failed
    pub ssl: String,
    pub ssl_expires_at: Option<String>,
    /// not_installed, installing, installed, failed
    pub wordpress: String,
    pub ipv4: String,
    pub ipv6: String,
    /// The most recent provisioning job: what it did and, when it failed, why.
    pub last_job: Option<JobSummary>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct JobSummary {
    pub id: Uuid,
    pub step: String,
    pub state: String,
    pub error: Option<String>,
}

/// A durable provisioning step, written in the same transaction as the state change that
/// asked for it and run (again, after a restart) until it ends in `done` or `failed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub team_id: Uuid,
    pub site_id: Uuid,
    /// create, php, ssl, wordpress
    pub step: String,
    /// Step parameters, e.g. `{"php_version": "8.4"}`.
    pub params: serde_json::Value,
    /// pending, running, done, failed
    pub state: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The stored outcome of a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdempotencyRecord {
    /// Hash of method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    /// Seconds since the epoch when the first request arrived.
    pub created: u64,
    /// `None` while the first request still runs.
    pub status: Option<u16>,
    pub body: Option<String>,
    pub location: Option<String>,
    #[serde(default)]
    pub etag: Option<String>,
}
