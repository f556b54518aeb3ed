//! Zones and their records as the platform keeps them.

use hickory_proto::rr::RecordType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DomainName, RecordData, Timestamp, new_id, rdata};
use crate::config::{DnsConfig, ZoneDefaults};

/// The SOA values a zone is served with (its serial is the zone's).
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
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The platform's catalog zone (RFC 9432, `super::catalog`), which no team owns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub catalog: bool,
    /// Signing, when it is on (or being turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<super::ZoneDnssec>,
}

/// One resource record of a zone.
///
/// The row is stored with the fields the API shows first, in the API's order, and the two
/// it keeps to itself (`site_id`, `rdata`) last: a page of records is then served by
/// copying each row's public part (`Record::public_part`), not by decoding and re-encoding
/// it. Rows written before this order are read the slow way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: DomainName,
    #[serde(rename = "type", with = "rtype_text")]
    pub rtype: RecordType,
    /// Canonical presentation text.
    pub content: String,
    pub ttl: u32,
    pub managed: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The site whose provisioning made this (managed) record; it goes with the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<Uuid>,
    /// RDATA in wire form, what the DNS snapshot is built from.
    #[serde(with = "hex")]
    pub rdata: Vec<u8>,
}

impl Record {
    /// The row a new record becomes in `zone`, made at `now`.
    pub fn new(zone: Uuid, new: &NewRecord, now: Timestamp) -> Self {
        Self::from_new(zone, new.clone(), now)
    }

    /// `new`, taking its strings: what an import does with a seed it no longer needs.
    pub fn from_new(zone: Uuid, new: NewRecord, now: Timestamp) -> Self {
        Self {
            id: new_id(),
            zone_id: zone,
            name: new.name,
            rtype: new.data.rtype,
            content: new.data.content,
            ttl: new.ttl,
            managed: new.managed,
            site_id: new.site_id,
            rdata: new.data.wire,
            created_at: now,
            updated_at: now,
        }
    }

    /// The public part of a stored row: its text up to, not including, the `,"site_id"` or
    /// `,"rdata"` that ends it, so the part and a closing `}` are the record as the API
    /// shows it. `None` for a row in the older field order. Inside a JSON string a quote is
    /// always escaped, so the `,"rdata":"` found from the end (RDATA is hex) is the key.
    pub fn public_part(row: &[u8]) -> Option<&[u8]> {
        const RDATA: &[u8] = b",\"rdata\":\"";
        const SITE: &[u8] = b",\"site_id\":\"";
        const UPDATED: &[u8] = b",\"updated_at\":\"";
        let hex = row.strip_suffix(b"\"}")?;
        let at = hex.len() - hex.iter().rev().take_while(|b| b.is_ascii_hexdigit()).count();
        let head = hex[..at].strip_suffix(RDATA)?;
        // A site id is 36 characters between quotes.
        let head = match head.len().checked_sub(SITE.len() + 37) {
            Some(s) if head[s..].starts_with(SITE) && head.ends_with(b"\"") => &head[..s],
            _ => head,
        };
        // The last public field is `updated_at`, an RFC 3339 time of at most 35 characters.
        let tail = &head[head.len().saturating_sub(UPDATED.len() + 36)..];
        let at = tail.windows(UPDATED.len()).position(|w| w == UPDATED)?;
        let time = tail.get(at + UPDATED.len()..tail.len() - 1)?;
        (head.ends_with(b"\"") && !time.contains(&b'"')).then_some(head)
    }

    /// `www.example.com A 192.0.2.1`, for audit events.
    pub fn summary(&self) -> String {
        format!("{} {} {}", self.name, self.rtype, self.content)
    }
}

/// A stored record as the DNS snapshot reads it at start-up: name, type, TTL and RDATA (hex,
/// as stored), borrowed from the row's bytes; the rest of the row is skipped, not decoded.
#[derive(Debug, Deserialize)]
pub struct ServedRecord<'a> {
    #[serde(borrow)]
    pub name: &'a str,
    #[serde(rename = "type", deserialize_with = "rtype_text::deserialize")]
    pub rtype: RecordType,
    pub ttl: u32,
    #[serde(borrow)]
    pub rdata: &'a str,
}

/// A record to add: validated, not yet stored.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub name: DomainName,
    pub data: RecordData,
    pub ttl: u32,
    pub managed: bool,
    /// Set on the managed records a site's provisioning adds.
    pub site_id: Option<Uuid>,
}

/// A zone to create: its apex, SOA and initial records (managed apex NS among them).
#[derive(Debug, Clone)]
pub struct ZoneSeed {
    pub name: DomainName,
    pub serial: u32,
    pub soa: Soa,
    pub records: Vec<NewRecord>,
}

impl ZoneSeed {
    /// A new zone as the platform makes it: SOA and apex NS from the configuration, both
    /// managed, serial starting at the current Unix time.
    pub fn fresh(name: DomainName, dns: &DnsConfig, defaults: &ZoneDefaults) -> Self {
        let soa = Soa {
            mname: dot(&dns.nameservers[0]),
            rname: dot(&dns.hostmaster),
            refresh: defaults.refresh,
            retry: defaults.retry,
            expire: defaults.expire,
            minimum: defaults.minimum,
            ttl: defaults.soa_ttl,
        };
        let records = dns
            .nameservers
            .iter()
            .map(|ns| NewRecord {
                name: name.clone(),
                data: rdata::parse_rdata(RecordType::NS, &dot(ns), &name).expect("config validated nameserver names"),
                ttl: defaults.ns_ttl,
                managed: true,
                site_id: None,
            })
            .collect();
        Self {
            name,
            serial: super::unix_now() as u32,
            soa,
            records,
        }
    }

    /// The zone and record rows this seed would be stored as, without a store: for tests,
    /// benches and fuzzing that build snapshots directly.
    pub fn detached_rows(&self) -> (Zone, Vec<Record>) {
        let now = Timestamp::now();
        let id = new_id();
        let rows: Vec<Record> = self.records.iter().map(|r| Record::new(id, r, now)).collect();
        let zone = Zone {
            id,
            team_id: Uuid::nil(),
            name: self.name.clone(),
            serial: self.serial,
            soa: self.soa.clone(),
            nameservers: Vec::new(),
            record_count: rows.len() as u64,
            created_at: now,
            updated_at: now,
            catalog: false,
            dnssec: None,
        };
        (zone, rows)
    }
}

fn dot(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A record type as its mnemonic (`"AAAA"`).
mod rtype_text {
    use std::str::FromStr;

    use hickory_proto::rr::RecordType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &RecordType, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RecordType, D::Error> {
        let text = <&str>::deserialize(d)?;
        RecordType::from_str(text).map_err(serde::de::Error::custom)
    }
}

/// Octets as lowercase hex.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
