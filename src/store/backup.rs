//! Online backup and the checks a backup passes before anything trusts it.
//!
//! A backup is a new redb file holding every table as one read transaction saw it: redb's
//! readers are MVCC snapshots, so the copy is consistent (every write acknowledged before it
//! began, nothing half-written) while the writer keeps committing. It holds what the
//! database holds, so no secret in the clear: token hashes, and sealed secrets whose
//! key-encryption key lives in its own file (`crate::seal`), backed up apart.
//!
//! A file is trusted only after redb's integrity check (every page's checksum) passed
//! without a repair, every row of every table read back, and it proved to be an ipx database
//! of tables this version knows.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::Rc;

use redb::backends::FileBackend;
use redb::{Database, MultimapTableHandle, ReadableDatabase, ReadableTableMetadata, TableHandle};

use super::open::{self, quietly};
use super::tables::{self, META, RECORDS, TEAMS, ZONES};
use super::{Result, Store, StoreError};

/// What a verified backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub teams: u64,
    pub zones: u64,
    pub records: u64,
    /// The fingerprint of the key its sealed secrets need, once it has one.
    pub kek_fingerprint: Option<String>,
    /// The file's size in bytes.
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the whole store into a new file in the data directory,
    /// unlinked at once (nothing is left behind whatever happens), checks it, and returns it
    /// read from its start. For the operator socket, which streams it to the CLI.
    pub fn backup_to_temp(&self) -> Result<(File, Contents)> {
        let dir = self.guard.path().parent().unwrap_or(Path::new(".")).to_path_buf();
        let path = dir.join(format!(".backup-{}", uuid::Uuid::new_v4().simple()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::Internal(format!("cannot make a backup file in {}: {e}", dir.display())))?;
        let _ = std::fs::remove_file(&path);
        let mut out = file.try_clone().map_err(|e| StoreError::Internal(e.to_string()))?;
        self.backup_into(file)?;
        let contents = verify(
            out.try_clone().map_err(|e| StoreError::Internal(e.to_string()))?,
            "the backup",
        )?;
        out.seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok((out, contents))
    }

    /// Copies every table, as of one moment, into `file` (empty and writable).
    pub fn backup_into(&self, file: File) -> Result<()> {
        let txn = self.db.begin_read()?;
        known_tables(&txn)?;
        let copied = quietly(|| -> std::result::Result<(), String> {
            let backend = FileBackend::new(file).map_err(|e| e.to_string())?;
            let dest = Database::builder()
                .create_with_backend(backend)
                .map_err(|e| e.to_string())?;
            for table in tables::ALL {
                table.copy(&txn, &dest)?;
            }
            Ok(())
        });
        match copied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Internal(format!("backup failed: {e}"))),
            Err(panic) => Err(StoreError::Internal(format!(
                "backup failed: {}",
                open::panic_message(&panic)
            ))),
        }
    }
}

/// Refuses a database holding tables this version does not know: a copy of the known ones
/// would silently lose the others.
fn known_tables(txn: &redb::ReadTransaction) -> Result<()> {
    let known: Vec<&str> = tables::ALL.iter().map(|t| t.table_name()).collect();
    if let Some(t) = txn.list_tables()?.find(|t| !known.contains(&t.name())) {
        return Err(StoreError::Unusable(format!(
            "the database holds a table this version of ipx does not know ({:?}); use the version that made it",
            t.name()
        )));
    }
    if let Some(t) = txn.list_multimap_tables()?.next() {
        return Err(StoreError::Unusable(format!(
            "the database holds a table this version of ipx does not know ({:?}); use the version that made it",
            t.name()
        )));
    }
    Ok(())
}

/// Checks the backup file at `path` (opened read-write: a check may touch the file, so call
/// it on copies the caller owns, never on the operator's only copy).
pub fn verify_file(path: &Path) -> Result<Contents> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::Unusable(format!("{}: {e}", path.display())))?;
    verify(file, &path.display().to_string())
}

/// The checks of `verify_file`, on an open file; `what` names it in errors.
fn verify(mut file: File, what: &str) -> Result<Contents> {
    let damaged = |why: &str| StoreError::Unusable(format!("{what} is damaged ({why}); it cannot be restored"));
    let bytes = file.metadata().map_err(|e| damaged(&e.to_string()))?.len();
    let mut head = [0u8; 9];
    let read = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_exact(&mut head));
    if bytes == 0 || read.is_err() || head != open::REDB_MAGIC {
        return Err(StoreError::Unusable(format!(
            "{what} is not an ipx backup (not a redb file)"
        )));
    }
    // Opening the file to check it may grow it (redb allocates on open): its size is read
    // again once the check is done, so that the whole of it is what gets copied out.
    let probe = file.try_clone().map_err(|e| damaged(&e.to_string()))?;
    let repaired = Rc::new(Cell::new(false));
    let opened = {
        let repaired = repaired.clone();
        quietly(move || {
            let mut builder = Database::builder();
            builder.set_repair_callback(move |session| {
                repaired.set(true);
                session.abort();
            });
            builder.create_with_backend(FileBackend::new(file)?)
        })
    };
    let mut db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(_)) if repaired.get() => return Err(damaged("it was not closed cleanly, or pages do not read back")),
        Ok(Err(e)) => return Err(damaged(&e.to_string())),
        Err(_) => return Err(damaged("redb could not open it")),
    };
    match quietly(|| db.check_integrity()) {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Err(damaged("pages fail their checksums")),
        Ok(Err(e)) => return Err(damaged(&e.to_string())),
        Err(_) => return Err(damaged("pages fail their checksums")),
    }
    open::verify(Path::new(what), &db, &tables::ALL).map_err(|e| match e {
        StoreError::Unusable(m) => StoreError::Unusable(format!("{m}; it cannot be restored")),
        other => other,
    })?;
    let counted = quietly(|| -> Result<Contents> {
        let txn = db.begin_read()?;
        known_tables(&txn)?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(StoreError::Unusable(format!(
                    "{what} is not an ipx backup (no ipx tables)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if meta.get("format")?.is_none() {
            return Err(StoreError::Unusable(format!("{what} is not an ipx backup (no format)")));
        }
        Ok(Contents {
            teams: rows(&txn, TEAMS)?,
            zones: rows(&txn, ZONES)?,
            records: rows(&txn, RECORDS)?,
            kek_fingerprint: meta.get("kek_fingerprint")?.map(|v| v.value().to_string()),
            bytes,
        })
    });
    drop(db);
    let mut contents = counted.unwrap_or_else(|_| Err(damaged("a page does not read back")))?;
    contents.bytes = probe.metadata().map_err(|e| damaged(&e.to_string()))?.len();
    Ok(contents)
}

/// Rows of a table (0 for one the file does not have).
fn rows(txn: &redb::ReadTransaction, table: impl TableHandle) -> Result<u64> {
    match txn.open_untyped_table(table) {
        Ok(t) => Ok(t.len()?),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
