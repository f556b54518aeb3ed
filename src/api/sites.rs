//! `/v1/sites`: hosted sites and their asynchronous steps (create, PHP switch, SSL,
//! WordPress). Each step answers `202` with the site as it is now; the job moves it on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{filter_value, parse_id, query};
use super::idempotency::Idempotency;
use super::respond::{Data, List, data, page_of, with_location};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery};
use crate::domain::{
    DomainName, Job, JobSummary, Resource, Scope, Site, SiteStatus, SslState, Timestamp, WordpressState,
};
use crate::hosting::{Request, ops};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(ssl))
        .routes(routes!(wordpress))
}

/// A site as the API shows it (docs/hosting.md says what each state means).
#[derive(Serialize, ToSchema)]
pub struct SiteView {
    pub id: Uuid,
    pub team_id: Uuid,
    pub domain: String,
    pub project_id: Option<Uuid>,
    /// The zone its records are in, once provisioned.
    pub zone_id: Option<Uuid>,
    pub status: SiteStatus,
    pub php_version: String,
    pub ssl: SslState,
    /// When the installed certificate expires (`GET /v1/sites/{id}/certificate` has it all).
    pub ssl_expires_at: Option<Timestamp>,
    /// Why renewing the installed certificate failed, while it still serves; null once a
    /// renewal succeeds.
    pub ssl_renewal_error: Option<String>,
    pub wordpress: WordpressState,
    pub ipv4: String,
    pub ipv6: String,
    /// The most recent provisioning job: what it did and, when it failed, why.
    pub last_job: Option<JobSummary>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Site> for SiteView {
    fn from(s: &Site) -> Self {
        Self {
            id: s.id,
            team_id: s.team_id,
            domain: s.domain.to_string(),
            project_id: s.project_id,
            zone_id: s.zone_id,
            status: s.status,
            php_version: s.php_version.clone(),
            ssl: s.ssl,
            ssl_expires_at: s.ssl_expires_at,
            ssl_renewal_error: s.ssl_renewal_error.clone(),
            wordpress: s.wordpress,
            ipv4: s.ipv4.clone(),
            ipv6: s.ipv6.clone(),
            last_job: s.last_job.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// `202 Accepted` with the site and `Location`, once its job is committed and queued.
fn accepted(st: &AppState, site: &Site, job: &Job) -> Response {
    st.jobs.enqueue(job.id);
    with_location(
        data(StatusCode::ACCEPTED, SiteView::from(site)),
        &format!("/v1/sites/{}", site.id),
    )
}

fn check_php(st: &AppState, v: &str) -> Result<(), ApiError> {
    if st.config.hosting.php_versions.iter().any(|p| p == v) {
        return Ok(());
    }
    let message = format!(
        "{v:?} is not offered; use one of {}",
        st.config.hosting.php_versions.join(", ")
    );
    Err(ApiError::invalid("invalid_site", vec![("php_version", message)]))
}

/// `404` unless the site is the caller's team's and inside its zone restriction. A site's
/// zone never changes, so the check holds for the write that follows.
async fn visible_site(st: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    if caller.zones.is_none() {
        return Ok(()); // the store's team check is enough
    }
    let team = caller.team.id;
    let site = st.store.read_page(|r| r.site(team, id))?;
    caller.site(&site)
}

/// `?project_id=&status=` of the site list.
#[derive(Deserialize)]
struct SiteFilter {
    #[serde(default, deserialize_with = "project_id")]
    project_id: Option<Uuid>,
    #[serde(default, deserialize_with = "status")]
    status: Option<SiteStatus>,
}

fn project_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    filter_value(d, |_| "project_id is not a UUID".into())
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SiteStatus>, D::Error> {
    filter_value(d, |v| format!("unknown status {v:?}"))
}

#[utoipa::path(
    get,
    path = "/sites",
    tag = "sites",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("project_id" = Option<Uuid>, Query),
        ("status" = Option<SiteStatus>, Query),
    ),
    responses((status = 200, body = List<SiteView>)),
)]
async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery, uri: axum::http::Uri) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Sites))?.team.id;
    let filter: SiteFilter = query(&uri)?; // after the scope: a bad filter is no way past a 403
    let me = caller.principal.clone();
    let (after, limit) = (q.after, q.limit);
    let p = st
        .store
        .read(move |r| {
            r.sites(team, after, limit, |s| {
                me.reaches_site(s.zone_id)
                    && filter.project_id.is_none_or(|p| s.project_id == Some(p))
                    && filter.status.is_none_or(|st| s.status == st)
            })
        })
        .await?;
    Ok(page_of(p, &q, |x| SiteView::from(x)))
}

#[utoipa::path(
    get,
    path = "/sites/{id}",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site")),
    responses((status = 200, body = Data<SiteView>)),
)]
async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Sites))?.team.id;
    let id = parse_id(&id, "site")?;
    let site = st.store.read_page(|r| r.site(team, id))?;
    caller.site(&site)?;
    Ok(data(StatusCode::OK, SiteView::from(&site)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateSite {
    domain: String,
    project_id: Option<Uuid>,
    php_version: Option<String>,
}

#[utoipa::path(
    post,
    path = "/sites",
    tag = "sites",
    params(("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateSite,
    responses((status = 202, body = Data<SiteView>, headers(("Location" = String)))),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateSite>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Sites))?;
    caller.unrestricted()?; // a site may make a zone
    idem.once(&st, &caller, create_site(&st, &caller, body)).await
}

async fn create_site(st: &AppState, caller: &Caller, body: CreateSite) -> ApiResult<Response> {
    let domain =
        DomainName::parse_zone(&body.domain).map_err(|e| ApiError::invalid("invalid_site", vec![("domain", e.0)]))?;
    st.reserved
        .check(&domain)
        .map_err(|e| ApiError::invalid("reserved_name", vec![("domain", e)]))?;
    let php = body
        .php_version
        .unwrap_or_else(|| st.config.hosting.default_php.clone());
    check_php(st, &php)?;
    let hosting = st.config.hosting.clone();
    let (site, job) = ops::create_site(
        &st.store,
        caller.actor(),
        caller.team.id,
        domain,
        body.project_id,
        php,
        hosting,
    )
    .await?;
    Ok(accepted(st, &site, &job))
}

/// Absent stays `None`; `null` becomes `Some(None)`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateSite {
    php_version: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    project_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    patch,
    path = "/sites/{id}",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site")),
    request_body = UpdateSite,
    responses((status = 200, body = Data<SiteView>), (status = 202, body = Data<SiteView>)),
)]
async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<UpdateSite>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Sites))?.team.id;
    let id = parse_id(&id, "site")?;
    visible_site(&st, &caller, id).await?;
    if let Some(v) = &body.php_version {
        check_php(&st, v)?;
    }
    Ok(
        match ops::update_site(&st.store, caller.actor(), team, id, body.php_version, body.project_id).await? {
            (site, Some(job)) => accepted(&st, &site, &job),
            (site, None) => data(StatusCode::OK, SiteView::from(&site)),
        },
    )
}

/// Asks for an asynchronous step on a site: `202` once its job is committed and queued.
async fn step(st: &AppState, caller: &Caller, id: Uuid, request: Request) -> ApiResult<Response> {
    let (site, job) = ops::request(&st.store, caller.actor(), caller.team.id, id, request).await?;
    Ok(accepted(st, &site, &job))
}

#[utoipa::path(
    post,
    path = "/sites/{id}/ssl",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Data<SiteView>)),
)]
async fn ssl(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Sites))?;
    let id = parse_id(&id, "site")?;
    visible_site(&st, &caller, id).await?;
    idem.once(&st, &caller, step(&st, &caller, id, Request::Ssl)).await
}

#[utoipa::path(
    post,
    path = "/sites/{id}/wordpress",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Data<SiteView>)),
)]
async fn wordpress(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Wordpress))?;
    let id = parse_id(&id, "site")?;
    visible_site(&st, &caller, id).await?;
    idem.once(&st, &caller, step(&st, &caller, id, Request::Wordpress))
        .await
}
