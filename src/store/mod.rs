//! The only owner of redb. Reads run on the blocking pool; every write goes to one writer
//! thread that commits whatever writes are waiting together (group commit: one fsync for many
//! acknowledged writes), publishes the batch's changes to the commit listener, then answers.
//!
//! The store keeps the domain's values and checks what only it can see (a name is free, a
//! row is the team's, a cap is reached); what a change should be is decided above it.

mod audit;
mod backup;
mod batch;
mod catalog;
mod certificates;
mod dnssec;
mod idempotency;
mod inventory;
mod jobs;
mod meta;
mod open;
mod projects;
mod read;
mod records;
mod sites;
mod tables;
mod teams;
mod tsig_keys;
mod update;
mod writer;
mod zones;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

pub use audit::EventFilter;
pub use backup::{Contents, verify_file};
pub use batch::{Batch, BatchOutcome, MAX_BATCH_ITEMS};
pub use catalog::CatalogSync;
pub use certificates::Due;
pub use dnssec::Enable;
pub use idempotency::{IDEMPOTENCY_TTL_SECS, Idem};
pub use open::Create;
pub use read::{Page, PageEnd, Reader};
pub use records::RecordPatch;
pub use tables::{IdempotencyRecord, JournalEntry, SignedRecords};
pub use update::{UpdateOutcome, UpdateRefused, Updater};
pub use writer::WriteCtx;
pub use zones::JOURNAL_ENTRIES;

use crate::config::Caps;
use crate::domain::rules::Refusal;
use crate::domain::{Actor, DnssecKey, Record, TsigKey, Zone};

#[derive(Debug, Clone, thiserror::Error)]
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
    /// redb failed.
    #[error("storage error: {0}")]
    Storage(#[source] Arc<redb::Error>),
    /// The store's own machinery failed (a panicking write, a row that does not decode, the
    /// writer gone).
    #[error("storage error: {0}")]
    Internal(String),
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
        Self::Invalid {
            code,
            field,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        match e.into() {
            redb::Error::DatabaseAlreadyOpen => Self::Locked,
            e => Self::Storage(Arc::new(e)),
        }
    }
}

/// A record rule's refusal, as the store reports it.
impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid { code, field, message } => Self::Invalid { code, field, message },
            Refusal::Duplicate(message) => Self::Conflict {
                code: "duplicate_record",
                message,
            },
            Refusal::Managed(message) => Self::Forbidden {
                code: "managed_record",
                message,
            },
        }
    }
}

/// Why the key-encryption key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a committed transaction changed, in commit order; the DNS snapshots are updated from
/// these before the writer acknowledges the transaction.
///
/// A batch holds one per record it writes (a million for a zone import): the rarer, larger
/// parts are boxed so that a change is the size of the record it carries.
#[derive(Debug, Clone)]
pub enum Change {
    /// A zone was created or its row changed (serial, SOA).
    ZonePut(Box<Zone>),
    ZoneRemoved(Box<Zone>),
    RecordPut {
        old: Option<Box<Record>>,
        new: Record,
    },
    RecordRemoved(Record),
    /// A TSIG key was made: the DNS server knows it from now on.
    TsigKeyPut(TsigKey),
    /// A TSIG key was revoked: the DNS server forgets it.
    TsigKeyRemoved(TsigKey),
    /// A signed zone's key was made or changed its part (`KeyState`).
    DnssecKeyPut(DnssecKey),
    /// A key left its zone (a rollover's old key, or signing turned off).
    DnssecKeyRemoved(DnssecKey),
    /// Signatures at these names (lookup keys, `dns::snapshot::Key`) are to be made again
    /// where they are due; no names: wherever anything is missing or due (start-up).
    Resign {
        zone: uuid::Uuid,
        names: Vec<Box<[u8]>>,
    },
}

/// What publishing a batch needs, made before its transaction commits: the signed data the
/// batch derives (stored in the same transaction) and the step that makes it all visible.
pub struct Prepared {
    pub signed: Vec<SignedDelta>,
    pub publish: Box<dyn FnOnce() + Send>,
}

/// What signing derived from one zone's changes in a batch.
#[derive(Debug, Clone, Default)]
pub struct SignedDelta {
    pub zone: uuid::Uuid,
    /// The serials the batch's changes of the zone moved away from, in order: the journal
    /// entries (`JOURNAL`) of the batch. The derived records join the last; the others are
    /// marked signed with nothing of their own (their states were never published).
    pub from_serials: Vec<u32>,
    /// Every stored row of the zone's signed data goes first (signing turned off or the
    /// zone signed again as a whole).
    pub clear: bool,
    /// Rows of the zone's signed data to write (`Some`) or delete (`None`).
    pub rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The records IXFR sends for the change beyond the unsigned ones; `None` when the
    /// change is too large for a journal entry (a secondary then transfers the whole zone).
    pub records: Option<SignedRecords>,
}

/// Called on the writer thread with each batch's changes before it commits: builds what the
/// batch publishes (the DNS snapshots, signed); an `Err` aborts the batch. The `publish` it
/// returns runs after the commit, before any write of the batch is acknowledged.
pub type CommitListener = Arc<dyn Fn(&[Change]) -> Result<Prepared, String> + Send + Sync>;

/// Cheap to clone; all clones share one database and one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    guard: Arc<open::FileGuard>,
    writer: writer::Handle,
    listener: Arc<Mutex<Option<CommitListener>>>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    caps: Arc<Mutex<Caps>>,
    metrics: Arc<OnceLock<Arc<crate::metrics::Metrics>>>,
}

/// redb's page cache when none is configured (`[store] cache_mib`): what is read and written
/// often (indexes, recent rows) stays in memory; the rest is the OS's page cache, which does
/// not count against the process. redb's own default, 1 GiB, held a whole million-record
/// database after start-up.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl Store {
    /// Opens (or creates) the database. Fails with `Locked` when another process has it open.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Create::Yes, DEFAULT_CACHE_BYTES)
    }

    /// `open` with a page cache of `cache_bytes` (the server's, from the configuration).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        Self::open_with(path, Create::Yes, cache_bytes)
    }

    /// Opens the database only if it exists (`Missing` otherwise): for commands that only read.
    pub fn open_existing(path: &Path) -> Result<Self> {
        Self::open_with(path, Create::No, DEFAULT_CACHE_BYTES)
    }

    fn open_with(path: &Path, create: Create, cache_bytes: usize) -> Result<Self> {
        let fresh = open::prepare(path, create)?;
        // Read everything back before anything writes: a damaged file is left as it is.
        let verified = fresh || open::preflight(path, &tables::ALL)?;
        let db = match open::quietly(|| redb::Builder::new().set_cache_size(cache_bytes).create(path)) {
            Ok(db) => Arc::new(db?),
            Err(_) => {
                return Err(StoreError::Unusable(format!(
                    "{}: the database is damaged (redb could not open it)",
                    path.display()
                )));
            }
        };
        if !verified {
            open::verify(path, db.as_ref(), &tables::ALL)?; // repaired on open: read it through now
        }
        let txn = db.begin_write()?;
        for table in tables::ALL {
            table.create(&txn)?;
        }
        txn.open_table(tables::META)?.insert("format", tables::FORMAT)?;
        // Held whole responses, secrets included: gone, not migrated.
        txn.delete_table(tables::IDEMPOTENCY_V1)?;
        {
            let mut counts = txn.open_table(tables::TEAM_RECORDS)?;
            if counts.is_empty()? {
                // A store from before the per-team count: count once from the zones.
                for entry in txn.open_table(tables::ZONES)?.iter()? {
                    let zone = entry?.1.value();
                    let held = counts.get(zone.team_id.as_u128())?.map_or(0, |v| v.value());
                    counts.insert(zone.team_id.as_u128(), held + zone.record_count)?;
                }
            }
        }
        txn.commit()?;
        let listener: Arc<Mutex<Option<CommitListener>>> = Arc::default();
        let caps: Arc<Mutex<Caps>> = Arc::default();
        let metrics: Arc<OnceLock<Arc<crate::metrics::Metrics>>> = Arc::default();
        let guard = Arc::new(open::FileGuard::new(path)?);
        let (writer, thread) = writer::spawn(
            db.clone(),
            guard.clone(),
            listener.clone(),
            caps.clone(),
            metrics.clone(),
        );
        Ok(Self {
            db,
            guard,
            writer,
            listener,
            thread: Arc::new(Mutex::new(Some(thread))),
            caps,
            metrics,
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

    /// The key-encryption key for this database's sealed secrets: the file at `path`, checked
    /// against the fingerprint the database remembers, or made (and remembered) for a
    /// database that has none yet.
    pub fn unlock(&self, path: &Path) -> Result<crate::seal::Sealer, UnlockError> {
        let expected = self.read_blocking(|r| r.kek_fingerprint())?;
        let sealer = crate::seal::Sealer::unlock(path, expected.as_deref())?;
        if expected.is_none() {
            let fingerprint = sealer.fingerprint();
            self.write_blocking_as(Actor::operator(), move |tx| tx.remember_kek(&fingerprint))?;
        }
        Ok(sealer)
    }

    /// Sets the per-team caps writes are checked against.
    pub fn set_caps(&self, caps: Caps) {
        *self.caps.lock().expect("caps lock") = caps;
    }

    /// Times every commit and publication into `metrics` from now on (once: later calls
    /// keep the first).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Installs the function that publishes committed changes (the DNS snapshots).
    pub fn set_listener(&self, listener: CommitListener) {
        *self.listener.lock().expect("listener lock") = Some(listener);
    }

    /// Runs `f` in a write transaction on the writer thread, on behalf of `actor` (its audit
    /// events name them); returns once it is committed and its changes published. `f` must
    /// check everything before it writes: an `Err` from it leaves its batch-mates' writes in
    /// place, so it must not have written anything.
    pub async fn write_as<R, F>(&self, actor: Actor, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.writer.submit(actor, f).await
    }

    /// `write_as` for synchronous callers (the CLI, start-up).
    pub fn write_blocking_as<R, F>(&self, actor: Actor, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.writer.submit_blocking(actor, f)
    }

    /// Runs a bounded read (a row, a page of rows) against a consistent snapshot on the
    /// caller's thread: from redb's cache that costs tens of microseconds, less than the two
    /// thread hand-offs of `read`. Reads that walk a whole zone or table use `read`.
    pub fn read_page<R>(&self, f: impl FnOnce(&Reader) -> Result<R>) -> Result<R> {
        Self::read_with(&self.db, f)
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
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// A handle that reads the IXFR journal and nothing else: what the DNS server holds.
    pub fn journal(&self) -> Journal {
        Journal { db: self.db.clone() }
    }

    /// A handle that applies RFC 2136 UPDATEs and nothing else: what the DNS server holds.
    pub fn updater(&self) -> Updater {
        Updater::new(self.clone())
    }

    pub fn read_blocking<R>(&self, f: impl FnOnce(&Reader) -> Result<R>) -> Result<R> {
        Self::read_with(&self.db, f)
    }

    /// A stored row that does not decode panics inside redb (see `tables::Json`): here it
    /// becomes an error.
    fn read_with<R>(db: &Database, f: impl FnOnce(&Reader) -> Result<R>) -> Result<R> {
        let txn = db.begin_read()?;
        open::quietly(|| f(&Reader::new(txn)))
            .unwrap_or_else(|panic| Err(StoreError::Internal(open::panic_message(&panic))))
    }
}

/// Read access to the IXFR journal alone, so the DNS server cannot write to the store.
#[derive(Clone)]
pub struct Journal {
    db: Arc<Database>,
}

impl Journal {
    /// The changes from `serial` to `current`, in order; `None` when the journal no longer
    /// reaches back to `serial`.
    pub async fn since(&self, zone: uuid::Uuid, serial: u32, current: u32) -> Result<Option<Vec<JournalEntry>>> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || Store::read_with(&db, |r| r.journal_since(zone, serial, current)))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}
