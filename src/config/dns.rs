//! The `[dns]` section: listeners, transfers and their TSIG keys.

use std::net::SocketAddr;

use serde::Deserialize;

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
    /// UDP threads, each with its own socket on the port; 0: one per core.
    pub udp_threads: usize,
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
    /// RFC 2136 UPDATEs one team key may send per second (and at once).
    pub update_rate_per_key: u32,
    /// RFC 2136 UPDATEs all of one team's keys may send per second (and at once).
    pub update_rate_per_team: u32,
    /// Where clients reach this server (`HOST` or `HOST:PORT`), for the snippets of new
    /// TSIG keys; empty: the listen address.
    pub public_address: String,
    /// The server's name in answers to `id.server`/`hostname.bind` CH TXT (RFC 4892); empty:
    /// those are REFUSED.
    pub identity: String,
    /// The text answered to `version.bind`/`version.server` CH TXT; empty: REFUSED.
    pub version: String,
    /// The NSID option (RFC 5001) sent to queries that ask for it; empty: none.
    pub nsid: String,
    /// The catalog zone (RFC 9432) listing every zone, for secondaries; empty: none.
    pub catalog_zone: String,
}

/// Longest identity or version: one TXT character-string.
const MAX_TEXT: usize = 255;
/// Longest NSID: it rides on every answer that asks for it, so it is kept short.
pub const MAX_NSID: usize = 128;
/// Longest catalog name: a member's name adds a 32-digit id and `zones` to it (253 in all).
const MAX_CATALOG: usize = 253 - 39;

/// A TSIG key. Its secret is never printed (`Debug` redacts it).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKey {
    /// The key's name, a domain name (`xfr.example.`).
    pub name: String,
    /// hmac-sha256 (or hmac-sha1, hmac-sha384, hmac-sha512).
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
    /// Checks the keys `Config::validate` leaves to this section.
    pub(super) fn validate(&self) -> Result<(), String> {
        for (key, value, max) in [
            ("identity", &self.identity, MAX_TEXT),
            ("version", &self.version, MAX_TEXT),
            ("nsid", &self.nsid, MAX_NSID),
        ] {
            if value.len() > max {
                return Err(format!("dns.{key} is {} octets long; at most {max}", value.len()));
            }
            if value.chars().any(char::is_control) {
                return Err(format!("dns.{key} must not hold control characters"));
            }
        }
        if let Some(name) = self.catalog()? {
            let len = name.as_str().len();
            if len > MAX_CATALOG {
                return Err(format!("dns.catalog_zone is {len} octets long; at most {MAX_CATALOG}"));
            }
        }
        Ok(())
    }

    /// The catalog zone, when one is configured.
    pub fn catalog(&self) -> Result<Option<crate::domain::DomainName>, String> {
        match self.catalog_zone.trim() {
            "" => Ok(None),
            name => crate::domain::DomainName::parse(name)
                .map(Some)
                .map_err(|e| format!("dns.catalog_zone: {}", e.0)),
        }
    }

    /// `udp_threads`, with 0 read as one per core.
    pub fn udp_threads(&self) -> usize {
        match self.udp_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// What tenants may not own: public suffixes, the platform's domains, `reserved_names`,
    /// the catalog zone.
    pub fn reserved(&self) -> crate::domain::Reserved {
        let mut extra = self.reserved_names.clone();
        extra.extend(self.catalog().ok().flatten().map(|c| c.to_string()));
        crate::domain::Reserved::new(self.nameservers.iter().map(String::as_str), &self.hostmaster, &extra)
    }

    /// `allow_transfer` as prefixes (an address alone is a /32 or /128); `key:` entries are
    /// in `transfer_keys`.
    pub fn transfer_acl(&self) -> Vec<ipnet::IpNet> {
        self.allow_transfer.iter().filter_map(|s| parse_net(s)).collect()
    }

    /// Host and port for clients, as `public_address` says, else `bound` (the listen address
    /// as bound: port 0 is not an address to tell clients).
    pub fn client_address(&self, bound: SocketAddr) -> (String, u16) {
        let text = self.public_address.trim();
        if text.is_empty() {
            return (bound.ip().to_string(), bound.port());
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return (addr.ip().to_string(), addr.port());
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
                (host.trim_matches(['[', ']']).to_string(), port.parse().unwrap_or(53))
            }
            _ => (text.trim_matches(['[', ']']).to_string(), 53),
        }
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

pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

pub(super) fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_texts_and_the_catalog_name_are_bounded_and_checked() {
        let load = |pairs: &[(&str, &str)]| {
            crate::config::Config::load(None, pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let c = load(&[]).unwrap();
        assert_eq!(
            (c.dns.identity.as_str(), c.dns.version.as_str(), c.dns.nsid.as_str()),
            ("", "", "")
        );
        assert_eq!(c.dns.catalog().unwrap(), None, "no catalog by default");
        let c = load(&[
            ("IPX_DNS_CATALOG_ZONE", "Catalog.IPX.invalid."),
            ("IPX_DNS_NSID", "ns1"),
        ])
        .unwrap();
        assert_eq!(c.dns.catalog().unwrap().unwrap().as_str(), "catalog.ipx.invalid");
        assert!(
            c.dns
                .reserved()
                .check(&crate::domain::DomainName::parse("x.catalog.ipx.invalid").unwrap())
                .is_err()
        );
        let long = format!("{}.invalid", vec!["a".repeat(60); 4].join("."));
        for (key, value, says) in [
            ("IPX_DNS_CATALOG_ZONE", "not a name!", "catalog_zone"),
            ("IPX_DNS_CATALOG_ZONE", long.as_str(), "catalog_zone"),
            ("IPX_DNS_IDENTITY", &"x".repeat(256), "identity"),
            ("IPX_DNS_NSID", &"x".repeat(129), "nsid"),
            ("IPX_DNS_VERSION", "1.0\u{7}", "version"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(says), "{key}: {err}");
        }
    }

    #[test]
    fn the_client_address_is_the_public_one_or_the_bound_one() {
        let mut c = crate::config::Config::defaults().dns;
        let bound: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        assert_eq!(c.client_address(bound), ("127.0.0.1".into(), 5353));
        for (public, want) in [
            ("192.0.2.1", ("192.0.2.1", 53)),
            ("192.0.2.1:5300", ("192.0.2.1", 5300)),
            ("ns1.example.net", ("ns1.example.net", 53)),
            ("ns1.example.net:5300", ("ns1.example.net", 5300)),
            ("[2001:db8::1]:5300", ("2001:db8::1", 5300)),
            ("2001:db8::1", ("2001:db8::1", 53)),
        ] {
            c.public_address = public.into();
            assert_eq!(c.client_address(bound), (want.0.to_string(), want.1), "{public}");
        }
    }
}
