//! `GET /v1/events`: the team's audit log (who changed what, when, by which request).
//! An account-level view: it needs `tokens:read`; a zone-restricted token sees only the
//! changes made in its zones.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{filter_value, query};
use super::respond::{List, page_of};
use super::{ApiResult, AppState, Caller, PageQuery};
use crate::domain::{Actor, Event, Resource, ResourceKind, Scope, Timestamp};
use crate::store::EventFilter;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// One change, as the audit log shows it.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub at: Timestamp,
    /// e.g. `record.created`, `zone.created`, `site.ssl_requested`, `token.revoked`.
    pub action: String,
    pub resource_type: ResourceKind,
    pub resource_id: Uuid,
    pub actor: Actor,
    /// A short human summary (`www.example.com A 192.0.2.1`).
    pub summary: String,
    /// The zone the change was made in, when it was made in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<Uuid>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            at: e.at,
            action: e.action.clone(),
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            actor: e.actor.clone(),
            summary: e.summary.clone(),
            zone_id: e.zone_id,
        }
    }
}

/// `?resource_type=&resource_id=`.
#[derive(Deserialize)]
struct EventQuery {
    #[serde(default, deserialize_with = "resource_type")]
    resource_type: Option<ResourceKind>,
    #[serde(default, deserialize_with = "resource_id")]
    resource_id: Option<Uuid>,
}

fn resource_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ResourceKind>, D::Error> {
    filter_value(d, |_| {
        "resource_type is one of team, token, zone, record, project, site".into()
    })
}

fn resource_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    filter_value(d, |_| "resource_id is not a UUID".into())
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "account",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("resource_type" = Option<ResourceKind>, Query),
        ("resource_id" = Option<Uuid>, Query),
    ),
    responses((status = 200, body = List<EventView>)),
)]
async fn list(State(st): State<AppState>, caller: Caller, q: PageQuery, uri: axum::http::Uri) -> ApiResult<Response> {
    let team = caller.require(Scope::read(Resource::Tokens))?.team.id;
    let wanted: EventQuery = query(&uri)?; // after the scope: a bad filter is no way past a 403
    let filter = EventFilter {
        resource_type: wanted.resource_type,
        resource_id: wanted.resource_id,
        zones: caller.zones.clone(),
    };
    let (after, limit) = (q.after, q.limit);
    let p = st.store.read(move |r| r.events(team, &filter, after, limit)).await?;
    Ok(page_of(p, &q, |x| EventView::from(x)))
}
