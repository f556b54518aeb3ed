//! The catalog zone's rows (RFC 9432, `domain::catalog`): a zone of no team whose records
//! list every other zone. A member is added or removed in the very transaction that creates
//! or deletes its zone, through `touch_zone` like any edit, so the catalog's serial, IXFR
//! journal and NOTIFY follow as for any zone. The database remembers which zone is its
//! catalog, so a command run without the server keeps it too.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::records::{put_record, remove_record};
use super::tables::{META, ZONE_NAMES, ZONES};
use super::zones::reversed;
use super::{Change, Reader, Result, StoreError, WriteCtx};
use crate::domain::{Catalog, DomainName, Record, Timestamp, Zone};

/// META: the catalog zone's id, while there is one.
const CATALOG: &str = "catalog_zone";

/// What making the catalog what the configuration says changed.
#[derive(Debug, Default, PartialEq)]
pub struct CatalogSync {
    /// A catalog (by this name) was made, holding every zone.
    pub created: Option<DomainName>,
    /// A catalog (by this name) was removed: no longer configured, or renamed.
    pub removed: Option<DomainName>,
    /// Members added to and removed from a catalog that stayed (zones made or deleted while
    /// the catalog was off, by an older version, or by hand).
    pub added: usize,
    pub dropped: usize,
}

impl<T: Tables> Reader<T> {
    /// The catalog zone, when there is one.
    pub fn catalog(&self) -> Result<Option<Zone>> {
        let Some(id) = self.txn.table(META)?.get(CATALOG)?.map(|v| v.value().to_string()) else {
            return Ok(None);
        };
        let id =
            Uuid::try_parse(&id).map_err(|_| StoreError::Internal(format!("the catalog's id {id:?} is no UUID")))?;
        self.zone(id)
    }
}

impl WriteCtx {
    /// Adds `zone` to the catalog, if there is one.
    pub(crate) fn catalog_add(&mut self, zone: &Zone) -> Result<()> {
        let Some(catalog) = self.catalog()? else { return Ok(()) };
        let row = Record::new(
            catalog.id,
            &Catalog::new(catalog.name.clone()).member(zone),
            Timestamp::now(),
        );
        put_record(self.txn(), &row)?;
        self.touch_zone(catalog, 1, &[], std::slice::from_ref(&row))?;
        self.emit(Change::RecordPut { old: None, new: row });
        Ok(())
    }

    /// Takes `zone` out of the catalog, if it is in one.
    pub(crate) fn catalog_remove(&mut self, zone: &Zone) -> Result<()> {
        let Some(catalog) = self.catalog()? else { return Ok(()) };
        let owner = Catalog::new(catalog.name.clone()).member_name(zone.id);
        let rows = self.records_at(catalog.id, &owner)?;
        self.remove_records(catalog, rows)
    }

    /// Makes the catalog what the configuration says, in this one transaction: `name` (or
    /// none), holding every other zone as a member and nothing else. A name a team's zone
    /// holds, or that sits above or below one, is refused.
    pub fn sync_catalog(&mut self, name: Option<&DomainName>) -> Result<CatalogSync> {
        let mut sync = CatalogSync::default();
        let current = self.catalog()?;
        if let Some(old) = current.as_ref().filter(|c| Some(&c.name) != name) {
            self.drop_catalog(old)?;
            sync.removed = Some(old.name.clone());
        }
        let Some(name) = name else { return Ok(sync) };
        let zones: Vec<Zone> = self.all_zones()?.into_iter().filter(|z| !z.catalog).collect();
        match current.filter(|c| &c.name == name) {
            Some(catalog) => self.reconcile(catalog, &zones, &mut sync)?,
            None => {
                self.check_catalog_name(name, &zones)?;
                self.make_catalog(name, &zones)?;
                sync.created = Some(name.clone());
            }
        }
        Ok(sync)
    }

    fn check_catalog_name(&self, name: &DomainName, zones: &[Zone]) -> Result<()> {
        let clash = |z: &&Zone| {
            let (a, b) = (z.name.as_str(), name.as_str());
            a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
        };
        match zones.iter().find(clash) {
            Some(z) => Err(StoreError::conflict(
                "zone_exists",
                format!(
                    "the catalog zone {name} would overlap the zone {} (team {}); choose another [dns] catalog_zone",
                    z.name, z.team_id
                ),
            )),
            None => Ok(()),
        }
    }

    fn make_catalog(&mut self, name: &DomainName, zones: &[Zone]) -> Result<()> {
        let catalog = Catalog::new(name.clone());
        let mut zone = catalog.zone(1);
        let now = Timestamp::now();
        let rows: Vec<Record> = catalog
            .base()
            .iter()
            .chain(zones.iter().map(|z| catalog.member(z)).collect::<Vec<_>>().iter())
            .map(|r| Record::new(zone.id, r, now))
            .collect();
        zone.record_count = rows.len() as u64;
        self.txn()
            .open_table(ZONE_NAMES)?
            .insert(reversed(name.as_str()).as_str(), zone.id.as_u128())?;
        self.txn().open_table(ZONES)?.insert(zone.id.as_u128(), &zone)?;
        self.txn()
            .open_table(META)?
            .insert(CATALOG, zone.id.to_string().as_str())?;
        self.emit(Change::ZonePut(Box::new(zone.clone())));
        for row in rows {
            put_record(self.txn(), &row)?;
            self.emit(Change::RecordPut { old: None, new: row });
        }
        tracing::info!(catalog = %name, members = zones.len(), "catalog zone made");
        Ok(())
    }

    /// Adds the members missing from `catalog` and drops those of zones that are gone, as one
    /// change of its serial.
    fn reconcile(&mut self, catalog: Zone, zones: &[Zone], sync: &mut CatalogSync) -> Result<()> {
        let c = Catalog::new(catalog.name.clone());
        let mut members = std::collections::HashMap::new();
        self.each_record(catalog.id, |r| {
            if r.rtype == hickory_proto::rr::RecordType::PTR {
                members.insert(r.name.clone(), r);
            }
            Ok(())
        })?;
        let now = Timestamp::now();
        let mut added = Vec::new();
        for z in zones {
            if members.remove(&c.member_name(z.id)).is_none() {
                added.push(Record::new(catalog.id, &c.member(z), now));
            }
        }
        let dropped: Vec<Record> = members.into_values().collect();
        if added.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        for r in &dropped {
            remove_record(self.txn(), r)?;
        }
        for r in &added {
            put_record(self.txn(), r)?;
        }
        let delta = added.len() as i64 - dropped.len() as i64;
        self.touch_zone(catalog, delta, &dropped, &added)?;
        (sync.added, sync.dropped) = (added.len(), dropped.len());
        dropped.into_iter().for_each(|r| self.emit(Change::RecordRemoved(r)));
        added
            .into_iter()
            .for_each(|r| self.emit(Change::RecordPut { old: None, new: r }));
        Ok(())
    }

    fn drop_catalog(&mut self, catalog: &Zone) -> Result<()> {
        self.remove_zone_rows(catalog)?;
        self.txn().open_table(META)?.remove(CATALOG)?;
        self.emit(Change::ZoneRemoved(Box::new(catalog.clone())));
        tracing::info!(catalog = %catalog.name, "catalog zone removed");
        Ok(())
    }
}
