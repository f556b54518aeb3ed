//! The argon2id verification threads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;

/// One argon2id verification for the hash threads: is `secret` the one `hash` was made from,
/// and how long did finding out take.
pub(super) struct HashJob {
    pub(super) secret: String,
    pub(super) hash: String,
    pub(super) reply: tokio::sync::oneshot::Sender<(bool, Duration)>,
}

/// Starts `n` threads that verify hashes at the lowest CPU priority (nice 19): under a
/// flood of guesses the scheduler runs DNS and the API before them, so guessing costs the
/// server's users nothing measurable. They stop when the sender is dropped.
pub(super) fn hash_threads(n: usize) -> std::sync::mpsc::Sender<HashJob> {
    let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ipx-hash-{i}"))
            .spawn(move || {
                // SAFETY: setpriority only changes this thread's nice value (Linux: per thread).
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                loop {
                    let Ok(job) = rx.lock().expect("hash queue").recv() else {
                        return;
                    };
                    let started = Instant::now();
                    let ok = PasswordHash::new(&job.hash)
                        .map(|h| Argon2::default().verify_password(job.secret.as_bytes(), &h).is_ok())
                        .unwrap_or(false);
                    let _ = job.reply.send((ok, started.elapsed()));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a hash thread");
        }
    }
    tx
}
