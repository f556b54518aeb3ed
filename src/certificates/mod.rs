//! Sites' certificates: obtained from an ACME CA (RFC 8555) by DNS-01, answered from our own
//! zones through the store's normal write path; or, for demos only, signed locally. Keys are
//! made fresh for each certificate and sealed before they are stored.
//!
//! `issuer` runs an issuance (resumable: its progress is in the site's `Issuance` row),
//! `acme` the order at the CA, `challenges` the `_acme-challenge` records, `propagation` the
//! wait for secondaries, `keys` and `x509` make and read certificates, `schedule` says when
//! each is renewed, `http` is the HTTPS client the CA is reached with.

mod acme;
pub mod challenges;
mod http;
mod issuer;
mod keys;
mod propagation;
pub mod schedule;
pub mod x509;

pub use issuer::{Issuer, Ready, SIMULATED};
