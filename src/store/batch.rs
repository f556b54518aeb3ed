//! Record batches: deletes, patches and creates applied together in one transaction and one
//! serial, or not at all. A batch is first planned (every item checked against the zone as
//! the earlier items leave it: deletes, then patches, then creates) and only a plan without
//! a single error is written.

use std::collections::HashMap;

use uuid::Uuid;

use super::read::Tables;
use super::records::{put_record, remove_record};
use super::{Change, Reader, Result, StoreError, WriteCtx};
use crate::config::Caps;
use crate::domain::rules::{self, Refusal};
use crate::domain::{DomainName, NewRecord, Record, ResourceKind, Timestamp, Zone};

/// Most items (deletes + patches + creates) one batch may hold.
pub const MAX_BATCH_ITEMS: usize = 5_000;

/// Record changes applied together: all of them in one transaction, or none.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub deletes: Vec<Uuid>,
    /// Record id and its new state (name, data and TTL already resolved by the caller).
    pub patches: Vec<(Uuid, NewRecord)>,
    pub creates: Vec<NewRecord>,
}

#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub deleted: Vec<Uuid>,
    pub updated: Vec<Record>,
    pub created: Vec<Record>,
    pub serial: u32,
}

/// A batch that checks out: the rows it removes, replaces (old, new) and adds.
pub(super) struct Plan {
    zone: Zone,
    removed: Vec<Record>,
    updated: Vec<(Record, Record)>,
    created: Vec<Record>,
}

/// An item's error, for `StoreError::Batch`.
type ItemError = (String, &'static str, String);

fn item_error(item: String, refusal: &Refusal) -> ItemError {
    let field = match refusal {
        Refusal::Invalid { field, .. } => field,
        Refusal::Duplicate(_) => "content",
        Refusal::Managed(_) => "id",
    };
    (item, field, refusal.to_string())
}

impl<T: Tables> Reader<T> {
    /// Checks every item of `batch`; all the errors, or the plan.
    pub(super) fn plan_batch(&self, team: Uuid, zone_id: Uuid, batch: &Batch, caps: &Caps) -> Result<Plan> {
        let zone = self.team_zone(team, zone_id)?;
        let mut errors: Vec<ItemError> = Vec::new();
        // The rows the deletes and patches name, each once.
        let mut olds: HashMap<Uuid, Record> = HashMap::new();
        let named = batch
            .deletes
            .iter()
            .enumerate()
            .map(|(i, id)| (format!("deletes[{i}]"), id));
        let named = named.chain(
            batch
                .patches
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (format!("patches[{i}]"), id)),
        );
        for (item, id) in named {
            match self.record(zone_id, *id)? {
                None => errors.push((item, "id", "no such record in this zone".into())),
                Some(row) => match rules::editable(&row) {
                    Err(refusal) => errors.push(item_error(item, &refusal)),
                    Ok(()) if olds.insert(*id, row).is_some() => {
                        errors.push((item, "id", "the record appears twice in the batch".into()))
                    }
                    Ok(()) => {}
                },
            }
        }
        // The records at every name the batch touches, as the batch leaves them.
        let mut at: HashMap<DomainName, Vec<Record>> = HashMap::new();
        let names = olds
            .values()
            .map(|r| &r.name)
            .chain(batch.patches.iter().map(|(_, n)| &n.name))
            .chain(batch.creates.iter().map(|n| &n.name));
        for name in names {
            if !at.contains_key(name) {
                at.insert(name.clone(), self.records_at(zone_id, name)?);
            }
        }
        let now = Timestamp::now();
        let mut removed = Vec::new();
        for id in &batch.deletes {
            if let Some(old) = olds.get(id) {
                at.entry(old.name.clone()).or_default().retain(|r| r.id != *id);
                removed.push(old.clone());
            }
        }
        let mut updated = Vec::new();
        for (i, (id, new)) in batch.patches.iter().enumerate() {
            let Some(old) = olds.get(id) else { continue };
            at.entry(old.name.clone()).or_default().retain(|r| r.id != *id);
            let here = at.entry(new.name.clone()).or_default();
            if let Err(refusal) = rules::check(&zone.name, new, here) {
                errors.push(item_error(format!("patches[{i}]"), &refusal));
                continue;
            }
            let row = Record {
                id: old.id,
                created_at: old.created_at,
                ..Record::new(zone_id, new, now)
            };
            here.push(row.clone());
            updated.push((old.clone(), row));
        }
        let mut created = Vec::new();
        for (i, new) in batch.creates.iter().enumerate() {
            let here = at.entry(new.name.clone()).or_default();
            if let Err(refusal) = rules::check(&zone.name, new, here) {
                errors.push(item_error(format!("creates[{i}]"), &refusal));
                continue;
            }
            let row = Record::new(zone_id, new, now);
            here.push(row.clone());
            created.push(row);
        }
        let added = created.len() as i64 - removed.len() as i64;
        if zone.record_count as i64 + added > caps.records_per_zone as i64 {
            let message = format!("a zone holds at most {} records", caps.records_per_zone);
            errors.push(("creates".into(), "too_many_records", message));
        } else {
            let held = self.team_records(team)?;
            if added > 0 && held.saturating_add(added as u64) > caps.records_per_team {
                let message = format!(
                    "an account holds at most {} records across its zones; it holds {held}",
                    caps.records_per_team
                );
                errors.push(("creates".into(), "too_many_records", message));
            }
        }
        if !errors.is_empty() {
            return Err(StoreError::Batch(errors));
        }
        Ok(Plan {
            zone,
            removed,
            updated,
            created,
        })
    }
}

impl Plan {
    /// `2 deleted, 1 updated, 3 created`, for audit events.
    pub(super) fn counts(&self) -> String {
        format!(
            "{} deleted, {} updated, {} created",
            self.removed.len(),
            self.updated.len(),
            self.created.len()
        )
    }
}

impl WriteCtx {
    /// Applies a batch as one change (one serial, one journal entry, one snapshot swap), or
    /// nothing and every item's error.
    pub fn apply_batch(&mut self, team: Uuid, zone_id: Uuid, batch: Batch) -> Result<BatchOutcome> {
        let caps = self.caps;
        let plan = self.plan_batch(team, zone_id, &batch, &caps)?;
        let summary = plan.counts();
        self.write_plan(team, plan, "zone.batch_applied", summary)
    }

    /// Writes a checked plan as one change of its zone: one serial, one journal entry, one
    /// audit event (`action`, `summary`), then its changes for the snapshot.
    pub(super) fn write_plan(&mut self, team: Uuid, plan: Plan, action: &str, summary: String) -> Result<BatchOutcome> {
        let Plan {
            zone,
            removed,
            updated,
            created,
        } = plan;
        for old in removed.iter().chain(updated.iter().map(|(old, _)| old)) {
            remove_record(self.txn(), old)?;
        }
        for row in updated.iter().map(|(_, new)| new).chain(&created) {
            put_record(self.txn(), row)?;
        }
        let journal_removed: Vec<Record> = removed.iter().chain(updated.iter().map(|(o, _)| o)).cloned().collect();
        let journal_added: Vec<Record> = updated.iter().map(|(_, n)| n).chain(&created).cloned().collect();
        let zone = self.touch_zone(
            zone,
            created.len() as i64 - removed.len() as i64,
            &journal_removed,
            &journal_added,
        )?;
        self.audit(team, action, (ResourceKind::Zone, zone.id), Some(zone.id), summary)?;
        for old in &removed {
            self.emit(Change::RecordRemoved(old.clone()));
        }
        for (old, new) in &updated {
            self.emit(Change::RecordPut {
                old: Some(Box::new(old.clone())),
                new: new.clone(),
            });
        }
        for row in &created {
            self.emit(Change::RecordPut {
                old: None,
                new: row.clone(),
            });
        }
        Ok(BatchOutcome {
            deleted: removed.iter().map(|r| r.id).collect(),
            updated: updated.into_iter().map(|(_, n)| n).collect(),
            created,
            serial: zone.serial,
        })
    }
}
