//! The answer logic: from a zone snapshot and a question to the sections of the response,
//! per RFC 1034 §4.3.2 (with RFC 4592 wildcards and RFC 2308 negative answers).
//!
//! Sections are lists of slices of the snapshot's precomputed RRsets, so a normal answer
//! allocates nothing; only wildcard synthesis builds records.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::snapshot::{Key, Node, ZoneSnap};

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
        Section {
            parts: [Part::Snap(&[]); PARTS],
            len: 0,
        }
    }

    fn push(&mut self, part: Part<'a>) {
        if self.len < PARTS {
            self.parts[self.len] = part;
            self.len += 1;
        }
    }

    fn contains(&self, records: &[Record]) -> bool {
        self.parts[..self.len]
            .iter()
            .any(|p| matches!(p, Part::Snap(s) if std::ptr::eq(*s, records)))
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

/// A response's rcode, AA bit and sections.
pub struct Answer<'a> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answer: Section<'a>,
    pub authority: Section<'a>,
    pub additional: Section<'a>,
}

/// Looks `qname`/`qtype` up in `zone`. Synthesised (wildcard) records go to `synth`.
pub fn lookup<'a>(zone: &'a ZoneSnap, qname: &'a Name, qtype: RecordType, synth: &mut Vec<Record>) -> Answer<'a> {
    let mut out = Answer {
        rcode: ResponseCode::NoError,
        authoritative: true,
        answer: Section::new(),
        authority: Section::new(),
        additional: Section::new(),
    };
    let mut name: &'a Name = qname;
    let mut key = Key::from_name(qname);
    for hop in 0..MAX_CHAIN {
        // Below a zone cut we are not authoritative: refer (RFC 1034 §4.3.2 step 3b). A DS
        // query at the cut itself belongs to the parent side.
        if zone.delegations > 0 {
            let full = key.as_bytes().len();
            let cut = zone.path(&key).find_map(|k| {
                let at_cut = k.len() == full;
                zone.node(k)
                    .filter(|n| n.rrset(RecordType::NS).is_some() && !(at_cut && qtype == RecordType::DS))
            });
            if let Some(cut) = cut {
                if hop == 0 {
                    let ns = cut.rrset(RecordType::NS).expect("filtered on NS");
                    out.authoritative = false;
                    out.authority.push(Part::Snap(&ns.records));
                    add_targets(zone, &ns.records, &mut out.additional);
                }
                return out; // a CNAME into a delegation: the resolver follows it
            }
        }
        if qtype == RecordType::SOA && key.as_bytes().len() == zone.key.len() {
            out.answer.push(Part::Snap(&zone.soa));
            return out;
        }
        let (node, wildcard) = match zone.node(key.as_bytes()) {
            Some(n) => (n, false),
            None => match wildcard_for(zone, &key) {
                Some(n) => (n, true),
                None => {
                    out.rcode = ResponseCode::NXDomain;
                    out.authority.push(Part::Snap(&zone.neg_soa));
                    return out;
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
        // ANY: one RRset, the one of the lowest type (RFC 8482 §4.1, as Knot does).
        if qtype == RecordType::ANY && !node.rrsets.is_empty() {
            let first = node
                .rrsets
                .iter()
                .min_by_key(|s| u16::from(s.rtype))
                .expect("not empty");
            let records: &'a [Record] = if apex && u16::from(first.rtype) > u16::from(RecordType::SOA) {
                &zone.soa
            } else {
                &first.records
            };
            let part = emit(records, synth);
            out.answer.push(part);
            add_targets(zone, records, &mut out.additional);
            return out;
        }
        if let Some(set) = node.rrset(qtype) {
            let part = emit(&set.records, synth);
            out.answer.push(part);
            add_targets(zone, &set.records, &mut out.additional);
            return out;
        }
        if let Some(cname) = node.rrset(RecordType::CNAME) {
            if !wildcard && out.answer.contains(&cname.records) {
                return out; // a loop: stop where it closes
            }
            let part = emit(&cname.records, synth);
            out.answer.push(part);
            let Some(RData::CNAME(target)) = cname.records.first().map(|r| &r.data) else {
                return out;
            };
            let target: &'a Name = target;
            if !zone.origin.zone_of(target) {
                return out; // outside the zone: the resolver takes it from here
            }
            name = target;
            key = Key::from_name(target);
            continue;
        }
        // NODATA (RFC 2308 §2.2): the name exists, the type does not.
        out.authority.push(Part::Snap(&zone.neg_soa));
        return out;
    }
    out
}

/// The wildcard node that answers for a name that does not exist (RFC 4592 §3.3.1): `*`
/// below the closest encloser, if there is one.
fn wildcard_for<'a>(zone: &'a ZoneSnap, key: &Key) -> Option<&'a std::sync::Arc<Node>> {
    let mut buf = [0u8; super::snapshot::MAX_KEY + 2];
    let encloser = zone
        .path(key)
        .filter(|k| zone.node(k).is_some())
        .last()
        .map_or(zone.key.len(), |k| k.len());
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
        if let Some(node) = zone.node(Key::from_name(target).as_bytes()) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.rrset(t)
                    && !additional.contains(&set.records)
                {
                    additional.push(Part::Snap(&set.records));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{Name, Record, RecordType};

    use super::{Answer, lookup};
    use crate::dns::snapshot::{Key, ZoneSnap, Zones};
    use crate::domain::{Record as Row, Zone};
    use crate::store::Change;

    const ZONE: &str = "$ORIGIN t.test.\n$TTL 600\n\
        @ IN SOA ns1.t.test. h.t.test. 1 2 3 4 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n@ IN MX 10 mx\nmx IN A 192.0.2.2\n\
        www IN CNAME t.test.\na IN CNAME b\nb IN CNAME a\nx.y.z IN A 192.0.2.3\n*.w IN TXT \"w\"\n\
        del IN NS ns.del\nns.del IN A 192.0.2.4\n";

    fn rows_of(text: &str) -> (Zone, Vec<Row>) {
        crate::zonefile::parse(text, None).unwrap().detached_rows()
    }

    fn zones() -> (Zones, Zone, Vec<Row>) {
        let (zone, rows) = rows_of(ZONE);
        let c = Zones::default();
        c.rebuild(vec![(zone.clone(), rows.clone())]);
        (c, zone, rows)
    }

    fn ask(snap: &ZoneSnap, name: &str, t: RecordType) -> (ResponseCode, bool, Vec<String>, Vec<String>, usize) {
        let qname = Name::from_ascii(name).unwrap();
        let mut synth = Vec::new();
        let answer: Answer<'_> = lookup(snap, &qname, t, &mut synth);
        let show = |rs: Vec<&Record>| {
            rs.iter()
                .map(|r| format!("{} {}", r.name, r.record_type()))
                .collect::<Vec<_>>()
        };
        (
            answer.rcode,
            answer.authoritative,
            show(answer.answer.iter(&synth).collect()),
            show(answer.authority.iter(&synth).collect()),
            answer.additional.iter(&synth).count(),
        )
    }

    fn snap(c: &Zones) -> std::sync::Arc<ZoneSnap> {
        let map = c.load();
        map.find(&Key::from_name(&Name::from_ascii("t.test.").unwrap()))
            .unwrap()
            .clone()
    }

    #[test]
    fn answers_follow_rfc_1034_4_3_2() {
        let (c, _, _) = zones();
        let s = snap(&c);
        assert_eq!(
            ask(&s, "t.test.", RecordType::MX),
            (ResponseCode::NoError, true, vec!["t.test. MX".into()], vec![], 1)
        );
        assert_eq!(ask(&s, "t.test.", RecordType::SOA).2, ["t.test. SOA"]);
        let nx = ask(&s, "nope.t.test.", RecordType::A);
        assert_eq!(
            (nx.0, nx.3.clone()),
            (ResponseCode::NXDomain, vec!["t.test. SOA".to_string()])
        );
        let ent = ask(&s, "y.z.t.test.", RecordType::A);
        assert_eq!(
            (ent.0, ent.2.len(), ent.3.len()),
            (ResponseCode::NoError, 0, 1),
            "empty non-terminal is NODATA"
        );
        assert_eq!(
            ask(&s, "www.t.test.", RecordType::A).2,
            ["www.t.test. CNAME"],
            "the apex has no A: the chain ends in NODATA"
        );
        assert_eq!(
            ask(&s, "www.t.test.", RecordType::MX).2,
            ["www.t.test. CNAME", "t.test. MX"]
        );
    }

    #[test]
    fn cname_loops_end_and_wildcards_synthesise() {
        let (c, _, _) = zones();
        let s = snap(&c);
        assert_eq!(
            ask(&s, "a.t.test.", RecordType::A).2,
            ["a.t.test. CNAME", "b.t.test. CNAME"]
        );
        let w = ask(&s, "q.w.t.test.", RecordType::TXT);
        assert_eq!(w.2, ["q.w.t.test. TXT"], "owner is the query name");
        assert_eq!(
            ask(&s, "q.w.t.test.", RecordType::A).0,
            ResponseCode::NoError,
            "wildcard NODATA"
        );
        assert_eq!(
            ask(&s, "w.t.test.", RecordType::TXT).2.len(),
            0,
            "the wildcard's parent is an ENT, not a match"
        );
        assert_eq!(ask(&s, "deep.q.w.t.test.", RecordType::TXT).2, ["deep.q.w.t.test. TXT"]);
    }

    #[test]
    fn delegations_refer_with_glue_and_ds_stays_with_the_parent() {
        let (c, _, _) = zones();
        let s = snap(&c);
        for name in ["del.t.test.", "a.b.del.t.test.", "ns.del.t.test."] {
            let r = ask(&s, name, RecordType::A);
            assert_eq!(
                (r.1, r.2.len(), r.3.clone(), r.4),
                (false, 0, vec!["del.t.test. NS".to_string()], 1),
                "{name}"
            );
        }
        let ds = ask(&s, "del.t.test.", RecordType::DS);
        assert!(ds.1, "DS at the cut is answered authoritatively by the parent");
        assert_eq!(ds.3, ["t.test. SOA"]);
    }

    #[test]
    fn edits_keep_empty_non_terminals_and_delegation_counts_right() {
        let (c, zone, rows) = zones();
        let deep = rows.iter().find(|r| r.name.as_str() == "x.y.z.t.test").unwrap().clone();
        c.apply(&[Change::RecordRemoved(deep.clone())]);
        let s = snap(&c);
        assert_eq!(
            ask(&s, "y.z.t.test.", RecordType::A).0,
            ResponseCode::NXDomain,
            "the ENT went with its only child"
        );
        assert_eq!(ask(&s, "z.t.test.", RecordType::A).0, ResponseCode::NXDomain);
        c.apply(&[Change::RecordPut { old: None, new: deep }]);
        assert_eq!(ask(&snap(&c), "z.t.test.", RecordType::A).0, ResponseCode::NoError);
        let del = rows
            .iter()
            .find(|r| r.name.as_str() == "del.t.test" && r.rtype == RecordType::NS)
            .unwrap()
            .clone();
        c.apply(&[Change::RecordRemoved(del)]);
        let s = snap(&c);
        assert_eq!(s.delegations, 0);
        assert!(
            ask(&s, "ns.del.t.test.", RecordType::A).1,
            "no longer below a cut: authoritative"
        );
        let mut bumped = zone.clone();
        bumped.serial = 99;
        c.apply(&[Change::ZonePut(bumped)]);
        assert_eq!(snap(&c).serial, 99);
    }

    #[test]
    fn an_rrset_answers_with_the_smallest_ttl_of_its_records() {
        let (c, _, rows) = zones();
        let mut extra = rows.iter().find(|r| r.name.as_str() == "mx.t.test").unwrap().clone();
        extra.id = uuid::Uuid::now_v7();
        extra.ttl = 30;
        extra.rdata = vec![192, 0, 2, 99];
        c.apply(&[Change::RecordPut {
            old: None,
            new: extra.clone(),
        }]);
        let s = snap(&c);
        let set = s
            .node(Key::from_name(&Name::from_ascii("mx.t.test.").unwrap()).as_bytes())
            .unwrap()
            .rrset(RecordType::A)
            .unwrap();
        assert!(set.records.iter().all(|r| r.ttl == 30));
        c.apply(&[Change::RecordRemoved(extra)]);
        let s = snap(&c);
        let set = s
            .node(Key::from_name(&Name::from_ascii("mx.t.test.").unwrap()).as_bytes())
            .unwrap()
            .rrset(RecordType::A)
            .unwrap();
        assert_eq!(set.records[0].ttl, 600);
    }
}
