//! RRSIGs (RFC 4034 §3, RFC 4035 §5.3.2): the signature over an RRset in canonical form,
//! made from the RDATA the snapshot holds.

use super::keys::KeyPair;
use super::types;

/// A key as it signs: the pair and the tag of its DNSKEY.
#[derive(Debug)]
pub struct Signer {
    pub pair: KeyPair,
    pub tag: u16,
}

/// The window a signature is valid in, in seconds of the Unix epoch (RRSIG keeps them
/// modulo 2^32, RFC 4034 §3.1.5, which these are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub inception: u32,
    pub expiration: u32,
}

/// When signatures are made and for how long they hold, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub validity: u32,
    /// A signature with less than this left is made again.
    pub refresh: u32,
    pub inception_offset: u32,
}

impl Default for Policy {
    /// Fourteen days, refreshed with seven left, inception an hour back: `config.toml`'s.
    fn default() -> Self {
        Self {
            validity: 14 * 86_400,
            refresh: 7 * 86_400,
            inception_offset: 3600,
        }
    }
}

impl Policy {
    /// The window of a signature made at `now`. `spread` (a hash of what is signed) takes up
    /// to half of the time between refresh and expiry off its end: signatures made together
    /// (a whole zone turned on) come due over days, not at one moment, and stay spread.
    pub fn window(&self, now: u32, spread: u64) -> Validity {
        let jitter = (self.validity.saturating_sub(self.refresh) / 2) as u64;
        let off = if jitter == 0 { 0 } else { (spread % (jitter + 1)) as u32 };
        Validity {
            inception: now.wrapping_sub(self.inception_offset),
            expiration: now.wrapping_add(self.validity - off),
        }
    }

    /// Whether a signature that expires at `expiration` must be made again at `now`
    /// (times compared in RFC 1982 arithmetic, as RRSIG keeps them).
    pub fn due(&self, expiration: u32, now: u32) -> bool {
        (expiration.wrapping_sub(now) as i32) < self.refresh as i32
    }
}

/// The fixed part of an RRSIG's RDATA, up to the signer's name.
const FIXED: usize = 18;

/// Where, in RRSIG RDATA, the expiration is.
const EXPIRATION_AT: usize = 8;

/// The expiration of a signature (RRSIG RDATA); 0 for data too short to hold one.
pub fn expiration(rrsig: &[u8]) -> u32 {
    rrsig
        .get(EXPIRATION_AT..EXPIRATION_AT + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The key tag of a signature (RRSIG RDATA).
pub fn signer_tag(rrsig: &[u8]) -> u16 {
    rrsig.get(16..18).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// The type a signature covers (RRSIG RDATA).
pub fn covered(rrsig: &[u8]) -> u16 {
    rrsig.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// Labels of a wire name, not counting the root or a leading `*` (RFC 4034 §3.1.3).
pub fn labels(owner: &[u8]) -> u8 {
    let mut n = 0u8;
    let mut at = 0;
    while let Some(&len) = owner.get(at) {
        if len == 0 {
            break;
        }
        if !(at == 0 && len == 1 && owner.get(1) == Some(&b'*')) {
            n = n.saturating_add(1);
        }
        at += 1 + len as usize;
    }
    n
}

/// The RRSIG RDATA over the records `rdatas` (any order, duplicates allowed) of type `rtype`
/// at `owner` (wire form, lowercase), TTL `ttl`, made by `key` for the zone `signer` (wire
/// form, lowercase).
pub fn rrsig<'a>(
    key: &Signer,
    signer: &[u8],
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdatas: impl Iterator<Item = &'a [u8]>,
    validity: Validity,
) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(FIXED + signer.len() + 64);
    rdata.extend_from_slice(&rtype.to_be_bytes());
    rdata.push(key.pair.algorithm().number());
    rdata.push(labels(owner));
    rdata.extend_from_slice(&ttl.to_be_bytes());
    rdata.extend_from_slice(&validity.expiration.to_be_bytes());
    rdata.extend_from_slice(&validity.inception.to_be_bytes());
    rdata.extend_from_slice(&key.tag.to_be_bytes());
    rdata.extend_from_slice(signer);
    let data = signed_data(&rdata, owner, rtype, ttl, rdatas);
    let signature = key.pair.sign(&data);
    rdata.extend_from_slice(&signature);
    rdata
}

/// RRSIG RDATA (without the signature) ‖ each RR of the set in canonical form and order
/// (RFC 4034 §6, RFC 4035 §5.3.2).
fn signed_data<'a>(
    rrsig_head: &[u8],
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdatas: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut set: Vec<std::borrow::Cow<'a, [u8]>> = rdatas.map(|r| canonical_rdata(rtype, r)).collect();
    set.sort();
    set.dedup();
    let mut out = Vec::with_capacity(rrsig_head.len() + set.iter().map(|r| owner.len() + 10 + r.len()).sum::<usize>());
    out.extend_from_slice(rrsig_head);
    for r in &set {
        out.extend_from_slice(owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// RDATA with the names RFC 4034 §6.2 (as RFC 6840 §5.1 amends it) lowercases lowercased,
/// for the types the platform serves. Names in stored RDATA are never compressed.
pub fn canonical_rdata(rtype: u16, rdata: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let names: &[usize] = match rtype {
        types::NS | types::CNAME | types::PTR => &[0],
        types::MX => &[2],
        types::SRV => &[6],
        types::SOA => &[0, usize::MAX], // two names, the second right after the first
        _ => return std::borrow::Cow::Borrowed(rdata),
    };
    if !rdata.iter().any(u8::is_ascii_uppercase) {
        return std::borrow::Cow::Borrowed(rdata);
    }
    let mut out = rdata.to_vec();
    let mut at = 0;
    for &start in names {
        if start != usize::MAX {
            at = start;
        }
        // Lowercase this name's labels; length octets are below 64, so never letters.
        while let Some(&len) = out.get(at) {
            if len == 0 || len > 63 {
                at += 1;
                break;
            }
            let end = (at + 1 + len as usize).min(out.len());
            out[at + 1..end].make_ascii_lowercase();
            at = end;
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys::{dnskey_rdata, key_tag};
    use crate::domain::Algorithm;
    use hickory_proto::dnssec::Verifier;
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};

    #[test]
    fn signatures_come_due_spread_out_and_long_before_they_expire() {
        let p = Policy {
            validity: 14 * 86_400,
            refresh: 7 * 86_400,
            inception_offset: 3600,
        };
        let now = 1_800_000_000;
        let windows: Vec<Validity> = (0..1000u64)
            .map(|i| p.window(now, i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        assert!(windows.iter().all(|w| w.inception == now - 3600));
        let (first, last) = (
            windows.iter().map(|w| w.expiration).min().unwrap(),
            windows.iter().map(|w| w.expiration).max().unwrap(),
        );
        assert!(last - first > 3 * 86_400, "spread over days: {}", last - first);
        assert!(first >= now + p.validity - (p.validity - p.refresh) / 2);
        for w in &windows {
            assert!(!p.due(w.expiration, now), "fresh");
            assert!(
                p.due(w.expiration, w.expiration - p.refresh + 1),
                "due with less than refresh left"
            );
        }
        assert!(p.due(now - 5, now), "expired is due");
    }

    #[test]
    fn labels_leave_out_the_root_and_a_wildcard() {
        assert_eq!(labels(b"\x03www\x07example\x00"), 2);
        assert_eq!(labels(b"\x01*\x07example\x00"), 1);
        assert_eq!(labels(b"\x00"), 0);
    }

    #[test]
    fn names_in_rdata_are_lowercased_and_nothing_else() {
        assert_eq!(
            &*canonical_rdata(types::MX, b"\x00\x0A\x04MAIL\x01X\x00"),
            b"\x00\x0A\x04mail\x01x\x00"
        );
        let soa = b"\x02NS\x00\x01H\x00\x00\x00\x00\x41\x00\x00\x00\x5A";
        let c = canonical_rdata(types::SOA, soa);
        assert_eq!(&c[..7], b"\x02ns\x00\x01h\x00", "both names");
        assert_eq!(
            &c[7..],
            &soa[7..],
            "the timers stay as they are, 0x41 and 0x5A included"
        );
        assert_eq!(&*canonical_rdata(types::TXT, b"\x02HI"), b"\x02HI");
    }

    /// Signs an RRset and checks the signature with hickory's validator.
    #[test]
    fn rrsigs_verify_with_an_independent_validator() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (_, pair) = KeyPair::generate(alg);
            let dnskey = dnskey_rdata(257, alg, &pair.public_key());
            let key = Signer {
                tag: key_tag(&dnskey),
                pair,
            };
            let owner = b"\x03WWW\x07example\x00";
            let lower = b"\x03www\x07example\x00";
            let records: [&[u8]; 2] = [&[192, 0, 2, 2], &[192, 0, 2, 1]];
            let validity = Validity {
                inception: 1_700_000_000,
                expiration: 1_900_000_000,
            };
            let sig = rrsig(
                &key,
                b"\x07example\x00",
                lower,
                types::A,
                300,
                records.into_iter(),
                validity,
            );
            let decode =
                |t: RecordType, w: &[u8]| match RData::read(&mut BinDecoder::new(w), t, Restrict::new(w.len() as u16))
                    .unwrap()
                {
                    RData::DNSSEC(d) => d,
                    other => panic!("{other:?}"),
                };
            let DNSSECRData::RRSIG(rrsig) = decode(RecordType::RRSIG, &sig) else {
                panic!()
            };
            let DNSSECRData::DNSKEY(dnskey) = decode(RecordType::DNSKEY, &dnskey) else {
                panic!()
            };
            let name = Name::read(&mut BinDecoder::new(owner)).unwrap();
            let set: Vec<Record> = records
                .iter()
                .map(|r| {
                    let d = RData::read(&mut BinDecoder::new(r), RecordType::A, Restrict::new(4)).unwrap();
                    Record::from_rdata(name.clone(), 300, d)
                })
                .collect();
            dnskey
                .verify_rrsig(&name, DNSClass::IN, &rrsig, set.iter())
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(expiration(&sig), 1_900_000_000);
            assert_eq!((covered(&sig), signer_tag(&sig)), (types::A, key.tag));
        }
    }
}
