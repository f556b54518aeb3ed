//! Sites: their rows and indexes (by team, by domain, by project). What a site's state should
//! be, and which records it needs, is `hosting`'s to decide.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::tables::{JOBS, OPEN_JOBS, PROJECT_SITES, SITE_DOMAINS, SITES, TEAM_SITES};
use super::{Page, Reader, Result, StoreError, WriteCtx};
use crate::domain::{DomainName, ResourceKind, Site, Timestamp, Zone};

impl<T: Tables> Reader<T> {
    /// The site `id` of `team`; another team's is "not found".
    pub fn site(&self, team: Uuid, id: Uuid) -> Result<Site> {
        self.owned(SITES, team, id)
    }

    /// Any team's site (operators).
    pub fn site_any(&self, id: Uuid) -> Result<Option<Site>> {
        self.row(SITES, id)
    }

    pub fn sites(
        &self,
        team: Uuid,
        after: Option<Uuid>,
        limit: usize,
        keep: impl Fn(&Site) -> bool,
    ) -> Result<Page<Site>> {
        self.team_page_where(TEAM_SITES, SITES, team, after, limit, keep)
    }

    /// The id of the site hosting `domain`, whichever team's (the domain is taken while its
    /// index entry stands).
    pub fn site_id_by_domain(&self, domain: &DomainName) -> Result<Option<Uuid>> {
        Ok(self
            .txn
            .table(SITE_DOMAINS)?
            .get(domain.as_str())?
            .map(|id| Uuid::from_u128(id.value())))
    }

    /// How many sites `team` holds.
    pub fn site_count(&self, team: Uuid) -> Result<u64> {
        let t = team.as_u128();
        Ok(self.txn.table(TEAM_SITES)?.range((t, 0)..=(t, u128::MAX))?.count() as u64)
    }

    /// The zone of `team` that holds `domain`, or `None` when a new zone named after it may
    /// be created; 409 when the name belongs to another team.
    pub fn zone_for_site(&self, team: Uuid, domain: &DomainName) -> Result<Option<Zone>> {
        match self.zone_holding(domain)? {
            Some(z) if z.team_id != team => Err(StoreError::conflict(
                "zone_exists",
                format!("{domain} is served for another account"),
            )),
            Some(z) => Ok(Some(z)),
            None => self.check_zone_name(team, domain).map(|()| None),
        }
    }
}

impl WriteCtx {
    /// Stores a new site and indexes it by team, domain and project.
    pub fn insert_site(&mut self, site: &Site) -> Result<()> {
        let s = site.id.as_u128();
        self.txn().open_table(SITES)?.insert(s, site)?;
        self.txn()
            .open_table(TEAM_SITES)?
            .insert((site.team_id.as_u128(), s), ())?;
        self.txn().open_table(SITE_DOMAINS)?.insert(site.domain.as_str(), s)?;
        if let Some(p) = site.project_id {
            self.txn().open_table(PROJECT_SITES)?.insert((p.as_u128(), s), ())?;
        }
        Ok(())
    }

    /// Stores a site's new state (its project is changed by `move_site`).
    pub fn put_site(&mut self, site: &mut Site) -> Result<()> {
        site.updated_at = Timestamp::now();
        self.txn().open_table(SITES)?.insert(site.id.as_u128(), &*site)?;
        Ok(())
    }

    /// Moves a site to a project of its team (`None`: out of any).
    pub fn move_site(&mut self, team: Uuid, id: Uuid, project: Option<Uuid>) -> Result<Site> {
        let mut site = self.site(team, id)?;
        if let Some(p) = project
            && self.project(team, p).is_err()
        {
            return Err(StoreError::invalid("invalid_site", "project_id", "no such project"));
        }
        {
            let mut idx = self.txn().open_table(PROJECT_SITES)?;
            if let Some(old) = site.project_id {
                idx.remove((old.as_u128(), id.as_u128()))?;
            }
            if let Some(p) = project {
                idx.insert((p.as_u128(), id.as_u128()), ())?;
            }
        }
        site.project_id = project;
        self.put_site(&mut site)?;
        let to = project.map_or("none".into(), |p| p.to_string());
        self.audit(
            team,
            "site.moved",
            (ResourceKind::Site, site.id),
            site.zone_id,
            format!("{} to project {to}", site.domain),
        )?;
        Ok(site)
    }

    /// Removes a site, its indexes, its jobs and its certificate (its records are the
    /// caller's to remove).
    pub fn remove_site(&mut self, id: Uuid) -> Result<Site> {
        let site = self.site_any(id)?.ok_or(StoreError::NotFound("site"))?;
        let s = id.as_u128();
        self.txn().open_table(SITES)?.remove(s)?;
        self.txn().open_table(TEAM_SITES)?.remove((site.team_id.as_u128(), s))?;
        self.txn().open_table(SITE_DOMAINS)?.remove(site.domain.as_str())?;
        self.remove_certificate(id)?;
        self.remove_issuance(id)?;
        if let Some(p) = site.project_id {
            self.txn().open_table(PROJECT_SITES)?.remove((p.as_u128(), s))?;
        }
        let jobs: Vec<u128> = {
            let t = self.txn().open_table(JOBS)?;
            let mut ids = Vec::new();
            for entry in t.iter()? {
                let (k, v) = entry?;
                if v.value().site_id == id {
                    ids.push(k.value());
                }
            }
            ids
        };
        for j in jobs {
            self.txn().open_table(JOBS)?.remove(j)?;
            self.txn().open_table(OPEN_JOBS)?.remove(j)?;
        }
        self.audit(
            site.team_id,
            "site.deleted",
            (ResourceKind::Site, site.id),
            site.zone_id,
            site.domain.to_string(),
        )?;
        Ok(site)
    }
}
