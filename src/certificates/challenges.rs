//! DNS-01 challenge records: managed `_acme-challenge` TXT records of the site, written and
//! removed through the store like every other change (rules, serial, journal, audit event),
//! so DNS answers them the moment the write returns and secondaries get them by NOTIFY/IXFR.

use hickory_proto::rr::RecordType;

use crate::domain::{DomainName, NewRecord, Record, ResourceKind, Site, Zone, parse_rdata, rules};
use crate::store::{Store, StoreError, WriteCtx};

/// Challenge records live one minute in caches: a CA asks once, a retry must see the next.
const TTL: u32 = 60;

/// The names a certificate for `site` covers: its domain and `www`.
pub fn identifiers(site: &Site) -> Vec<String> {
    vec![site.domain.to_string(), format!("www.{}", site.domain)]
}

/// Where DNS-01 looks for the challenge of `identifier` (RFC 8555 §8.4).
pub fn name_for(identifier: &str) -> Result<DomainName, String> {
    DomainName::parse(&format!("_acme-challenge.{identifier}"))
        .map_err(|e| format!("{identifier} is too long for a DNS-01 challenge: {e}"))
}

/// Every name a challenge record of `site` can be at.
pub fn names(site: &Site) -> Vec<DomainName> {
    identifiers(site).iter().filter_map(|i| name_for(i).ok()).collect()
}

/// Publishes `values` (challenge name, TXT value) as the site's only challenge records, in
/// one transaction. Returns the zone as it now is (its new serial).
pub async fn publish(store: &Store, site: &Site, values: Vec<(DomainName, String)>) -> Result<Zone, String> {
    let site = site.clone();
    store
        .write_as(crate::domain::Actor::system(), move |tx| {
            let zone = site_zone(tx, &site)?;
            let old = held(tx, &zone, &site)?;
            let new: Vec<NewRecord> = values
                .iter()
                .map(|(name, value)| {
                    let data = parse_rdata(RecordType::TXT, value, &zone.name)
                        .map_err(|e| StoreError::Internal(format!("challenge value: {e}")))?;
                    Ok(NewRecord {
                        name: name.clone(),
                        data,
                        ttl: TTL,
                        managed: true,
                        site_id: Some(site.id),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            check(tx, &zone, &old, &new)?;
            remove_in(tx, &zone, old)?;
            for record in new {
                tx.create_record(site.team_id, zone.id, record)?;
            }
            Ok(tx.zone(zone.id)?.unwrap_or(zone))
        })
        .await
        .map_err(|e| format!("cannot publish the DNS-01 challenge records: {e}"))
}

/// Removes the site's challenge records, if it has any.
pub async fn remove(store: &Store, site: &Site) -> Result<(), String> {
    let site = site.clone();
    store
        .write_as(crate::domain::Actor::system(), move |tx| remove_with(tx, &site))
        .await
        .map_err(|e| format!("cannot remove the DNS-01 challenge records: {e}"))
}

/// Removes the site's challenge records inside a running transaction (none when its zone
/// is gone).
pub fn remove_with(tx: &mut WriteCtx, site: &Site) -> Result<(), StoreError> {
    let zone = match site_zone(tx, site) {
        Ok(zone) => zone,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let old = held(tx, &zone, site)?;
    remove_in(tx, &zone, old)
}

fn site_zone(tx: &WriteCtx, site: &Site) -> Result<Zone, StoreError> {
    let id = site.zone_id.ok_or(StoreError::NotFound("the site's zone"))?;
    tx.team_zone(site.team_id, id)
}

/// Everything `publish` will write must be allowed before it writes anything: a write
/// refused halfway would leave its first half behind.
fn check(tx: &WriteCtx, zone: &Zone, old: &[Record], new: &[NewRecord]) -> Result<(), StoreError> {
    let growth = new.len() as i64 - old.len() as i64;
    if zone.record_count as i64 + growth > tx.caps.records_per_zone as i64 {
        return Err(StoreError::invalid(
            "too_many_records",
            "zone",
            format!("a zone holds at most {} records", tx.caps.records_per_zone),
        ));
    }
    tx.check_team_records(zone.team_id, growth, "zone")?;
    for record in new {
        let others: Vec<Record> = tx
            .records_at(zone.id, &record.name)?
            .into_iter()
            .filter(|r| !old.iter().any(|o| o.id == r.id))
            .collect();
        rules::check(&zone.name, record, &others)?;
    }
    Ok(())
}

fn held(tx: &WriteCtx, zone: &Zone, site: &Site) -> Result<Vec<Record>, StoreError> {
    let mut rows = Vec::new();
    for name in names(site) {
        rows.extend(
            tx.records_at(zone.id, &name)?
                .into_iter()
                .filter(|r| r.managed && r.site_id == Some(site.id) && r.rtype == RecordType::TXT),
        );
    }
    Ok(rows)
}

fn remove_in(tx: &mut WriteCtx, zone: &Zone, rows: Vec<Record>) -> Result<(), StoreError> {
    for row in &rows {
        tx.audit(
            zone.team_id,
            "record.deleted",
            (ResourceKind::Record, row.id),
            Some(zone.id),
            row.summary(),
        )?;
    }
    tx.remove_records(zone.clone(), rows)
}
