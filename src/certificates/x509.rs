//! Reading certificates: what a PEM chain says (subject, SANs, issuer, serial, dates,
//! fingerprint, ARI id), and whether its leaf is the one we asked for. Pure.

use x509_cert::Certificate;
use x509_cert::der::Encode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectAltName};

use crate::domain::{CertificateInfo, Timestamp};

/// Most certificates a chain may hold: a leaf and a few intermediates.
const MAX_CHAIN: usize = 8;

/// Reads a PEM chain (leaf first) and what its leaf says.
pub fn read_chain(pem: &str) -> Result<(Vec<Certificate>, CertificateInfo), String> {
    let chain = Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| format!("the certificate chain does not parse: {e}"))?;
    if chain.is_empty() || chain.len() > MAX_CHAIN {
        return Err(format!(
            "a chain of {} certificates; expected 1 to {MAX_CHAIN}",
            chain.len()
        ));
    }
    let info = describe(&chain[0])?;
    Ok((chain, info))
}

/// What one certificate says about itself.
pub fn describe(cert: &Certificate) -> Result<CertificateInfo, String> {
    let tbs = cert.tbs_certificate();
    let der = cert.to_der().map_err(|e| e.to_string())?;
    let sans = match tbs.get_extension::<SubjectAltName>() {
        Ok(Some((_, san))) => san
            .0
            .iter()
            .filter_map(|n| match n {
                GeneralName::DnsName(name) => Some(name.to_string().to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("the certificate's subjectAltName does not parse: {e}")),
    };
    let aki = tbs
        .get_extension::<AuthorityKeyIdentifier>()
        .ok()
        .flatten()
        .and_then(|(_, aki)| aki.key_identifier);
    let serial = tbs.serial_number().as_bytes();
    let b64 = data_encoding::BASE64URL_NOPAD;
    let ari_id = aki.map(|k| format!("{}.{}", b64.encode(k.as_bytes()), b64.encode(serial)));
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let when = |t: &x509_cert::time::Time| Timestamp::from_unix(t.to_unix_duration().as_secs());
    Ok(CertificateInfo {
        subject: tbs.subject().to_string(),
        sans,
        issuer: tbs.issuer().to_string(),
        serial: data_encoding::HEXLOWER.encode(trim_zeros(serial)),
        not_before: when(&tbs.validity().not_before),
        not_after: when(&tbs.validity().not_after),
        fingerprint_sha256: data_encoding::HEXLOWER.encode(digest.as_ref()),
        ari_id,
    })
}

fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

/// Checks that a chain's leaf is for `key` (its public key, raw) and covers every name.
pub fn check_leaf(chain: &[Certificate], info: &CertificateInfo, key: &[u8], names: &[String]) -> Result<(), String> {
    let leaf = chain.first().ok_or("an empty chain")?;
    let spki = leaf.tbs_certificate().subject_public_key_info();
    if spki.subject_public_key.raw_bytes() != key {
        return Err("the CA's certificate is not for the key ipx sent it".into());
    }
    if let Some(missing) = names.iter().find(|n| !info.sans.contains(n)) {
        return Err(format!("the CA's certificate does not name {missing}"));
    }
    Ok(())
}
