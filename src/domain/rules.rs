//! The rules a record must follow beside the zone's other records (RFC 1034 §3.6.2, RFC
//! 2181 §10.1) and the platform's own (managed records are the platform's). Pure: every door
//! that writes records (the API, batches, site provisioning, later RFC 2136) asks these.

use hickory_proto::rr::RecordType;

use super::{DomainName, NewRecord, Record};

/// Why a record may not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The record breaks a rule (422); `field` is the request field at fault.
    Invalid {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    /// An identical record exists (409).
    Duplicate(String),
    /// The record is the platform's: it cannot be edited or deleted (403).
    Managed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid { message, .. } | Self::Duplicate(message) | Self::Managed(message) => f.write_str(message),
        }
    }
}

fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        code,
        field,
        message: message.into(),
    }
}

/// `name` must be `zone` or below it.
pub fn in_zone(name: &DomainName, zone: &DomainName) -> Result<(), Refusal> {
    if name.is_in(zone) {
        Ok(())
    } else {
        Err(invalid(
            "invalid_record",
            "name",
            format!("{name} is outside the zone {zone}"),
        ))
    }
}

/// Whether `new` may be added to `zone` beside `others`, the records already at its name.
pub fn check(zone: &DomainName, new: &NewRecord, others: &[Record]) -> Result<(), Refusal> {
    in_zone(&new.name, zone)?;
    let rtype = new.data.rtype;
    if rtype == RecordType::SOA {
        return Err(invalid(
            "managed_record",
            "type",
            "the SOA record is managed by the platform",
        ));
    }
    if !new.managed && rtype == RecordType::NS && &new.name == zone {
        return Err(invalid(
            "managed_record",
            "type",
            "the apex NS set is managed by the platform; NS records are for delegations below the apex",
        ));
    }
    if rtype == RecordType::CNAME && &new.name == zone {
        return Err(invalid(
            "invalid_record",
            "type",
            "a CNAME cannot be at the zone apex (RFC 1034 §3.6.2)",
        ));
    }
    if rtype == RecordType::DS && &new.name == zone {
        return Err(invalid(
            "invalid_record",
            "name",
            "a DS record at the apex belongs in the parent zone, at the registrar; here DS records go at delegations (RFC 4035 §2.4)",
        ));
    }
    let is_cname = rtype == RecordType::CNAME;
    if let Some(o) = others.iter().find(|o| is_cname || o.rtype == RecordType::CNAME) {
        let whose = if o.managed { "managed " } else { "" };
        return Err(invalid(
            "invalid_record",
            "type",
            format!(
                "{} already has a {whose}{} record; a CNAME cannot share its name with other data (RFC 1034 §3.6.2)",
                new.name, o.rtype
            ),
        ));
    }
    if let Some(o) = others.iter().find(|o| !new.managed && o.managed && o.rtype == rtype) {
        let site = if o.site_id.is_some() { " for a site" } else { "" };
        return Err(invalid(
            "managed_record",
            "type",
            format!(
                "the {} records of {} are managed by the platform{site}",
                o.rtype, o.name
            ),
        ));
    }
    if others.iter().any(|o| o.rtype == rtype && o.content == new.data.content) {
        return Err(Refusal::Duplicate(format!(
            "{} {} {} exists",
            new.name, rtype, new.data.content
        )));
    }
    Ok(())
}

/// A managed record may not be edited or deleted.
pub fn editable(row: &Record) -> Result<(), Refusal> {
    if !row.managed {
        return Ok(());
    }
    let what = if row.rtype == RecordType::SOA {
        "the SOA record"
    } else {
        "this record"
    };
    Err(Refusal::Managed(format!(
        "{what} ({} {}) is managed by the platform: it changes with the zone or site that owns it and cannot be edited or deleted",
        row.name, row.rtype
    )))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Timestamp, parse_rdata};

    fn zone() -> DomainName {
        DomainName::parse_zone("example.com").unwrap()
    }

    fn rec(name: &str, t: RecordType, c: &str) -> NewRecord {
        let z = zone();
        NewRecord {
            name: DomainName::resolve_in(name, &z).unwrap(),
            data: parse_rdata(t, c, &z).unwrap(),
            ttl: 300,
            managed: false,
            site_id: None,
        }
    }

    fn row(name: &str, t: RecordType, c: &str, managed: bool) -> Record {
        let mut n = rec(name, t, c);
        n.managed = managed;
        Record::new(Uuid::nil(), &n, Timestamp::now())
    }

    use RecordType::{A, CNAME, NS, TXT};

    #[test]
    fn cname_rules() {
        let z = zone();
        assert!(check(&z, &rec("@", CNAME, "x.org."), &[]).is_err());
        assert!(check(&z, &rec("www", CNAME, "x.org."), &[]).is_ok());
        assert!(check(&z, &rec("www", CNAME, "x.org."), &[row("www", A, "192.0.2.1", false)]).is_err());
        assert!(check(&z, &rec("www", A, "192.0.2.1"), &[row("www", CNAME, "x.org.", false)]).is_err());
        assert!(check(&z, &rec("www", CNAME, "y.org."), &[row("www", CNAME, "x.org.", false)]).is_err());
        let e = check(&z, &rec("@", A, "192.0.2.1"), &[row("@", A, "192.0.2.1", false)]).unwrap_err();
        assert!(matches!(e, Refusal::Duplicate(_)));
        let e = check(&z, &rec("@", A, "192.0.2.2"), &[row("@", A, "192.0.2.1", true)]).unwrap_err();
        assert!(
            matches!(
                e,
                Refusal::Invalid {
                    code: "managed_record",
                    ..
                }
            ),
            "a user record cannot join a managed RRset"
        );
        assert!(check(&z, &rec("@", TXT, "x"), &[row("@", A, "192.0.2.1", true)]).is_ok());
    }

    #[test]
    fn apex_ns_is_managed_but_delegations_are_allowed() {
        let z = zone();
        assert!(check(&z, &rec("@", NS, "ns.other.org."), &[]).is_err());
        assert!(check(&z, &rec("sub", NS, "ns.other.org."), &[]).is_ok());
    }

    #[test]
    fn names_outside_the_zone_and_managed_rows_are_refused() {
        let mut r = rec("www", A, "192.0.2.1");
        r.name = DomainName::parse("www.other.org").unwrap();
        assert!(matches!(
            check(&zone(), &r, &[]),
            Err(Refusal::Invalid { field: "name", .. })
        ));
        assert!(editable(&row("www", A, "192.0.2.1", false)).is_ok());
        assert!(matches!(
            editable(&row("www", A, "192.0.2.1", true)),
            Err(Refusal::Managed(_))
        ));
    }
}
