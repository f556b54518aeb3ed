//! RFC 1035 master files in (hickory-proto's parser) and out.

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::domain::{DomainName, from_rdata};
use crate::domain::{NewRecord, Record, Soa, Zone, ZoneSeed};

/// DNSSEC material, refused rather than imported: ipx makes its own keys and signatures.
/// Export leaves out the ones a signed zone publishes (they are its keys', not records).
const REFUSED_TYPES: &[RecordType] = &[
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::NSEC3,
    RecordType::NSEC3PARAM,
    RecordType::DNSKEY,
    RecordType::CDS,
    RecordType::CDNSKEY,
];

/// Parses a master file into a zone seed. The SOA (serial, timers, MINIMUM) and the apex NS
/// set are kept exactly as written and become managed; every other record is the team's own.
pub fn parse(text: &str, origin: Option<&DomainName>) -> Result<ZoneSeed, String> {
    let text = expand_at(text, origin.map(|o| format!("{o}.")));
    let (origin_name, sets) = Parser::new(text, None, origin.map(|o| o.to_hickory()))
        .parse()
        .map_err(|e| format!("zone file does not parse: {e}"))?;
    let name = DomainName::parse_zone(&origin_name.to_ascii()).map_err(|e| format!("zone origin: {e}"))?;
    let mut soa = None;
    let mut records = Vec::new();
    // Each RRset is freed once converted: hickory's form of a million records never sits
    // beside all of ours.
    for set in sets.into_values() {
        for record in set.records_without_rrsigs() {
            let rtype = record.record_type();
            let owner =
                DomainName::parse(&record.name.to_ascii()).map_err(|e| format!("owner {}: {e}", record.name))?;
            if !owner.is_in(&name) {
                return Err(format!("{owner} is outside the zone {name}"));
            }
            if REFUSED_TYPES.contains(&rtype) {
                return Err(format!(
                    "{owner} {rtype}: DNSSEC records are not imported (ipx signs zones itself: PATCH the zone with {{\"dnssec\": true}})"
                ));
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
            records.push(NewRecord {
                name: owner,
                data,
                ttl: record.ttl,
                managed,
                site_id: None,
            });
        }
    }
    let (soa, serial) = soa.ok_or("the zone has no SOA record")?;
    if !records.iter().any(|r| r.managed) {
        return Err("the zone has no NS record at its apex".into());
    }
    Ok(ZoneSeed {
        name,
        serial,
        soa,
        records,
    })
}

/// Replaces `@` in RDATA with the current origin: RFC 1035 §5.1 allows it wherever a name
/// goes, hickory's parser only as an owner (`www CNAME @` is common in real files). Quoted
/// strings, comments and owner positions are left alone.
fn expand_at(text: &str, mut origin: Option<String>) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("$ORIGIN") {
            if let Some(o) = rest.split_whitespace().next() {
                origin = Some(if o.ends_with('.') {
                    o.to_string()
                } else {
                    format!("{o}.{}", origin.as_deref().unwrap_or(""))
                });
            }
            out.extend_from_slice(line.as_bytes());
            continue;
        }
        let Some(origin) = origin.as_deref() else {
            out.extend_from_slice(line.as_bytes());
            continue;
        };
        let bytes = line.as_bytes();
        let (mut i, mut quoted) = (0, false);
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'\\' if quoted => {
                    out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
                    i += 2;
                    continue;
                }
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    out.extend_from_slice(&bytes[i..]);
                    break;
                }
                b'@' if !quoted && i > 0 => {
                    let before = bytes[i - 1].is_ascii_whitespace() || bytes[i - 1] == b'(';
                    let after = bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace() || *b == b')');
                    if before && after {
                        out.extend_from_slice(origin.as_bytes());
                        i += 1;
                        continue;
                    }
                }
                _ => {}
            }
            out.push(c);
            i += 1;
        }
    }
    // Only ASCII was inserted, at ASCII positions: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// The zone as an RFC 1035 master file: the SOA first, then every record with its absolute
/// owner name, grouped by name (parents before children) and type.
pub fn export(zone: &Zone, records: &[Record]) -> String {
    let s = &zone.soa;
    let mut out = format!(
        "; {name} exported by ipx, serial {serial}\n$ORIGIN {name}.\n{name}.\t{ttl}\tIN\tSOA\t{} {} {serial} {} {} {} {}\n",
        s.mname,
        s.rname,
        s.refresh,
        s.retry,
        s.expire,
        s.minimum,
        name = zone.name,
        serial = zone.serial,
        ttl = s.ttl,
    );
    let mut sorted: Vec<&Record> = records.iter().collect();
    let key = |r: &Record| {
        (
            r.name.as_str().rsplit('.').map(str::to_string).collect::<Vec<_>>(),
            r.rtype,
            r.content.clone(),
        )
    };
    sorted.retain(|r| !REFUSED_TYPES.contains(&r.rtype));
    sorted.sort_by_cached_key(|r| key(r));
    for r in sorted {
        out.push_str(&format!("{}.\t{}\tIN\t{}\t{}\n", r.name, r.ttl, r.rtype, r.content));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(seed: &ZoneSeed) -> Vec<(String, String, u32, String, bool)> {
        let mut v: Vec<_> = seed
            .records
            .iter()
            .map(|r| {
                (
                    r.name.to_string(),
                    r.data.rtype.to_string(),
                    r.ttl,
                    r.data.content.clone(),
                    r.managed,
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn export_round_trips_the_example_zones() {
        for (file, text) in crate::app::DEMO_ZONES {
            let seed = parse(text, None).unwrap();
            let (zone, records) = seed.detached_rows();
            let again = parse(&export(&zone, &records), None).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(again.name, seed.name, "{file}");
            assert_eq!(again.serial, seed.serial, "{file}");
            assert_eq!(again.soa, seed.soa, "{file}");
            assert_eq!(facts(&again), facts(&seed), "{file}");
        }
    }

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
    fn at_in_rdata_is_the_origin() {
        let seed = parse("$ORIGIN a.test.\n@ 60 IN SOA ns.a.test. h.a.test. 1 2 3 4 5\n@ 60 IN NS ns\nwww 60 IN CNAME @\n@ 60 IN MX 10 @\n@ 60 IN TXT \"mail @ home ü\" ; @ comment\n", None).unwrap();
        let contents: Vec<_> = seed.records.iter().map(|r| r.data.content.as_str()).collect();
        assert!(contents.contains(&"a.test."), "{contents:?}");
        assert!(contents.contains(&"10 a.test."), "{contents:?}");
        assert!(contents.iter().any(|c| c.starts_with("\"mail @ home")), "{contents:?}");
    }

    #[test]
    fn zones_without_soa_or_ns_are_refused() {
        assert!(parse("$ORIGIN a.test.\n@ 300 IN A 192.0.2.1\n", None).is_err());
        assert!(parse("$ORIGIN a.test.\n@ 300 IN SOA ns. h. 1 2 3 4 5\n", None).is_err());
        assert!(parse("not a zone file (", None).is_err());
    }
}
