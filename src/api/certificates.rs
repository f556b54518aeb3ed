//! `/v1/sites/{id}/certificate`: the certificate installed on a site, read from the
//! certificate itself, and when it is renewed. Never its private key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::parse_id;
use super::respond::{Data, data};
use super::{ApiError, ApiResult, AppState, Caller};
use crate::domain::{Certificate, KeyType, RenewalState, Resource, Scope, Timestamp};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

/// A site's certificate (docs/hosting.md).
#[derive(Serialize, ToSchema)]
pub struct CertificateView {
    pub site_id: Uuid,
    /// The subject's distinguished name (RFC 4514); often empty: the names are in `sans`.
    pub subject: String,
    /// The DNS names it is valid for: the site's domain and `www`.
    pub sans: Vec<String>,
    /// The issuer's distinguished name (RFC 4514).
    pub issuer: String,
    /// Lowercase hex.
    pub serial: String,
    pub not_before: Timestamp,
    /// The site's `ssl_expires_at`.
    pub not_after: Timestamp,
    /// SHA-256 of the certificate (DER), lowercase hex.
    pub fingerprint_sha256: String,
    pub key_type: KeyType,
    /// The certificate first, then the intermediates it chains to.
    pub chain_pem: String,
    /// The ACME directory of the CA that issued it; `simulated` for the demo issuer, whose
    /// certificates no browser trusts.
    pub issuer_directory: String,
    pub issued_at: Timestamp,
    pub renewal: RenewalView,
}

/// When the certificate is renewed.
#[derive(Serialize, ToSchema)]
pub struct RenewalView {
    pub state: RenewalState,
    /// When the next renewal (or retry) starts.
    pub next_at: Timestamp,
    /// The CA's suggested window (ACME Renewal Information, RFC 9773), when it offers one.
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    /// Attempts failed in a row.
    pub failures: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl From<&Certificate> for CertificateView {
    fn from(c: &Certificate) -> Self {
        let r = &c.renewal;
        Self {
            site_id: c.site_id,
            subject: c.info.subject.clone(),
            sans: c.info.sans.clone(),
            issuer: c.info.issuer.clone(),
            serial: c.info.serial.clone(),
            not_before: c.info.not_before,
            not_after: c.info.not_after,
            fingerprint_sha256: c.info.fingerprint_sha256.clone(),
            key_type: c.key_type,
            chain_pem: c.chain_pem.clone(),
            issuer_directory: c.issuer_directory.clone(),
            issued_at: c.issued_at,
            renewal: RenewalView {
                state: r.state,
                next_at: r.next_at,
                window_start: r.window.map(|w| w.start),
                window_end: r.window.map(|w| w.end),
                failures: r.failures,
                last_error: r.last_error.clone(),
            },
        }
    }
}

#[utoipa::path(
    get,
    path = "/sites/{id}/certificate",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site")),
    responses(
        (status = 200, body = Data<CertificateView>),
        (status = 404, description = "No such site, or `no_certificate`: the site has none yet"),
    ),
)]
async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Sites))?.team.id;
    let id = parse_id(&id, "site")?;
    let (site, cert) = st
        .store
        .read(move |r| Ok((r.site(team, id)?, r.certificate(id)?)))
        .await?;
    caller.site(&site)?;
    let cert = cert.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_certificate",
            "the site has no certificate yet; POST /v1/sites/{id}/ssl asks for one",
        )
    })?;
    Ok(data(StatusCode::OK, CertificateView::from(&cert)))
}
