//! Writes for teams and tokens.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::decode;
use super::{Result, StoreError, TEAM_NAMES, TEAM_TOKENS, TEAMS, TOKENS, Team, Token, WriteCtx, new_id};
use crate::domain::now_rfc3339;

impl WriteCtx {
    pub fn create_team(&mut self, name: &str) -> Result<Team> {
        let Some(name) = crate::domain::label_text(name, 64).filter(|n| n.len() <= 64) else {
            return Err(StoreError::invalid(
                "invalid_team",
                "name",
                "a team name is 1 to 64 printable characters",
            ));
        };
        let name = name.as_str();
        if Uuid::parse_str(name).is_ok() {
            return Err(StoreError::invalid(
                "invalid_team",
                "name",
                "a team name cannot be a UUID",
            ));
        }
        let mut names = self.txn.open_table(TEAM_NAMES)?;
        if names.get(name)?.is_some() {
            return Err(StoreError::conflict(
                "team_exists",
                format!("a team named {name:?} exists"),
            ));
        }
        let team = Team {
            id: new_id(),
            name: name.to_string(),
            created_at: now_rfc3339(),
        };
        names.insert(name, team.id.as_u128())?;
        self.txn
            .open_table(TEAMS)?
            .insert(team.id.as_u128(), serde_json::to_vec(&team)?.as_slice())?;
        drop(names);
        self.audit(team.id, "team.created", "team", team.id, None, team.name.clone())?;
        Ok(team)
    }

    /// Stores a token whose secret was already hashed (argon2 never runs on the writer).
    pub fn create_token(&mut self, token: &Token) -> Result<()> {
        if self.txn.open_table(TEAMS)?.get(token.team_id.as_u128())?.is_none() {
            return Err(StoreError::NotFound("team"));
        }
        let now = crate::domain::unix_now();
        let (tokens, index) = (self.txn.open_table(TOKENS)?, self.txn.open_table(TEAM_TOKENS)?);
        let t = token.team_id.as_u128();
        let mut active = 0;
        for entry in index.range((t, 0)..=(t, u128::MAX))? {
            if let Some(v) = tokens.get(entry?.0.value().1)? {
                let held: Token = decode(v.value())?;
                active += u64::from(held.revoked_at.is_none() && held.expires.is_none_or(|e| now < e));
            }
        }
        drop((tokens, index));
        if active >= self.caps.tokens_per_team {
            return Err(StoreError::invalid(
                "too_many_tokens",
                "name",
                format!(
                    "an account holds at most {} tokens at once; revoke one first",
                    self.caps.tokens_per_team
                ),
            ));
        }
        self.txn
            .open_table(TOKENS)?
            .insert(token.id.as_u128(), serde_json::to_vec(token)?.as_slice())?;
        self.txn
            .open_table(TEAM_TOKENS)?
            .insert((token.team_id.as_u128(), token.id.as_u128()), ())?;
        self.audit(
            token.team_id,
            "token.created",
            "token",
            token.id,
            None,
            format!("{} ({})", token.name, token.scopes.join(",")),
        )?;
        Ok(())
    }

    /// The token `id` of `team`; another team's is "not found".
    pub fn team_token(&self, team: Uuid, id: Uuid) -> Result<Token> {
        match self
            .txn
            .open_table(TOKENS)?
            .get(id.as_u128())?
            .map(|v| decode::<Token>(v.value()))
            .transpose()?
        {
            Some(t) if t.team_id == team => Ok(t),
            _ => Err(StoreError::NotFound("token")),
        }
    }

    /// Marks a token revoked (the row stays, for audit). Revoking twice is not an error.
    pub fn revoke_token(&mut self, id: Uuid) -> Result<Token> {
        let mut tokens = self.txn.open_table(TOKENS)?;
        let mut token: Token = match tokens.get(id.as_u128())? {
            Some(v) => decode(v.value())?,
            None => return Err(StoreError::NotFound("token")),
        };
        if token.revoked_at.is_none() {
            token.revoked_at = Some(now_rfc3339());
            tokens.insert(id.as_u128(), serde_json::to_vec(&token)?.as_slice())?;
            drop(tokens);
            self.audit(
                token.team_id,
                "token.revoked",
                "token",
                token.id,
                None,
                token.name.clone(),
            )?;
        }
        Ok(token)
    }
}
