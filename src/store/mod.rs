//! The only owner of redb. Reads run on the blocking pool; every write goes to one writer
//! thread that commits whatever writes are waiting together (group commit: one fsync for many
//! acknowledged writes), publishes the batch's changes to the commit listener, then answers.

mod audit;
mod hosting;
mod idempotency;
mod model;
mod open;
mod read;
mod teams;
mod writer;
mod zones;

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use uuid::Uuid;

pub use audit::{ACTOR, Actor, Event};
pub use idempotency::{IDEMPOTENCY_TTL_SECS, Idem};
pub use model::{Change, IdempotencyRecord, Job, JobSummary, Project, Record, Site, Soa, Team, Token, Zone};
pub use open::Create;
pub use read::{Page, Reader};
pub use writer::WriteCtx;
pub use zones::{
    Batch, BatchOutcome, JOURNAL_ENTRIES, JournalEntry, MAX_BATCH_ITEMS, NewRecord, RecordPatch, ZoneSeed,
    managed_error,
};

pub(crate) const TEAMS: TableDefinition<u128, &[u8]> = TableDefinition::new("teams");
pub(crate) const TEAM_NAMES: TableDefinition<&str, u128> = TableDefinition::new("team_names");
pub(crate) const TOKENS: TableDefinition<u128, &[u8]> = TableDefinition::new("tokens");
/// (team, token) → (): a team's tokens in creation order.
pub(crate) const TEAM_TOKENS: TableDefinition<(u128, u128), ()> = TableDefinition::new("team_tokens");
pub(crate) const ZONES: TableDefinition<u128, &[u8]> = TableDefinition::new("zones");
/// Reversed zone name (`com.example`) → zone: finds a name's ancestors and descendants.
pub(crate) const ZONE_NAMES: TableDefinition<&str, u128> = TableDefinition::new("zone_names");
/// (team, zone) → (): a team's zones in creation order.
pub(crate) const TEAM_ZONES: TableDefinition<(u128, u128), ()> = TableDefinition::new("team_zones");
/// team → records across its zones: what the per-team record cap is checked against.
pub(crate) const TEAM_RECORDS: TableDefinition<u128, u64> = TableDefinition::new("team_records");
/// (zone, record) → row: a zone's records in creation order (ids are UUIDv7).
pub(crate) const RECORDS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("records");
/// (zone, serial) → the change that led away from that serial: IXFR's journal.
pub(crate) const JOURNAL: TableDefinition<(u128, u32), &[u8]> = TableDefinition::new("journal");
/// (zone, owner name, record) → (): the records at one name, for the conflict rules.
pub(crate) const RECORD_NAMES: TableDefinition<(u128, &str, u128), ()> = TableDefinition::new("record_names");

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A batch with items that cannot be applied: (item, field, message) for each; nothing
    /// of the batch was applied.
    #[error("{} items of the batch are invalid", .0.len())]
    Batch(Vec<(String, &'static str, String)>),
    /// A conditional write whose condition (`If-Match`) no longer holds.
    #[error("{0}")]
    Precondition(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the database is held by another process")]
    Locked,
    /// No database where one must exist (a command that only reads).
    #[error("there is no database at {}; nothing to read (`ipx serve`, or a command that writes, makes one)", .0.display())]
    Missing(std::path::PathBuf),
    /// A file that cannot be used as this database: empty, foreign or damaged.
    #[error("{0}")]
    Unusable(String),
    /// Writes are refused: the file they would go to is gone from its path.
    #[error("{0}")]
    Unavailable(String),
}

impl StoreError {
    pub(crate) fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            code,
            field,
            message: message.into(),
        }
    }
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            code,
            message: message.into(),
        }
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Storage(e.to_string()) }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            e => StoreError::Storage(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Every table, for reading a file through at open.
const TABLES: [&dyn open::Walk; 24] = [
    &TEAMS,
    &TEAM_NAMES,
    &TOKENS,
    &TEAM_TOKENS,
    &ZONES,
    &ZONE_NAMES,
    &TEAM_ZONES,
    &TEAM_RECORDS,
    &RECORDS,
    &JOURNAL,
    &RECORD_NAMES,
    &audit::EVENTS,
    &hosting::PROJECTS,
    &hosting::TEAM_PROJECTS,
    &hosting::PROJECT_SITES,
    &hosting::SITES,
    &hosting::TEAM_SITES,
    &hosting::SITE_DOMAINS,
    &hosting::JOBS,
    &hosting::OPEN_JOBS,
    &idempotency::IDEMPOTENCY,
    &idempotency::IDEMPOTENCY_BY_AGE,
    &idempotency::IDEMPOTENCY_V1,
    &open::META,
];

/// Called on the writer thread with each committed batch's changes, before any write of the
/// batch is acknowledged.
pub type CommitListener = Arc<dyn Fn(&[Change]) + Send + Sync>;

/// Cheap to clone; all clones share one database and one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    guard: Arc<open::FileGuard>,
    writer: writer::Handle,
    listener: Arc<Mutex<Option<CommitListener>>>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    caps: Arc<Mutex<crate::config::Caps>>,
}

impl Store {
    /// Opens (or creates) the database. Fails with `Locked` when another process has it open.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, Create::Yes)
    }

    /// Opens the database only if it exists (`Missing` otherwise): for commands that only read.
    pub fn open_existing(path: &Path) -> Result<Store> {
        Self::open_with(path, Create::No)
    }

    fn open_with(path: &Path, create: Create) -> Result<Store> {
        let fresh = open::prepare(path, create)?;
        // Read everything back before anything writes: a damaged file is left as it is.
        let verified = fresh || open::preflight(path, &TABLES)?;
        let opened = open::quietly(|| Database::create(path));
        let db = match opened {
            Ok(db) => Arc::new(db?),
            Err(_) => {
                return Err(StoreError::Unusable(format!(
                    "{}: the database is damaged (redb could not open it)",
                    path.display()
                )));
            }
        };
        if !verified {
            open::verify(path, db.as_ref(), &TABLES)?; // repaired on open: read it through now
        }
        let txn = db.begin_write()?;
        {
            txn.open_table(open::META)?.insert("format", open::FORMAT)?;
            txn.open_table(TEAMS)?;
            txn.open_table(TEAM_NAMES)?;
            txn.open_table(TOKENS)?;
            txn.open_table(TEAM_TOKENS)?;
            txn.open_table(ZONES)?;
            txn.open_table(ZONE_NAMES)?;
            txn.open_table(TEAM_ZONES)?;
            let mut counts = txn.open_table(TEAM_RECORDS)?;
            if counts.is_empty()? {
                // A store from before the per-team count: count once from the zones.
                let zones = txn.open_table(ZONES)?;
                for entry in zones.iter()? {
                    let zone: Zone = read::decode(entry?.1.value())?;
                    let n = counts.get(zone.team_id.as_u128())?.map_or(0, |v| v.value());
                    counts.insert(zone.team_id.as_u128(), n + zone.record_count)?;
                }
            }
            txn.open_table(RECORDS)?;
            txn.open_table(RECORD_NAMES)?;
            txn.open_table(JOURNAL)?;
            txn.open_table(audit::EVENTS)?;
            txn.open_table(hosting::PROJECTS)?;
            txn.open_table(hosting::TEAM_PROJECTS)?;
            txn.open_table(hosting::PROJECT_SITES)?;
            txn.open_table(hosting::SITES)?;
            txn.open_table(hosting::TEAM_SITES)?;
            txn.open_table(hosting::SITE_DOMAINS)?;
            txn.open_table(hosting::JOBS)?;
            txn.open_table(hosting::OPEN_JOBS)?;
            txn.open_table(idempotency::IDEMPOTENCY)?;
            txn.open_table(idempotency::IDEMPOTENCY_BY_AGE)?;
            // Held whole responses, secrets included: gone, not migrated.
            txn.delete_table(idempotency::IDEMPOTENCY_V1)?;
        }
        txn.commit()?;
        let listener: Arc<Mutex<Option<CommitListener>>> = Arc::default();
        let caps: Arc<Mutex<crate::config::Caps>> = Arc::default();
        let guard = Arc::new(open::FileGuard::new(path)?);
        let (writer, thread) = writer::spawn(db.clone(), guard.clone(), listener.clone(), caps.clone());
        Ok(Store {
            db,
            guard,
            writer,
            listener,
            thread: Arc::new(Mutex::new(Some(thread))),
            caps,
        })
    }

    /// `Err` (saying why) once writes are refused because the database file left its path.
    pub fn health(&self) -> std::result::Result<(), String> {
        self.guard.check()
    }

    /// Drops this handle and, once it was the last one, waits for the writer to finish its
    /// queue and for redb to close the file (so the same process can open it again).
    pub fn close(self) {
        let thread = self.thread.lock().expect("thread lock").take();
        drop(self);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Sets the per-team caps writes are checked against.
    pub fn set_caps(&self, caps: crate::config::Caps) {
        *self.caps.lock().expect("caps lock") = caps;
    }

    /// Installs the function that publishes committed changes (the DNS snapshots).
    pub fn set_listener(&self, listener: CommitListener) {
        *self.listener.lock().expect("listener lock") = Some(listener);
    }

    /// Runs `f` in a write transaction on the writer thread; returns once it is committed and
    /// its changes published. `f` must check everything before it writes: an `Err` from it
    /// leaves its batch-mates' writes in place, so it must not have written anything.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// `write` for synchronous callers (the CLI, start-up).
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.writer.submit_blocking(f)
    }

    /// Runs `f` against a consistent snapshot on the blocking pool (redb is synchronous).
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Reader) -> Result<R> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || Self::read_with(&db, f))
            .await
            .map_err(|e| StoreError::Storage(format!("read task failed: {e}")))?
    }

    pub fn read_blocking<R>(&self, f: impl FnOnce(&Reader) -> Result<R>) -> Result<R> {
        Self::read_with(&self.db, f)
    }

    fn read_with<R>(db: &Database, f: impl FnOnce(&Reader) -> Result<R>) -> Result<R> {
        let txn: ReadTransaction = db.begin_read()?;
        f(&Reader::new(txn))
    }
}

pub(crate) fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Token ids are random (v4): they appear inside secrets, which should not reveal when a
/// token was made.
pub fn new_token_id() -> Uuid {
    Uuid::new_v4()
}
