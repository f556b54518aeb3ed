//! Audit events: who changed what, when, through which request. Written in the same
//! transaction as the change, so an acknowledged change always has its event.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::read::decode;
use super::{Page, Reader, Result, WriteCtx, new_id};
use crate::domain::now_rfc3339;

/// (team, event) → event, in creation order.
pub(crate) const EVENTS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("events");

/// Who a write is for. The API sets it per request (task-local); the store's writer reads it
/// when the write is submitted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Actor {
    /// `token`, `operator` (the CLI) or `system` (provisioning jobs).
    pub kind: String,
    pub token_id: Option<Uuid>,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn operator() -> Actor {
        Actor {
            kind: "operator".into(),
            token_id: None,
            request_id: None,
        }
    }
    pub fn system() -> Actor {
        Actor {
            kind: "system".into(),
            token_id: None,
            request_id: None,
        }
    }
    pub fn token(token_id: Uuid, request_id: String) -> Actor {
        Actor {
            kind: "token".into(),
            token_id: Some(token_id),
            request_id: Some(request_id),
        }
    }
}

tokio::task_local! {
    /// The actor of the request being handled.
    pub static ACTOR: Actor;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub at: String,
    /// e.g. `record.created`, `zone.created`, `site.ssl_requested`, `token.revoked`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub actor: Actor,
    /// A short human summary (`www.example.com A 192.0.2.1`).
    pub summary: String,
    /// The zone the change was made in, when it was made in one: what a zone-restricted
    /// token may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<Uuid>,
}

impl WriteCtx {
    /// Records an event for `team` (in `zone`, when the change is) in the running transaction.
    pub(crate) fn audit(
        &mut self,
        team: Uuid,
        action: &str,
        resource_type: &str,
        resource_id: Uuid,
        zone: Option<Uuid>,
        summary: String,
    ) -> Result<()> {
        let event = Event {
            id: new_id(),
            at: now_rfc3339(),
            action: action.into(),
            resource_type: resource_type.into(),
            resource_id,
            actor: self.actor.clone(),
            summary,
            zone_id: zone,
        };
        self.txn.open_table(EVENTS)?.insert(
            (team.as_u128(), event.id.as_u128()),
            serde_json::to_vec(&event)?.as_slice(),
        )?;
        Ok(())
    }
}

impl Reader {
    /// A team's events, oldest first, optionally about one resource (by type, id or both),
    /// and only those made in `zones` when given.
    pub fn events(
        &self,
        team: Uuid,
        resource_type: Option<String>,
        resource_id: Option<Uuid>,
        zones: Option<&[Uuid]>,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Page<Event>> {
        let t = self.txn().open_table(EVENTS)?;
        let team = team.as_u128();
        let (mut items, mut next, mut total) = (Vec::new(), None, 0);
        for entry in t.range((team, 0)..=(team, u128::MAX))? {
            let (k, v) = entry?;
            let e: Event = decode(v.value())?;
            let outside = zones.is_some_and(|z| e.zone_id.is_none_or(|id| !z.contains(&id)));
            if outside
                || resource_type.as_deref().is_some_and(|rt| rt != e.resource_type)
                || resource_id.is_some_and(|id| id != e.resource_id)
            {
                continue;
            }
            total += 1;
            if after.is_some_and(|a| k.value().1 <= a.as_u128()) {
                continue;
            }
            if items.len() == limit {
                next = next.or(items.last().map(|e: &Event| e.id));
                continue;
            }
            items.push(e);
        }
        Ok(Page { items, next, total })
    }
}
