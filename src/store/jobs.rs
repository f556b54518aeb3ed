//! Provisioning jobs: durable rows, and the index of those not yet ended that a restarted
//! worker resumes.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::tables::{JOBS, OPEN_JOBS};
use super::{Reader, Result, WriteCtx};
use crate::domain::{Job, Timestamp};

impl<T: Tables> Reader<T> {
    pub fn job(&self, id: Uuid) -> Result<Option<Job>> {
        self.row(JOBS, id)
    }

    /// Jobs not yet ended, oldest first: what a restarted worker resumes.
    pub fn open_jobs(&self) -> Result<Vec<Uuid>> {
        let t = self.txn.table(OPEN_JOBS)?;
        t.iter()?.map(|e| Ok(Uuid::from_u128(e?.0.value()))).collect()
    }
}

impl WriteCtx {
    /// Stores a job's state; one that has ended leaves the open index.
    pub fn put_job(&mut self, job: &mut Job) -> Result<()> {
        job.updated_at = Timestamp::now();
        self.txn().open_table(JOBS)?.insert(job.id.as_u128(), &*job)?;
        let mut open = self.txn().open_table(OPEN_JOBS)?;
        if job.state.ended() {
            open.remove(job.id.as_u128())?;
        } else {
            open.insert(job.id.as_u128(), ())?;
        }
        Ok(())
    }

    /// Forgets a job whose site is gone.
    pub fn close_job(&mut self, id: Uuid) -> Result<()> {
        self.txn().open_table(OPEN_JOBS)?.remove(id.as_u128())?;
        Ok(())
    }
}
