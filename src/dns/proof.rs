//! Denial of existence in answers (RFC 4035 §3.1.3, RFC 5155 §7.2): which NSEC or NSEC3
//! records, already made and signed when the zone changed, prove what an answer says is
//! not there. Found with lookups and one SHA-1 per name hashed, on the stack: nothing is
//! allocated and nothing is signed.

use super::node::{NO_CUT, Node, Signatures};
use super::signed::{Chain, Entry, Hash, canonical_cmp};
use super::snapshot::{MAX_KEY, ZoneSnap};
use super::wire::{Full, Owner, Response};
use crate::dnssec::denial::{self, LABEL_LEN};
use crate::dnssec::types;

/// Records a proof needs at most: three NSEC3 (RFC 5155 §7.2.2), twice over for a CNAME
/// chain that met a wildcard.
const MAX_ITEMS: usize = 8;

#[derive(Clone, Copy)]
enum Item<'z> {
    Nsec3(&'z Hash, &'z Entry),
    Nsec(&'z Node),
}

/// The denial records an answer carries in its authority section.
pub struct Proofs<'z> {
    items: [Option<Item<'z>>; MAX_ITEMS],
    len: usize,
}

impl<'z> Proofs<'z> {
    pub fn new() -> Self {
        Self {
            items: [None; MAX_ITEMS],
            len: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, item: Item<'z>) {
        let same = |a: &Item<'_>| match (a, &item) {
            (Item::Nsec3(x, _), Item::Nsec3(y, _)) => x == y,
            (Item::Nsec(x), Item::Nsec(y)) => std::ptr::eq(x.key(), y.key()),
            _ => false,
        };
        if self.len < MAX_ITEMS && !self.items[..self.len].iter().flatten().any(same) {
            self.items[self.len] = Some(item);
            self.len += 1;
        }
    }

    /// `key` does not exist; `ce` is the length of its closest encloser's key: the encloser
    /// exists, the next closer name does not, nor does a wildcard at the encloser.
    pub fn nxdomain(&mut self, zone: &'z ZoneSnap, key: &[u8], ce: usize) {
        let mut wild = [0u8; MAX_KEY + 2];
        let wildcard = wildcard_key(&key[..ce], &mut wild);
        match chain(zone) {
            Some(Chain::Nsec3(_)) => {
                self.nsec3_match(zone, &key[..ce]);
                self.nsec3_cover(zone, next_closer(key, ce));
                self.nsec3_cover(zone, wildcard);
            }
            Some(Chain::Nsec(_)) => {
                self.nsec_cover(zone, key);
                self.nsec_cover(zone, wildcard);
            }
            None => {}
        }
    }

    /// `key` exists without the type asked for (an empty non-terminal too).
    pub fn nodata(&mut self, zone: &'z ZoneSnap, key: &[u8]) {
        match chain(zone) {
            Some(Chain::Nsec3(_)) => self.nsec3_match(zone, key),
            Some(Chain::Nsec(_)) => match zone.node(key).filter(|n| n.rrset(types::NSEC).is_some()) {
                Some(n) => self.push(Item::Nsec(n)),
                None => self.nsec_cover(zone, key), // an empty non-terminal: the NSEC before it
            },
            None => {}
        }
    }

    /// A wildcard at the closest encloser (length `ce`) answered for `key`: no closer name
    /// exists (RFC 5155 §7.2.6, RFC 4035 §3.1.3.3).
    pub fn wildcard(&mut self, zone: &'z ZoneSnap, key: &[u8], ce: usize) {
        match chain(zone) {
            Some(Chain::Nsec3(_)) => self.nsec3_cover(zone, next_closer(key, ce)),
            Some(Chain::Nsec(_)) => self.nsec_cover(zone, key),
            None => {}
        }
    }

    /// The wildcard at the closest encloser exists without the type asked for (RFC 5155
    /// §7.2.5, RFC 4035 §3.1.3.4).
    pub fn wildcard_nodata(&mut self, zone: &'z ZoneSnap, key: &[u8], ce: usize) {
        let mut wild = [0u8; MAX_KEY + 2];
        let wildcard = wildcard_key(&key[..ce], &mut wild);
        match chain(zone) {
            Some(Chain::Nsec3(_)) => {
                self.nsec3_match(zone, &key[..ce]);
                self.nsec3_cover(zone, next_closer(key, ce));
                self.nsec3_match(zone, wildcard);
            }
            Some(Chain::Nsec(_)) => {
                self.nsec_cover(zone, key);
                self.nodata(zone, wildcard);
            }
            None => {}
        }
    }

    /// A delegation without DS: its own record says NS and no DS (RFC 4035 §3.1.4).
    pub fn insecure(&mut self, zone: &'z ZoneSnap, cut: &[u8]) {
        self.nodata(zone, cut);
    }

    fn nsec3_match(&mut self, zone: &'z ZoneSnap, key: &[u8]) {
        let Some(Chain::Nsec3(c)) = chain(zone) else { return };
        let h = hash(key);
        if let Some((k, e)) = c.floor(&h).filter(|(k, _)| **k == h) {
            self.push(Item::Nsec3(k, e));
        }
    }

    fn nsec3_cover(&mut self, zone: &'z ZoneSnap, key: &[u8]) {
        let Some(Chain::Nsec3(c)) = chain(zone) else { return };
        if let Some((k, e)) = c.covering(&hash(key)) {
            self.push(Item::Nsec3(k, e));
        }
    }

    /// The NSEC whose owner comes before `key` in canonical order (the last wraps around).
    fn nsec_cover(&mut self, zone: &'z ZoneSnap, key: &[u8]) {
        let Some(Chain::Nsec(c)) = chain(zone) else { return };
        let found = c
            .last_where(|k| canonical_cmp(&k.0, key) != std::cmp::Ordering::Greater)
            .or_else(|| c.last());
        if let Some(n) = found.and_then(|(k, _)| zone.node(&k.0)) {
            self.push(Item::Nsec(n));
        }
    }

    /// Writes the records and their signatures into the current section.
    pub fn write(&self, r: &mut Response<'_>, zone: &ZoneSnap) -> Result<(), Full> {
        for item in self.items[..self.len].iter().flatten() {
            match *item {
                Item::Nsec3(h, e) => {
                    let mut label = [0u8; 1 + LABEL_LEN];
                    label[0] = LABEL_LEN as u8;
                    label[1..].copy_from_slice(&denial::label(h));
                    let at = r.record_below_apex(&label, types::NSEC3, zone.neg_ttl, e.rdata())?;
                    for sig in Signatures(e.sigs()) {
                        r.record(Owner(at as u16), types::RRSIG, zone.neg_ttl, NO_CUT, sig)?;
                    }
                }
                Item::Nsec(node) => {
                    let Some(set) = node.rrset(types::NSEC) else { continue };
                    let mut buf = [0u8; MAX_KEY];
                    let labels = labels_below(node.key(), zone.key.len(), &mut buf);
                    let mut at = None;
                    for rd in set.records() {
                        let o = r.record_below_apex(labels, types::NSEC, set.ttl, rd.wire)?;
                        at.get_or_insert(o);
                    }
                    let Some(at) = at else { continue };
                    for sig in set.signatures() {
                        r.record(Owner(at as u16), types::RRSIG, set.ttl, NO_CUT, sig)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Default for Proofs<'_> {
    fn default() -> Self {
        Self::new()
    }
}

fn chain(zone: &ZoneSnap) -> Option<&Chain> {
    zone.signed.as_ref().map(|s| &s.chain)
}

/// The key of the next closer name: the closest encloser and one label more of `key`.
fn next_closer(key: &[u8], ce: usize) -> &[u8] {
    match key.get(ce) {
        Some(&len) => &key[..(ce + 1 + len as usize).min(key.len())],
        None => key,
    }
}

/// The key of `*` below the name keyed `parent`, in `buf`.
fn wildcard_key<'b>(parent: &[u8], buf: &'b mut [u8; MAX_KEY + 2]) -> &'b [u8] {
    let n = parent.len();
    buf[..n].copy_from_slice(parent);
    buf[n] = 1;
    buf[n + 1] = b'*';
    &buf[..n + 2]
}

/// The NSEC3 hash of the name keyed `key` (lowercase already).
fn hash(key: &[u8]) -> Hash {
    let mut wire = [0u8; MAX_KEY + 1];
    let len = wire_of(key, &mut wire);
    denial::hash(&wire[..len])
}

/// The wire form of the name keyed `key` into `out`; its length.
fn wire_of(key: &[u8], out: &mut [u8; MAX_KEY + 1]) -> usize {
    let mut buf = [0u8; MAX_KEY];
    let labels = labels_below(key, 0, &mut buf);
    out[..labels.len()].copy_from_slice(labels);
    out[labels.len()] = 0;
    labels.len() + 1
}

/// The labels of the name keyed `key` that lie below the first `apex` octets of the key, in
/// wire order (most specific first), without the root.
fn labels_below<'b>(key: &[u8], apex: usize, buf: &'b mut [u8; MAX_KEY]) -> &'b [u8] {
    let rest = key.get(apex..).unwrap_or_default();
    let mut starts = [0u8; 128];
    let (mut at, mut n) = (0usize, 0usize);
    while at < rest.len() && n < starts.len() {
        starts[n] = at as u8;
        n += 1;
        at += 1 + rest[at] as usize;
    }
    let mut len = 0;
    for &s in starts[..n].iter().rev() {
        let s = s as usize;
        let label = &rest[s..(s + 1 + rest[s] as usize).min(rest.len())];
        if len + label.len() > MAX_KEY {
            break;
        }
        buf[len..len + label.len()].copy_from_slice(label);
        len += label.len();
    }
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_below_the_apex_come_out_in_wire_order() {
        let key = b"\x04test\x01t\x01b\x01a";
        let mut buf = [0u8; MAX_KEY];
        assert_eq!(labels_below(key, 7, &mut buf), b"\x01a\x01b");
        assert_eq!(labels_below(key, key.len(), &mut buf), b"");
        let mut wire = [0u8; MAX_KEY + 1];
        let n = wire_of(key, &mut wire);
        assert_eq!(&wire[..n], b"\x01a\x01b\x01t\x04test\x00");
        assert_eq!(next_closer(key, 7), b"\x04test\x01t\x01b");
        let mut w = [0u8; MAX_KEY + 2];
        assert_eq!(wildcard_key(b"\x04test", &mut w), b"\x04test\x01*");
    }
}
