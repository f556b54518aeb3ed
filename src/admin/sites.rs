//! `ipx site list|delete`.

use super::{Ctx, Result, id};
use crate::hosting::ops;

/// Id, domain, status, PHP, SSL and WordPress, one site a line.
pub fn list(ctx: &Ctx<'_>, team: &str) -> Result<String> {
    let team = ctx.team(team)?;
    let page = ctx
        .store
        .read_blocking(|r| r.sites(team.id, None, usize::MAX, |_| true))?;
    Ok(page
        .items
        .iter()
        .map(|s| {
            let (status, ssl, wp) = (s.status.as_str(), serde_plain(&s.ssl), serde_plain(&s.wordpress));
            format!(
                "{}\t{}\t{status}\tphp {}\tssl {ssl}\twordpress {wp}\n",
                s.id, s.domain, s.php_version
            )
        })
        .collect())
}

/// A state word as the API spells it.
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Irreversible: the site and its managed records go; its zone stays.
pub fn delete(ctx: &Ctx<'_>, site_id: &str) -> Result<String> {
    let id = id(site_id, "site")?;
    let site = ops::delete_site(ctx.store, ctx.actor(), id)?;
    Ok(format!(
        "deleted site {} ({}); its managed records are gone, its zone stays\n",
        site.id, site.domain
    ))
}
