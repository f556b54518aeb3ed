//! A site's certificate: what it says about itself (read from the certificate, never taken
//! on trust from the CA's messages), its private key (sealed), and when it is renewed; and
//! an issuance under way, kept so that a restart resumes it rather than starting over.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use crate::seal::Sealed;

/// The algorithm of a certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    EcdsaP256,
    EcdsaP384,
}

/// What a certificate says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CertificateInfo {
    /// The subject's distinguished name (RFC 4514), often empty or just the CN.
    pub subject: String,
    /// The DNS names it is valid for (subjectAltName).
    pub sans: Vec<String>,
    /// The issuer's distinguished name (RFC 4514).
    pub issuer: String,
    /// Lowercase hex, without leading zeros.
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// Its ACME Renewal Information identifier (RFC 9773 §4.1), when it has an authority key id.
    pub ari_id: Option<String>,
}

/// A suggested renewal window (RFC 9773).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Where a certificate's renewal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenewalState {
    /// Renewed at `next_at`.
    Scheduled,
    /// A renewal job is running.
    Renewing,
    /// The last attempt failed; tried again at `next_at`.
    Failed,
}

/// When and how a certificate is renewed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Renewal {
    pub state: RenewalState,
    pub next_at: Timestamp,
    /// The CA's suggested window, when it offers ACME Renewal Information.
    pub window: Option<Window>,
    /// Attempts failed in a row.
    pub failures: u32,
    pub last_error: Option<String>,
}

/// A site's certificate, as installed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Certificate {
    pub site_id: Uuid,
    pub team_id: Uuid,
    pub info: CertificateInfo,
    /// The leaf first, then the intermediates, as the CA sent them.
    pub chain_pem: String,
    /// The private key as PKCS#8 PEM, sealed for `key_context(site_id)`.
    pub key: Sealed,
    pub key_type: KeyType,
    /// The directory URL of the CA that issued it; `simulated` for the demo issuer.
    pub issuer_directory: String,
    pub issued_at: Timestamp,
    pub renewal: Renewal,
    /// Its expiry has been noticed: its site shows SSL failed.
    #[serde(default)]
    pub lapsed: bool,
}

/// The context a site's certificate key is sealed for.
pub fn key_context(site: Uuid) -> String {
    format!("certificate-key:{site}")
}

/// A certificate obtained and not yet installed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Obtained {
    pub info: CertificateInfo,
    pub chain_pem: String,
    pub window: Option<Window>,
}

/// An issuance (or renewal) under way for a site: what a restart needs to go on where it
/// stopped. Written before each step that would be costly or wrong to repeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Issuance {
    pub site_id: Uuid,
    pub team_id: Uuid,
    /// The CA's directory it was started with.
    pub directory: String,
    /// The order at the CA, once placed.
    pub order_url: Option<String>,
    /// The new certificate's key, sealed for `key_context(site_id)` before the CSR is sent.
    pub key: Option<Sealed>,
    pub key_type: KeyType,
    pub obtained: Option<Obtained>,
    /// SSL requests that failed in a row, and when the site may ask again: each failure
    /// after the first doubles the wait, so a site cannot spend the CA's order budget (one
    /// account serves every team) in a loop.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub retry_at: Option<Timestamp>,
}

/// An ACME account: one per CA directory, its credentials (key included) sealed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AcmeAccount {
    pub directory: String,
    /// `instant_acme::AccountCredentials` as JSON, sealed for `account_context(directory)`.
    pub credentials: Sealed,
    pub created_at: Timestamp,
}

/// The context an ACME account's credentials are sealed for.
pub fn account_context(directory: &str) -> String {
    format!("acme-account:{directory}")
}
