//! Hosted sites, the projects that hold them, and the provisioning jobs that move them. The
//! state words are the API's vocabulary (docs/hosting.md); each is a type, so every `match`
//! over them is exhaustive and the OpenAPI document lists every word.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DomainName, Timestamp};

/// A folder for a team's sites.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where a site stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SiteStatus {
    /// Its create job has not finished.
    Provisioning,
    Active,
    /// A PHP switch is running.
    Updating,
    /// Its create job failed; asking to create it again retries.
    Failed,
    /// Taken offline by an operator.
    Suspended,
}

impl SiteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Updating => "updating",
            Self::Failed => "failed",
            Self::Suspended => "suspended",
        }
    }
}

/// A site's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SslState {
    None,
    Pending,
    Active,
    Failed,
}

/// WordPress on a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WordpressState {
    NotInstalled,
    Installing,
    Installed,
    Failed,
}

/// A hosted site.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Site {
    pub id: Uuid,
    pub team_id: Uuid,
    pub domain: DomainName,
    pub project_id: Option<Uuid>,
    pub zone_id: Option<Uuid>,
    pub status: SiteStatus,
    pub php_version: String,
    pub ssl: SslState,
    /// When the installed certificate expires (read from the certificate).
    pub ssl_expires_at: Option<Timestamp>,
    /// Why the last renewal of the installed certificate failed; `None` once one succeeds.
    #[serde(default)]
    pub ssl_renewal_error: Option<String>,
    pub wordpress: WordpressState,
    pub ipv4: String,
    pub ipv6: String,
    /// The most recent provisioning job: what it did and, when it failed, why.
    pub last_job: Option<JobSummary>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a provisioning job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStep {
    Create,
    Php,
    /// Turn SSL on: obtain and install a certificate.
    Ssl,
    /// Renew the installed certificate (started by the renewal scheduler).
    SslRenewal,
    Wordpress,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Php => "php",
            Self::Ssl => "ssl",
            Self::SslRenewal => "ssl_renewal",
            Self::Wordpress => "wordpress",
        }
    }
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn ended(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// A job as a site shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct JobSummary {
    pub id: Uuid,
    pub step: JobStep,
    pub state: JobState,
    pub error: Option<String>,
}

/// A durable provisioning step, written in the same transaction as the state change that
/// asked for it and run (again, after a restart) until it ends in `done` or `failed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub team_id: Uuid,
    pub site_id: Uuid,
    pub step: JobStep,
    /// Step parameters, e.g. `{"php_version": "8.4"}`.
    pub params: serde_json::Value,
    pub state: JobState,
    pub attempts: u32,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Job {
    pub fn summary(&self) -> JobSummary {
        JobSummary {
            id: self.id,
            step: self.step,
            state: self.state,
            error: self.error.clone(),
        }
    }
}
