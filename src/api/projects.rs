//! `/v1/projects`: folders for a team's sites.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::extract::parse_id;
use super::idempotency::Idempotency;
use super::{ApiResult, AppState, Caller, Json, PageQuery, created, data, page};
use crate::domain::{Resource, Scope};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{id}", get(show).patch(rename).delete(remove))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectBody {
    name: String,
}

#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = super::openapi::ProjectList)),
)]
pub(super) async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Projects))?.team.id;
    let (after, limit) = (q.after, q.limit);
    let p = st.store.read(move |r| r.projects(team, after, limit)).await?;
    Ok(page(p.items, &q, p.next, p.total))
}

#[utoipa::path(
    post,
    path = "/v1/projects",
    tag = "projects",
    request_body = ProjectBody,
    responses((status = 201, body = super::openapi::ProjectData)),
)]
pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<ProjectBody>,
) -> ApiResult<Response> {
    let me = caller.require(Scope::write(Resource::Projects))?;
    caller.unrestricted()?;
    let team = me.team.id;
    idem.once(&st, me, async {
        let p = st.store.write(move |tx| tx.create_project(team, &body.name)).await?;
        Ok(created(format!("/v1/projects/{}", p.id), p))
    })
    .await
}

#[utoipa::path(
    get,
    path = "/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project")),
    responses((status = 200, body = super::openapi::ProjectData)),
)]
pub(super) async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Projects))?.team.id;
    let id = parse_id(&id, "project")?;
    Ok(data(StatusCode::OK, st.store.read(move |r| r.project(team, id)).await?))
}

#[utoipa::path(
    patch,
    path = "/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project")),
    request_body = ProjectBody,
    responses((status = 200, body = super::openapi::ProjectData)),
)]
pub(super) async fn rename(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ProjectBody>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Projects))?.team.id;
    caller.unrestricted()?;
    let id = parse_id(&id, "project")?;
    Ok(data(
        StatusCode::OK,
        st.store
            .write(move |tx| tx.rename_project(team, id, &body.name))
            .await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project")),
    responses((status = 204, description = "Deleted")),
)]
pub(super) async fn remove(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Projects))?.team.id;
    caller.unrestricted()?;
    let id = parse_id(&id, "project")?;
    st.store.write(move |tx| tx.delete_project(team, id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
