//! The writer thread: group commit. Writes waiting when a transaction starts run in it one
//! after another; one commit (one fsync) makes all of them durable, then their changes are
//! published and each caller is answered. A write that fails validation is answered with its
//! error and leaves nothing behind; a storage failure aborts the batch and every write in it
//! fails.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::open::{FileGuard, panic_message, quietly};
use super::{Change, CommitListener, Reader, Result, StoreError};
use crate::config::Caps;
use crate::domain::Actor;
use crate::metrics::Metrics;

/// Builds what a batch publishes and stores what it derives, in the batch's transaction;
/// `None` without a listener. A listener that fails or panics fails the batch.
fn prepare(
    listener: Option<&CommitListener>,
    changes: &[Change],
    txn: &WriteTransaction,
) -> Result<Option<super::Prepared>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let prepared = quietly(|| listener(changes))
        .unwrap_or_else(|panic| Err(format!("publishing panicked: {}", panic_message(&panic))))
        .map_err(|e| StoreError::Internal(format!("the batch could not be published: {e}")))?;
    super::dnssec::store_signed(txn, &prepared.signed)?;
    Ok(Some(prepared))
}

/// Most writes one transaction takes; bounds the latency a batch adds to its first write.
const MAX_BATCH: usize = 512;

/// The open write transaction a write runs in, and the changes writes have made so far. It
/// reads as a `Reader` does (it derefs to one over its transaction).
pub struct WriteCtx {
    reader: Reader<WriteTransaction>,
    pub(crate) changes: Vec<Change>,
    /// Who the running write is for: its audit events name them.
    pub(crate) actor: Actor,
    /// Per-team caps in force.
    pub(crate) caps: Caps,
    /// Whether a listener takes the changes (the server's DNS side).
    publishing: bool,
}

impl WriteCtx {
    pub(crate) fn txn(&self) -> &WriteTransaction {
        &self.reader.txn
    }

    /// Keeps a change for the listener. Without one (the CLI on a stopped server) nothing
    /// reads them, and a million-record import would hold a million.
    pub(crate) fn emit(&mut self, change: Change) {
        if self.publishing {
            self.changes.push(change);
        }
    }
}

impl std::ops::Deref for WriteCtx {
    type Target = Reader<WriteTransaction>;

    fn deref(&self) -> &Self::Target {
        &self.reader
    }
}

enum Outcome {
    Done,
    Rejected,
    Failed(StoreError),
}

/// Answers a write's caller once its batch committed (`None`) or failed (`Some`).
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// A queued write, whatever it returns.
trait Work: Send {
    fn run(self: Box<Self>, ctx: &mut WriteCtx) -> (Outcome, Answer);
    fn fail(self: Box<Self>, error: StoreError);
}

struct Task<F, R> {
    f: F,
    reply: oneshot::Sender<Result<R>>,
    actor: Actor,
    /// The caller's span (an API request's): what the write logs carries its request id.
    span: tracing::Span,
}

impl<F, R> Work for Task<F, R>
where
    F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, ctx: &mut WriteCtx) -> (Outcome, Answer) {
        let Self { f, reply, actor, span } = *self;
        let _in_caller = span.enter();
        ctx.actor = actor;
        let result = quietly(|| f(ctx)).unwrap_or_else(|panic| {
            tracing::error!(panic = panic_message(&panic), "a write panicked");
            Err(StoreError::Internal(
                "a write panicked; its transaction was aborted".into(),
            ))
        });
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            // It may have written part of itself: the whole transaction goes.
            Err(e @ (StoreError::Storage(_) | StoreError::Internal(_))) => Outcome::Failed(e.clone()),
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
    tx: mpsc::Sender<Box<dyn Work>>,
}

impl Handle {
    fn enqueue<R, F>(&self, actor: Actor, f: F) -> oneshot::Receiver<Result<R>>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let span = tracing::Span::current();
        if let Err(mpsc::SendError(work)) = self.tx.send(Box::new(Task { f, reply, actor, span })) {
            work.fail(StoreError::Internal("the store is shut down".into()));
        }
        rx
    }

    pub(crate) async fn submit<R, F>(&self, actor: Actor, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.enqueue(actor, f)
            .await
            .map_err(|_| StoreError::Internal("the writer stopped".into()))?
    }

    pub(crate) fn submit_blocking<R, F>(&self, actor: Actor, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<R> + Send + 'static,
    {
        self.enqueue(actor, f)
            .blocking_recv()
            .map_err(|_| StoreError::Internal("the writer stopped".into()))?
    }
}

/// Starts the writer thread; it ends when every `Handle` is dropped.
pub(crate) fn spawn(
    db: Arc<Database>,
    guard: Arc<FileGuard>,
    listener: Arc<Mutex<Option<CommitListener>>>,
    caps: Arc<Mutex<Caps>>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
) -> (Handle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Box<dyn Work>>();
    let thread = std::thread::Builder::new()
        .name("ipx-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(work) => batch.push(work),
                        Err(_) => break,
                    }
                }
                run_batch(&db, &guard, (&listener, metrics.get()), &caps, batch);
            }
        })
        .expect("spawn writer thread");
    (Handle { tx }, thread)
}

fn run_batch(
    db: &Database,
    guard: &FileGuard,
    (listener, metrics): (&Mutex<Option<CommitListener>>, Option<&Arc<Metrics>>),
    caps: &Mutex<Caps>,
    batch: Vec<Box<dyn Work>>,
) {
    let txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let e = StoreError::from(e);
            batch.into_iter().for_each(|work| work.fail(e.clone()));
            return;
        }
    };
    let caps = *caps.lock().expect("caps lock");
    // Taken once: the batch's changes are kept, and published, only if a listener was there
    // when it started.
    let listener = listener.lock().expect("listener lock").clone();
    let mut ctx = WriteCtx {
        reader: Reader::new(txn),
        changes: Vec::new(),
        actor: Actor::operator(),
        caps,
        publishing: listener.is_some(),
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut queued = batch.into_iter();
    let mut failure = None;
    for work in queued.by_ref() {
        let mark = ctx.changes.len();
        let (outcome, answer) = work.run(&mut ctx);
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
    let WriteCtx { reader, changes, .. } = ctx;
    let changes_len = changes.len();
    let txn = reader.txn;
    // What the batch publishes is built before it commits: signing failures abort it, and
    // what signing derives commits with it.
    let started = Instant::now();
    let mut prepared = None;
    if failure.is_none() && !changes.is_empty() {
        match prepare(listener.as_ref(), &changes, &txn) {
            Ok(p) => prepared = p,
            Err(e) => failure = Some(e),
        }
    }
    let preparing = started.elapsed();
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
            Ok(()) => {
                let started = Instant::now();
                let committed = txn.commit();
                if let (Ok(()), Some(m)) = (&committed, metrics) {
                    m.committed(answers.len(), started.elapsed());
                }
                committed.err().map(StoreError::from)
            }
        },
    };
    if let Some(e) = failure {
        if let Some(m) = metrics {
            m.commit_failed();
        }
        tracing::error!(error = %e, "write transaction failed; nothing in it was acknowledged");
        queued.for_each(|work| work.fail(e.clone()));
        answers.into_iter().for_each(|a| a(Some(e.clone())));
        return;
    }
    if let Some(prepared) = prepared {
        let started = Instant::now();
        (prepared.publish)();
        if let Some(m) = metrics {
            m.published(preparing + started.elapsed());
        }
    }
    answers.into_iter().for_each(|a| a(None));
    if changes_len >= TRIM_AFTER {
        drop(changes);
        // SAFETY: malloc_trim only hands free memory of glibc's heap back to the OS.
        unsafe { libc::malloc_trim(0) };
    }
}

/// Changes in a batch past which its memory is handed back to the OS once it is answered:
/// glibc keeps what a million-record import freed (the seed, the changes, the staging), and
/// the server would go on holding three times what it serves.
const TRIM_AFTER: usize = 100_000;
