//! Site provisioning: durable jobs (rows in redb) run by a worker through a `Provisioner`.
//!
//! A job is written in the same transaction as the state change that asked for it; the
//! worker marks it running, lets the provisioner do the platform side, then records the
//! outcome and moves the site on in one transaction (a create also gets its zone and managed
//! records there). Jobs still open at start-up, including ones a crash interrupted, run
//! again: steps must be safe to repeat.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::{Config, ProvisionerKind};
use crate::store::{Job, Site, Store};

/// Does the platform side of one provisioning step.
#[async_trait::async_trait]
pub trait Provisioner: Send + Sync {
    /// `Ok` when the step is done; `Err(reason)` when it failed (the API shows the reason).
    async fn run(&self, job: &Job, site: &Site) -> Result<(), String>;
}

/// The default: ipx does the DNS side itself (in `finish_job`); nothing else to do.
pub struct Builtin;

#[async_trait::async_trait]
impl Provisioner for Builtin {
    async fn run(&self, _: &Job, _: &Site) -> Result<(), String> {
        Ok(())
    }
}

/// Runs an operator's command for every step, with `{"step", "job", "site"}` as JSON on
/// stdin. Exit status 0 is success; otherwise the reason is the `error` field of a JSON
/// object on stdout, or the last line of stderr.
pub struct Exec {
    pub command: Vec<String>,
    pub timeout: Duration,
}

const MAX_REASON: usize = 500;

#[async_trait::async_trait]
impl Provisioner for Exec {
    async fn run(&self, job: &Job, site: &Site) -> Result<(), String> {
        let (program, args) = self.command.split_first().ok_or("no exec_command configured")?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let input = serde_json::to_vec(&json!({ "step": job.step, "job": job, "site": site })).expect("job serialises");
        let mut stdin = child.stdin.take().expect("piped");
        let (mut stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        let work = async {
            let _ = stdin.write_all(&input).await;
            drop(stdin);
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            (child.wait().await, out, err)
        };
        let (status, out, err) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| format!("the {} step timed out after {} s", job.step, self.timeout.as_secs()))?;
        let status = status.map_err(|e| e.to_string())?;
        if status.success() {
            return Ok(());
        }
        let from_json = serde_json::from_slice::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        let from_stderr = String::from_utf8_lossy(&err)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string());
        let mut reason = from_json
            .or(from_stderr)
            .unwrap_or_else(|| format!("the {} step failed ({status})", job.step));
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Err(reason)
    }
}

pub fn provisioner(config: &Config) -> Arc<dyn Provisioner> {
    match config.hosting.provisioner {
        ProvisionerKind::Builtin => Arc::new(Builtin),
        ProvisionerKind::Exec => Arc::new(Exec {
            command: config.hosting.exec_command.clone(),
            timeout: Duration::from_secs(config.hosting.exec_timeout_secs),
        }),
    }
}

/// Hands job ids to the worker. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    tx: mpsc::UnboundedSender<Uuid>,
}

impl Jobs {
    /// Queues a committed job.
    pub fn enqueue(&self, id: Uuid) {
        let _ = self.tx.send(id);
    }
}

/// Starts the worker and queues every job left open by an earlier run. When `stop` turns
/// true the worker takes no new job and lets those running finish for up to the shutdown
/// grace period; any still running then are left open in the store and run again at the
/// next start.
pub fn start(
    store: Store,
    provisioner: Arc<dyn Provisioner>,
    config: Arc<Config>,
    mut stop: watch::Receiver<bool>,
) -> (Jobs, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Uuid>();
    let jobs = Jobs { tx };
    let resume = jobs.clone();
    let limit = Arc::new(Semaphore::new(config.hosting.workers));
    let running: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let handle = tokio::spawn(async move {
        match store.read(|r| r.open_jobs()).await {
            Ok(open) => {
                if !open.is_empty() {
                    tracing::info!(jobs = open.len(), "resuming provisioning jobs");
                }
                open.into_iter().for_each(|id| resume.enqueue(id));
            }
            Err(e) => tracing::error!(error = %e, "cannot list open jobs"),
        }
        drop(resume);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let id = tokio::select! {
                id = rx.recv() => match id {
                    Some(id) => id,
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            };
            if !running.lock().expect("running set").insert(id) {
                continue; // already running: a duplicate enqueue
            }
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => permit.expect("semaphore open"),
                _ = stop.wait_for(|s| *s) => break,
            };
            let (store, provisioner, config, running) =
                (store.clone(), provisioner.clone(), config.clone(), running.clone());
            tasks.spawn(async move {
                // Released however the task ends, so a panicking step can be queued again.
                let _running = Running(running, id);
                run_job(&store, provisioner.as_ref(), &config, id).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        let grace = Duration::from_secs(config.api.shutdown_grace_secs);
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                running = tasks.len(),
                "provisioning jobs still running after the grace period; they run again at the next start"
            );
        }
    });
    (jobs, handle)
}

struct Running(Arc<Mutex<HashSet<Uuid>>>, Uuid);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

async fn run_job(store: &Store, provisioner: &dyn Provisioner, config: &Arc<Config>, id: Uuid) {
    crate::store::ACTOR
        .scope(
            crate::store::Actor::system(),
            run_job_as_system(store, provisioner, config, id),
        )
        .await
}

async fn run_job_as_system(store: &Store, provisioner: &dyn Provisioner, config: &Arc<Config>, id: Uuid) {
    let started = match store.write(move |tx| tx.start_job(id)).await {
        Ok(Some(started)) => started,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(job = %id, error = %e, "cannot start job");
            return;
        }
    };
    let (job, site) = started;
    tracing::info!(job = %id, step = %job.step, site = %site.domain, attempt = job.attempts, "running job");
    let outcome = provisioner.run(&job, &site).await;
    let c = config.clone();
    match store
        .write(move |tx| tx.finish_job(id, outcome, &c.dns, &c.zones))
        .await
    {
        Ok(site) => tracing::info!(job = %id, site = %site.domain, status = %site.status, "job ended"),
        Err(e) => {
            tracing::error!(job = %id, error = %e, "cannot record the job's outcome; it runs again at the next start")
        }
    }
}
