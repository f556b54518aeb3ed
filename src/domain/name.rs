//! Domain names as the API takes them: validated, canonical (lowercase, no trailing dot).

use std::fmt;

use hickory_proto::rr::Name;
use serde::{Deserialize, Serialize};

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
    pub fn parse(input: &str) -> Result<Self, NameError> {
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
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// A zone apex: at least two labels, no wildcard, no service labels.
    pub fn parse_zone(input: &str) -> Result<Self, NameError> {
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
    pub fn is_in(&self, zone: &Self) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(&zone.0)
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The name in wire form (lowercase, as it is stored), with its root label.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        for label in self.0.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
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
    pub fn resolve_in(input: &str, zone: &Self) -> Result<Self, NameError> {
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
}
