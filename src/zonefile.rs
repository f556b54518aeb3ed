//! RFC 1035 master files in (hickory-proto's parser) and out.

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

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
///
/// hickory's parser holds a whole text's records as its own RRsets (~800 bytes a record, a
/// gigabyte for a million), so the text is parsed piece by piece (`pieces`) and each piece's
/// records are converted before the next is read: the seed is the only copy that grows.
/// Records that appear twice are kept once, as a whole-file parse keeps them.
pub fn parse(text: &str, origin: Option<&DomainName>) -> Result<ZoneSeed, String> {
    parse_in_pieces(text, origin, PIECE_BYTES)
}

fn parse_in_pieces(text: &str, origin: Option<&DomainName>, piece_bytes: usize) -> Result<ZoneSeed, String> {
    let text = expand_at(text, origin.map(|o| format!("{o}.")));
    let mut soa = None;
    let mut records = Vec::new();
    each_piece(&text, piece_bytes, |piece| {
        let (_, sets) = Parser::new(piece, None, origin.map(|o| o.to_hickory()))
            .parse()
            .map_err(|e| format!("zone file does not parse: {e}"))?;
        // Each RRset is freed once converted.
        for set in sets.into_values() {
            for record in set.records_without_rrsigs() {
                let rtype = record.record_type();
                let owner =
                    DomainName::parse(&record.name.to_ascii()).map_err(|e| format!("owner {}: {e}", record.name))?;
                if REFUSED_TYPES.contains(&rtype) {
                    return Err(format!(
                        "{owner} {rtype}: DNSSEC records are not imported (ipx signs zones itself: PATCH the zone with {{\"dnssec\": true}})"
                    ));
                }
                if let RData::SOA(s) = &record.data {
                    if soa.is_some() {
                        return Err("more than one SOA record".into());
                    }
                    let fields = Soa {
                        mname: s.mname.to_ascii(),
                        rname: s.rname.to_ascii(),
                        refresh: s.refresh as u32,
                        retry: s.retry as u32,
                        expire: s.expire as u32,
                        minimum: s.minimum,
                        ttl: record.ttl,
                    };
                    soa = Some((owner, fields, s.serial));
                    continue;
                }
                let data = from_rdata(record.data.clone()).map_err(|e| format!("{owner} {rtype}: {e}"))?;
                records.push(NewRecord {
                    name: owner,
                    data,
                    ttl: record.ttl,
                    managed: false,
                    site_id: None,
                });
            }
        }
        Ok(())
    })?;
    // The zone is where its SOA is (a later `$ORIGIN` may name a part of it).
    let (apex, soa, serial) = soa.ok_or("the zone has no SOA record")?;
    let name = DomainName::parse_zone(apex.as_str()).map_err(|e| format!("zone origin: {e}"))?;
    for r in &mut records {
        if !r.name.is_in(&name) {
            return Err(format!("{} is outside the zone {name}", r.name));
        }
        r.managed = r.data.rtype == RecordType::NS && r.name == name;
    }
    if !records.iter().any(|r| r.managed) {
        return Err("the zone has no NS record at its apex".into());
    }
    // A record given twice in one piece is one record in hickory's RRset; across pieces the
    // copies meet here (in place: the seed is not held twice).
    records.sort_unstable_by(|a, b| (&a.name, a.data.rtype, &a.data.wire).cmp(&(&b.name, b.data.rtype, &b.data.wire)));
    records.dedup_by(|a, b| a.name == b.name && a.data.rtype == b.data.rtype && a.data.wire == b.data.wire);
    Ok(ZoneSeed {
        name,
        serial,
        soa,
        records,
    })
}

/// About how much text one piece of a master file holds (some ten thousand records).
const PIECE_BYTES: usize = 256 << 10;

/// Cuts master-file text into pieces of about `size` bytes that parse alone as they parse
/// in place, and hands them to `f` one at a time. A piece starts at a line outside parentheses and quotes that names its own
/// owner, and begins with the `$ORIGIN` and `$TTL` lines in force before it; where no
/// `$TTL` was given, only at a line with its own TTL (a record without one takes the last
/// TTL given, which would not cross the cut).
fn each_piece(text: &str, size: usize, mut f: impl FnMut(String) -> Result<(), String>) -> Result<(), String> {
    let (mut start, mut preamble) = (0, String::new());
    let (mut origin, mut ttl): (Option<&str>, Option<&str>) = (None, None);
    let (mut depth, mut quoted) = (0usize, false);
    let mut at = 0;
    while at < text.len() {
        let end = text[at..].find('\n').map_or(text.len(), |n| at + n + 1);
        let line = &text[at..end];
        if depth == 0 && !quoted {
            let mut words = line.split_ascii_whitespace();
            let first = words.next().unwrap_or("");
            if first.eq_ignore_ascii_case("$ORIGIN") {
                origin = Some(line.trim_end());
            } else if first.eq_ignore_ascii_case("$TTL") {
                ttl = Some(line.trim_end());
            }
            let owned = line.starts_with(|c: char| !c.is_ascii_whitespace() && !"$;()\"".contains(c));
            let timed = ttl.is_some() || words.next().is_some_and(|w| parse_ttl(w).is_ok());
            if at - start >= size && owned && timed {
                f(std::mem::take(&mut preamble) + &text[start..at])?;
                for directive in [origin, ttl].into_iter().flatten() {
                    preamble.push_str(directive);
                    preamble.push('\n');
                }
                start = at;
            }
        }
        let (bytes, mut i, mut comment) = (line.as_bytes(), 0, false);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if !comment => i += 1,
                b'"' if !comment => quoted = !quoted,
                b';' if !quoted => comment = true,
                b'(' if !quoted && !comment => depth += 1,
                b')' if !quoted && !comment => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        at = end;
    }
    f(preamble + &text[start..])
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

    /// Cut into pieces as small as can be (every line a cut where one is allowed), a file
    /// parses to the very seed it parses to whole: directives, owners and TTLs carried over,
    /// parentheses and quotes never cut, duplicates kept once.
    #[test]
    fn a_file_parsed_in_pieces_is_the_file_parsed_whole() {
        let texts = [
            include_str!("../zones/example.test.zone").to_string(),
            "$ORIGIN p.test.\n$TTL 120\n@ IN SOA ns.p.test. h.p.test. (\n 7 ; serial\n 2 3 4 5 )\n@ NS ns1.p.test.\n\
             @ NS ns2.p.test.\nwww A 192.0.2.1\n     A 192.0.2.2\nwww A 192.0.2.1\nt TXT \"a ; b ( c\" \"\\\" d\"\n\
             x 60 A 192.0.2.9\ny A 192.0.2.10\n$ORIGIN sub.p.test.\nz A 192.0.2.3\n$TTL 30\nq AAAA 2001:db8::1\n\
             m MX 10 @\nwww A 192.0.2.1\n"
                .to_string(),
            // No $TTL: a record without a TTL takes the last one given.
            "$ORIGIN n.test.\n@ 100 IN SOA ns.n.test. h.n.test. 1 2 3 4 5\n@ 100 NS ns.n.test.\na A 192.0.2.1\n\
             b 200 A 192.0.2.2\nc A 192.0.2.3\nd 300 IN A 192.0.2.4\ne IN A 192.0.2.5\n"
                .to_string(),
        ];
        for text in &texts {
            let whole = parse_in_pieces(text, None, usize::MAX).unwrap();
            let mut cuts = 0;
            each_piece(text, 1, |_| {
                cuts += 1;
                Ok(())
            })
            .unwrap();
            assert!(cuts > 3, "the file is cut");
            let cut = parse_in_pieces(text, None, 1).unwrap();
            assert_eq!(
                (&cut.name, cut.serial, &cut.soa),
                (&whole.name, whole.serial, &whole.soa)
            );
            assert_eq!(facts(&cut), facts(&whole), "{text}");
        }
        let seed = parse_in_pieces(&texts[1], None, 1).unwrap();
        let www: Vec<_> = seed
            .records
            .iter()
            .filter(|r| r.name.as_str() == "www.p.test")
            .collect();
        assert_eq!(www.len(), 2, "the repeated record is kept once");
        let ttl = |n: &str| seed.records.iter().find(|r| r.name.as_str() == n).unwrap().ttl;
        assert_eq!(
            (ttl("y.p.test"), ttl("z.sub.p.test"), ttl("q.sub.p.test")),
            (120, 120, 30)
        );
        let seed = parse_in_pieces(&texts[2], None, 1).unwrap();
        let ttl = |n: &str| seed.records.iter().find(|r| r.name.as_str() == n).unwrap().ttl;
        assert_eq!([ttl("a.n.test"), ttl("c.n.test"), ttl("e.n.test")], [100, 200, 300]);
    }

    #[test]
    fn zones_without_soa_or_ns_are_refused() {
        assert!(parse("$ORIGIN a.test.\n@ 300 IN A 192.0.2.1\n", None).is_err());
        assert!(parse("$ORIGIN a.test.\n@ 300 IN SOA ns. h. 1 2 3 4 5\n", None).is_err());
        assert!(parse("not a zone file (", None).is_err());
    }
}
