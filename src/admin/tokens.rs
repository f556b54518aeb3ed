//! `ipx token create|list|revoke`.

use super::{AdminError, Ctx, Result, id};
use crate::auth::mint;
use crate::domain::{Scope, label_text};

fn scope_list(scopes: &[Scope]) -> String {
    scopes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Prints what was made, and the secret alone on the last line, once.
pub fn create(ctx: &Ctx<'_>, team: &str, name: &str, scopes: &[String]) -> Result<String> {
    let team = ctx.team(team)?;
    let name = label_text(name, 100)
        .ok_or_else(|| AdminError::Invalid("a token name is 1 to 100 printable characters".into()))?;
    let scopes = scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AdminError::Invalid)?;
    let (token, secret) = mint(team.id, &name, &scopes);
    let row = token.clone();
    ctx.store
        .write_blocking_as(ctx.actor(), move |tx| tx.create_token(&row))?;
    Ok(format!(
        "token {} {:?} for team {} with scopes {}\n{secret}\n",
        token.id,
        token.name,
        team.name,
        scope_list(&token.scopes)
    ))
}

/// Id, name, scopes, creation time and state, one token a line; never a secret.
pub fn list(ctx: &Ctx<'_>, team: &str) -> Result<String> {
    let team = ctx.team(team)?;
    let mut tokens = ctx.store.read_blocking(|r| r.tokens(team.id))?;
    tokens.sort_by_key(|t| t.created_at);
    Ok(tokens
        .iter()
        .map(|t| {
            format!(
                "{}\t{}\t{}\t{}\t{}\n",
                t.id,
                t.name,
                scope_list(&t.scopes),
                t.created_at,
                t.state().as_str()
            )
        })
        .collect())
}

pub fn revoke(ctx: &Ctx<'_>, token_id: &str) -> Result<String> {
    let id = id(token_id, "token")?;
    let token = ctx
        .store
        .write_blocking_as(ctx.actor(), move |tx| tx.revoke_token(id))?;
    if let Some(auth) = ctx.auth {
        auth.forget(id);
    }
    Ok(format!("revoked {}\n", token.id))
}
