//! Validated values of the domain: names, record data, scopes, timestamps. Pure, no I/O.

mod reserved;
pub mod text;

pub use reserved::{Reserved, is_public_suffix};

use std::fmt;
use std::str::FromStr;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_proto::serialize::txt::Parser;
use serde::{Deserialize, Serialize};

/// Longest TTL the API accepts: one week, as most providers cap it.
pub const MAX_TTL: u32 = 604_800;
/// Types a user may create through the API.
pub const USER_TYPES: &[&str] = &["A", "AAAA", "CAA", "CNAME", "DS", "MX", "NS", "PTR", "SRV", "TXT"];

/// A domain name in its canonical text form: lowercase ASCII, no trailing dot, at most 253
/// octets, labels of 1 to 63 octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DomainName(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DomainName {
    /// Parses an absolute name; one trailing dot is allowed. Labels may hold letters, digits,
    /// `-` and `_` (service labels); `*` only as a whole leftmost label.
    pub fn parse(input: &str) -> Result<DomainName, NameError> {
        let s = input.strip_suffix('.').unwrap_or(input);
        if s.is_empty() {
            return Err(NameError("name is empty".into()));
        }
        if s.len() > 253 {
            return Err(NameError(format!("name is {} octets long; the limit is 253", s.len())));
        }
        for (i, label) in s.split('.').enumerate() {
            if label.is_empty() {
                return Err(NameError(format!("{input:?} has an empty label")));
            }
            if label.len() > 63 {
                return Err(NameError(format!(
                    "label {label:?} is {} octets long; the limit is 63",
                    label.len()
                )));
            }
            if label == "*" && i == 0 {
                continue;
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(NameError(format!(
                    "label {label:?} holds {c:?}; use letters, digits, '-' or '_'"
                )));
            }
        }
        Ok(DomainName(s.to_ascii_lowercase()))
    }

    /// A zone apex: at least two labels, no wildcard, no service labels.
    pub fn parse_zone(input: &str) -> Result<DomainName, NameError> {
        let name = Self::parse(input)?;
        if !name.0.contains('.') {
            return Err(NameError(
                "a zone needs at least two labels (example.com, not com)".into(),
            ));
        }
        if name
            .0
            .split('.')
            .any(|l| l == "*" || l.contains('_') || l.starts_with('-') || l.ends_with('-'))
        {
            return Err(NameError("zone labels are letters, digits and inner hyphens".into()));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `zone` or below it.
    pub fn is_in(&self, zone: &DomainName) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(&zone.0)
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The name as hickory's type, built from its labels as octets: hickory's text reader
    /// refuses labels that `parse` accepts (`-dash`), and every name we store is served.
    pub fn to_hickory(&self) -> Name {
        let mut n = Name::from_labels(self.0.split('.').map(str::as_bytes)).expect("validated name");
        n.set_fqdn(true);
        n
    }

    /// Resolves a record name given to the API against its zone: `@` is the apex, a name with
    /// a trailing dot is absolute, a name ending in the zone is taken as written, anything
    /// else is relative to the zone.
    pub fn resolve_in(input: &str, zone: &DomainName) -> Result<DomainName, NameError> {
        let input = input.trim();
        let name = if input.is_empty() || input == "@" {
            zone.clone()
        } else if input.ends_with('.') {
            Self::parse(input)?
        } else {
            let lower = input.to_ascii_lowercase();
            if lower == zone.0 || lower.ends_with(&format!(".{}", zone.0)) {
                Self::parse(input)?
            } else {
                Self::parse(&format!("{input}.{}", zone.0))?
            }
        };
        if !name.is_in(zone) {
            return Err(NameError(format!("{} is outside the zone {}", name, zone)));
        }
        Ok(name)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parsed RDATA: the canonical presentation text we store and show, and the wire form the
/// DNS snapshot is built from (so start-up never parses text).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordData {
    pub rtype: RecordType,
    pub content: String,
    pub wire: Vec<u8>,
    pub rdata: RData,
}

/// Parses `content` in RFC 1035 presentation format for `rtype`, with relative names taken
/// relative to `origin`. TXT content without quotes is taken as one string.
pub fn parse_rdata(rtype_text: &str, content: &str, origin: &DomainName) -> Result<RecordData, String> {
    let rtype = RecordType::from_str(&rtype_text.to_ascii_uppercase())
        .map_err(|_| format!("unknown record type {rtype_text:?}"))?;
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
    Ok(RecordData {
        rtype,
        content: present(&rdata),
        wire,
        rdata,
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

/// An API permission: a resource and an access level; `write` implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub resource: Resource,
    pub write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Sites,
    Dns,
    Wordpress,
    Projects,
    Tokens,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Sites,
        Resource::Dns,
        Resource::Wordpress,
        Resource::Projects,
        Resource::Tokens,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Resource::Sites => "sites",
            Resource::Dns => "dns",
            Resource::Wordpress => "wordpress",
            Resource::Projects => "projects",
            Resource::Tokens => "tokens",
        }
    }
}

impl Scope {
    pub const fn read(resource: Resource) -> Scope {
        Scope { resource, write: false }
    }
    pub const fn write(resource: Resource) -> Scope {
        Scope { resource, write: true }
    }

    /// Every scope at write level: what a token created without scopes gets.
    pub fn all() -> Vec<Scope> {
        Resource::ALL.iter().map(|r| Scope::write(*r)).collect()
    }

    /// Whether holding `self` grants `needed`.
    pub fn grants(self, needed: Scope) -> bool {
        self.resource == needed.resource && (self.write || !needed.write)
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        let (res, level) = s
            .split_once(':')
            .ok_or_else(|| format!("scope {s:?} is not resource:level"))?;
        let resource = Resource::ALL
            .into_iter()
            .find(|r| r.as_str() == res)
            .ok_or_else(|| format!("unknown resource {res:?} in scope {s:?}"))?;
        let write = match level {
            "read" => false,
            "write" => true,
            _ => return Err(format!("unknown level {level:?} in scope {s:?}; use read or write")),
        };
        Ok(Scope { resource, write })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.resource.as_str(),
            if self.write { "write" } else { "read" }
        )
    }
}

/// A name people give to things (tokens, projects, teams), trimmed: `None` unless it is 1 to
/// `max` characters with no control or display-changing character (a bidi override in a
/// listing would make it read as something else).
pub fn label_text(name: &str, max: usize) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty() && name.chars().count() <= max && !name.chars().any(text::is_deceptive);
    ok.then(|| name.to_string())
}

/// The unit a client is counted in: its IPv4 address, or the /64 of its IPv6 address (one
/// host usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::IpAddr;
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// RFC 3339 UTC timestamp of now, millisecond precision.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// RFC 3339 UTC timestamp of a Unix time.
pub fn rfc3339_at(secs: u64) -> String {
    rfc3339(secs as i64, 0)
}

fn rfc3339(secs: i64, millis: u32) -> String {
    // Civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> DomainName {
        DomainName::parse_zone("example.com").unwrap()
    }

    #[test]
    fn names_are_lowercased_and_lose_the_trailing_dot() {
        assert_eq!(
            DomainName::parse("WWW.Example.COM.").unwrap().as_str(),
            "www.example.com"
        );
    }

    #[test]
    fn long_names_and_labels_are_refused() {
        assert!(DomainName::parse(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(DomainName::parse(&format!("{}.com", "a".repeat(63))).is_ok());
        let long = vec!["abcdefghi"; 26].join("."); // 259 octets
        assert!(DomainName::parse(&long).is_err());
        assert!(DomainName::parse("a..com").is_err());
        assert!(DomainName::parse("a b.com").is_err());
    }

    #[test]
    fn zone_names_need_two_plain_labels() {
        assert!(DomainName::parse_zone("com").is_err());
        assert!(DomainName::parse_zone("*.example.com").is_err());
        assert!(DomainName::parse_zone("_x.example.com").is_err());
        assert!(DomainName::parse_zone("-a.example.com").is_err());
    }

    #[test]
    fn record_names_resolve_against_the_zone() {
        let z = zone();
        assert_eq!(DomainName::resolve_in("@", &z).unwrap().as_str(), "example.com");
        assert_eq!(DomainName::resolve_in("www", &z).unwrap().as_str(), "www.example.com");
        assert_eq!(
            DomainName::resolve_in("www.example.com", &z).unwrap().as_str(),
            "www.example.com"
        );
        assert_eq!(
            DomainName::resolve_in("WWW.example.com.", &z).unwrap().as_str(),
            "www.example.com"
        );
        assert_eq!(
            DomainName::resolve_in("www.other.org", &z).unwrap().as_str(),
            "www.other.org.example.com"
        );
        assert!(DomainName::resolve_in("www.other.org.", &z).is_err());
        assert!(DomainName::resolve_in("badexample.com.", &z).is_err());
    }

    #[test]
    fn rdata_is_parsed_and_made_canonical() {
        let z = zone();
        assert_eq!(parse_rdata("a", "192.0.2.1", &z).unwrap().content, "192.0.2.1");
        assert_eq!(
            parse_rdata("MX", "10 mail", &z).unwrap().content,
            "10 mail.example.com."
        );
        assert_eq!(parse_rdata("CNAME", "target.org.", &z).unwrap().content, "target.org.");
        assert_eq!(parse_rdata("CNAME", "@", &z).unwrap().content, "example.com.");
        assert_eq!(parse_rdata("MX", "10 @", &z).unwrap().content, "10 example.com.");
        assert_eq!(
            parse_rdata("TXT", "v=spf1 -all", &z).unwrap().content,
            "\"v=spf1 -all\""
        );
        assert_eq!(
            parse_rdata("TXT", "\"a\" \"b c\"", &z).unwrap().content,
            "\"a\" \"b c\""
        );
        assert_eq!(
            parse_rdata("SRV", "10 60 5060 sip.example.com.", &z).unwrap().content,
            "10 60 5060 sip.example.com."
        );
        assert_eq!(
            parse_rdata("CAA", "0 issue \"letsencrypt.org\"", &z).unwrap().content,
            "0 issue \"letsencrypt.org\""
        );
        let long = "x".repeat(600);
        let txt = parse_rdata("TXT", &long, &z).unwrap();
        assert_eq!(txt.content.matches('"').count(), 6, "split into three strings");
    }

    #[test]
    fn bad_rdata_is_refused() {
        let z = zone();
        for (t, c) in [
            ("A", "300.1.1.1"),
            ("A", "::1"),
            ("AAAA", "1.2.3.4"),
            ("MX", "mail"),
            ("A", "1.2.3.4\n@ A 5.6.7.8"),
            ("A", ""),
            ("BOGUS", "x"),
            ("SRV", "1 2 mail"),
        ] {
            assert!(parse_rdata(t, c, &z).is_err(), "{t} {c:?} should be refused");
        }
    }

    #[test]
    fn scopes_parse_and_write_implies_read() {
        let w: Scope = "dns:write".parse().unwrap();
        assert!(w.grants(Scope::read(Resource::Dns)));
        assert!(!Scope::read(Resource::Dns).grants(w));
        assert!(!w.grants(Scope::read(Resource::Sites)));
        assert!("dns:admin".parse::<Scope>().is_err());
        assert_eq!(w.to_string(), "dns:write");
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_651_200, 5), "2026-11-26T00:00:00.005Z");
    }

    #[test]
    fn ttl_bounds() {
        assert!(check_ttl(0).is_err());
        assert!(check_ttl(MAX_TTL as i64 + 1).is_err());
        assert_eq!(check_ttl(300), Ok(300));
    }
}
