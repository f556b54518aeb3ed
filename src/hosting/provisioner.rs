//! The platform side of a provisioning step, behind a trait: the builtin provisioner (ipx
//! does the DNS itself, in `ops::finish_job`) and `exec` (an operator's command per step, the
//! job as JSON on stdin: docs/hosting.md). A certificate ipx obtained is handed over by
//! `install_certificate`: the one place a private key leaves ipx.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::certificates::Ready;
use crate::config::{Config, ProvisionerKind};
use crate::domain::{Job, Site, Timestamp};

/// Does the platform side of one provisioning step.
#[async_trait::async_trait]
pub trait Provisioner: Send + Sync {
    /// `Ok` when the step is done; `Err(reason)` when it failed (the API shows the reason).
    async fn run(&self, job: &Job, site: &Site) -> Result<(), String>;

    /// Puts a certificate (and its key) in place for `site`, after each issue and renewal.
    async fn install_certificate(&self, job: &Job, site: &Site, certificate: &Ready) -> Result<(), String>;
}

/// The default: ipx does the DNS side itself (in `finish_job`); nothing else to do.
pub struct Builtin;

#[async_trait::async_trait]
impl Provisioner for Builtin {
    async fn run(&self, _: &Job, _: &Site) -> Result<(), String> {
        Ok(())
    }

    async fn install_certificate(&self, _: &Job, _: &Site, _: &Ready) -> Result<(), String> {
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
/// Most bytes of a command's stdout and stderr read: its message is a line.
const MAX_OUTPUT: usize = 64 * 1024;

#[async_trait::async_trait]
impl Provisioner for Exec {
    async fn run(&self, job: &Job, site: &Site) -> Result<(), String> {
        let input = serde_json::to_vec(&json!({ "step": job.step, "job": job, "site": site })).expect("job serialises");
        self.exec(job.step.as_str(), &input).await
    }

    async fn install_certificate(&self, job: &Job, site: &Site, certificate: &Ready) -> Result<(), String> {
        let info = &certificate.info;
        let input = Install {
            step: "install_certificate",
            job,
            site,
            certificate: InstallCertificate {
                chain_pem: &certificate.chain_pem,
                private_key_pem: &certificate.key_pem,
                sans: &info.sans,
                serial: &info.serial,
                not_before: info.not_before,
                not_after: info.not_after,
                fingerprint_sha256: &info.fingerprint_sha256,
            },
        };
        // Sized up front so the buffer holding the key is not reallocated (leaving copies
        // behind), and wiped when dropped.
        let mut bytes = Zeroizing::new(Vec::with_capacity(
            16 * 1024 + 2 * (certificate.chain_pem.len() + certificate.key_pem.len()),
        ));
        serde_json::to_writer(&mut *bytes, &input).expect("job serialises");
        self.exec("install_certificate", &bytes)
            .await
            .map_err(|reason| withhold_key(reason, &certificate.key_pem))
    }
}

/// What the exec provisioner reads on stdin for `install_certificate` (docs/hosting.md).
#[derive(serde::Serialize)]
struct Install<'a> {
    step: &'static str,
    job: &'a Job,
    site: &'a Site,
    certificate: InstallCertificate<'a>,
}

#[derive(serde::Serialize)]
struct InstallCertificate<'a> {
    chain_pem: &'a str,
    private_key_pem: &'a str,
    sans: &'a [String],
    serial: &'a str,
    not_before: Timestamp,
    not_after: Timestamp,
    fingerprint_sha256: &'a str,
}

impl Exec {
    /// Runs the command with `input` on stdin; `step` names it in messages.
    async fn exec(&self, step: &str, input: &[u8]) -> Result<(), String> {
        let (program, args) = self.command.split_first().ok_or("no exec_command configured")?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let mut stdin = child.stdin.take().expect("piped");
        let (mut stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        let work = async {
            let _ = stdin.write_all(input).await;
            drop(stdin);
            let (out, err) = tokio::join!(read_bounded(&mut stdout, false), read_bounded(&mut stderr, true));
            (child.wait().await, out, err)
        };
        let (status, out, err) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| format!("the {step} step timed out after {} s", self.timeout.as_secs()))?;
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
            .unwrap_or_else(|| format!("the {step} step failed ({status})"));
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

/// All a pipe gives until it closes, keeping `MAX_OUTPUT` bytes of it: the first ones, or
/// the last (`tail`).
async fn read_bounded(pipe: &mut (impl AsyncReadExt + Unpin), tail: bool) -> Vec<u8> {
    let (mut kept, mut buf) = (Vec::new(), [0u8; 8192]);
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if tail {
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * MAX_OUTPUT {
                kept.drain(..kept.len() - MAX_OUTPUT);
            }
        } else if kept.len() < MAX_OUTPUT {
            kept.extend_from_slice(&buf[..n.min(MAX_OUTPUT - kept.len())]);
        }
    }
    kept
}

/// A failure message that quotes the private key (a script that echoes its input) is not
/// kept: the reason is shown through the API and stored in the clear.
fn withhold_key(reason: String, key_pem: &str) -> String {
    const WINDOW: usize = 16;
    let quotes_key = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.is_ascii())
        .flat_map(|l| (0..l.len().saturating_sub(WINDOW - 1)).map(move |i| &l[i..i + WINDOW]))
        .any(|window| reason.contains(window));
    if quotes_key {
        "the install_certificate step failed; its message quoted the private key, so it is not shown".into()
    } else {
        reason
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
