//! RFC 2136 UPDATE as the platform reads it: the prerequisite and update sections of a
//! message as typed operations (`Update::parse`, with the RFC's FORMERR and NOTZONE checks),
//! what a key's policy allows (`Update::beyond`), and, over the records at the names it
//! touches, whether its prerequisites hold (`check`) and the record changes it makes
//! (`plan`). Pure: the store runs `check` and `plan` inside the write transaction, so what is
//! checked is what is changed, and hands the changes to the same batch path as the API.

use std::collections::HashMap;

use hickory_proto::rr::{DNSClass, RData, Record as WireRecord, RecordType};

use super::rules::{self, Refusal};
use super::{DomainName, NewRecord, Record, RecordData, TsigKey, check_ttl, from_rdata};

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

/// A prerequisite that does not hold, as RFC 2136 §3.2.5 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet {
    /// NXDOMAIN: the name is not in use.
    NameNotInUse,
    /// YXDOMAIN: the name is in use.
    NameInUse,
    /// NXRRSET: the RRset is missing (or differs).
    RrsetMissing,
    /// YXRRSET: the RRset exists.
    RrsetPresent,
}

/// The record changes an update makes: rows to remove, rows whose TTL changes (RRsets keep
/// one TTL, as RFC 2181 §5.2 wants), and records to add.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub removed: Vec<Record>,
    pub retimed: Vec<(Record, u32)>,
    pub added: Vec<NewRecord>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.retimed.is_empty() && self.added.is_empty()
    }
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

/// Whether two RDATAs of type `t` are the same record: names compare without case.
fn same(t: RecordType, a: &str, b: &str) -> bool {
    match t {
        RecordType::TXT | RecordType::CAA => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Checks the prerequisites against `at`, the records at each name the update names (the
/// apex's SOA among them).
pub fn check(prerequisites: &[Prerequisite], at: &HashMap<DomainName, Vec<Record>>) -> Result<(), Unmet> {
    let rows = |n: &DomainName| at.get(n).map_or(&[][..], Vec::as_slice);
    for p in prerequisites {
        match p {
            Prerequisite::InUse(n) if rows(n).is_empty() => return Err(Unmet::NameNotInUse),
            Prerequisite::NotInUse(n) if !rows(n).is_empty() => return Err(Unmet::NameInUse),
            Prerequisite::Exists(n, t) if !rows(n).iter().any(|r| r.rtype == *t) => return Err(Unmet::RrsetMissing),
            Prerequisite::Absent(n, t) if rows(n).iter().any(|r| r.rtype == *t) => return Err(Unmet::RrsetPresent),
            Prerequisite::Is(n, t, want) => {
                let have: Vec<&Record> = rows(n).iter().filter(|r| r.rtype == *t).collect();
                let all_wanted = want
                    .iter()
                    .all(|w| have.iter().any(|h| same(*t, &h.content, &w.content)));
                let all_had = have
                    .iter()
                    .all(|h| want.iter().any(|w| same(*t, &h.content, &w.content)));
                if have.is_empty() || !all_wanted || !all_had {
                    return Err(Unmet::RrsetMissing);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A record as the update leaves it: a stored row (with its TTL now) or a new record.
enum Entry {
    Kept(Record, u32),
    New(NewRecord),
}

impl Entry {
    fn rtype(&self) -> RecordType {
        match self {
            Self::Kept(r, _) => r.rtype,
            Self::New(n) => n.data.rtype,
        }
    }

    fn content(&self) -> &str {
        match self {
            Self::Kept(r, _) => &r.content,
            Self::New(n) => &n.data.content,
        }
    }

    /// A managed row may not be removed or retimed.
    fn guard(&self) -> Result<(), Refusal> {
        match self {
            Self::Kept(r, _) => rules::editable(r),
            Self::New(_) => Ok(()),
        }
    }
}

/// Applies the ops in order (RFC 2136 §3.4.2) to `at`, the records at each name they touch,
/// and returns the difference. An add of a record that exists sets its TTL; an add to an
/// RRset gives the whole RRset its TTL; a CNAME replaces the CNAME at its name. Touching a
/// managed record is refused, except that deleting every RRset at the apex leaves its SOA
/// and NS alone, as the RFC says. The record rules (CNAME exclusivity and the rest) are
/// checked on the result by the batch that writes it.
pub fn plan(zone: &DomainName, ops: &[Op], at: &HashMap<DomainName, Vec<Record>>) -> Result<Diff, Refusal> {
    let mut work: HashMap<DomainName, Vec<Entry>> = at
        .iter()
        .map(|(n, rows)| {
            let kept = rows.iter().filter(|r| r.rtype != RecordType::SOA);
            (n.clone(), kept.map(|r| Entry::Kept(r.clone(), r.ttl)).collect())
        })
        .collect();
    for op in ops {
        match op {
            Op::Add(new) => {
                let here = work.entry(new.name.clone()).or_default();
                let t = new.data.rtype;
                if t == RecordType::CNAME
                    && let Some(i) = here
                        .iter()
                        .position(|e| e.rtype() == t && !same(t, e.content(), &new.data.content))
                {
                    here[i].guard()?;
                    here.remove(i);
                }
                if !here
                    .iter()
                    .any(|e| e.rtype() == t && same(t, e.content(), &new.data.content))
                {
                    here.push(Entry::New(new.clone()));
                }
                for e in here.iter_mut().filter(|e| e.rtype() == t) {
                    match e {
                        Entry::Kept(r, ttl) if !r.managed => *ttl = new.ttl,
                        Entry::New(n) => n.ttl = new.ttl,
                        Entry::Kept(..) => {}
                    }
                }
            }
            Op::DeleteRrset(name, t) => remove(&mut work, name, |e| e.rtype() == *t)?,
            Op::DeleteName(name) => {
                let apex_ns = |e: &Entry| {
                    name == zone && matches!(e, Entry::Kept(r, _) if r.managed && r.rtype == RecordType::NS)
                };
                remove(&mut work, name, |e| !apex_ns(e))?;
            }
            Op::DeleteRecord(name, d) => remove(&mut work, name, |e| {
                e.rtype() == d.rtype && same(d.rtype, e.content(), &d.content)
            })?,
        }
    }
    let mut diff = Diff::default();
    let mut kept = std::collections::HashSet::new();
    for entries in work.into_values() {
        for e in entries {
            match e {
                Entry::Kept(r, ttl) => {
                    kept.insert(r.id);
                    if ttl != r.ttl {
                        diff.retimed.push((r, ttl));
                    }
                }
                Entry::New(n) => diff.added.push(n),
            }
        }
    }
    diff.removed = at
        .values()
        .flatten()
        .filter(|r| r.rtype != RecordType::SOA && !kept.contains(&r.id))
        .cloned()
        .collect();
    Ok(diff)
}

/// Removes the entries at `name` that `doomed` picks; refused if one is managed.
fn remove(
    work: &mut HashMap<DomainName, Vec<Entry>>,
    name: &DomainName,
    doomed: impl Fn(&Entry) -> bool,
) -> Result<(), Refusal> {
    let Some(here) = work.get_mut(name) else { return Ok(()) };
    for e in here.iter().filter(|e| doomed(e)) {
        e.guard()?;
    }
    here.retain(|e| !doomed(e));
    Ok(())
}
