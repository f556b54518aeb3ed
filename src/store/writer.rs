//! The writer thread: group commit. Jobs waiting when a transaction starts run in it one after
//! another; one commit (one fsync) makes all of them durable, then their changes are published
//! and each caller is answered. A job that fails validation is answered with its error and
//! leaves nothing behind; a storage failure aborts the batch and every job in it fails.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::audit::{ACTOR, Actor};
use super::open::FileGuard;
use super::{Change, CommitListener, Result, StoreError};
use crate::config::Caps;

/// Most jobs one transaction takes; bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 512;

/// The open write transaction a job runs in, and the changes jobs have made so far.
pub struct WriteCtx {
    pub(crate) txn: WriteTransaction,
    pub(crate) changes: Vec<Change>,
    /// Who the running job writes for: its audit events name them.
    pub(crate) actor: Actor,
    /// Per-team caps in force.
    pub(crate) caps: Caps,
}

impl WriteCtx {
    pub(crate) fn emit(&mut self, change: Change) {
        self.changes.push(change);
    }
}

enum Outcome {
    Done,
    Rejected,
    Failed(StoreError),
}

/// Answers a job's caller once its batch committed (`None`) or failed (`Some`).
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

trait Job: Send {
    fn run(self: Box<Self>, ctx: &mut WriteCtx) -> (Outcome, Answer);
    fn fail(self: Box<Self>, error: StoreError);
}

struct Task<F, R> {
    f: F,
    reply: oneshot::Sender<Result<R>>,
    actor: Actor,
}

impl<F, R> Job for Task<F, R>
where
    F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, ctx: &mut WriteCtx) -> (Outcome, Answer) {
        let Task { f, reply, actor } = *self;
        ctx.actor = actor;
        let result = match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
            Ok(r) => r,
            Err(_) => Err(StoreError::Storage(
                "a write panicked; its transaction was aborted".into(),
            )),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(StoreError::Storage(e)) => Outcome::Failed(StoreError::Storage(e.clone())),
            Err(_) => Outcome::Rejected,
        };
        let answer = Box::new(move |commit_error: Option<StoreError>| {
            let _ = reply.send(match commit_error {
                Some(e) => Err(e),
                None => result,
            });
        });
        (outcome, answer)
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

#[derive(Clone)]
pub(crate) struct Handle {
    tx: mpsc::Sender<Box<dyn Job>>,
}

impl Handle {
    fn enqueue<R, F>(&self, f: F) -> oneshot::Receiver<Result<R>>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        // The caller's actor (set by the API per request), or the operator (CLI).
        let actor = ACTOR.try_with(Clone::clone).unwrap_or_else(|_| Actor::operator());
        if let Err(mpsc::SendError(job)) = self.tx.send(Box::new(Task { f, reply, actor })) {
            job.fail(StoreError::Storage("the store is shut down".into()));
        }
        rx
    }

    pub(crate) async fn submit<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.enqueue(f)
            .await
            .map_err(|_| StoreError::Storage("the writer stopped".into()))?
    }

    pub(crate) fn submit_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.enqueue(f)
            .blocking_recv()
            .map_err(|_| StoreError::Storage("the writer stopped".into()))?
    }
}

/// Starts the writer thread; it ends when every `Handle` is dropped.
pub(crate) fn spawn(
    db: Arc<Database>,
    guard: Arc<FileGuard>,
    listener: Arc<Mutex<Option<CommitListener>>>,
    caps: Arc<Mutex<Caps>>,
) -> (Handle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
    let thread = std::thread::Builder::new()
        .name("ipx-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                run_batch(&db, &guard, &listener, &caps, batch);
            }
        })
        .expect("spawn writer thread");
    (Handle { tx }, thread)
}

fn run_batch(
    db: &Database,
    guard: &FileGuard,
    listener: &Mutex<Option<CommitListener>>,
    caps: &Mutex<Caps>,
    batch: Vec<Box<dyn Job>>,
) {
    let txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let e = StoreError::from(e);
            batch.into_iter().for_each(|job| job.fail(e.clone()));
            return;
        }
    };
    let caps = *caps.lock().expect("caps lock");
    let mut ctx = WriteCtx {
        txn,
        changes: Vec::new(),
        actor: Actor::operator(),
        caps,
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut failure = None;
    for job in jobs.by_ref() {
        let mark = ctx.changes.len();
        let (outcome, answer) = job.run(&mut ctx);
        answers.push(answer);
        match outcome {
            Outcome::Done => {}
            Outcome::Rejected => ctx.changes.truncate(mark),
            Outcome::Failed(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let WriteCtx { txn, changes, .. } = ctx;
    let failure = match failure {
        Some(e) => {
            drop(txn); // aborts
            Some(e)
        }
        // A commit into a file that left its path would be acknowledged and then lost.
        None => match guard.check() {
            Err(why) => {
                drop(txn);
                Some(StoreError::Unavailable(why))
            }
            Ok(()) => txn.commit().err().map(StoreError::from),
        },
    };
    if let Some(e) = failure {
        tracing::error!(error = %e, "write transaction failed; nothing in it was acknowledged");
        jobs.for_each(|job| job.fail(e.clone()));
        answers.into_iter().for_each(|a| a(Some(e.clone())));
        return;
    }
    if !changes.is_empty() {
        let publish = listener.lock().expect("listener lock").clone();
        if let Some(publish) = publish {
            publish(&changes);
        }
    }
    answers.into_iter().for_each(|a| a(None));
}
