//! What the API, the worker and operators ask of sites, each as one store transaction that
//! reads what it needs, decides with `lifecycle` and `records`, and writes the outcome with
//! its audit event.

use uuid::Uuid;

use super::lifecycle::{self, Request};
use super::{records, ssl};
use crate::config::{DnsConfig, HostingConfig, ZoneDefaults};
use crate::domain::{Actor, DomainName, Job, JobState, JobStep, ResourceKind, Site, ZoneSeed, rules};
use crate::store::{Result, Store, StoreError, WriteCtx};

impl From<lifecycle::Busy> for StoreError {
    fn from(b: lifecycle::Busy) -> Self {
        Self::Conflict {
            code: b.code,
            message: b.message,
        }
    }
}

/// A new site in `provisioning` and its create job; asking again for a domain whose site
/// failed to provision retries it.
pub async fn create_site(
    store: &Store,
    actor: Actor,
    team: Uuid,
    domain: DomainName,
    project: Option<Uuid>,
    php: String,
    hosting: HostingConfig,
) -> Result<(Site, Job)> {
    store
        .write_as(actor, move |tx| {
            if let Some(project) = project
                && tx.project(team, project).is_err()
            {
                return Err(StoreError::invalid("invalid_site", "project_id", "no such project"));
            }
            if let Some(existing) = tx.site_id_by_domain(&domain)? {
                let mut site = match tx.site_any(existing)? {
                    Some(s) if s.team_id == team && lifecycle::may_retry_create(&s) => s,
                    _ => {
                        return Err(StoreError::conflict(
                            "site_exists",
                            format!("{domain} is already hosted"),
                        ));
                    }
                };
                site.status = crate::domain::SiteStatus::Provisioning;
                let mut job = lifecycle::new_job(&mut site, JobStep::Create, serde_json::json!({}));
                tx.put_job(&mut job)?;
                tx.put_site(&mut site)?;
                tx.audit(
                    team,
                    "site.create_retried",
                    (ResourceKind::Site, site.id),
                    site.zone_id,
                    site.domain.to_string(),
                )?;
                return Ok((site, job));
            }
            if tx.site_count(team)? >= tx.caps.sites_per_team {
                let message = format!("an account holds at most {} sites", tx.caps.sites_per_team);
                return Err(StoreError::invalid("too_many_sites", "domain", message));
            }
            let zone = tx.zone_for_site(team, &domain)?;
            let mut site = lifecycle::new_site(team, domain, project, php, zone.map(|z| z.id), &hosting);
            let mut job = lifecycle::new_job(&mut site, JobStep::Create, serde_json::json!({}));
            tx.put_job(&mut job)?;
            tx.insert_site(&site)?;
            tx.audit(
                team,
                "site.created",
                (ResourceKind::Site, site.id),
                site.zone_id,
                site.domain.to_string(),
            )?;
            Ok((site, job))
        })
        .await
}

/// Asks for a step on an existing site of `team`: the site as it now is, and the step's job.
pub async fn request(store: &Store, actor: Actor, team: Uuid, id: Uuid, request: Request) -> Result<(Site, Job)> {
    store
        .write_as(actor, move |tx| request_in(tx, team, id, &request))
        .await
}

fn request_in(tx: &mut WriteCtx, team: Uuid, id: Uuid, request: &Request) -> Result<(Site, Job)> {
    let mut site = tx.site(team, id)?;
    lifecycle::request(&mut site, request)?;
    if *request == Request::Ssl {
        ssl::may_ask(tx, id)?;
    }
    let mut job = lifecycle::new_job(&mut site, request.step(), request.params());
    tx.put_job(&mut job)?;
    tx.put_site(&mut site)?;
    let action = format!("site.{}_requested", request.step().as_str());
    tx.audit(
        team,
        &action,
        (ResourceKind::Site, site.id),
        site.zone_id,
        format!("{} {}", site.domain, request.params()),
    )?;
    Ok((site, job))
}

/// `PATCH /v1/sites/{id}`: a PHP version (a job, when it changes) and a project (`Some(None)`:
/// out of any), both checked before either is written.
pub async fn update_site(
    store: &Store,
    actor: Actor,
    team: Uuid,
    id: Uuid,
    php: Option<String>,
    project: Option<Option<Uuid>>,
) -> Result<(Site, Option<Job>)> {
    store
        .write_as(actor, move |tx| {
            let current = tx.site(team, id)?;
            let php = php.filter(|v| *v != current.php_version);
            if let Some(v) = &php {
                lifecycle::request(&mut current.clone(), &Request::Php(v.clone()))?; // before the move
            }
            let site = match project {
                Some(project) => tx.move_site(team, id, project)?,
                None => current,
            };
            match php {
                Some(v) => request_in(tx, team, id, &Request::Php(v)).map(|(site, job)| (site, Some(job))),
                None => Ok((site, None)),
            }
        })
        .await
}

/// Marks a job running and returns it with its site; `None` when it has ended already or its
/// site is gone.
pub async fn start_job(store: &Store, id: Uuid) -> Result<Option<(Job, Site)>> {
    store
        .write_as(Actor::system(), move |tx| {
            let Some(mut job) = tx.job(id)? else { return Ok(None) };
            if job.state.ended() {
                return Ok(None);
            }
            let Some(site) = tx.site_any(job.site_id)? else {
                tx.close_job(id)?;
                return Ok(None);
            };
            lifecycle::start(&mut job);
            tx.put_job(&mut job)?;
            Ok(Some((job, site)))
        })
        .await
}

/// Records a job's outcome and moves its site on, in one transaction; returns the site and
/// the state the job ended in. A create that succeeded also gets the site's zone (made if
/// the team has none for the domain) and its records; an SSL step that succeeded installs
/// its certificate, and one that failed removes its challenge records.
pub async fn finish_job(
    store: &Store,
    id: Uuid,
    outcome: Result<(), String>,
    dns: DnsConfig,
    defaults: ZoneDefaults,
) -> Result<(Site, JobState)> {
    store
        .write_as(Actor::system(), move |tx| {
            let mut job = tx.job(id)?.ok_or(StoreError::NotFound("job"))?;
            let mut site = tx.site_any(job.site_id)?.ok_or(StoreError::NotFound("site"))?;
            let outcome = match (outcome, job.step) {
                (Ok(()), JobStep::Create) => provision_dns(tx, &mut site, &dns, &defaults),
                (Ok(()), step @ (JobStep::Ssl | JobStep::SslRenewal)) => ssl::install(tx, &mut site, step)?,
                (o, _) => o,
            };
            if let (Err(why), step @ (JobStep::Ssl | JobStep::SslRenewal)) = (&outcome, job.step) {
                ssl::failed(tx, &site, step, why)?;
            }
            lifecycle::finish(&mut site, &mut job, outcome);
            tx.put_job(&mut job)?;
            tx.put_site(&mut site)?;
            let action = format!("site.{}_{}", job.step.as_str(), job.state.as_str());
            let why = job.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
            tx.audit(
                site.team_id,
                &action,
                (ResourceKind::Site, site.id),
                site.zone_id,
                format!("{}{why}", site.domain),
            )?;
            Ok((site, job.state))
        })
        .await
}

/// The DNS side of a create. Checks every record before writing any: a clash with the team's
/// own records becomes the job's failure reason and leaves nothing behind. A retried create
/// finds its own records from before and keeps them.
fn provision_dns(
    tx: &mut WriteCtx,
    site: &mut Site,
    dns: &DnsConfig,
    defaults: &ZoneDefaults,
) -> std::result::Result<(), String> {
    let fail = |e: StoreError| e.to_string();
    let zone = tx.zone_for_site(site.team_id, &site.domain).map_err(fail)?;
    let origin = zone.as_ref().map_or_else(|| site.domain.clone(), |z| z.name.clone());
    let mut needed = records::needed(site, &origin, defaults.default_ttl)?;
    if let Some(z) = &zone {
        let mut missing = Vec::new();
        for new in needed {
            let others = tx.records_at(z.id, &new.name).map_err(fail)?;
            if others
                .iter()
                .any(|r| r.site_id == Some(site.id) && r.rtype == new.data.rtype)
            {
                continue;
            }
            rules::check(&z.name, &new, &others).map_err(|e| format!("cannot add the site's records: {e}"))?;
            missing.push(new);
        }
        needed = missing;
    }
    let zone = match zone {
        Some(z) => z,
        None => tx
            .create_zone(site.team_id, ZoneSeed::fresh(site.domain.clone(), dns, defaults))
            .map_err(fail)?,
    };
    for new in needed {
        tx.create_record(site.team_id, zone.id, new)
            .map_err(|e| format!("cannot add the site's records: {e}"))?;
    }
    site.zone_id = Some(zone.id);
    Ok(())
}

/// Operators only: removes a site, its jobs and its records (the zone and the team's own
/// records stay).
pub fn delete_site(store: &Store, actor: Actor, id: Uuid) -> Result<Site> {
    store.write_blocking_as(actor, move |tx| {
        let site = tx.remove_site(id)?;
        if let Some(zone_id) = site.zone_id
            && let Some(zone) = tx.zone(zone_id)?
        {
            let mut rows = Vec::new();
            for name in records::names(&site) {
                rows.extend(
                    tx.records_at(zone_id, &name)?
                        .into_iter()
                        .filter(|r| r.site_id == Some(id)),
                );
            }
            tx.remove_records(zone, rows)?;
        }
        Ok(site)
    })
}
