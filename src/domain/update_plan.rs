//! What an RFC 2136 UPDATE does to a zone's records: whether its prerequisites hold
//! (`check`), and the record changes its operations make, in order (`plan`). Pure: the store
//! runs both inside the write transaction, over the records as that transaction reads them,
//! and writes the result as one batch.

use std::collections::HashMap;

use hickory_proto::rr::RecordType;

use super::rules::{self, Refusal};
use super::update::{Op, Prerequisite};
use super::{DomainName, NewRecord, Record};

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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{RecordData, Timestamp, parse_rdata};

    fn zone() -> DomainName {
        DomainName::parse("example.com").unwrap()
    }

    fn n(s: &str) -> DomainName {
        DomainName::resolve_in(s, &zone()).unwrap()
    }

    fn d(t: RecordType, c: &str) -> RecordData {
        parse_rdata(t, c, &zone()).unwrap()
    }

    fn row(name: &str, t: RecordType, c: &str, ttl: u32, managed: bool) -> Record {
        let new = NewRecord {
            name: n(name),
            data: d(t, c),
            ttl,
            managed,
            site_id: None,
        };
        Record::new(Uuid::nil(), &new, Timestamp::now())
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

    fn at(rows: Vec<Record>) -> HashMap<DomainName, Vec<Record>> {
        let mut map: HashMap<DomainName, Vec<Record>> = HashMap::new();
        for r in rows {
            map.entry(r.name.clone()).or_default().push(r);
        }
        map
    }

    use RecordType::{A, CNAME, NS, TXT};

    #[test]
    fn prerequisites_hold_or_name_the_rcode() {
        let here = at(vec![
            row("www", A, "192.0.2.1", 300, false),
            row("www", A, "192.0.2.2", 300, false),
        ]);
        let ok = |p: Prerequisite| check(&[p], &here);
        assert_eq!(ok(Prerequisite::InUse(n("www"))), Ok(()));
        assert_eq!(ok(Prerequisite::InUse(n("nx"))), Err(Unmet::NameNotInUse));
        assert_eq!(ok(Prerequisite::NotInUse(n("www"))), Err(Unmet::NameInUse));
        assert_eq!(ok(Prerequisite::Exists(n("www"), TXT)), Err(Unmet::RrsetMissing));
        assert_eq!(ok(Prerequisite::Absent(n("www"), A)), Err(Unmet::RrsetPresent));
        let both = vec![d(A, "192.0.2.2"), d(A, "192.0.2.1")];
        assert_eq!(ok(Prerequisite::Is(n("www"), A, both)), Ok(()), "order does not matter");
        let one = vec![d(A, "192.0.2.1")];
        assert_eq!(
            ok(Prerequisite::Is(n("www"), A, one)),
            Err(Unmet::RrsetMissing),
            "exactly the set"
        );
    }

    #[test]
    fn ops_apply_in_order_and_the_result_is_the_difference() {
        let www = row("www", A, "192.0.2.1", 300, false);
        let here = at(vec![www.clone(), row("www", TXT, "\"x\"", 300, false)]);
        // Replace: delete the RRset, then add.
        let diff = plan(
            &zone(),
            &[Op::DeleteRrset(n("www"), A), add("www", A, "192.0.2.9", 60)],
            &here,
        )
        .unwrap();
        assert_eq!(diff.removed, vec![www.clone()]);
        assert_eq!(diff.added.len(), 1);
        assert!(diff.retimed.is_empty());
        // An add that exists sets the RRset's TTL; adding then deleting leaves nothing.
        let diff = plan(
            &zone(),
            &[
                add("www", A, "192.0.2.1", 60),
                add("tmp", TXT, "t", 60),
                Op::DeleteRecord(n("tmp"), d(TXT, "t")),
            ],
            &here,
        )
        .unwrap();
        assert_eq!(diff.retimed, vec![(www.clone(), 60)]);
        assert!(diff.added.is_empty() && diff.removed.is_empty());
        // A CNAME replaces the CNAME at its name.
        let alias = at(vec![row("go", CNAME, "a.example.org.", 300, false)]);
        let diff = plan(&zone(), &[add("go", CNAME, "b.example.org.", 300)], &alias).unwrap();
        assert_eq!((diff.removed.len(), diff.added.len()), (1, 1));
        // Deleting what is not there changes nothing.
        assert!(
            plan(&zone(), &[Op::DeleteName(n("nx"))], &at(vec![]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn managed_records_are_refused_but_deleting_the_apex_leaves_its_ns() {
        let apex_ns = row("@", NS, "ns1.ipx.test.", 86400, true);
        let apex_txt = row("@", TXT, "\"mine\"", 300, false);
        let here = at(vec![apex_ns.clone(), apex_txt.clone()]);
        let diff = plan(&zone(), &[Op::DeleteName(n("@"))], &here).unwrap();
        assert_eq!(
            diff.removed,
            vec![apex_txt],
            "the apex keeps its NS (RFC 2136 §3.4.2.3)"
        );
        assert!(matches!(
            plan(&zone(), &[Op::DeleteRrset(n("@"), NS)], &here),
            Err(Refusal::Managed(_))
        ));
        assert!(matches!(
            plan(&zone(), &[Op::DeleteRecord(n("@"), d(NS, "ns1.ipx.test."))], &here),
            Err(Refusal::Managed(_))
        ));
        let site = at(vec![row("www", A, "192.0.2.80", 300, true)]);
        assert!(matches!(
            plan(&zone(), &[Op::DeleteName(n("www"))], &site),
            Err(Refusal::Managed(_))
        ));
    }
}
