//! Certificate keys and what is made with them (rcgen): a fresh key per certificate, the CSR
//! sent to the CA, and the demo issuer's self-signed certificate.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use zeroize::Zeroizing;

use crate::domain::KeyType;

/// A certificate's private key.
pub struct Key(KeyPair);

impl Key {
    pub fn generate(kind: KeyType) -> Result<Self, String> {
        let alg = match kind {
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        };
        KeyPair::generate_for(alg)
            .map(Self)
            .map_err(|e| format!("cannot make a key: {e}"))
    }

    /// Reads back what `pem` wrote.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        KeyPair::from_pem(pem)
            .map(Self)
            .map_err(|_| "the stored certificate key does not parse".to_string())
    }

    /// PKCS#8 PEM: what is sealed, and what the exec provisioner gets.
    pub fn pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.serialize_pem())
    }

    /// The raw public key, as a certificate's subjectPublicKeyInfo holds it.
    pub fn public_raw(&self) -> &[u8] {
        self.0.public_key_raw()
    }

    /// A CSR (DER) for `names` with an empty subject, as CAs prefer (RFC 8555 §7.4).
    pub fn csr(&self, names: &[String]) -> Result<Vec<u8>, String> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .serialize_request(&self.0)
            .map(|csr| csr.der().to_vec())
            .map_err(|e| format!("cannot make the CSR: {e}"))
    }

    /// A certificate for `names` signed by this key itself (the demo issuer), valid from
    /// now for `days`; PEM.
    pub fn self_signed(&self, names: &[String], days: i64) -> Result<String, String> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "ipx simulated issuer (not trusted)");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::days(days);
        params
            .self_signed(&self.0)
            .map(|c| c.pem())
            .map_err(|e| format!("cannot make the certificate: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificates::x509;

    #[test]
    fn a_self_signed_certificate_reads_back_with_its_names_dates_and_key() {
        let key = Key::generate(KeyType::EcdsaP256).unwrap();
        let names = vec!["blog.test".to_string(), "www.blog.test".to_string()];
        let pem = key.self_signed(&names, 90).unwrap();
        let (chain, info) = x509::read_chain(&pem).unwrap();
        assert_eq!(info.sans, names);
        assert_eq!(info.issuer, "CN=ipx simulated issuer (not trusted)");
        let days = (info.not_after.unix_secs() - info.not_before.unix_secs()) / 86_400;
        assert_eq!(days, 90);
        assert_eq!(info.fingerprint_sha256.len(), 64);
        x509::check_leaf(&chain, &info, key.public_raw(), &names).unwrap();
        let other = Key::generate(KeyType::EcdsaP384).unwrap();
        assert!(x509::check_leaf(&chain, &info, other.public_raw(), &names).is_err());
        assert!(x509::check_leaf(&chain, &info, key.public_raw(), &["x.test".into()]).is_err());
        let again = Key::from_pem(&key.pem()).unwrap();
        assert_eq!(again.public_raw(), key.public_raw());
        assert!(!key.csr(&names).unwrap().is_empty());
    }

    #[test]
    fn what_is_not_a_chain_is_refused_with_a_reason() {
        assert!(x509::read_chain("").is_err());
        assert!(x509::read_chain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }
}
