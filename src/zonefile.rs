//! RFC 1035 master files in (hickory-proto's parser) and out.

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::domain::{DomainName, from_rdata};
use crate::store::{NewRecord, Soa, ZoneSeed};

/// DNSSEC material we would serve unsigned and stale: refused rather than imported.
const REFUSED_TYPES: &[RecordType] =
    &[RecordType::RRSIG, RecordType::NSEC, RecordType::NSEC3, RecordType::NSEC3PARAM, RecordType::DNSKEY, RecordType::CDS, RecordType::CDNSKEY];

/// Parses a master file into a zone seed. The SOA (serial, timers, MINIMUM) and the apex NS
/// set are kept exactly as written and become managed; every other record is the team's own.
pub fn parse(text: &str, origin: Option<&DomainName>) -> Result<ZoneSeed, String> {
    let (origin_name, sets) = Parser::new(text, None, origin.map(|o| o.to_hickory()))
        .parse()
        .map_err(|e| format!("zone file does not parse: {e}"))?;
    let name = DomainName::parse_zone(&origin_name.to_ascii()).map_err(|e| format!("zone origin: {e}"))?;
    let mut soa = None;
    let mut records = Vec::new();
    for set in sets.values() {
        for record in set.records_without_rrsigs() {
            let rtype = record.record_type();
            let owner = DomainName::parse(&record.name.to_ascii())
                .map_err(|e| format!("owner {}: {e}", record.name))?;
            if !owner.is_in(&name) {
                return Err(format!("{owner} is outside the zone {name}"));
            }
            if REFUSED_TYPES.contains(&rtype) {
                return Err(format!("{owner} {rtype}: DNSSEC records are not imported (ipx does not sign zones)"));
            }
            if let RData::SOA(s) = &record.data {
                if owner != name {
                    return Err(format!("SOA at {owner}, not at the apex {name}"));
                }
                if soa.is_some() {
                    return Err("more than one SOA record".into());
                }
                soa = Some((
                    Soa {
                        mname: s.mname.to_ascii(),
                        rname: s.rname.to_ascii(),
                        refresh: s.refresh as u32,
                        retry: s.retry as u32,
                        expire: s.expire as u32,
                        minimum: s.minimum,
                        ttl: record.ttl,
                    },
                    s.serial,
                ));
                continue;
            }
            let data = from_rdata(record.data.clone()).map_err(|e| format!("{owner} {rtype}: {e}"))?;
            let managed = rtype == RecordType::NS && owner == name;
            records.push(NewRecord { name: owner, data, ttl: record.ttl, managed, site_id: None });
        }
    }
    let (soa, serial) = soa.ok_or("the zone has no SOA record")?;
    if !records.iter().any(|r| r.managed) {
        return Err("the zone has no NS record at its apex".into());
    }
    Ok(ZoneSeed { name, serial, soa, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_zone_keeps_its_soa_and_flags_apex_ns() {
        let seed = parse(include_str!("../zones/example.test.zone"), None).unwrap();
        assert_eq!(seed.name.as_str(), "example.test");
        assert_eq!(seed.serial, 2026112601);
        assert_eq!(seed.soa.minimum, 300);
        assert_eq!(seed.soa.mname, "ns1.ipx.test.");
        assert_eq!(seed.records.iter().filter(|r| r.managed).count(), 2);
        assert!(seed.records.iter().any(|r| r.data.rtype == RecordType::SRV));
    }

    #[test]
    fn zones_without_soa_or_ns_are_refused() {
        assert!(parse("$ORIGIN a.test.\n@ 300 IN A 192.0.2.1\n", None).is_err());
        assert!(parse("$ORIGIN a.test.\n@ 300 IN SOA ns. h. 1 2 3 4 5\n", None).is_err());
        assert!(parse("not a zone file (", None).is_err());
    }
}
