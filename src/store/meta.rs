//! What the database says about itself: the fingerprint of the key-encryption key its
//! sealed secrets need (`crate::seal`).

use redb::ReadableTable;

use super::tables::META;
use super::{Reader, Result, WriteCtx};
use crate::store::read::Tables;

const KEK: &str = "kek_fingerprint";

impl<T: Tables> Reader<T> {
    /// The fingerprint of the key this database's secrets are sealed under, once it has one.
    pub fn kek_fingerprint(&self) -> Result<Option<String>> {
        Ok(self.txn.table(META)?.get(KEK)?.map(|v| v.value().to_string()))
    }
}

impl WriteCtx {
    /// Binds the database to the key `fingerprint` names (once; later calls keep the first).
    pub fn remember_kek(&mut self, fingerprint: &str) -> Result<()> {
        let mut meta = self.txn().open_table(META)?;
        if meta.get(KEK)?.is_none() {
            meta.insert(KEK, fingerprint)?;
        }
        Ok(())
    }
}
