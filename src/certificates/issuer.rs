//! The issuer: obtains the certificate a job asks for, from the configured CA (`acme`) or,
//! for demos, by signing it itself (`simulated`). What it has done so far is kept in the
//! site's `Issuance`, so an attempt cut short (a restart, a failed install) goes on from
//! there: an order is resumed, a key is never lost, a certificate obtained is not ordered
//! twice.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use instant_acme::Account;
use zeroize::Zeroizing;

use super::http::Http;
use super::keys::Key;
use super::{challenges, schedule, x509};
use crate::config::{AcmeConfig, Config, IssuerKind};
use crate::domain::{Actor, CertificateInfo, Issuance, Obtained, Site, Timestamp, key_context};
use crate::seal::Sealer;
use crate::store::Store;

/// Days a certificate of the simulated issuer lasts, as Let's Encrypt's do.
const SIMULATED_DAYS: i64 = 90;
/// The directory a simulated certificate is recorded as coming from.
pub const SIMULATED: &str = "simulated";

/// A certificate ready to install: its chain, its key (PEM, wiped when dropped).
pub struct Ready {
    pub chain_pem: String,
    pub key_pem: Zeroizing<String>,
    pub info: CertificateInfo,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

pub struct Issuer {
    pub(super) store: Store,
    pub(super) sealer: Arc<Sealer>,
    pub(super) config: AcmeConfig,
    /// Secondaries that must serve the challenge records before the CA validates.
    pub(super) secondaries: Vec<SocketAddr>,
    http: Mutex<Option<Http>>,
    /// The account, once loaded or created: one per process, shared by every order.
    pub(super) account: tokio::sync::Mutex<Option<Account>>,
}

impl Issuer {
    /// The issuer `config` asks for. A `ca_bundle` that cannot be used is an error now,
    /// at start, rather than every SSL request's later.
    pub fn new(store: Store, sealer: Arc<Sealer>, config: &Config) -> Result<Self, String> {
        let issuer = Self {
            store,
            sealer,
            config: config.acme.clone(),
            secondaries: config.dns.also_notify.clone(),
            http: Mutex::new(None),
            account: tokio::sync::Mutex::new(None),
        };
        if issuer.config.issuer == IssuerKind::Acme && !issuer.config.ca_bundle.as_os_str().is_empty() {
            issuer.http()?;
        }
        Ok(issuer)
    }

    /// The directory certificates come from now: the CA's URL, or `simulated`.
    pub fn directory(&self) -> &str {
        match self.config.issuer {
            IssuerKind::Acme => &self.config.directory,
            IssuerKind::Simulated => SIMULATED,
        }
    }

    /// The HTTPS client, made at first use (reading the system's roots takes a moment).
    pub(super) fn http(&self) -> Result<Http, String> {
        let mut held = self.http.lock().expect("http lock");
        if let Some(http) = &*held {
            return Ok(http.clone());
        }
        let bundle = &self.config.ca_bundle;
        let http = Http::new((!bundle.as_os_str().is_empty()).then_some(bundle.as_path())).map_err(|e| {
            tracing::error!(error = %e, "cannot make the HTTPS client for the ACME CA");
            format!("ipx cannot reach its certificate authority: {e}")
        })?;
        *held = Some(http.clone());
        Ok(http)
    }

    /// Obtains the certificate for `site`, going on from where an earlier attempt stopped;
    /// `replacing` is the ARI id of the certificate a renewal replaces. `Err` is the reason
    /// the user is shown.
    pub async fn obtain(&self, site: &Site, replacing: Option<&str>) -> Result<Ready, String> {
        let mut issuance = self.resume(site).await?;
        if issuance.obtained.is_none() {
            match self.config.issuer {
                IssuerKind::Simulated => self.simulate(site, &mut issuance).await?,
                IssuerKind::Acme => {
                    let limit = Duration::from_secs(self.config.order_timeout_secs);
                    let order = self.order(site, &mut issuance, replacing, limit);
                    match tokio::time::timeout(limit, order).await {
                        Ok(result) => result?,
                        Err(_) => {
                            let _ = challenges::remove(&self.store, site).await;
                            return Err(format!(
                                "the CA did not issue the certificate within {} s (acme.order_timeout_secs)",
                                limit.as_secs()
                            ));
                        }
                    }
                }
            }
        }
        self.ready(site, &issuance)
    }

    /// The site's issuance under way, or a new one. One begun with another CA or key type
    /// (the configuration changed) starts over.
    async fn resume(&self, site: &Site) -> Result<Issuance, String> {
        let id = site.id;
        let held = self
            .store
            .read(move |r| r.issuance(id))
            .await
            .map_err(|e| e.to_string())?;
        let (directory, key_type) = (self.directory().to_string(), self.config.key_type);
        let now = Timestamp::now();
        // A certificate obtained long ago (its install failed, nobody asked again) is not
        // worth installing once it is due for renewal.
        let stale = |i: &Issuance| {
            i.obtained
                .as_ref()
                .is_some_and(|o| schedule::first_renewal(&o.info, None, 0.0, now) <= now)
        };
        match held {
            Some(i) if i.directory == directory && i.key_type == key_type && !stale(&i) => Ok(i),
            i => {
                let fresh = Issuance {
                    site_id: site.id,
                    team_id: site.team_id,
                    directory,
                    order_url: None,
                    key: None,
                    key_type,
                    obtained: None,
                    failures: i.as_ref().map_or(0, |i| i.failures),
                    retry_at: None,
                };
                self.save(fresh.clone()).await?;
                Ok(fresh)
            }
        }
    }

    pub(super) async fn save(&self, issuance: Issuance) -> Result<(), String> {
        self.store
            .write_as(Actor::system(), move |tx| tx.put_issuance(&issuance))
            .await
            .map_err(|e| format!("cannot record the issuance: {e}"))
    }

    /// The key of the issuance, made (and sealed, and saved) the first time it is needed.
    pub(super) async fn key(&self, issuance: &mut Issuance) -> Result<Key, String> {
        let context = key_context(issuance.site_id);
        if let Some(sealed) = &issuance.key {
            let pem = self.sealer.open(&context, sealed).map_err(|e| e.to_string())?;
            let pem = std::str::from_utf8(pem.expose()).map_err(|_| "the stored key is not PEM")?;
            return Key::from_pem(pem);
        }
        let key = Key::generate(issuance.key_type)?;
        issuance.key = Some(self.sealer.seal(&context, key.pem().as_bytes()));
        self.save(issuance.clone()).await?;
        Ok(key)
    }

    /// The demo issuer: a certificate signed by its own key, made on the spot.
    async fn simulate(&self, site: &Site, issuance: &mut Issuance) -> Result<(), String> {
        let key = self.key(issuance).await?;
        let names = challenges::identifiers(site);
        let chain_pem = key.self_signed(&names, SIMULATED_DAYS)?;
        let (_, info) = x509::read_chain(&chain_pem)?;
        issuance.obtained = Some(Obtained {
            info,
            chain_pem,
            window: None,
        });
        self.save(issuance.clone()).await
    }

    /// What `issuance` obtained, with its key opened.
    fn ready(&self, site: &Site, issuance: &Issuance) -> Result<Ready, String> {
        let obtained = issuance.obtained.as_ref().ok_or("no certificate was obtained")?;
        let sealed = issuance.key.as_ref().ok_or("the certificate's key is missing")?;
        let key = self
            .sealer
            .open(&key_context(site.id), sealed)
            .map_err(|e| e.to_string())?;
        let key_pem =
            Zeroizing::new(String::from_utf8(key.expose().to_vec()).map_err(|_| "the stored key is not PEM")?);
        Ok(Ready {
            chain_pem: obtained.chain_pem.clone(),
            key_pem,
            info: obtained.info.clone(),
        })
    }
}
