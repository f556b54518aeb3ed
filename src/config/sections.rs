//! The configuration's sections other than `[dns]`, one type each, as `config.toml` documents them.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::dns::parse_net;

/// Response rate limiting on UDP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    pub enabled: bool,
    /// Answers per second to one prefix for one kind of answer.
    pub responses_per_second: u32,
    /// Past the rate, every `slip`-th answer is sent truncated; 0: none.
    pub slip: u32,
    pub ipv4_prefix_length: u8,
    pub ipv6_prefix_length: u8,
    /// Addresses or prefixes never limited.
    pub exempt: Vec<String>,
}

impl RrlConfig {
    pub fn exempt_prefixes(&self) -> Vec<ipnet::IpNet> {
        self.exempt.iter().filter_map(|s| parse_net(s)).collect()
    }
}

/// What bounds the cost of guessing tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Failed verifications per minute for one token id.
    pub failures_per_minute_per_token: u32,
    /// Failed verifications per minute from one address.
    pub failures_per_minute_per_address: u32,
    /// argon2id verifications at once; 0: cores − 1 (at least 1).
    pub max_concurrent_hashes: usize,
}

/// Per-team caps on what an account can create.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    pub zones_per_team: u64,
    pub records_per_zone: u64,
    /// Records across all of a team's zones: what bounds one account's share of memory.
    pub records_per_team: u64,
    pub sites_per_team: u64,
    /// Tokens a team holds at once (revoked and expired ones do not count).
    pub tokens_per_team: u64,
    /// TSIG keys a team holds at once.
    pub tsig_keys_per_team: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            zones_per_team: 1000,
            records_per_zone: 100_000,
            records_per_team: 100_000,
            sites_per_team: 1000,
            tokens_per_team: 100,
            tsig_keys_per_team: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// GET requests per minute per team.
    pub read_per_minute: u32,
    /// Other changes per minute per team.
    pub write_per_minute: u32,
    /// Site creates, SSL and WordPress requests per minute per team.
    pub provision_per_minute: u32,
    /// Requests per minute from one address without a valid token.
    pub unauthenticated_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Request body cap in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Time to send a request's headers; also the keep-alive idle timeout.
    pub header_read_timeout_secs: u64,
    /// Time to send a request's body.
    pub body_read_timeout_secs: u64,
    /// Time a response waits for a client that does not read it.
    pub write_timeout_secs: u64,
    /// HTTP connections at once, in all.
    pub max_connections: usize,
    /// HTTP connections at once from one address.
    pub max_connections_per_address: usize,
    /// Time requests and jobs in flight get to finish at shutdown.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of `ipx.redb` and `ipx.sock`.
    pub data_dir: PathBuf,
    /// The key-encryption key's file; empty: `key` in `data_dir`.
    pub key_file: PathBuf,
    /// redb's page cache, MiB.
    pub cache_mib: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDefaults {
    /// TTL of records created without one.
    pub default_ttl: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// SOA MINIMUM: the negative-caching TTL (RFC 2308).
    pub minimum: u32,
    pub soa_ttl: u32,
    pub ns_ttl: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Import the example zones into a `demo` team on the first start of a new data dir.
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostingConfig {
    /// Target of a site's managed apex A record.
    pub ipv4: std::net::Ipv4Addr,
    /// Target of a site's managed apex AAAA record.
    pub ipv6: std::net::Ipv6Addr,
    /// PHP versions a site may run.
    pub php_versions: Vec<String>,
    /// PHP version of a new site that names none.
    pub default_php: String,
    /// `builtin` or `exec`.
    pub provisioner: ProvisionerKind,
    /// Program and arguments run for every step by the `exec` provisioner.
    pub exec_command: Vec<String>,
    /// A step that runs longer fails.
    pub exec_timeout_secs: u64,
    /// Jobs run concurrently.
    pub workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionerKind {
    Builtin,
    Exec,
}

/// DNSSEC signing: what new keys and newly signed zones get, and the timers of signatures
/// and rollovers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecConfig {
    /// 13 (ECDSAP256SHA256) or 15 (ED25519), as a number or a mnemonic.
    #[serde(deserialize_with = "algorithm")]
    pub algorithm: crate::domain::Algorithm,
    /// "nsec3" (RFC 9276: SHA-1, no extra iterations, no salt, no opt-out) or "nsec".
    #[serde(deserialize_with = "denial")]
    pub denial: crate::domain::Denial,
    /// How long a signature is valid from the moment it is made.
    pub signature_validity_secs: u64,
    /// A signature with less than this left is made again.
    pub signature_refresh_secs: u64,
    /// Inception this far in the past, for validators whose clocks run behind.
    pub inception_offset_secs: u64,
    /// How often the background re-signer looks for signatures to refresh and rollovers to
    /// move on.
    pub resign_interval_secs: u64,
    /// TTL of the DNSKEY, CDS and CDNSKEY records.
    pub dnskey_ttl: u32,
    /// Time for secondaries to load a change: added to every wait of a rollover.
    pub propagation_delay_secs: u64,
    /// The TTL assumed for the parent's DS records (ipx cannot ask the parent).
    pub parent_ds_ttl_secs: u64,
}

fn algorithm<'de, D: serde::Deserializer<'de>>(d: D) -> Result<crate::domain::Algorithm, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Number(u64),
        Text(String),
    }
    let text = match Given::deserialize(d)? {
        Given::Number(n) => n.to_string(),
        Given::Text(t) => t,
    };
    text.parse().map_err(serde::de::Error::custom)
}

fn denial<'de, D: serde::Deserializer<'de>>(d: D) -> Result<crate::domain::Denial, D::Error> {
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

impl DnssecConfig {
    /// The signing timers as the signer takes them.
    pub fn policy(&self) -> crate::dnssec::Policy {
        crate::dnssec::Policy {
            validity: self.signature_validity_secs.min(u64::from(u32::MAX / 2)) as u32,
            refresh: self.signature_refresh_secs.min(u64::from(u32::MAX / 2)) as u32,
            inception_offset: self.inception_offset_secs.min(u64::from(u32::MAX / 2)) as u32,
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.signature_refresh_secs == 0 || self.signature_refresh_secs * 2 > self.signature_validity_secs {
            return Err(
                "dnssec: signature_refresh_secs must be at least 1 and at most half of signature_validity_secs".into(),
            );
        }
        if self.signature_validity_secs > 90 * 86_400 {
            return Err("dnssec.signature_validity_secs: at most 90 days".into());
        }
        if self.inception_offset_secs > 86_400 {
            return Err("dnssec.inception_offset_secs: at most one day".into());
        }
        if self.resign_interval_secs == 0 || self.resign_interval_secs * 4 > self.signature_refresh_secs {
            return Err(
                "dnssec.resign_interval_secs must be at least 1 and at most a quarter of signature_refresh_secs".into(),
            );
        }
        if self.dnskey_ttl == 0 || self.dnskey_ttl > crate::domain::MAX_TTL {
            return Err(format!("dnssec.dnskey_ttl: 1 to {}", crate::domain::MAX_TTL));
        }
        Ok(())
    }
}
