//! Signing a zone's snapshot when it changes, in the publish step of the write that changed
//! it: the RRsets the batch touched, the denial records whose coverage changed and the SOA
//! are signed again; nothing else is. A zone turned on (or whose signing key changed) is
//! signed whole. What signing changed comes back as a `SignedDelta`: the rows the store keeps
//! and the records IXFR sends with the change.
//!
//! Which RRsets are signed (RFC 4035 §2.2): every RRset of the zone's authoritative names;
//! at a delegation only DS (and NSEC); nothing below one (glue). Which names are in the chain:
//! for NSEC3 every name but those below a delegation, empty non-terminals included (no
//! opt-out, RFC 9276); for NSEC the names that hold records.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::node::{Draft, DraftRecord, NO_CUT, Node, Signatures, push_signature};
use super::ordered::Ordered;
use super::signed::{Canon, Chain, Entry, Hash, SOA_ROW, Signed, hash_row, node_blob, node_row};
use super::snapshot::{ZoneSnap, wire_of_key};
use crate::dnssec::denial::{self, bitmap, listed, nsec_rdata, nsec3_rdata};
use crate::dnssec::sign::{expiration, rrsig, signer_tag};
use crate::dnssec::{Policy, types};
use crate::domain::Denial;
use crate::store::{SignedDelta, SignedRecords};

/// Derived records a journal entry holds at most (in wire octets); a change that derives
/// more (a zone signed whole) is sent to secondaries as the whole zone.
const MAX_JOURNALED: usize = 1 << 20;

/// What changed in one zone during a batch, for the signer.
#[derive(Debug, Default)]
pub struct Touched {
    /// Lookup keys of names whose records changed (with their ancestors) or that are asked
    /// to be signed again where due.
    pub names: BTreeSet<Box<[u8]>>,
    /// Check every name (start-up repair).
    pub all: bool,
    /// The serials the batch's changes of the zone moved away from, in order.
    pub from_serials: Vec<u32>,
}

impl Touched {
    /// Every name to be looked at: a zone built whole, or checked whole at start-up.
    pub fn everything() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// A name whose records changed: it, and its ancestors below the apex (whose existence
    /// as empty non-terminals may have changed with it).
    pub fn name(&mut self, key: &[u8], apex_len: usize) {
        let mut end = key.len();
        while end > apex_len {
            self.names.insert(key[..end].into());
            end = super::snapshot::parent_len(&key[..end]);
        }
        self.names.insert(key[..apex_len.min(key.len())].into());
    }
}

/// When the signer runs and with what timers.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: u32,
    pub policy: Policy,
}

impl Clock {
    pub fn now(policy: Policy) -> Self {
        Self {
            now: crate::domain::unix_now() as u32,
            policy,
        }
    }
}

/// A name's part in the signed zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Authoritative,
    /// A zone cut: NS (unsigned), DS and NSEC signed.
    Delegation,
    /// Below a cut: glue, neither signed nor in the chain.
    Occluded,
}

fn role(zone: &ZoneSnap, key: &[u8]) -> Role {
    let apex = zone.key.len();
    if key.len() <= apex {
        return Role::Authoritative;
    }
    let mut end = apex;
    // Ancestors strictly between the apex and the name.
    while end < key.len() {
        end += 1 + key[end] as usize;
        if end >= key.len() {
            break;
        }
        if zone.node(&key[..end]).is_some_and(|n| n.rrset(types::NS).is_some()) {
            return Role::Occluded;
        }
    }
    if zone.node(key).is_some_and(|n| n.rrset(types::NS).is_some()) {
        Role::Delegation
    } else {
        Role::Authoritative
    }
}

fn signed_type(role: Role, rtype: u16) -> bool {
    match role {
        Role::Authoritative => true,
        Role::Delegation => rtype == types::DS || rtype == types::NSEC,
        Role::Occluded => false,
    }
}

/// Whether a name is in the chain, and the types its denial record lists.
fn listed_types(zone: &ZoneSnap, key: &[u8], denial: Denial) -> Option<Vec<u16>> {
    let node = zone.node(key)?;
    let role = role(zone, key);
    if role == Role::Occluded {
        return None;
    }
    let mut held: Vec<u16> = node
        .rrsets()
        .map(|s| s.rtype)
        .filter(|&t| t != types::NSEC && (role != Role::Delegation || t == types::NS || t == types::DS))
        .collect();
    if key.len() == zone.key.len() {
        held.push(types::SOA);
    }
    match denial {
        Denial::Nsec if held.is_empty() => None, // empty non-terminals have no NSEC
        Denial::Nsec => Some(listed(held.into_iter(), true, true)),
        Denial::Nsec3 => {
            let signed = match role {
                Role::Delegation => held.contains(&types::DS),
                _ => !held.is_empty(),
            };
            Some(listed(held.into_iter(), signed, false))
        }
    }
}

/// A spread value for the signature of one RRset (`Policy::window`): FNV-1a.
fn spread(owner: &[u8], rtype: u16) -> u64 {
    owner
        .iter()
        .chain(&rtype.to_be_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// The signatures of an RRset by every key that signs its type (a `Signatures` list).
fn make<'a>(
    zone: &ZoneSnap,
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdatas: impl Iterator<Item = &'a [u8]> + Clone,
    clock: &Clock,
) -> Vec<u8> {
    let window = clock.policy.window(clock.now, spread(owner, rtype));
    let mut list = Vec::new();
    for key in zone.keys.signing(rtype) {
        let sig = rrsig(
            &key.signer,
            &zone.origin_wire,
            owner,
            rtype,
            ttl,
            rdatas.clone(),
            window,
        );
        push_signature(&mut list, &sig);
    }
    list
}

/// Whether signatures are what they should be: by exactly the keys that sign `rtype`, none
/// due.
fn fresh(zone: &ZoneSnap, list: &[u8], rtype: u16, clock: &Clock) -> bool {
    if list.is_empty() {
        return false;
    }
    let mut tags: Vec<u16> = Signatures(list).map(signer_tag).collect();
    tags.sort_unstable();
    let mut wanted: Vec<u16> = zone.keys.signing(rtype).map(|k| k.signer.tag).collect();
    wanted.sort_unstable();
    tags == wanted && Signatures(list).all(|s| !clock.policy.due(expiration(s), clock.now))
}

/// The node with its RRsets signed as its role asks (fresh signatures kept unless `force`);
/// `None` when nothing changed.
fn sign_node(zone: &ZoneSnap, node: &Node, clock: &Clock, force: bool) -> Option<Node> {
    let role = role(zone, node.key());
    let mut draft: Option<Draft> = None;
    let mut owner = Vec::new();
    for set in node.rrsets() {
        if role == Role::Occluded && set.rtype == types::NSEC {
            let d = draft.get_or_insert_with(|| Draft::of(node));
            d.rrsets.retain(|s| s.0 != types::NSEC);
            d.set_signatures(types::NSEC, Vec::new());
            continue;
        }
        if !signed_type(role, set.rtype) {
            if set.is_signed() {
                draft
                    .get_or_insert_with(|| Draft::of(node))
                    .set_signatures(set.rtype, Vec::new());
            }
            continue;
        }
        if !force && fresh(zone, set.signature_list(), set.rtype, clock) {
            continue;
        }
        if owner.is_empty() {
            wire_of_key(node.key(), &mut owner);
        }
        let sigs = make(zone, &owner, set.rtype, set.ttl, set.records().map(|r| r.wire), clock);
        draft
            .get_or_insert_with(|| Draft::of(node))
            .set_signatures(set.rtype, sigs);
    }
    draft.map(|d| d.build())
}

/// Brings a zone's signed data in line with its records after a batch. `old` is the zone as
/// published before it. `None` when the zone is neither signed nor was.
pub fn sign(
    old: Option<&ZoneSnap>,
    new: &mut ZoneSnap,
    touched: &Touched,
    clock: &Clock,
) -> Result<Option<SignedDelta>, String> {
    let from_serials = touched.from_serials.clone();
    let was_signed = old.filter(|o| o.signed.is_some());
    let Some(state) = new.dnssec.clone() else {
        if was_signed.is_none() {
            return Ok(None);
        }
        unsign(new);
        return Ok(Some(SignedDelta {
            zone: new.id,
            from_serials,
            clear: true,
            rows: Vec::new(),
            records: None,
        }));
    };
    if new.keys.zone_signers().is_empty() {
        return Err(format!("{} is signed but none of its active keys opens", new.origin));
    }
    let whole = match was_signed {
        None => true,
        Some(o) => {
            o.keys.zone_signers() != new.keys.zone_signers()
                || o.signed.as_ref().map(Signed::denial) != Some(state.denial)
        }
    };
    if whole {
        return Ok(Some(whole_zone(new, state.denial, from_serials, clock)));
    }
    let old = was_signed.expect("signed before");
    Ok(Some(incremental(old, new, touched, from_serials, clock)))
}

/// Signing turned off: every signature and NSEC record goes.
fn unsign(zone: &mut ZoneSnap) {
    zone.signed = None;
    let signed: Vec<Node> = zone
        .nodes
        .iter()
        .filter(|n| n.rrsets().any(|s| s.is_signed() || s.rtype == types::NSEC))
        .cloned()
        .collect();
    for n in signed {
        let mut d = Draft::of(&n);
        d.sigs.clear();
        d.rrsets.retain(|s| s.0 != types::NSEC);
        zone.nodes.insert(d.build());
    }
}

/// Signs every RRset and builds the chain from nothing.
fn whole_zone(zone: &mut ZoneSnap, denial: Denial, from_serials: Vec<u32>, clock: &Clock) -> SignedDelta {
    unsign(zone);
    zone.signed = Some(Signed::new(denial));
    let nodes: Vec<Node> = zone.nodes.iter().cloned().collect();
    let signed = {
        let zone = &*zone;
        parallel(&nodes, |n| sign_node(zone, n, clock, true))
    };
    signed.into_iter().flatten().for_each(|n| {
        zone.nodes.insert(n);
    });
    let names: BTreeSet<Box<[u8]>> = nodes.iter().map(|n| n.key().into()).collect();
    build_chain(zone, &names, clock);
    sign_soa(zone, clock, true);
    let mut rows = Vec::new();
    for n in zone.nodes.iter() {
        if let Some(blob) = node_blob(n) {
            rows.push((node_row(n.key()), Some(blob)));
        }
    }
    if let Some(Signed {
        chain: Chain::Nsec3(chain),
        ..
    }) = &zone.signed
    {
        for (h, e) in chain.iter() {
            rows.push((hash_row(h), Some(e.bytes().to_vec())));
        }
    }
    if let Some(s) = &zone.signed {
        rows.push((SOA_ROW.to_vec(), Some(s.soa_sigs.to_vec())));
    }
    SignedDelta {
        zone: zone.id,
        from_serials,
        clear: true,
        rows,
        records: None,
    }
}

/// The chain of a zone signed whole: every listed name, in order, each record signed.
fn build_chain(zone: &mut ZoneSnap, names: &BTreeSet<Box<[u8]>>, clock: &Clock) {
    let denial = zone.signed.as_ref().map(Signed::denial).unwrap_or_default();
    match denial {
        Denial::Nsec3 => {
            let mut listed: Vec<(Hash, &[u8], Vec<u16>)> = Vec::new();
            let mut wire = Vec::new();
            for k in names {
                if let Some(t) = listed_types(zone, k, denial) {
                    wire.clear();
                    wire_of_key(k, &mut wire);
                    listed.push((denial::hash(&wire), k, t));
                }
            }
            listed.sort_by_key(|e| e.0);
            let at: Vec<usize> = (0..listed.len()).collect();
            let entries = {
                let zone = &*zone;
                parallel(&at, |&i| {
                    let (h, k, t) = &listed[i];
                    let next = &listed[(i + 1) % listed.len()].0;
                    let rdata = nsec3_rdata(next, &bitmap(t));
                    let sigs = sign_nsec3(zone, h, &rdata, clock);
                    (*h, Entry::new(k, &rdata, &sigs))
                })
            };
            let mut chain = Ordered::default();
            for (h, e) in entries {
                chain.insert(h, e);
            }
            if let Some(s) = &mut zone.signed {
                s.chain = Chain::Nsec3(chain);
            }
        }
        Denial::Nsec => {
            let mut listed: Vec<(Canon, Vec<u16>)> = names
                .iter()
                .filter_map(|k| listed_types(zone, k, denial).map(|t| (Canon(k.clone()), t)))
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            let at: Vec<usize> = (0..listed.len()).collect();
            let nodes = {
                let zone = &*zone;
                parallel(&at, |&i| {
                    let (k, t) = &listed[i];
                    with_nsec(zone, &k.0, &listed[(i + 1) % listed.len()].0.0, t, clock)
                })
            };
            nodes.into_iter().flatten().for_each(|n| {
                zone.nodes.insert(n);
            });
            let mut chain = Ordered::default();
            for (k, _) in listed {
                chain.insert(k, ());
            }
            if let Some(s) = &mut zone.signed {
                s.chain = Chain::Nsec(chain);
            }
        }
    }
}

/// `f` over `items`, in order, on as many threads as there are cores (a zone signed whole
/// is the one long job of the publish step; small ones stay on the calling thread).
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads == 1 || items.len() < 2_000 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a signing thread panicked"))
            .collect()
    })
}

/// The signatures of an NSEC3 record at the hashed owner `h`.
fn sign_nsec3(zone: &ZoneSnap, h: &Hash, rdata: &[u8], clock: &Clock) -> Vec<u8> {
    let owner = nsec3_owner(zone, h);
    make(zone, &owner, types::NSEC3, zone.neg_ttl, std::iter::once(rdata), clock)
}

/// The owner name of the NSEC3 record of hash `h` (wire form).
pub fn nsec3_owner(zone: &ZoneSnap, h: &Hash) -> Vec<u8> {
    let mut owner = Vec::with_capacity(1 + denial::LABEL_LEN + zone.origin_wire.len());
    owner.push(denial::LABEL_LEN as u8);
    owner.extend_from_slice(&denial::label(h));
    owner.extend_from_slice(&zone.origin_wire);
    owner
}

/// The node `key` with the NSEC record to `next` listing `types`, signed; `None` when it has
/// that record with fresh signatures already.
fn with_nsec(zone: &ZoneSnap, key: &[u8], next: &[u8], listed: &[u16], clock: &Clock) -> Option<Node> {
    let node = zone.node(key)?;
    let mut next_wire = Vec::new();
    wire_of_key(next, &mut next_wire);
    let rdata = nsec_rdata(&next_wire, &bitmap(listed));
    if let Some(set) = node.rrset(types::NSEC)
        && set.first().is_some_and(|r| r.wire == &rdata[..])
        && set.ttl == zone.neg_ttl
        && fresh(zone, set.signature_list(), types::NSEC, clock)
    {
        return None;
    }
    let mut owner = Vec::new();
    wire_of_key(key, &mut owner);
    let sigs = make(
        zone,
        &owner,
        types::NSEC,
        zone.neg_ttl,
        std::iter::once(&rdata[..]),
        clock,
    );
    let mut d = Draft::of(node);
    d.rrsets.retain(|s| s.0 != types::NSEC);
    let i = d.rrsets.partition_point(|s| s.0 < types::NSEC);
    let record = DraftRecord {
        ttl: zone.neg_ttl,
        cut: NO_CUT,
        wire: rdata.into(),
    };
    d.rrsets.insert(i, (types::NSEC, vec![record]));
    d.set_signatures(types::NSEC, sigs);
    Some(d.build())
}

/// `with_nsec`, put in the zone; whether anything changed.
fn set_nsec(zone: &mut ZoneSnap, key: &[u8], next: &[u8], listed: &[u16], clock: &Clock) -> bool {
    match with_nsec(zone, key, next, listed, clock) {
        Some(n) => {
            zone.nodes.insert(n);
            true
        }
        None => false,
    }
}

/// Signs the SOA (its serial changes with every batch); `false` when `force` is not set and
/// its signatures are fresh.
fn sign_soa(zone: &mut ZoneSnap, clock: &Clock, force: bool) -> bool {
    let Some(signed) = &zone.signed else { return false };
    if !force && fresh(zone, &signed.soa_sigs, types::SOA, clock) {
        return false;
    }
    let sigs = make(
        zone,
        &zone.origin_wire,
        types::SOA,
        zone.soa_ttl,
        std::iter::once(&zone.soa_rdata[..]),
        clock,
    );
    if let Some(s) = &mut zone.signed {
        s.soa_sigs = Arc::from(sigs);
    }
    true
}

/// Signs what a batch touched, mends the chain around it, and says what changed.
fn incremental(
    old: &ZoneSnap,
    zone: &mut ZoneSnap,
    touched: &Touched,
    from_serials: Vec<u32>,
    clock: &Clock,
) -> SignedDelta {
    let apex = zone.key.len();
    let mut names: BTreeSet<Box<[u8]>> = touched.names.clone();
    if touched.all {
        names.extend(zone.nodes.iter().map(|n| n.key().into()));
        names.extend(chain_owners(zone));
    }
    // A cut that came or went changes what every name below it is.
    let cuts: Vec<Box<[u8]>> = names
        .iter()
        .filter(|k| k.len() > apex)
        .filter(|k| {
            let had = old.node(k).is_some_and(|n| n.rrset(types::NS).is_some());
            let has = zone.node(k).is_some_and(|n| n.rrset(types::NS).is_some());
            had != has
        })
        .cloned()
        .collect();
    for cut in &cuts {
        for n in zone.nodes.iter() {
            if n.key().len() > cut.len() && n.key().starts_with(cut) && n.key()[cut.len()] < 64 {
                names.insert(n.key().into());
            }
        }
    }
    let mut changed: BTreeSet<Box<[u8]>> = BTreeSet::new();
    for k in &names {
        if let Some(node) = zone.node(k)
            && let Some(signed) = sign_node(zone, node, clock, false)
        {
            zone.nodes.insert(signed);
        }
        changed.insert(k.clone());
    }
    let hashes = mend_chain(zone, &names, &mut changed, clock);
    sign_soa(zone, clock, old.serial != zone.serial);
    delta(old, zone, &changed, &hashes, from_serials)
}

/// Every name the chain holds (start-up repair: entries whose name is gone go too).
fn chain_owners(zone: &ZoneSnap) -> Vec<Box<[u8]>> {
    match zone.signed.as_ref().map(|s| &s.chain) {
        Some(Chain::Nsec3(c)) => c.iter().map(|(_, e)| e.owner().into()).collect(),
        Some(Chain::Nsec(c)) => c.iter().map(|(k, _)| k.0.clone()).collect(),
        None => Vec::new(),
    }
}

/// Puts `names` in or out of the chain as they now are, and re-makes every denial record
/// whose name, next name or types changed (or whose signatures are due). Returns the NSEC3
/// hashes changed; NSEC nodes changed go into `changed`.
fn mend_chain(
    zone: &mut ZoneSnap,
    names: &BTreeSet<Box<[u8]>>,
    changed: &mut BTreeSet<Box<[u8]>>,
    clock: &Clock,
) -> BTreeSet<Hash> {
    let Some(signed) = zone.signed.clone() else {
        return BTreeSet::new();
    };
    match signed.chain {
        Chain::Nsec3(mut chain) => {
            let mut moved: Vec<Hash> = Vec::new(); // added or removed: their neighbours change
            let mut dirty: BTreeSet<Hash> = BTreeSet::new();
            let mut out: BTreeSet<Hash> = BTreeSet::new();
            let mut wire = Vec::new();
            for k in names {
                wire.clear();
                wire_of_key(k, &mut wire);
                let h = denial::hash(&wire);
                let want = listed_types(zone, k, Denial::Nsec3).is_some();
                match (chain.get(&h), want) {
                    (Some(e), false) if e.owner() == &k[..] => {
                        chain.remove(&h);
                        moved.push(h);
                        out.insert(h);
                    }
                    (None, true) => {
                        chain.insert(h, Entry::new(k, &[], &[]));
                        moved.push(h);
                        dirty.insert(h);
                    }
                    (Some(e), true) if e.owner() == &k[..] => {
                        dirty.insert(h);
                    }
                    (Some(e), _) if e.owner() != &k[..] => {
                        tracing::error!(zone = %zone.origin, "two names with one NSEC3 hash; the second is left out of the chain");
                    }
                    _ => {}
                }
            }
            for h in &moved {
                if let Some((p, _)) = chain.before(h) {
                    dirty.insert(*p);
                }
            }
            for h in dirty {
                let Some(e) = chain.get(&h).cloned() else { continue };
                let next = chain.after(&h).map_or(h, |(n, _)| *n);
                let Some(t) = listed_types(zone, e.owner(), Denial::Nsec3) else {
                    continue;
                };
                let rdata = nsec3_rdata(&next, &bitmap(&t));
                if rdata == e.rdata() && fresh(zone, e.sigs(), types::NSEC3, clock) {
                    continue;
                }
                let sigs = sign_nsec3(zone, &h, &rdata, clock);
                chain.insert(h, Entry::new(e.owner(), &rdata, &sigs));
                out.insert(h);
            }
            if let Some(s) = &mut zone.signed {
                s.chain = Chain::Nsec3(chain);
            }
            out
        }
        Chain::Nsec(mut chain) => {
            let mut moved: Vec<Canon> = Vec::new();
            let mut dirty: BTreeSet<Canon> = BTreeSet::new();
            for k in names {
                let c = Canon(k.clone());
                let want = listed_types(zone, k, Denial::Nsec).is_some();
                match (chain.get(&c).is_some(), want) {
                    (true, false) => {
                        chain.remove(&c);
                        moved.push(c);
                        // The name may live on (now an empty non-terminal, or glue).
                        if zone.node(k).is_some_and(|n| n.rrset(types::NSEC).is_some()) {
                            let mut d = Draft::of(zone.node(k).expect("just seen"));
                            d.rrsets.retain(|s| s.0 != types::NSEC);
                            d.set_signatures(types::NSEC, Vec::new());
                            zone.nodes.insert(d.build());
                            changed.insert(k.clone());
                        }
                    }
                    (false, true) => {
                        chain.insert(c.clone(), ());
                        moved.push(c.clone());
                        dirty.insert(c);
                    }
                    (true, true) => {
                        dirty.insert(c);
                    }
                    (false, false) => {}
                }
            }
            for c in &moved {
                if let Some((p, _)) = chain.before(c) {
                    dirty.insert(p.clone());
                }
            }
            for c in dirty {
                if chain.get(&c).is_none() {
                    continue;
                }
                let next = chain.after(&c).map_or_else(|| c.0.clone(), |(n, _)| n.0.clone());
                let Some(t) = listed_types(zone, &c.0, Denial::Nsec) else {
                    continue;
                };
                if set_nsec(zone, &c.0, &next, &t, clock) {
                    changed.insert(c.0.clone());
                }
            }
            if let Some(s) = &mut zone.signed {
                s.chain = Chain::Nsec(chain);
            }
            BTreeSet::new()
        }
    }
}

/// What the signed zone changed between `old` and `new` at the names and hashes given: the
/// rows to store and the records for IXFR.
fn delta(
    old: &ZoneSnap,
    new: &ZoneSnap,
    names: &BTreeSet<Box<[u8]>>,
    hashes: &BTreeSet<Hash>,
    from_serials: Vec<u32>,
) -> SignedDelta {
    let mut rows = Vec::new();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let mut owner = Vec::new();
    for k in names {
        let (a, b) = (old.node(k), new.node(k));
        let (before, after) = (a.map(derived).unwrap_or_default(), b.map(derived).unwrap_or_default());
        if before == after {
            continue;
        }
        owner.clear();
        wire_of_key(k, &mut owner);
        for rr in before.iter().filter(|r| !after.contains(r)) {
            rr_wire(&mut removed, &owner, rr);
        }
        for rr in after.iter().filter(|r| !before.contains(r)) {
            rr_wire(&mut added, &owner, rr);
        }
        rows.push((node_row(k), b.and_then(node_blob)));
    }
    let (old_chain, new_chain) = match (
        old.signed.as_ref().map(|s| &s.chain),
        new.signed.as_ref().map(|s| &s.chain),
    ) {
        (Some(Chain::Nsec3(a)), Some(Chain::Nsec3(b))) => (Some(a), Some(b)),
        _ => (None, None),
    };
    for h in hashes {
        let (a, b) = (old_chain.and_then(|c| c.get(h)), new_chain.and_then(|c| c.get(h)));
        if a == b {
            continue;
        }
        let o = nsec3_owner(new, h);
        if let Some(e) = a {
            for rr in entry_rrs(e, old.neg_ttl) {
                rr_wire(&mut removed, &o, &rr);
            }
        }
        if let Some(e) = b {
            for rr in entry_rrs(e, new.neg_ttl) {
                rr_wire(&mut added, &o, &rr);
            }
        }
        rows.push((hash_row(h), b.map(|e| e.bytes().to_vec())));
    }
    let (sa, sb) = (
        old.signed.as_ref().map(|s| s.soa_sigs.clone()).unwrap_or_default(),
        new.signed.as_ref().map(|s| s.soa_sigs.clone()).unwrap_or_default(),
    );
    if sa != sb {
        for s in Signatures(&sa) {
            rr_wire(&mut removed, &old.origin_wire, &(types::RRSIG, orig_ttl(s), s.to_vec()));
        }
        for s in Signatures(&sb) {
            rr_wire(&mut added, &new.origin_wire, &(types::RRSIG, orig_ttl(s), s.to_vec()));
        }
        rows.push((SOA_ROW.to_vec(), Some(sb.to_vec())));
    }
    let records = (removed.len() + added.len() <= MAX_JOURNALED).then_some(SignedRecords { removed, added });
    SignedDelta {
        zone: new.id,
        from_serials,
        clear: false,
        rows,
        records,
    }
}

/// A record as the journal keeps it: type, TTL, RDATA.
type Rr = (u16, u32, Vec<u8>);

/// What signing put at a node: its RRSIGs and its NSEC record.
fn derived(node: &Node) -> Vec<Rr> {
    let mut out = Vec::new();
    for set in node.rrsets() {
        if set.rtype == types::NSEC {
            out.extend(set.records().map(|r| (types::NSEC, set.ttl, r.wire.to_vec())));
        }
        out.extend(set.signatures().map(|s| (types::RRSIG, orig_ttl(s), s.to_vec())));
    }
    out
}

fn entry_rrs(e: &Entry, ttl: u32) -> Vec<Rr> {
    let mut out = vec![(types::NSEC3, ttl, e.rdata().to_vec())];
    out.extend(Signatures(e.sigs()).map(|s| (types::RRSIG, orig_ttl(s), s.to_vec())));
    out
}

/// An RRSIG's TTL: the original TTL it carries (RFC 4034 §3).
fn orig_ttl(rrsig: &[u8]) -> u32 {
    rrsig
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Appends one uncompressed RR.
fn rr_wire(out: &mut Vec<u8>, owner: &[u8], (rtype, ttl, rdata): &Rr) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Names whose signatures (or denial records) are due, in chain order from `cursor`, at
/// most `visit` names looked at; and where to go on from (`None`: the chain's end). The SOA's
/// signatures are the apex's.
pub fn due(zone: &ZoneSnap, cursor: Option<&[u8]>, visit: usize, clock: &Clock) -> (Vec<Box<[u8]>>, Option<Vec<u8>>) {
    let Some(signed) = &zone.signed else {
        return (Vec::new(), None);
    };
    let mut out: Vec<Box<[u8]>> = Vec::new();
    if !fresh(zone, &signed.soa_sigs, types::SOA, clock) {
        out.push(zone.key.clone());
    }
    let node_due = |key: &[u8]| {
        zone.node(key).is_some_and(|n| {
            n.rrsets()
                .any(|s| s.signatures().any(|sig| clock.policy.due(expiration(sig), clock.now)))
        })
    };
    let mut next = None;
    match &signed.chain {
        Chain::Nsec3(chain) => {
            let start: Hash = cursor.and_then(|c| c.try_into().ok()).unwrap_or([0; 20]);
            for (i, (h, e)) in chain.iter_from(&start).enumerate() {
                if i == visit {
                    next = Some(h.to_vec());
                    break;
                }
                let entry_due = Signatures(e.sigs()).any(|s| clock.policy.due(expiration(s), clock.now));
                if entry_due || node_due(e.owner()) {
                    out.push(e.owner().into());
                }
            }
        }
        Chain::Nsec(chain) => {
            let start = Canon(cursor.unwrap_or_default().into());
            for (i, (k, _)) in chain.iter_from(&start).enumerate() {
                if i == visit {
                    next = Some(k.0.to_vec());
                    break;
                }
                if node_due(&k.0) {
                    out.push(k.0.clone());
                }
            }
        }
    }
    (out, next)
}
