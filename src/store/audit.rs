//! Audit events: written in the same transaction as the change they describe, so an
//! acknowledged change always has its event.

use redb::ReadableTable;
use uuid::Uuid;

use super::read::Tables;
use super::tables::EVENTS;
use super::{Page, Reader, Result, WriteCtx};
use crate::domain::{Event, ResourceKind, Timestamp, new_id};

impl WriteCtx {
    /// Records an event for `team` (in `zone`, when the change is) in the running transaction.
    pub(crate) fn audit(
        &mut self,
        team: Uuid,
        action: &str,
        (kind, id): (ResourceKind, Uuid),
        zone: Option<Uuid>,
        summary: String,
    ) -> Result<()> {
        let event = Event {
            id: new_id(),
            at: Timestamp::now(),
            action: action.into(),
            resource_type: kind,
            resource_id: id,
            actor: self.actor.clone(),
            summary,
            zone_id: zone,
        };
        self.txn()
            .open_table(EVENTS)?
            .insert((team.as_u128(), event.id.as_u128()), &event)?;
        Ok(())
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub resource_type: Option<ResourceKind>,
    pub resource_id: Option<Uuid>,
    /// Only those made in these zones (a zone-restricted token's view).
    pub zones: Option<Vec<Uuid>>,
}

impl<T: Tables> Reader<T> {
    /// A team's events, oldest first, as `filter` says.
    pub fn events(&self, team: Uuid, filter: &EventFilter, after: Option<Uuid>, limit: usize) -> Result<Page<Event>> {
        let t = self.txn.table(EVENTS)?;
        let team = team.as_u128();
        let (mut items, mut next, mut total) = (Vec::new(), None, 0);
        for entry in t.range((team, 0)..=(team, u128::MAX))? {
            let (k, v) = entry?;
            let e = v.value();
            let outside = filter
                .zones
                .as_ref()
                .is_some_and(|z| e.zone_id.is_none_or(|id| !z.contains(&id)));
            if outside
                || filter.resource_type.is_some_and(|rt| rt != e.resource_type)
                || filter.resource_id.is_some_and(|id| id != e.resource_id)
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
