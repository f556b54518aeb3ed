//! What an RFC 2136 UPDATE does to a zone's records: whether its prerequisites hold
//! (`check`), and the record changes its operations make, in order (`plan`). Pure: the store
//! runs both inside the write transaction, over the records as that transaction reads them,
//! and writes the result as one batch.

use std::collections::{BTreeMap, HashMap, HashSet};

use hickory_proto::rr::RecordType;

use super::rules::{self, Refusal};
use super::update::{Op, Prerequisite};
use super::{DomainName, NewRecord, Record};

/// Most records one name may hold before or after an UPDATE that touches it. A larger RRset
/// does not fit a DNS message, and every record at a name is read and checked again by each
/// change there: a name of thousands of records would make one message cost the writer, which
/// every team shares, as much as thousands of messages.
pub const MAX_AT_NAME: usize = 250;

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

/// What makes two records the same record (RFC 2136 §1.1.1): type and data, the names in
/// the data without case.
fn identity(t: RecordType, content: &str) -> (RecordType, String) {
    match t {
        RecordType::TXT | RecordType::CAA => (t, content.to_string()),
        _ => (t, content.to_ascii_lowercase()),
    }
}

/// Checks the prerequisites against `at`, the records at each name the update names (the
/// apex's SOA among them). Costs the records once and each prerequisite its own size.
pub fn check(prerequisites: &[Prerequisite], at: &HashMap<DomainName, Vec<Record>>) -> Result<(), Unmet> {
    let mut sets: HashMap<(&DomainName, RecordType), HashSet<(RecordType, String)>> = HashMap::new();
    for (name, rows) in at {
        for r in rows {
            sets.entry((name, r.rtype))
                .or_default()
                .insert(identity(r.rtype, &r.content));
        }
    }
    let in_use = |n: &DomainName| at.get(n).is_some_and(|rows| !rows.is_empty());
    for p in prerequisites {
        match p {
            Prerequisite::InUse(n) if !in_use(n) => return Err(Unmet::NameNotInUse),
            Prerequisite::NotInUse(n) if in_use(n) => return Err(Unmet::NameInUse),
            Prerequisite::Exists(n, t) if !sets.contains_key(&(n, *t)) => return Err(Unmet::RrsetMissing),
            Prerequisite::Absent(n, t) if sets.contains_key(&(n, *t)) => return Err(Unmet::RrsetPresent),
            Prerequisite::Is(n, t, want) => {
                let want: HashSet<(RecordType, String)> = want.iter().map(|w| identity(*t, &w.content)).collect();
                if sets.get(&(n, *t)) != Some(&want) {
                    return Err(Unmet::RrsetMissing);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A record as the update leaves it: a stored row, or a new record.
enum Entry {
    Kept(Record),
    New(NewRecord),
}

impl Entry {
    fn identity(&self) -> (RecordType, String) {
        match self {
            Self::Kept(r) => identity(r.rtype, &r.content),
            Self::New(n) => identity(n.data.rtype, &n.data.content),
        }
    }

    /// A managed row may not be removed or retimed.
    fn guard(&self) -> Result<(), Refusal> {
        match self {
            Self::Kept(r) => rules::editable(r),
            Self::New(_) => Ok(()),
        }
    }

    fn is_managed_ns(&self) -> bool {
        matches!(self, Self::Kept(r) if r.managed && r.rtype == RecordType::NS)
    }
}

/// The records at one name as the ops leave them, indexed so that each op costs what it
/// touches.
#[derive(Default)]
struct AtName {
    /// In the order they came (rows first): records are created in this order.
    slots: Vec<Option<Entry>>,
    by_identity: HashMap<(RecordType, String), usize>,
    by_type: HashMap<RecordType, Vec<usize>>,
    /// The TTL the last add gave each RRset (RFC 2181 §5.2: an RRset has one TTL).
    ttl: HashMap<RecordType, u32>,
}

impl AtName {
    fn push(&mut self, e: Entry, t: RecordType) {
        let i = self.slots.len();
        self.by_identity.insert(e.identity(), i);
        self.by_type.entry(t).or_default().push(i);
        self.slots.push(Some(e));
    }

    /// Removes the entries of type `t` that `keep` does not keep; refused, before anything is
    /// removed, if one of them is managed.
    fn drop_type(&mut self, t: RecordType, keep: impl Fn(&Entry) -> bool) -> Result<(), Refusal> {
        let Some(list) = self.by_type.get(&t) else {
            return Ok(());
        };
        for e in list.iter().filter_map(|i| self.slots[*i].as_ref()).filter(|e| !keep(e)) {
            e.guard()?;
        }
        let list = self.by_type.remove(&t).unwrap_or_default();
        let mut kept = Vec::new();
        for i in list {
            match self.slots[i].take() {
                Some(e) if keep(&e) => {
                    self.slots[i] = Some(e);
                    kept.push(i);
                }
                Some(e) => {
                    self.by_identity.remove(&e.identity());
                }
                None => {}
            }
        }
        if kept.is_empty() {
            self.ttl.remove(&t);
        } else {
            self.by_type.insert(t, kept);
        }
        Ok(())
    }
}

/// Applies the ops in order (RFC 2136 §3.4.2) to `at`, the records at each name they touch,
/// and returns the difference. An add of a record that exists keeps it; an add gives its
/// whole RRset its TTL; a CNAME replaces the CNAME at its name. Touching a managed record is
/// refused, except that deleting every RRset at the apex leaves its SOA and NS alone, as the
/// RFC says. The record rules (CNAME exclusivity and the rest) are checked on the result by
/// the batch that writes it.
pub fn plan(zone: &DomainName, ops: &[Op], at: &HashMap<DomainName, Vec<Record>>) -> Result<Diff, Refusal> {
    let mut work: BTreeMap<DomainName, AtName> = BTreeMap::new();
    for (name, rows) in at {
        let here = work.entry(name.clone()).or_default();
        for r in rows.iter().filter(|r| r.rtype != RecordType::SOA) {
            here.push(Entry::Kept(r.clone()), r.rtype);
        }
    }
    for op in ops {
        match op {
            Op::Add(new) => {
                let here = work.entry(new.name.clone()).or_default();
                let t = new.data.rtype;
                let id = identity(t, &new.data.content);
                if t == RecordType::CNAME {
                    here.drop_type(t, |e| e.identity() == id)?;
                }
                if !here.by_identity.contains_key(&id) {
                    here.push(Entry::New(new.clone()), t);
                }
                here.ttl.insert(t, new.ttl);
            }
            Op::DeleteRrset(name, t) => {
                if let Some(here) = work.get_mut(name) {
                    here.drop_type(*t, |_| false)?;
                }
            }
            Op::DeleteName(name) => {
                if let Some(here) = work.get_mut(name) {
                    let types: Vec<RecordType> = here.by_type.keys().copied().collect();
                    for t in types {
                        here.drop_type(t, |e| name == zone && e.is_managed_ns())?;
                    }
                }
            }
            Op::DeleteRecord(name, d) => {
                let Some(here) = work.get_mut(name) else { continue };
                let id = identity(d.rtype, &d.content);
                if let Some(&i) = here.by_identity.get(&id) {
                    if let Some(e) = &here.slots[i] {
                        e.guard()?;
                    }
                    here.slots[i] = None;
                    here.by_identity.remove(&id);
                }
            }
        }
    }
    if let Some((name, _)) = work.iter().find(|(_, here)| here.by_identity.len() > MAX_AT_NAME) {
        return Err(Refusal::Invalid {
            code: "too_many_records",
            field: "name",
            message: format!("{name} would hold more than {MAX_AT_NAME} records"),
        });
    }
    let mut diff = Diff::default();
    let mut kept = HashSet::new();
    for here in work.into_values() {
        let ttl = here.ttl;
        for e in here.slots.into_iter().flatten() {
            match e {
                Entry::Kept(r) => {
                    kept.insert(r.id);
                    match ttl.get(&r.rtype) {
                        Some(&t) if !r.managed && t != r.ttl => diff.retimed.push((r, t)),
                        _ => {}
                    }
                }
                Entry::New(mut n) => {
                    n.ttl = ttl.get(&n.data.rtype).copied().unwrap_or(n.ttl);
                    diff.added.push(n);
                }
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

    #[test]
    fn a_managed_record_anywhere_in_an_rrset_refuses_its_delete() {
        let mine = row("www", A, "192.0.2.1", 300, false);
        let site = row("www", A, "192.0.2.80", 300, true);
        let here = at(vec![mine, site]);
        assert!(matches!(
            plan(&zone(), &[Op::DeleteRrset(n("www"), A)], &here),
            Err(Refusal::Managed(_))
        ));
        assert!(matches!(
            plan(&zone(), &[Op::DeleteName(n("www"))], &here),
            Err(Refusal::Managed(_))
        ));
    }

    #[test]
    fn an_add_gives_its_rrset_one_ttl_and_records_keep_the_order_they_came_in() {
        let old = row("www", A, "192.0.2.1", 300, false);
        let here = at(vec![old.clone()]);
        let ops = [
            add("www", A, "192.0.2.2", 300),
            add("www", A, "192.0.2.3", 60),
            add("www", TXT, "x", 300),
        ];
        let diff = plan(&zone(), &ops, &here).unwrap();
        assert_eq!(diff.retimed, vec![(old, 60)]);
        let added: Vec<(&str, u32)> = diff.added.iter().map(|r| (r.data.content.as_str(), r.ttl)).collect();
        assert_eq!(added, [("192.0.2.2", 60), ("192.0.2.3", 60), ("\"x\"", 300)]);
    }

    #[test]
    fn thousands_of_ops_cost_linear_time_and_a_name_holds_at_most_max_at_name_records() {
        let rows: Vec<Record> = (0..5_000)
            .map(|i| row(&format!("n{}", i % 20), TXT, &format!("r{i}"), 300, false))
            .collect();
        let here = at(rows);
        let ops: Vec<Op> = (0..5_000)
            .map(|i| Op::DeleteRecord(n(&format!("n{}", i % 20)), d(TXT, &format!("r{}", i))))
            .collect();
        let started = std::time::Instant::now();
        let diff = plan(&zone(), &ops, &here).unwrap();
        assert_eq!(diff.removed.len(), 5_000);
        let types: Vec<Prerequisite> = (0..5_000)
            .map(|i| Prerequisite::Exists(n("n1"), RecordType::from(1000 + i as u16)))
            .collect();
        assert_eq!(check(&types, &here), Err(Unmet::RrsetMissing));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let full = at((0..MAX_AT_NAME)
            .map(|i| row("full", TXT, &format!("f{i}"), 300, false))
            .collect());
        assert!(
            plan(&zone(), &[add("full", TXT, "f0", 300)], &full).is_ok(),
            "already there"
        );
        assert!(matches!(
            plan(&zone(), &[add("full", TXT, "one more", 300)], &full),
            Err(Refusal::Invalid {
                code: "too_many_records",
                ..
            })
        ));
    }
}
