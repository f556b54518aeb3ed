//! The worker: runs provisioning jobs, a few at a time. A job is written in the same
//! transaction as the state change that asked for it; the worker marks it running, lets the
//! provisioner do the platform side, then records the outcome and moves the site on in one
//! transaction. Jobs still open at start-up, including ones a crash interrupted, run again:
//! steps must be safe to repeat.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Provisioner;
use super::ops;
use crate::certificates::Issuer;
use crate::config::Config;
use crate::domain::{Job, JobStep, Site};
use crate::metrics::Metrics;
use crate::store::Store;

/// What jobs need besides the store: the platform side, the certificate issuer, and the
/// renewal scheduler's bell (rung when a certificate is installed).
#[derive(Clone)]
pub struct Hands {
    pub provisioner: Arc<dyn Provisioner>,
    pub issuer: Arc<Issuer>,
    pub renewals: Arc<Notify>,
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
    hands: Hands,
    config: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
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
            let (store, hands, config, running, metrics) = (
                store.clone(),
                hands.clone(),
                config.clone(),
                running.clone(),
                metrics.clone(),
            );
            tasks.spawn(async move {
                let _claimed = Claimed(running, id);
                run_job(&store, &hands, &config, id, metrics.as_deref()).await;
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

/// A job's place in the set of those running; dropping it frees the place, however the
/// job's task ends, so a panicking step can be queued again.
struct Claimed(Arc<Mutex<HashSet<Uuid>>>, Uuid);

impl Drop for Claimed {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

async fn run_job(store: &Store, hands: &Hands, config: &Config, id: Uuid, metrics: Option<&Metrics>) {
    let (job, site) = match ops::start_job(store, id).await {
        Ok(Some(started)) => started,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(job = %id, error = %e, "cannot start job");
            return;
        }
    };
    tracing::info!(job = %id, step = job.step.as_str(), site = %site.domain, attempt = job.attempts, "running job");
    let outcome = match job.step {
        JobStep::Ssl | JobStep::SslRenewal => ssl_step(store, hands, &job, &site).await,
        _ => hands.provisioner.run(&job, &site).await,
    };
    match ops::finish_job(store, id, outcome, config.dns.clone(), config.zones.clone()).await {
        Ok((site, state)) => {
            tracing::info!(job = %id, site = %site.domain, status = site.status.as_str(), state = state.as_str(), "job ended");
            if let Some(m) = metrics {
                m.job_finished(job.step.as_str(), state.as_str());
            }
            if matches!(job.step, JobStep::Ssl | JobStep::SslRenewal) {
                hands.renewals.notify_one();
            }
        }
        Err(e) => {
            tracing::error!(job = %id, error = %e, "cannot record the job's outcome; it runs again at the next start")
        }
    }
}

/// An SSL step: the platform's own part (for the first issue, as every step has), then the
/// certificate (resumed where an earlier attempt stopped), then its install.
async fn ssl_step(store: &Store, hands: &Hands, job: &Job, site: &Site) -> Result<(), String> {
    let renewal = job.step == JobStep::SslRenewal;
    if !renewal {
        hands.provisioner.run(job, site).await?;
    }
    let replacing = if renewal {
        let id = site.id;
        store
            .read(move |r| r.certificate(id))
            .await
            .ok()
            .flatten()
            .and_then(|c| c.info.ari_id)
    } else {
        None
    };
    let ready = hands.issuer.obtain(site, replacing.as_deref()).await?;
    tracing::info!(site = %site.domain, serial = %ready.info.serial, not_after = %ready.info.not_after, "certificate obtained");
    hands.provisioner.install_certificate(job, site, &ready).await
}
