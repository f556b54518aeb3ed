//! The TSIG keys signed messages are checked against, in memory: the operator's keys from
//! `[dns] tsig_keys` (transfers of any zone) and every team's keys from the store, their
//! secrets opened once. The table is swapped whole after each commit that changes a key (the
//! store's listener runs before the commit is acknowledged), so a revoked key fails the very
//! next message; verifying a message never touches the disk.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use zeroize::Zeroizing;

use crate::domain::{TsigAlgorithm, TsigKey};
use crate::seal::Sealer;
use crate::store::Change;

/// Whose key it is, and so what it may do.
pub enum Owner {
    /// An operator's key from the configuration: transfers of every zone.
    Operator,
    /// A team's key: UPDATE and transfers as its policy says.
    Team(Arc<TsigKey>),
}

/// A key ready to verify and sign with. Its secret never leaves memory and is wiped on drop.
pub struct Key {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    secret: Zeroizing<Vec<u8>>,
    pub owner: Owner,
}

impl Key {
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The team's key row, for a team's key.
    pub fn team_key(&self) -> Option<&Arc<TsigKey>> {
        match &self.owner {
            Owner::Team(k) => Some(k),
            Owner::Operator => None,
        }
    }
}

/// Lowercase, without the final dot: how names are looked up.
fn lookup_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

type Table = HashMap<String, Arc<Key>>;

/// Every key the server knows, swapped atomically.
#[derive(Default)]
pub struct Keys {
    table: ArcSwap<Table>,
    /// Opens the teams' secrets; `None`: the teams' keys are not served (benches, fuzzing).
    sealer: Option<Arc<Sealer>>,
    /// The operator's keys: they win over a team's key of the same name.
    configured: Vec<Arc<Key>>,
}

impl Keys {
    /// The operator's keys (`[dns] tsig_keys` that `allow_transfer` names); teams' keys come
    /// from `rebuild` and `apply`, opened with `sealer`.
    pub fn new(configured: &[&crate::config::TsigKey], sealer: Option<Arc<Sealer>>) -> Self {
        let configured: Vec<Arc<Key>> = configured
            .iter()
            .filter_map(|k| {
                let secret = data_encoding::BASE64.decode(k.secret.as_bytes()).ok()?;
                Some(Arc::new(Key {
                    name: Name::from_ascii(&k.name).ok()?,
                    algorithm: k.algorithm.parse().ok()?,
                    secret: Zeroizing::new(secret),
                    owner: Owner::Operator,
                }))
            })
            .collect();
        let keys = Self {
            table: ArcSwap::default(),
            sealer,
            configured,
        };
        keys.rebuild(Vec::new());
        keys
    }

    /// The key a message names.
    pub fn find(&self, name: &Name) -> Option<Arc<Key>> {
        self.table.load().get(&lookup_name(name)).cloned()
    }

    fn open(&self, row: &TsigKey) -> Option<Arc<Key>> {
        let sealer = self.sealer.as_ref()?;
        match sealer.open(&TsigKey::context(row.id), &row.secret) {
            Ok(secret) => Some(Arc::new(Key {
                name: row.name.to_hickory(),
                algorithm: row.algorithm,
                secret: Zeroizing::new(secret.expose().to_vec()),
                owner: Owner::Team(Arc::new(row.clone())),
            })),
            Err(e) => {
                tracing::error!(key = %row.name, error = %e, "a TSIG key's secret does not open; the key is not served");
                None
            }
        }
    }

    fn with_configured(&self, mut table: Table) -> Table {
        for key in &self.configured {
            if let Some(Owner::Team(k)) = table.get(&lookup_name(&key.name)).map(|k| &k.owner) {
                tracing::warn!(key = %k.name, "a team's TSIG key has the name of a configured key; the configured one wins");
            }
            table.insert(lookup_name(&key.name), key.clone());
        }
        table
    }

    /// Replaces the teams' keys with `rows` (start-up).
    pub fn rebuild(&self, rows: Vec<TsigKey>) {
        let table: Table = rows
            .iter()
            .filter_map(|row| self.open(row))
            .map(|k| (lookup_name(&k.name), k))
            .collect();
        self.table.store(Arc::new(self.with_configured(table)));
    }

    /// Follows a committed batch: new keys in, revoked keys out, one swap.
    pub fn apply(&self, changes: &[Change]) {
        let touched = changes
            .iter()
            .any(|c| matches!(c, Change::TsigKeyPut(_) | Change::TsigKeyRemoved(_)));
        if !touched {
            return;
        }
        let mut table = (**self.table.load()).clone();
        for change in changes {
            match change {
                Change::TsigKeyPut(row) => {
                    if let Some(k) = self.open(row) {
                        table.insert(lookup_name(&k.name), k);
                    }
                }
                Change::TsigKeyRemoved(row) => {
                    table.remove(row.name.as_str());
                }
                _ => {}
            }
        }
        self.table.store(Arc::new(self.with_configured(table)));
    }
}
