//! The ACME side of an issuance (RFC 8555, with instant-acme): the account (made once, its
//! key sealed), the order for the site's domain and `www`, DNS-01 answered from our own
//! zones, finalize with a fresh key, download, and the CA's renewal window (RFC 9773) when it
//! offers one. The order's URL and the key are saved before the steps that need them, so a
//! restart resumes the order rather than placing another.

use std::borrow::Cow;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeStatus, ChallengeType, Error,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, Order, OrderStatus, Problem, RetryPolicy,
};
use zeroize::Zeroizing;

use super::issuer::Issuer;
use super::{challenges, propagation, x509};
use crate::domain::{AcmeAccount, Actor, DomainName, Issuance, Obtained, Site, Timestamp, Window, account_context};

/// Longest reason kept from a CA's problem document.
const MAX_REASON: usize = 600;

impl Issuer {
    /// Places (or resumes) the order for `site` and sees it through to a downloaded chain,
    /// which is saved in `issuance`; the challenge records are gone when it returns.
    pub(super) async fn order(
        &self,
        site: &Site,
        issuance: &mut Issuance,
        replacing: Option<&str>,
        limit: Duration,
    ) -> Result<(), String> {
        let account = self.account().await?;
        let names = challenges::identifiers(site);
        let mut order = self.place(&account, issuance, &names, replacing).await?;
        let policy = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(limit);
        let outcome = async {
            loop {
                match order.state().status {
                    OrderStatus::Pending => {
                        self.answer(site, &mut order).await?;
                        match order.poll_ready(&policy).await {
                            Ok(_) => {}
                            Err(e) => return Err(refusal(&mut order, e).await),
                        }
                    }
                    OrderStatus::Ready => {
                        let key = self.key(issuance).await?;
                        let csr = key.csr(&names)?;
                        order.finalize_csr(&csr).await.map_err(|e| self.says(e))?;
                    }
                    OrderStatus::Processing | OrderStatus::Valid => {
                        let chain = order.poll_certificate(&policy).await.map_err(|e| self.says(e))?;
                        let key = self.key(issuance).await?;
                        let (parsed, info) = x509::read_chain(&chain)?;
                        x509::check_leaf(&parsed, &info, key.public_raw(), &names)?;
                        let window = self.window(&account, info.ari_id.as_deref()).await;
                        return Ok(Obtained {
                            info,
                            chain_pem: chain,
                            window,
                        });
                    }
                    OrderStatus::Invalid => return Err(refusal(&mut order, Error::Str("the order is invalid")).await),
                }
            }
        }
        .await;
        match outcome {
            Ok(obtained) => {
                // The chain is kept and the challenge records removed in one write.
                issuance.obtained = Some(obtained);
                let (issuance, site) = (issuance.clone(), site.clone());
                self.store
                    .write_as(Actor::system(), move |tx| {
                        challenges::remove_with(tx, &site)?;
                        tx.put_issuance(&issuance)
                    })
                    .await
                    .map_err(|e| format!("cannot record the certificate: {e}"))
            }
            Err(why) => {
                let _ = challenges::remove(&self.store, site).await;
                Err(why)
            }
        }
    }

    /// The issuance's order at the CA: the one it placed before, or a new one (saved at once).
    async fn place(
        &self,
        account: &Account,
        issuance: &mut Issuance,
        names: &[String],
        replacing: Option<&str>,
    ) -> Result<Order, String> {
        if let Some(url) = &issuance.order_url {
            match account.order(url.clone()).await {
                Ok(order) => return Ok(order),
                Err(e) => tracing::info!(order = %url, error = %e, "the earlier order is gone; placing a new one"),
            }
        }
        let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let plain = NewOrder::new(&identifiers);
        let order = match replacing.and_then(ari_identifier) {
            // RFC 9773 §5: say which certificate this one replaces. A CA that does not know
            // ARI, or refuses the claim (say, it saw the certificate replaced already), gets
            // a plain order: a renewal is never held up by the hint.
            Some(old) => match account.new_order(&NewOrder::new(&identifiers).replaces(old)).await {
                Ok(order) => Ok(order),
                Err(e) => {
                    tracing::info!(error = %e, "the CA did not take the order as a replacement; placing a plain one");
                    account.new_order(&plain).await
                }
            },
            None => account.new_order(&plain).await,
        }
        .map_err(|e| self.says(e))?;
        issuance.order_url = Some(order.url().to_string());
        self.save(issuance.clone()).await?;
        Ok(order)
    }

    /// Publishes the DNS-01 answers of the order's pending authorizations, waits for the
    /// secondaries to serve them, then tells the CA to validate.
    async fn answer(&self, site: &Site, order: &mut Order) -> Result<(), String> {
        let mut values: Vec<(DomainName, String)> = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| self.says(e))?;
            let identifier = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => return Err(format!("the CA's authorization for {identifier} is {other:?}")),
            }
            let challenge = authz
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| format!("the CA offers no dns-01 challenge for {identifier}"))?;
            values.push((
                challenges::name_for(&identifier)?,
                challenge.key_authorization().dns_value(),
            ));
        }
        if values.is_empty() {
            return Ok(());
        }
        let zone = challenges::publish(&self.store, site, values).await?;
        if !self.secondaries.is_empty() {
            let limit = Duration::from_secs(self.config.propagation_timeout_secs);
            propagation::wait(&self.secondaries, zone.name.as_str(), zone.serial, limit).await?;
        }
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| self.says(e))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut challenge) = authz.challenge(ChallengeType::Dns01)
                && challenge.status == ChallengeStatus::Pending
            {
                challenge.set_ready().await.map_err(|e| self.says(e))?;
            }
        }
        Ok(())
    }

    /// The account at the configured CA: loaded from the store, or made there (once) and
    /// stored sealed.
    pub(super) async fn account(&self) -> Result<Account, String> {
        let mut held = self.account.lock().await;
        if let Some(account) = &*held {
            return Ok(account.clone());
        }
        let http = self.http()?;
        let directory = self.config.directory.clone();
        let context = account_context(&directory);
        let stored = {
            let directory = directory.clone();
            self.store
                .read(move |r| r.acme_account(&directory))
                .await
                .map_err(|e| e.to_string())?
        };
        let builder = Account::builder_with_http(Box::new(http));
        let account = match stored {
            Some(row) => {
                let opened = self
                    .sealer
                    .open(&context, &row.credentials)
                    .map_err(|e| e.to_string())?;
                let credentials: AccountCredentials =
                    serde_json::from_slice(opened.expose()).map_err(|_| "the stored ACME account does not parse")?;
                builder.from_credentials(credentials).await.map_err(|e| self.says(e))?
            }
            None => {
                let contact = self.config.contact_uris();
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let eab = self
                    .config
                    .eab_key()
                    .map(|(kid, key)| ExternalAccountKey::new(kid, &key));
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, credentials) = builder
                    .create(&new, directory.clone(), eab.as_ref())
                    .await
                    .map_err(|e| self.says(e))?;
                let json = Zeroizing::new(serde_json::to_vec(&credentials).map_err(|e| e.to_string())?);
                let row = AcmeAccount {
                    directory: directory.clone(),
                    credentials: self.sealer.seal(&context, &json),
                    created_at: Timestamp::now(),
                };
                self.store
                    .write_as(Actor::system(), move |tx| tx.put_acme_account(&row))
                    .await
                    .map_err(|e| format!("cannot store the ACME account: {e}"))?;
                tracing::info!(%directory, account = account.id(), "created the ACME account");
                account
            }
        };
        *held = Some(account.clone());
        Ok(account)
    }

    /// The CA's suggested renewal window for a certificate, when it offers one (RFC 9773).
    async fn window(&self, account: &Account, ari_id: Option<&str>) -> Option<Window> {
        let id = ari_identifier(ari_id?)?;
        match account.renewal_info(&id).await {
            Ok((info, _)) => Some(Window {
                start: from_offset(info.suggested_window.start),
                end: from_offset(info.suggested_window.end),
            }),
            Err(Error::Unsupported(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the CA's renewal window; renewing at two thirds of the lifetime");
                None
            }
        }
    }

    /// A client error in words for the user: the CA's problem, or why it could not be asked.
    fn says(&self, e: Error) -> String {
        match e {
            Error::Api(problem) => describe(&problem),
            Error::Timeout(_) => "the CA did not finish the order in time".into(),
            other => clip(&format!(
                "cannot reach the ACME CA at {}: {other}",
                self.config.directory
            )),
        }
    }
}

/// Why the CA refused: the order's problem, or else that of a challenge that failed.
async fn refusal(order: &mut Order, e: Error) -> String {
    if let Error::Api(problem) = &e {
        return describe(problem);
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if authz.refresh().await.is_err() {
            continue;
        }
        if let Some(problem) = authz.challenges.iter().find_map(|c| c.error.as_ref()) {
            return describe(problem);
        }
    }
    match e {
        Error::Timeout(_) => "the CA did not validate the challenges in time".into(),
        other => clip(&format!("the CA refused the order: {other}")),
    }
}

/// A problem document as `last_job.error` keeps it: its detail and type, and those of its
/// subproblems (RFC 8555 §6.7).
fn describe(problem: &Problem) -> String {
    let one = |kind: Option<&str>, detail: Option<&str>| {
        let detail = detail.unwrap_or("no detail given");
        match kind {
            Some(kind) => format!("{detail} ({kind})"),
            None => detail.to_string(),
        }
    };
    let mut text = format!(
        "the CA refused: {}",
        one(problem.r#type.as_deref(), problem.detail.as_deref())
    );
    for sub in &problem.subproblems {
        let on = match &sub.identifier {
            Some(Identifier::Dns(name)) => format!("{name}: "),
            _ => String::new(),
        };
        text.push_str(&format!("; {on}{}", one(sub.r#type.as_deref(), sub.detail.as_deref())));
    }
    clip(&text)
}

/// One line, at most `MAX_REASON` bytes: what a CA or a network error says is shown as is.
fn clip(text: &str) -> String {
    let mut line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

/// An RFC 9773 certificate identifier (`AKI.serial`, both base64url) for instant-acme.
fn ari_identifier(id: &str) -> Option<CertificateIdentifier<'static>> {
    let (aki, serial) = id.split_once('.')?;
    Some(CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.to_string()),
        serial: Cow::Owned(serial.to_string()),
    })
}

fn from_offset(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::from_unix_millis((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_keeps_its_type_detail_and_subproblems_on_one_line() {
        let problem: Problem = serde_json::from_value(serde_json::json!({
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": "Error creating new order\n:: policy forbids",
            "subproblems": [{
                "type": "urn:ietf:params:acme:error:caa",
                "detail": "CAA record forbids issuance",
                "identifier": {"type": "dns", "value": "www.shop.test"}
            }]
        }))
        .unwrap();
        assert_eq!(
            describe(&problem),
            "the CA refused: Error creating new order :: policy forbids (urn:ietf:params:acme:error:rejectedIdentifier); \
             www.shop.test: CAA record forbids issuance (urn:ietf:params:acme:error:caa)"
        );
        let long: Problem = serde_json::from_value(serde_json::json!({ "detail": "é".repeat(1000) })).unwrap();
        assert!(describe(&long).len() <= MAX_REASON);
    }

    #[test]
    fn an_ari_identifier_is_its_two_halves() {
        let id = ari_identifier("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert!(ari_identifier("no-dot").is_none());
    }
}
