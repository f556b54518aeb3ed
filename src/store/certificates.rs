//! Certificates, issuances under way and ACME accounts: their rows. Keys in them are sealed
//! before they get here; what a certificate's state should be is `hosting`'s to decide.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::tables::{ACME_ACCOUNTS, CERTIFICATES, ISSUANCES};
use super::{Reader, Result, StoreError, WriteCtx};
use crate::domain::{AcmeAccount, Certificate, Issuance};

impl<T: Tables> Reader<T> {
    /// The certificate of site `id`, whichever team's (check the site first).
    pub fn certificate(&self, site: Uuid) -> Result<Option<Certificate>> {
        self.row(CERTIFICATES, site)
    }

    /// The certificate of `team`'s site `site`; another team's is "not found".
    pub fn team_certificate(&self, team: Uuid, site: Uuid) -> Result<Certificate> {
        match self.certificate(site)? {
            Some(c) if c.team_id == team => Ok(c),
            _ => Err(StoreError::NotFound("certificate")),
        }
    }

    /// Every certificate: what the renewal scheduler looks through.
    pub fn certificates(&self) -> Result<Vec<Certificate>> {
        let t = self.txn.table(CERTIFICATES)?;
        t.iter()?.map(|e| Ok(e?.1.value())).collect()
    }

    pub fn issuance(&self, site: Uuid) -> Result<Option<Issuance>> {
        self.row(ISSUANCES, site)
    }

    pub fn acme_account(&self, directory: &str) -> Result<Option<AcmeAccount>> {
        Ok(self.txn.table(ACME_ACCOUNTS)?.get(directory)?.map(|v| v.value()))
    }
}

impl WriteCtx {
    pub fn put_certificate(&mut self, cert: &Certificate) -> Result<()> {
        self.txn()
            .open_table(CERTIFICATES)?
            .insert(cert.site_id.as_u128(), cert)?;
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

    /// Forgets the certificate of `site` (its site is gone).
    pub fn remove_certificate(&mut self, site: Uuid) -> Result<()> {
        self.txn().open_table(CERTIFICATES)?.remove(site.as_u128())?;
        Ok(())
    }

    pub fn put_acme_account(&mut self, account: &AcmeAccount) -> Result<()> {
        self.txn()
            .open_table(ACME_ACCOUNTS)?
            .insert(account.directory.as_str(), account)?;
        Ok(())
    }
}
