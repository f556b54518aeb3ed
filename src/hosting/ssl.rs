//! The store side of a site's certificate: installing what an SSL step obtained, recording a
//! failed one, asking for renewals, and noticing a certificate that expired. Each runs in a
//! transaction that also moves the site on and leaves an audit event.

use uuid::Uuid;

use super::lifecycle::{self, Request};
use crate::certificates::{challenges, schedule};
use crate::domain::Job;
use crate::domain::{Actor, Certificate, JobStep, Renewal, RenewalState, ResourceKind, Site, SslState, Timestamp};
use crate::store::{Result, Store, StoreError, WriteCtx};

/// A number in `[0, 1)` to spread renewals with.
fn random() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_ne_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Installs the certificate an SSL step obtained as the site's own: its row (key sealed),
/// its renewal time, the site's `ssl_expires_at`. `Ok(Err)` when there is none to install.
pub(super) fn install(tx: &mut WriteCtx, site: &mut Site, step: JobStep) -> Result<Result<(), String>> {
    let Some(issuance) = tx.issuance(site.id)? else {
        return Ok(Err("no certificate was obtained".into()));
    };
    let (Some(obtained), Some(key)) = (issuance.obtained, issuance.key) else {
        return Ok(Err("no certificate was obtained".into()));
    };
    let now = Timestamp::now();
    let cert = Certificate {
        site_id: site.id,
        team_id: site.team_id,
        renewal: Renewal {
            state: RenewalState::Scheduled,
            next_at: schedule::first_renewal(&obtained.info, obtained.window, random(), now),
            window: obtained.window,
            failures: 0,
            last_error: None,
        },
        info: obtained.info,
        chain_pem: obtained.chain_pem,
        key,
        key_type: issuance.key_type,
        issuer_directory: issuance.directory,
        issued_at: now,
        lapsed: false,
    };
    tx.put_certificate(&cert)?;
    tx.remove_issuance(site.id)?;
    site.ssl_expires_at = Some(cert.info.not_after);
    let action = match step {
        JobStep::SslRenewal => "certificate.renewed",
        _ => "certificate.issued",
    };
    let summary = format!(
        "{}: serial {}, valid until {}, issued by {}",
        site.domain, cert.info.serial, cert.info.not_after, cert.info.issuer
    );
    tx.audit(
        site.team_id,
        action,
        (ResourceKind::Site, site.id),
        site.zone_id,
        summary,
    )?;
    Ok(Ok(()))
}

/// After a failed SSL step: the challenge records go, the next attempt places a new order
/// (a certificate already obtained is kept for it) and, after repeated failures, waits; a
/// failed renewal is tried again after a backoff.
pub(super) fn failed(tx: &mut WriteCtx, site: &Site, step: JobStep, why: &str) -> Result<()> {
    challenges::remove_with(tx, site)?;
    if let Some(mut issuance) = tx.issuance(site.id)? {
        if issuance.obtained.is_none() {
            issuance.order_url = None;
        }
        if step == JobStep::Ssl {
            issuance.failures += 1;
            let wait = retry_wait_ms(issuance.failures);
            issuance.retry_at = (wait > 0).then(|| Timestamp::now().plus_millis(wait));
        }
        tx.put_issuance(&issuance)?;
    }
    if step == JobStep::SslRenewal
        && let Some(mut cert) = tx.certificate(site.id)?
    {
        let r = &mut cert.renewal;
        r.failures += 1;
        r.state = RenewalState::Failed;
        r.last_error = Some(why.to_string());
        r.next_at = schedule::retry(&cert.info, r.failures, random(), Timestamp::now());
        tx.put_certificate(&cert)?;
    }
    Ok(())
}

/// Whether a new certificate may be asked for now: not while the site's is being renewed
/// (the two would share one issuance), nor right after repeated failures.
pub(super) fn may_ask(tx: &WriteCtx, site: Uuid) -> Result<()> {
    not_renewing(tx, site)?;
    match tx.issuance(site)?.and_then(|i| i.retry_at) {
        Some(at) if !at.is_past() => Err(StoreError::conflict(
            "ssl_retry_later",
            format!("the last attempts to get a certificate failed; ask again after {at}"),
        )),
        _ => Ok(()),
    }
}

fn not_renewing(tx: &WriteCtx, site: Uuid) -> Result<()> {
    match tx.certificate(site)? {
        Some(c) if c.renewal.state == RenewalState::Renewing => Err(StoreError::conflict(
            "ssl_renewing",
            "the site's certificate is being renewed; try again once it is done",
        )),
        _ => Ok(()),
    }
}

/// The wait before a site may ask for SSL again after its `failures`-th failure in a row:
/// none after the first (fix the cause, ask again), then 1 minute, doubling up to an hour.
fn retry_wait_ms(failures: u32) -> i64 {
    match failures {
        0 | 1 => 0,
        n => (60_000i64 << (n - 2).min(6)).min(3_600_000),
    }
}

/// Asks for the renewal of `site`'s certificate: its job, committed. `Ok(None)` when the site
/// or its certificate is gone; a `Conflict` while the site is busy.
pub async fn request_renewal(store: &Store, site: Uuid) -> Result<Option<(Site, Job)>> {
    store
        .write_as(Actor::system(), move |tx| {
            let Some(mut cert) = tx.certificate(site)? else {
                return Ok(None);
            };
            let Some(mut site) = tx.site_any(site)? else {
                tx.remove_certificate(site)?; // an orphan: never due again
                return Ok(None);
            };
            not_renewing(tx, site.id)?;
            let request = Request::SslRenewal;
            lifecycle::request(&mut site, &request)?;
            let mut job = lifecycle::new_job(&mut site, request.step(), request.params());
            cert.renewal.state = RenewalState::Renewing;
            tx.put_job(&mut job)?;
            tx.put_site(&mut site)?;
            tx.put_certificate(&cert)?;
            let summary = format!("{}: serial {}", site.domain, cert.info.serial);
            tx.audit(
                site.team_id,
                "site.ssl_renewal_requested",
                (ResourceKind::Site, site.id),
                site.zone_id,
                summary,
            )?;
            Ok(Some((site, job)))
        })
        .await
}

/// Puts a due renewal off until `until` (its site was busy).
pub async fn postpone_renewal(store: &Store, site: Uuid, until: Timestamp) -> Result<()> {
    store
        .write_as(Actor::system(), move |tx| {
            if let Some(mut cert) = tx.certificate(site)?
                && cert.renewal.state != RenewalState::Renewing
            {
                cert.renewal.next_at = until;
                tx.put_certificate(&cert)?;
            }
            Ok(())
        })
        .await
}

/// Marks SSL failed on a site whose certificate expired without a renewal: the site says
/// so rather than claim a certificate that no longer works.
pub async fn expire(store: &Store, site: Uuid) -> Result<()> {
    store
        .write_as(Actor::system(), move |tx| {
            let (Some(mut site), Some(cert)) = (tx.site_any(site)?, tx.certificate(site)?) else {
                return Ok(());
            };
            if cert.lapsed || !cert.info.not_after.is_past() {
                return Ok(());
            }
            let mut cert = cert;
            cert.lapsed = true;
            tx.put_certificate(&cert)?;
            if site.ssl != SslState::Active {
                return Ok(()); // asked again already, or failed for its own reason
            }
            let why = match &cert.renewal.last_error {
                Some(e) => format!(
                    "the certificate expired at {}; renewing it failed: {e}",
                    cert.info.not_after
                ),
                None => format!("the certificate expired at {}", cert.info.not_after),
            };
            site.ssl = SslState::Failed;
            site.ssl_renewal_error = Some(why.clone());
            tx.put_site(&mut site)?;
            tx.audit(
                site.team_id,
                "site.ssl_expired",
                (ResourceKind::Site, site.id),
                site.zone_id,
                format!("{}: {why}", site.domain),
            )
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::retry_wait_ms;

    #[test]
    fn a_site_may_ask_again_at_once_after_one_failure_then_waits_longer_each_time() {
        assert_eq!(retry_wait_ms(1), 0);
        assert_eq!(retry_wait_ms(2), 60_000);
        assert_eq!(retry_wait_ms(3), 120_000);
        assert_eq!(retry_wait_ms(7), 32 * 60_000);
        assert_eq!(retry_wait_ms(8), 3_600_000);
        assert_eq!(retry_wait_ms(u32::MAX), 3_600_000);
    }
}
