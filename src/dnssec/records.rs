//! The records a signed zone publishes at its apex for its keys: DNSKEY for every key,
//! CDS and CDNSKEY (RFC 7344) for the active one, or their DELETE form (RFC 8078 §4) while
//! signing is being turned off, and NSEC3PARAM (RFC 5155 §4) in NSEC3 mode. The store keeps
//! them as managed records; this says what they should be.

use hickory_proto::rr::RecordType;

use super::denial::NSEC3PARAM_RDATA;
use super::keys::{CDNSKEY_DELETE, CDS_DELETE, DIGEST_TYPES, dnskey_rdata, dnskey_text, ds_rdata, ds_text};
use crate::domain::{Denial, DnssecKey, KeyState, ZoneDnssec, ZoneState};

/// One apex record: type, RDATA, presentation text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub rtype: RecordType,
    pub wire: Vec<u8>,
    pub content: String,
}

/// The types of the records this module manages.
pub const TYPES: [RecordType; 4] = [
    RecordType::DNSKEY,
    RecordType::CDS,
    RecordType::CDNSKEY,
    RecordType::NSEC3PARAM,
];

pub fn dnskey(key: &DnssecKey) -> Vec<u8> {
    dnskey_rdata(key.flags, key.algorithm, &key.public_key)
}

/// The DS RDATA of a key, digest types 2 and 4, for the zone at `apex` (wire form).
pub fn ds(apex: &[u8], key: &DnssecKey) -> Vec<Vec<u8>> {
    let dnskey = dnskey(key);
    DIGEST_TYPES
        .iter()
        .filter_map(|&t| ds_rdata(apex, &dnskey, t))
        .collect()
}

/// What the apex should hold for a zone in `state` with `keys`.
pub fn published(apex: &[u8], state: &ZoneDnssec, keys: &[DnssecKey]) -> Vec<Published> {
    let mut out = Vec::new();
    for key in keys {
        let wire = dnskey(key);
        out.push(Published {
            rtype: RecordType::DNSKEY,
            content: dnskey_text(&wire),
            wire,
        });
    }
    if state.state == ZoneState::Disabling {
        out.push(Published {
            rtype: RecordType::CDS,
            wire: CDS_DELETE.to_vec(),
            content: "0 0 0 00".into(),
        });
        out.push(Published {
            rtype: RecordType::CDNSKEY,
            wire: CDNSKEY_DELETE.to_vec(),
            content: "0 3 0 AA==".into(),
        });
    } else {
        for key in keys.iter().filter(|k| k.state == KeyState::Active) {
            // SHA-256 only: the digest every parent takes (RFC 8624 §3.3).
            if let Some(cds) = ds(apex, key).into_iter().find(|d| d.get(3) == Some(&2)) {
                out.push(Published {
                    rtype: RecordType::CDS,
                    content: ds_text(&cds),
                    wire: cds,
                });
            }
            let wire = dnskey(key);
            out.push(Published {
                rtype: RecordType::CDNSKEY,
                content: dnskey_text(&wire),
                wire,
            });
        }
    }
    if state.denial == Denial::Nsec3 {
        out.push(Published {
            rtype: RecordType::NSEC3PARAM,
            wire: NSEC3PARAM_RDATA.to_vec(),
            content: "1 0 0 -".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Algorithm, Timestamp};
    use crate::seal::Sealer;

    fn key(state: KeyState) -> DnssecKey {
        DnssecKey {
            id: uuid::Uuid::now_v7(),
            zone_id: uuid::Uuid::nil(),
            algorithm: Algorithm::EcdsaP256Sha256,
            flags: 257,
            public_key: vec![7; 64],
            tag: 0,
            private: Sealer::ephemeral().seal("x", b"k"),
            state,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn the_apex_publishes_every_key_and_the_active_one_to_the_parent() {
        let mut state = ZoneDnssec {
            state: ZoneState::Signed,
            denial: Denial::Nsec3,
            rollover: None,
            since: Timestamp::now(),
            unsign_at: None,
        };
        let keys = [key(KeyState::Retiring), key(KeyState::Active)];
        let p = published(b"\x01t\x00", &state, &keys);
        let types: Vec<_> = p.iter().map(|p| p.rtype).collect();
        assert_eq!(
            types,
            [
                RecordType::DNSKEY,
                RecordType::DNSKEY,
                RecordType::CDS,
                RecordType::CDNSKEY,
                RecordType::NSEC3PARAM
            ]
        );
        assert!(p[2].content.contains(" 13 2 "), "{}", p[2].content);
        state.state = ZoneState::Disabling;
        state.denial = Denial::Nsec;
        let p = published(b"\x01t\x00", &state, &keys);
        let cds: Vec<_> = p
            .iter()
            .filter(|p| p.rtype != RecordType::DNSKEY)
            .map(|p| &p.content)
            .collect();
        assert_eq!(cds, ["0 0 0 00", "0 3 0 AA=="], "RFC 8078 DELETE, and no NSEC3PARAM");
    }
}
