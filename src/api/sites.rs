//! `/v1/sites`: hosted sites and their asynchronous steps (create, PHP switch, SSL,
//! WordPress). Each step answers `202` with the site as it is now; the job moves it on.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use uuid::Uuid;

use super::extract::parse_id;
use super::idempotency::Idempotency;
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery, data, page};
use crate::domain::{DomainName, Resource, Scope};
use crate::store::{Job, Site};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sites", get(list).post(create))
        .route("/sites/{id}", get(show).patch(update))
        .route("/sites/{id}/ssl", post(ssl))
        .route("/sites/{id}/wordpress", post(wordpress))
}

/// `202 Accepted` with the site and `Location`, once its job is committed and queued.
fn accepted(st: &AppState, site: Site, job: Job) -> Response {
    st.jobs.enqueue(job.id);
    let mut r = data(StatusCode::ACCEPTED, &site);
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/sites/{}", site.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn check_php(st: &AppState, v: &str) -> Result<(), ApiError> {
    if st.config.hosting.php_versions.iter().any(|p| p == v) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_site",
            vec![(
                "php_version",
                format!(
                    "{v:?} is not offered; use one of {}",
                    st.config.hosting.php_versions.join(", ")
                ),
            )],
        ))
    }
}

#[utoipa::path(
    get,
    path = "/v1/sites",
    tag = "sites",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("project_id" = Option<Uuid>, Query),
        ("status" = Option<String>, Query),
    ),
    responses((status = 200, body = super::openapi::SiteList)),
)]
pub(super) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    q: PageQuery,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Sites))?.team.id;
    let me = caller.0.clone();
    let mut project: Option<Uuid> = None;
    let mut status: Option<String> = None;
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("project_id", v) => {
                project = Some(
                    Uuid::try_parse(v)
                        .map_err(|_| ApiError::bad_request("invalid_filter", "project_id is not a UUID"))?,
                )
            }
            ("status", v) => {
                if !["provisioning", "active", "updating", "failed", "suspended"].contains(&v) {
                    return Err(ApiError::bad_request("invalid_filter", format!("unknown status {v:?}")));
                }
                status = Some(v.to_string())
            }
            _ => {}
        }
    }
    let (after, limit) = (q.after, q.limit);
    let p = st
        .store
        .read(move |r| {
            r.sites(team, after, limit, |s| {
                me.reaches_site(s.zone_id)
                    && project.is_none_or(|p| s.project_id == Some(p))
                    && status.as_deref().is_none_or(|st| s.status == st)
            })
        })
        .await?;
    Ok(page(p.items, &q, p.next, p.total))
}

#[utoipa::path(
    get,
    path = "/v1/sites/{id}",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site")),
    responses((status = 200, body = super::openapi::SiteData)),
)]
pub(super) async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Sites))?.team.id;
    let id = parse_id(&id, "site")?;
    let site = st.store.read(move |r| r.site(team, id)).await?;
    caller.site(&site)?;
    Ok(data(StatusCode::OK, site))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateSite {
    domain: String,
    project_id: Option<Uuid>,
    php_version: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/sites",
    tag = "sites",
    params(("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateSite,
    responses((status = 202, body = super::openapi::SiteData, headers(("Location" = String)))),
)]
pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<CreateSite>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Sites))?;
    caller.unrestricted()?; // a site may make a zone
    idem.once(&st, me, create_site(&st, me.team.id, body)).await
}

async fn create_site(st: &AppState, team: Uuid, body: CreateSite) -> ApiResult<Response> {
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
    let (site, job) = st
        .store
        .write(move |tx| tx.create_site(team, domain, body.project_id, php, &hosting))
        .await?;
    Ok(accepted(st, site, job))
}

/// Absent stays `None`; `null` becomes `Some(None)`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateSite {
    php_version: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    project_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    patch,
    path = "/v1/sites/{id}",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site")),
    request_body = UpdateSite,
    responses(
        (status = 200, body = super::openapi::SiteData),
        (status = 202, body = super::openapi::SiteData),
    ),
)]
pub(super) async fn update(
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
    let result = st
        .store
        .write(move |tx| {
            // Check the whole request before writing any of it.
            let current = tx.site_of(team, id)?;
            let php = body.php_version.filter(|v| *v != current.php_version);
            if php.is_some() && current.status != "active" {
                return Err(crate::store::StoreError::conflict(
                    "site_busy",
                    format!("the site is {}; try again once it is active", current.status),
                ));
            }
            let mut site = match body.project_id {
                Some(project) => tx.move_site(team, id, project)?,
                None => current,
            };
            let mut job = None;
            if let Some(v) = php {
                let (s, j) = tx.request_step(team, id, "php", json!({ "php_version": v }))?;
                site = s;
                job = Some(j);
            }
            Ok((site, job))
        })
        .await?;
    Ok(match result {
        (site, Some(job)) => accepted(&st, site, job),
        (site, None) => data(StatusCode::OK, site),
    })
}

#[utoipa::path(
    post,
    path = "/v1/sites/{id}/ssl",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site")),
    responses((status = 202, body = super::openapi::SiteData)),
)]
pub(super) async fn ssl(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Sites))?;
    let id = parse_id(&id, "site")?;
    visible_site(&st, &caller, id).await?;
    idem.once(&st, me, step(&st, me.team.id, id, "ssl")).await
}

/// `404` unless the site is the caller's team's and inside its zone restriction. A site's
/// zone never changes, so the check holds for the write that follows.
async fn visible_site(st: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    if caller.0.zones.is_none() {
        return Ok(()); // the store's team check is enough
    }
    let team = caller.0.team.id;
    let site = st.store.read(move |r| r.site(team, id)).await?;
    caller.site(&site)
}

/// Asks for an asynchronous step on a site: `202` once its job is committed and queued.
async fn step(st: &AppState, team: Uuid, id: Uuid, step: &'static str) -> ApiResult<Response> {
    let (site, job) = st
        .store
        .write(move |tx| tx.request_step(team, id, step, json!({})))
        .await?;
    Ok(accepted(st, site, job))
}

#[utoipa::path(
    post,
    path = "/v1/sites/{id}/wordpress",
    tag = "sites",
    params(("id" = Uuid, Path, description = "The site"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = super::openapi::SiteData)),
)]
pub(super) async fn wordpress(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Wordpress))?;
    let id = parse_id(&id, "site")?;
    visible_site(&st, &caller, id).await?;
    idem.once(&st, me, step(&st, me.team.id, id, "wordpress")).await
}
