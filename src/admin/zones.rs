//! `ipx zone import|export|delete`.

use super::{AdminError, Ctx, Result};
use crate::domain::{DomainName, Zone};
use crate::zonefile;

/// Imports a master file as a new zone of `team`; prints its id, name, size and serial.
pub fn import(ctx: &Ctx<'_>, team: &str, text: &str) -> Result<String> {
    let team = ctx.team(team)?;
    let seed = zonefile::parse(text, None).map_err(AdminError::Invalid)?;
    let count = seed.records.len() + 1;
    let zone = ctx
        .store
        .write_blocking_as(ctx.actor(), move |tx| tx.create_zone(team.id, seed))?;
    Ok(format!(
        "{}\t{}\t{count} records\tserial {}\n",
        zone.id, zone.name, zone.serial
    ))
}

/// A zone by name or UUID.
fn find(r: &crate::store::Reader, zone: &str) -> crate::store::Result<Option<Zone>> {
    match uuid::Uuid::try_parse(zone) {
        Ok(id) => r.zone(id),
        Err(_) => match DomainName::parse(zone) {
            Ok(name) => r.zone_by_name(&name),
            Err(_) => Ok(None),
        },
    }
}

/// Irreversible: the zone (by name or UUID), its records, journal and catalog membership go
/// in one transaction; DNS stops answering for it when the command returns.
pub fn delete(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let id = ctx
        .store
        .read_blocking(|r| find(r, zone))?
        .ok_or_else(|| AdminError::NoZone(zone.to_string()))?
        .id;
    let gone = ctx
        .store
        .write_blocking_as(ctx.actor(), move |tx| tx.delete_zone(id))
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => AdminError::NoZone(id.to_string()),
            e => e.into(),
        })?;
    Ok(format!(
        "deleted zone {} ({}) and its {} records\n",
        gone.id,
        gone.name,
        gone.record_count + 1
    ))
}

/// What each secondary serves of a zone (by name or UUID): address, the serial it was seen
/// serving, and whether it lacks the zone's own. Only the running server knows.
pub fn secondaries(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    if !ctx.served {
        return Err(AdminError::Invalid(
            "no server runs: what the secondaries serve is known to a running server only".into(),
        ));
    }
    let zone = ctx
        .store
        .read_blocking(|r| find(r, zone))?
        .ok_or_else(|| AdminError::NoZone(zone.to_string()))?;
    let Some(secondaries) = ctx.secondaries else {
        return Ok(format!(
            "{}\tserial {}\tno secondaries ([dns] also_notify is empty)\n",
            zone.name, zone.serial
        ));
    };
    let mut out = format!("{}\tserial {}\n", zone.name, zone.serial);
    for s in secondaries.zone(zone.id) {
        let serial = s.serial.map_or("unknown".to_string(), |n| n.to_string());
        let state = match s.behind_for {
            Some(d) => format!("behind for {} s", d.as_secs()),
            None if s.serial.is_some_and(|n| !crate::dns::xfr::serial_gt(zone.serial, n)) => "current".to_string(),
            None => "not confirmed".to_string(),
        };
        out += &format!("{}\tserves {serial}\t{state}\n", s.addr);
    }
    Ok(out)
}

/// A zone (by name or UUID) as an RFC 1035 master file.
pub fn export(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let found = ctx.store.read_blocking(|r| {
        let Some(z) = find(r, zone)? else { return Ok(None) };
        let mut rows = Vec::new();
        r.each_record(z.id, |rec| {
            rows.push(rec);
            Ok(())
        })?;
        Ok(Some((z, rows)))
    })?;
    let (zone, records) = found.ok_or_else(|| AdminError::NoZone(zone.to_string()))?;
    Ok(zonefile::export(&zone, &records))
}
