//! Certificates, issuances under way and ACME accounts: their rows, and the two queues the
//! renewal scheduler reads (renewals by due time, expiries by date), kept with the rows so
//! the scheduler never scans every certificate. Keys in the rows are sealed before they get
//! here; what a certificate's state should be is `hosting`'s to decide.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::read::Tables;
use super::tables::{ACME_ACCOUNTS, CERTIFICATES, EXPIRY_QUEUE, ISSUANCES, RENEWAL_QUEUE};
use super::{Reader, Result, WriteCtx};
use crate::domain::{AcmeAccount, Certificate, Issuance, RenewalState, Timestamp};

/// What the scheduler learns from a queue: the sites due now (earliest first), and when the
/// next one after them is due.
pub struct Due {
    pub sites: Vec<Uuid>,
    pub next: Option<Timestamp>,
}

impl<T: Tables> Reader<T> {
    /// The certificate of site `id`, whichever team's (check the site first).
    pub fn certificate(&self, site: Uuid) -> Result<Option<Certificate>> {
        self.row(CERTIFICATES, site)
    }

    /// Certificates due for renewal at `now`, at most `limit`.
    pub fn renewals_due(&self, now: Timestamp, limit: usize) -> Result<Due> {
        self.due(RENEWAL_QUEUE, now, limit)
    }

    /// Certificates expired at `now` and not yet noticed, at most `limit`.
    pub fn expiries_due(&self, now: Timestamp, limit: usize) -> Result<Due> {
        self.due(EXPIRY_QUEUE, now, limit)
    }

    fn due(&self, queue: TableDefinition<'_, (u64, u128), ()>, now: Timestamp, limit: usize) -> Result<Due> {
        let now = millis(now);
        let mut due = Due {
            sites: Vec::new(),
            next: None,
        };
        for entry in self.txn.table(queue)?.iter()? {
            let (at, site) = entry?.0.value();
            if at > now || due.sites.len() == limit {
                due.next = Some(Timestamp::from_unix_millis(at as i64));
                break;
            }
            due.sites.push(Uuid::from_u128(site));
        }
        Ok(due)
    }

    pub fn issuance(&self, site: Uuid) -> Result<Option<Issuance>> {
        self.row(ISSUANCES, site)
    }

    pub fn acme_account(&self, directory: &str) -> Result<Option<AcmeAccount>> {
        Ok(self.txn.table(ACME_ACCOUNTS)?.get(directory)?.map(|v| v.value()))
    }
}

fn millis(t: Timestamp) -> u64 {
    t.unix_millis().max(0) as u64
}

/// Puts a certificate in the queues its state says it waits in, or takes it out.
fn queue(txn: &WriteTransaction, cert: &Certificate, present: bool) -> Result<()> {
    let site = cert.site_id.as_u128();
    let mut renewals = txn.open_table(RENEWAL_QUEUE)?;
    let mut expiries = txn.open_table(EXPIRY_QUEUE)?;
    let renewal = (millis(cert.renewal.next_at), site);
    let expiry = (millis(cert.info.not_after), site);
    if present && cert.renewal.state != RenewalState::Renewing {
        renewals.insert(renewal, ())?;
    } else {
        renewals.remove(renewal)?;
    }
    if present && !cert.lapsed {
        expiries.insert(expiry, ())?;
    } else {
        expiries.remove(expiry)?;
    }
    Ok(())
}

impl WriteCtx {
    pub fn put_certificate(&mut self, cert: &Certificate) -> Result<()> {
        if let Some(old) = self.certificate(cert.site_id)? {
            queue(self.txn(), &old, false)?;
        }
        queue(self.txn(), cert, true)?;
        self.txn()
            .open_table(CERTIFICATES)?
            .insert(cert.site_id.as_u128(), cert)?;
        Ok(())
    }

    /// Forgets the certificate of `site` (its site is gone).
    pub fn remove_certificate(&mut self, site: Uuid) -> Result<()> {
        if let Some(old) = self.certificate(site)? {
            queue(self.txn(), &old, false)?;
        }
        self.txn().open_table(CERTIFICATES)?.remove(site.as_u128())?;
        Ok(())
    }

    pub fn put_issuance(&mut self, issuance: &Issuance) -> Result<()> {
        self.txn()
            .open_table(ISSUANCES)?
            .insert(issuance.site_id.as_u128(), issuance)?;
        Ok(())
    }

    /// Forgets the issuance of `site` (done, or its site gone).
    pub fn remove_issuance(&mut self, site: Uuid) -> Result<()> {
        self.txn().open_table(ISSUANCES)?.remove(site.as_u128())?;
        Ok(())
    }

    pub fn put_acme_account(&mut self, account: &AcmeAccount) -> Result<()> {
        self.txn()
            .open_table(ACME_ACCOUNTS)?
            .insert(account.directory.as_str(), account)?;
        Ok(())
    }
}
