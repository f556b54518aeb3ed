//! `ipx tsig create|list|revoke`: a team's TSIG keys, made and checked as the API makes them
//! (`KeyRule::parse`, `KeySpec::mint`); one rule per zone given, each with the same names,
//! subtrees and types.

use super::{AdminError, Ctx, Result, TsigCreate};
use crate::domain::{DomainName, KeyRule, KeySpec, TsigKey, Zone, key_label};

/// A team's zone by name or UUID.
fn zone_of(ctx: &Ctx<'_>, team: uuid::Uuid, zone: &str) -> Result<Zone> {
    let found = ctx.store.read_blocking(|r| match uuid::Uuid::try_parse(zone) {
        Ok(id) => r.zone(id),
        Err(_) => match DomainName::parse(zone) {
            Ok(name) => r.zone_by_name(&name),
            Err(_) => Ok(None),
        },
    })?;
    found
        .filter(|z| z.team_id == team)
        .ok_or_else(|| AdminError::NoZone(zone.to_string()))
}

/// Prints what was made, and the secret alone on the last line, once.
pub fn create(ctx: &Ctx<'_>, args: &TsigCreate) -> Result<String> {
    let team = ctx.team(&args.team)?;
    let label = key_label(&args.name).map_err(AdminError::Invalid)?;
    let algorithm = args.algorithm.parse().map_err(AdminError::Invalid)?;
    let mut rules = Vec::new();
    let mut zone_names = Vec::new();
    for zone in &args.zones {
        let zone = zone_of(ctx, team.id, zone)?;
        let rule = KeyRule::parse(zone.id, &zone.name, &args.names, &args.subtrees, &args.types).map_err(|errors| {
            let said: Vec<String> = errors.iter().map(|(field, m)| format!("{field}: {m}")).collect();
            AdminError::Invalid(said.join("; "))
        })?;
        rules.push(rule);
        zone_names.push(zone.name.to_string());
    }
    if rules.is_empty() {
        return Err(AdminError::Invalid("name at least one --zone".into()));
    }
    let spec = KeySpec {
        label,
        algorithm,
        rules,
        transfer: args.transfer,
    };
    let (key, secret) = spec.mint(team.id, None, &*ctx.sealer()?);
    let row = key.clone();
    ctx.store
        .write_blocking_as(ctx.actor(), move |tx| tx.create_tsig_key(&row))?;
    Ok(format!(
        "tsig key {} {} {} for team {} in {}{}\n{}\n",
        key.id,
        key.name,
        key.algorithm,
        team.name,
        zone_names.join(", "),
        if key.transfer { ", may transfer" } else { "" },
        secret.as_str()
    ))
}

/// Id, DNS name, algorithm, zones, transfer and creation time, one key a line; never a
/// secret.
pub fn list(ctx: &Ctx<'_>, team: &str) -> Result<String> {
    let team = ctx.team(team)?;
    let (keys, zones) = ctx.store.read_blocking(|r| {
        let keys = r.tsig_keys(team.id)?;
        let mut zones = std::collections::HashMap::new();
        for z in keys.iter().flat_map(TsigKey::zones) {
            if let Some(zone) = r.zone(z)? {
                zones.insert(z, zone.name.to_string());
            }
        }
        Ok((keys, zones))
    })?;
    Ok(keys
        .iter()
        .map(|k| {
            let names: Vec<&str> = k
                .zones()
                .iter()
                .filter_map(|z| zones.get(z).map(String::as_str))
                .collect();
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                k.id,
                k.name,
                k.algorithm,
                names.join(","),
                if k.transfer { "transfer" } else { "-" },
                k.created_at
            )
        })
        .collect())
}

/// Revokes a key (by UUID or DNS name) at once: the next message signed with it is refused.
pub fn revoke(ctx: &Ctx<'_>, key: &str) -> Result<String> {
    let found = ctx.store.read_blocking(|r| match uuid::Uuid::try_parse(key) {
        Ok(id) => r.tsig_key(id),
        Err(_) => r.tsig_key_named(key),
    })?;
    let id = found
        .ok_or_else(|| AdminError::Invalid(format!("no TSIG key {key:?}")))?
        .id;
    let key = ctx
        .store
        .write_blocking_as(ctx.actor(), move |tx| tx.revoke_tsig_key(id))?;
    Ok(format!("revoked {} {}\n", key.id, key.name))
}
