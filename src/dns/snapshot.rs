//! Immutable per-zone snapshots, shared with the query path and replaced atomically.
//!
//! Names are keyed by their labels in reverse order, lowercased and length-prefixed
//! (`www.example.com` → `\3com\7example\3www`): a zone's apex key is a prefix of every key in
//! the zone and a node's ancestors are its prefixes at label boundaries, so closest-encloser,
//! wildcard and delegation checks are a few ordered-map lookups on slices of one stack buffer.
//! The maps are persistent (imbl), so an edit clones only the path to the changed node: an
//! edit in a million-record zone costs what it costs in a small one.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use uuid::Uuid;

use crate::domain::{Record as Row, Zone};
use crate::store::Change;

/// Longest possible key: a name is at most 255 octets on the wire.
pub const MAX_KEY: usize = 255;

/// A name's lookup key in a stack buffer, with the end offset of each label's prefix.
pub struct Key {
    buf: [u8; MAX_KEY],
    len: usize,
    /// `ends[i]` is the length of the key of the name's top `i + 1` labels.
    ends: [u8; 128],
    labels: usize,
}

impl Key {
    pub fn from_name(name: &Name) -> Self {
        let mut key = Self {
            buf: [0; MAX_KEY],
            len: 0,
            ends: [0; 128],
            labels: 0,
        };
        for label in name.iter().rev() {
            let n = label.len();
            if key.len + 1 + n > MAX_KEY || key.labels == 128 {
                break; // cannot happen for a parsed name
            }
            key.buf[key.len] = n as u8;
            for (dst, src) in key.buf[key.len + 1..key.len + 1 + n].iter_mut().zip(label) {
                *dst = src.to_ascii_lowercase();
            }
            key.len += 1 + n;
            key.ends[key.labels] = key.len as u8;
            key.labels += 1;
        }
        key
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Keys of the name and its ancestors, longest first.
    fn prefixes(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.labels).rev().map(move |i| &self.buf[..self.ends[i] as usize])
    }

    /// Keys of the ancestors strictly below `apex_len`, shortest first, and the name itself.
    fn below(&self, apex_len: usize) -> impl Iterator<Item = &[u8]> {
        (0..self.labels)
            .map(move |i| &self.buf[..self.ends[i] as usize])
            .filter(move |k| k.len() > apex_len)
    }
}

pub fn key_of(name: &Name) -> Box<[u8]> {
    Key::from_name(name).as_bytes().into()
}

/// Records of one type at one name, ready to emit. All share the smallest TTL of the set
/// (RFC 2181 §5.2); `ttls` keeps each record's own so removals restore the right minimum.
#[derive(Clone, Debug)]
pub struct RRset {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    ids: Vec<Uuid>,
    ttls: Vec<u32>,
}

impl RRset {
    fn normalise_ttl(&mut self) {
        let ttl = self.ttls.iter().copied().min().unwrap_or(0);
        for r in &mut self.records {
            r.ttl = ttl;
        }
    }
}

/// One owner name: its RRsets, and how many child nodes exist (a node with children and no
/// RRsets is an empty non-terminal: NODATA, not NXDOMAIN).
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub rrsets: Vec<RRset>,
    pub children: u32,
}

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

#[derive(Clone)]
pub struct ZoneSnap {
    pub id: Uuid,
    pub origin: Name,
    pub key: Box<[u8]>,
    pub serial: u32,
    /// The SOA as answered for an SOA query.
    pub soa: [Record; 1],
    /// The SOA for negative answers: TTL min(SOA TTL, MINIMUM) per RFC 2308 §3.
    pub neg_soa: [Record; 1],
    pub nodes: imbl::OrdMap<Box<[u8]>, Arc<Node>>,
    /// NS RRsets below the apex: when zero, the delegation walk is skipped.
    pub delegations: usize,
}

impl ZoneSnap {
    fn new(zone: &Zone) -> Self {
        let origin = zone.name.to_hickory();
        let (soa, neg_soa) = soa_records(zone, &origin);
        Self {
            id: zone.id,
            key: key_of(&origin),
            origin,
            serial: zone.serial,
            soa: [soa],
            neg_soa: [neg_soa],
            nodes: imbl::OrdMap::new(),
            delegations: 0,
        }
    }

    fn set_zone(&mut self, zone: &Zone) {
        let (soa, neg) = soa_records(zone, &self.origin);
        self.serial = zone.serial;
        self.soa = [soa];
        self.neg_soa = [neg];
    }

    /// Iterates the keys of the name's ancestors strictly below the apex, then the name.
    pub(crate) fn path<'k>(&self, key: &'k Key) -> impl Iterator<Item = &'k [u8]> {
        key.below(self.key.len())
    }

    pub fn node(&self, key: &[u8]) -> Option<&Arc<Node>> {
        self.nodes.get(key)
    }

    fn insert(&mut self, row: &Row) {
        let Some(record) = to_record(row) else { return };
        let key = key_of(&record.name);
        let rtype = record.record_type();
        let mut node = self.nodes.get(&key).map(|n| (**n).clone()).unwrap_or_default();
        let fresh = node.rrsets.is_empty() && node.children == 0;
        let set = match node.rrsets.iter().position(|s| s.rtype == rtype) {
            Some(i) => &mut node.rrsets[i],
            None => {
                if rtype == RecordType::NS && key.len() > self.key.len() {
                    self.delegations += 1;
                }
                node.rrsets.push(RRset {
                    rtype,
                    records: Vec::new(),
                    ids: Vec::new(),
                    ttls: Vec::new(),
                });
                node.rrsets.last_mut().expect("just pushed")
            }
        };
        set.ids.push(row.id);
        set.ttls.push(row.ttl);
        set.records.push(record);
        set.normalise_ttl();
        self.nodes.insert(key.clone(), Arc::new(node));
        if fresh {
            self.link_parents(&key, 1);
        }
    }

    fn remove(&mut self, row: &Row) {
        let key = key_of(&row.name.to_hickory());
        let Some(current) = self.nodes.get(&key) else { return };
        let mut node = (**current).clone();
        let Some(i) = node.rrsets.iter().position(|s| s.ids.contains(&row.id)) else {
            return;
        };
        let set = &mut node.rrsets[i];
        let j = set.ids.iter().position(|id| *id == row.id).expect("found above");
        set.ids.remove(j);
        set.ttls.remove(j);
        set.records.remove(j);
        if set.records.is_empty() {
            if set.rtype == RecordType::NS && key.len() > self.key.len() {
                self.delegations -= 1;
            }
            node.rrsets.remove(i);
        } else {
            set.normalise_ttl();
        }
        if node.rrsets.is_empty() && node.children == 0 {
            self.nodes.remove(&key);
            self.link_parents(&key, -1);
        } else {
            self.nodes.insert(key, Arc::new(node));
        }
    }

    /// A node appeared (+1) or vanished (-1): adjust its ancestors' child counts up to the
    /// apex, creating or dropping empty non-terminals on the way.
    fn link_parents(&mut self, key: &[u8], delta: i32) {
        let mut child = key;
        while child.len() > self.key.len() {
            let parent_len = parent_len(child);
            let parent: Box<[u8]> = child[..parent_len].into();
            let mut node = self.nodes.get(&parent).map(|n| (**n).clone()).unwrap_or_default();
            let was_empty = node.rrsets.is_empty() && node.children == 0;
            node.children = node.children.saturating_add_signed(delta);
            let now_empty = node.rrsets.is_empty() && node.children == 0;
            if now_empty {
                self.nodes.remove(&parent);
            } else {
                self.nodes.insert(parent.clone(), Arc::new(node));
            }
            // Stop once the parent's own existence did not change.
            if was_empty == now_empty || parent_len <= self.key.len() {
                break;
            }
            child = &key[..parent_len];
        }
    }
}

/// Length of the key of the parent of the name keyed by `key`.
fn parent_len(key: &[u8]) -> usize {
    let mut i = 0;
    let mut last = 0;
    while i < key.len() {
        last = i;
        i += 1 + key[i] as usize;
    }
    last
}

fn soa_records(zone: &Zone, origin: &Name) -> (Record, Record) {
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
    let pos = Record::from_rdata(origin.clone(), zone.soa.ttl, RData::SOA(soa));
    let mut neg = pos.clone();
    neg.ttl = zone.soa.ttl.min(zone.soa.minimum);
    (pos, neg)
}

/// A stored row as a ready-to-emit record; a row that does not decode is skipped (and logged)
/// rather than taking the zone down.
pub fn to_record(row: &Row) -> Option<Record> {
    let decoded = (|| {
        let rtype = row.rtype;
        let name = row.name.to_hickory();
        let mut dec = BinDecoder::new(&row.rdata);
        let rdata = RData::read(&mut dec, rtype, Restrict::new(row.rdata.len() as u16)).ok()?;
        Some(Record::from_rdata(name, row.ttl, rdata))
    })();
    if decoded.is_none() {
        tracing::error!(record = %row.id, "stored record does not decode; not served");
    }
    decoded
}

/// Every served zone, found by the longest zone key that prefixes the query's key.
#[derive(Clone, Default)]
pub struct ZoneMap {
    by_key: imbl::HashMap<Box<[u8]>, Arc<ZoneSnap>>,
    by_id: imbl::HashMap<Uuid, Box<[u8]>>,
}

impl ZoneMap {
    pub fn find(&self, key: &Key) -> Option<&Arc<ZoneSnap>> {
        key.prefixes().find_map(|k| self.by_key.get(k))
    }

    pub fn by_id(&self, id: Uuid) -> Option<&Arc<ZoneSnap>> {
        self.by_id.get(&id).and_then(|k| self.by_key.get(k))
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// What the query path reads. Only the store's writer thread changes it.
#[derive(Default)]
pub struct Zones {
    zones: ArcSwap<ZoneMap>,
}

impl Zones {
    pub fn load(&self) -> Arc<ZoneMap> {
        self.zones.load_full()
    }

    /// Applies a committed batch: each touched zone is copied once (cheaply: persistent
    /// maps), edited, and the new map is published with one atomic swap.
    pub fn apply(&self, changes: &[Change]) {
        let mut map = (**self.zones.load()).clone();
        let mut touched: HashMap<Uuid, ZoneSnap> = HashMap::new();
        let mut removed = Vec::new();
        fn snap<'m>(touched: &'m mut HashMap<Uuid, ZoneSnap>, map: &ZoneMap, id: Uuid) -> Option<&'m mut ZoneSnap> {
            if let std::collections::hash_map::Entry::Vacant(e) = touched.entry(id) {
                let current = map.by_id(id)?;
                e.insert((**current).clone());
            }
            touched.get_mut(&id)
        }
        for change in changes {
            match change {
                Change::ZonePut(zone) => match snap(&mut touched, &map, zone.id) {
                    Some(s) => s.set_zone(zone),
                    None => {
                        touched.insert(zone.id, ZoneSnap::new(zone));
                    }
                },
                Change::ZoneRemoved(zone) => {
                    touched.remove(&zone.id);
                    removed.push(zone.id);
                }
                Change::RecordPut { old, new } => {
                    if let Some(s) = snap(&mut touched, &map, new.zone_id) {
                        if let Some(old) = old {
                            s.remove(old);
                        }
                        s.insert(new);
                    }
                }
                Change::RecordRemoved(row) => {
                    if let Some(s) = snap(&mut touched, &map, row.zone_id) {
                        s.remove(row);
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
        for (id, s) in touched {
            map.by_id.insert(id, s.key.clone());
            map.by_key.insert(s.key.clone(), Arc::new(s));
        }
        self.zones.store(Arc::new(map));
    }

    /// Builds every snapshot from scratch (start-up).
    pub fn rebuild(&self, zones: Vec<(Zone, Vec<Row>)>) {
        let mut map = ZoneMap::default();
        for (zone, rows) in zones {
            let mut s = ZoneSnap::new(&zone);
            for row in &rows {
                s.insert(row);
            }
            map.by_id.insert(zone.id, s.key.clone());
            map.by_key.insert(s.key.clone(), Arc::new(s));
        }
        self.zones.store(Arc::new(map));
    }
}
