//! Writes for projects, sites, their provisioning jobs, and idempotency records.

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::read::decode;
use super::zones::reversed;
use super::{
    Change, Job, JobSummary, NewRecord, Project, RECORD_NAMES, RECORDS, Result, Site, StoreError, WriteCtx, ZONE_NAMES,
    ZONES, Zone, ZoneSeed, new_id,
};
use crate::config::{DnsConfig, HostingConfig, ZoneDefaults};
use crate::domain::{DomainName, now_rfc3339, parse_rdata, unix_now};

pub(crate) const PROJECTS: TableDefinition<u128, &[u8]> = TableDefinition::new("projects");
pub(crate) const TEAM_PROJECTS: TableDefinition<(u128, u128), ()> = TableDefinition::new("team_projects");
/// (project, site) → (): refuses deleting a project that holds sites.
pub(crate) const PROJECT_SITES: TableDefinition<(u128, u128), ()> = TableDefinition::new("project_sites");
pub(crate) const SITES: TableDefinition<u128, &[u8]> = TableDefinition::new("sites");
pub(crate) const TEAM_SITES: TableDefinition<(u128, u128), ()> = TableDefinition::new("team_sites");
/// Site domain → site: a domain is hosted once, across all teams.
pub(crate) const SITE_DOMAINS: TableDefinition<&str, u128> = TableDefinition::new("site_domains");
pub(crate) const JOBS: TableDefinition<u128, &[u8]> = TableDefinition::new("jobs");
/// Jobs not yet done or failed: what the worker resumes after a restart.
pub(crate) const OPEN_JOBS: TableDefinition<u128, ()> = TableDefinition::new("open_jobs");
fn put<T: Serialize>(ctx: &WriteCtx, table: TableDefinition<u128, &[u8]>, id: Uuid, row: &T) -> Result<()> {
    ctx.txn
        .open_table(table)?
        .insert(id.as_u128(), serde_json::to_vec(row)?.as_slice())?;
    Ok(())
}

fn get<T: DeserializeOwned>(ctx: &WriteCtx, table: TableDefinition<u128, &[u8]>, id: Uuid) -> Result<Option<T>> {
    let t = ctx.txn.open_table(table)?;
    t.get(id.as_u128())?.map(|v| decode(v.value())).transpose()
}

fn check_project_name(name: &str) -> Result<String> {
    crate::domain::label_text(name, 100).ok_or_else(|| {
        StoreError::invalid(
            "invalid_project",
            "name",
            "a project name is 1 to 100 printable characters",
        )
    })
}

impl WriteCtx {
    pub fn create_project(&mut self, team: Uuid, name: &str) -> Result<Project> {
        let name = check_project_name(name)?;
        let now = now_rfc3339();
        let p = Project {
            id: new_id(),
            team_id: team,
            name,
            created_at: now.clone(),
            updated_at: now,
        };
        put(self, PROJECTS, p.id, &p)?;
        self.txn
            .open_table(TEAM_PROJECTS)?
            .insert((team.as_u128(), p.id.as_u128()), ())?;
        self.audit(team, "project.created", "project", p.id, None, p.name.clone())?;
        Ok(p)
    }

    fn team_project(&self, team: Uuid, id: Uuid) -> Result<Project> {
        match get::<Project>(self, PROJECTS, id)? {
            Some(p) if p.team_id == team => Ok(p),
            _ => Err(StoreError::NotFound("project")),
        }
    }

    pub fn rename_project(&mut self, team: Uuid, id: Uuid, name: &str) -> Result<Project> {
        let name = check_project_name(name)?;
        let mut p = self.team_project(team, id)?;
        p.name = name;
        p.updated_at = now_rfc3339();
        put(self, PROJECTS, p.id, &p)?;
        self.audit(team, "project.renamed", "project", p.id, None, p.name.clone())?;
        Ok(p)
    }

    /// Deletes an empty project; one that holds sites is refused (nothing goes as a side effect).
    pub fn delete_project(&mut self, team: Uuid, id: Uuid) -> Result<Project> {
        let p = self.team_project(team, id)?;
        let p_id = id.as_u128();
        if self
            .txn
            .open_table(PROJECT_SITES)?
            .range((p_id, 0)..=(p_id, u128::MAX))?
            .next()
            .is_some()
        {
            return Err(StoreError::conflict(
                "project_not_empty",
                "the project holds sites; move them to another project first",
            ));
        }
        self.txn.open_table(PROJECTS)?.remove(p_id)?;
        self.txn.open_table(TEAM_PROJECTS)?.remove((team.as_u128(), p_id))?;
        self.audit(team, "project.deleted", "project", p.id, None, p.name.clone())?;
        Ok(p)
    }

    pub fn site_of(&self, team: Uuid, id: Uuid) -> Result<Site> {
        self.team_site(team, id)
    }

    fn team_site(&self, team: Uuid, id: Uuid) -> Result<Site> {
        match get::<Site>(self, SITES, id)? {
            Some(s) if s.team_id == team => Ok(s),
            _ => Err(StoreError::NotFound("site")),
        }
    }

    fn put_site(&mut self, site: &mut Site) -> Result<()> {
        site.updated_at = now_rfc3339();
        put(self, SITES, site.id, site)
    }

    /// The zone of `team` that holds `domain`, or `None` when a new zone named after it may
    /// be created; 409 when the name belongs to another team.
    fn zone_for_domain(&self, team: Uuid, domain: &DomainName) -> Result<Option<Zone>> {
        let names = self.txn.open_table(ZONE_NAMES)?;
        let zones = self.txn.open_table(ZONES)?;
        let rev = reversed(domain.as_str());
        let mut candidate = Some(rev.as_str());
        while let Some(c) = candidate {
            if let Some(id) = names.get(c)? {
                let z: Zone = decode(
                    zones
                        .get(id.value())?
                        .ok_or_else(|| StoreError::Storage("dangling zone name".into()))?
                        .value(),
                )?;
                if z.team_id != team {
                    return Err(StoreError::conflict(
                        "zone_exists",
                        format!("{domain} is served for another account"),
                    ));
                }
                return Ok(Some(z));
            }
            candidate = c.rsplit_once('.').map(|(parent, _)| parent);
        }
        drop((names, zones));
        self.check_zone_name(team, domain)?;
        Ok(None)
    }

    fn new_job(&mut self, site: &mut Site, step: &str, params: serde_json::Value) -> Result<Job> {
        let now = now_rfc3339();
        let job = Job {
            id: new_id(),
            team_id: site.team_id,
            site_id: site.id,
            step: step.into(),
            params,
            state: "pending".into(),
            attempts: 0,
            error: None,
            created_at: now.clone(),
            updated_at: now,
        };
        put(self, JOBS, job.id, &job)?;
        self.txn.open_table(OPEN_JOBS)?.insert(job.id.as_u128(), ())?;
        site.last_job = Some(JobSummary {
            id: job.id,
            step: step.into(),
            state: "pending".into(),
            error: None,
        });
        Ok(job)
    }

    /// Creates a site in `provisioning` with its create job. Asking again for a domain whose
    /// site failed to provision retries it.
    pub fn create_site(
        &mut self,
        team: Uuid,
        domain: DomainName,
        project: Option<Uuid>,
        php: String,
        hosting: &HostingConfig,
    ) -> Result<(Site, Job)> {
        if let Some(project) = project
            && self.team_project(team, project).is_err()
        {
            return Err(StoreError::invalid("invalid_site", "project_id", "no such project"));
        }
        let existing = self
            .txn
            .open_table(SITE_DOMAINS)?
            .get(domain.as_str())?
            .map(|v| Uuid::from_u128(v.value()));
        if let Some(existing) = existing {
            let mut site = match self.team_site(team, existing) {
                Ok(s) if s.status == "failed" && s.last_job.as_ref().is_some_and(|j| j.step == "create") => s,
                _ => {
                    return Err(StoreError::conflict(
                        "site_exists",
                        format!("{domain} is already hosted"),
                    ));
                }
            };
            site.status = "provisioning".into();
            let job = self.new_job(&mut site, "create", serde_json::json!({}))?;
            self.put_site(&mut site)?;
            self.audit(
                team,
                "site.create_retried",
                "site",
                site.id,
                site.zone_id,
                site.domain.to_string(),
            )?;
            return Ok((site, job));
        }
        let t = team.as_u128();
        let sites = self.txn.open_table(TEAM_SITES)?.range((t, 0)..=(t, u128::MAX))?.count() as u64;
        if sites >= self.caps.sites_per_team {
            return Err(StoreError::invalid(
                "too_many_sites",
                "domain",
                format!("an account holds at most {} sites", self.caps.sites_per_team),
            ));
        }
        let zone = self.zone_for_domain(team, &domain)?;
        let now = now_rfc3339();
        let mut site = Site {
            id: new_id(),
            team_id: team,
            domain: domain.clone(),
            project_id: project,
            zone_id: zone.map(|z| z.id),
            status: "provisioning".into(),
            php_version: php,
            ssl: "none".into(),
            ssl_expires_at: None,
            wordpress: "not_installed".into(),
            ipv4: hosting.ipv4.to_string(),
            ipv6: hosting.ipv6.to_string(),
            last_job: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let job = self.new_job(&mut site, "create", serde_json::json!({}))?;
        self.put_site(&mut site)?;
        self.txn
            .open_table(TEAM_SITES)?
            .insert((team.as_u128(), site.id.as_u128()), ())?;
        self.txn
            .open_table(SITE_DOMAINS)?
            .insert(domain.as_str(), site.id.as_u128())?;
        if let Some(p) = project {
            self.txn
                .open_table(PROJECT_SITES)?
                .insert((p.as_u128(), site.id.as_u128()), ())?;
        }
        self.audit(
            team,
            "site.created",
            "site",
            site.id,
            site.zone_id,
            site.domain.to_string(),
        )?;
        Ok((site, job))
    }

    /// Moves a site to a project (`None`: out of any).
    pub fn move_site(&mut self, team: Uuid, id: Uuid, project: Option<Uuid>) -> Result<Site> {
        let mut site = self.team_site(team, id)?;
        if let Some(p) = project
            && self.team_project(team, p).is_err()
        {
            return Err(StoreError::invalid("invalid_site", "project_id", "no such project"));
        }
        let mut idx = self.txn.open_table(PROJECT_SITES)?;
        if let Some(old) = site.project_id {
            idx.remove((old.as_u128(), id.as_u128()))?;
        }
        if let Some(p) = project {
            idx.insert((p.as_u128(), id.as_u128()), ())?;
        }
        drop(idx);
        site.project_id = project;
        self.put_site(&mut site)?;
        self.audit(
            team,
            "site.moved",
            "site",
            site.id,
            site.zone_id,
            format!(
                "{} to project {}",
                site.domain,
                project.map_or("none".into(), |p| p.to_string())
            ),
        )?;
        Ok(site)
    }

    /// Asks for an asynchronous step on an existing site: `php`, `ssl` or `wordpress`.
    pub fn request_step(&mut self, team: Uuid, id: Uuid, step: &str, params: serde_json::Value) -> Result<(Site, Job)> {
        let mut site = self.team_site(team, id)?;
        if site.status != "active" {
            return Err(StoreError::conflict(
                "site_busy",
                format!("the site is {}; try again once it is active", site.status),
            ));
        }
        match step {
            "php" => site.status = "updating".into(),
            "ssl" => match site.ssl.as_str() {
                "pending" => {
                    return Err(StoreError::conflict(
                        "ssl_pending",
                        "a certificate is already being issued",
                    ));
                }
                "active" => return Err(StoreError::conflict("ssl_active", "SSL is already on for this site")),
                _ => site.ssl = "pending".into(),
            },
            "wordpress" => match site.wordpress.as_str() {
                "installing" => {
                    return Err(StoreError::conflict(
                        "wordpress_installing",
                        "WordPress is being installed",
                    ));
                }
                "installed" => {
                    return Err(StoreError::conflict(
                        "wordpress_installed",
                        "WordPress is already installed",
                    ));
                }
                _ => site.wordpress = "installing".into(),
            },
            other => return Err(StoreError::Storage(format!("unknown step {other}"))),
        }
        let job = self.new_job(&mut site, step, params.clone())?;
        self.put_site(&mut site)?;
        self.audit(
            team,
            &format!("site.{step}_requested"),
            "site",
            site.id,
            site.zone_id,
            format!("{} {params}", site.domain),
        )?;
        Ok((site, job))
    }

    /// Marks a job running (counting the attempt) and returns it with its site; `None` when
    /// it has already ended or its site is gone.
    pub fn start_job(&mut self, id: Uuid) -> Result<Option<(Job, Site)>> {
        let Some(mut job) = get::<Job>(self, JOBS, id)? else {
            return Ok(None);
        };
        if job.state == "done" || job.state == "failed" {
            return Ok(None);
        }
        let Some(site) = get::<Site>(self, SITES, job.site_id)? else {
            self.txn.open_table(OPEN_JOBS)?.remove(id.as_u128())?;
            return Ok(None);
        };
        job.state = "running".into();
        job.attempts += 1;
        job.updated_at = now_rfc3339();
        put(self, JOBS, id, &job)?;
        Ok(Some((job, site)))
    }

    /// Records a job's outcome and moves its site on, in one transaction. A create that
    /// succeeds also gets the site's zone (made if the team has none for the domain) and its
    /// managed records: apex A and AAAA, and `www` as a CNAME to the apex.
    pub fn finish_job(
        &mut self,
        id: Uuid,
        outcome: std::result::Result<(), String>,
        dns: &DnsConfig,
        defaults: &ZoneDefaults,
    ) -> Result<Site> {
        let mut job: Job = get(self, JOBS, id)?.ok_or(StoreError::NotFound("job"))?;
        let mut site: Site = get(self, SITES, job.site_id)?.ok_or(StoreError::NotFound("site"))?;
        let outcome = match (outcome, job.step.as_str()) {
            (Ok(()), "create") => self.provision_dns(&mut site, dns, defaults),
            (o, _) => o,
        };
        match (&outcome, job.step.as_str()) {
            (Ok(()), "create") => site.status = "active".into(),
            (Ok(()), "php") => {
                site.status = "active".into();
                if let Some(v) = job.params["php_version"].as_str() {
                    site.php_version = v.into();
                }
            }
            (Ok(()), "ssl") => {
                site.ssl = "active".into();
                site.ssl_expires_at = Some(crate::domain::rfc3339_at(unix_now() + 90 * 86_400));
            }
            (Ok(()), "wordpress") => site.wordpress = "installed".into(),
            (Err(_), "create") => site.status = "failed".into(),
            (Err(_), "php") => site.status = "active".into(), // still on its old version
            (Err(_), "ssl") => site.ssl = "failed".into(),
            (Err(_), "wordpress") => site.wordpress = "failed".into(),
            _ => {}
        }
        job.state = if outcome.is_ok() { "done" } else { "failed" }.into();
        job.error = outcome.err();
        job.updated_at = now_rfc3339();
        put(self, JOBS, id, &job)?;
        self.txn.open_table(OPEN_JOBS)?.remove(id.as_u128())?;
        if site.last_job.as_ref().is_some_and(|j| j.id == job.id) {
            site.last_job = Some(JobSummary {
                id: job.id,
                step: job.step.clone(),
                state: job.state.clone(),
                error: job.error.clone(),
            });
        }
        self.put_site(&mut site)?;
        let what = format!("site.{}_{}", job.step, job.state);
        self.audit(
            site.team_id,
            &what,
            "site",
            site.id,
            site.zone_id,
            format!(
                "{}{}",
                site.domain,
                job.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        )?;
        Ok(site)
    }

    /// The DNS side of a create. Checks everything before writing; a clash with the team's
    /// own records becomes the job's failure reason.
    fn provision_dns(
        &mut self,
        site: &mut Site,
        dns: &DnsConfig,
        defaults: &ZoneDefaults,
    ) -> std::result::Result<(), String> {
        let fail = |e: StoreError| e.to_string();
        let zone = self.zone_for_domain(site.team_id, &site.domain).map_err(fail)?;
        let origin = zone.as_ref().map_or_else(|| site.domain.clone(), |z| z.name.clone());
        let www = DomainName::parse(&format!("www.{}", site.domain)).map_err(|e| e.0)?;
        let managed = |name: &DomainName, t: &str, content: &str| -> std::result::Result<NewRecord, String> {
            Ok(NewRecord {
                name: name.clone(),
                data: parse_rdata(t, content, &origin)?,
                ttl: defaults.default_ttl,
                managed: true,
                site_id: Some(site.id),
            })
        };
        let mut records = vec![
            managed(&site.domain, "A", &site.ipv4)?,
            managed(&site.domain, "AAAA", &site.ipv6)?,
            managed(&www, "CNAME", &format!("{}.", site.domain))?,
        ];
        // Check all three before writing any: a clash fails the job and leaves nothing behind.
        // A retried create finds its own records from before and keeps them.
        if let Some(z) = &zone {
            let mut kept = Vec::new();
            for new in records {
                let others = self.records_at(z.id, new.name.as_str()).map_err(fail)?;
                if others
                    .iter()
                    .any(|r| r.site_id == Some(site.id) && r.rtype == new.data.rtype.to_string())
                {
                    continue;
                }
                super::zones::check_rules(&z.name, &new, &others)
                    .map_err(|e| format!("cannot add the site's records: {e}"))?;
                kept.push(new);
            }
            records = kept;
        }
        let zone = match zone {
            Some(z) => z,
            None => {
                let seed = ZoneSeed::fresh(site.domain.clone(), dns, defaults);
                self.create_zone(site.team_id, seed).map_err(fail)?
            }
        };
        for new in records {
            self.create_record(site.team_id, zone.id, new)
                .map_err(|e| format!("cannot add the site's records: {e}"))?;
        }
        site.zone_id = Some(zone.id);
        Ok(())
    }

    /// Operator-only: removes a site, its jobs and its managed records (the zone stays).
    pub fn delete_site(&mut self, id: Uuid) -> Result<Site> {
        let site: Site = get(self, SITES, id)?.ok_or(StoreError::NotFound("site"))?;
        let s = id.as_u128();
        self.txn.open_table(SITES)?.remove(s)?;
        self.txn.open_table(TEAM_SITES)?.remove((site.team_id.as_u128(), s))?;
        self.txn.open_table(SITE_DOMAINS)?.remove(site.domain.as_str())?;
        if let Some(p) = site.project_id {
            self.txn.open_table(PROJECT_SITES)?.remove((p.as_u128(), s))?;
        }
        let job_ids: Vec<u128> = {
            let jobs = self.txn.open_table(JOBS)?;
            let mut ids = Vec::new();
            for e in jobs.iter()? {
                let (k, v) = e?;
                if decode::<Job>(v.value())?.site_id == id {
                    ids.push(k.value());
                }
            }
            ids
        };
        for j in job_ids {
            self.txn.open_table(JOBS)?.remove(j)?;
            self.txn.open_table(OPEN_JOBS)?.remove(j)?;
        }
        self.audit(
            site.team_id,
            "site.deleted",
            "site",
            site.id,
            site.zone_id,
            site.domain.to_string(),
        )?;
        if let Some(zone_id) = site.zone_id
            && let Some(zone) = get::<Zone>(self, ZONES, zone_id)?
        {
            let mut removed = Vec::new();
            for name in [site.domain.to_string(), format!("www.{}", site.domain)] {
                for r in self.records_at(zone_id, &name)? {
                    if r.site_id == Some(id) {
                        removed.push(r);
                    }
                }
            }
            if !removed.is_empty() {
                let z = zone_id.as_u128();
                for r in &removed {
                    self.txn.open_table(RECORDS)?.remove((z, r.id.as_u128()))?;
                    self.txn
                        .open_table(RECORD_NAMES)?
                        .remove((z, r.name.as_str(), r.id.as_u128()))?;
                }
                self.touch_zone(zone, -(removed.len() as i64), &removed, &[])?;
                for r in removed {
                    self.emit(Change::RecordRemoved(r));
                }
            }
        }
        Ok(site)
    }
}
