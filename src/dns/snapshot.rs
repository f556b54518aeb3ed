//! Immutable per-zone snapshots, shared with the query path and replaced atomically.
//!
//! Names are keyed by their labels in reverse order, lowercased and length-prefixed
//! (`www.example.com` → `\3com\7example\3www`): a zone's apex key is a prefix of every key in
//! the zone and a node's ancestors are its prefixes at label boundaries, so closest-encloser,
//! wildcard and delegation checks are a few ordered-set lookups on slices of one stack buffer.
//! Each name is one `Node` (its RRsets in wire form, `node`), held in a persistent hash trie
//! (`trie`), so an edit clones only the path to the changed node: an edit in a
//! million-record zone costs what it costs in a small one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder, Restrict};
use uuid::Uuid;

use super::node::{Draft, DraftRecord, Node, NodeWriter, cut_for};
use super::signed::{Chain, Entry, Keys, Signed};
use super::signer::{self, Clock, Touched};
use super::trie::Trie;
use crate::dnssec::Policy;
use crate::domain::{DnssecKey, Record as Row, Zone, ZoneDnssec};
use crate::seal::Sealer;
use crate::store::{Change, SignedDelta};

/// Longest possible key: a name is at most 255 octets on the wire.
pub const MAX_KEY: usize = 255;

/// A name's lookup key in a stack buffer, with the length of the key of each of its
/// ancestors.
pub struct Key {
    buf: [u8; MAX_KEY],
    len: usize,
    /// `cuts[k]` is the length of the key of the name without its `k` leftmost labels:
    /// `cuts[0]` is the whole key, and the ancestors follow, longest first.
    cuts: [u8; 128],
    labels: usize,
}

impl Default for Key {
    fn default() -> Self {
        Self {
            buf: [0; MAX_KEY],
            len: 0,
            cuts: [0; 128],
            labels: 0,
        }
    }
}

impl Key {
    /// Lowercases the whole key, eight octets at a time. Length octets are below 64, so
    /// only letters change.
    fn lowercase(&mut self) {
        for chunk in self.buf[..self.len.next_multiple_of(8).min(MAX_KEY - MAX_KEY % 8)].chunks_exact_mut(8) {
            let x = u64::from_ne_bytes(chunk.try_into().expect("8 octets"));
            chunk.copy_from_slice(&lower8(x).to_ne_bytes());
        }
        for b in &mut self.buf[MAX_KEY - MAX_KEY % 8..self.len.max(MAX_KEY - MAX_KEY % 8)] {
            b.make_ascii_lowercase();
        }
    }

    pub fn from_name(name: &Name) -> Self {
        let mut wire = Vec::with_capacity(name.len() + 1);
        for label in name.iter() {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        Self::from_wire(&wire).unwrap_or_default() // a parsed name is always a key
    }

    /// The key of an uncompressed wire name; `None` when `wire` is not one that ends where
    /// the slice does.
    pub fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut key = Self::default();
        (key.read(wire, 0)? == wire.len()).then_some(key)
    }

    /// Makes this the key of an uncompressed wire name (labels, then the root); `false`, and
    /// the key unusable, when `wire` is not one that ends where the slice does. Reuses the
    /// buffer: the hot path fills one key per thread.
    pub fn set_wire(&mut self, wire: &[u8]) -> bool {
        self.read(wire, 0) == Some(wire.len())
    }

    /// Reads the uncompressed name at `at` in `msg` into this key; the offset just past its
    /// root label, or `None` (and the key unusable) when there is no such name there.
    /// Two passes over the labels, none over the octets but the copy: the first finds the
    /// end (and so each label's place in the reversed key), the second copies.
    pub fn read(&mut self, msg: &[u8], at: usize) -> Option<usize> {
        let mut end = at;
        let mut labels = 0;
        loop {
            let len = *msg.get(end)? as usize;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None; // a pointer, or a label type nobody uses
            }
            end += 1 + len;
            labels += 1;
        }
        let total = end - at;
        if total > MAX_KEY || labels > self.cuts.len() || msg.len() <= end {
            return None;
        }
        let (mut o, mut k) = (at, 0);
        while o < end {
            let len = 1 + msg[o] as usize;
            let place = total - (o - at) - len;
            self.buf[place..place + len].copy_from_slice(&msg[o..o + len]);
            self.cuts[k] = (total - (o - at)) as u8;
            o += len;
            k += 1;
        }
        self.len = total;
        self.labels = labels;
        self.lowercase();
        Some(end + 1)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Keys of the name and its ancestors, longest first.
    fn prefixes(&self) -> impl Iterator<Item = &[u8]> {
        self.cuts[..self.labels].iter().map(move |&c| &self.buf[..c as usize])
    }

    /// Keys of the ancestors strictly below `apex_len`, shortest first, and the name itself.
    fn below(&self, apex_len: usize) -> impl Iterator<Item = &[u8]> {
        self.cuts[..self.labels]
            .iter()
            .rev()
            .map(move |&c| &self.buf[..c as usize])
            .filter(move |k| k.len() > apex_len)
    }
}

/// ASCII letters of eight octets made lowercase, other octets untouched (SWAR).
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = x & (0x7F * ONES);
    let above_z = low7 + (0x25 * ONES); // high bit set where the octet is above 'Z'
    let from_a = low7 + (0x3F * ONES); // high bit set where the octet is 'A' or above
    let upper = from_a & !above_z & !x & (0x80 * ONES);
    x | (upper >> 2)
}

pub fn key_of(name: &Name) -> Box<[u8]> {
    Key::from_name(name).as_bytes().into()
}

/// The wire form of a name from its key (lowercase): labels from the key's end.
pub fn wire_of_key(key: &[u8], out: &mut Vec<u8>) {
    let mut starts = [0u8; 128];
    let (mut at, mut n) = (0usize, 0usize);
    while at < key.len() && n < starts.len() {
        starts[n] = at as u8;
        n += 1;
        at += 1 + key[at] as usize;
    }
    for &s in starts[..n].iter().rev() {
        let s = s as usize;
        out.extend_from_slice(&key[s..s + 1 + key[s] as usize]);
    }
    out.push(0);
}

#[derive(Clone)]
pub struct ZoneSnap {
    pub id: Uuid,
    pub origin: Name,
    /// The apex name in wire form, lowercase.
    pub origin_wire: Box<[u8]>,
    pub key: Box<[u8]>,
    pub serial: u32,
    /// The SOA's RDATA in wire form (names uncompressed).
    pub soa_rdata: Box<[u8]>,
    /// The SOA's TTL as answered for an SOA query.
    pub soa_ttl: u32,
    /// The SOA's TTL in negative answers: min(SOA TTL, MINIMUM) per RFC 2308 §3.
    pub neg_ttl: u32,
    pub nodes: Trie,
    /// NS RRsets below the apex: when zero, the delegation walk is skipped.
    pub delegations: usize,
    /// The catalog zone (RFC 9432): transferred, never looked up (but its SOA).
    pub catalog: bool,
    /// Signing as the zone's row has it (`None`: unsigned).
    pub dnssec: Option<ZoneDnssec>,
    /// The zone's keys, opened (none while unsigned).
    pub keys: Arc<Keys>,
    /// What the signed zone holds beyond its nodes; `None` while unsigned.
    pub signed: Option<Signed>,
}

impl ZoneSnap {
    fn new(zone: &Zone) -> Self {
        let origin = zone.name.to_hickory();
        let mut origin_wire = Vec::with_capacity(zone.name.as_str().len() + 2);
        let key = key_of(&origin);
        wire_of_key(&key, &mut origin_wire);
        let mut s = Self {
            id: zone.id,
            key,
            origin,
            origin_wire: origin_wire.into(),
            serial: 0,
            soa_rdata: Box::default(),
            soa_ttl: 0,
            neg_ttl: 0,
            nodes: Trie::default(),
            delegations: 0,
            catalog: zone.catalog,
            dnssec: None,
            keys: Arc::default(),
            signed: None,
        };
        s.set_zone(zone);
        s
    }

    fn set_zone(&mut self, zone: &Zone) {
        let name = |s: &str| Name::from_ascii(s).unwrap_or_else(|_| Name::root());
        let soa = SOA::new(
            name(&zone.soa.mname),
            name(&zone.soa.rname),
            zone.serial,
            zone.soa.refresh as i32,
            zone.soa.retry as i32,
            zone.soa.expire as i32,
            zone.soa.minimum,
        );
        self.serial = zone.serial;
        self.dnssec = zone.dnssec.clone();
        self.soa_rdata = canonical(&RData::SOA(soa)).unwrap_or_default().into();
        self.soa_ttl = zone.soa.ttl;
        self.neg_ttl = zone.soa.ttl.min(zone.soa.minimum);
    }

    /// The SOA record, as transfers and NOTIFY send it.
    pub fn soa_record(&self) -> Record {
        let rdata = decode(RecordType::SOA, &self.soa_rdata).expect("the SOA we encoded decodes");
        Record::from_rdata(self.origin.clone(), self.soa_ttl, rdata)
    }

    /// Iterates the keys of the name's ancestors strictly below the apex, then the name.
    pub(crate) fn path<'k>(&self, key: &'k Key) -> impl Iterator<Item = &'k [u8]> {
        key.below(self.key.len())
    }

    pub fn node(&self, key: &[u8]) -> Option<&Node> {
        self.nodes.get(key)
    }

    /// Every record of the zone but the SOA, as hickory records (zone transfers): in a
    /// signed zone with their RRSIGs, the NSEC or NSEC3 records and the SOA's RRSIGs.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let nodes = self.nodes.iter().flat_map(move |node| {
            let mut owner = Vec::with_capacity(node.key().len() + 1);
            wire_of_key(node.key(), &mut owner);
            let name = Name::read(&mut BinDecoder::new(&owner)).unwrap_or_else(|_| Name::root());
            node.rrsets()
                .flat_map(|set| {
                    let records = set.records().map(move |r| (set.rtype, set.ttl, r.wire));
                    let sigs = set
                        .signatures()
                        .map(move |s| (u16::from(RecordType::RRSIG), set.ttl, s));
                    records.chain(sigs)
                })
                .filter_map(|(rtype, ttl, wire)| {
                    decode(RecordType::from(rtype), wire).map(|d| Record::from_rdata(name.clone(), ttl, d))
                })
                .collect::<Vec<_>>()
        });
        nodes.chain(self.denial_records())
    }

    /// The NSEC3 chain's records and the SOA's RRSIGs (none for an unsigned zone).
    fn denial_records(&self) -> Vec<Record> {
        let Some(signed) = &self.signed else { return Vec::new() };
        let mut out = Vec::new();
        let rrsig = |owner: &Name, ttl: u32, sig: &[u8]| {
            decode(RecordType::RRSIG, sig).map(|d| Record::from_rdata(owner.clone(), ttl, d))
        };
        if let Chain::Nsec3(chain) = &signed.chain {
            for (h, e) in chain.iter() {
                let wire = signer::nsec3_owner(self, h);
                let Ok(owner) = Name::read(&mut BinDecoder::new(&wire)) else {
                    continue;
                };
                out.extend(
                    decode(RecordType::NSEC3, e.rdata()).map(|d| Record::from_rdata(owner.clone(), self.neg_ttl, d)),
                );
                out.extend(super::node::Signatures(e.sigs()).filter_map(|s| rrsig(&owner, self.neg_ttl, s)));
            }
        }
        out.extend(super::node::Signatures(&signed.soa_sigs).filter_map(|s| rrsig(&self.origin, self.soa_ttl, s)));
        out
    }

    /// A stored row as the node key, type and record it becomes; a row that does not decode
    /// is skipped (and logged) rather than taking the zone down.
    fn prepare(&self, row: &Row) -> Option<(Vec<u8>, u16, DraftRecord)> {
        let mut key = Vec::with_capacity(row.name.as_str().len() + 1);
        push_key_of_text(row.name.as_str(), &mut key);
        let rtype = u16::from(row.rtype);
        let Some(wire) = plain_rdata(row.rtype, &row.rdata) else {
            tracing::error!(record = %row.id, "stored record does not decode; not served");
            return None;
        };
        let cut = cut_for(rtype, &wire, &self.origin_wire);
        Some((
            key,
            rtype,
            DraftRecord {
                ttl: row.ttl,
                cut,
                wire: wire.into_owned().into(),
            },
        ))
    }
}

/// A zone being edited by one committed batch: the nodes it touches are taken apart once,
/// edited as drafts and built once when the batch is done, so a batch of many records at one
/// name costs what they are, not their square.
struct Editor {
    snap: ZoneSnap,
    drafts: HashMap<Vec<u8>, Draft>,
}

impl Editor {
    fn new(snap: ZoneSnap) -> Self {
        Self {
            snap,
            drafts: HashMap::new(),
        }
    }

    fn draft(&mut self, key: &[u8]) -> &mut Draft {
        let nodes = &self.snap.nodes;
        self.drafts
            .entry(key.to_vec())
            .or_insert_with(|| nodes.get(key).map(Draft::of).unwrap_or_else(|| Draft::new(key)))
    }

    fn insert(&mut self, row: &Row) {
        let Some((key, rtype, record)) = self.snap.prepare(row) else {
            return;
        };
        let apex = self.snap.key.len();
        let node = self.draft(&key);
        let existed = !node.is_empty();
        let had_ns = node.has(RecordType::NS);
        if !node.add(rtype, record) {
            return; // the same data: at most its TTL changed
        }
        if !had_ns && node.has(RecordType::NS) && key.len() > apex {
            self.snap.delegations += 1;
        }
        if !existed {
            self.link_parents(&key, 1);
        }
    }

    fn remove(&mut self, row: &Row) {
        let Some((key, rtype, record)) = self.snap.prepare(row) else {
            return;
        };
        let apex = self.snap.key.len();
        let node = self.draft(&key);
        let had_ns = node.has(RecordType::NS);
        if !node.remove(rtype, &record.wire) {
            return;
        }
        let (lost_ns, gone) = (had_ns && !node.has(RecordType::NS), node.is_empty());
        if lost_ns && key.len() > apex {
            self.snap.delegations -= 1;
        }
        if gone {
            self.link_parents(&key, -1);
        }
    }

    /// A node appeared (+1) or vanished (-1): adjust its ancestors' child counts up to the
    /// apex, creating or dropping empty non-terminals on the way.
    fn link_parents(&mut self, key: &[u8], delta: i32) {
        let apex = self.snap.key.len();
        let mut child = key;
        while child.len() > apex {
            let parent_len = parent_len(child);
            let node = self.draft(&child[..parent_len]);
            let was_empty = node.is_empty();
            node.children = node.children.saturating_add_signed(delta);
            // Stop once the parent's own existence did not change.
            if was_empty == node.is_empty() || parent_len <= apex {
                break;
            }
            child = &key[..parent_len];
        }
    }

    /// The edited snapshot: every touched node built once (or gone, when empty).
    fn finish(mut self) -> ZoneSnap {
        for (key, draft) in self.drafts {
            if draft.is_empty() {
                self.snap.nodes.remove(&key);
            } else {
                self.snap.nodes.insert(draft.build());
            }
        }
        self.snap
    }
}

/// Length of the key of the parent of the name keyed by `key`.
pub(crate) fn parent_len(key: &[u8]) -> usize {
    let mut i = 0;
    let mut last = 0;
    while i < key.len() {
        last = i;
        i += 1 + key[i] as usize;
    }
    last
}

/// A stored row as a hickory record (IXFR sends journal rows); a row that does not decode
/// is skipped (and logged).
pub fn to_record(row: &Row) -> Option<Record> {
    let decoded = decode(row.rtype, &row.rdata).map(|d| Record::from_rdata(row.name.to_hickory(), row.ttl, d));
    if decoded.is_none() {
        tracing::error!(record = %row.id, "stored record does not decode; not sent");
    }
    decoded
}

/// Records in wire form, one after the other, uncompressed (the journal's signed records);
/// `None` when they do not read to the end.
pub fn wire_records(mut stream: &[u8]) -> Option<Vec<Record>> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let mut dec = BinDecoder::new(stream);
        let name = Name::read(&mut dec).ok()?;
        let at = dec.index();
        let head = stream.get(at..at + 10)?;
        let rtype = RecordType::from(u16::from_be_bytes([head[0], head[1]]));
        let ttl = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let len = u16::from_be_bytes([head[8], head[9]]) as usize;
        let rdata = stream.get(at + 10..at + 10 + len)?;
        out.push(Record::from_rdata(name, ttl, decode(rtype, rdata)?));
        stream = &stream[at + 10 + len..];
    }
    Some(out)
}

fn decode(rtype: RecordType, wire: &[u8]) -> Option<RData> {
    let mut dec = BinDecoder::new(wire);
    RData::read(&mut dec, rtype, Restrict::new(wire.len() as u16)).ok()
}

/// RDATA in the DNSSEC canonical form: no compression pointers.
fn canonical(rdata: &RData) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    let mut enc = BinEncoder::new(&mut out);
    enc.set_canonical_form(true);
    rdata.emit(&mut enc).ok()?;
    Some(out)
}

/// The RDATA as answers copy it: names uncompressed. Stored RDATA of the usual types already
/// is; anything else that may hold a name goes through hickory once, at build time.
fn plain_rdata(rtype: RecordType, rdata: &[u8]) -> Option<Cow<'_, [u8]>> {
    let name_at = match rtype {
        RecordType::NS | RecordType::CNAME | RecordType::PTR => 0,
        RecordType::MX => 2,
        RecordType::SRV => 6,
        RecordType::A | RecordType::AAAA | RecordType::TXT | RecordType::CAA | RecordType::DS => {
            return Some(Cow::Borrowed(rdata));
        }
        _ => return canonical(&decode(rtype, rdata)?).map(Cow::Owned),
    };
    let mut at = name_at;
    loop {
        match *rdata.get(at)? {
            0 if at + 1 == rdata.len() => return Some(Cow::Borrowed(rdata)),
            0 => return None,
            len if len > 63 => return canonical(&decode(rtype, rdata)?).map(Cow::Owned),
            len => at += 1 + len as usize,
        }
    }
}

type Map<K, V> = imbl::GenericHashMap<K, V, foldhash::fast::RandomState, imbl::shared_ptr::DefaultSharedPtr>;

/// Every served zone, found by the longest zone key that prefixes the query's key.
#[derive(Clone, Default)]
pub struct ZoneMap {
    by_key: Map<Box<[u8]>, Arc<ZoneSnap>>,
    by_id: Map<Uuid, Box<[u8]>>,
}

impl ZoneMap {
    pub fn find(&self, key: &Key) -> Option<&Arc<ZoneSnap>> {
        key.prefixes().find_map(|k| self.by_key.get(k))
    }

    /// The zone that answers a query of `qtype` for `key`: the closest enclosing zone, but
    /// for DS at the apex of a zone whose parent zone is served here too and delegates to it,
    /// the parent (DS belongs to the parent side: RFC 4035 §3.1.4.1).
    pub fn find_for(&self, key: &Key, qtype: u16) -> Option<&Arc<ZoneSnap>> {
        let zone = self.find(key)?;
        if qtype != crate::dnssec::types::DS || zone.key.len() != key.as_bytes().len() {
            return Some(zone);
        }
        let parent = key
            .prefixes()
            .filter(|k| k.len() < zone.key.len())
            .find_map(|k| self.by_key.get(k))
            .filter(|p| {
                p.node(key.as_bytes())
                    .is_some_and(|n| n.rrset(crate::dnssec::types::NS).is_some())
            });
        Some(parent.unwrap_or(zone))
    }

    pub fn by_id(&self, id: Uuid) -> Option<&Arc<ZoneSnap>> {
        self.by_id.get(&id).and_then(|k| self.by_key.get(k))
    }

    /// Every zone, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ZoneSnap>> {
        self.by_key.values()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Every zone, in no particular order.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneSnap>> {
        self.by_key.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// What the query path reads. Only the store's writer thread changes it.
#[derive(Default)]
pub struct Zones {
    zones: ArcSwap<ZoneMap>,
    /// Opens the keys of signed zones.
    sealer: Option<Arc<Sealer>>,
    policy: Policy,
}

/// A zone as the store holds it: its records, built, and when it is signed, its keys and
/// what signing derived (`store`'s `SIGNED` rows, by row key).
pub struct Stored {
    pub snap: ZoneSnap,
    pub keys: Vec<DnssecKey>,
    pub signed: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Zones {
    /// Snapshots whose signed zones are signed with keys opened by `sealer`, under `policy`.
    pub fn new(sealer: Option<Arc<Sealer>>, policy: Policy) -> Self {
        Self {
            zones: ArcSwap::default(),
            sealer,
            policy,
        }
    }

    pub fn load(&self) -> Arc<ZoneMap> {
        self.zones.load_full()
    }

    /// The current map without taking a reference count: for the hot path, which holds it
    /// only while it answers.
    pub fn guard(&self) -> arc_swap::Guard<Arc<ZoneMap>> {
        self.zones.load()
    }

    /// Applies a committed batch and publishes it at once (tests, benches); see `stage`.
    pub fn apply(&self, changes: &[Change]) {
        match self.stage(changes) {
            Ok((map, _)) => self.publish(map),
            Err(e) => tracing::error!(error = %e, "changes not applied"),
        }
    }

    /// Makes the snapshots a batch leads to, without publishing them: each touched zone is
    /// copied once (cheaply: persistent maps), edited, and signed when it is signed. Returns
    /// the new map and what signing derived; an `Err` (a key that does not open) means the
    /// batch must not commit.
    pub fn stage(&self, changes: &[Change]) -> Result<(ZoneMap, Vec<SignedDelta>), String> {
        let before = self.zones.load_full();
        let mut map = (*before).clone();
        let mut touched: HashMap<Uuid, (Editor, Touched)> = HashMap::new();
        // Zones this batch creates are built as start-up builds them (packed, sorted once)
        // for as long as records are only added to them: an import of a million records
        // would otherwise be a million edits, each name drafted on its own.
        let mut fresh: HashMap<Uuid, ZoneBuilder> = HashMap::new();
        let mut removed = Vec::new();
        fn editor<'m>(
            touched: &'m mut HashMap<Uuid, (Editor, Touched)>,
            fresh: &mut HashMap<Uuid, ZoneBuilder>,
            map: &ZoneMap,
            id: Uuid,
        ) -> Option<&'m mut (Editor, Touched)> {
            if let std::collections::hash_map::Entry::Vacant(e) = touched.entry(id) {
                match fresh.remove(&id) {
                    Some(built) => {
                        e.insert((Editor::new(built.finish()), Touched::everything()));
                    }
                    None => {
                        let current = map.by_id(id)?;
                        e.insert((Editor::new((**current).clone()), Touched::default()));
                    }
                }
            }
            touched.get_mut(&id)
        }
        for change in changes {
            match change {
                Change::ZonePut(zone) if map.by_id(zone.id).is_none() && !touched.contains_key(&zone.id) => {
                    match fresh.get_mut(&zone.id) {
                        Some(built) => built.snap.set_zone(zone),
                        None => {
                            fresh.insert(zone.id, ZoneBuilder::new(zone));
                        }
                    }
                }
                Change::RecordPut { old: None, new } if fresh.contains_key(&new.zone_id) => {
                    let built = fresh.get_mut(&new.zone_id).expect("checked");
                    built.add(new.name.as_str(), new.rtype, new.ttl, &new.rdata);
                }
                Change::ZonePut(zone) => match editor(&mut touched, &mut fresh, &map, zone.id) {
                    Some((e, t)) => {
                        if e.snap.serial != zone.serial {
                            t.from_serials.push(e.snap.serial);
                        }
                        e.snap.set_zone(zone);
                    }
                    None => {
                        touched.insert(zone.id, (Editor::new(ZoneSnap::new(zone)), Touched::default()));
                    }
                },
                Change::ZoneRemoved(zone) => {
                    fresh.remove(&zone.id);
                    touched.remove(&zone.id);
                    removed.push(zone.id);
                }
                Change::RecordPut { old, new } => {
                    if let Some((e, t)) = editor(&mut touched, &mut fresh, &map, new.zone_id) {
                        let apex = e.snap.key.len();
                        if let Some(old) = old {
                            e.remove(old);
                            t.name(&key_of(&old.name.to_hickory()), apex);
                        }
                        e.insert(new);
                        t.name(&key_of(&new.name.to_hickory()), apex);
                    }
                }
                Change::RecordRemoved(row) => {
                    if let Some((e, t)) = editor(&mut touched, &mut fresh, &map, row.zone_id) {
                        e.remove(row);
                        t.name(&key_of(&row.name.to_hickory()), e.snap.key.len());
                    }
                }
                Change::DnssecKeyPut(key) => {
                    if let Some((e, _)) = editor(&mut touched, &mut fresh, &map, key.zone_id) {
                        let opened = super::signed::open(key, self.sealer.as_deref())?;
                        let mut keys = e.snap.keys.0.clone();
                        keys.retain(|k| k.id != key.id);
                        keys.push(Arc::new(opened));
                        e.snap.keys = Arc::new(Keys(keys));
                    }
                }
                Change::DnssecKeyRemoved(key) => {
                    if let Some((e, _)) = editor(&mut touched, &mut fresh, &map, key.zone_id) {
                        let mut keys = e.snap.keys.0.clone();
                        keys.retain(|k| k.id != key.id);
                        e.snap.keys = Arc::new(Keys(keys));
                    }
                }
                Change::Resign { zone, names } => {
                    if let Some((_, t)) = editor(&mut touched, &mut fresh, &map, *zone) {
                        t.all |= names.is_empty();
                        t.names.extend(names.iter().cloned());
                    }
                }
                Change::TsigKeyPut(_) | Change::TsigKeyRemoved(_) => {} // the key table's
            }
        }
        for id in removed {
            if let Some(key) = map.by_id.remove(&id) {
                map.by_key.remove(&key);
            }
        }
        let clock = Clock::now(self.policy);
        let mut signed = Vec::new();
        let built = fresh
            .into_iter()
            .map(|(id, b)| (id, (Editor::new(b.finish()), Touched::everything())));
        for (id, (e, t)) in touched.into_iter().chain(built) {
            let mut s = e.finish();
            let old = before.by_id(id).map(|a| &**a);
            if let Some(delta) = signer::sign(old, &mut s, &t, &clock)? {
                signed.push(delta);
            }
            map.by_id.insert(id, s.key.clone());
            map.by_key.insert(s.key.clone(), Arc::new(s));
        }
        Ok((map, signed))
    }

    /// Makes `map` (from `stage`) the one answers come from.
    pub fn publish(&self, map: ZoneMap) {
        self.zones.store(Arc::new(map));
    }

    /// Builds every snapshot from scratch (start-up), unsigned zones only: tests, benches.
    pub fn rebuild(&self, zones: Vec<(Zone, Vec<Row>)>) {
        let stored = zones
            .into_iter()
            .map(|(zone, rows)| Stored {
                snap: build(&zone, &rows),
                keys: Vec::new(),
                signed: Vec::new(),
            })
            .collect();
        self.restore(stored);
    }

    /// Builds every snapshot from what the store holds (start-up): signed zones come back
    /// with the very signatures and chain they were served with. A key that does not open
    /// is logged; the zone is served as stored, and changes to it fail until it opens.
    pub fn restore(&self, zones: Vec<Stored>) {
        let mut map = ZoneMap::default();
        for stored in zones {
            let mut s = stored.snap;
            if s.dnssec.is_some() {
                match Keys::open(&stored.keys, self.sealer.as_deref()) {
                    Ok(keys) => s.keys = Arc::new(keys),
                    Err(e) => {
                        tracing::error!(zone = %s.origin, error = %e, "a DNSSEC key does not open; the zone is served as stored and cannot change")
                    }
                }
                restore_signed(&mut s, &stored.signed);
            }
            map.by_id.insert(s.id, s.key.clone());
            map.by_key.insert(s.key.clone(), Arc::new(s));
        }
        self.zones.store(Arc::new(map));
    }

    /// Signed zones whose stored signed data is not all it should be (missing, due, or out
    /// of step with the records, e.g. after an operator command ran without the server):
    /// each needs a repair (`Change::Resign` with no names) before it is served.
    pub fn needing_repair(&self) -> Vec<Uuid> {
        let map = self.load();
        let clock = Clock::now(self.policy);
        let mut out = Vec::new();
        for zone in map.zones() {
            if zone.dnssec.is_none() || zone.keys.zone_signers().is_empty() {
                continue;
            }
            let mut copy = (**zone).clone();
            match signer::sign(Some(zone), &mut copy, &Touched::everything(), &clock) {
                Ok(Some(delta)) if delta.rows.is_empty() => {}
                Ok(_) => out.push(zone.id),
                Err(e) => tracing::error!(zone = %zone.origin, error = %e, "cannot check the signed zone"),
            }
        }
        out
    }
}

/// Puts stored signed data back on a freshly built zone: signatures and NSEC records on
/// their nodes, the NSEC3 chain, the SOA's signatures. Rows that do not parse are logged and
/// left out (the repair at start-up signs what they held again).
fn restore_signed(s: &mut ZoneSnap, rows: &[(Vec<u8>, Vec<u8>)]) {
    let Some(state) = s.dnssec.clone() else { return };
    let mut signed = Signed::new(state.denial);
    let mut nsec3: Vec<([u8; 20], Entry)> = Vec::new();
    let mut nsec = Vec::new();
    for (key, value) in rows {
        match key.split_first() {
            Some((b'n', k)) => {
                let Some(node) = s.nodes.get(k).cloned() else { continue };
                match super::signed::attach(&node, value, s.neg_ttl) {
                    Some(n) => {
                        if n.rrset(crate::dnssec::types::NSEC).is_some() {
                            nsec.push(super::signed::Canon(k.into()));
                        }
                        s.nodes.insert(n);
                    }
                    None => {
                        tracing::error!(zone = %s.origin, "a stored signature row does not parse; it will be signed again")
                    }
                }
            }
            Some((b'h', h)) => match (<[u8; 20]>::try_from(h), Entry::from_bytes(value)) {
                (Ok(h), Some(e)) => nsec3.push((h, e)),
                _ => tracing::error!(zone = %s.origin, "a stored NSEC3 row does not parse; it will be made again"),
            },
            Some((b's', _)) => signed.soa_sigs = Arc::from(&value[..]),
            _ => tracing::error!(zone = %s.origin, "an unknown signed row; left out"),
        }
    }
    match &mut signed.chain {
        Chain::Nsec3(chain) => nsec3.into_iter().for_each(|(h, e)| {
            chain.insert(h, e);
        }),
        Chain::Nsec(chain) => nsec.into_iter().for_each(|k| {
            chain.insert(k, ());
        }),
    }
    s.signed = Some(signed);
}

/// A zone's snapshot from all its rows at once (tests, benches, fuzzing).
pub fn build(zone: &Zone, rows: &[Row]) -> ZoneSnap {
    let mut b = ZoneBuilder::new(zone);
    for r in rows {
        b.add(r.name.as_str(), r.rtype, r.ttl, &r.rdata);
    }
    b.finish()
}

/// Builds a zone's snapshot from every record at once (start-up, a million records): each
/// record is packed into one arena as it is read (its key and RDATA, a few dozen bytes, and
/// a 20-byte index entry), the entries are sorted by name and type, and each node is built
/// once, its parents counted in one pass.
pub struct ZoneBuilder {
    snap: ZoneSnap,
    arena: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Clone, Copy)]
struct Item {
    key: u32,
    wire: u32,
    ttl: u32,
    rtype: u16,
    wire_len: u16,
    key_len: u8,
    cut: u8,
}

impl ZoneBuilder {
    pub fn new(zone: &Zone) -> Self {
        Self {
            snap: ZoneSnap::new(zone),
            arena: Vec::new(),
            items: Vec::new(),
        }
    }

    fn key(&self, item: &Item) -> &[u8] {
        &self.arena[item.key as usize..item.key as usize + item.key_len as usize]
    }

    /// Adds a record; one whose RDATA does not decode is skipped (and logged) rather than
    /// taking the zone down.
    pub fn add(&mut self, name: &str, rtype: RecordType, ttl: u32, rdata: &[u8]) {
        let Some(wire) = plain_rdata(rtype, rdata) else {
            tracing::error!(%name, %rtype, "a stored record does not decode; not served");
            return;
        };
        let key_start = self.arena.len();
        push_key_of_text(name, &mut self.arena);
        let wire_start = self.arena.len();
        self.arena.extend_from_slice(&wire);
        let (Ok(key), Ok(wire_at), Ok(wire_len)) = (
            u32::try_from(key_start),
            u32::try_from(wire_start),
            u16::try_from(wire.len()),
        ) else {
            self.arena.truncate(key_start);
            tracing::error!(%name, %rtype, "a zone past 4 GiB of records; not served");
            return;
        };
        self.items.push(Item {
            key,
            wire: wire_at,
            ttl,
            rtype: u16::from(rtype),
            wire_len,
            key_len: (wire_start - key_start) as u8,
            cut: cut_for(u16::from(rtype), &wire, &self.snap.origin_wire),
        });
    }

    pub fn finish(mut self) -> ZoneSnap {
        let mut items = std::mem::take(&mut self.items);
        items.sort_by(|a, b| self.key(a).cmp(self.key(b)).then(a.rtype.cmp(&b.rtype)));
        // Children: every node counts under its parent; parents that hold no records (empty
        // non-terminals) are made here, up to the apex.
        let apex = self.snap.key.len();
        let mut counts: std::collections::BTreeMap<Vec<u8>, u32> = std::collections::BTreeMap::new();
        let exists = |key: &[u8]| {
            let first = items.partition_point(|x| self.key(x) < key);
            items.get(first).is_some_and(|x| self.key(x) == key)
        };
        let mut previous: &[u8] = &[];
        for item in &items {
            let key = self.key(item);
            if key == previous {
                continue;
            }
            previous = key;
            let mut child = key;
            while child.len() > apex {
                let parent = &child[..parent_len(child)];
                let n = counts.entry(parent.to_vec()).or_insert(0);
                *n += 1;
                if *n > 1 || exists(parent) {
                    break; // the parent exists already: its own parents were counted
                }
                child = parent;
            }
        }
        let mut counts = counts.into_iter().peekable();
        let mut nodes = Vec::new();
        let mut w = NodeWriter::default();
        let mut at = 0;
        while at < items.len() {
            let key = self.key(&items[at]);
            let end = at + items[at..].iter().take_while(|i| self.key(i) == key).count();
            while let Some((k, n)) = counts.next_if(|(k, _)| k.as_slice() < key) {
                nodes.push(ent(&k, n));
            }
            let children = counts.next_if(|(k, _)| k.as_slice() == key).map_or(0, |(_, n)| n);
            w.start(key, children);
            for item in &items[at..end] {
                let wire = &self.arena[item.wire as usize..item.wire as usize + item.wire_len as usize];
                w.record(item.rtype, item.ttl, item.cut, wire);
            }
            if key.len() > apex && items[at..end].iter().any(|i| i.rtype == u16::from(RecordType::NS)) {
                self.snap.delegations += 1;
            }
            nodes.push(w.finish());
            at = end;
        }
        nodes.extend(counts.map(|(k, n)| ent(&k, n)));
        self.snap.nodes = nodes.into_iter().collect();
        self.snap
    }
}

/// An empty non-terminal with `children` nodes below it.
fn ent(key: &[u8], children: u32) -> Node {
    let mut d = Draft::new(key);
    d.children = children;
    d.build()
}

/// Appends the key of a canonical text name (`www.example.com`, no trailing dot).
fn push_key_of_text(name: &str, out: &mut Vec<u8>) {
    for label in name.rsplit('.').filter(|l| !l.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend(label.bytes().take(63).map(|b| b.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str) -> (Zone, Vec<Row>) {
        crate::zonefile::parse(text, None).unwrap().detached_rows()
    }

    #[test]
    fn lowercasing_changes_letters_only() {
        for b in 0..=255u8 {
            let x = u64::from_ne_bytes([b; 8]);
            assert_eq!(lower8(x), u64::from_ne_bytes([b.to_ascii_lowercase(); 8]), "{b}");
        }
        let long = format!(
            "{}.{}.{}.{}.",
            "A".repeat(63),
            "B".repeat(63),
            "C".repeat(63),
            "D".repeat(61)
        );
        let k = Key::from_name(&Name::from_ascii(&long).unwrap());
        assert!(k.as_bytes().iter().all(|b| !b.is_ascii_uppercase()) && k.as_bytes().len() == 254);
    }

    #[test]
    fn wire_names_and_keys_convert_both_ways() {
        let k = Key::from_wire(b"\x03WWW\x07example\x03com\x00").unwrap();
        assert_eq!(k.as_bytes(), b"\x03com\x07example\x03www");
        let mut w = Vec::new();
        wire_of_key(k.as_bytes(), &mut w);
        assert_eq!(w, b"\x03www\x07example\x03com\x00");
        assert!(Key::from_wire(b"\x03www\x00trailing").is_none());
        assert!(Key::from_wire(b"\x03ww").is_none());
        assert_eq!(Key::from_wire(b"\x00").unwrap().as_bytes(), b"");
    }

    /// A zone made in a batch is built whole (`ZoneBuilder`); a later change to it in the
    /// same batch edits what was built. Either way it ends as the zone built at start-up
    /// from the rows that remain.
    #[test]
    fn a_zone_made_in_a_batch_is_the_zone_start_up_builds() {
        let text = "$ORIGIN f.test.\n$TTL 60\n@ IN SOA ns1.f.test. h.f.test. 1 2 3 4 60\n@ IN NS ns1\n\
                    ns1 A 192.0.2.1\nwww A 192.0.2.2\nwww AAAA 2001:db8::2\n*.w TXT \"w\"\n\
                    del NS ns.del\nns.del A 192.0.2.53\na.b.c MX 10 www\n";
        let (zone, rows) = rows_of(text);
        let listing = |zones: &Zones| {
            let mut all: Vec<String> = zones
                .load()
                .by_id(zone.id)
                .unwrap()
                .records()
                .map(|r| r.to_string())
                .collect();
            all.sort();
            all
        };
        let whole = Zones::default();
        whole.rebuild(vec![(zone.clone(), rows.clone())]);
        let made = Zones::default();
        let mut batch = vec![Change::ZonePut(Box::new(zone.clone()))];
        batch.extend(rows.iter().map(|r| Change::RecordPut {
            old: None,
            new: r.clone(),
        }));
        made.apply(&batch);
        assert_eq!(listing(&made), listing(&whole));
        assert_eq!(made.load().by_id(zone.id).unwrap().delegations, 1);

        // Made, then edited within the same batch.
        let edited = Zones::default();
        let find = |name: &str, rtype| {
            rows.iter()
                .find(|r| r.name.as_str() == name && r.rtype == rtype)
                .unwrap()
                .clone()
        };
        let (gone, kept) = (find("www.f.test", RecordType::AAAA), find("ns1.f.test", RecordType::A));
        let mut moved = kept.clone();
        moved.rdata = vec![192, 0, 2, 99];
        let mut bumped = zone.clone();
        bumped.serial = 2;
        batch.extend([
            Change::RecordRemoved(gone.clone()),
            Change::RecordPut {
                old: Some(Box::new(kept.clone())),
                new: moved.clone(),
            },
            Change::ZonePut(Box::new(bumped.clone())),
        ]);
        edited.apply(&batch);
        let remaining: Vec<Row> = rows
            .iter()
            .filter(|r| r.id != gone.id)
            .map(|r| if r.id == kept.id { moved.clone() } else { r.clone() })
            .collect();
        let expected = Zones::default();
        expected.rebuild(vec![(bumped, remaining)]);
        assert_eq!(listing(&edited), listing(&expected));
        assert!(listing(&edited).iter().any(|r| r.contains("192.0.2.99")));
        assert!(!listing(&edited).iter().any(|r| r.contains("AAAA")));
        assert_eq!(edited.load().by_id(zone.id).unwrap().serial, 2);

        // Made and removed in one batch: nothing is left of it.
        let none = Zones::default();
        batch.push(Change::ZoneRemoved(Box::new(zone.clone())));
        none.apply(&batch);
        assert!(none.load().by_id(zone.id).is_none());
    }

    #[test]
    fn one_batch_of_many_edits_at_one_name_ends_as_the_same_edits_one_by_one() {
        let (zone, rows) =
            rows_of("$ORIGIN t.test.\n$TTL 60\n@ IN SOA ns1.t.test. h.t.test. 1 2 3 4 60\n@ IN NS ns1\n");
        let zones = Zones::default();
        zones.rebuild(vec![(zone.clone(), rows)]);
        let (_, many) = rows_of(&format!(
            "$ORIGIN t.test.\n$TTL 60\n@ IN SOA ns1.t.test. h.t.test. 1 2 3 4 60\n@ IN NS ns1\n{}",
            (0..300).map(|i| format!("a.b IN TXT \"{i}\"\n")).collect::<String>()
        ));
        let many: Vec<Row> = many
            .into_iter()
            .filter(|r| r.rtype == RecordType::TXT)
            .map(|mut r| {
                r.zone_id = zone.id;
                r
            })
            .collect();
        let mut batch: Vec<Change> = many
            .iter()
            .map(|r| Change::RecordPut {
                old: None,
                new: r.clone(),
            })
            .collect();
        batch.extend(many[..299].iter().map(|r| Change::RecordRemoved(r.clone())));
        zones.apply(&batch);
        let snap = zones.load().by_id(zone.id).unwrap().clone();
        let node = snap
            .node(Key::from_name(&Name::from_ascii("a.b.t.test.").unwrap()).as_bytes())
            .unwrap();
        assert_eq!(node.rrset(16).map(|s| s.count), Some(1), "the one record left");
        let ent = snap
            .node(Key::from_name(&Name::from_ascii("b.t.test.").unwrap()).as_bytes())
            .unwrap();
        assert_eq!((ent.has_rrsets(), ent.children()), (false, 1));
        zones.apply(&[Change::RecordRemoved(many[299].clone())]);
        let snap = zones.load().by_id(zone.id).unwrap().clone();
        assert!(
            snap.node(Key::from_name(&Name::from_ascii("b.t.test.").unwrap()).as_bytes())
                .is_none(),
            "the ENT went too"
        );
    }

    #[test]
    fn a_zone_built_at_once_equals_the_same_zone_built_by_edits() {
        let (zone, rows) = rows_of(
            "$ORIGIN t.test.\n$TTL 600\n@ IN SOA ns1.t.test. h.t.test. 1 2 3 4 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n\
             x.y.z IN A 192.0.2.3\nz IN TXT hi\na.b IN A 192.0.2.4\nc.b IN A 192.0.2.5\ndel IN NS ns.del\nns.del IN A 192.0.2.6\n",
        );
        let whole = build(&zone, &rows);
        let mut e = Editor::new(ZoneSnap::new(&zone));
        for r in rows.iter().rev() {
            e.insert(r);
        }
        let edited = e.finish();
        let dump = |s: &ZoneSnap| {
            let mut v = s.nodes.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>();
            v.sort();
            v
        };
        assert_eq!(dump(&whole), dump(&edited));
        assert_eq!(whole.delegations, 1);
        assert_eq!(edited.delegations, 1);
        let y = Key::from_name(&Name::from_ascii("y.z.t.test.").unwrap());
        assert!(
            whole
                .node(y.as_bytes())
                .is_some_and(|n| !n.has_rrsets() && n.children() == 1),
            "an ENT"
        );
        // Record by record, each its own batch (as the store publishes single writes).
        let mut edited = edited;
        for r in &rows {
            let mut e = Editor::new(edited);
            e.remove(r);
            edited = e.finish();
        }
        assert!(
            edited.nodes.is_empty(),
            "every node goes with its last record: {:?}",
            dump(&edited)
        );
        assert_eq!(edited.delegations, 0);
    }
}
