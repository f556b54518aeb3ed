//! `ipx zone dnssec enable|disable|show|rollover|ds-seen ZONE`: an operator's hand on any
//! zone's signing, through the same store writes as the API.

use super::{AdminError, Ctx, Result};
use crate::dnssec::keys::{dnskey_text, ds_text};
use crate::dnssec::records::{dnskey, ds};
use crate::domain::{DomainName, Zone};

/// A zone by name or UUID, whoever's it is.
fn zone_of(ctx: &Ctx<'_>, zone: &str) -> Result<Zone> {
    let found = ctx.store.read_blocking(|r| match uuid::Uuid::try_parse(zone) {
        Ok(id) => r.zone(id),
        Err(_) => match DomainName::parse(zone) {
            Ok(name) => r.zone_by_name(&name),
            Err(_) => Ok(None),
        },
    })?;
    found.ok_or_else(|| AdminError::NoZone(zone.to_string()))
}

pub fn enable(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let zone = zone_of(ctx, zone)?;
    let config = ctx.dnssec;
    let enable = crate::store::Enable {
        key: crate::dnssec::new_key(config.algorithm, zone.id, &*ctx.sealer()?),
        denial: config.denial,
        dnskey_ttl: config.dnskey_ttl,
    };
    let (team, id) = (zone.team_id, zone.id);
    ctx.store
        .write_blocking_as(ctx.actor(), move |tx| tx.enable_dnssec(team, id, None, enable))?;
    show(ctx, &id.to_string())
}

/// Starts turning signing off (CDS/CDNSKEY DELETE); with `ds_gone` the operator confirms the
/// parent holds no DS any more, and the zone is served unsigned once caches forget it
/// (`[dnssec] parent_ds_ttl_secs` later; the server's background schedule does it).
pub fn disable(ctx: &Ctx<'_>, zone: &str, ds_gone: bool) -> Result<String> {
    let zone = zone_of(ctx, zone)?;
    let (team, id, ttl) = (zone.team_id, zone.id, ctx.dnssec.dnskey_ttl);
    let waits = crate::dnssec::waits(ctx.dnssec, 0);
    ctx.store.write_blocking_as(ctx.actor(), move |tx| {
        tx.disable_dnssec(team, id, None, waits, ttl)?;
        if ds_gone {
            tx.dnssec_ds_seen(team, id, waits, ttl)?;
        }
        Ok(())
    })?;
    show(ctx, &id.to_string())
}

pub fn rollover(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let zone = zone_of(ctx, zone)?;
    let key = crate::dnssec::new_key(ctx.dnssec.algorithm, zone.id, &*ctx.sealer()?);
    let (team, id, ttl) = (zone.team_id, zone.id, ctx.dnssec.dnskey_ttl);
    let waits = crate::dnssec::waits(ctx.dnssec, 0);
    ctx.store
        .write_blocking_as(ctx.actor(), move |tx| tx.start_rollover(team, id, key, waits, ttl))?;
    show(ctx, &id.to_string())
}

pub fn ds_seen(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let zone = zone_of(ctx, zone)?;
    let max = ctx.store.read_blocking(|r| r.max_ttl(&zone))?;
    let (team, id, ttl) = (zone.team_id, zone.id, ctx.dnssec.dnskey_ttl);
    let waits = crate::dnssec::waits(ctx.dnssec, max);
    ctx.store
        .write_blocking_as(ctx.actor(), move |tx| tx.dnssec_ds_seen(team, id, waits, ttl))?;
    show(ctx, &id.to_string())
}

/// The zone's signing state, its keys as DNSKEY and the DS records its parent needs.
pub fn show(ctx: &Ctx<'_>, zone: &str) -> Result<String> {
    let zone = zone_of(ctx, zone)?;
    let keys = ctx.store.read_blocking(|r| r.dnssec_keys(zone.id))?;
    let Some(d) = &zone.dnssec else {
        return Ok(format!("{}\tstate unsigned\n", zone.name));
    };
    let mut out = format!("{}\tstate {}\tdenial {:?}\n", zone.name, d.state.as_str(), d.denial).to_lowercase();
    let apex = zone.name.to_wire();
    for k in &keys {
        out += &format!(
            "key {}\talgorithm {}\t{}\tcreated {}\n",
            k.tag,
            k.algorithm,
            k.state.as_str(),
            k.created_at
        );
        out += &format!("  {}. IN DNSKEY {}\n", zone.name, dnskey_text(&dnskey(k)));
        for d in ds(&apex, k) {
            out += &format!("  {}. IN DS {}\n", zone.name, ds_text(&d));
        }
    }
    if let Some(r) = &d.rollover {
        let next = r.next_step_at.map_or("ds-seen".to_string(), |t| t.to_string());
        out += &format!("rollover {}\tnext step {next}\n", r.phase.as_str());
    }
    if let Some(at) = d.unsign_at {
        out += &format!("the parent's DS is gone: served unsigned from {at}\n");
    }
    Ok(out)
}
