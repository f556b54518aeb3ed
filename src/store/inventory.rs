//! What the metrics scrape reads: counts from the tables' lengths, and rows only where they
//! are few (zones below the per-zone limit, open jobs up to a bound).

use redb::{ReadableTable, ReadableTableMetadata};
use uuid::Uuid;

use super::read::Tables;
use super::tables::{JOBS, OPEN_JOBS, RECORDS, TEAMS, ZONES};
use super::{Reader, Result};
use crate::domain::Timestamp;
use crate::metrics::Inventory;

/// Most open jobs read for their step and state; past it the rest count as the last seen.
const MAX_JOBS_READ: usize = 10_000;

impl<T: Tables> Reader<T> {
    /// The store's figures for a scrape; series per zone only with at most `per_zone_limit`
    /// zones.
    pub fn inventory(&self, per_zone_limit: usize) -> Result<Inventory> {
        let zones = self.txn.table(ZONES)?;
        let zone_count = zones.len()?;
        let per_zone = if zone_count <= per_zone_limit as u64 {
            let mut all = Vec::with_capacity(zone_count as usize);
            for entry in zones.iter()? {
                let zone = entry?.1.value();
                all.push((zone.name.to_string(), zone.serial, zone.record_count));
            }
            all.sort();
            Some(all)
        } else {
            None
        };
        let jobs = self.txn.table(JOBS)?;
        let mut open: Vec<(&'static str, &'static str, u64)> = Vec::new();
        let mut oldest: Option<Timestamp> = None;
        for entry in self.txn.table(OPEN_JOBS)?.iter()?.take(MAX_JOBS_READ) {
            let id = Uuid::from_u128(entry?.0.value());
            let Some(job) = jobs.get(id.as_u128())?.map(|v| v.value()) else {
                continue;
            };
            let key = (job.step.as_str(), job.state.as_str());
            match open.iter_mut().find(|(s, t, _)| (*s, *t) == key) {
                Some(slot) => slot.2 += 1,
                None => open.push((key.0, key.1, 1)),
            }
            oldest = Some(oldest.map_or(job.created_at, |o| o.min(job.created_at)));
        }
        open.sort();
        Ok(Inventory {
            teams: self.txn.table(TEAMS)?.len()?,
            zones: zone_count,
            records: self.txn.table(RECORDS)?.len()?,
            per_zone,
            open_jobs: open,
            oldest_open_job_secs: oldest.map_or(0, |o| Timestamp::now().unix_secs().saturating_sub(o.unix_secs())),
        })
    }
}
