//! Read queries over one consistent redb snapshot.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::hosting::{JOBS, OPEN_JOBS, PROJECTS, SITES, TEAM_PROJECTS, TEAM_SITES};
use super::{
    Job, Project, RECORDS, Record, Result, Site, StoreError, TEAM_NAMES, TEAM_TOKENS, TEAM_ZONES, TEAMS, TOKENS, Team,
    Token, ZONE_NAMES, ZONES, Zone,
};

/// One page of a list in creation order; `next` is the id to continue after.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
    pub total: u64,
}

pub struct Reader {
    txn: ReadTransaction,
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Storage(format!("corrupt row: {e}")))
}

impl Reader {
    pub(crate) fn new(txn: ReadTransaction) -> Reader {
        Reader { txn }
    }

    pub(crate) fn txn(&self) -> &ReadTransaction {
        &self.txn
    }

    fn get<T: DeserializeOwned>(&self, table: TableDefinition<u128, &[u8]>, id: Uuid) -> Result<Option<T>> {
        let t = self.txn.open_table(table)?;
        t.get(id.as_u128())?.map(|v| decode(v.value())).transpose()
    }

    pub fn team(&self, id: Uuid) -> Result<Option<Team>> {
        self.get(TEAMS, id)
    }

    /// A team by UUID or by name, as operators type it.
    pub fn find_team(&self, name_or_id: &str) -> Result<Option<Team>> {
        if let Ok(id) = Uuid::parse_str(name_or_id)
            && let Some(t) = self.team(id)?
        {
            return Ok(Some(t));
        }
        let names = self.txn.open_table(TEAM_NAMES)?;
        match names.get(name_or_id)? {
            Some(id) => self.team(Uuid::from_u128(id.value())),
            None => Ok(None),
        }
    }

    pub fn teams(&self) -> Result<Vec<Team>> {
        let t = self.txn.open_table(TEAMS)?;
        t.iter()?.map(|e| decode(e?.1.value())).collect()
    }

    pub fn token(&self, id: Uuid) -> Result<Option<Token>> {
        self.get(TOKENS, id)
    }

    pub fn tokens(&self, team: Uuid) -> Result<Vec<Token>> {
        let idx = self.txn.open_table(TEAM_TOKENS)?;
        let t = self.txn.open_table(TOKENS)?;
        let mut out = Vec::new();
        for entry in idx.range((team.as_u128(), 0)..=(team.as_u128(), u128::MAX))? {
            let (k, _) = entry?;
            if let Some(v) = t.get(k.value().1)? {
                out.push(decode(v.value())?);
            }
        }
        Ok(out)
    }

    pub fn zone(&self, id: Uuid) -> Result<Option<Zone>> {
        self.get(ZONES, id)
    }

    /// The zone of `team` with this id: another team's zone is "not found", never "forbidden".
    pub fn team_zone(&self, team: Uuid, id: Uuid) -> Result<Zone> {
        match self.zone(id)? {
            Some(z) if z.team_id == team => Ok(z),
            _ => Err(StoreError::NotFound("zone")),
        }
    }

    pub fn zone_by_name(&self, name: &str) -> Result<Option<Zone>> {
        let names = self.txn.open_table(ZONE_NAMES)?;
        match names.get(super::zones::reversed(name).as_str())? {
            Some(id) => self.zone(Uuid::from_u128(id.value())),
            None => Ok(None),
        }
    }

    pub fn zones(&self, team: Uuid, after: Option<Uuid>, limit: usize) -> Result<Page<Zone>> {
        let idx = self.txn.open_table(TEAM_ZONES)?;
        let zones = self.txn.open_table(ZONES)?;
        let lo = after.map_or(0, |a| a.as_u128().saturating_add(1));
        let hi = (team.as_u128(), u128::MAX);
        let total = idx.range((team.as_u128(), 0)..=hi)?.count() as u64;
        let mut items = Vec::new();
        let mut next = None;
        for entry in idx.range((team.as_u128(), lo)..=hi)? {
            let (k, _) = entry?;
            if items.len() == limit {
                next = items.last().map(|z: &Zone| z.id);
                break;
            }
            if let Some(v) = zones.get(k.value().1)? {
                items.push(decode(v.value())?);
            }
        }
        Ok(Page { items, next, total })
    }

    /// Every zone of every team: the start-up snapshot build.
    pub fn all_zones(&self) -> Result<Vec<Zone>> {
        let t = self.txn.open_table(ZONES)?;
        t.iter()?.map(|e| decode(e?.1.value())).collect()
    }

    pub fn record(&self, zone: Uuid, id: Uuid) -> Result<Option<Record>> {
        let t = self.txn.open_table(RECORDS)?;
        t.get((zone.as_u128(), id.as_u128()))?
            .map(|v| decode(v.value()))
            .transpose()
    }

    pub fn records(&self, zone: Uuid, after: Option<Uuid>, limit: usize) -> Result<Page<Record>> {
        let t = self.txn.open_table(RECORDS)?;
        let z = zone.as_u128();
        let lo = after.map_or(0, |a| a.as_u128().saturating_add(1));
        let mut items = Vec::new();
        let mut next = None;
        for entry in t.range((z, lo)..=(z, u128::MAX))? {
            let (_, v) = entry?;
            if items.len() == limit {
                next = items.last().map(|r: &Record| r.id);
                break;
            }
            items.push(decode(v.value())?);
        }
        let total = match self.zone(zone)? {
            Some(zone) => zone.record_count,
            None => 0,
        };
        Ok(Page { items, next, total })
    }

    /// Every record of a zone, for snapshots and export; `f` sees them one at a time.
    pub fn each_record(&self, zone: Uuid, mut f: impl FnMut(Record) -> Result<()>) -> Result<()> {
        let t = self.txn.open_table(RECORDS)?;
        let z = zone.as_u128();
        for entry in t.range((z, 0)..=(z, u128::MAX))? {
            f(decode(entry?.1.value())?)?;
        }
        Ok(())
    }

    pub fn counts(&self) -> Result<(u64, u64)> {
        Ok((self.txn.open_table(ZONES)?.len()?, self.txn.open_table(RECORDS)?.len()?))
    }

    pub fn project(&self, team: Uuid, id: Uuid) -> Result<Project> {
        match self.get::<Project>(PROJECTS, id)? {
            Some(p) if p.team_id == team => Ok(p),
            _ => Err(StoreError::NotFound("project")),
        }
    }

    pub fn projects(&self, team: Uuid, after: Option<Uuid>, limit: usize) -> Result<Page<Project>> {
        self.team_page(TEAM_PROJECTS, PROJECTS, team, after, limit, |_: &Project| true)
    }

    pub fn site(&self, team: Uuid, id: Uuid) -> Result<Site> {
        match self.get::<Site>(SITES, id)? {
            Some(s) if s.team_id == team => Ok(s),
            _ => Err(StoreError::NotFound("site")),
        }
    }

    /// Any team's site (operators).
    pub fn site_any(&self, id: Uuid) -> Result<Option<Site>> {
        self.get(SITES, id)
    }

    pub fn sites(
        &self,
        team: Uuid,
        after: Option<Uuid>,
        limit: usize,
        keep: impl Fn(&Site) -> bool,
    ) -> Result<Page<Site>> {
        self.team_page(TEAM_SITES, SITES, team, after, limit, keep)
    }

    /// A page of a team's rows of one kind, in creation order, filtered by `keep`; `total`
    /// counts every row that `keep` accepts.
    fn team_page<T: DeserializeOwned + HasId>(
        &self,
        index: TableDefinition<(u128, u128), ()>,
        rows: TableDefinition<u128, &[u8]>,
        team: Uuid,
        after: Option<Uuid>,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Page<T>> {
        let idx = self.txn.open_table(index)?;
        let rows = self.txn.open_table(rows)?;
        let t = team.as_u128();
        let mut items = Vec::new();
        let mut next = None;
        let mut total = 0;
        for entry in idx.range((t, 0)..=(t, u128::MAX))? {
            let id = entry?.0.value().1;
            let Some(v) = rows.get(id)? else { continue };
            let row: T = decode(v.value())?;
            if !keep(&row) {
                continue;
            }
            total += 1;
            if after.is_some_and(|a| id <= a.as_u128()) {
                continue;
            }
            if items.len() == limit {
                next = next.or(items.last().map(|r: &T| r.id()));
                continue;
            }
            items.push(row);
        }
        Ok(Page { items, next, total })
    }

    /// The journal from `serial` up to the zone's current serial, or `None` when it does not
    /// reach back that far (the caller then sends the whole zone).
    pub fn journal_since(&self, zone: Uuid, serial: u32, current: u32) -> Result<Option<Vec<super::JournalEntry>>> {
        let t = self.txn.open_table(super::JOURNAL)?;
        let mut out = Vec::new();
        let mut at = serial;
        while at != current {
            let Some(v) = t.get((zone.as_u128(), at))? else {
                return Ok(None);
            };
            let entry: super::JournalEntry = decode(v.value())?;
            at = entry.to;
            out.push(entry);
            if out.len() > super::JOURNAL_ENTRIES as usize {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    pub fn job(&self, id: Uuid) -> Result<Option<Job>> {
        self.get(JOBS, id)
    }

    /// Jobs not yet ended, oldest first: what a restarted worker resumes.
    pub fn open_jobs(&self) -> Result<Vec<Uuid>> {
        let t = self.txn.open_table(OPEN_JOBS)?;
        t.iter()?.map(|e| Ok(Uuid::from_u128(e?.0.value()))).collect()
    }
}

/// Rows addressed by a UUID, for paging.
pub trait HasId {
    fn id(&self) -> Uuid;
}

impl HasId for Project {
    fn id(&self) -> Uuid {
        self.id
    }
}

impl HasId for Site {
    fn id(&self) -> Uuid {
        self.id
    }
}
