//! `POST /v1/zones/{zone_id}/records/batch`: deletes, patches and creates applied in one
//! transaction and one snapshot swap, or not at all (422 naming each failing item).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{if_match, parse_id, with_etag};
use super::idempotency::Idempotency;
use super::records::{CreateRecord, RecordView, validate};
use super::respond::{Data, data};
use super::{ApiError, ApiResult, AppState, Caller, Json};
use crate::domain::{NewRecord, Resource, Scope};
use crate::store::{Batch, BatchOutcome, MAX_BATCH_ITEMS};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(batch))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchPatch {
    id: Uuid,
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    content: Option<String>,
    ttl: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    #[serde(default)]
    deletes: Vec<Uuid>,
    #[serde(default)]
    patches: Vec<BatchPatch>,
    #[serde(default)]
    creates: Vec<CreateRecord>,
}

/// What a batch did.
#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub deleted: Vec<Uuid>,
    pub updated: Vec<RecordView>,
    pub created: Vec<RecordView>,
    /// The zone's serial after the batch.
    pub serial: u32,
}

impl From<&BatchOutcome> for BatchView {
    fn from(o: &BatchOutcome) -> Self {
        Self {
            deleted: o.deleted.clone(),
            updated: o.updated.iter().map(RecordView::from).collect(),
            created: o.created.iter().map(RecordView::from).collect(),
            serial: o.serial,
        }
    }
}

/// `POST /v1/zones/{id}/records/batch`: deletes, patches and creates applied in one
/// transaction and one snapshot swap, or not at all (422 naming each failing item).
#[utoipa::path(
    post,
    path = "/zones/{zone_id}/records/batch",
    tag = "dns",
    params(
        ("zone_id" = Uuid, Path, description = "The zone"),
        ("If-Match" = Option<String>, Header, description = "The zone ETag"),
    ),
    request_body = BatchBody,
    responses((status = 200, body = Data<BatchView>)),
)]
async fn batch(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
    idem: Idempotency,
    Json(body): Json<BatchBody>,
) -> ApiResult<Response> {
    caller.require(Scope::write(Resource::Dns))?;
    let zone_id = caller.zone(parse_id(&zone_id, "zone")?)?;
    let expected = if_match(&headers)?;
    idem.once(&st, &caller, apply(&st, &caller, zone_id, expected, body))
        .await
}

async fn apply(
    st: &AppState,
    caller: &Caller,
    zone_id: Uuid,
    expected: Option<u32>,
    body: BatchBody,
) -> ApiResult<Response> {
    let team = caller.team.id;
    let items = body.deletes.len() + body.patches.len() + body.creates.len();
    if items == 0 || items > MAX_BATCH_ITEMS {
        let message = format!("a batch holds 1 to {MAX_BATCH_ITEMS} items, not {items}");
        return Err(ApiError::invalid("invalid_batch", vec![("batch", message)]));
    }
    let ids: Vec<Uuid> = body.patches.iter().map(|p| p.id).collect();
    let (zone, olds) = st
        .store
        .read(move |r| {
            let zone = r.team_zone(team, zone_id)?;
            let olds = ids
                .iter()
                .map(|id| r.record(zone_id, *id))
                .collect::<crate::store::Result<Vec<_>>>()?;
            Ok((zone, olds))
        })
        .await?;
    // Every item's own fields first, all at once; the zone's rules are the store's to check.
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut item_errors = |item: String, e: ApiError| {
        errors.extend(
            e.fields
                .into_iter()
                .map(|(k, v)| (format!("{item}.{k}"), v.as_str().unwrap_or("").to_string())),
        );
    };
    let mut batch = Batch {
        deletes: body.deletes,
        ..Default::default()
    };
    for (i, (p, old)) in body.patches.into_iter().zip(olds).enumerate() {
        let Some(old) = old else {
            item_errors(
                format!("patches[{i}]"),
                ApiError::invalid("invalid_batch", vec![("id", "no such record in this zone".into())]),
            );
            continue;
        };
        let rtype = p.rtype.unwrap_or_else(|| old.rtype.to_string());
        let content = p.content.unwrap_or_else(|| old.content.clone());
        match validate(
            &zone.name,
            Some(p.name.as_deref().unwrap_or(old.name.as_str())),
            &rtype,
            &content,
            p.ttl,
        ) {
            Ok((name, data, ttl)) => batch.patches.push((
                p.id,
                NewRecord {
                    name: name.expect("given"),
                    data,
                    ttl: ttl.unwrap_or(old.ttl),
                    managed: false,
                    site_id: None,
                },
            )),
            Err(e) => item_errors(format!("patches[{i}]"), e),
        }
    }
    let default_ttl = st.config.zones.default_ttl;
    for (i, c) in body.creates.into_iter().enumerate() {
        match validate(&zone.name, Some(&c.name), &c.rtype, &c.content, c.ttl) {
            Ok((name, data, ttl)) => batch.creates.push(NewRecord {
                name: name.expect("given"),
                data,
                ttl: ttl.unwrap_or(default_ttl),
                managed: false,
                site_id: None,
            }),
            Err(e) => item_errors(format!("creates[{i}]"), e),
        }
    }
    if !errors.is_empty() {
        let message = format!("{} items of the batch are invalid; nothing was applied", errors.len());
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_batch", message);
        e.fields = errors.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        return Err(e);
    }
    let outcome = st
        .store
        .write_as(caller.actor(), move |tx| {
            tx.zone_serial(team, zone_id, expected)?;
            tx.apply_batch(team, zone_id, batch)
        })
        .await?;
    Ok(with_etag(
        data(StatusCode::OK, BatchView::from(&outcome)),
        outcome.serial,
    ))
}
