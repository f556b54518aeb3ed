//! RFC 2136 UPDATE, the store's side: one message is one write transaction. Its
//! prerequisites are checked and its changes planned (`domain::update`) against the records
//! as that transaction reads them, then written as one batch: the same rules, caps, serial
//! bump, journal entry and snapshot publication as the API's writes, and one audit event
//! naming the key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::RecordType;
use uuid::Uuid;

use super::{Batch, MAX_BATCH_ITEMS, Result, Store, StoreError, WriteCtx};
use crate::domain::update::Update;
use crate::domain::update_plan::{self, MAX_AT_NAME, Unmet};
use crate::domain::{Actor, NewRecord, Record, TsigKey, Zone, parse_rdata};

/// What the DNS server holds to apply UPDATEs: it can do that and nothing else.
#[derive(Clone)]
pub struct Updater {
    store: Store,
}

/// Why an UPDATE changed nothing; each has its rcode.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateRefused {
    /// NOTAUTH: not a zone of the key's team (as if it were not served).
    NotAuth,
    /// The key was revoked after the message was verified.
    Revoked,
    /// A prerequisite does not hold.
    Unmet(Unmet),
    /// REFUSED: a record rule, a managed record or a cap, said in words (for the log).
    Refused(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The zone's serial after the update.
    pub serial: u32,
    /// `2 deleted, 0 updated, 1 created`, or `None` when nothing changed (no new serial).
    pub changes: Option<String>,
}

impl Updater {
    pub(super) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Applies `update`, sent by `client`, to `zone` for `key`; returns once it is committed
    /// and published.
    pub async fn apply(
        &self,
        key: Arc<TsigKey>,
        zone: Uuid,
        update: Update,
        client: IpAddr,
    ) -> Result<Result<UpdateOutcome, UpdateRefused>> {
        self.store
            .write_as(Actor::tsig_key(key.id), move |tx| {
                tx.apply_update(&key, zone, &update, client)
            })
            .await
    }
}

/// The apex SOA as a row, for prerequisites that name it (it is synthesised, not stored).
fn soa_row(zone: &Zone) -> Record {
    let s = &zone.soa;
    Record {
        id: Uuid::nil(),
        zone_id: zone.id,
        name: zone.name.clone(),
        rtype: RecordType::SOA,
        content: format!(
            "{} {} {} {} {} {} {}",
            s.mname, s.rname, zone.serial, s.refresh, s.retry, s.expire, s.minimum
        ),
        ttl: s.ttl,
        managed: true,
        site_id: None,
        rdata: Vec::new(),
        created_at: zone.created_at,
        updated_at: zone.updated_at,
    }
}

impl WriteCtx {
    fn apply_update(
        &mut self,
        key: &TsigKey,
        zone_id: Uuid,
        update: &Update,
        client: IpAddr,
    ) -> Result<Result<UpdateOutcome, UpdateRefused>> {
        if self.tsig_key(key.id)?.is_none() {
            return Ok(Err(UpdateRefused::Revoked));
        }
        let zone = match self.team_zone(key.team_id, zone_id) {
            Ok(z) => z,
            Err(StoreError::NotFound(_)) => return Ok(Err(UpdateRefused::NotAuth)),
            Err(e) => return Err(e),
        };
        // What the message may make the writer read and check: a bounded number of rows.
        let names = update.names();
        let mut held = 0;
        for name in &names {
            let here = self.count_records_at(zone_id, name, MAX_AT_NAME + 1)?;
            held += here;
            if here > MAX_AT_NAME || held > MAX_BATCH_ITEMS {
                let why = format!(
                    "{name} holds more than {MAX_AT_NAME} records, or the names together more than {MAX_BATCH_ITEMS}: change them through the API"
                );
                return Ok(Err(UpdateRefused::Refused(why)));
            }
        }
        let mut at: HashMap<_, _> = HashMap::new();
        for name in names {
            let mut rows = self.records_at(zone_id, &name)?;
            if name == zone.name {
                rows.push(soa_row(&zone));
            }
            at.insert(name, rows);
        }
        if let Err(unmet) = update_plan::check(&update.prerequisites, &at) {
            return Ok(Err(UpdateRefused::Unmet(unmet)));
        }
        let diff = match update_plan::plan(&zone.name, &update.ops, &at) {
            Ok(d) => d,
            Err(refusal) => return Ok(Err(UpdateRefused::Refused(refusal.to_string()))),
        };
        if diff.is_empty() {
            return Ok(Ok(UpdateOutcome {
                serial: zone.serial,
                changes: None,
            }));
        }
        let mut batch = Batch {
            deletes: diff.removed.iter().map(|r| r.id).collect(),
            ..Batch::default()
        };
        for (row, ttl) in diff.retimed {
            let data = parse_rdata(row.rtype, &row.content, &zone.name)
                .map_err(|e| StoreError::Internal(format!("stored record {} does not parse: {e}", row.id)))?;
            let new = NewRecord {
                name: row.name.clone(),
                data,
                ttl,
                managed: false,
                site_id: None,
            };
            batch.patches.push((row.id, new));
        }
        batch.creates = diff.added;
        let caps = self.caps;
        let plan = match self.plan_batch(key.team_id, zone_id, &batch, &caps) {
            Ok(p) => p,
            Err(StoreError::Batch(items)) => {
                let why: Vec<String> = items.into_iter().map(|(_, _, message)| message).collect();
                return Ok(Err(UpdateRefused::Refused(why.join("; "))));
            }
            Err(e) => return Err(e),
        };
        let counts = plan.counts();
        let summary = format!("UPDATE from {client} signed with {}: {counts}", key.name);
        let outcome = self.write_plan(key.team_id, plan, "zone.updated", summary)?;
        Ok(Ok(UpdateOutcome {
            serial: outcome.serial,
            changes: Some(counts),
        }))
    }
}
