//! `ipx zone import|export`.

use super::{AdminError, Ctx, Result};
use crate::domain::DomainName;
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

/// A zone (by name or UUID) as an RFC 1035 master file.
pub fn export(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let found = ctx.store.read_blocking(|r| {
        let z = match uuid::Uuid::try_parse(zone) {
            Ok(id) => r.zone(id)?,
            Err(_) => match DomainName::parse(zone) {
                Ok(name) => r.zone_by_name(&name)?,
                Err(_) => None,
            },
        };
        let Some(z) = z else { return Ok(None) };
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
