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
/// (a certificate already obtained is kept for it), and a failed renewal is tried again
/// after a backoff.
pub(super) fn failed(tx: &mut WriteCtx, site: &Site, step: JobStep, why: &str) -> Result<()> {
    challenges::remove_with(tx, site)?;
    if let Some(mut issuance) = tx.issuance(site.id)?
        && issuance.obtained.is_none()
    {
        issuance.order_url = None;
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

/// A new certificate is not asked for while the site's is being renewed: the two would
/// share one issuance.
pub(super) fn not_renewing(tx: &WriteCtx, site: Uuid) -> Result<()> {
    match tx.certificate(site)? {
        Some(c) if c.renewal.state == RenewalState::Renewing => Err(StoreError::conflict(
            "ssl_renewing",
            "the site's certificate is being renewed; try again once it is done",
        )),
        _ => Ok(()),
    }
}

/// Asks for the renewal of `site`'s certificate: its job, committed. `Ok(None)` when the site
/// or its certificate is gone; a `Conflict` while the site is busy.
pub async fn request_renewal(store: &Store, site: Uuid) -> Result<Option<(Site, Job)>> {
    store
        .write_as(Actor::system(), move |tx| {
            let (Some(mut site), Some(mut cert)) = (tx.site_any(site)?, tx.certificate(site)?) else {
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
            if site.ssl != SslState::Active || !cert.info.not_after.is_past() {
                return Ok(());
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
