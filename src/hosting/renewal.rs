//! The renewal scheduler: renews each certificate when it is due (`certificates::schedule`
//! says when), as a durable `ssl_renewal` job like any other step. Renewals run one at a
//! time, `[acme] renewal_pause_secs` apart, so a crowd of certificates due together reaches
//! the CA as a trickle inside its rate limits. A certificate that expires anyway turns its
//! site's SSL to `failed`, with the reason, and renewal keeps being tried.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Jobs, ssl};
use crate::domain::Timestamp;
use crate::store::{Store, StoreError};

/// Longest sleep between two looks: renewal windows and the clock move.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// How long a renewal waits when its site is busy with another step.
const BUSY_RETRY_MS: i64 = 60_000;
/// How often a running renewal job is looked at.
const JOB_POLL: Duration = Duration::from_millis(200);

/// Starts the scheduler; `wake` is rung when a certificate is installed (its time may be
/// sooner than the scheduler's next look). Stops when `stop` turns true.
pub fn schedule_renewals(
    store: Store,
    jobs: Jobs,
    wake: Arc<Notify>,
    pause: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let next = match renew_due(&store, &jobs, pause, &mut stop).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "the renewal scheduler cannot read the certificates");
                    Some(Timestamp::now().plus_millis(BUSY_RETRY_MS))
                }
            };
            if *stop.borrow() {
                break;
            }
            let wait = next.map_or(MAX_SLEEP, |at| {
                Duration::from_millis((at.unix_millis() - Timestamp::now().unix_millis()).max(0) as u64).min(MAX_SLEEP)
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wake.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    })
}

/// How many due certificates one look takes: the rest wait for the next look.
const BATCH: usize = 64;

/// Notices expired certificates, then renews every certificate that is due, one at a time;
/// returns when the next renewal or expiry is due.
async fn renew_due(
    store: &Store,
    jobs: &Jobs,
    pause: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Timestamp>, StoreError> {
    loop {
        let now = Timestamp::now();
        let (lapsed, renewals) = store
            .read(move |r| Ok((r.expiries_due(now, BATCH)?, r.renewals_due(now, BATCH)?)))
            .await?;
        for site in &lapsed.sites {
            ssl::expire(store, *site).await?;
        }
        let Some(&due) = renewals.sites.first() else {
            return Ok(match (lapsed.sites.is_empty(), lapsed.next, renewals.next) {
                (false, _, _) => Some(now), // more expired than one look took
                (true, Some(a), Some(b)) => Some(a.min(b)),
                (true, a, b) => a.or(b),
            });
        };
        match ssl::request_renewal(store, due).await {
            Ok(Some((site, job))) => {
                tracing::info!(site = %site.domain, job = %job.id, "renewing the certificate");
                jobs.enqueue(job.id);
                if !until_ended(store, job.id, stop).await {
                    return Ok(None); // shutting down; the job resumes at the next start
                }
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(None),
                }
            }
            Ok(None) => {}
            Err(StoreError::Conflict { .. }) => {
                ssl::postpone_renewal(store, due, now.plus_millis(BUSY_RETRY_MS)).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits for job `id` to end: `false` when the server stops first.
async fn until_ended(store: &Store, id: Uuid, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        match store.read(move |r| r.job(id)).await {
            Ok(Some(job)) if !job.state.ended() => {}
            _ => return true,
        }
        tokio::select! {
            _ = tokio::time::sleep(JOB_POLL) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
}
