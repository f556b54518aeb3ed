//! DNSSEC as the platform keeps it: a zone's signing state, its keys (one combined signing
//! key, CSK, as deSEC and Cloudflare use, two while a rollover runs) and the rollover's
//! phases, with the pure transitions between them. The cryptography is `crate::dnssec`'s.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::Timestamp;
use crate::seal::Sealed;

/// Signing algorithms offered: the two RFC 8624 recommends for signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// 13: ECDSA P-256 with SHA-256 (RFC 6605), what validators support everywhere.
    #[default]
    EcdsaP256Sha256,
    /// 15: Ed25519 (RFC 8080).
    Ed25519,
}

impl Algorithm {
    pub fn number(self) -> u8 {
        match self {
            Self::EcdsaP256Sha256 => 13,
            Self::Ed25519 => 15,
        }
    }

    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            13 => Some(Self::EcdsaP256Sha256),
            15 => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// The mnemonic of the IANA registry.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Self::Ed25519 => "ED25519",
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;

    /// `13`, `15`, or their mnemonics in any case.
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let found = match t.parse::<u8>() {
            Ok(n) => Self::from_number(n),
            Err(_) => [Self::EcdsaP256Sha256, Self::Ed25519]
                .into_iter()
                .find(|a| a.mnemonic().eq_ignore_ascii_case(t)),
        };
        found.ok_or_else(|| format!("{t:?} is not a signing algorithm here; use 13 (ECDSAP256SHA256) or 15 (ED25519)"))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        Self::from_number(n).ok_or_else(|| serde::de::Error::custom(format!("unknown DNSSEC algorithm {n}")))
    }
}

/// How a signed zone proves that names and types do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Denial {
    /// RFC 5155 as RFC 9276 profiles it: SHA-1, no extra iterations, no salt, no opt-out.
    #[default]
    Nsec3,
    /// RFC 4034 NSEC: smaller answers, but the zone's names can be listed by walking it.
    Nsec,
}

impl FromStr for Denial {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "nsec3" => Ok(Self::Nsec3),
            "nsec" => Ok(Self::Nsec),
            _ => Err(format!(
                "{text:?} is not a denial of existence here; use \"nsec3\" or \"nsec\""
            )),
        }
    }
}

/// Where a signed zone stands with its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneState {
    /// Signed, CDS/CDNSKEY published; the parent's DS is not confirmed yet.
    Signed,
    /// Signed, and the parent's DS for the active key confirmed (`ds-seen`).
    Secure,
    /// Turning off: still signed, CDS/CDNSKEY DELETE published until the parent's DS is
    /// confirmed gone; the zone never goes bogus on the way.
    Disabling,
}

impl ZoneState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Secure => "secure",
            Self::Disabling => "disabling",
        }
    }
}

/// A zone's DNSSEC, kept in its row (`Zone::dnssec`): `None` is an unsigned zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneDnssec {
    pub state: ZoneState,
    /// Fixed when signing is turned on.
    pub denial: Denial,
    pub rollover: Option<Rollover>,
    pub since: Timestamp,
    /// Turning off, and the parent's DS confirmed gone: the zone stays signed until then, so
    /// resolvers that still cache the DS (its TTL, `[dnssec] parent_ds_ttl_secs`) never see
    /// it unsigned, and is served unsigned from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsign_at: Option<Timestamp>,
}

/// A key's part in signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// In the DNSKEY set and signing it, not yet the zone's data: a rollover's new key.
    Published,
    /// Signs every RRset of the zone; its CDS/CDNSKEY are published.
    Active,
    /// Replaced: still in the DNSKEY set (and signing it) until caches and the parent
    /// forget it.
    Retiring,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Active => "active",
            Self::Retiring => "retiring",
        }
    }
}

/// A zone's signing key as stored: its private half sealed (`crate::seal`, context
/// `key_context`), never in the clear.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DnssecKey {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub algorithm: Algorithm,
    /// DNSKEY flags: 257 (zone key, secure entry point) for a CSK.
    pub flags: u16,
    /// The DNSKEY public key field.
    #[serde(with = "base64")]
    pub public_key: Vec<u8>,
    pub tag: u16,
    /// PKCS#8, sealed.
    pub private: Sealed,
    pub state: KeyState,
    pub created_at: Timestamp,
}

impl fmt::Debug for DnssecKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnssecKey")
            .field("id", &self.id)
            .field("zone_id", &self.zone_id)
            .field("tag", &self.tag)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The AEAD context a key's private half is sealed for: a ciphertext moved to another
/// key's row does not open there.
pub fn key_context(key: Uuid) -> String {
    format!("dnssec:{key}")
}

/// The DNSKEY flags of a combined signing key: Zone Key and Secure Entry Point.
pub const CSK_FLAGS: u16 = 257;

/// A CSK rollover (RFC 7583 §3.3, pre-publication of the key, then a double DS): each phase
/// with the earliest time the next may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollover {
    pub phase: Phase,
    pub old_key: Uuid,
    pub new_key: Uuid,
    pub started_at: Timestamp,
    /// When the current phase began.
    pub phase_at: Timestamp,
    /// The earliest time the next step may be taken; `None` while waiting for `ds-seen`.
    pub next_step_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The new key is in the DNSKEY set; caches must learn it (DNSKEY TTL + propagation)
    /// before it signs the zone.
    Publish,
    /// The new key signs the zone and its CDS/CDNSKEY are published; waiting for the
    /// parent's DS for it (`ds-seen`).
    Ready,
    /// The parent has the new DS; the old key stays in the DNSKEY set until the parent's
    /// old DS and the old signatures have left every cache.
    Retire,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Ready => "ready",
            Self::Retire => "retire",
        }
    }
}

/// The waits of a rollover, in seconds: from the zone's TTLs and the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// DNSKEY TTL + propagation delay: the new key is in every cache that holds the set.
    pub publish: u64,
    /// Largest TTL in the zone + propagation delay: signatures by the old key are gone.
    pub signatures: u64,
    /// The parent's DS TTL + propagation delay: the old DS is gone from caches.
    pub parent_ds: u64,
}

/// What moving a rollover on does, or why it cannot move.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The new key starts signing the zone; its CDS/CDNSKEY replace the old key's.
    Activate(Rollover),
    /// The old key leaves the DNSKEY set; the rollover is over.
    Finish,
    /// Nothing to do yet.
    Wait,
}

impl Rollover {
    pub fn start(old_key: Uuid, new_key: Uuid, now: Timestamp, waits: Waits) -> Self {
        Self {
            phase: Phase::Publish,
            old_key,
            new_key,
            started_at: now,
            phase_at: now,
            next_step_at: Some(now.plus_millis(waits.publish as i64 * 1000)),
        }
    }

    /// The step due at `now`, if any (the timed ones: `ds_seen` moves `Ready` on).
    pub fn step(&self, now: Timestamp) -> Step {
        match (self.phase, self.next_step_at) {
            (_, Some(at)) if at > now => Step::Wait,
            (Phase::Publish, Some(_)) => Step::Activate(Self {
                phase: Phase::Ready,
                phase_at: now,
                next_step_at: None,
                ..self.clone()
            }),
            (Phase::Retire, Some(_)) => Step::Finish,
            _ => Step::Wait,
        }
    }

    /// The parent's DS for the new key is confirmed: the old key may retire once its DS and
    /// its signatures have left every cache. `None` when the rollover is not waiting for it.
    pub fn ds_seen(&self, now: Timestamp, waits: Waits) -> Option<Self> {
        if self.phase != Phase::Ready {
            return None;
        }
        let after_signatures = self.phase_at.plus_millis(waits.signatures as i64 * 1000);
        let after_ds = now.plus_millis(waits.parent_ds as i64 * 1000);
        Some(Self {
            phase: Phase::Retire,
            phase_at: now,
            next_step_at: Some(after_signatures.max(after_ds)),
            ..self.clone()
        })
    }
}

/// Octets as standard base64, in JSON rows.
mod base64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        data_encoding::BASE64
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAITS: Waits = Waits {
        publish: 100,
        signatures: 50,
        parent_ds: 200,
    };

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_unix(secs)
    }

    #[test]
    fn algorithms_read_as_numbers_or_mnemonics() {
        assert_eq!("13".parse(), Ok(Algorithm::EcdsaP256Sha256));
        assert_eq!("ed25519".parse(), Ok(Algorithm::Ed25519));
        assert!("8".parse::<Algorithm>().unwrap_err().contains("13"));
        assert_eq!(serde_json::to_string(&Algorithm::Ed25519).unwrap(), "15");
        assert!(serde_json::from_str::<Algorithm>("5").is_err());
        assert_eq!("NSEC".parse(), Ok(Denial::Nsec));
        assert!("nsec5".parse::<Denial>().is_err());
    }

    #[test]
    fn a_rollover_waits_for_caches_then_for_the_parent_then_for_caches_again() {
        let (old, new) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let r = Rollover::start(old, new, at(1000), WAITS);
        assert_eq!(r.phase, Phase::Publish);
        assert_eq!(r.step(at(1099)), Step::Wait, "the DNSKEY set is still cached");
        assert!(r.ds_seen(at(1050), WAITS).is_none(), "no DS to see yet");
        let Step::Activate(ready) = r.step(at(1100)) else {
            panic!("activates")
        };
        assert_eq!((ready.phase, ready.next_step_at), (Phase::Ready, None));
        assert_eq!(ready.step(at(99_999)), Step::Wait, "only ds-seen moves it on");
        let retire = ready.ds_seen(at(1110), WAITS).unwrap();
        assert_eq!(retire.phase, Phase::Retire);
        assert_eq!(
            retire.next_step_at,
            Some(at(1310)),
            "the parent's DS TTL is the longer wait here"
        );
        assert_eq!(retire.step(at(1309)), Step::Wait);
        assert_eq!(retire.step(at(1310)), Step::Finish);
        let late = ready
            .ds_seen(
                at(1100),
                Waits {
                    signatures: 1000,
                    ..WAITS
                },
            )
            .unwrap();
        assert_eq!(late.next_step_at, Some(at(2100)), "old signatures outlive the DS");
    }
}
