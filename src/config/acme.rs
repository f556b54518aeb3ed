//! The `[acme]` section: where sites' certificates come from.

use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::KeyType;

/// The certificate authority and how ipx talks to it. The EAB key is never printed (`Debug`
/// redacts it, and configuration errors never quote it).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// `acme` (an RFC 8555 CA at `directory`) or `simulated` (a self-signed certificate made
    /// locally, for demos).
    pub issuer: IssuerKind,
    /// The CA's directory URL (https).
    pub directory: String,
    /// The account's contact e-mail address, with or without `mailto:`; empty: none.
    pub contact: String,
    /// External Account Binding key id; empty: no EAB.
    pub eab_kid: String,
    /// External Account Binding HMAC key, base64url as CAs hand it out.
    pub eab_hmac_key: String,
    /// PEM roots trusted for the directory's HTTPS instead of the system's; empty: the system's.
    pub ca_bundle: PathBuf,
    /// Key of new certificates.
    pub key_type: KeyType,
    /// Time every secondary gets to serve the challenge records before the CA validates.
    pub propagation_timeout_secs: u64,
    /// Time an order gets, from the first request to the CA to the downloaded certificate.
    pub order_timeout_secs: u64,
    /// Pause between two renewals (they run one at a time).
    pub renewal_pause_secs: u64,
}

impl std::fmt::Debug for AcmeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeConfig")
            .field("issuer", &self.issuer)
            .field("directory", &self.directory)
            .field("contact", &self.contact)
            .field("eab_kid", &self.eab_kid)
            .field("eab_hmac_key", &"<redacted>")
            .field("ca_bundle", &self.ca_bundle)
            .field("key_type", &self.key_type)
            .field("propagation_timeout_secs", &self.propagation_timeout_secs)
            .field("order_timeout_secs", &self.order_timeout_secs)
            .field("renewal_pause_secs", &self.renewal_pause_secs)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    Acme,
    Simulated,
}

impl AcmeConfig {
    /// The account's contact URIs: the address as a `mailto:` URI, or none.
    pub fn contact_uris(&self) -> Vec<String> {
        let address = self.contact.trim();
        let address = address.strip_prefix("mailto:").unwrap_or(address);
        if address.is_empty() {
            Vec::new()
        } else {
            vec![format!("mailto:{address}")]
        }
    }

    /// The EAB HMAC key's bytes, when EAB is configured.
    pub fn eab_key(&self) -> Option<(String, Vec<u8>)> {
        if self.eab_kid.is_empty() {
            return None;
        }
        decode_key(&self.eab_hmac_key).map(|k| (self.eab_kid.clone(), k))
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.issuer == IssuerKind::Simulated {
            return Ok(());
        }
        let rest = self.directory.strip_prefix("https://").ok_or_else(|| {
            format!(
                "acme.directory must be an https:// URL (RFC 8555 §6.1), not {:?}",
                self.directory
            )
        })?;
        if rest.is_empty() || self.directory.parse::<axum::http::Uri>().is_err() {
            return Err(format!("acme.directory {:?} is not a URL", self.directory));
        }
        let address = self.contact_uris().pop().unwrap_or_default();
        let address = address.strip_prefix("mailto:").unwrap_or_default();
        if !address.is_empty() {
            let (local, host) = address.split_once('@').unwrap_or_default();
            if local.is_empty()
                || host.is_empty()
                || address.len() > 254
                || address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || ",;<>\"".contains(c))
            {
                return Err(format!("acme.contact {:?} is not one e-mail address", self.contact));
            }
        }
        match (self.eab_kid.is_empty(), self.eab_hmac_key.is_empty()) {
            (true, true) => {}
            (false, false) if decode_key(&self.eab_hmac_key).is_some() => {}
            (false, false) => return Err("acme.eab_hmac_key is not base64url".into()),
            _ => return Err("acme.eab_kid and acme.eab_hmac_key go together".into()),
        }
        if self.propagation_timeout_secs == 0 || self.order_timeout_secs == 0 {
            return Err("acme: timeouts must be at least 1 second".into());
        }
        Ok(())
    }
}

/// An EAB key as CAs give it: base64url, with or without padding (some hand out base64).
fn decode_key(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .or_else(|_| data_encoding::BASE64_NOPAD.decode(text.as_bytes()))
        .ok()
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn acme(pairs: &[(&str, &str)]) -> Result<AcmeConfig, String> {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(None, env).map(|c| c.acme).map_err(|e| e.to_string())
    }

    #[test]
    fn the_contact_gets_one_mailto_scheme() {
        let c = acme(&[("IPX_ACME_CONTACT", "ops@example.com")]).unwrap();
        assert_eq!(c.contact_uris(), ["mailto:ops@example.com"]);
        let c = acme(&[("IPX_ACME_CONTACT", "mailto:ops@example.com")]).unwrap();
        assert_eq!(c.contact_uris(), ["mailto:ops@example.com"]);
        assert!(Config::defaults().acme.contact_uris().is_empty());
        for bad in ["ops", "a@b, c@d", "@example.com", "ops@", "o ps@example.com"] {
            assert!(acme(&[("IPX_ACME_CONTACT", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_directory_must_be_https_and_eab_needs_both_halves() {
        assert!(acme(&[("IPX_ACME_DIRECTORY", "http://ca.test/dir")]).is_err());
        assert!(acme(&[("IPX_ACME_DIRECTORY", "https://")]).is_err());
        assert!(
            acme(&[("IPX_ACME_ISSUER", "simulated"), ("IPX_ACME_DIRECTORY", "")]).is_ok(),
            "the demo issuer needs no CA"
        );
        assert!(acme(&[("IPX_ACME_EAB_KID", "kid-1")]).is_err());
        let c = acme(&[
            ("IPX_ACME_EAB_KID", "kid-1"),
            (
                "IPX_ACME_EAB_HMAC_KEY",
                "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
            ),
        ])
        .unwrap();
        assert_eq!(c.eab_key().unwrap().1.len(), 48);
    }

    #[test]
    fn the_eab_key_is_never_printed_nor_quoted_in_errors() {
        let key = "not*base64*at*all";
        let err = acme(&[("IPX_ACME_EAB_KID", "kid-1"), ("IPX_ACME_EAB_HMAC_KEY", key)]).unwrap_err();
        assert!(!err.contains(key), "{err}");
        let err = acme(&[("IPX_ACME_EAB_HMAC_KEY", "[1, \"zWNDZM6eQGHW\"]")]).unwrap_err();
        assert!(!err.contains("zWNDZM6eQGHW"), "{err}");
        let c = acme(&[("IPX_ACME_EAB_KID", "k"), ("IPX_ACME_EAB_HMAC_KEY", "c2VjcmV0a2V5")]).unwrap();
        assert!(!format!("{c:?}").contains("c2VjcmV0a2V5"));
    }
}
