//! Teams and their tokens.

use redb::{ReadableTable, ReadableTableMetadata};
use uuid::Uuid;

use super::read::Tables;
use super::tables::{TEAM_NAMES, TEAM_TOKENS, TEAMS, TOKENS};
use super::{Reader, Result, StoreError, WriteCtx};
use crate::domain::{ResourceKind, Team, Timestamp, Token, TokenState, label_text, new_id};

impl<T: Tables> Reader<T> {
    pub fn team(&self, id: Uuid) -> Result<Option<Team>> {
        self.row(TEAMS, id)
    }

    /// A team by UUID or by name, as operators type it.
    pub fn find_team(&self, name_or_id: &str) -> Result<Option<Team>> {
        if let Ok(id) = Uuid::parse_str(name_or_id)
            && let Some(t) = self.team(id)?
        {
            return Ok(Some(t));
        }
        match self.txn.table(TEAM_NAMES)?.get(name_or_id)? {
            Some(id) => self.team(Uuid::from_u128(id.value())),
            None => Ok(None),
        }
    }

    pub fn teams(&self) -> Result<Vec<Team>> {
        let t = self.txn.table(TEAMS)?;
        t.iter()?.map(|e| Ok(e?.1.value())).collect()
    }

    pub fn has_teams(&self) -> Result<bool> {
        Ok(!self.txn.table(TEAMS)?.is_empty()?)
    }

    pub fn token(&self, id: Uuid) -> Result<Option<Token>> {
        self.row(TOKENS, id)
    }

    /// The token `id` of `team`; another team's is "not found".
    pub fn team_token(&self, team: Uuid, id: Uuid) -> Result<Token> {
        self.owned(TOKENS, team, id)
    }

    /// A team's tokens, in creation order.
    pub fn tokens(&self, team: Uuid) -> Result<Vec<Token>> {
        let idx = self.txn.table(TEAM_TOKENS)?;
        let t = self.txn.table(TOKENS)?;
        let mut out = Vec::new();
        for entry in idx.range((team.as_u128(), 0)..=(team.as_u128(), u128::MAX))? {
            if let Some(v) = t.get(entry?.0.value().1)? {
                out.push(v.value());
            }
        }
        Ok(out)
    }
}

impl WriteCtx {
    pub fn create_team(&mut self, name: &str) -> Result<Team> {
        let Some(name) = label_text(name, 64).filter(|n| n.len() <= 64) else {
            return Err(StoreError::invalid(
                "invalid_team",
                "name",
                "a team name is 1 to 64 printable characters",
            ));
        };
        if Uuid::parse_str(&name).is_ok() {
            return Err(StoreError::invalid(
                "invalid_team",
                "name",
                "a team name cannot be a UUID",
            ));
        }
        if self.txn().open_table(TEAM_NAMES)?.get(name.as_str())?.is_some() {
            return Err(StoreError::conflict(
                "team_exists",
                format!("a team named {name:?} exists"),
            ));
        }
        let team = Team {
            id: new_id(),
            name,
            created_at: Timestamp::now(),
        };
        self.txn()
            .open_table(TEAM_NAMES)?
            .insert(team.name.as_str(), team.id.as_u128())?;
        self.txn().open_table(TEAMS)?.insert(team.id.as_u128(), &team)?;
        self.audit(
            team.id,
            "team.created",
            (ResourceKind::Team, team.id),
            None,
            team.name.clone(),
        )?;
        Ok(team)
    }

    /// Stores a token whose secret was already hashed (argon2 never runs on the writer).
    pub fn create_token(&mut self, token: &Token) -> Result<()> {
        if self.team(token.team_id)?.is_none() {
            return Err(StoreError::NotFound("team"));
        }
        let live = self
            .tokens(token.team_id)?
            .iter()
            .filter(|t| t.state() == TokenState::Active)
            .count() as u64;
        if live >= self.caps.tokens_per_team {
            return Err(StoreError::invalid(
                "too_many_tokens",
                "name",
                format!(
                    "an account holds at most {} tokens at once; revoke one first",
                    self.caps.tokens_per_team
                ),
            ));
        }
        self.txn().open_table(TOKENS)?.insert(token.id.as_u128(), token)?;
        self.txn()
            .open_table(TEAM_TOKENS)?
            .insert((token.team_id.as_u128(), token.id.as_u128()), ())?;
        let scopes: Vec<String> = token.scopes.iter().map(ToString::to_string).collect();
        let summary = format!("{} ({})", token.name, scopes.join(","));
        self.audit(
            token.team_id,
            "token.created",
            (ResourceKind::Token, token.id),
            None,
            summary,
        )?;
        Ok(())
    }

    /// Marks a token revoked (the row stays, for audit). Revoking twice is not an error.
    pub fn revoke_token(&mut self, id: Uuid) -> Result<Token> {
        let mut token = self.token(id)?.ok_or(StoreError::NotFound("token"))?;
        if token.revoked_at.is_none() {
            token.revoked_at = Some(Timestamp::now());
            self.txn().open_table(TOKENS)?.insert(id.as_u128(), &token)?;
            self.audit(
                token.team_id,
                "token.revoked",
                (ResourceKind::Token, token.id),
                None,
                token.name.clone(),
            )?;
        }
        Ok(token)
    }
}
