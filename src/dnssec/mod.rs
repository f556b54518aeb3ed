//! DNSSEC's cryptography and record formats, pure: keys (`keys`), signatures over RRsets
//! (`sign`) and the records that deny existence (`denial`). The snapshot (`dns::signer`)
//! signs with these when the zone changes; nothing is signed when a query is answered.

pub mod denial;
pub mod keys;
pub mod records;
pub mod sign;
pub mod types;

pub use keys::{KeyError, KeyPair};
pub use sign::{Policy, Signer, Validity};

use crate::config::DnssecConfig;
use crate::domain::{Algorithm, CSK_FLAGS, DnssecKey, KeyState, Timestamp, Waits, dnssec_key_context, new_id};
use crate::seal::Sealer;

/// A new CSK for a zone, its private half sealed: made where the caller runs (the API's task,
/// an operator command), never on the store's writer.
pub fn new_key(algorithm: Algorithm, zone: uuid::Uuid, sealer: &Sealer) -> DnssecKey {
    let (pkcs8, pair) = KeyPair::generate(algorithm);
    let public_key = pair.public_key();
    let dnskey = keys::dnskey_rdata(CSK_FLAGS, algorithm, &public_key);
    let id = new_id();
    DnssecKey {
        id,
        zone_id: zone,
        algorithm,
        flags: CSK_FLAGS,
        tag: keys::key_tag(&dnskey),
        public_key,
        private: sealer.seal(&dnssec_key_context(id), &pkcs8),
        state: KeyState::Active,
        created_at: Timestamp::now(),
    }
}

/// A rollover's waits (RFC 7583 §3.3): the DNSKEY set's TTL, the zone's largest TTL and the
/// parent's DS TTL, each with the propagation delay to secondaries.
pub fn waits(config: &DnssecConfig, max_zone_ttl: u32) -> Waits {
    let p = config.propagation_delay_secs;
    Waits {
        publish: u64::from(config.dnskey_ttl) + p,
        signatures: u64::from(max_zone_ttl.max(config.dnskey_ttl)) + p,
        parent_ds: config.parent_ds_ttl_secs + p,
    }
}
