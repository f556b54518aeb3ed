//! The answer logic: from a zone snapshot and a question to the sections of the response,
//! per RFC 1034 §4.3.2 (with RFC 4592 wildcards and RFC 2308 negative answers).
//!
//! Sections are lists of slices of the snapshot's precomputed RRsets, so a normal answer
//! allocates nothing; only wildcard synthesis and the RFC 8482 HINFO build records.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::HINFO;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::snapshot::{Node, QueryKey, ZoneSnap};

/// Most CNAMEs followed inside a zone before the chain is cut (loops end here too).
const MAX_CHAIN: usize = 8;
const PARTS: usize = 24;

#[derive(Clone, Copy)]
pub enum Part<'a> {
    Snap(&'a [Record]),
    /// A range of the synthesised records.
    Synth(usize, usize),
}

/// A section as up to `PARTS` slices; no allocation.
pub struct Section<'a> {
    parts: [Part<'a>; PARTS],
    len: usize,
}

impl<'a> Section<'a> {
    fn new() -> Self {
        Section { parts: [Part::Snap(&[]); PARTS], len: 0 }
    }

    fn push(&mut self, part: Part<'a>) {
        if self.len < PARTS {
            self.parts[self.len] = part;
            self.len += 1;
        }
    }

    fn contains(&self, records: &[Record]) -> bool {
        self.parts[..self.len].iter().any(|p| matches!(p, Part::Snap(s) if std::ptr::eq(*s, records)))
    }

    pub fn iter<'s>(&'s self, synth: &'a [Record]) -> impl Iterator<Item = &'a Record> + Send + 's {
        self.parts[..self.len].iter().flat_map(move |p| match *p {
            Part::Snap(s) => s.iter(),
            Part::Synth(a, b) => synth[a..b].iter(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

pub struct Plan<'a> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answer: Section<'a>,
    pub authority: Section<'a>,
    pub additional: Section<'a>,
}

/// Answers `qname`/`qtype` from `zone`. `tcp` selects the full ANY answer (RFC 8482 §4.1
/// lets UDP get a minimal one). Synthesised records go to `synth`.
pub fn resolve<'a>(zone: &'a ZoneSnap, qname: &'a Name, qtype: RecordType, tcp: bool, synth: &mut Vec<Record>) -> Plan<'a> {
    let mut plan = Plan {
        rcode: ResponseCode::NoError,
        authoritative: true,
        answer: Section::new(),
        authority: Section::new(),
        additional: Section::new(),
    };
    let mut name: &'a Name = qname;
    let mut key = QueryKey::from_name(qname);
    for hop in 0..MAX_CHAIN {
        // Below a zone cut we are not authoritative: refer (RFC 1034 §4.3.2 step 3b). A DS
        // query at the cut itself belongs to the parent side.
        if zone.delegations > 0 {
            let full = key.as_bytes().len();
            let cut = zone.path(&key).find_map(|k| {
                let at_cut = k.len() == full;
                zone.node(k).filter(|n| n.rrset(RecordType::NS).is_some() && !(at_cut && qtype == RecordType::DS))
            });
            if let Some(cut) = cut {
                if hop == 0 {
                    let ns = cut.rrset(RecordType::NS).expect("filtered on NS");
                    plan.authoritative = false;
                    plan.authority.push(Part::Snap(&ns.records));
                    add_targets(zone, &ns.records, &mut plan.additional);
                }
                return plan; // a CNAME into a delegation: the resolver follows it
            }
        }
        if qtype == RecordType::SOA && key.as_bytes().len() == zone.key.len() {
            plan.answer.push(Part::Snap(&zone.soa));
            return plan;
        }
        let (node, wildcard) = match zone.node(key.as_bytes()) {
            Some(n) => (n, false),
            None => match wildcard_for(zone, &key) {
                Some(n) => (n, true),
                None => {
                    plan.rcode = ResponseCode::NXDomain;
                    plan.authority.push(Part::Snap(&zone.neg_soa));
                    return plan;
                }
            },
        };
        let emit = |records: &'a [Record], synth: &mut Vec<Record>| -> Part<'a> {
            if wildcard {
                let start = synth.len();
                synth.extend(records.iter().map(|r| {
                    let mut r = r.clone();
                    r.name = name.clone();
                    r
                }));
                Part::Synth(start, synth.len())
            } else {
                Part::Snap(records)
            }
        };
        let apex = !wildcard && key.as_bytes().len() == zone.key.len();
        if qtype == RecordType::ANY && !node.rrsets.is_empty() {
            if tcp {
                if apex {
                    plan.answer.push(Part::Snap(&zone.soa));
                }
                for set in &node.rrsets {
                    let part = emit(&set.records, synth);
                    plan.answer.push(part);
                }
            } else {
                let start = synth.len();
                let ttl = node.rrsets.iter().flat_map(|s| s.records.first()).map(|r| r.ttl).min().unwrap_or(0);
                synth.push(Record::from_rdata(name.clone(), ttl, RData::HINFO(HINFO::new("RFC8482".into(), String::new()))));
                plan.answer.push(Part::Synth(start, synth.len()));
            }
            return plan;
        }
        if let Some(set) = node.rrset(qtype) {
            let part = emit(&set.records, synth);
            plan.answer.push(part);
            add_targets(zone, &set.records, &mut plan.additional);
            return plan;
        }
        if let Some(cname) = node.rrset(RecordType::CNAME) {
            if !wildcard && plan.answer.contains(&cname.records) {
                return plan; // a loop: stop where it closes
            }
            let part = emit(&cname.records, synth);
            plan.answer.push(part);
            let Some(RData::CNAME(target)) = cname.records.first().map(|r| &r.data) else { return plan };
            let target: &'a Name = target;
            if !zone.origin.zone_of(target) {
                return plan; // outside the zone: the resolver takes it from here
            }
            name = target;
            key = QueryKey::from_name(target);
            continue;
        }
        // NODATA (RFC 2308 §2.2): the name exists, the type does not.
        plan.authority.push(Part::Snap(&zone.neg_soa));
        return plan;
    }
    plan
}

/// The wildcard node that answers for a name that does not exist (RFC 4592 §3.3.1): `*`
/// below the closest encloser, if there is one.
fn wildcard_for<'a>(zone: &'a ZoneSnap, key: &QueryKey) -> Option<&'a std::sync::Arc<Node>> {
    let mut buf = [0u8; super::snapshot::MAX_KEY + 2];
    let encloser = zone.path(key).filter(|k| zone.node(k).is_some()).last().map_or(zone.key.len(), |k| k.len());
    let bytes = key.as_bytes();
    if encloser + 2 > buf.len() {
        return None;
    }
    buf[..encloser].copy_from_slice(&bytes[..encloser]);
    buf[encloser] = 1;
    buf[encloser + 1] = b'*';
    zone.node(&buf[..encloser + 2])
}

/// Additional-section processing (RFC 1034 §3.7, RFC 2181 §5.4.1): addresses of in-zone
/// MX, SRV and NS targets.
fn add_targets<'a>(zone: &'a ZoneSnap, records: &'a [Record], additional: &mut Section<'a>) {
    for r in records {
        let target = match &r.data {
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            RData::NS(ns) => &ns.0,
            _ => return,
        };
        if !zone.origin.zone_of(target) {
            continue;
        }
        if let Some(node) = zone.node(QueryKey::from_name(target).as_bytes()) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.rrset(t) {
                    if !additional.contains(&set.records) {
                        additional.push(Part::Snap(&set.records));
                    }
                }
            }
        }
    }
}
