//! A site's life as pure functions: what a new site is, which steps may be asked for in which
//! state, and what a step's outcome makes of the site and its job. `ops` runs them inside
//! store transactions.

use serde_json::json;
use uuid::Uuid;

use crate::config::HostingConfig;
use crate::domain::{
    DomainName, Job, JobState, JobStep, Site, SiteStatus, SslState, Timestamp, WordpressState, new_id,
};

/// A step asked for on an existing site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Switch PHP to this version.
    Php(String),
    Ssl,
    /// Renew the installed certificate (the renewal scheduler asks).
    SslRenewal,
    Wordpress,
}

impl Request {
    pub fn step(&self) -> JobStep {
        match self {
            Self::Php(_) => JobStep::Php,
            Self::Ssl => JobStep::Ssl,
            Self::SslRenewal => JobStep::SslRenewal,
            Self::Wordpress => JobStep::Wordpress,
        }
    }

    /// The job's parameters, as the exec provisioner receives them.
    pub fn params(&self) -> serde_json::Value {
        match self {
            Self::Php(version) => json!({ "php_version": version }),
            Self::Ssl | Self::SslRenewal | Self::Wordpress => json!({}),
        }
    }
}

/// Why a step cannot be asked for now (409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub code: &'static str,
    pub message: String,
}

fn busy(code: &'static str, message: impl Into<String>) -> Busy {
    Busy {
        code,
        message: message.into(),
    }
}

/// A site as it is first stored: provisioning, nothing installed.
pub fn new_site(
    team: Uuid,
    domain: DomainName,
    project: Option<Uuid>,
    php: String,
    zone: Option<Uuid>,
    hosting: &HostingConfig,
) -> Site {
    let now = Timestamp::now();
    Site {
        id: new_id(),
        team_id: team,
        domain,
        project_id: project,
        zone_id: zone,
        status: SiteStatus::Provisioning,
        php_version: php,
        ssl: SslState::None,
        ssl_expires_at: None,
        ssl_renewal_error: None,
        wordpress: WordpressState::NotInstalled,
        ipv4: hosting.ipv4.to_string(),
        ipv6: hosting.ipv6.to_string(),
        last_job: None,
        created_at: now,
        updated_at: now,
    }
}

/// Whether asking to create an existing site means "try again": its create job failed.
pub fn may_retry_create(site: &Site) -> bool {
    site.status == SiteStatus::Failed && site.last_job.as_ref().is_some_and(|j| j.step == JobStep::Create)
}

/// A new pending job for `site`, which now shows it as its last job.
pub fn new_job(site: &mut Site, step: JobStep, params: serde_json::Value) -> Job {
    let now = Timestamp::now();
    let job = Job {
        id: new_id(),
        team_id: site.team_id,
        site_id: site.id,
        step,
        params,
        state: JobState::Pending,
        attempts: 0,
        error: None,
        created_at: now,
        updated_at: now,
    };
    site.last_job = Some(job.summary());
    job
}

/// Moves `site` into the state `request` asks for, or says why it cannot be asked now.
pub fn request(site: &mut Site, request: &Request) -> Result<(), Busy> {
    if site.status != SiteStatus::Active {
        return Err(busy(
            "site_busy",
            format!("the site is {}; try again once it is active", site.status.as_str()),
        ));
    }
    match request {
        Request::Php(_) => site.status = SiteStatus::Updating,
        Request::Ssl => match site.ssl {
            SslState::Pending => return Err(busy("ssl_pending", "a certificate is already being issued")),
            SslState::Active => return Err(busy("ssl_active", "SSL is already on for this site")),
            SslState::None | SslState::Failed => site.ssl = SslState::Pending,
        },
        Request::SslRenewal => {
            if site.ssl == SslState::Pending {
                return Err(busy("ssl_pending", "a certificate is being issued"));
            }
        }
        Request::Wordpress => match site.wordpress {
            WordpressState::Installing => return Err(busy("wordpress_installing", "WordPress is being installed")),
            WordpressState::Installed => return Err(busy("wordpress_installed", "WordPress is already installed")),
            WordpressState::NotInstalled | WordpressState::Failed => site.wordpress = WordpressState::Installing,
        },
    }
    Ok(())
}

/// A job the worker takes up: running, one more attempt.
pub fn start(job: &mut Job) {
    job.state = JobState::Running;
    job.attempts += 1;
}

/// What a step's outcome makes of its site and its job.
pub fn finish(site: &mut Site, job: &mut Job, outcome: Result<(), String>) {
    match (&outcome, job.step) {
        (Ok(()), JobStep::Create) => site.status = SiteStatus::Active,
        (Ok(()), JobStep::Php) => {
            site.status = SiteStatus::Active;
            if let Some(v) = job.params["php_version"].as_str() {
                site.php_version = v.into();
            }
        }
        (Ok(()), JobStep::Ssl | JobStep::SslRenewal) => {
            // `ssl_expires_at` is the installed certificate's, set where it is installed.
            site.ssl = SslState::Active;
            site.ssl_renewal_error = None;
        }
        (Ok(()), JobStep::Wordpress) => site.wordpress = WordpressState::Installed,
        (Err(_), JobStep::Create) => site.status = SiteStatus::Failed,
        (Err(_), JobStep::Php) => site.status = SiteStatus::Active, // still on its old version
        (Err(_), JobStep::Ssl) => site.ssl = SslState::Failed,
        (Err(why), JobStep::SslRenewal) => {
            // The certificate in place stays in use while it is valid; the site says why
            // renewing it failed.
            site.ssl_renewal_error = Some(why.clone());
            if site.ssl_expires_at.is_none_or(Timestamp::is_past) {
                site.ssl = SslState::Failed;
            }
        }
        (Err(_), JobStep::Wordpress) => site.wordpress = WordpressState::Failed,
    }
    job.state = if outcome.is_ok() {
        JobState::Done
    } else {
        JobState::Failed
    };
    job.error = outcome.err();
    if site.last_job.as_ref().is_some_and(|j| j.id == job.id) {
        site.last_job = Some(job.summary());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn active() -> Site {
        let mut s = new_site(
            Uuid::nil(),
            DomainName::parse_zone("a.test").unwrap(),
            None,
            "8.3".into(),
            None,
            &Config::defaults().hosting,
        );
        s.status = SiteStatus::Active;
        s
    }

    #[test]
    fn steps_move_an_active_site_and_refuse_a_busy_one() {
        let mut s = active();
        request(&mut s, &Request::Ssl).unwrap();
        assert_eq!(s.ssl, SslState::Pending);
        assert_eq!(request(&mut s.clone(), &Request::Ssl).unwrap_err().code, "ssl_pending");
        let mut p = active();
        request(&mut p, &Request::Php("8.4".into())).unwrap();
        assert_eq!(p.status, SiteStatus::Updating);
        assert_eq!(request(&mut p, &Request::Wordpress).unwrap_err().code, "site_busy");
    }

    #[test]
    fn outcomes_settle_site_and_job() {
        let mut s = active();
        let r = Request::Php("8.4".into());
        request(&mut s, &r).unwrap();
        let mut job = new_job(&mut s, r.step(), r.params());
        start(&mut job);
        finish(&mut s, &mut job, Ok(()));
        assert_eq!(
            (s.status, s.php_version.as_str(), job.state, job.attempts),
            (SiteStatus::Active, "8.4", JobState::Done, 1)
        );
        assert_eq!(s.last_job.as_ref().unwrap().state, JobState::Done);
        let mut c = active();
        c.status = SiteStatus::Provisioning;
        let mut job = new_job(&mut c, JobStep::Create, json!({}));
        finish(&mut c, &mut job, Err("no disk".into()));
        assert!(may_retry_create(&c));
        assert_eq!(c.last_job.unwrap().error.as_deref(), Some("no disk"));
    }
}
