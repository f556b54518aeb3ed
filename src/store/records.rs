//! Records: their rows, the index of the records at each name, and single edits. Every edit
//! is checked by `domain::rules` against the records at its name, bumps the zone's serial and
//! journals the difference (`WriteCtx::touch_zone`).

use redb::{ReadableTable, WriteTransaction};
use uuid::Uuid;

use super::read::Tables;
use super::tables::{RECORD_NAMES, RECORDS, RECORDS_RAW};
use super::{Change, PageEnd, Reader, Result, StoreError, WriteCtx};
use crate::domain::{
    DomainName, NewRecord, Record, RecordData, ResourceKind, ServedRecord, Timestamp, Zone, parse_rdata, rules,
};

/// What a record update changes; `None` keeps the field as it is.
#[derive(Debug, Clone, Default)]
pub struct RecordPatch {
    pub name: Option<DomainName>,
    pub data: Option<RecordData>,
    pub ttl: Option<u32>,
}

impl<T: Tables> Reader<T> {
    pub fn record(&self, zone: Uuid, id: Uuid) -> Result<Option<Record>> {
        Ok(self
            .txn
            .table(RECORDS)?
            .get((zone.as_u128(), id.as_u128()))?
            .map(|v| v.value()))
    }

    /// A page of a zone's records, in creation order, each as its stored row: `f` sees the
    /// row's bytes (`Record::public_part` serves them without decoding).
    pub fn record_rows(
        &self,
        zone: Uuid,
        after: Option<Uuid>,
        limit: usize,
        mut f: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<PageEnd> {
        let t = self.txn.table(RECORDS_RAW)?;
        let z = zone.as_u128();
        let lo = after.map_or(0, |a| a.as_u128().saturating_add(1));
        let (mut seen, mut last, mut next) = (0, None, None);
        for entry in t.range((z, lo)..=(z, u128::MAX))? {
            let (key, row) = entry?;
            if seen == limit {
                next = last;
                break;
            }
            seen += 1;
            last = Some(Uuid::from_u128(key.value().1));
            f(row.value())?;
        }
        let total = self.zone(zone)?.map_or(0, |zone| zone.record_count);
        Ok(PageEnd { next, total })
    }

    /// Every record of a zone, for snapshots and export; `f` sees them one at a time.
    pub fn each_record(&self, zone: Uuid, mut f: impl FnMut(Record) -> Result<()>) -> Result<()> {
        let t = self.txn.table(RECORDS)?;
        let z = zone.as_u128();
        for entry in t.range((z, 0)..=(z, u128::MAX))? {
            f(entry?.1.value())?;
        }
        Ok(())
    }

    /// The largest TTL of a zone's records, its SOA's included (what a rollover waits for
    /// caches to drop).
    pub fn max_ttl(&self, zone: &Zone) -> Result<u32> {
        let mut max = zone.soa.ttl;
        self.each_record(zone.id, |r| {
            max = max.max(r.ttl);
            Ok(())
        })?;
        Ok(max)
    }

    /// Every record of `zone` as the DNS snapshot reads it, with its RDATA in wire form: the
    /// rows' other fields are skipped, not decoded, and nothing is allocated per record.
    pub fn each_served(&self, zone: Uuid, mut f: impl FnMut(&ServedRecord<'_>, &[u8]) -> Result<()>) -> Result<()> {
        let t = self.txn.table(RECORDS_RAW)?;
        let z = zone.as_u128();
        let mut rdata = Vec::with_capacity(64);
        for entry in t.range((z, 0)..=(z, u128::MAX))? {
            let (_, value) = entry?;
            let row: ServedRecord<'_> = serde_json::from_slice(value.value())
                .map_err(|e| StoreError::Internal(format!("a stored record of zone {zone} does not decode: {e}")))?;
            let hex = row.rdata.as_bytes();
            let len = data_encoding::HEXLOWER_PERMISSIVE
                .decode_len(hex.len())
                .map_err(|e| StoreError::Internal(format!("a stored record's RDATA is not hex: {e}")))?;
            rdata.resize(len, 0);
            let len = data_encoding::HEXLOWER_PERMISSIVE
                .decode_mut(hex, &mut rdata)
                .map_err(|e| StoreError::Internal(format!("a stored record's RDATA is not hex: {}", e.error)))?;
            f(&row, &rdata[..len])?;
        }
        Ok(())
    }

    /// The records at one owner name.
    pub fn records_at(&self, zone: Uuid, name: &DomainName) -> Result<Vec<Record>> {
        let idx = self.txn.table(RECORD_NAMES)?;
        let rows = self.txn.table(RECORDS)?;
        let z = zone.as_u128();
        let mut out = Vec::new();
        for entry in idx.range((z, name.as_str(), 0u128)..=(z, name.as_str(), u128::MAX))? {
            if let Some(v) = rows.get((z, entry?.0.value().2))? {
                out.push(v.value());
            }
        }
        Ok(out)
    }

    /// How many records are at one owner name, counting no further than `stop`: costs the
    /// index, not the rows.
    pub fn count_records_at(&self, zone: Uuid, name: &DomainName, stop: usize) -> Result<usize> {
        let idx = self.txn.table(RECORD_NAMES)?;
        let z = zone.as_u128();
        let range = idx.range((z, name.as_str(), 0u128)..=(z, name.as_str(), u128::MAX))?;
        Ok(range.take(stop).count())
    }

    /// A record of `team`'s zone that the team may edit: with its zone.
    fn editable(&self, team: Uuid, zone_id: Uuid, id: Uuid) -> Result<(Zone, Record)> {
        let zone = self.team_zone(team, zone_id)?;
        let row = self.record(zone_id, id)?.ok_or(StoreError::NotFound("record"))?;
        rules::editable(&row)?;
        Ok((zone, row))
    }
}

/// Writes a record's row and its name index entry.
pub(crate) fn put_record(txn: &WriteTransaction, row: &Record) -> Result<()> {
    let z = row.zone_id.as_u128();
    txn.open_table(RECORDS)?.insert((z, row.id.as_u128()), row)?;
    txn.open_table(RECORD_NAMES)?
        .insert((z, row.name.as_str(), row.id.as_u128()), ())?;
    Ok(())
}

/// Removes a record's row and its name index entry.
pub(crate) fn remove_record(txn: &WriteTransaction, row: &Record) -> Result<()> {
    let z = row.zone_id.as_u128();
    txn.open_table(RECORDS)?.remove((z, row.id.as_u128()))?;
    txn.open_table(RECORD_NAMES)?
        .remove((z, row.name.as_str(), row.id.as_u128()))?;
    Ok(())
}

impl WriteCtx {
    pub fn create_record(&mut self, team: Uuid, zone_id: Uuid, new: NewRecord) -> Result<Record> {
        let zone = self.team_zone(team, zone_id)?;
        rules::in_zone(&new.name, &zone.name)?;
        if zone.record_count >= self.caps.records_per_zone {
            return Err(StoreError::invalid(
                "too_many_records",
                "zone",
                format!("a zone holds at most {} records", self.caps.records_per_zone),
            ));
        }
        self.check_team_records(team, 1, "zone")?;
        rules::check(&zone.name, &new, &self.records_at(zone_id, &new.name)?)?;
        let row = Record::new(zone_id, &new, Timestamp::now());
        put_record(self.txn(), &row)?;
        self.touch_zone(zone, 1, &[], std::slice::from_ref(&row))?;
        self.emit(Change::RecordPut {
            old: None,
            new: row.clone(),
        });
        self.audit(
            team,
            "record.created",
            (ResourceKind::Record, row.id),
            Some(zone_id),
            row.summary(),
        )?;
        Ok(row)
    }

    pub fn update_record(&mut self, team: Uuid, zone_id: Uuid, id: Uuid, patch: RecordPatch) -> Result<Record> {
        let (zone, old) = self.editable(team, zone_id, id)?;
        let data = match patch.data {
            Some(d) => d,
            None => parse_rdata(old.rtype, &old.content, &zone.name)
                .map_err(|e| StoreError::Internal(format!("stored record {} does not parse: {e}", old.id)))?,
        };
        let name = patch.name.unwrap_or_else(|| old.name.clone());
        let new = NewRecord {
            name,
            data,
            ttl: patch.ttl.unwrap_or(old.ttl),
            managed: false,
            site_id: None,
        };
        let others: Vec<Record> = self
            .records_at(zone_id, &new.name)?
            .into_iter()
            .filter(|r| r.id != id)
            .collect();
        rules::check(&zone.name, &new, &others)?;
        let row = Record {
            id: old.id,
            created_at: old.created_at,
            ..Record::new(zone_id, &new, Timestamp::now())
        };
        remove_record(self.txn(), &old)?;
        put_record(self.txn(), &row)?;
        self.touch_zone(zone, 0, std::slice::from_ref(&old), std::slice::from_ref(&row))?;
        let summary = format!("{} → {}", old.summary(), row.summary());
        self.audit(
            team,
            "record.updated",
            (ResourceKind::Record, row.id),
            Some(zone_id),
            summary,
        )?;
        self.emit(Change::RecordPut {
            old: Some(Box::new(old)),
            new: row.clone(),
        });
        Ok(row)
    }

    /// Removes records of one zone (an operator's action, managed ones included) as one change.
    pub fn remove_records(&mut self, zone: Zone, rows: Vec<Record>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for r in &rows {
            remove_record(self.txn(), r)?;
        }
        self.touch_zone(zone, -(rows.len() as i64), &rows, &[])?;
        rows.into_iter().for_each(|r| self.emit(Change::RecordRemoved(r)));
        Ok(())
    }

    pub fn delete_record(&mut self, team: Uuid, zone_id: Uuid, id: Uuid) -> Result<Record> {
        let (zone, old) = self.editable(team, zone_id, id)?;
        remove_record(self.txn(), &old)?;
        self.touch_zone(zone, -1, std::slice::from_ref(&old), &[])?;
        self.audit(
            team,
            "record.deleted",
            (ResourceKind::Record, old.id),
            Some(zone_id),
            old.summary(),
        )?;
        self.emit(Change::RecordRemoved(old.clone()));
        Ok(old)
    }
}
