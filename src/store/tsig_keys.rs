//! TSIG keys: their rows (the secret sealed), their names, unique on the platform, and the
//! per-team cap. Every change is published (`Change::TsigKeyPut`, `TsigKeyRemoved`) so the
//! DNS server's key table follows before the write is acknowledged.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::tables::{TEAM_TSIG_KEYS, TSIG_KEY_NAMES, TSIG_KEYS};
use super::{Change, Reader, Result, StoreError, WriteCtx};
use crate::domain::{ResourceKind, TsigKey};

impl<T: Tables> Reader<T> {
    /// The key `id` of `team`; another team's is "not found".
    pub fn team_tsig_key(&self, team: Uuid, id: Uuid) -> Result<TsigKey> {
        self.owned(TSIG_KEYS, team, id)
    }

    pub fn tsig_key(&self, id: Uuid) -> Result<Option<TsigKey>> {
        self.row(TSIG_KEYS, id)
    }

    /// A key by its DNS name (`deploy.<team>.tsig`), as operators type it.
    pub fn tsig_key_named(&self, name: &str) -> Result<Option<TsigKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match self.txn.table(TSIG_KEY_NAMES)?.get(name.as_str())? {
            Some(id) => self.tsig_key(Uuid::from_u128(id.value())),
            None => Ok(None),
        }
    }

    /// A team's keys, in creation order.
    pub fn tsig_keys(&self, team: Uuid) -> Result<Vec<TsigKey>> {
        let idx = self.txn.table(TEAM_TSIG_KEYS)?;
        let rows = self.txn.table(TSIG_KEYS)?;
        let mut out = Vec::new();
        for entry in idx.range((team.as_u128(), 0)..=(team.as_u128(), u128::MAX))? {
            if let Some(v) = rows.get(entry?.0.value().1)? {
                out.push(v.value());
            }
        }
        Ok(out)
    }

    /// Every team's keys: the DNS server's key table at start-up.
    pub fn all_tsig_keys(&self) -> Result<Vec<TsigKey>> {
        let t = self.txn.table(TSIG_KEYS)?;
        t.iter()?.map(|e| Ok(e?.1.value())).collect()
    }
}

impl WriteCtx {
    /// Stores a new key (its secret already sealed): refused past the team's cap, for a name
    /// in use, or for a rule naming a zone the team does not hold.
    pub fn create_tsig_key(&mut self, key: &TsigKey) -> Result<()> {
        if self.team(key.team_id)?.is_none() {
            return Err(StoreError::NotFound("team"));
        }
        let held = self.tsig_keys(key.team_id)?.len() as u64;
        if held >= self.caps.tsig_keys_per_team {
            return Err(StoreError::invalid(
                "too_many_tsig_keys",
                "name",
                format!(
                    "an account holds at most {} TSIG keys; revoke one first",
                    self.caps.tsig_keys_per_team
                ),
            ));
        }
        for zone in key.zones() {
            if self.team_zone(key.team_id, zone).is_err() {
                return Err(StoreError::invalid(
                    "invalid_tsig_key",
                    "rules",
                    format!("no zone {zone} in this account"),
                ));
            }
        }
        if self.txn().open_table(TSIG_KEY_NAMES)?.get(key.name.as_str())?.is_some() {
            return Err(StoreError::conflict(
                "tsig_key_exists",
                format!(
                    "this account has a TSIG key named {:?}; revoke it or pick another name",
                    key.label
                ),
            ));
        }
        self.txn().open_table(TSIG_KEYS)?.insert(key.id.as_u128(), key)?;
        self.txn()
            .open_table(TEAM_TSIG_KEYS)?
            .insert((key.team_id.as_u128(), key.id.as_u128()), ())?;
        self.txn()
            .open_table(TSIG_KEY_NAMES)?
            .insert(key.name.as_str(), key.id.as_u128())?;
        let summary = format!(
            "{} {} ({} rules{})",
            key.name,
            key.algorithm,
            key.rules.len(),
            if key.transfer { ", transfer" } else { "" }
        );
        self.audit(
            key.team_id,
            "tsig_key.created",
            (ResourceKind::TsigKey, key.id),
            None,
            summary,
        )?;
        self.emit(Change::TsigKeyPut(key.clone()));
        Ok(())
    }

    /// Deletes a key, secret and all: from the commit on, the DNS server no longer knows it.
    pub fn revoke_tsig_key(&mut self, id: Uuid) -> Result<TsigKey> {
        let key = self.tsig_key(id)?.ok_or(StoreError::NotFound("TSIG key"))?;
        self.txn().open_table(TSIG_KEYS)?.remove(id.as_u128())?;
        self.txn()
            .open_table(TEAM_TSIG_KEYS)?
            .remove((key.team_id.as_u128(), id.as_u128()))?;
        self.txn().open_table(TSIG_KEY_NAMES)?.remove(key.name.as_str())?;
        self.audit(
            key.team_id,
            "tsig_key.revoked",
            (ResourceKind::TsigKey, key.id),
            None,
            key.name.to_string(),
        )?;
        self.emit(Change::TsigKeyRemoved(key.clone()));
        Ok(key)
    }
}
