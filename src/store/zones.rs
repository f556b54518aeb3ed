//! Writes for zones and records, with the RFC rules that need the zone's other records.

use std::collections::HashMap;

use hickory_proto::rr::RecordType;
use redb::{ReadableTable, Table};
use uuid::Uuid;

use super::read::decode;
use super::{
    Change, JOURNAL, RECORD_NAMES, RECORDS, Record, Result, Soa, StoreError, TEAM_RECORDS, TEAM_ZONES, WriteCtx,
    ZONE_NAMES, ZONES, Zone, new_id,
};
use crate::config::{DnsConfig, ZoneDefaults};
use crate::domain::{DomainName, RecordData, now_rfc3339};

/// Changes kept per zone for IXFR; a secondary further behind gets the whole zone (AXFR).
pub const JOURNAL_ENTRIES: u32 = 10_000;

/// One change of a zone, from serial `from` to serial `to`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JournalEntry {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

#[derive(Debug, Clone)]
pub struct NewRecord {
    pub name: DomainName,
    pub data: RecordData,
    pub ttl: u32,
    pub managed: bool,
    /// Set on the managed records a site's provisioning adds.
    pub site_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct RecordPatch {
    pub name: Option<DomainName>,
    pub data: Option<RecordData>,
    pub ttl: Option<u32>,
}

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

/// A zone to create: its apex, SOA and initial records (managed apex NS among them).
#[derive(Debug, Clone)]
pub struct ZoneSeed {
    pub name: DomainName,
    pub serial: u32,
    pub soa: Soa,
    pub records: Vec<NewRecord>,
}

impl ZoneSeed {
    /// A new zone as the platform makes it: SOA and apex NS from the configuration, both
    /// managed, serial starting at the current Unix time.
    pub fn fresh(name: DomainName, dns: &DnsConfig, defaults: &ZoneDefaults) -> ZoneSeed {
        let soa = Soa {
            mname: dot(&dns.nameservers[0]),
            rname: dot(&dns.hostmaster),
            refresh: defaults.refresh,
            retry: defaults.retry,
            expire: defaults.expire,
            minimum: defaults.minimum,
            ttl: defaults.soa_ttl,
        };
        let records = dns
            .nameservers
            .iter()
            .map(|ns| NewRecord {
                name: name.clone(),
                data: crate::domain::parse_rdata("NS", &dot(ns), &name).expect("config validated nameserver names"),
                ttl: defaults.ns_ttl,
                managed: true,
                site_id: None,
            })
            .collect();
        ZoneSeed {
            name,
            serial: crate::domain::unix_now() as u32,
            soa,
            records,
        }
    }
}

impl ZoneSeed {
    /// The zone and record rows this seed would be stored as, without a store: for tests,
    /// benches and fuzzing that build snapshots directly.
    pub fn detached_rows(&self) -> (Zone, Vec<Record>) {
        let now = now_rfc3339();
        let id = new_id();
        let rows: Vec<Record> = self.records.iter().map(|r| record_row(id, r, &now)).collect();
        let zone = Zone {
            id,
            team_id: Uuid::nil(),
            name: self.name.clone(),
            serial: self.serial,
            soa: self.soa.clone(),
            nameservers: Vec::new(),
            record_count: rows.len() as u64,
            created_at: now.clone(),
            updated_at: now,
        };
        (zone, rows)
    }
}

fn dot(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// `www.example.com` → `com.example.www`: zone names sorted so that a zone's descendants
/// follow it in one range.
pub(crate) fn reversed(name: &str) -> String {
    name.rsplit('.').collect::<Vec<_>>().join(".")
}

/// RFC 1034/2181 rules for adding `new` beside `others` (the records already at its name).
pub(crate) fn check_rules(zone: &DomainName, new: &NewRecord, others: &[Record]) -> Result<()> {
    let rtype = new.data.rtype;
    if rtype == RecordType::SOA {
        return Err(StoreError::invalid(
            "managed_record",
            "type",
            "the SOA record is managed by the platform",
        ));
    }
    if !new.managed && rtype == RecordType::NS && &new.name == zone {
        return Err(StoreError::invalid(
            "managed_record",
            "type",
            "the apex NS set is managed by the platform; NS records are for delegations below the apex",
        ));
    }
    if rtype == RecordType::CNAME && &new.name == zone {
        return Err(StoreError::invalid(
            "invalid_record",
            "type",
            "a CNAME cannot be at the zone apex (RFC 1034 §3.6.2)",
        ));
    }
    let clash = others
        .iter()
        .find(|o| (rtype == RecordType::CNAME) != (o.rtype == "CNAME") || (rtype == RecordType::CNAME));
    if let Some(o) = clash {
        let whose = if o.managed { "managed " } else { "" };
        return Err(StoreError::invalid(
            "invalid_record",
            "type",
            format!(
                "{} already has a {whose}{} record; a CNAME cannot share its name with other data (RFC 1034 §3.6.2)",
                new.name, o.rtype
            ),
        ));
    }
    if let Some(o) = others
        .iter()
        .find(|o| !new.managed && o.managed && o.rtype == rtype.to_string())
    {
        return Err(StoreError::invalid(
            "managed_record",
            "type",
            format!(
                "the {} records of {} are managed by the platform{}",
                o.rtype,
                o.name,
                if o.site_id.is_some() { " for a site" } else { "" }
            ),
        ));
    }
    if others
        .iter()
        .any(|o| o.rtype == rtype.to_string() && o.content == new.data.content)
    {
        return Err(StoreError::conflict(
            "duplicate_record",
            format!("{} {} {} exists", new.name, rtype, new.data.content),
        ));
    }
    Ok(())
}

impl WriteCtx {
    fn zone_row(&self, team: Uuid, id: Uuid) -> Result<Zone> {
        let zones = self.txn.open_table(ZONES)?;
        match zones.get(id.as_u128())? {
            Some(v) => {
                let z: Zone = decode(v.value())?;
                if z.team_id == team {
                    Ok(z)
                } else {
                    Err(StoreError::NotFound("zone"))
                }
            }
            None => Err(StoreError::NotFound("zone")),
        }
    }

    pub(crate) fn records_at(&self, zone: Uuid, name: &str) -> Result<Vec<Record>> {
        let idx = self.txn.open_table(RECORD_NAMES)?;
        let rows = self.txn.open_table(RECORDS)?;
        let z = zone.as_u128();
        let mut out = Vec::new();
        for entry in idx.range((z, name, 0u128)..=(z, name, u128::MAX))? {
            let id = entry?.0.value().2;
            if let Some(v) = rows.get((z, id))? {
                out.push(decode(v.value())?);
            }
        }
        Ok(out)
    }

    /// Refuses a zone name that exists, or that sits above or below another team's zone
    /// (either would let one team answer for the other's names).
    pub(crate) fn check_zone_name(&self, team: Uuid, name: &DomainName) -> Result<()> {
        let names = self.txn.open_table(ZONE_NAMES)?;
        let zones = self.txn.open_table(ZONES)?;
        let rev = reversed(name.as_str());
        if names.get(rev.as_str())?.is_some() {
            return Err(StoreError::conflict(
                "zone_exists",
                format!("the zone {name} is already served"),
            ));
        }
        let owner = |id: u128| -> Result<Uuid> {
            let v = zones
                .get(id)?
                .ok_or_else(|| StoreError::Storage("dangling zone name".into()))?;
            Ok(decode::<Zone>(v.value())?.team_id)
        };
        let mut ancestor = rev.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('.') {
            ancestor = parent;
            if let Some(id) = names.get(ancestor)?
                && owner(id.value())? != team
            {
                return Err(StoreError::conflict(
                    "zone_exists",
                    format!("{name} is inside a zone served for another account"),
                ));
            }
        }
        let lo = format!("{rev}.");
        let hi = format!("{rev}/"); // '/' sorts right after '.'
        for entry in names.range(lo.as_str()..hi.as_str())? {
            if owner(entry?.1.value())? != team {
                return Err(StoreError::conflict(
                    "zone_exists",
                    format!("a zone below {name} is served for another account"),
                ));
            }
        }
        Ok(())
    }

    pub fn create_zone(&mut self, team: Uuid, seed: ZoneSeed) -> Result<Zone> {
        self.check_zone_name(team, &seed.name)?;
        let caps = self.caps;
        if seed.records.len() as u64 > caps.records_per_zone {
            return Err(StoreError::invalid(
                "too_many_records",
                "records",
                format!("a zone holds at most {} records", caps.records_per_zone),
            ));
        }
        let t = team.as_u128();
        let zones = self.txn.open_table(TEAM_ZONES)?.range((t, 0)..=(t, u128::MAX))?.count() as u64;
        if zones >= caps.zones_per_team {
            return Err(StoreError::invalid(
                "too_many_zones",
                "name",
                format!("an account holds at most {} zones", caps.zones_per_team),
            ));
        }
        self.check_team_records(team, seed.records.len() as i64, "records")?;
        // Check the whole seed in memory first: nothing may be written if any record is bad.
        let mut by_name: HashMap<&DomainName, Vec<Record>> = HashMap::new();
        let now = now_rfc3339();
        let zone_id = new_id();
        let mut rows = Vec::with_capacity(seed.records.len());
        for new in &seed.records {
            if !new.name.is_in(&seed.name) {
                return Err(StoreError::invalid(
                    "invalid_record",
                    "name",
                    format!("{} is outside the zone {}", new.name, seed.name),
                ));
            }
            let others = by_name.entry(&new.name).or_default();
            check_rules(&seed.name, new, others)?;
            let row = record_row(zone_id, new, &now);
            others.push(row.clone());
            rows.push(row);
        }
        let nameservers = seed
            .records
            .iter()
            .filter(|r| r.managed && r.data.rtype == RecordType::NS && r.name == seed.name)
            .map(|r| r.data.content.clone())
            .collect();
        let zone = Zone {
            id: zone_id,
            team_id: team,
            name: seed.name,
            serial: seed.serial,
            soa: seed.soa,
            nameservers,
            record_count: rows.len() as u64,
            created_at: now.clone(),
            updated_at: now,
        };
        self.count_team_records(team, zone.record_count as i64)?;
        self.txn
            .open_table(ZONE_NAMES)?
            .insert(reversed(zone.name.as_str()).as_str(), zone.id.as_u128())?;
        self.txn
            .open_table(TEAM_ZONES)?
            .insert((team.as_u128(), zone.id.as_u128()), ())?;
        self.put_zone(&zone)?;
        self.emit(Change::ZonePut(zone.clone()));
        self.audit(
            team,
            "zone.created",
            "zone",
            zone.id,
            Some(zone.id),
            format!("{} ({} records)", zone.name, zone.record_count),
        )?;
        {
            let mut records = self.txn.open_table(RECORDS)?;
            let mut idx = self.txn.open_table(RECORD_NAMES)?;
            for row in rows {
                put_record(&mut records, &mut idx, &row)?;
                self.changes.push(Change::RecordPut { old: None, new: row });
            }
        }
        Ok(zone)
    }

    /// Refuses `added` more records for `team` past the per-team cap.
    fn check_team_records(&self, team: Uuid, added: i64, field: &'static str) -> Result<()> {
        let held = self
            .txn
            .open_table(TEAM_RECORDS)?
            .get(team.as_u128())?
            .map_or(0, |v| v.value());
        if added > 0 && held.saturating_add(added as u64) > self.caps.records_per_team {
            return Err(StoreError::invalid(
                "too_many_records",
                field,
                format!(
                    "an account holds at most {} records across its zones; it holds {held}",
                    self.caps.records_per_team
                ),
            ));
        }
        Ok(())
    }

    fn count_team_records(&mut self, team: Uuid, delta: i64) -> Result<()> {
        let mut counts = self.txn.open_table(TEAM_RECORDS)?;
        let held = counts.get(team.as_u128())?.map_or(0, |v| v.value());
        counts.insert(team.as_u128(), held.saturating_add_signed(delta))?;
        Ok(())
    }

    fn put_zone(&mut self, zone: &Zone) -> Result<()> {
        self.txn
            .open_table(ZONES)?
            .insert(zone.id.as_u128(), serde_json::to_vec(zone)?.as_slice())?;
        Ok(())
    }

    /// Records the zone changed: serial bumped (RFC 1982 wraps), counts and times updated,
    /// and the difference journaled for IXFR (the entry that leads away from the old serial).
    pub(crate) fn touch_zone(
        &mut self,
        mut zone: Zone,
        count_delta: i64,
        removed: &[Record],
        added: &[Record],
    ) -> Result<Zone> {
        let from = zone.serial;
        zone.serial = match zone.serial.wrapping_add(1) {
            0 => 1,
            s => s,
        };
        let entry = JournalEntry {
            from,
            to: zone.serial,
            removed: removed.to_vec(),
            added: added.to_vec(),
        };
        let mut journal = self.txn.open_table(JOURNAL)?;
        journal.insert((zone.id.as_u128(), from), serde_json::to_vec(&entry)?.as_slice())?;
        journal.remove((zone.id.as_u128(), from.wrapping_sub(JOURNAL_ENTRIES)))?;
        drop(journal);
        zone.record_count = zone.record_count.saturating_add_signed(count_delta);
        self.count_team_records(zone.team_id, count_delta)?;
        zone.updated_at = now_rfc3339();
        self.put_zone(&zone)?;
        self.emit(Change::ZonePut(zone.clone()));
        Ok(zone)
    }

    /// The zone's serial, after checking it is `expected` when one is given (`If-Match`).
    pub fn zone_serial(&self, team: Uuid, zone_id: Uuid, expected: Option<u32>) -> Result<u32> {
        let zone = self.zone_row(team, zone_id)?;
        match expected {
            Some(e) if e != zone.serial => Err(StoreError::Precondition(format!(
                "the zone changed: its serial is {}, not {e}; read it again and retry",
                zone.serial
            ))),
            _ => Ok(zone.serial),
        }
    }

    pub fn create_record(&mut self, team: Uuid, zone_id: Uuid, new: NewRecord) -> Result<Record> {
        let zone = self.zone_row(team, zone_id)?;
        if !new.name.is_in(&zone.name) {
            return Err(StoreError::invalid(
                "invalid_record",
                "name",
                format!("{} is outside the zone {}", new.name, zone.name),
            ));
        }
        if zone.record_count >= self.caps.records_per_zone {
            return Err(StoreError::invalid(
                "too_many_records",
                "zone",
                format!("a zone holds at most {} records", self.caps.records_per_zone),
            ));
        }
        self.check_team_records(team, 1, "zone")?;
        check_rules(&zone.name, &new, &self.records_at(zone_id, new.name.as_str())?)?;
        let row = record_row(zone_id, &new, &now_rfc3339());
        {
            let mut records = self.txn.open_table(RECORDS)?;
            let mut idx = self.txn.open_table(RECORD_NAMES)?;
            put_record(&mut records, &mut idx, &row)?;
        }
        self.touch_zone(zone, 1, &[], std::slice::from_ref(&row))?;
        self.emit(Change::RecordPut {
            old: None,
            new: row.clone(),
        });
        self.audit(team, "record.created", "record", row.id, Some(zone_id), summary(&row))?;
        Ok(row)
    }

    fn record_row_of(&self, team: Uuid, zone_id: Uuid, id: Uuid) -> Result<(Zone, Record)> {
        let zone = self.zone_row(team, zone_id)?;
        let rows = self.txn.open_table(RECORDS)?;
        let row = match rows.get((zone_id.as_u128(), id.as_u128()))? {
            Some(v) => decode::<Record>(v.value())?,
            None => return Err(StoreError::NotFound("record")),
        };
        if row.managed {
            return Err(managed_error(&row));
        }
        Ok((zone, row))
    }

    pub fn update_record(&mut self, team: Uuid, zone_id: Uuid, id: Uuid, patch: RecordPatch) -> Result<Record> {
        let (zone, old) = self.record_row_of(team, zone_id, id)?;
        let data = match patch.data {
            Some(d) => d,
            None => crate::domain::parse_rdata(&old.rtype, &old.content, &zone.name)
                .map_err(|e| StoreError::Storage(format!("stored record does not parse: {e}")))?,
        };
        let new = NewRecord {
            name: patch.name.unwrap_or_else(|| old.name.clone()),
            data,
            ttl: patch.ttl.unwrap_or(old.ttl),
            managed: false,
            site_id: None,
        };
        if !new.name.is_in(&zone.name) {
            return Err(StoreError::invalid(
                "invalid_record",
                "name",
                format!("{} is outside the zone {}", new.name, zone.name),
            ));
        }
        let others: Vec<Record> = self
            .records_at(zone_id, new.name.as_str())?
            .into_iter()
            .filter(|r| r.id != id)
            .collect();
        check_rules(&zone.name, &new, &others)?;
        let mut row = record_row(zone_id, &new, &now_rfc3339());
        row.id = old.id;
        row.created_at = old.created_at.clone();
        {
            let mut records = self.txn.open_table(RECORDS)?;
            let mut idx = self.txn.open_table(RECORD_NAMES)?;
            idx.remove((zone_id.as_u128(), old.name.as_str(), id.as_u128()))?;
            put_record(&mut records, &mut idx, &row)?;
        }
        self.touch_zone(zone, 0, std::slice::from_ref(&old), std::slice::from_ref(&row))?;
        self.audit(
            team,
            "record.updated",
            "record",
            row.id,
            Some(zone_id),
            format!("{} → {}", summary(&old), summary(&row)),
        )?;
        self.emit(Change::RecordPut {
            old: Some(old),
            new: row.clone(),
        });
        Ok(row)
    }

    /// Applies a batch: every item is checked against the zone as the earlier items leave it
    /// (deletes, then patches, then creates), and only when all pass is anything written, as
    /// one change (one serial, one journal entry, one snapshot swap).
    pub fn apply_batch(&mut self, team: Uuid, zone_id: Uuid, batch: Batch) -> Result<BatchOutcome> {
        let zone = self.zone_row(team, zone_id)?;
        let mut errors: Vec<(String, &'static str, String)> = Vec::new();
        let mut olds: HashMap<Uuid, Record> = HashMap::new();
        {
            let rows = self.txn.open_table(RECORDS)?;
            let ids = batch
                .deletes
                .iter()
                .map(|id| ("deletes", id))
                .chain(batch.patches.iter().map(|(id, _)| ("patches", id)));
            for (i, (section, id)) in ids.enumerate() {
                let index = if section == "deletes" {
                    i
                } else {
                    i - batch.deletes.len()
                };
                let item = format!("{section}[{index}]");
                match rows.get((zone_id.as_u128(), id.as_u128()))? {
                    None => errors.push((item, "id", "no such record in this zone".into())),
                    Some(v) => {
                        let row: Record = decode(v.value())?;
                        if row.managed {
                            errors.push((item, "id", managed_error(&row).to_string()));
                        } else if olds.insert(*id, row).is_some() {
                            errors.push((item, "id", "the record appears twice in the batch".into()));
                        }
                    }
                }
            }
        }
        // The records at every name the batch touches, as the batch leaves them.
        let mut at: HashMap<DomainName, Vec<Record>> = HashMap::new();
        let names: Vec<DomainName> = olds
            .values()
            .map(|r| r.name.clone())
            .chain(batch.patches.iter().map(|(_, n)| n.name.clone()))
            .chain(batch.creates.iter().map(|n| n.name.clone()))
            .collect();
        for name in names {
            if let std::collections::hash_map::Entry::Vacant(slot) = at.entry(name) {
                let rows = self.records_at(zone_id, slot.key().as_str())?;
                slot.insert(rows);
            }
        }
        let now = now_rfc3339();
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
            if !new.name.is_in(&zone.name) {
                errors.push((
                    format!("patches[{i}]"),
                    "name",
                    format!("{} is outside the zone {}", new.name, zone.name),
                ));
                continue;
            }
            let here = at.entry(new.name.clone()).or_default();
            if let Err(e) = check_rules(&zone.name, new, here) {
                errors.push((format!("patches[{i}]"), field_of(&e), e.to_string()));
                continue;
            }
            let mut row = record_row(zone_id, new, &now);
            row.id = old.id;
            row.created_at = old.created_at.clone();
            here.push(row.clone());
            updated.push((old.clone(), row));
        }
        let mut created = Vec::new();
        for (i, new) in batch.creates.iter().enumerate() {
            if !new.name.is_in(&zone.name) {
                errors.push((
                    format!("creates[{i}]"),
                    "name",
                    format!("{} is outside the zone {}", new.name, zone.name),
                ));
                continue;
            }
            let here = at.entry(new.name.clone()).or_default();
            if let Err(e) = check_rules(&zone.name, new, here) {
                errors.push((format!("creates[{i}]"), field_of(&e), e.to_string()));
                continue;
            }
            let row = record_row(zone_id, new, &now);
            here.push(row.clone());
            created.push(row);
        }
        let count = zone.record_count as i64 - removed.len() as i64 + created.len() as i64;
        if count > self.caps.records_per_zone as i64 {
            errors.push((
                "creates".into(),
                "too_many_records",
                format!("a zone holds at most {} records", self.caps.records_per_zone),
            ));
        } else if let Err(e) = self.check_team_records(team, created.len() as i64 - removed.len() as i64, "creates") {
            errors.push(("creates".into(), "too_many_records", e.to_string()));
        }
        if !errors.is_empty() {
            return Err(StoreError::Batch(errors));
        }
        // Everything checks out: write it all.
        {
            let mut records = self.txn.open_table(RECORDS)?;
            let mut idx = self.txn.open_table(RECORD_NAMES)?;
            let z = zone_id.as_u128();
            for old in removed.iter().chain(updated.iter().map(|(old, _)| old)) {
                records.remove((z, old.id.as_u128()))?;
                idx.remove((z, old.name.as_str(), old.id.as_u128()))?;
            }
            for row in updated.iter().map(|(_, new)| new).chain(created.iter()) {
                put_record(&mut records, &mut idx, row)?;
            }
        }
        let journal_removed: Vec<Record> = removed
            .iter()
            .cloned()
            .chain(updated.iter().map(|(o, _)| o.clone()))
            .collect();
        let journal_added: Vec<Record> = updated
            .iter()
            .map(|(_, n)| n.clone())
            .chain(created.iter().cloned())
            .collect();
        let zone = self.touch_zone(
            zone,
            created.len() as i64 - removed.len() as i64,
            &journal_removed,
            &journal_added,
        )?;
        self.audit(
            team,
            "zone.batch_applied",
            "zone",
            zone.id,
            Some(zone.id),
            format!(
                "{} deleted, {} updated, {} created",
                removed.len(),
                updated.len(),
                created.len()
            ),
        )?;
        for old in &removed {
            self.emit(Change::RecordRemoved(old.clone()));
        }
        for (old, new) in &updated {
            self.emit(Change::RecordPut {
                old: Some(old.clone()),
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

    pub fn delete_record(&mut self, team: Uuid, zone_id: Uuid, id: Uuid) -> Result<Record> {
        let (zone, old) = self.record_row_of(team, zone_id, id)?;
        self.txn
            .open_table(RECORDS)?
            .remove((zone_id.as_u128(), id.as_u128()))?;
        self.txn
            .open_table(RECORD_NAMES)?
            .remove((zone_id.as_u128(), old.name.as_str(), id.as_u128()))?;
        self.touch_zone(zone, -1, std::slice::from_ref(&old), &[])?;
        self.audit(team, "record.deleted", "record", old.id, Some(zone_id), summary(&old))?;
        self.emit(Change::RecordRemoved(old.clone()));
        Ok(old)
    }
}

fn summary(r: &Record) -> String {
    format!("{} {} {}", r.name, r.rtype, r.content)
}

fn field_of(e: &StoreError) -> &'static str {
    match e {
        StoreError::Invalid { field, .. } => field,
        _ => "content",
    }
}

pub fn managed_error(row: &Record) -> StoreError {
    let what = if row.rtype == "SOA" {
        "the SOA record"
    } else {
        "this record"
    };
    StoreError::Forbidden {
        code: "managed_record",
        message: format!(
            "{what} ({} {}) is managed by the platform: it changes with the zone or site that owns it and cannot be edited or deleted",
            row.name, row.rtype
        ),
    }
}

fn record_row(zone_id: Uuid, new: &NewRecord, now: &str) -> Record {
    Record {
        id: new_id(),
        zone_id,
        name: new.name.clone(),
        rtype: new.data.rtype.to_string(),
        content: new.data.content.clone(),
        ttl: new.ttl,
        managed: new.managed,
        site_id: new.site_id,
        rdata: new.data.wire.clone(),
        created_at: now.to_string(),
        updated_at: now.to_string(),
    }
}

fn put_record(
    records: &mut Table<(u128, u128), &[u8]>,
    idx: &mut Table<(u128, &str, u128), ()>,
    row: &Record,
) -> Result<()> {
    let z = row.zone_id.as_u128();
    records.insert((z, row.id.as_u128()), serde_json::to_vec(row)?.as_slice())?;
    idx.insert((z, row.name.as_str(), row.id.as_u128()), ())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_rdata;

    fn zone() -> DomainName {
        DomainName::parse_zone("example.com").unwrap()
    }

    fn rec(name: &str, t: &str, c: &str) -> NewRecord {
        let z = zone();
        NewRecord {
            name: DomainName::resolve_in(name, &z).unwrap(),
            data: parse_rdata(t, c, &z).unwrap(),
            ttl: 300,
            managed: false,
            site_id: None,
        }
    }

    fn row(name: &str, t: &str, c: &str, managed: bool) -> Record {
        let mut n = rec(name, t, c);
        n.managed = managed;
        record_row(Uuid::nil(), &n, "now")
    }

    #[test]
    fn cname_rules() {
        let z = zone();
        assert!(check_rules(&z, &rec("@", "CNAME", "x.org."), &[]).is_err());
        assert!(check_rules(&z, &rec("www", "CNAME", "x.org."), &[]).is_ok());
        assert!(
            check_rules(
                &z,
                &rec("www", "CNAME", "x.org."),
                &[row("www", "A", "192.0.2.1", false)]
            )
            .is_err()
        );
        assert!(
            check_rules(
                &z,
                &rec("www", "A", "192.0.2.1"),
                &[row("www", "CNAME", "x.org.", false)]
            )
            .is_err()
        );
        assert!(
            check_rules(
                &z,
                &rec("www", "CNAME", "y.org."),
                &[row("www", "CNAME", "x.org.", false)]
            )
            .is_err()
        );
        let e = check_rules(&z, &rec("@", "A", "192.0.2.1"), &[row("@", "A", "192.0.2.1", false)]).unwrap_err();
        assert!(matches!(
            e,
            StoreError::Conflict {
                code: "duplicate_record",
                ..
            }
        ));
        let e = check_rules(&z, &rec("@", "A", "192.0.2.2"), &[row("@", "A", "192.0.2.1", true)]).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Invalid {
                    code: "managed_record",
                    ..
                }
            ),
            "a user record cannot join a managed RRset"
        );
        assert!(check_rules(&z, &rec("@", "TXT", "x"), &[row("@", "A", "192.0.2.1", true)]).is_ok());
    }

    #[test]
    fn apex_ns_is_managed_but_delegations_are_allowed() {
        let z = zone();
        assert!(check_rules(&z, &rec("@", "NS", "ns.other.org."), &[]).is_err());
        assert!(check_rules(&z, &rec("sub", "NS", "ns.other.org."), &[]).is_ok());
    }

    #[test]
    fn reversed_names_sort_descendants_together() {
        assert_eq!(reversed("www.example.com"), "com.example.www");
    }
}
