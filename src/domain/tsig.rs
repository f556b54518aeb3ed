//! TSIG keys (RFC 8945) a team makes for standard DNS tools, and the policy that says what
//! each may change by RFC 2136 UPDATE and whether it may transfer its zones: Knot's
//! `update-owner`/`update-type` ACLs and BIND's `update-policy`, as data.

use std::fmt;
use std::str::FromStr;

use hickory_proto::rr::RecordType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::{DomainName, Timestamp, USER_TYPES, new_id, user_type};
use crate::seal::{Sealed, Sealer};

/// Most names (and subtrees) one rule may list.
pub const MAX_RULE_NAMES: usize = 100;

/// The MAC algorithms a key may use: the ones RFC 8945 §6 requires or recommends, never
/// hmac-md5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TsigAlgorithm {
    /// Mandatory in RFC 8945 and lego's default; weaker than the others, not broken as HMAC.
    HmacSha1,
    #[default]
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl TsigAlgorithm {
    pub const ALL: [Self; 4] = [Self::HmacSha1, Self::HmacSha256, Self::HmacSha384, Self::HmacSha512];

    /// The algorithm's name, as TSIG records and clients spell it (without the final dot).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "hmac-sha1",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// Octets of the MAC, and of the secrets ipx makes (RFC 2104 §3: as long as the hash).
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

impl FromStr for TsigAlgorithm {
    type Err = String;

    /// A name in any case, with or without the final dot.
    fn from_str(text: &str) -> Result<Self, String> {
        let wanted = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some(a) = Self::ALL.into_iter().find(|a| a.as_str() == wanted) {
            return Ok(a);
        }
        if wanted == "hmac-md5" || wanted == "hmac-md5.sig-alg.reg.int" {
            return Err("hmac-md5 is not offered: MD5 is broken; use hmac-sha256 (or hmac-sha1 for a client that has nothing better)".into());
        }
        let all: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
        Err(format!(
            "{text:?} is not a TSIG algorithm here; use one of {}",
            all.join(", ")
        ))
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TsigAlgorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TsigAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&str>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What a key may change in one zone. `names` match exactly, `subtrees` match a name and
/// everything below it; a rule with neither covers the whole zone. `types` empty: every
/// type the API accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRule {
    pub zone_id: Uuid,
    #[serde(default)]
    pub names: Vec<DomainName>,
    #[serde(default)]
    pub subtrees: Vec<DomainName>,
    #[serde(default, with = "types_text")]
    pub types: Vec<RecordType>,
}

/// Names of a rule as people type them, resolved in `zone`; errors as (`field[i]`, message).
fn rule_names(list: &[String], zone: &DomainName, field: &str, errors: &mut Vec<(String, String)>) -> Vec<DomainName> {
    if list.len() > MAX_RULE_NAMES {
        errors.push((field.into(), format!("at most {MAX_RULE_NAMES}")));
        return Vec::new();
    }
    let mut out: Vec<DomainName> = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let bare = text.trim().trim_end_matches('.');
        if let Some(stem) = bare.strip_suffix(".*") {
            let message = format!("names match exactly; put {stem:?} in subtrees to cover it and every name below it");
            errors.push((at, message));
            continue;
        }
        match DomainName::resolve_in(text, zone) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(e) => errors.push((at, e.0)),
        }
    }
    out
}

impl KeyRule {
    /// A rule for the zone `zone_id` (named `zone`) from its parts as people type them: names
    /// relative to the zone, `@` or fully qualified; types by mnemonic. Every error at once,
    /// as (`names[1]`, message).
    pub fn parse(
        zone_id: Uuid,
        zone: &DomainName,
        names: &[String],
        subtrees: &[String],
        types: &[String],
    ) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let names = rule_names(names, zone, "names", &mut errors);
        let subtrees = rule_names(subtrees, zone, "subtrees", &mut errors);
        let mut kinds = Vec::new();
        for (j, text) in types.iter().take(USER_TYPES.len() + 1).enumerate() {
            match user_type(text) {
                Some(t) if !kinds.contains(&t) => kinds.push(t),
                Some(_) => {}
                None => {
                    let all: Vec<String> = USER_TYPES.iter().map(ToString::to_string).collect();
                    let message = format!(
                        "{text:?} is not a type records are made with here; use one of {}",
                        all.join(", ")
                    );
                    errors.push((format!("types[{j}]"), message));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            zone_id,
            names,
            subtrees,
            types: kinds,
        })
    }

    /// Whether the rule lets a key touch `rtype` records at `name` (a name of its zone).
    pub fn covers(&self, name: &DomainName, rtype: RecordType) -> bool {
        let name_ok = (self.names.is_empty() && self.subtrees.is_empty())
            || self.names.contains(name)
            || self.subtrees.iter().any(|s| name.is_in(s));
        let type_ok = if self.types.is_empty() {
            USER_TYPES.contains(&rtype)
        } else {
            self.types.contains(&rtype)
        };
        name_ok && type_ok
    }
}

/// A team's TSIG key. Its secret is sealed (`crate::seal`) under the context `context(id)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TsigKey {
    pub id: Uuid,
    pub team_id: Uuid,
    /// The name the customer gave (one DNS label).
    pub label: String,
    /// The key's DNS name, unique on the platform: what clients put in their TSIG record.
    pub name: DomainName,
    pub algorithm: TsigAlgorithm,
    pub secret: Sealed,
    pub rules: Vec<KeyRule>,
    /// May transfer (AXFR/IXFR) the zones its rules name.
    pub transfer: bool,
    pub created_at: Timestamp,
    /// The API token that made it (`None`: an operator did).
    #[serde(default)]
    pub created_by: Option<Uuid>,
}

impl TsigKey {
    /// What the key's secret is sealed for: a sealed secret copied into another key's row
    /// does not open there.
    pub fn context(id: Uuid) -> String {
        format!("tsig:{id}")
    }

    /// The zones the key's rules name, each once.
    pub fn zones(&self) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = Vec::new();
        for r in &self.rules {
            if !out.contains(&r.zone_id) {
                out.push(r.zone_id);
            }
        }
        out
    }

    /// Whether the key may change `rtype` records at `name` in `zone`.
    pub fn allows(&self, zone: Uuid, name: &DomainName, rtype: RecordType) -> bool {
        self.rules.iter().any(|r| r.zone_id == zone && r.covers(name, rtype))
    }

    /// Whether the key may transfer `zone`.
    pub fn transfers(&self, zone: Uuid) -> bool {
        self.transfer && self.rules.iter().any(|r| r.zone_id == zone)
    }
}

/// A key as asked for and checked, before it has an id and a secret.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub label: String,
    pub algorithm: TsigAlgorithm,
    pub rules: Vec<KeyRule>,
    pub transfer: bool,
}

impl KeySpec {
    /// The key `team` gets: a new id, a DNS name from the label, and a fresh random secret as
    /// long as the hash, sealed for that id. Returns the row and the secret in base64: shown
    /// once, kept nowhere.
    pub fn mint(self, team: Uuid, created_by: Option<Uuid>, sealer: &Sealer) -> (TsigKey, zeroize::Zeroizing<String>) {
        let mut raw = zeroize::Zeroizing::new(vec![0u8; self.algorithm.output_len()]);
        getrandom::fill(&mut raw).expect("the OS random source works");
        let id = new_id();
        let key = TsigKey {
            id,
            team_id: team,
            name: key_name(team, &self.label),
            label: self.label,
            algorithm: self.algorithm,
            secret: sealer.seal(&TsigKey::context(id), &raw),
            rules: self.rules,
            transfer: self.transfer,
            created_at: Timestamp::now(),
            created_by,
        };
        (key, zeroize::Zeroizing::new(data_encoding::BASE64.encode(&raw)))
    }
}

/// A key's label: one DNS label of letters, digits and inner hyphens, lowercased.
pub fn key_label(text: &str) -> Result<String, String> {
    let label = text.trim().to_ascii_lowercase();
    let ok = (1..=63).contains(&label.len())
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if ok {
        Ok(label)
    } else {
        Err("a key name is one DNS label: 1 to 63 letters, digits and inner hyphens".into())
    }
}

/// The DNS name of `team`'s key called `label`: unique on the platform because the team's id
/// is in it (`deploy.0190c5e2a1b27c3d8e9f0a1b2c3d4e5f.tsig`).
pub fn key_name(team: Uuid, label: &str) -> DomainName {
    DomainName::parse(&format!("{label}.{}.tsig", team.simple())).expect("a label and hex make a name")
}

/// Record types as their mnemonics (`["TXT"]`).
mod types_text {
    use std::str::FromStr;

    use hickory_proto::rr::RecordType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(types: &[RecordType], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(types.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RecordType>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| RecordType::from_str(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn algorithms_parse_in_any_spelling_and_md5_is_refused_with_the_alternative() {
        assert_eq!("HMAC-SHA256.".parse::<TsigAlgorithm>(), Ok(TsigAlgorithm::HmacSha256));
        assert_eq!("hmac-sha1".parse::<TsigAlgorithm>(), Ok(TsigAlgorithm::HmacSha1));
        let md5 = "hmac-md5".parse::<TsigAlgorithm>().unwrap_err();
        assert!(md5.contains("hmac-sha256"), "{md5}");
        assert!("HMAC-MD5.SIG-ALG.REG.INT".parse::<TsigAlgorithm>().is_err());
        assert!(
            "hmac-sha224"
                .parse::<TsigAlgorithm>()
                .unwrap_err()
                .contains("hmac-sha512")
        );
    }

    #[test]
    fn a_rule_matches_exact_names_subtrees_and_types() {
        let zone = Uuid::nil();
        let acme = KeyRule {
            zone_id: zone,
            names: vec![n("_acme-challenge.example.com")],
            subtrees: vec![n("dev.example.com")],
            types: vec![RecordType::TXT],
        };
        assert!(acme.covers(&n("_acme-challenge.example.com"), RecordType::TXT));
        assert!(!acme.covers(&n("_acme-challenge.example.com"), RecordType::A));
        assert!(
            !acme.covers(&n("x._acme-challenge.example.com"), RecordType::TXT),
            "names are exact"
        );
        assert!(
            acme.covers(&n("dev.example.com"), RecordType::TXT),
            "a subtree holds its top"
        );
        assert!(acme.covers(&n("a.b.dev.example.com"), RecordType::TXT));
        assert!(
            !acme.covers(&n("xdev.example.com"), RecordType::TXT),
            "label boundaries"
        );
        let whole = KeyRule {
            zone_id: zone,
            names: vec![],
            subtrees: vec![],
            types: vec![],
        };
        assert!(whole.covers(&n("www.example.com"), RecordType::A));
        assert!(
            !whole.covers(&n("example.com"), RecordType::SOA),
            "only types the API accepts"
        );
    }

    #[test]
    fn key_labels_are_one_ldh_label_and_names_carry_the_team() {
        assert_eq!(key_label(" Deploy "), Ok("deploy".into()));
        for bad in ["", "-a", "a-", "a.b", "a_b", &"x".repeat(64)] {
            assert!(key_label(bad).is_err(), "{bad:?}");
        }
        let team = Uuid::from_u128(0x0190_c5e2_a1b2_7c3d_8e9f_0a1b_2c3d_4e5f);
        assert_eq!(
            key_name(team, "deploy").as_str(),
            "deploy.0190c5e2a1b27c3d8e9f0a1b2c3d4e5f.tsig"
        );
    }
}
