//! The answer logic: from a zone snapshot and a question to the response in wire form, per
//! RFC 1034 §4.3.2, with RFC 4592 wildcards, RFC 2308 negative answers and RFC 8482 ANY.
//! Records are copied from the snapshot's prepared RDATA; owner names are pointers into the
//! question (or into the RDATA that named them), so nothing is allocated.

use super::node::{NO_CUT, Node, RRset, Signatures};
use super::proof::Proofs;
use super::rrl::Kind;
use super::snapshot::{Key, MAX_KEY, ZoneSnap};
use super::wire::{Full, HEADER, Owner, Question, Response, Section};

/// Most CNAMEs followed inside a zone before the chain is cut (loops end here too).
const MAX_CHAIN: usize = 8;
/// Most target names whose addresses go in the additional section.
const MAX_TARGETS: usize = 16;

const NS: u16 = 2;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const MX: u16 = 15;
const SRV: u16 = 33;
const DS: u16 = 43;
const RRSIG: u16 = 46;
const NSEC: u16 = 47;
const ANY: u16 = 255;
const A: u16 = 1;
const AAAA: u16 = 28;

const NOERROR: u8 = 0;
const NXDOMAIN: u8 = 3;

/// Names in written RDATA whose addresses belong in the additional section.
struct Targets<'z> {
    items: [(Option<&'z Node>, u16); MAX_TARGETS],
    len: usize,
}

impl<'z> Targets<'z> {
    fn new() -> Self {
        Self {
            items: [(None, 0); MAX_TARGETS],
            len: 0,
        }
    }

    /// Notes the in-zone name at `at` in the message (`name` is its wire form) when the zone
    /// has addresses for it.
    fn note(&mut self, zone: &'z ZoneSnap, name: &[u8], at: usize) {
        if self.len == MAX_TARGETS || at > 0x3FFF || !in_zone(name, &zone.origin_wire) {
            return;
        }
        let Some(key) = Key::from_wire(name) else { return };
        let Some(node) = zone.node(key.as_bytes()) else { return };
        if self.items[..self.len]
            .iter()
            .any(|(n, _)| n.is_some_and(|n| std::ptr::eq(n.key(), node.key())))
        {
            return;
        }
        self.items[self.len] = (Some(node), at as u16);
        self.len += 1;
    }
}

/// Whether the uncompressed wire name `name` is `origin` or below it.
fn in_zone(name: &[u8], origin: &[u8]) -> bool {
    if name.len() < origin.len() || !name[name.len() - origin.len()..].eq_ignore_ascii_case(origin) {
        return false;
    }
    let suffix = name.len() - origin.len();
    let mut at = 0;
    while at < suffix {
        at += 1 + name[at] as usize;
    }
    at == suffix
}

/// Writes every record of `set` at `owner`, and its RRSIGs when `dnssec`; notes the names in
/// them that want addresses. Returns where the first record's RDATA starts.
fn rrset<'z>(
    r: &mut Response<'_>,
    zone: &'z ZoneSnap,
    owner: Owner,
    set: RRset<'_>,
    targets: &mut Targets<'z>,
    dnssec: bool,
) -> Result<usize, Full> {
    let mut first = 0;
    for (i, rd) in set.records().enumerate() {
        let at = r.record(owner, set.rtype, set.ttl, rd.cut, rd.wire)?;
        if i == 0 {
            first = at;
        }
        let name_at = match set.rtype {
            NS => 0,
            MX => 2,
            SRV => 6,
            _ => continue,
        };
        if let Some(name) = rd.wire.get(name_at..) {
            targets.note(zone, name, at + name_at);
        }
    }
    if dnssec {
        signatures(r, owner, set)?;
    }
    Ok(first)
}

/// The RRSIGs of `set`, owned by `owner`.
fn signatures(r: &mut Response<'_>, owner: Owner, set: RRset<'_>) -> Result<(), Full> {
    for sig in set.signatures() {
        r.record(owner, RRSIG, set.ttl, NO_CUT, sig)?;
    }
    Ok(())
}

fn soa(r: &mut Response<'_>, zone: &ZoneSnap, owner: Owner, ttl: u32, dnssec: bool) -> Result<usize, Full> {
    let at = r.record(owner, SOA, ttl, NO_CUT, &zone.soa_rdata)?;
    if let (true, Some(signed)) = (dnssec, &zone.signed) {
        for sig in Signatures(&signed.soa_sigs) {
            r.record(owner, RRSIG, ttl, NO_CUT, sig)?;
        }
    }
    Ok(at)
}

/// Answers `q` from `zone` into `r` (header bits, rcode, sections); the kind of answer is
/// what response rate limiting counts. A record that does not fit marks `r` overflowed.
pub fn answer(zone: &ZoneSnap, q: &Question<'_>, r: &mut Response<'_>) -> Kind {
    match write(zone, q, r) {
        Ok(kind) => kind,
        Err(Full) => {
            r.overflow = true;
            Kind::Positive
        }
    }
}

fn write(zone: &ZoneSnap, q: &Question<'_>, r: &mut Response<'_>) -> Result<Kind, Full> {
    let apex = Owner((HEADER + q.qname.len() - zone.origin_wire.len()) as u16);
    r.set_apex(apex.0 as usize, zone.origin_wire.len());
    r.set_authoritative(true);
    r.set_rcode(NOERROR);
    // RRSIGs and denial records for a resolver that asked for them (RFC 4035 §3.1).
    let dnssec = zone.signed.is_some() && q.edns.is_some_and(|e| e.dnssec_ok);
    let mut proofs = Proofs::new();
    let mut targets = Targets::new();
    let mut chained: Key;
    let mut key: &Key = q.key;
    let mut owner = Owner(HEADER as u16);
    let mut wildcard = false;
    let mut seen = [0usize; MAX_CHAIN];
    for hop in 0..MAX_CHAIN {
        // Below a zone cut we are not authoritative: refer (RFC 1034 §4.3.2 step 3b). A DS
        // query at the cut itself belongs to the parent side.
        if zone.delegations > 0
            && let Some(cut) = cut_above(zone, key, q.qtype)
        {
            if hop > 0 {
                break; // a CNAME into a delegation: the resolver follows it
            }
            let ns = cut.rrset(NS).expect("a cut has NS");
            let at = Owner((HEADER + q.qname.len() - (cut.key().len() + 1)) as u16);
            r.set_authoritative(false);
            r.section(Section::Authority);
            rrset(r, zone, at, ns, &mut targets, false)?;
            if dnssec {
                // The parent side's word on the child: its DS, signed, or proof it has none.
                match cut.rrset(DS) {
                    Some(ds) => rrset(r, zone, at, ds, &mut Targets::new(), true).map(drop)?,
                    None => {
                        let mut insecure = Proofs::new();
                        insecure.insecure(zone, cut.key());
                        insecure.write(r, zone)?;
                    }
                }
            }
            additional(r, &targets, Some(cut.key()), dnssec)?;
            return Ok(Kind::Referral);
        }
        let at_apex = key.as_bytes().len() == zone.key.len();
        if q.qtype == SOA && at_apex {
            soa(r, zone, owner, zone.soa_ttl, dnssec)?;
            break;
        }
        let (node, wild, encloser) = match zone.node(key.as_bytes()) {
            Some(n) => (n, false, 0),
            None => match wildcard_for(zone, key) {
                (Some(n), ce) => (n, true, ce),
                (None, ce) => {
                    r.set_rcode(NXDOMAIN);
                    r.section(Section::Authority);
                    soa(r, zone, apex, zone.neg_ttl, dnssec)?;
                    if dnssec {
                        proofs.nxdomain(zone, key.as_bytes(), ce);
                        proofs.write(r, zone)?;
                    }
                    return Ok(Kind::NxDomain);
                }
            },
        };
        wildcard |= wild;
        if wild && dnssec {
            proofs.wildcard(zone, key.as_bytes(), encloser);
        }
        // ANY: one RRset, the one of the lowest type (RFC 8482 §4.1, as Knot does).
        if q.qtype == ANY
            && let Some(first) = node.rrsets().next()
        {
            if at_apex && !wild && first.rtype > SOA {
                soa(r, zone, owner, zone.soa_ttl, dnssec)?;
            } else {
                rrset(r, zone, owner, first, &mut targets, dnssec)?;
            }
            break;
        }
        if let Some(set) = node.rrset(q.qtype) {
            rrset(r, zone, owner, set, &mut targets, dnssec)?;
            break;
        }
        // RRSIG and NSEC live beside a CNAME (RFC 4035 §2.5): asked for, it is not followed.
        if let Some(cname) = node.rrset(CNAME).filter(|_| !matches!(q.qtype, RRSIG | NSEC)) {
            let id = node.key().as_ptr() as usize;
            if !wild && seen[..hop].contains(&id) {
                break; // a loop: stop where it closes
            }
            seen[hop] = id;
            let rdata = rrset(r, zone, owner, cname, &mut Targets::new(), dnssec)?;
            let Some(target) = cname.first() else { break };
            if !in_zone(target.wire, &zone.origin_wire) || rdata > 0x3FFF {
                break; // outside the zone: the resolver takes it from here
            }
            let Some(next) = Key::from_wire(target.wire) else { break };
            chained = next;
            key = &chained;
            owner = Owner(rdata as u16);
            continue;
        }
        // NODATA (RFC 2308 §2.2): the name exists, the type does not.
        r.section(Section::Authority);
        soa(r, zone, apex, zone.neg_ttl, dnssec)?;
        if dnssec {
            if wild {
                proofs.wildcard_nodata(zone, key.as_bytes(), encloser);
            } else {
                proofs.nodata(zone, key.as_bytes());
            }
            proofs.write(r, zone)?;
        }
        return Ok(if wildcard && r.count(Section::Answer) > 0 {
            Kind::Wildcard
        } else {
            Kind::NoData
        });
    }
    if dnssec && !proofs.is_empty() {
        r.section(Section::Authority);
        proofs.write(r, zone)?;
    }
    additional(r, &targets, None, dnssec)?;
    Ok(kind(r, wildcard))
}

fn kind(r: &Response<'_>, wildcard: bool) -> Kind {
    if wildcard {
        Kind::Wildcard
    } else if r.count(Section::Answer) == 0 {
        Kind::NoData
    } else {
        Kind::Positive
    }
}

/// Addresses of the noted names (RFC 1034 §3.7, RFC 2181 §5.4.1), each RRset whole or not
/// at all. Glue below the referral's cut (`cut`) must fit, or the response is truncated
/// (RFC 9471); other addresses are left out when they do not fit.
fn additional(r: &mut Response<'_>, targets: &Targets<'_>, cut: Option<&[u8]>, dnssec: bool) -> Result<(), Full> {
    r.section(Section::Additional);
    for &(node, at) in &targets.items[..targets.len] {
        let Some(node) = node else { continue };
        let required = cut.is_some_and(|c| node.key().starts_with(c));
        for t in [A, AAAA] {
            let Some(set) = node.rrset(t) else { continue };
            let mark = r.mark();
            let written: Result<(), Full> = set
                .records()
                .try_for_each(|rd| r.record(Owner(at), t, set.ttl, rd.cut, rd.wire).map(|_| ()))
                .and_then(|()| if dnssec { signatures(r, Owner(at), set) } else { Ok(()) });
            if written.is_err() {
                r.rollback(mark);
                if required {
                    return Err(Full);
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The node of the zone cut at or above the name (below the apex), if any.
fn cut_above<'z>(zone: &'z ZoneSnap, key: &Key, qtype: u16) -> Option<&'z Node> {
    let full = key.as_bytes().len();
    zone.path(key).find_map(|k| {
        zone.node(k)
            .filter(|n| n.rrset(NS).is_some() && !(k.len() == full && qtype == DS))
    })
}

/// The wildcard node that answers for a name that does not exist (RFC 4592 §3.3.1): `*`
/// below the closest encloser, if there is one; and the length of the encloser's key.
fn wildcard_for<'z>(zone: &'z ZoneSnap, key: &Key) -> (Option<&'z Node>, usize) {
    let mut buf = [0u8; MAX_KEY + 2];
    let encloser = zone
        .path(key)
        .filter(|k| zone.node(k).is_some())
        .last()
        .map_or(zone.key.len(), |k| k.len());
    let bytes = key.as_bytes();
    if encloser + 2 > buf.len() {
        return (None, encloser);
    }
    buf[..encloser].copy_from_slice(&bytes[..encloser]);
    buf[encloser] = 1;
    buf[encloser + 1] = b'*';
    (zone.node(&buf[..encloser + 2]), encloser)
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::dns::snapshot::Zones;
    use crate::dns::wire::{Parsed, parse};
    use crate::store::Change;

    const ZONE: &str = "$ORIGIN t.test.\n$TTL 600\n\
        @ IN SOA ns1.t.test. h.t.test. 1 2 3 4 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n@ IN MX 10 mx\nmx IN A 192.0.2.2\n\
        www IN CNAME t.test.\na IN CNAME b\nb IN CNAME a\nx.y.z IN A 192.0.2.3\n*.w IN TXT \"w\"\n\
        del IN NS ns.del\nns.del IN A 192.0.2.4\n";

    fn zones() -> (Zones, crate::domain::Zone, Vec<crate::domain::Record>) {
        let (zone, rows) = crate::zonefile::parse(ZONE, None).unwrap().detached_rows();
        let c = Zones::default();
        c.rebuild(vec![(zone.clone(), rows.clone())]);
        (c, zone, rows)
    }

    fn wire_query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.trim_end_matches('.').split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&u16::from(t).to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    /// (rcode, aa, answer, authority, additional count) as text.
    fn ask(c: &Zones, name: &str, t: RecordType) -> (ResponseCode, bool, Vec<String>, Vec<String>, usize) {
        let msg = wire_query(name, t);
        let mut key = Key::default();
        let Parsed::Plain(q) = parse(&msg, &mut key) else {
            panic!("plain")
        };
        let zones = c.load();
        let zone = zones.find(q.key).unwrap();
        let mut buf = Vec::new();
        let mut r = Response::start(&mut buf, &q, 65535, None);
        answer(zone, &q, &mut r);
        r.finish();
        let m = Message::from_vec(&buf).unwrap();
        let show = |rs: &[hickory_proto::rr::Record]| {
            rs.iter()
                .map(|r| format!("{} {}", r.name, r.record_type()))
                .collect::<Vec<_>>()
        };
        (
            m.metadata.response_code,
            m.metadata.authoritative,
            show(&m.answers),
            show(&m.authorities),
            m.additionals.len(),
        )
    }

    #[test]
    fn answers_follow_rfc_1034_4_3_2() {
        let (c, _, _) = zones();
        assert_eq!(
            ask(&c, "t.test.", RecordType::MX),
            (ResponseCode::NoError, true, vec!["t.test. MX".into()], vec![], 1)
        );
        assert_eq!(ask(&c, "t.test.", RecordType::SOA).2, ["t.test. SOA"]);
        let nx = ask(&c, "nope.t.test.", RecordType::A);
        assert_eq!(
            (nx.0, nx.3.clone()),
            (ResponseCode::NXDomain, vec!["t.test. SOA".to_string()])
        );
        let ent = ask(&c, "y.z.t.test.", RecordType::A);
        assert_eq!(
            (ent.0, ent.2.len(), ent.3.len()),
            (ResponseCode::NoError, 0, 1),
            "empty non-terminal is NODATA"
        );
        assert_eq!(
            ask(&c, "www.t.test.", RecordType::A).2,
            ["www.t.test. CNAME"],
            "the apex has no A: the chain ends in NODATA"
        );
        assert_eq!(
            ask(&c, "www.t.test.", RecordType::MX).2,
            ["www.t.test. CNAME", "t.test. MX"]
        );
        assert_eq!(ask(&c, "www.t.test.", RecordType::MX).4, 1, "the MX target's address");
        assert_eq!(
            ask(&c, "t.test.", RecordType::NS).4,
            1,
            "the in-zone nameserver's address"
        );
    }

    #[test]
    fn cname_loops_end_and_wildcards_synthesise() {
        let (c, _, _) = zones();
        assert_eq!(
            ask(&c, "a.t.test.", RecordType::A).2,
            ["a.t.test. CNAME", "b.t.test. CNAME"]
        );
        let w = ask(&c, "q.w.t.test.", RecordType::TXT);
        assert_eq!(w.2, ["q.w.t.test. TXT"], "owner is the query name");
        assert_eq!(
            ask(&c, "q.w.t.test.", RecordType::A).0,
            ResponseCode::NoError,
            "wildcard NODATA"
        );
        assert_eq!(
            ask(&c, "w.t.test.", RecordType::TXT).2.len(),
            0,
            "the wildcard's parent is an ENT, not a match"
        );
        assert_eq!(ask(&c, "deep.q.w.t.test.", RecordType::TXT).2, ["deep.q.w.t.test. TXT"]);
    }

    #[test]
    fn delegations_refer_with_glue_and_ds_stays_with_the_parent() {
        let (c, _, _) = zones();
        for name in ["del.t.test.", "a.b.del.t.test.", "ns.del.t.test."] {
            let r = ask(&c, name, RecordType::A);
            assert_eq!(
                (r.1, r.2.len(), r.3.clone(), r.4),
                (false, 0, vec!["del.t.test. NS".to_string()], 1),
                "{name}"
            );
        }
        let ds = ask(&c, "del.t.test.", RecordType::DS);
        assert!(ds.1, "DS at the cut is answered authoritatively by the parent");
        assert_eq!(ds.3, ["t.test. SOA"]);
    }

    #[test]
    fn edits_keep_empty_non_terminals_and_delegation_counts_right() {
        let (c, zone, rows) = zones();
        let deep = rows.iter().find(|r| r.name.as_str() == "x.y.z.t.test").unwrap().clone();
        c.apply(&[Change::RecordRemoved(deep.clone())]);
        assert_eq!(
            ask(&c, "y.z.t.test.", RecordType::A).0,
            ResponseCode::NXDomain,
            "the ENT went with its only child"
        );
        assert_eq!(ask(&c, "z.t.test.", RecordType::A).0, ResponseCode::NXDomain);
        c.apply(&[Change::RecordPut { old: None, new: deep }]);
        assert_eq!(ask(&c, "z.t.test.", RecordType::A).0, ResponseCode::NoError);
        let del = rows
            .iter()
            .find(|r| r.name.as_str() == "del.t.test" && r.rtype == RecordType::NS)
            .unwrap()
            .clone();
        c.apply(&[Change::RecordRemoved(del)]);
        let snap = c.load().by_id(zone.id).unwrap().clone();
        assert_eq!(snap.delegations, 0);
        assert!(
            ask(&c, "ns.del.t.test.", RecordType::A).1,
            "no longer below a cut: authoritative"
        );
        let mut bumped = zone.clone();
        bumped.serial = 99;
        c.apply(&[Change::ZonePut(Box::new(bumped))]);
        assert_eq!(c.load().by_id(zone.id).unwrap().serial, 99);
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
        let ttls = |c: &Zones| {
            let msg = wire_query("mx.t.test.", RecordType::A);
            let mut key = Key::default();
            let Parsed::Plain(q) = parse(&msg, &mut key) else {
                panic!()
            };
            let zones = c.load();
            let mut buf = Vec::new();
            let mut r = Response::start(&mut buf, &q, 65535, None);
            answer(zones.find(q.key).unwrap(), &q, &mut r);
            r.finish();
            Message::from_vec(&buf)
                .unwrap()
                .answers
                .iter()
                .map(|r| r.ttl)
                .collect::<Vec<_>>()
        };
        assert_eq!(ttls(&c), [30, 30]);
        c.apply(&[Change::RecordRemoved(extra)]);
        assert_eq!(ttls(&c), [600]);
    }
}
