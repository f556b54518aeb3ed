//! What a signed zone's snapshot holds beyond its nodes (whose RRsets carry their RRSIGs):
//! its keys, opened; the denial chain in order (NSEC3 hashes with their records, or names in
//! canonical order for NSEC, whose records live in the nodes); the SOA's signatures. And the
//! form all of it is stored in (`store`'s `SIGNED` rows), so a restart serves the very zone
//! secondaries hold.

use std::cmp::Ordering;
use std::sync::Arc;

use uuid::Uuid;

use super::node::{Draft, DraftRecord, NO_CUT, Node};
use super::ordered::Ordered;
use crate::dnssec::denial::HASH_LEN;
use crate::dnssec::{KeyPair, Signer, types};
use crate::domain::{Denial, DnssecKey, KeyState};
use crate::seal::Sealer;

/// An NSEC3 hash: the chain's key.
pub type Hash = [u8; HASH_LEN];

/// A key of the zone, opened.
#[derive(Debug)]
pub struct ZoneKey {
    pub id: Uuid,
    pub state: KeyState,
    pub signer: Signer,
}

/// A zone's keys, opened once when they change.
#[derive(Debug, Default)]
pub struct Keys(pub Vec<Arc<ZoneKey>>);

impl Keys {
    /// Opens a zone's stored keys with the key-encryption key.
    pub fn open(keys: &[DnssecKey], sealer: Option<&Sealer>) -> Result<Self, String> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(Arc::new(open(k, sealer)?));
        }
        Ok(Self(out))
    }

    /// The keys that sign RRsets of `rtype`: the active key signs everything; the keys a
    /// rollover adds or retires also sign the key sets the parent checks (DNSKEY, and the
    /// CDS/CDNSKEY it reads with them: RFC 7344 §4.1).
    pub fn signing(&self, rtype: u16) -> impl Iterator<Item = &ZoneKey> {
        let key_set = matches!(rtype, types::DNSKEY | types::CDS | types::CDNSKEY);
        self.0
            .iter()
            .map(|k| &**k)
            .filter(move |k| key_set || k.state == KeyState::Active)
    }

    /// Tags of the keys that sign the zone's data: when they change, the whole zone is
    /// signed again.
    pub fn zone_signers(&self) -> Vec<u16> {
        let mut tags: Vec<u16> = self
            .0
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| k.signer.tag)
            .collect();
        tags.sort_unstable();
        tags
    }
}

/// Opens one stored key.
pub fn open(key: &DnssecKey, sealer: Option<&Sealer>) -> Result<ZoneKey, String> {
    let sealer = sealer.ok_or("no key-encryption key to open DNSSEC keys with")?;
    let pkcs8 = sealer
        .open(&crate::domain::dnssec_key_context(key.id), &key.private)
        .map_err(|e| format!("key {} of zone {}: {e}", key.tag, key.zone_id))?;
    let pair = KeyPair::from_pkcs8(key.algorithm, pkcs8.expose())
        .map_err(|e| format!("key {} of zone {}: {e}", key.tag, key.zone_id))?;
    Ok(ZoneKey {
        id: key.id,
        state: key.state,
        signer: Signer { pair, tag: key.tag },
    })
}

/// A signed zone's state beyond its nodes.
#[derive(Clone)]
pub struct Signed {
    pub chain: Chain,
    /// The SOA's RRSIGs (a `Signatures` list).
    pub soa_sigs: Arc<[u8]>,
}

impl Signed {
    pub fn new(denial: Denial) -> Self {
        Self {
            chain: match denial {
                Denial::Nsec3 => Chain::Nsec3(Ordered::default()),
                Denial::Nsec => Chain::Nsec(Ordered::default()),
            },
            soa_sigs: Arc::from(&[][..]),
        }
    }

    pub fn denial(&self) -> Denial {
        match self.chain {
            Chain::Nsec3(_) => Denial::Nsec3,
            Chain::Nsec(_) => Denial::Nsec,
        }
    }
}

/// The names of the denial chain, in its order.
#[derive(Clone)]
pub enum Chain {
    /// NSEC3 hashes, each with its record.
    Nsec3(Ordered<Hash, Entry>),
    /// Names (lookup keys) in canonical order; their NSEC records are in their nodes.
    Nsec(Ordered<Canon, ()>),
}

/// An NSEC3 record with its signatures and the name it stands for, in one allocation:
/// `key_len u8, key, rdlen u16, rdata, signatures (a Signatures list)`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry(Arc<[u8]>);

impl Entry {
    pub fn new(owner: &[u8], rdata: &[u8], sigs: &[u8]) -> Self {
        let mut b = Vec::with_capacity(3 + owner.len() + rdata.len() + sigs.len());
        b.push(owner.len() as u8);
        b.extend_from_slice(owner);
        b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        b.extend_from_slice(rdata);
        b.extend_from_slice(sigs);
        Self(b.into())
    }

    /// The stored form, checked: `None` when it does not hold an entry.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let klen = *b.first()? as usize;
        let rdlen = u16::from_be_bytes([*b.get(1 + klen)?, *b.get(2 + klen)?]) as usize;
        let sigs = b.get(3 + klen + rdlen..)?;
        well_formed(sigs).then(|| Self(b.into()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The lookup key of the name hashed.
    pub fn owner(&self) -> &[u8] {
        &self.0[1..1 + self.0[0] as usize]
    }

    fn rdata_at(&self) -> (usize, usize) {
        let k = self.0[0] as usize;
        let len = u16::from_be_bytes([self.0[1 + k], self.0[2 + k]]) as usize;
        (3 + k, 3 + k + len)
    }

    pub fn rdata(&self) -> &[u8] {
        let (a, b) = self.rdata_at();
        &self.0[a..b]
    }

    pub fn sigs(&self) -> &[u8] {
        &self.0[self.rdata_at().1..]
    }
}

/// Whether a `Signatures` list reads to its end.
pub fn well_formed(mut list: &[u8]) -> bool {
    while !list.is_empty() {
        let Some(len) = list.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize) else {
            return false;
        };
        let Some(rest) = list.get(2 + len..) else { return false };
        list = rest;
    }
    true
}

/// A lookup key ordered as DNSSEC orders names (RFC 4034 §6.1): label by label from the
/// top, each label as lowercase octets, an ancestor before its descendants.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Canon(pub Box<[u8]>);

impl Ord for Canon {
    fn cmp(&self, other: &Self) -> Ordering {
        canonical_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for Canon {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Canonical order of two lookup keys (labels from the top, lowercase already).
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(&la), Some(&lb)) => {
                let x = a.get(i + 1..i + 1 + la as usize).unwrap_or_default();
                let y = b.get(j + 1..j + 1 + lb as usize).unwrap_or_default();
                match x.cmp(y) {
                    Ordering::Equal => {}
                    other => return other,
                }
                i += 1 + la as usize;
                j += 1 + lb as usize;
            }
        }
    }
}

/// Stored rows: `n` + a node's key → what signing added to the node; `h` + hash → an NSEC3
/// entry; `s` → the SOA's signatures.
pub fn node_row(key: &[u8]) -> Vec<u8> {
    [b"n".as_slice(), key].concat()
}

pub fn hash_row(hash: &Hash) -> Vec<u8> {
    [b"h".as_slice(), hash].concat()
}

pub const SOA_ROW: &[u8] = b"s";

/// What signing added to a node, as stored: items `rtype u16, kind u8, len u16, data`,
/// kind 0 the signatures of the RRset of `rtype`, kind 1 an NSEC record's RDATA.
pub fn node_blob(node: &Node) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for set in node.rrsets() {
        if set.rtype == types::NSEC
            && let Some(r) = set.first()
        {
            item(&mut out, types::NSEC, 1, r.wire);
        }
        let sigs: Vec<&[u8]> = set.signatures().collect();
        if !sigs.is_empty() {
            let mut list = Vec::new();
            sigs.iter().for_each(|s| super::node::push_signature(&mut list, s));
            item(&mut out, set.rtype, 0, &list);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn item(out: &mut Vec<u8>, rtype: u16, kind: u8, data: &[u8]) {
    out.extend_from_slice(&rtype.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// Puts a stored blob back on a node (start-up): its NSEC record (TTL `nsec_ttl`) and the
/// signatures of RRsets it still holds. `None` for a blob that does not parse.
pub fn attach(node: &Node, blob: &[u8], nsec_ttl: u32) -> Option<Node> {
    let mut d = Draft::of(node);
    let mut at = 0;
    while at < blob.len() {
        let rtype = u16::from_be_bytes([*blob.get(at)?, *blob.get(at + 1)?]);
        let kind = *blob.get(at + 2)?;
        let len = u16::from_be_bytes([*blob.get(at + 3)?, *blob.get(at + 4)?]) as usize;
        let data = blob.get(at + 5..at + 5 + len)?;
        at += 5 + len;
        match kind {
            1 => {
                d.rrsets.retain(|s| s.0 != types::NSEC);
                let i = d.rrsets.partition_point(|s| s.0 < types::NSEC);
                let record = DraftRecord {
                    ttl: nsec_ttl,
                    cut: NO_CUT,
                    wire: data.into(),
                };
                d.rrsets.insert(i, (types::NSEC, vec![record]));
            }
            _ => d.set_signatures(rtype, data.to_vec()),
        }
    }
    Some(d.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_is_rfc_4034_s_example() {
        // RFC 4034 §6.1, each name as a lookup key.
        let names = [
            "example",
            "a.example",
            "yljkjljk.a.example",
            "Z.a.example",
            "zABC.a.EXAMPLE",
            "z.example",
            "\u{1}.z.example",
            "*.z.example",
            "\u{80}.z.example",
        ];
        let keys: Vec<Vec<u8>> = names
            .iter()
            .map(|n| {
                let mut k = Vec::new();
                for l in n.to_ascii_lowercase().split('.').rev() {
                    let bytes: Vec<u8> = l.chars().map(|c| c as u32 as u8).collect();
                    k.push(bytes.len() as u8);
                    k.extend_from_slice(&bytes);
                }
                k
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| canonical_cmp(a, b));
        assert_eq!(sorted, keys);
    }

    #[test]
    fn an_entry_reads_back_its_parts_and_damaged_ones_are_refused() {
        let e = Entry::new(b"\x01t", b"rdata", b"\x00\x03sig");
        assert_eq!(
            (e.owner(), e.rdata(), e.sigs()),
            (&b"\x01t"[..], &b"rdata"[..], &b"\x00\x03sig"[..])
        );
        assert_eq!(Entry::from_bytes(e.bytes()), Some(e.clone()));
        assert_eq!(Entry::from_bytes(&e.bytes()[..4]), None);
    }
}
