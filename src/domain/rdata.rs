//! Record data: RFC 1035 presentation text in, canonical text and wire form out.

use std::str::FromStr;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_proto::serialize::txt::Parser;

use super::{DomainName, text};

/// Longest TTL the API accepts: one week, as most providers cap it.
pub const MAX_TTL: u32 = 604_800;
/// Types a user may create through the API.
pub const USER_TYPES: [RecordType; 10] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CAA,
    RecordType::CNAME,
    RecordType::DS,
    RecordType::MX,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SRV,
    RecordType::TXT,
];

/// A type a user may create, from its mnemonic in any case (`aaaa`).
pub fn user_type(text: &str) -> Option<RecordType> {
    RecordType::from_str(&text.to_ascii_uppercase())
        .ok()
        .filter(|t| USER_TYPES.contains(t))
}

/// Parsed RDATA: the canonical presentation text we store and show, and the wire form the
/// DNS snapshot is built from (so start-up never parses text).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordData {
    pub rtype: RecordType,
    pub content: String,
    pub wire: Vec<u8>,
}

/// Parses `content` in RFC 1035 presentation format for `rtype`, with relative names taken
/// relative to `origin`. TXT content without quotes is taken as one string.
pub fn parse_rdata(rtype: RecordType, content: &str, origin: &DomainName) -> Result<RecordData, String> {
    if content.trim().is_empty() {
        return Err("content is empty".into());
    }
    if content.len() > 4096 {
        return Err("content is longer than 4096 characters".into());
    }
    if let Some(c) = content.chars().find(|c| text::is_deceptive(*c)) {
        return Err(format!("content holds the control character {c:?}"));
    }
    if rtype == RecordType::TXT {
        let strings = if content.trim_start().starts_with('"') {
            text::strings(content)
        } else {
            text::unquoted(content)
        };
        let strings = strings.map_err(|e| format!("invalid TXT content: {e}"))?;
        return from_rdata(RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect())));
    }
    let text = if rtype == RecordType::CAA {
        content.to_string()
    } else {
        // `@` for the origin (RFC 1035 §5.1), which hickory's parser only takes as an owner.
        content
            .split_whitespace()
            .map(|t| {
                if t == "@" {
                    format!("{}.", origin)
                } else {
                    t.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The zone-file parser is hickory's only public presentation-format reader: feed it one
    // line. Control characters are refused above, so the line cannot grow into two entries.
    let line = format!("@ 3600 IN {rtype} {text}\n");
    let parsed = Parser::new(line, None, Some(origin.to_hickory()))
        .parse()
        .map_err(|e| format!("invalid {rtype} content: {}", first_line(&e.to_string())))?;
    let mut records = parsed
        .1
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>());
    let record = records.next().ok_or_else(|| format!("invalid {rtype} content"))?;
    if records.next().is_some() || record.record_type() != rtype {
        return Err(format!("invalid {rtype} content"));
    }
    let rdata = record.data.clone();
    if let RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DS(ds)) = &rdata {
        check_ds(ds)?;
    }
    from_rdata(rdata)
}

/// A DS digest must be as long as its type makes it (RFC 4034, 4509, 6605): resolvers treat
/// one of the wrong length as a broken chain.
fn check_ds(ds: &hickory_proto::dnssec::rdata::DS) -> Result<(), String> {
    let wanted = match u8::from(ds.digest_type()) {
        1 => 20,
        2 => 32,
        4 => 48,
        other => {
            return Err(format!(
                "DS digest type {other} is not one validators use; use 2 (SHA-256) or 4 (SHA-384)"
            ));
        }
    };
    if ds.digest().len() != wanted {
        return Err(format!(
            "a DS digest of type {} is {wanted} octets, not {}",
            u8::from(ds.digest_type()),
            ds.digest().len()
        ));
    }
    Ok(())
}

/// Builds the stored form of RDATA that is already parsed (zone import, wire decode).
pub fn from_rdata(rdata: RData) -> Result<RecordData, String> {
    let rtype = rdata.record_type();
    let mut wire = Vec::with_capacity(32);
    let mut enc = BinEncoder::new(&mut wire);
    rdata
        .emit(&mut enc)
        .map_err(|e| format!("cannot encode {rtype}: {e}"))?;
    // The encoder reserves half a kilobyte: a zone import holds a million of these.
    wire.shrink_to_fit();
    Ok(RecordData {
        rtype,
        content: present(&rdata),
        wire,
    })
}

/// RFC 1035 presentation text of RDATA, canonical for storage and zone files.
pub fn present(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| text::quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        // hickory prints the CAA value without escaping quotes.
        RData::CAA(caa) => format!("{} {} {}", caa.flags(), caa.tag, quote_one(&caa.value)),
        other => other.to_string(),
    }
}

fn quote_one(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A TTL from the API: 1 second to one week.
pub fn check_ttl(ttl: i64) -> Result<u32, String> {
    if !(1..=MAX_TTL as i64).contains(&ttl) {
        return Err(format!("ttl must be between 1 and {MAX_TTL} seconds"));
    }
    Ok(ttl as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mnemonic: &str) -> RecordType {
        RecordType::from_str(&mnemonic.to_ascii_uppercase()).unwrap()
    }

    fn zone() -> DomainName {
        DomainName::parse_zone("example.com").unwrap()
    }

    #[test]
    fn rdata_is_parsed_and_made_canonical() {
        let z = zone();
        assert_eq!(parse_rdata(t("a"), "192.0.2.1", &z).unwrap().content, "192.0.2.1");
        assert_eq!(
            parse_rdata(t("MX"), "10 mail", &z).unwrap().content,
            "10 mail.example.com."
        );
        assert_eq!(
            parse_rdata(t("CNAME"), "target.org.", &z).unwrap().content,
            "target.org."
        );
        assert_eq!(parse_rdata(t("CNAME"), "@", &z).unwrap().content, "example.com.");
        assert_eq!(parse_rdata(t("MX"), "10 @", &z).unwrap().content, "10 example.com.");
        assert_eq!(
            parse_rdata(t("TXT"), "v=spf1 -all", &z).unwrap().content,
            "\"v=spf1 -all\""
        );
        assert_eq!(
            parse_rdata(t("TXT"), "\"a\" \"b c\"", &z).unwrap().content,
            "\"a\" \"b c\""
        );
        assert_eq!(
            parse_rdata(t("SRV"), "10 60 5060 sip.example.com.", &z)
                .unwrap()
                .content,
            "10 60 5060 sip.example.com."
        );
        assert_eq!(
            parse_rdata(t("CAA"), "0 issue \"letsencrypt.org\"", &z)
                .unwrap()
                .content,
            "0 issue \"letsencrypt.org\""
        );
        let long = "x".repeat(600);
        let txt = parse_rdata(t("TXT"), &long, &z).unwrap();
        assert_eq!(txt.content.matches('"').count(), 6, "split into three strings");
    }

    #[test]
    fn bad_rdata_is_refused() {
        let z = zone();
        for (ty, c) in [
            ("A", "300.1.1.1"),
            ("A", "::1"),
            ("AAAA", "1.2.3.4"),
            ("MX", "mail"),
            ("A", "1.2.3.4\n@ A 5.6.7.8"),
            ("A", ""),
            ("SRV", "1 2 mail"),
        ] {
            assert!(parse_rdata(t(ty), c, &z).is_err(), "{ty} {c:?} should be refused");
        }
        assert_eq!(user_type("aaaa"), Some(RecordType::AAAA));
        assert_eq!(user_type("SOA"), None, "not a type users create");
        assert_eq!(user_type("BOGUS"), None);
    }

    #[test]
    fn ttl_bounds() {
        assert!(check_ttl(0).is_err());
        assert!(check_ttl(MAX_TTL as i64 + 1).is_err());
        assert_eq!(check_ttl(300), Ok(300));
    }
}
