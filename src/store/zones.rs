//! Zones: their rows and names, their serial and IXFR journal, and the per-team count of
//! the records they hold.

use hickory_proto::rr::RecordType;
use redb::{ReadableTable, ReadableTableMetadata};
use uuid::Uuid;

use super::read::Tables;
use super::records::put_record;
use super::tables::{
    DNSSEC_KEYS, JOURNAL, JournalEntry, RECORD_NAMES, RECORDS, SIGNED, TEAM_RECORDS, TEAM_ZONES, ZONE_NAMES, ZONES,
};
use super::{Change, Page, Reader, Result, StoreError, WriteCtx};
use crate::domain::{DomainName, NewRecord, Record, ResourceKind, Timestamp, Zone, ZoneSeed, new_id, rules};

/// Changes kept per zone for IXFR; a secondary further behind gets the whole zone (AXFR).
pub const JOURNAL_ENTRIES: u32 = 10_000;

/// `www.example.com` → `com.example.www`: zone names sorted so that a zone's descendants
/// follow it in one range.
pub(crate) fn reversed(name: &str) -> String {
    name.rsplit('.').collect::<Vec<_>>().join(".")
}

impl<T: Tables> Reader<T> {
    pub fn zone(&self, id: Uuid) -> Result<Option<Zone>> {
        self.row(ZONES, id)
    }

    /// The zone of `team` with this id: another team's zone is "not found", never "forbidden".
    pub fn team_zone(&self, team: Uuid, id: Uuid) -> Result<Zone> {
        self.owned(ZONES, team, id)
    }

    pub fn zone_by_name(&self, name: &DomainName) -> Result<Option<Zone>> {
        match self.txn.table(ZONE_NAMES)?.get(reversed(name.as_str()).as_str())? {
            Some(id) => self.zone(Uuid::from_u128(id.value())),
            None => Ok(None),
        }
    }

    /// The served zone holding `name`, the closest one (`shop.example` for `www.shop.example`).
    pub fn zone_holding(&self, name: &DomainName) -> Result<Option<Zone>> {
        let names = self.txn.table(ZONE_NAMES)?;
        let rev = reversed(name.as_str());
        let mut candidate = Some(rev.as_str());
        while let Some(c) = candidate {
            if let Some(id) = names.get(c)? {
                let id = Uuid::from_u128(id.value());
                return self
                    .zone(id)?
                    .map(Some)
                    .ok_or_else(|| StoreError::Internal(format!("zone name {c} points at a missing zone")));
            }
            candidate = c.rsplit_once('.').map(|(parent, _)| parent);
        }
        Ok(None)
    }

    /// A page of a team's zones, in creation order.
    pub fn zones(&self, team: Uuid, after: Option<Uuid>, limit: usize) -> Result<Page<Zone>> {
        self.team_page(TEAM_ZONES, ZONES, team, after, limit)
    }

    /// How many zones `team` holds.
    pub fn zone_count(&self, team: Uuid) -> Result<u64> {
        let t = team.as_u128();
        Ok(self.txn.table(TEAM_ZONES)?.range((t, 0)..=(t, u128::MAX))?.count() as u64)
    }

    /// Every zone of every team: the start-up snapshot build.
    pub fn all_zones(&self) -> Result<Vec<Zone>> {
        let t = self.txn.table(ZONES)?;
        t.iter()?.map(|e| Ok(e?.1.value())).collect()
    }

    /// Zones and records stored, in all.
    pub fn counts(&self) -> Result<(u64, u64)> {
        Ok((self.txn.table(ZONES)?.len()?, self.txn.table(RECORDS)?.len()?))
    }

    /// Records `team` holds across its zones.
    pub fn team_records(&self, team: Uuid) -> Result<u64> {
        Ok(self
            .txn
            .table(TEAM_RECORDS)?
            .get(team.as_u128())?
            .map_or(0, |v| v.value()))
    }

    /// The journal from `serial` up to `current`, or `None` when it does not reach back that
    /// far (the caller then sends the whole zone).
    pub fn journal_since(&self, zone: Uuid, serial: u32, current: u32) -> Result<Option<Vec<JournalEntry>>> {
        let t = self.txn.table(JOURNAL)?;
        let mut out = Vec::new();
        let mut at = serial;
        while at != current {
            let Some(entry) = t.get((zone.as_u128(), at))?.map(|v| v.value()) else {
                return Ok(None);
            };
            at = entry.to;
            out.push(entry);
            if out.len() > JOURNAL_ENTRIES as usize {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    /// Refuses a zone name that exists, or that sits above or below another team's zone
    /// (either would let one team answer for the other's names).
    pub fn check_zone_name(&self, team: Uuid, name: &DomainName) -> Result<()> {
        let names = self.txn.table(ZONE_NAMES)?;
        let rev = reversed(name.as_str());
        if names.get(rev.as_str())?.is_some() {
            return Err(StoreError::conflict(
                "zone_exists",
                format!("the zone {name} is already served"),
            ));
        }
        let foreign = |id: u128| -> Result<bool> {
            let zone = self
                .zone(Uuid::from_u128(id))?
                .ok_or_else(|| StoreError::Internal("a zone name points at a missing zone".into()))?;
            Ok(zone.team_id != team)
        };
        let mut ancestor = rev.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('.') {
            ancestor = parent;
            if let Some(id) = names.get(ancestor)?
                && foreign(id.value())?
            {
                return Err(StoreError::conflict(
                    "zone_exists",
                    format!("{name} is inside a zone served for another account"),
                ));
            }
        }
        let (lo, hi) = (format!("{rev}."), format!("{rev}/")); // '/' sorts right after '.'
        for entry in names.range(lo.as_str()..hi.as_str())? {
            if foreign(entry?.1.value())? {
                return Err(StoreError::conflict(
                    "zone_exists",
                    format!("a zone below {name} is served for another account"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a write whose If-Match (`expected`) is not the zone's serial; without one there
    /// is nothing to read (the write that follows finds the zone, or that it is not the team's).
    pub fn check_if_match(&self, team: Uuid, zone_id: Uuid, expected: Option<u32>) -> Result<()> {
        if expected.is_some() {
            self.zone_serial(team, zone_id, expected)?;
        }
        Ok(())
    }

    /// The zone's serial, after checking it is `expected` when one is given (`If-Match`).
    pub fn zone_serial(&self, team: Uuid, zone_id: Uuid, expected: Option<u32>) -> Result<u32> {
        let zone = self.team_zone(team, zone_id)?;
        match expected {
            Some(e) if e != zone.serial => Err(StoreError::Precondition(format!(
                "the zone changed: its serial is {}, not {e}; read it again and retry",
                zone.serial
            ))),
            _ => Ok(zone.serial),
        }
    }
}

impl WriteCtx {
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
        if self.zone_count(team)? >= caps.zones_per_team {
            return Err(StoreError::invalid(
                "too_many_zones",
                "name",
                format!("an account holds at most {} zones", caps.zones_per_team),
            ));
        }
        self.check_team_records(team, seed.records.len() as i64, "records")?;
        // Check the whole seed first: nothing may be written if any record is bad. Records
        // are checked name by name (in the order given at each name), against the records
        // of that name alone, so no second copy of the zone is made (a million-record import).
        let now = Timestamp::now();
        let zone_id = new_id();
        let mut order: Vec<usize> = (0..seed.records.len()).collect();
        order.sort_by(|&a, &b| seed.records[a].name.cmp(&seed.records[b].name));
        let mut at_name: Vec<Record> = Vec::new();
        for &i in &order {
            let new = &seed.records[i];
            if at_name.first().is_some_and(|r| r.name != new.name) {
                at_name.clear();
            }
            rules::check(&seed.name, new, &at_name)?;
            at_name.push(Record::new(zone_id, new, now));
        }
        let nameservers = seed
            .records
            .iter()
            .filter(|r| r.managed && r.data.rtype == RecordType::NS && r.name == seed.name)
            .map(|r| r.data.content.clone())
            .collect();
        let count = seed.records.len();
        // The rows take the seed's strings rather than copies (collected in place).
        let mut seeds: Vec<Option<NewRecord>> = seed.records.into_iter().map(Some).collect();
        let zone = Zone {
            id: zone_id,
            team_id: team,
            name: seed.name,
            serial: seed.serial,
            soa: seed.soa,
            nameservers,
            record_count: count as u64,
            created_at: now,
            updated_at: now,
            catalog: false,
            dnssec: None,
        };
        self.count_team_records(team, zone.record_count as i64)?;
        self.txn()
            .open_table(ZONE_NAMES)?
            .insert(reversed(zone.name.as_str()).as_str(), zone.id.as_u128())?;
        self.txn()
            .open_table(TEAM_ZONES)?
            .insert((team.as_u128(), zone.id.as_u128()), ())?;
        self.put_zone(&zone)?;
        self.emit(Change::ZonePut(Box::new(zone.clone())));
        let summary = format!("{} ({} records)", zone.name, zone.record_count);
        self.audit(
            team,
            "zone.created",
            (ResourceKind::Zone, zone.id),
            Some(zone.id),
            summary,
        )?;
        for i in order {
            let new = seeds[i].take().expect("each seed record is taken once");
            let row = Record::from_new(zone_id, new, now);
            put_record(self.txn(), &row)?;
            self.emit(Change::RecordPut { old: None, new: row });
        }
        self.catalog_add(&zone)?;
        Ok(zone)
    }

    /// Deletes a zone (an operator's action): its records, its IXFR journal, its names and
    /// its catalog membership go in this one transaction. Refused for the catalog itself and
    /// while a site is hosted in the zone (deleting the site first takes its records).
    pub fn delete_zone(&mut self, id: Uuid) -> Result<Zone> {
        let zone = self.zone(id)?.ok_or(StoreError::NotFound("zone"))?;
        if zone.catalog {
            return Err(StoreError::conflict(
                "catalog_zone",
                format!(
                    "{} is the catalog zone: it goes when [dns] catalog_zone no longer names it",
                    zone.name
                ),
            ));
        }
        let hosted = self.sites(zone.team_id, None, 1, |s| s.zone_id == Some(id))?;
        if let Some(site) = hosted.items.first() {
            return Err(StoreError::conflict(
                "zone_has_sites",
                format!(
                    "the zone hosts {} site(s), {} ({}) among them; delete them first (ipx site delete)",
                    hosted.total, site.domain, site.id
                ),
            ));
        }
        self.remove_zone_rows(&zone)?;
        self.catalog_remove(&zone)?;
        self.emit(Change::ZoneRemoved(Box::new(zone.clone())));
        let summary = format!("{} ({} records)", zone.name, zone.record_count);
        self.audit(
            zone.team_id,
            "zone.deleted",
            (ResourceKind::Zone, zone.id),
            Some(zone.id),
            summary,
        )?;
        Ok(zone)
    }

    /// Removes every row of a zone: records and their name index, journal, names, the zone.
    pub(crate) fn remove_zone_rows(&mut self, zone: &Zone) -> Result<()> {
        let z = zone.id.as_u128();
        let next = z
            .checked_add(1)
            .ok_or_else(|| StoreError::Internal("a zone id of all ones".into()))?;
        self.txn()
            .open_table(RECORDS)?
            .retain_in((z, 0u128)..=(z, u128::MAX), |_, _| false)?;
        self.txn()
            .open_table(RECORD_NAMES)?
            .retain_in((z, "", 0u128)..(next, "", 0u128), |_, _| false)?;
        self.txn()
            .open_table(JOURNAL)?
            .retain_in((z, 0u32)..=(z, u32::MAX), |_, _| false)?;
        // Its DNSSEC keys and signed data go with it.
        self.txn()
            .open_table(DNSSEC_KEYS)?
            .retain_in((z, 0u128)..=(z, u128::MAX), |_, _| false)?;
        self.txn()
            .open_table(SIGNED)?
            .retain_in((z, &[][..])..(next, &[][..]), |_, _| false)?;
        self.txn()
            .open_table(ZONE_NAMES)?
            .remove(reversed(zone.name.as_str()).as_str())?;
        self.txn().open_table(TEAM_ZONES)?.remove((zone.team_id.as_u128(), z))?;
        self.txn().open_table(ZONES)?.remove(z)?;
        self.count_team_records(zone.team_id, -(zone.record_count as i64))
    }

    /// Refuses `added` more records for `team` past the per-team cap.
    pub(crate) fn check_team_records(&self, team: Uuid, added: i64, field: &'static str) -> Result<()> {
        let held = self.team_records(team)?;
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
        let held = self.team_records(team)?;
        self.txn()
            .open_table(TEAM_RECORDS)?
            .insert(team.as_u128(), held.saturating_add_signed(delta))?;
        Ok(())
    }

    fn put_zone(&mut self, zone: &Zone) -> Result<()> {
        self.txn().open_table(ZONES)?.insert(zone.id.as_u128(), zone)?;
        Ok(())
    }

    /// Records the zone changed: serial bumped (RFC 1982 wraps, 0 skipped), counts and times
    /// updated, and the difference journaled for IXFR (the entry that leads away from the
    /// old serial).
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
            signed: None,
        };
        {
            let mut journal = self.txn().open_table(JOURNAL)?;
            journal.insert((zone.id.as_u128(), from), &entry)?;
            journal.remove((zone.id.as_u128(), from.wrapping_sub(JOURNAL_ENTRIES)))?;
        }
        zone.record_count = zone.record_count.saturating_add_signed(count_delta);
        self.count_team_records(zone.team_id, count_delta)?;
        zone.updated_at = Timestamp::now();
        self.put_zone(&zone)?;
        self.emit(Change::ZonePut(Box::new(zone.clone())));
        Ok(zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_names_sort_descendants_together() {
        assert_eq!(reversed("www.example.com"), "com.example.www");
    }

    fn seed(name: &str) -> ZoneSeed {
        let text = format!(
            "$ORIGIN {name}.\n@ 3600 IN SOA ns1.{name}. h.{name}. 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n"
        );
        crate::zonefile::parse(&text, None).unwrap()
    }

    #[test]
    fn deleting_a_zone_leaves_no_row_of_it_and_keeps_every_other() {
        use crate::domain::Actor;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("ipx.redb")).unwrap();
        let (team, zone, kept) = store
            .write_blocking_as(Actor::operator(), |tx| {
                let team = tx.create_team("t")?;
                let zone = tx.create_zone(team.id, seed("d.test"))?;
                let kept = tx.create_zone(team.id, seed("k.test"))?;
                Ok((team.id, zone, kept))
            })
            .unwrap();
        let www = store
            .read_blocking(|r| r.records_at(zone.id, &DomainName::parse("www.d.test").unwrap()))
            .unwrap();
        let z = zone.clone();
        store
            .write_blocking_as(Actor::operator(), move |tx| tx.remove_records(z, www))
            .unwrap();
        assert!(
            store
                .read_blocking(|r| r.journal_since(zone.id, 1, 2))
                .unwrap()
                .is_some(),
            "journaled"
        );
        let gone = store
            .write_blocking_as(Actor::operator(), move |tx| tx.delete_zone(zone.id))
            .unwrap();
        assert_eq!(gone.name.as_str(), "d.test");
        store
            .read_blocking(|r| {
                assert!(r.zone(zone.id)?.is_none());
                assert!(r.zone_by_name(&zone.name)?.is_none());
                assert!(r.journal_since(zone.id, 1, 2)?.is_none(), "the journal goes");
                let mut left = 0;
                r.each_record(zone.id, |_| {
                    left += 1;
                    Ok(())
                })?;
                assert_eq!(left, 0);
                assert!(
                    r.records_at(zone.id, &DomainName::parse("ns1.d.test").unwrap())?
                        .is_empty()
                );
                assert_eq!(r.zone_count(team)?, 1);
                assert_eq!(r.team_records(team)?, kept.record_count, "the team's count follows");
                assert_eq!(r.counts()?, (1, kept.record_count));
                assert!(r.check_zone_name(team, &zone.name).is_ok(), "the name is free");
                Ok(())
            })
            .unwrap();
        let err = store
            .write_blocking_as(Actor::operator(), move |tx| tx.delete_zone(zone.id))
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("zone")), "{err}");
    }
}
