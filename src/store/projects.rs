//! Projects: folders for a team's sites.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::tables::{PROJECT_SITES, PROJECTS, TEAM_PROJECTS};
use super::{Page, Reader, Result, StoreError, WriteCtx};
use crate::domain::{Project, ResourceKind, Timestamp, new_id};

impl<T: Tables> Reader<T> {
    pub fn project(&self, team: Uuid, id: Uuid) -> Result<Project> {
        self.owned(PROJECTS, team, id)
    }

    pub fn projects(&self, team: Uuid, after: Option<Uuid>, limit: usize) -> Result<Page<Project>> {
        self.team_page(TEAM_PROJECTS, PROJECTS, team, after, limit)
    }
}

impl WriteCtx {
    /// Stores a new project named `name` (already checked).
    pub fn create_project(&mut self, team: Uuid, name: String) -> Result<Project> {
        let now = Timestamp::now();
        let p = Project {
            id: new_id(),
            team_id: team,
            name,
            created_at: now,
            updated_at: now,
        };
        self.txn().open_table(PROJECTS)?.insert(p.id.as_u128(), &p)?;
        self.txn()
            .open_table(TEAM_PROJECTS)?
            .insert((team.as_u128(), p.id.as_u128()), ())?;
        self.audit(
            team,
            "project.created",
            (ResourceKind::Project, p.id),
            None,
            p.name.clone(),
        )?;
        Ok(p)
    }

    pub fn rename_project(&mut self, team: Uuid, id: Uuid, name: String) -> Result<Project> {
        let mut p = self.project(team, id)?;
        p.name = name;
        p.updated_at = Timestamp::now();
        self.txn().open_table(PROJECTS)?.insert(p.id.as_u128(), &p)?;
        self.audit(
            team,
            "project.renamed",
            (ResourceKind::Project, p.id),
            None,
            p.name.clone(),
        )?;
        Ok(p)
    }

    /// Deletes an empty project; one that holds sites is refused (nothing goes as a side effect).
    pub fn delete_project(&mut self, team: Uuid, id: Uuid) -> Result<Project> {
        let p = self.project(team, id)?;
        let pid = id.as_u128();
        if self
            .txn()
            .open_table(PROJECT_SITES)?
            .range((pid, 0)..=(pid, u128::MAX))?
            .next()
            .is_some()
        {
            return Err(StoreError::conflict(
                "project_not_empty",
                "the project holds sites; move them to another project first",
            ));
        }
        self.txn().open_table(PROJECTS)?.remove(pid)?;
        self.txn().open_table(TEAM_PROJECTS)?.remove((team.as_u128(), pid))?;
        self.audit(
            team,
            "project.deleted",
            (ResourceKind::Project, p.id),
            None,
            p.name.clone(),
        )?;
        Ok(p)
    }
}
