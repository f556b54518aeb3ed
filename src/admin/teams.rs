//! `ipx team create|list`.

use super::{Ctx, Result};

/// Prints the new team's UUID.
pub fn create(ctx: &Ctx<'_>, name: String) -> Result<String> {
    let team = ctx
        .store
        .write_blocking_as(ctx.actor(), move |tx| tx.create_team(&name))?;
    Ok(format!("{}\n", team.id))
}

/// UUID, name and creation time, one team a line.
pub fn list(ctx: &Ctx<'_>) -> Result<String> {
    let teams = ctx.store.read_blocking(|r| r.teams())?;
    Ok(teams
        .iter()
        .map(|t| format!("{}\t{}\t{}\n", t.id, t.name, t.created_at))
        .collect())
}
