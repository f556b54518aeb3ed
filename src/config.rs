//! Typed configuration: the embedded `config.toml`, a `--config` file merged over it,
//! `IPX_<SECTION>_<KEY>` environment variables, then CLI flags (applied by `cli`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The repository's `config.toml`, compiled in: the built-in defaults are this file, so the
/// binary without a config file behaves exactly as the documented defaults say.
pub const EMBEDDED: &str = include_str!("../config.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub dns: DnsConfig,
    pub rrl: RrlConfig,
    pub api: ApiConfig,
    pub store: StoreConfig,
    pub zones: ZoneDefaults,
    pub demo: DemoConfig,
    pub hosting: HostingConfig,
    pub rate_limits: RateLimitConfig,
    pub auth: AuthConfig,
    pub limits: Caps,
}

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
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            zones_per_team: 1000,
            records_per_zone: 100_000,
            records_per_team: 100_000,
            sites_per_team: 1000,
            tokens_per_team: 100,
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
pub struct DnsConfig {
    /// UDP and TCP listen address.
    pub listen: SocketAddr,
    /// Nameserver names of new zones' managed apex NS set; the first is the SOA MNAME.
    pub nameservers: Vec<String>,
    /// SOA RNAME of new zones.
    pub hostmaster: String,
    /// Names no tenant may hold a zone at, above or below.
    pub reserved_names: Vec<String>,
    /// Largest UDP payload we send or advertise.
    pub max_udp_payload: u16,
    /// Idle timeout of TCP connections, seconds.
    pub tcp_idle_timeout_secs: u64,
    /// TCP connections served at once; more are closed on accept.
    pub tcp_max_connections: usize,
    /// TCP connections served at once from one address.
    pub tcp_max_connections_per_address: usize,
    /// Time a TCP answer waits for a peer that does not read.
    pub tcp_write_timeout_secs: u64,
    /// Lifetime of a TCP connection, busy or not.
    pub tcp_max_connection_secs: u64,
    /// Addresses or prefixes allowed to AXFR/IXFR.
    pub allow_transfer: Vec<String>,
    /// Secondaries to NOTIFY on every change.
    pub also_notify: Vec<SocketAddr>,
    /// TSIG keys that `allow_transfer` names as `key:NAME`.
    pub tsig_keys: Vec<TsigKey>,
}

/// A TSIG key. Its secret is never printed (`Debug` redacts it).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKey {
    /// The key's name, a domain name (`xfr.example.`).
    pub name: String,
    /// hmac-sha256, hmac-sha384 or hmac-sha512.
    pub algorithm: String,
    /// The shared secret, base64.
    pub secret: String,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl DnsConfig {
    /// What tenants may not own: public suffixes, the platform's domains, `reserved_names`.
    pub fn reserved(&self) -> crate::domain::Reserved {
        crate::domain::Reserved::new(
            self.nameservers.iter().map(String::as_str),
            &self.hostmaster,
            &self.reserved_names,
        )
    }

    /// `allow_transfer` as prefixes (an address alone is a /32 or /128); `key:` entries are
    /// in `transfer_keys`.
    pub fn transfer_acl(&self) -> Vec<ipnet::IpNet> {
        self.allow_transfer.iter().filter_map(|s| parse_net(s)).collect()
    }

    /// The TSIG keys `allow_transfer` admits (`key:NAME`).
    pub fn transfer_keys(&self) -> Vec<&TsigKey> {
        let names: Vec<&str> = self
            .allow_transfer
            .iter()
            .filter_map(|s| s.strip_prefix("key:"))
            .collect();
        self.tsig_keys
            .iter()
            .filter(|k| names.iter().any(|n| same_name(n, &k.name)))
            .collect()
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration{}: {message}", origin.as_ref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Invalid { origin: Option<String>, message: String },
}

impl Config {
    /// Loads defaults, merges `file` over them when given, then applies `IPX_*` variables from
    /// `env` (passed in so tests do not depend on the process environment).
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut root = parse_table(EMBEDDED, None)?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let over = parse_table(&text, Some(path.display().to_string()))?;
            merge(&mut root, over);
        }
        apply_env(&mut root, env)?;
        // Errors past this point may quote values: never a secret.
        let mut secrets = Vec::new();
        collect_secrets(&toml::Value::Table(root.clone()), false, &mut secrets);
        let redact = |e: ConfigError| match e {
            ConfigError::Invalid { origin, message } => ConfigError::Invalid {
                origin,
                message: redacted(message, &secrets),
            },
            other => other,
        };
        let config: Self = toml::Value::Table(root).try_into().map_err(|e: toml::de::Error| {
            redact(ConfigError::Invalid {
                origin: None,
                message: e.message().to_string(),
            })
        })?;
        config.validate().map_err(redact)?;
        Ok(config)
    }

    /// The built-in defaults alone.
    pub fn defaults() -> Self {
        Self::load(None, std::iter::empty()).expect("embedded config.toml is valid")
    }

    pub fn db_path(&self) -> PathBuf {
        self.store.data_dir.join("ipx.redb")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.store.data_dir.join("ipx.sock")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |message: String| Err(ConfigError::Invalid { origin: None, message });
        if self.dns.nameservers.is_empty() {
            return bad("dns.nameservers must name at least one nameserver".into());
        }
        for ns in self
            .dns
            .nameservers
            .iter()
            .chain([&self.dns.hostmaster])
            .chain(&self.dns.reserved_names)
        {
            if crate::domain::DomainName::parse(ns).is_err() {
                return bad(format!("{ns:?} is not a valid domain name"));
            }
        }
        if !self.hosting.php_versions.contains(&self.hosting.default_php) {
            return bad("hosting.default_php must be one of hosting.php_versions".into());
        }
        if self.hosting.provisioner == ProvisionerKind::Exec && self.hosting.exec_command.is_empty() {
            return bad("hosting.provisioner = \"exec\" needs hosting.exec_command".into());
        }
        let r = &self.rate_limits;
        if r.read_per_minute == 0
            || r.write_per_minute == 0
            || r.provision_per_minute == 0
            || r.unauthenticated_per_minute == 0
        {
            return bad("rate_limits: every quota must be at least 1 per minute".into());
        }
        if self.auth.failures_per_minute_per_token == 0 || self.auth.failures_per_minute_per_address == 0 {
            return bad("auth: failure limits must be at least 1 per minute".into());
        }
        if self.hosting.workers == 0 {
            return bad("hosting.workers must be at least 1".into());
        }
        for entry in &self.dns.allow_transfer {
            match entry.strip_prefix("key:") {
                Some(name) if !self.dns.tsig_keys.iter().any(|k| same_name(&k.name, name)) => {
                    return bad(format!("dns.allow_transfer: no TSIG key {name:?} in dns.tsig_keys"));
                }
                None if parse_net(entry).is_none() => {
                    return bad(format!(
                        "dns.allow_transfer: {entry:?} is not an address, a prefix or key:NAME"
                    ));
                }
                _ => {}
            }
        }
        for key in &self.dns.tsig_keys {
            if !["hmac-sha256", "hmac-sha384", "hmac-sha512"].contains(&key.algorithm.as_str()) {
                return bad(format!(
                    "dns.tsig_keys: {:?} is not hmac-sha256, hmac-sha384 or hmac-sha512",
                    key.algorithm
                ));
            }
            if data_encoding::BASE64.decode(key.secret.as_bytes()).is_err()
                || crate::domain::DomainName::parse(&key.name).is_err()
            {
                return bad(format!(
                    "dns.tsig_keys: key {:?} needs a domain name and a base64 secret",
                    key.name
                ));
            }
        }
        let a = &self.api;
        if a.header_read_timeout_secs == 0 || a.body_read_timeout_secs == 0 || a.write_timeout_secs == 0 {
            return bad("api: timeouts must be at least 1 second".into());
        }
        if a.max_connections == 0 || a.max_connections_per_address == 0 {
            return bad("api: connection caps must be at least 1".into());
        }
        let rrl = &self.rrl;
        if rrl.responses_per_second == 0
            || !(1..=32).contains(&rrl.ipv4_prefix_length)
            || !(1..=128).contains(&rrl.ipv6_prefix_length)
        {
            return bad(
                "rrl: responses_per_second must be at least 1, ipv4_prefix_length 1 to 32, ipv6_prefix_length 1 to 128"
                    .into(),
            );
        }
        if let Some(e) = rrl.exempt.iter().find(|e| parse_net(e).is_none()) {
            return bad(format!("rrl.exempt: {e:?} is not an address or a prefix"));
        }
        let d = &self.dns;
        if d.tcp_idle_timeout_secs == 0 || d.tcp_write_timeout_secs == 0 || d.tcp_max_connection_secs == 0 {
            return bad("dns: TCP timeouts must be at least 1 second".into());
        }
        if d.tcp_max_connections == 0 || d.tcp_max_connections_per_address == 0 {
            return bad("dns: TCP connection caps must be at least 1".into());
        }
        if self.dns.max_udp_payload < 512 {
            return bad("dns.max_udp_payload must be at least 512".into());
        }
        Ok(())
    }
}

/// Parses TOML. A syntax error says where and what, but never quotes the line: it may be
/// the line of a secret.
fn parse_table(text: &str, origin: Option<String>) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: ")
        });
        ConfigError::Invalid {
            origin,
            message: format!("{}{}", at.unwrap_or_default(), e.message().trim()),
        }
    })
}

/// Every string under a key named `secret`, and any string that holds the word (an
/// `IPX_*` value that did not parse stays one string).
fn collect_secrets(value: &toml::Value, under_secret: bool, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) if under_secret || s.contains("secret") => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, under_secret, out)),
        toml::Value::Table(t) => t
            .iter()
            .for_each(|(k, v)| collect_secrets(v, under_secret || k.contains("secret"), out)),
        _ => {}
    }
}

fn redacted(mut message: String, secrets: &[String]) -> String {
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        // As written, and as serde quotes it (escaped, in double quotes).
        message = message
            .replace(&format!("{s:?}"), "\"<redacted>\"")
            .replace(s.as_str(), "<redacted>");
    }
    message
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `IPX_DNS_LISTEN=…` sets `dns.listen`. The value is read as TOML when it parses as one
/// (numbers, booleans, arrays) and as a plain string otherwise.
fn apply_env(root: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("IPX_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let sections: Vec<String> = root.keys().cloned().collect();
        let Some((section, key)) = sections.iter().find_map(|s| {
            rest.strip_prefix(s.as_str())
                .and_then(|k| k.strip_prefix('_'))
                .map(|k| (s.clone(), k.to_string()))
        }) else {
            continue; // IPX_LOG and friends are not config keys.
        };
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let table = root
            .get_mut(&section)
            .and_then(|v| v.as_table_mut())
            .expect("section listed");
        if !table.contains_key(&key) {
            return Err(ConfigError::Invalid {
                origin: Some(name),
                message: format!("unknown key {section}.{key}"),
            });
        }
        table.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn embedded_defaults_are_the_documented_ones() {
        let c = Config::defaults();
        assert_eq!(c.dns.listen.to_string(), "127.0.0.1:5353");
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.db_path(), PathBuf::from("./data/ipx.redb"));
    }

    #[test]
    fn env_overrides_keys_with_underscores_and_typed_values() {
        let c = Config::load(
            None,
            env(&[
                ("IPX_STORE_DATA_DIR", "/tmp/x"),
                ("IPX_DNS_MAX_UDP_PAYLOAD", "4096"),
                ("IPX_DEMO_ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.dns.max_udp_payload, 4096);
        assert!(!c.demo.enabled);
    }

    #[test]
    fn transfer_acl_takes_addresses_and_prefixes() {
        let c = Config::load(
            None,
            env(&[("IPX_DNS_ALLOW_TRANSFER", "[\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]")]),
        )
        .unwrap();
        let acl = c.dns.transfer_acl();
        assert_eq!(acl.len(), 3);
        assert!(acl[1].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(Config::load(None, env(&[("IPX_DNS_ALLOW_TRANSFER", "[\"nope\"]")])).is_err());
    }

    #[test]
    fn unknown_env_key_is_an_error() {
        assert!(Config::load(None, env(&[("IPX_DNS_LISTN", "1")])).is_err());
    }

    #[test]
    fn partial_file_keeps_other_defaults_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[api]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
        let c = Config::load(Some(&p), []).unwrap();
        assert_eq!(c.api.listen.port(), 9999);
        assert_eq!(c.dns.listen.port(), 5353);
        std::fs::write(&p, "[api]\nlisen = 1\n").unwrap();
        assert!(Config::load(Some(&p), []).is_err());
    }
}
