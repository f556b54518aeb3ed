//! The catalog zone (RFC 9432, version 2): a zone of no team that lists every served zone as
//! a member, so that a secondary configured with the catalog alone serves them all, and
//! drops a zone when its member goes. Pure: the catalog's zone row, its fixed records, and
//! the member record of a zone.
//!
//! A member's unique id is its zone's UUID (32 hex digits): unique, never reused (a zone
//! deleted and made again is a new member, which RFC 9432 §5.4 makes consumers reset), and
//! not guessable, so nobody who may only query the catalog learns its members by asking.

use hickory_proto::rr::RecordType;
use uuid::Uuid;

use super::{DomainName, NewRecord, Soa, Timestamp, Zone, new_id, parse_rdata};

/// The catalog's schema version (RFC 9432 §4.2.1).
pub const VERSION: &str = "2";
/// Its TTLs: RFC 9432 §4 leaves them to us, and nothing caches a catalog.
const TTL: u32 = 0;
/// SOA timers: a secondary that missed a NOTIFY asks again within a minute.
const REFRESH: u32 = 60;
const RETRY: u32 = 60;
const EXPIRE: u32 = 2_147_483_646;

/// The catalog zone of a configuration (`[dns] catalog_zone`).
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub name: DomainName,
}

impl Catalog {
    pub fn new(name: DomainName) -> Self {
        Self { name }
    }

    /// The catalog's zone row, at `serial`: no team's (team nil), NS `invalid.` (RFC 9432
    /// §4.1: the catalog is not meant to be resolved).
    pub fn zone(&self, serial: u32) -> Zone {
        let now = Timestamp::now();
        Zone {
            id: new_id(),
            team_id: Uuid::nil(),
            name: self.name.clone(),
            serial,
            soa: Soa {
                mname: "invalid.".into(),
                rname: "invalid.".into(),
                refresh: REFRESH,
                retry: RETRY,
                expire: EXPIRE,
                minimum: TTL,
                ttl: TTL,
            },
            nameservers: vec!["invalid.".into()],
            record_count: 0,
            created_at: now,
            updated_at: now,
            catalog: true,
            dnssec: None,
        }
    }

    /// The records every catalog holds: the apex NS and the version (RFC 9432 §4.1, §4.2.1).
    pub fn base(&self) -> Vec<NewRecord> {
        let version = self.below("version");
        vec![
            self.record(self.name.clone(), RecordType::NS, "invalid."),
            self.record(version, RecordType::TXT, &format!("\"{VERSION}\"")),
        ]
    }

    /// The owner of `zone`'s member record: `<unique-id>.zones.<catalog>` (RFC 9432 §4.3).
    pub fn member_name(&self, zone: Uuid) -> DomainName {
        self.below(&format!("{}.zones", zone.simple()))
    }

    /// `zone`'s member record: a PTR to its name.
    pub fn member(&self, zone: &Zone) -> NewRecord {
        self.record(self.member_name(zone.id), RecordType::PTR, &format!("{}.", zone.name))
    }

    fn below(&self, labels: &str) -> DomainName {
        DomainName::parse(&format!("{labels}.{}", self.name)).expect("a catalog name leaves room for its labels")
    }

    fn record(&self, name: DomainName, rtype: RecordType, content: &str) -> NewRecord {
        NewRecord {
            name,
            data: parse_rdata(rtype, content, &self.name).expect("the catalog's own records parse"),
            ttl: TTL,
            managed: true,
            site_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_holds_its_version_and_one_ptr_per_member_under_a_unique_id() {
        let c = Catalog::new(DomainName::parse("catalog.ipx.invalid").unwrap());
        let base = c.base();
        assert_eq!(base[0].data.content, "invalid.");
        assert_eq!(base[1].name.as_str(), "version.catalog.ipx.invalid");
        assert_eq!(base[1].data.content, "\"2\"");
        let zone = Zone {
            name: DomainName::parse("shop.example").unwrap(),
            ..c.zone(1)
        };
        let m = c.member(&zone);
        assert_eq!(m.data.rtype, RecordType::PTR);
        assert_eq!(m.data.content, "shop.example.");
        let id = zone.id.simple().to_string();
        assert_eq!(m.name.as_str(), format!("{id}.zones.catalog.ipx.invalid"));
        assert_ne!(c.member_name(new_id()), m.name, "one id per zone");
        assert!(c.zone(7).catalog && c.zone(7).team_id.is_nil());
    }
}
