//! Stored outcomes of requests made with an `Idempotency-Key`, per token. The API decides
//! what may be stored (never a secret); this file only keeps rows and sweeps expired ones.

use redb::ReadableTable;
use uuid::Uuid;

use super::tables::{IDEMPOTENCY, IDEMPOTENCY_BY_AGE, IdempotencyRecord};
use super::{Result, WriteCtx};
use crate::domain::unix_now;

/// How long an idempotency key is remembered, and how long a first request may run before
/// its key is taken as abandoned (the server died mid-request).
pub const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;
pub const IDEMPOTENCY_RUNNING_SECS: u64 = 120;
/// Rows one sweep removes at most: keeps each sweep a short transaction.
const SWEEP_BATCH: usize = 10_000;

/// What `begin_idempotent` found for a key.
#[derive(Debug)]
pub enum Idem {
    Proceed,
    Replay(IdempotencyRecord),
    Mismatch,
    InFlight,
}

impl WriteCtx {
    /// Claims `key` for `token`, or says why not.
    pub fn begin_idempotent(&mut self, token: Uuid, key: &str, fingerprint: &str) -> Result<Idem> {
        let mut t = self.txn().open_table(IDEMPOTENCY)?;
        let now = unix_now();
        let existing = t.get((token.as_u128(), key))?.map(|v| v.value());
        if let Some(rec) = &existing {
            let age = now.saturating_sub(rec.created);
            let abandoned = rec.status.is_none() && age > IDEMPOTENCY_RUNNING_SECS;
            if age < IDEMPOTENCY_TTL_SECS && !abandoned {
                return Ok(if rec.fingerprint != fingerprint {
                    Idem::Mismatch
                } else if rec.status.is_none() {
                    Idem::InFlight
                } else {
                    Idem::Replay(rec.clone())
                });
            }
        }
        let rec = IdempotencyRecord {
            fingerprint: fingerprint.into(),
            created: now,
            status: None,
            body: None,
            location: None,
            etag: None,
        };
        t.insert((token.as_u128(), key), &rec)?;
        let mut by_age = self.txn().open_table(IDEMPOTENCY_BY_AGE)?;
        if let Some(old) = existing {
            by_age.remove((old.created, token.as_u128(), key))?;
        }
        by_age.insert((now, token.as_u128(), key), ())?;
        Ok(Idem::Proceed)
    }

    /// Stores the first response for a key (or forgets the key when `status` is `None`). The
    /// caller has already removed every secret from `body`.
    pub fn finish_idempotent(
        &mut self,
        token: Uuid,
        key: &str,
        status: Option<u16>,
        body: String,
        location: Option<String>,
        etag: Option<String>,
    ) -> Result<()> {
        let mut t = self.txn().open_table(IDEMPOTENCY)?;
        let Some(mut rec) = t.get((token.as_u128(), key))?.map(|v| v.value()) else {
            return Ok(());
        };
        match status {
            Some(s) => {
                rec.status = Some(s);
                rec.body = Some(body);
                rec.location = location;
                rec.etag = etag;
                t.insert((token.as_u128(), key), &rec)?;
            }
            None => {
                t.remove((token.as_u128(), key))?;
                self.txn()
                    .open_table(IDEMPOTENCY_BY_AGE)?
                    .remove((rec.created, token.as_u128(), key))?;
            }
        }
        Ok(())
    }

    /// Removes keys older than the TTL, up to `SWEEP_BATCH` of them; returns how many went.
    pub fn sweep_idempotent(&mut self, now: u64) -> Result<usize> {
        let cutoff = now.saturating_sub(IDEMPOTENCY_TTL_SECS);
        let mut by_age = self.txn().open_table(IDEMPOTENCY_BY_AGE)?;
        let mut expired: Vec<(u64, u128, String)> = Vec::new();
        for entry in by_age.range((0u64, 0u128, "")..(cutoff, 0u128, ""))?.take(SWEEP_BATCH) {
            let (k, _) = entry?;
            let (created, token, key) = k.value();
            expired.push((created, token, key.to_string()));
        }
        let mut rows = self.txn().open_table(IDEMPOTENCY)?;
        for (created, token, key) in &expired {
            by_age.remove((*created, *token, key.as_str()))?;
            rows.remove((*token, key.as_str()))?;
        }
        Ok(expired.len())
    }
}
