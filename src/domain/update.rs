//! RFC 2136 UPDATE as the platform reads it: the prerequisite and update sections of a
//! message as typed operations (`Update::parse`, with the RFC's FORMERR and NOTZONE checks)
//! and what a key's policy allows (`Update::beyond`). What the operations do to a zone's
//! records is `update_plan`'s.

use hickory_proto::rr::{DNSClass, RData, Record as WireRecord, RecordType};

use super::{DomainName, NewRecord, RecordData, TsigKey, check_ttl, from_rdata};

/// A condition on the zone that must hold for the update to apply (RFC 2136 §2.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Prerequisite {
    /// Some record is at the name.
    InUse(DomainName),
    /// No record is at the name.
    NotInUse(DomainName),
    /// An RRset of the type is at the name.
    Exists(DomainName, RecordType),
    /// No RRset of the type is at the name.
    Absent(DomainName, RecordType),
    /// The RRset is exactly these records (TTLs aside).
    Is(DomainName, RecordType, Vec<RecordData>),
}

/// One change of the update section (RFC 2136 §2.5), applied in order.
#[derive(Debug, Clone)]
pub enum Op {
    Add(NewRecord),
    DeleteRrset(DomainName, RecordType),
    /// Every RRset at the name (the apex keeps its SOA and NS, RFC 2136 §3.4.2.3).
    DeleteName(DomainName),
    DeleteRecord(DomainName, RecordData),
}

#[derive(Debug, Clone, Default)]
pub struct Update {
    pub prerequisites: Vec<Prerequisite>,
    pub ops: Vec<Op>,
}

/// A message that cannot be applied as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Malformed {
    /// FORMERR: a record that is not a valid prerequisite or update.
    Form(&'static str),
    /// NOTZONE: a name outside the zone.
    NotZone(String),
    /// REFUSED: well-formed, but not something the platform accepts (a name, type or TTL
    /// the API would refuse too).
    Refused(String),
}

/// Types that are not data (RFC 2136 §3.4.1.3).
fn is_meta(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG
    ) || matches!(u16::from(t), 253 | 254) // MAILB, MAILA
}

/// A record's owner as a name of `zone`: NOTZONE outside it, REFUSED for a name the API
/// could not hold.
fn owner(r: &WireRecord, zone: &DomainName) -> Result<DomainName, Malformed> {
    let text = r.name.to_ascii();
    let name = DomainName::parse(&text).map_err(|e| Malformed::Refused(format!("{text}: {e}")))?;
    if !name.is_in(zone) {
        return Err(Malformed::NotZone(text));
    }
    Ok(name)
}

fn data(r: &WireRecord) -> Result<RecordData, Malformed> {
    from_rdata(r.data.clone()).map_err(Malformed::Refused)
}

impl Update {
    /// Reads the prerequisite (answer) and update (authority) sections of an UPDATE to `zone`.
    pub fn parse(zone: &DomainName, prerequisites: &[WireRecord], updates: &[WireRecord]) -> Result<Self, Malformed> {
        let mut out = Self::default();
        // Value-dependent prerequisites are one condition per RRset (RFC 2136 §3.2.3).
        let mut values: Vec<(DomainName, RecordType, Vec<RecordData>)> = Vec::new();
        for r in prerequisites {
            let name = owner(r, zone)?;
            let t = r.record_type();
            let empty = matches!(r.data, RData::Update0(_));
            if r.ttl != 0 {
                return Err(Malformed::Form("a prerequisite has TTL 0"));
            }
            match r.dns_class {
                DNSClass::ANY | DNSClass::NONE if !empty => {
                    return Err(Malformed::Form("this prerequisite has no RDATA"));
                }
                DNSClass::ANY if t == RecordType::ANY => out.prerequisites.push(Prerequisite::InUse(name)),
                DNSClass::NONE if t == RecordType::ANY => out.prerequisites.push(Prerequisite::NotInUse(name)),
                DNSClass::ANY if !is_meta(t) => out.prerequisites.push(Prerequisite::Exists(name, t)),
                DNSClass::NONE if !is_meta(t) => out.prerequisites.push(Prerequisite::Absent(name, t)),
                DNSClass::IN if !empty && !is_meta(t) => {
                    let d = data(r)?;
                    match values.iter_mut().find(|(n, vt, _)| *n == name && *vt == t) {
                        Some((_, _, set)) => set.push(d),
                        None => values.push((name, t, vec![d])),
                    }
                }
                _ => return Err(Malformed::Form("not a prerequisite RFC 2136 defines")),
            }
        }
        out.prerequisites
            .extend(values.into_iter().map(|(n, t, set)| Prerequisite::Is(n, t, set)));
        for r in updates {
            let name = owner(r, zone)?;
            let t = r.record_type();
            let empty = matches!(r.data, RData::Update0(_));
            let op = match r.dns_class {
                DNSClass::IN if !empty && !is_meta(t) => {
                    let ttl = check_ttl(i64::from(r.ttl)).map_err(Malformed::Refused)?;
                    Op::Add(NewRecord {
                        name,
                        data: data(r)?,
                        ttl,
                        managed: false,
                        site_id: None,
                    })
                }
                DNSClass::ANY if empty && r.ttl == 0 && t == RecordType::ANY => Op::DeleteName(name),
                DNSClass::ANY if empty && r.ttl == 0 && !is_meta(t) => Op::DeleteRrset(name, t),
                DNSClass::NONE if !empty && r.ttl == 0 && !is_meta(t) => Op::DeleteRecord(name, data(r)?),
                _ => return Err(Malformed::Form("not an update RFC 2136 defines")),
            };
            out.ops.push(op);
        }
        Ok(out)
    }

    /// The first change `key` may not make in `zone`, said in words; `None` when it may make
    /// them all. Deleting every RRset at a name needs every type there.
    pub fn beyond(&self, key: &TsigKey, zone: uuid::Uuid) -> Option<String> {
        self.ops.iter().find_map(|op| {
            let (name, types): (&DomainName, Vec<RecordType>) = match op {
                Op::Add(new) => (&new.name, vec![new.data.rtype]),
                Op::DeleteRrset(name, t) => (name, vec![*t]),
                Op::DeleteRecord(name, d) => (name, vec![d.rtype]),
                Op::DeleteName(name) => (name, super::USER_TYPES.to_vec()),
            };
            let t = types.into_iter().find(|t| !key.allows(zone, name, *t))?;
            Some(format!("key {} may not change {t} records at {name}", key.name))
        })
    }

    /// Every name the update reads or changes, each once.
    pub fn names(&self) -> Vec<DomainName> {
        let mut out: Vec<DomainName> = Vec::new();
        let prereq = self.prerequisites.iter().map(|p| match p {
            Prerequisite::InUse(n) | Prerequisite::NotInUse(n) => n,
            Prerequisite::Exists(n, _) | Prerequisite::Absent(n, _) | Prerequisite::Is(n, _, _) => n,
        });
        let ops = self.ops.iter().map(|o| match o {
            Op::Add(new) => &new.name,
            Op::DeleteRrset(n, _) | Op::DeleteName(n) | Op::DeleteRecord(n, _) => n,
        });
        for n in prereq.chain(ops) {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{Name, RData};
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Timestamp, parse_rdata};

    fn zone() -> DomainName {
        DomainName::parse("example.com").unwrap()
    }

    fn n(s: &str) -> DomainName {
        DomainName::resolve_in(s, &zone()).unwrap()
    }

    fn d(t: RecordType, c: &str) -> RecordData {
        parse_rdata(t, c, &zone()).unwrap()
    }

    fn add(name: &str, t: RecordType, c: &str, ttl: u32) -> Op {
        Op::Add(NewRecord {
            name: n(name),
            data: d(t, c),
            ttl,
            managed: false,
            site_id: None,
        })
    }

    fn wire(name: &str, class: DNSClass, ttl: u32, data: RData) -> WireRecord {
        let mut r = WireRecord::from_rdata(Name::from_ascii(name).unwrap(), ttl, data);
        r.dns_class = class;
        r
    }

    use RecordType::{A, TXT};

    #[test]
    fn every_prerequisite_and_update_form_reads_as_rfc_2136_defines_it() {
        let a = RData::A("192.0.2.1".parse().unwrap());
        let prereqs = [
            wire("www.example.com.", DNSClass::ANY, 0, RData::Update0(RecordType::ANY)),
            wire("new.example.com.", DNSClass::NONE, 0, RData::Update0(RecordType::ANY)),
            wire("www.example.com.", DNSClass::ANY, 0, RData::Update0(A)),
            wire("www.example.com.", DNSClass::NONE, 0, RData::Update0(TXT)),
            wire("www.example.com.", DNSClass::IN, 0, a.clone()),
            wire(
                "www.example.com.",
                DNSClass::IN,
                0,
                RData::A("192.0.2.2".parse().unwrap()),
            ),
        ];
        let updates = [
            wire("www.example.com.", DNSClass::IN, 300, a.clone()),
            wire("www.example.com.", DNSClass::ANY, 0, RData::Update0(A)),
            wire("www.example.com.", DNSClass::ANY, 0, RData::Update0(RecordType::ANY)),
            wire("www.example.com.", DNSClass::NONE, 0, a.clone()),
        ];
        let u = Update::parse(&zone(), &prereqs, &updates).unwrap();
        assert_eq!(u.prerequisites.len(), 5, "value-dependent ones make one per RRset");
        assert!(matches!(&u.prerequisites[0], Prerequisite::InUse(x) if *x == n("www")));
        assert!(matches!(&u.prerequisites[1], Prerequisite::NotInUse(x) if *x == n("new")));
        assert!(matches!(&u.prerequisites[2], Prerequisite::Exists(_, A)));
        assert!(matches!(&u.prerequisites[3], Prerequisite::Absent(_, TXT)));
        assert!(matches!(&u.prerequisites[4], Prerequisite::Is(_, A, set) if set.len() == 2));
        assert!(matches!(&u.ops[0], Op::Add(r) if r.ttl == 300));
        assert!(matches!(&u.ops[1], Op::DeleteRrset(_, A)));
        assert!(matches!(&u.ops[2], Op::DeleteName(_)));
        assert!(matches!(&u.ops[3], Op::DeleteRecord(_, r) if r.content == "192.0.2.1"));
        assert_eq!(u.names(), vec![n("www"), n("new")]);
    }

    #[test]
    fn malformed_sections_are_formerr_notzone_or_refused() {
        let a = RData::A("192.0.2.1".parse().unwrap());
        let one = |r: WireRecord| Update::parse(&zone(), &[], &[r]);
        assert_eq!(
            one(wire("www.example.org.", DNSClass::IN, 300, a.clone())).unwrap_err(),
            Malformed::NotZone("www.example.org.".into())
        );
        assert!(
            matches!(
                one(wire("www.example.com.", DNSClass::ANY, 300, RData::Update0(A))),
                Err(Malformed::Form(_))
            ),
            "a delete has TTL 0"
        );
        assert!(matches!(
            one(wire(
                "www.example.com.",
                DNSClass::NONE,
                0,
                RData::Update0(RecordType::ANY)
            )),
            Err(Malformed::Form(_))
        ));
        assert!(
            matches!(
                one(wire("www.example.com.", DNSClass::IN, 300, RData::Update0(A))),
                Err(Malformed::Form(_))
            ),
            "an add has RDATA"
        );
        assert!(matches!(
            one(wire("www.example.com.", DNSClass::CH, 300, a.clone())),
            Err(Malformed::Form(_))
        ));
        assert!(
            matches!(
                one(wire("www.example.com.", DNSClass::IN, 0, a.clone())),
                Err(Malformed::Refused(_))
            ),
            "TTL 0 is below what the API takes"
        );
        assert!(matches!(
            one(wire("www.example.com.", DNSClass::IN, 604_801, a.clone())),
            Err(Malformed::Refused(_))
        ));
        let p = wire("www.example.com.", DNSClass::ANY, 5, RData::Update0(A));
        assert!(matches!(Update::parse(&zone(), &[p], &[]), Err(Malformed::Form(_))));
    }

    #[test]
    fn a_key_may_change_only_what_its_rules_say() {
        let zone_id = Uuid::from_u128(7);
        let key = TsigKey {
            id: Uuid::nil(),
            team_id: Uuid::nil(),
            label: "acme".into(),
            name: DomainName::parse("acme.x.tsig").unwrap(),
            algorithm: crate::domain::TsigAlgorithm::HmacSha1,
            secret: crate::seal::Sealer::ephemeral().seal("c", b"s"),
            rules: vec![crate::domain::KeyRule {
                zone_id,
                names: vec![n("_acme-challenge")],
                subtrees: vec![],
                types: vec![TXT],
            }],
            transfer: false,
            created_at: Timestamp::now(),
            created_by: None,
        };
        let ok = Update {
            prerequisites: vec![],
            ops: vec![
                add("_acme-challenge", TXT, "token", 60),
                Op::DeleteRrset(n("_acme-challenge"), TXT),
            ],
        };
        assert_eq!(ok.beyond(&key, zone_id), None);
        assert!(ok.beyond(&key, Uuid::from_u128(8)).is_some(), "another zone");
        let wrong_type = Update {
            prerequisites: vec![],
            ops: vec![add("_acme-challenge", A, "192.0.2.1", 60)],
        };
        assert!(wrong_type.beyond(&key, zone_id).unwrap().contains("A records"));
        let all_at_name = Update {
            prerequisites: vec![],
            ops: vec![Op::DeleteName(n("_acme-challenge"))],
        };
        assert!(
            all_at_name.beyond(&key, zone_id).is_some(),
            "deleting every type needs every type"
        );
    }
}
