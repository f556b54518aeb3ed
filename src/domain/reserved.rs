//! Names no tenant may own: public suffixes (the Public Suffix List compiled in by the `psl`
//! crate: `co.uk`, `github.io`), whose zone would lock every other tenant out below them,
//! and the platform's own domains (those of its nameservers and SOA mailbox, and any an
//! operator reserves), whose zone would let a tenant answer for `ns1`.

use super::DomainName;

/// The names zones may not be at, below or above.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    platform: Vec<DomainName>,
}

impl Reserved {
    /// The platform's domains: the registrable domain of each nameserver name and of the
    /// hostmaster mailbox's domain, and each of `extra` as given.
    pub fn new<'a>(nameservers: impl IntoIterator<Item = &'a str>, hostmaster: &'a str, extra: &[String]) -> Self {
        let mailbox_domain = hostmaster.trim_end_matches('.').split_once('.').map_or("", |(_, d)| d);
        let mut platform: Vec<DomainName> = nameservers
            .into_iter()
            .chain([mailbox_domain])
            .filter_map(|n| registrable(n.trim_end_matches('.')))
            .chain(extra.iter().filter_map(|n| DomainName::parse(n).ok()))
            .collect();
        platform.sort();
        platform.dedup();
        Self { platform }
    }

    /// Why `zone` may not be a tenant's, if it may not.
    pub fn check(&self, zone: &DomainName) -> Result<(), String> {
        if is_public_suffix(zone) {
            return Err(format!(
                "{zone} is a public suffix (publicsuffix.org): names below it belong to many owners"
            ));
        }
        if let Some(p) = self.platform.iter().find(|p| zone.is_in(p) || p.is_in(zone)) {
            return Err(format!("{zone} is reserved: {p} is the platform's own domain"));
        }
        Ok(())
    }
}

/// Whether `name` is itself on the Public Suffix List (its ICANN or private section).
pub fn is_public_suffix(name: &DomainName) -> bool {
    psl::suffix(name.as_str().as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == name.as_str().as_bytes())
}

/// The registrable domain of a host name (`ns1.ipx.example` → `ipx.example`).
fn registrable(host: &str) -> Option<DomainName> {
    let domain = psl::domain_str(host).unwrap_or(host);
    DomainName::parse(domain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn public_suffixes_of_both_sections_are_refused_and_names_below_them_are_not() {
        let r = Reserved::default();
        for s in ["co.uk", "github.io", "com.au", "blogspot.com", "foo.ck"] {
            assert!(r.check(&name(s)).is_err(), "{s}");
        }
        for s in [
            "example.co.uk",
            "me.github.io",
            "example.com",
            "www.ck",
            "example.test",
            "shop.example",
        ] {
            assert!(r.check(&name(s)).is_ok(), "{s}");
        }
    }

    #[test]
    fn the_platforms_domains_are_refused_at_above_and_below() {
        let r = Reserved::new(
            ["ns1.ipx.test.", "ns2.dns.example.net."],
            "hostmaster.mail.ipx.example.",
            &["status.ipx.example".into()],
        );
        for s in [
            "ipx.test",
            "ns1.ipx.test",
            "x.ipx.test",
            "example.net",
            "dns.example.net",
            "ipx.example",
            "status.ipx.example",
        ] {
            assert!(r.check(&name(s)).is_err(), "{s}");
        }
        for s in ["other.test", "ipxtest.test", "example.org"] {
            assert!(r.check(&name(s)).is_ok(), "{s}");
        }
    }
}
