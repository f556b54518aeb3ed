//! `/v1/projects`: folders for a team's sites.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::parse_id;
use super::idempotency::Idempotency;
use super::respond::{Data, List, created, data, page_of};
use super::{ApiError, ApiResult, AppState, Caller, Json, PageQuery};
use crate::domain::{Project, Resource, Scope, Timestamp, label_text};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, rename, remove))
}

/// A project as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ProjectView {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Project> for ProjectView {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id,
            team_id: p.team_id,
            name: p.name.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProjectBody {
    name: String,
}

impl ProjectBody {
    /// The name, checked: 1 to 100 printable characters.
    fn name(self) -> ApiResult<String> {
        label_text(&self.name, 100).ok_or_else(|| {
            ApiError::invalid(
                "invalid_project",
                vec![("name", "a project name is 1 to 100 printable characters".into())],
            )
        })
    }
}

#[utoipa::path(
    get,
    path = "/projects",
    tag = "projects",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = List<ProjectView>)),
)]
async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Projects))?.team.id;
    let (after, limit) = (q.after, q.limit);
    let p = st.store.read(move |r| r.projects(team, after, limit)).await?;
    Ok(page_of(p, &q, |x| ProjectView::from(x)))
}

#[utoipa::path(
    post,
    path = "/projects",
    tag = "projects",
    request_body = ProjectBody,
    responses((status = 201, body = Data<ProjectView>)),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    Json(body): Json<ProjectBody>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Projects))?.team.id;
    caller.unrestricted()?;
    idem.once(&st, &caller, async {
        let name = body.name()?;
        let p = st
            .store
            .write_as(caller.actor(), move |tx| tx.create_project(team, name))
            .await?;
        Ok(created(format!("/v1/projects/{}", p.id), ProjectView::from(&p)))
    })
    .await
}

#[utoipa::path(
    get,
    path = "/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project")),
    responses((status = 200, body = Data<ProjectView>)),
)]
async fn show(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Projects))?.team.id;
    let id = parse_id(&id, "project")?;
    let p = st.store.read_page(|r| r.project(team, id))?;
    Ok(data(StatusCode::OK, ProjectView::from(&p)))
}

#[utoipa::path(
    patch,
    path = "/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project")),
    request_body = ProjectBody,
    responses((status = 200, body = Data<ProjectView>)),
)]
async fn rename(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ProjectBody>,
) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Projects))?.team.id;
    caller.unrestricted()?;
    let id = parse_id(&id, "project")?;
    let name = body.name()?;
    let p = st
        .store
        .write_as(caller.actor(), move |tx| tx.rename_project(team, id, name))
        .await?;
    Ok(data(StatusCode::OK, ProjectView::from(&p)))
}

#[utoipa::path(
    delete,
    path = "/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project")),
    responses((status = 204, description = "Deleted")),
)]
async fn remove(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let team = caller.require(Scope::write(Resource::Projects))?.team.id;
    caller.unrestricted()?;
    let id = parse_id(&id, "project")?;
    st.store
        .write_as(caller.actor(), move |tx| tx.delete_project(team, id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
