//! Typed configuration: the embedded `config.toml`, a `--config` file merged over it,
//! `IPX_<SECTION>_<KEY>` environment variables, then CLI flags (applied by `cli`).

mod acme;
mod dns;
mod layers;
mod observe;
mod sections;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use acme::{AcmeConfig, IssuerKind};
pub use dns::{DnsConfig, TsigKey};
use dns::{parse_net, same_name};
use layers::{apply_env, collect_secrets, merge, parse_table, redacted};
pub use observe::{LogConfig, LogFormat, MetricsConfig, parse_listen};
pub use sections::{
    ApiConfig, AuthConfig, Caps, DemoConfig, DnssecConfig, HostingConfig, ProvisionerKind, RateLimitConfig, RrlConfig,
    StoreConfig, ZoneDefaults,
};

/// The repository's `config.toml`, compiled in: the built-in defaults are this file, so the
/// binary without a config file behaves exactly as the documented defaults say.
pub const EMBEDDED: &str = include_str!("../../config.toml");

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
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub acme: AcmeConfig,
    pub dnssec: DnssecConfig,
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

    /// The key-encryption key's file (`crate::seal`).
    pub fn key_path(&self) -> PathBuf {
        if self.store.key_file.as_os_str().is_empty() {
            self.store.data_dir.join("key")
        } else {
            self.store.key_file.clone()
        }
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
            if let Err(why) = key.algorithm.parse::<crate::domain::TsigAlgorithm>() {
                return bad(format!("dns.tsig_keys: key {:?}: {why}", key.name));
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
        if d.update_rate_per_key == 0 || d.update_rate_per_team == 0 {
            return bad("dns.update_rate_per_key and update_rate_per_team must be at least 1".into());
        }
        if self.dns.max_udp_payload < 512 {
            return bad("dns.max_udp_payload must be at least 512".into());
        }
        self.dns.validate().or_else(bad)?;
        self.dnssec.validate().or_else(bad)?;
        self.acme.validate().or_else(bad)
    }
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
        assert_eq!(
            c.metrics.listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9153")
        );
        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn an_empty_metrics_address_turns_the_listener_off_and_a_bad_one_is_refused() {
        let off = Config::load(None, env(&[("IPX_METRICS_LISTEN", "")])).unwrap();
        assert_eq!(off.metrics.listen, None);
        let json = Config::load(None, env(&[("IPX_LOG_FORMAT", "json")])).unwrap();
        assert_eq!(json.log.format, LogFormat::Json);
        let err = Config::load(None, env(&[("IPX_METRICS_LISTEN", "localhost")])).unwrap_err();
        assert!(err.to_string().contains("ADDR:PORT"), "{err}");
        assert!(Config::load(None, env(&[("IPX_LOG_FORMAT", "xml")])).is_err());
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
    fn the_signing_algorithm_takes_a_number_or_a_mnemonic_and_nothing_else() {
        let c = Config::defaults();
        assert_eq!(c.dnssec.algorithm, crate::domain::Algorithm::EcdsaP256Sha256);
        assert_eq!(c.dnssec.denial, crate::domain::Denial::Nsec3);
        for given in ["15", "ED25519", "\"ed25519\""] {
            let c = Config::load(None, env(&[("IPX_DNSSEC_ALGORITHM", given)])).unwrap();
            assert_eq!(c.dnssec.algorithm, crate::domain::Algorithm::Ed25519, "{given}");
        }
        for bad in ["8", "rsasha256"] {
            assert!(
                Config::load(None, env(&[("IPX_DNSSEC_ALGORITHM", bad)])).is_err(),
                "{bad}"
            );
        }
        assert!(Config::load(None, env(&[("IPX_DNSSEC_DENIAL", "nsec")])).is_ok());
        assert!(
            Config::load(None, env(&[("IPX_DNSSEC_SIGNATURE_REFRESH_SECS", "99999999")])).is_err(),
            "a refresh longer than the validity never lets a signature be fresh"
        );
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
