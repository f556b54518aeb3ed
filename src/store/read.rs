//! Reading: one set of queries for both kinds of transaction. A `Reader` over a read
//! transaction serves `Store::read`; the same queries run inside a write (`WriteCtx` derefs to
//! a `Reader` over its write transaction), so a write checks what it reads exactly as a read
//! would.

use redb::{Key, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, Value, WriteTransaction};
use uuid::Uuid;

use super::tables::{Json, Row};
use super::{Result, StoreError};
use crate::domain::{Project, Site, Token, TsigKey, Zone};

/// A transaction tables can be read from.
pub trait Tables {
    type Table<'t, K: Key + 'static, V: Value + 'static>: ReadableTable<K, V>
    where
        Self: 't;

    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<'_, K, V>,
    ) -> Result<Self::Table<'_, K, V>>;
}

impl Tables for ReadTransaction {
    type Table<'t, K: Key + 'static, V: Value + 'static> = ReadOnlyTable<K, V>;

    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<'_, K, V>,
    ) -> Result<ReadOnlyTable<K, V>> {
        Ok(self.open_table(def)?)
    }
}

impl Tables for WriteTransaction {
    type Table<'t, K: Key + 'static, V: Value + 'static> = Table<'t, K, V>;

    fn table<K: Key + 'static, V: Value + 'static>(&self, def: TableDefinition<'_, K, V>) -> Result<Table<'_, K, V>> {
        Ok(self.open_table(def)?)
    }
}

/// Queries over one consistent state of the database.
pub struct Reader<T = ReadTransaction> {
    pub(crate) txn: T,
}

impl<T> Reader<T> {
    pub(crate) fn new(txn: T) -> Self {
        Self { txn }
    }
}

impl<T: Tables> Reader<T> {
    /// The row `id` of a table keyed by id.
    pub(crate) fn row<V: Row>(&self, def: TableDefinition<'_, u128, Json<V>>, id: Uuid) -> Result<Option<V>> {
        Ok(self.txn.table(def)?.get(id.as_u128())?.map(|v| v.value()))
    }

    /// The row `id` of `team`: another team's row is "not found", exactly like a missing one.
    pub(crate) fn owned<V: Owned>(&self, def: TableDefinition<'_, u128, Json<V>>, team: Uuid, id: Uuid) -> Result<V> {
        match self.row(def, id)? {
            Some(row) if row.team_id() == team => Ok(row),
            _ => Err(StoreError::NotFound(V::WHAT)),
        }
    }

    /// A page of a team's rows of one kind, in creation order: counts the index and decodes
    /// only the page.
    pub(crate) fn team_page<V: Owned>(
        &self,
        index: TableDefinition<'_, (u128, u128), ()>,
        rows: TableDefinition<'_, u128, Json<V>>,
        team: Uuid,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Page<V>> {
        let idx = self.txn.table(index)?;
        let rows = self.txn.table(rows)?;
        let t = team.as_u128();
        let total = idx.range((t, 0)..=(t, u128::MAX))?.count() as u64;
        let from = after.map_or(0, |a| a.as_u128().saturating_add(1));
        let (mut items, mut next) = (Vec::new(), None);
        for entry in idx.range((t, from)..=(t, u128::MAX))? {
            let id = entry?.0.value().1;
            if items.len() == limit {
                next = items.last().map(|r: &V| r.id());
                break;
            }
            if let Some(row) = rows.get(id)?.map(|v| v.value()) {
                items.push(row);
            }
        }
        Ok(Page { items, next, total })
    }

    /// `team_page` filtered by `keep`; `total` counts every row that `keep` accepts, so every
    /// row is decoded.
    pub(crate) fn team_page_where<V: Owned>(
        &self,
        index: TableDefinition<'_, (u128, u128), ()>,
        rows: TableDefinition<'_, u128, Json<V>>,
        team: Uuid,
        after: Option<Uuid>,
        limit: usize,
        keep: impl Fn(&V) -> bool,
    ) -> Result<Page<V>> {
        let idx = self.txn.table(index)?;
        let rows = self.txn.table(rows)?;
        let t = team.as_u128();
        let (mut items, mut next, mut total) = (Vec::new(), None, 0);
        for entry in idx.range((t, 0)..=(t, u128::MAX))? {
            let id = entry?.0.value().1;
            let Some(row) = rows.get(id)?.map(|v| v.value()) else {
                continue;
            };
            if !keep(&row) {
                continue;
            }
            total += 1;
            if after.is_some_and(|a| id <= a.as_u128()) {
                continue;
            }
            if items.len() == limit {
                next = next.or(items.last().map(|r: &V| r.id()));
                continue;
            }
            items.push(row);
        }
        Ok(Page { items, next, total })
    }
}

/// Where a page read row by row ended: the id to continue after, and the list's length.
#[derive(Debug, Clone, Copy)]
pub struct PageEnd {
    pub next: Option<Uuid>,
    pub total: u64,
}

/// One page of a list in creation order; `next` is the id to continue after.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
    pub total: u64,
}

/// Rows that belong to a team, and what to call one that is not found.
pub(crate) trait Owned: Row {
    const WHAT: &'static str;
    fn id(&self) -> Uuid;
    fn team_id(&self) -> Uuid;
}

impl Owned for Zone {
    const WHAT: &'static str = "zone";
    fn id(&self) -> Uuid {
        self.id
    }
    fn team_id(&self) -> Uuid {
        self.team_id
    }
}

impl Owned for Site {
    const WHAT: &'static str = "site";
    fn id(&self) -> Uuid {
        self.id
    }
    fn team_id(&self) -> Uuid {
        self.team_id
    }
}

impl Owned for Project {
    const WHAT: &'static str = "project";
    fn id(&self) -> Uuid {
        self.id
    }
    fn team_id(&self) -> Uuid {
        self.team_id
    }
}

impl Owned for Token {
    const WHAT: &'static str = "token";
    fn id(&self) -> Uuid {
        self.id
    }
    fn team_id(&self) -> Uuid {
        self.team_id
    }
}

impl Owned for TsigKey {
    const WHAT: &'static str = "TSIG key";
    fn id(&self) -> Uuid {
        self.id
    }
    fn team_id(&self) -> Uuid {
        self.team_id
    }
}
