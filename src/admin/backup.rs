//! `ipx backup FILE` and `ipx restore FILE`.
//!
//! A backup is made by the server when it holds the database (over the operator socket,
//! while it keeps serving and acknowledging writes) and directly otherwise; either way it
//! lands in a file beside FILE, is checked there (`store::verify_file`), and only then
//! replaces FILE: a failed backup never destroys the previous one.
//!
//! A restore copies the file into a data directory that holds no database, checks the copy
//! the same way, puts it in place, and opens it as the server would before it says so.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{AdminError, Result, socket};
use crate::config::Config;
use crate::store::{Store, StoreError, verify_file};

/// Writes a verified backup of the store to `file`.
pub fn backup(config: &Config, file: &Path) -> Result<String> {
    let partial = beside(file, "partial");
    let mut out = create_private(&partial)?;
    let made = make(config, &mut out)
        .and_then(|()| out.sync_all().map_err(|e| io(&partial, e)))
        .and_then(|()| verify_file(&partial).map_err(AdminError::from))
        .and_then(|contents| {
            fs::rename(&partial, file).map_err(|e| io(file, e))?;
            sync_dir(file);
            Ok(contents)
        });
    let contents = match made {
        Ok(contents) => contents,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    let mut said = format!(
        "backup of {} teams, {} zones and {} records written to {} ({} bytes) and verified\n",
        contents.teams,
        contents.zones,
        contents.records,
        file.display(),
        contents.bytes
    );
    if let Some(fingerprint) = &contents.kek_fingerprint {
        said.push_str(&format!(
            "its secrets are sealed under the key with fingerprint {fingerprint}: keep a copy of the key file ({}) apart from this backup; a restore needs it\n",
            config.key_path().display()
        ));
    }
    Ok(said)
}

/// The backup itself: from the running server when it holds the database, else directly.
fn make(config: &Config, out: &mut File) -> Result<()> {
    match Store::open_existing(&config.db_path()) {
        Ok(store) => {
            let copy = out.try_clone().map_err(AdminError::Socket);
            let made = copy.and_then(|copy| store.backup_into(copy).map_err(AdminError::from));
            store.close();
            made
        }
        Err(StoreError::Locked) => socket::fetch_backup(&config.socket_path(), out).map(drop),
        Err(e) => Err(e.into()),
    }
}

/// Builds the data directory's database from the backup `file`, refusing a directory that
/// already holds one.
pub fn restore(config: &Config, file: &Path) -> Result<String> {
    let db = config.db_path();
    if fs::symlink_metadata(&db).is_ok() {
        return Err(AdminError::Invalid(format!(
            "{} already holds a database; a restore never replaces one. Restore into a new data directory (--data-dir), or move that database away first",
            db.display()
        )));
    }
    let dir = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    let made_dir = !dir.exists();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io(&dir, e))?;
    let partial = beside(&db, "restoring");
    let restored = copy_into(file, &partial)
        .and_then(|()| {
            verify_file(&partial).map_err(|e| match e {
                StoreError::Unusable(m) => {
                    AdminError::Invalid(m.replace(&partial.display().to_string(), &file.display().to_string()))
                }
                other => other.into(),
            })
        })
        .and_then(|contents| {
            // A link, not a rename: it fails if a database appeared meanwhile (a server
            // started on the directory), where a rename would replace it.
            fs::hard_link(&partial, &db).map_err(|e| io(&db, e))?;
            let _ = fs::remove_file(&partial);
            sync_dir(&db);
            // Opened as `serve` opens it: read through, brought to this version's tables.
            match Store::open_existing(&db) {
                Ok(store) => {
                    store.close();
                    Ok(contents)
                }
                Err(e) => {
                    let _ = fs::remove_file(&db);
                    Err(e.into())
                }
            }
        });
    let contents = match restored {
        Ok(contents) => contents,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            if made_dir {
                let _ = fs::remove_dir(&dir);
            }
            return Err(e);
        }
    };
    let mut said = format!(
        "restored {} teams, {} zones and {} records from {} into {}; verified\n",
        contents.teams,
        contents.zones,
        contents.records,
        file.display(),
        db.display()
    );
    if let Some(fingerprint) = &contents.kek_fingerprint {
        said.push_str(&key_advice(config, fingerprint));
    }
    Ok(said)
}

/// What the operator must do about the key file before `serve`.
fn key_advice(config: &Config, fingerprint: &str) -> String {
    let path = config.key_path();
    if !path.exists() {
        return format!(
            "before `ipx serve`, put the key file with fingerprint {fingerprint} (from your key backup) at {} (or point [store] key_file at it): the database's sealed secrets need it, and the server refuses to start without it\n",
            path.display()
        );
    }
    match crate::seal::Sealer::unlock(&path, Some(fingerprint)) {
        Ok(_) => format!(
            "the key file {} holds the key it needs ({fingerprint})\n",
            path.display()
        ),
        Err(e) => format!("warning: {e}\n"),
    }
}

/// Copies `from` into the new file `to` (0600) and makes it durable.
fn copy_into(from: &Path, to: &Path) -> Result<()> {
    let mut source = File::open(from).map_err(|e| AdminError::ReadFile {
        path: from.to_path_buf(),
        source: e,
    })?;
    let mut dest = create_private(to)?;
    std::io::copy(&mut source, &mut dest).map_err(|e| io(to, e))?;
    dest.flush().and_then(|()| dest.sync_all()).map_err(|e| io(to, e))
}

/// A new file only its owner may read (a backup holds every hash and sealed secret), in
/// place of any a crashed run left (never through a link someone put there).
fn create_private(path: &Path) -> Result<File> {
    let _ = fs::remove_file(path);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))
}

/// `FILE` → `.FILE.<what>` in the same directory, so the final rename stays on one file system.
fn beside(file: &Path, what: &str) -> PathBuf {
    let name = file
        .file_name()
        .map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}.{what}"))
}

/// Makes a rename in `file`'s directory durable.
fn sync_dir(file: &Path) {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn io(path: &Path, source: std::io::Error) -> AdminError {
    AdminError::Invalid(format!("{}: {source}", path.display()))
}
