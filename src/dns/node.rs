//! One owner name of a zone snapshot in one allocation: its lookup key, how many child nodes
//! it has, and its RRsets in wire form, ready to be copied into answers. A million names cost
//! a million small allocations and nothing else: no per-record `String`, `Name` or boxed
//! hickory `Record`.
//!
//! Layout (integers big-endian):
//!
//! ```text
//! key_len u8, key [key_len]             the name's lookup key (`snapshot::Key`)
//! children u32                          child nodes (ENT bookkeeping)
//! rrsets u8
//! per RRset, by type:  rtype u16, ttl u32 (smallest of its records), count u32, len u32,
//!                      sigs u16
//!   per record (len bytes in all):  ttl u32 (its own), rdlen u16, cut u8, rdata [rdlen]
//!   per signature (sigs bytes in all):  rdlen u16, RRSIG rdata [rdlen]
//! ```
//!
//! A signed zone's RRSIGs sit beside the RRset they cover, ready to be copied after it (the
//! signer's name in them is never compressed, RFC 4034 §3.1.7); in NSEC mode the NSEC RRset
//! is one more RRset of the node. An unsigned zone pays two octets per RRset.
//!
//! `cut` is where, inside the RDATA, the zone's apex name starts when the record holds a name
//! in the zone whose type allows compression (NS, CNAME, PTR, MX: RFC 3597 §4): an answer
//! writes the RDATA up to `cut` and then a pointer to the apex in the question, so names are
//! compressed once, when the node is built. `NO_CUT` otherwise.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use hickory_proto::rr::RecordType;

/// A record's RDATA holds no name to compress.
pub const NO_CUT: u8 = u8::MAX;
const RRSET_HEADER: usize = 2 + 4 + 4 + 4 + 2;
const RECORD_HEADER: usize = 4 + 2 + 1;

/// A node: shared, immutable; an edit builds a new one.
#[derive(Clone)]
pub struct Node(Arc<[u8]>);

impl Node {
    pub fn key(&self) -> &[u8] {
        &self.0[1..1 + self.0[0] as usize]
    }

    fn body(&self) -> &[u8] {
        &self.0[1 + self.0[0] as usize..]
    }

    pub fn children(&self) -> u32 {
        let b = self.body();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Its RRsets, in type order.
    pub fn rrsets(&self) -> RRsets<'_> {
        let b = self.body();
        RRsets {
            left: b[4],
            rest: &b[5..],
        }
    }

    pub fn rrset(&self, rtype: u16) -> Option<RRset<'_>> {
        self.rrsets().find(|s| s.rtype == rtype)
    }

    pub fn has_rrsets(&self) -> bool {
        self.body()[4] > 0
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.0.len()
    }
}

impl Borrow<[u8]> for Node {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Node {}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &self.key())
            .field("children", &self.children())
            .field("rrsets", &self.rrsets().map(|s| (s.rtype, s.count)).collect::<Vec<_>>())
            .finish()
    }
}

pub struct RRsets<'a> {
    left: u8,
    rest: &'a [u8],
}

impl<'a> Iterator for RRsets<'a> {
    type Item = RRset<'a>;

    fn next(&mut self) -> Option<RRset<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let h = self.rest;
        let len = u32::from_be_bytes([h[10], h[11], h[12], h[13]]) as usize;
        let sigs = u16::from_be_bytes([h[14], h[15]]) as usize;
        let set = RRset {
            rtype: u16::from_be_bytes([h[0], h[1]]),
            ttl: u32::from_be_bytes([h[2], h[3], h[4], h[5]]),
            count: u32::from_be_bytes([h[6], h[7], h[8], h[9]]),
            records: &h[RRSET_HEADER..RRSET_HEADER + len],
            sigs: &h[RRSET_HEADER + len..RRSET_HEADER + len + sigs],
        };
        self.rest = &h[RRSET_HEADER + len + sigs..];
        Some(set)
    }
}

/// The records of one type at one name.
#[derive(Clone, Copy)]
pub struct RRset<'a> {
    pub rtype: u16,
    /// What every record is answered with: the smallest TTL of the set (RFC 2181 §5.2).
    pub ttl: u32,
    pub count: u32,
    records: &'a [u8],
    sigs: &'a [u8],
}

impl<'a> RRset<'a> {
    pub fn records(&self) -> Records<'a> {
        Records { rest: self.records }
    }

    /// The RRSIG RDATA covering the set (none in an unsigned zone).
    pub fn signatures(&self) -> Signatures<'a> {
        Signatures(self.sigs)
    }

    /// The signatures as the list they are kept in (`Signatures` reads it).
    pub fn signature_list(&self) -> &'a [u8] {
        self.sigs
    }

    pub fn is_signed(&self) -> bool {
        !self.sigs.is_empty()
    }

    pub fn first(&self) -> Option<Rdata<'a>> {
        self.records().next()
    }
}

#[derive(Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Rdata<'a>;

    fn next(&mut self) -> Option<Rdata<'a>> {
        let h = self.rest;
        if h.len() < RECORD_HEADER {
            return None;
        }
        let len = u16::from_be_bytes([h[4], h[5]]) as usize;
        let r = Rdata {
            ttl: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
            cut: h[6],
            wire: &h[RECORD_HEADER..RECORD_HEADER + len],
        };
        self.rest = &h[RECORD_HEADER + len..];
        Some(r)
    }
}

/// A list of RDATA, each after its length (u16): how signatures are kept.
#[derive(Clone, Copy)]
pub struct Signatures<'a>(pub &'a [u8]);

impl<'a> Iterator for Signatures<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes([*self.0.first()?, *self.0.get(1)?]) as usize;
        let item = self.0.get(2..2 + len)?;
        self.0 = &self.0[2 + len..];
        Some(item)
    }
}

/// Appends `rdata` to a list `Signatures` reads.
pub fn push_signature(list: &mut Vec<u8>, rdata: &[u8]) {
    list.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    list.extend_from_slice(rdata);
}

/// One record's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rdata<'a> {
    /// The record's own TTL (answers use the set's).
    pub ttl: u32,
    /// Where the apex name starts inside `wire`, or `NO_CUT`.
    pub cut: u8,
    /// Uncompressed RDATA.
    pub wire: &'a [u8],
}

/// A node taken apart, for building and editing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draft {
    pub key: Vec<u8>,
    pub children: u32,
    /// By type; each set's records in the order they were added.
    pub rrsets: Vec<(u16, Vec<DraftRecord>)>,
    /// RRSIG RDATA (a `Signatures` list) by the type covered, sorted by type. An RRset
    /// whose records change loses its signatures (the signer makes new ones).
    pub sigs: Vec<(u16, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DraftRecord {
    pub ttl: u32,
    pub cut: u8,
    pub wire: Box<[u8]>,
}

impl Draft {
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: key.to_vec(),
            ..Self::default()
        }
    }

    pub fn of(node: &Node) -> Self {
        Self {
            key: node.key().to_vec(),
            children: node.children(),
            rrsets: node
                .rrsets()
                .map(|s| {
                    let records = s
                        .records()
                        .map(|r| DraftRecord {
                            ttl: r.ttl,
                            cut: r.cut,
                            wire: r.wire.into(),
                        })
                        .collect();
                    (s.rtype, records)
                })
                .collect(),
            sigs: node
                .rrsets()
                .filter(|s| s.is_signed())
                .map(|s| (s.rtype, s.sigs.to_vec()))
                .collect(),
        }
    }

    /// The signatures of the RRset of `rtype` (a `Signatures` list; empty: none).
    pub fn signatures(&self, rtype: u16) -> &[u8] {
        match self.sigs.binary_search_by_key(&rtype, |s| s.0) {
            Ok(i) => &self.sigs[i].1,
            Err(_) => &[],
        }
    }

    /// Sets (or, with an empty list, drops) the signatures of the RRset of `rtype`.
    pub fn set_signatures(&mut self, rtype: u16, list: Vec<u8>) {
        match (self.sigs.binary_search_by_key(&rtype, |s| s.0), list.is_empty()) {
            (Ok(i), true) => {
                self.sigs.remove(i);
            }
            (Ok(i), false) => self.sigs[i].1 = list,
            (Err(_), true) => {}
            (Err(i), false) => self.sigs.insert(i, (rtype, list)),
        }
    }

    /// Adds a record; `false` when the set already holds the same data (nothing changed).
    pub fn add(&mut self, rtype: u16, record: DraftRecord) -> bool {
        let i = match self.rrsets.binary_search_by_key(&rtype, |s| s.0) {
            Ok(i) => i,
            Err(i) => {
                self.rrsets.insert(i, (rtype, Vec::new()));
                i
            }
        };
        let set = &mut self.rrsets[i].1;
        if let Some(same) = set.iter_mut().find(|r| r.wire == record.wire) {
            if same.ttl != record.ttl {
                same.ttl = record.ttl;
                self.set_signatures(rtype, Vec::new()); // signed with the old TTL
            }
            return false;
        }
        set.push(record);
        self.set_signatures(rtype, Vec::new());
        true
    }

    /// Removes the record of `rtype` with `wire` data; whether it was there.
    pub fn remove(&mut self, rtype: u16, wire: &[u8]) -> bool {
        let Ok(i) = self.rrsets.binary_search_by_key(&rtype, |s| s.0) else {
            return false;
        };
        let set = &mut self.rrsets[i].1;
        let Some(j) = set.iter().position(|r| &*r.wire == wire) else {
            return false;
        };
        set.remove(j);
        if set.is_empty() {
            self.rrsets.remove(i);
        }
        self.set_signatures(rtype, Vec::new());
        true
    }

    pub fn has(&self, rtype: RecordType) -> bool {
        let t = u16::from(rtype);
        self.rrsets.iter().any(|s| s.0 == t)
    }

    /// Neither records nor children: the node does not exist.
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty() && self.children == 0
    }

    pub fn build(&self) -> Node {
        let body: usize = self
            .rrsets
            .iter()
            .map(|(t, rs)| {
                RRSET_HEADER
                    + rs.iter().map(|r| RECORD_HEADER + r.wire.len()).sum::<usize>()
                    + self.signatures(*t).len()
            })
            .sum();
        let mut out = Vec::with_capacity(1 + self.key.len() + 5 + body);
        out.push(self.key.len() as u8);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.children.to_be_bytes());
        out.push(self.rrsets.len().min(u8::MAX as usize) as u8);
        for (rtype, records) in self.rrsets.iter().take(u8::MAX as usize) {
            let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
            let len: usize = records.iter().map(|r| RECORD_HEADER + r.wire.len()).sum();
            let sigs = self.signatures(*rtype);
            let sigs = if sigs.len() > u16::MAX as usize { &[][..] } else { sigs };
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&(records.len() as u32).to_be_bytes());
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.extend_from_slice(&(sigs.len() as u16).to_be_bytes());
            for r in records {
                out.extend_from_slice(&r.ttl.to_be_bytes());
                out.extend_from_slice(&(r.wire.len() as u16).to_be_bytes());
                out.push(r.cut);
                out.extend_from_slice(&r.wire);
            }
            out.extend_from_slice(sigs);
        }
        Node(out.into())
    }
}

/// Writes unsigned nodes straight from records in type order, into one buffer reused from
/// node to node: building a whole zone makes one allocation per name, the node itself (a
/// signed zone's signatures are attached afterwards, `signed::attach`).
#[derive(Default)]
pub struct NodeWriter {
    buf: Vec<u8>,
    /// Where the RRset being written starts (its header), if one is.
    set: Option<usize>,
    sets_at: usize,
}

impl NodeWriter {
    pub fn start(&mut self, key: &[u8], children: u32) {
        self.buf.clear();
        self.buf.push(key.len() as u8);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&children.to_be_bytes());
        self.sets_at = self.buf.len();
        self.buf.push(0);
        self.set = None;
    }

    /// Adds a record; records come grouped by type, types in increasing order.
    pub fn record(&mut self, rtype: u16, ttl: u32, cut: u8, wire: &[u8]) {
        let header = match self.set {
            Some(at) if self.buf[at..at + 2] == rtype.to_be_bytes() => at,
            _ => {
                if self.buf[self.sets_at] == u8::MAX {
                    return; // more types than a name can have
                }
                self.buf[self.sets_at] += 1;
                let at = self.buf.len();
                self.buf.extend_from_slice(&rtype.to_be_bytes());
                self.buf.extend_from_slice(&ttl.to_be_bytes());
                self.buf.extend_from_slice(&[0; 10]); // count, len, no signatures
                self.set = Some(at);
                at
            }
        };
        let min = u32::from_be_bytes(self.buf[header + 2..header + 6].try_into().expect("4 octets")).min(ttl);
        self.buf[header + 2..header + 6].copy_from_slice(&min.to_be_bytes());
        let count = u32::from_be_bytes(self.buf[header + 6..header + 10].try_into().expect("4 octets")) + 1;
        self.buf[header + 6..header + 10].copy_from_slice(&count.to_be_bytes());
        let added = (RECORD_HEADER + wire.len()) as u32;
        let len = u32::from_be_bytes(self.buf[header + 10..header + 14].try_into().expect("4 octets")) + added;
        self.buf[header + 10..header + 14].copy_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        self.buf.push(cut);
        self.buf.extend_from_slice(wire);
    }

    pub fn finish(&mut self) -> Node {
        Node(Arc::from(&self.buf[..]))
    }
}

/// Where, in `rdata` of `rtype`, the apex name `origin` (wire form) starts, when the record's
/// name may be compressed (RFC 3597 §4: NS, CNAME, PTR, MX) and lies in the zone.
pub fn cut_for(rtype: u16, rdata: &[u8], origin: &[u8]) -> u8 {
    let start = match RecordType::from(rtype) {
        RecordType::NS | RecordType::CNAME | RecordType::PTR => 0,
        RecordType::MX => 2,
        _ => return NO_CUT,
    };
    let Some(name) = rdata.get(start..) else { return NO_CUT };
    // The name must be the rest of the RDATA, uncompressed, and end in the origin.
    let mut at = 0;
    let mut ends = [0usize; 128];
    let mut labels = 0;
    loop {
        let Some(&len) = name.get(at) else { return NO_CUT };
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 || labels == ends.len() {
            return NO_CUT;
        }
        ends[labels] = at;
        labels += 1;
        at += 1 + len as usize;
    }
    if at != name.len() || origin.len() > name.len() {
        return NO_CUT;
    }
    let suffix = name.len() - origin.len();
    // The suffix must start on a label boundary and equal the origin (case-insensitively).
    if !ends[..labels].contains(&suffix) || !name[suffix..].eq_ignore_ascii_case(origin) {
        return NO_CUT;
    }
    match u8::try_from(start + suffix) {
        Ok(cut) if cut != NO_CUT => cut,
        _ => NO_CUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ttl: u32, wire: &[u8]) -> DraftRecord {
        DraftRecord {
            ttl,
            cut: NO_CUT,
            wire: wire.into(),
        }
    }

    #[test]
    fn a_node_reads_back_what_it_was_built_from() {
        let mut d = Draft::new(b"\x04test\x03www");
        d.children = 3;
        assert!(d.add(1, rec(300, &[192, 0, 2, 1])));
        assert!(d.add(1, rec(60, &[192, 0, 2, 2])));
        assert!(
            !d.add(1, rec(30, &[192, 0, 2, 2])),
            "same data: the TTL changes, no new record"
        );
        assert!(d.add(16, rec(600, b"\x02hi")));
        let n = d.build();
        assert_eq!(n.key(), b"\x04test\x03www");
        assert_eq!(n.children(), 3);
        let a = n.rrset(1).unwrap();
        assert_eq!((a.ttl, a.count), (30, 2), "the set answers with its smallest TTL");
        assert_eq!(
            a.records().map(|r| r.wire).collect::<Vec<_>>(),
            vec![&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]
        );
        assert_eq!(n.rrsets().map(|s| s.rtype).collect::<Vec<_>>(), [1, 16]);
        assert_eq!(Draft::of(&n), d, "a draft of the node is the draft it came from");
        let mut e = Draft::of(&n);
        assert!(e.remove(1, &[192, 0, 2, 2]));
        assert!(!e.remove(1, &[192, 0, 2, 2]));
        assert_eq!(e.build().rrset(1).unwrap().ttl, 300, "the minimum comes back");
        assert!(e.remove(1, &[192, 0, 2, 1]) && e.remove(16, b"\x02hi"));
        assert!(!e.build().has_rrsets());
    }

    #[test]
    fn signatures_sit_beside_their_rrset_and_go_when_it_changes() {
        let mut d = Draft::new(b"\x01t");
        d.add(1, rec(300, &[192, 0, 2, 1]));
        d.add(16, rec(300, b"\x02hi"));
        let mut list = Vec::new();
        push_signature(&mut list, b"sig-one");
        push_signature(&mut list, b"sig-two");
        d.set_signatures(1, list.clone());
        d.set_signatures(99, b"\x00\x01x".to_vec());
        let n = d.build();
        let a = n.rrset(1).unwrap();
        assert_eq!(a.signatures().collect::<Vec<_>>(), [&b"sig-one"[..], b"sig-two"]);
        assert!(!n.rrset(16).unwrap().is_signed());
        assert_eq!(a.first().unwrap().wire, [192, 0, 2, 1], "records read past nothing");
        assert_eq!(
            n.rrset(16).unwrap().first().unwrap().wire,
            b"\x02hi",
            "the next RRset after them"
        );
        assert_eq!(n.rrsets().count(), 2, "a signature without its RRset is not kept");
        let mut e = Draft::of(&n);
        assert_eq!(e.signatures(1), &list[..]);
        assert!(!e.add(1, rec(300, &[192, 0, 2, 1])), "same record, same TTL");
        assert_eq!(e.signatures(1), &list[..], "nothing changed: still signed");
        assert!(!e.add(1, rec(60, &[192, 0, 2, 1])));
        assert!(e.signatures(1).is_empty(), "a new TTL needs a new signature");
        e.set_signatures(1, list.clone());
        assert!(e.add(1, rec(60, &[192, 0, 2, 9])) && e.signatures(1).is_empty());
        e.set_signatures(1, list);
        assert!(e.remove(1, &[192, 0, 2, 9]) && e.signatures(1).is_empty());
    }

    #[test]
    fn names_in_the_zone_are_cut_at_the_apex() {
        let origin = b"\x04conf\x04test\x00";
        assert_eq!(cut_for(15, b"\x00\x0a\x04mail\x04conf\x04test\x00", origin), 7);
        assert_eq!(cut_for(5, b"\x04conf\x04test\x00", origin), 0, "the apex itself");
        assert_eq!(cut_for(5, b"\x04CONF\x04Test\x00", origin), 0, "case does not matter");
        assert_eq!(cut_for(2, b"\x02ns\x09elsewhere\x07example\x00", origin), NO_CUT);
        assert_eq!(
            cut_for(5, b"\x03xconf\x04test\x00", origin),
            NO_CUT,
            "not on a label boundary"
        );
        assert_eq!(
            cut_for(33, b"\x00\x01\x00\x02\x13\xc4\x03sip\x04conf\x04test\x00", origin),
            NO_CUT,
            "SRV is never compressed"
        );
        assert_eq!(
            cut_for(5, b"\x04conf\xc0\x00", origin),
            NO_CUT,
            "a pointer is not a plain name"
        );
    }
}
