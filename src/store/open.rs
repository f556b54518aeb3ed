//! Opening the database file without ever lying about it: the data directory is the owner's
//! alone (0700, files 0600, looser modes tightened); a missing file is created only when the
//! caller may create one; an empty, foreign or corrupted file is refused with a clear error
//! before anything writes to it; and once open, the file is watched, so that a database
//! unlinked or replaced under the server stops writes instead of acknowledging them into a
//! file nobody will read again.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use redb::{ReadableDatabase, TableHandle};

use super::tables::{META, Walk};
use super::{Result, StoreError};

/// The first bytes of every redb file.
pub(crate) const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Whether a missing database may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Yes,
    No,
}

/// Makes the data directory the owner's alone and checks the file in it. Returns whether the
/// file is new (and so empty of data).
pub(crate) fn prepare(path: &Path, create: Create) -> Result<bool> {
    let unusable = |what: String| StoreError::Unusable(format!("{}: {what}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        if create == Create::No {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| unusable(format!("cannot create the directory: {e}")))?;
    }
    tighten(dir, 0o700);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            tighten(&entry.path(), if is_dir { 0o700 } else { 0o600 });
        }
    }
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if create == Create::No {
                return Err(StoreError::Missing(path.to_path_buf()));
            }
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| unusable(format!("cannot create: {e}")))?;
            Ok(true)
        }
        Err(e) => Err(unusable(e.to_string())),
        Ok(m) if !m.is_file() => Err(unusable("not a regular file".into())),
        Ok(m) if m.len() == 0 => Err(unusable(
            "the file is empty (0 bytes), so it is not an ipx database; nothing was changed. Restore it from a backup, or move it away to start afresh"
                .into(),
        )),
        Ok(_) => {
            let mut head = [0u8; REDB_MAGIC.len()];
            let read = File::open(path).and_then(|mut f| f.read_exact(&mut head));
            if read.is_err() || head != REDB_MAGIC {
                return Err(unusable("this is not an ipx database (not a redb file); nothing was changed".into()));
            }
            Ok(false)
        }
    }
}

/// Sets `mode` on `path` when its group or others have any access, and says so.
fn tighten(path: &Path, mode: u32) {
    let Ok(meta) = fs::symlink_metadata(path) else { return };
    if meta.file_type().is_symlink() {
        return;
    }
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 != 0 && fs::set_permissions(path, fs::Permissions::from_mode(mode)).is_ok() {
        tracing::warn!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "tightened the permissions of the data directory");
    }
}

/// Opens an existing file read-only and reads every table through before anything writes
/// to it: `Ok(false)` when it needs a repair first (not closed cleanly), which only a
/// writable open can do.
pub(crate) fn preflight(path: &Path, tables: &[&dyn Walk]) -> Result<bool> {
    // A small cache: the walk reads every page once, and redb's default (1 GiB) would hold a
    // big database whole for the length of the walk.
    let opened = quietly(|| {
        redb::Builder::new()
            .set_cache_size(super::DEFAULT_CACHE_BYTES)
            .open_read_only(path)
    });
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(redb::DatabaseError::RepairAborted)) => return Ok(false),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => return Err(StoreError::Locked),
        Ok(Err(e)) => return Err(corrupted(path, &e.to_string())),
        Err(_) => return Err(corrupted(path, "redb could not open it")),
    };
    verify(path, &db, tables)?;
    Ok(true)
}

/// Reads every row of every table (a damaged page makes redb fail or panic: both become a
/// clear error) and checks the file is an ipx database.
pub(crate) fn verify(path: &Path, db: &impl ReadableDatabase, tables: &[&dyn Walk]) -> Result<()> {
    let checked = quietly(|| -> std::result::Result<(), String> {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let names: Vec<String> = txn
            .list_tables()
            .map_err(|e| e.to_string())?
            .map(|t| t.name().to_string())
            .collect();
        let ours = names.iter().any(|n| n == META.name() || n == "teams");
        if !names.is_empty() && !ours {
            return Err("foreign".into());
        }
        for table in tables {
            table.walk(&txn)?;
        }
        Ok(())
    });
    match checked {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e == "foreign" => Err(StoreError::Unusable(format!(
            "{}: this is a redb database of another program, not an ipx one; nothing was changed",
            path.display()
        ))),
        Ok(Err(e)) => Err(corrupted(path, &e)),
        Err(_) => Err(corrupted(path, "a page does not read back")),
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err` without printing it: redb panics on some damaged
/// pages, and the operator should read one clear error, not a panic report.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result
}

/// What a caught panic said.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

fn corrupted(path: &Path, why: &str) -> StoreError {
    StoreError::Unusable(format!(
        "{}: the database is damaged ({why}); nothing was changed. Restore it from a backup",
        path.display()
    ))
}

/// Watches the database file the process has open: `check` fails once the path no longer
/// leads to it (unlinked, or replaced by another file). Once failed, it stays failed.
pub(crate) struct FileGuard {
    path: PathBuf,
    file: File,
    identity: (u64, u64),
    broken: AtomicBool,
    why: Mutex<Option<String>>,
}

impl FileGuard {
    pub(crate) fn new(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| StoreError::Internal(format!("{}: {e}", path.display())))?;
        let meta = file.metadata().map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            identity: (meta.dev(), meta.ino()),
            broken: AtomicBool::new(false),
            why: Mutex::default(),
        })
    }

    /// Where the database file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `Err` (with why) once the file is gone from its path.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.broken.load(Ordering::Acquire) {
            return Err(self.why.lock().expect("guard").clone().unwrap_or_default());
        }
        let unlinked = self.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
        let at_path = fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        let why = if unlinked || at_path.is_none() {
            format!(
                "the database file {} was deleted while the server had it open",
                self.path.display()
            )
        } else if at_path != Some(self.identity) {
            format!(
                "the database file {} was replaced by another file while the server had it open",
                self.path.display()
            )
        } else {
            return Ok(());
        };
        if !self.broken.swap(true, Ordering::AcqRel) {
            tracing::error!(problem = %why, "refusing every write from now on: nothing more can be made durable where the next start will read it; restart the server on a good data directory");
            *self.why.lock().expect("guard") = Some(why.clone());
        }
        Err(why)
    }
}
