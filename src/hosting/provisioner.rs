//! The platform side of a provisioning step, behind a trait: the builtin provisioner (ipx
//! does the DNS itself, in `ops::finish_job`) and `exec` (an operator's command per step, the
//! job as JSON on stdin: docs/hosting.md).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, ProvisionerKind};
use crate::domain::{Job, Site};

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
        let (status, out, err) = tokio::time::timeout(self.timeout, work).await.map_err(|_| {
            format!(
                "the {} step timed out after {} s",
                job.step.as_str(),
                self.timeout.as_secs()
            )
        })?;
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
            .unwrap_or_else(|| format!("the {} step failed ({status})", job.step.as_str()));
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
