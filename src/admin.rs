//! Operator commands (teams, tokens, zone import), run either directly on the database or,
//! while `ipx serve` holds it (redb allows one process), by the server on the CLI's behalf
//! over a Unix socket in the data directory that only the owner can open.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::auth::{Authenticator, mint};
use crate::domain::{DomainName, Scope};
use crate::store::{Store, StoreError};
use crate::zonefile;

/// Largest request on the socket: a zone file travels inside it.
const MAX_REQUEST: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    TeamCreate {
        name: String,
    },
    TeamList,
    TokenCreate {
        team: String,
        name: String,
        scopes: Vec<String>,
    },
    TokenList {
        team: String,
    },
    TokenRevoke {
        id: String,
    },
    ZoneImport {
        team: String,
        text: String,
    },
    ZoneExport {
        zone: String,
    },
    SiteList {
        team: String,
    },
    SiteDelete {
        id: String,
    },
}

impl Command {
    /// Whether the command changes the store (and so may create a database on a new data
    /// directory); the others never create one.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Command::TeamList | Command::TokenList { .. } | Command::ZoneExport { .. } | Command::SiteList { .. }
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    output: String,
}

fn store_err(e: StoreError) -> String {
    e.to_string()
}

/// Runs a command against an open store; returns what to print on stdout. Blocking (argon2,
/// redb): call from a plain thread or the blocking pool.
pub fn execute(store: &Store, auth: Option<&Authenticator>, cmd: Command) -> Result<String, String> {
    let find_team = |name_or_id: &str| {
        store
            .read_blocking(|r| r.find_team(name_or_id))
            .map_err(store_err)?
            .ok_or_else(|| format!("no team {name_or_id:?}"))
    };
    match cmd {
        Command::TeamCreate { name } => {
            let team = store
                .write_blocking(move |tx| tx.create_team(&name))
                .map_err(store_err)?;
            Ok(format!("{}\n", team.id))
        }
        Command::TeamList => {
            let teams = store.read_blocking(|r| r.teams()).map_err(store_err)?;
            Ok(teams
                .iter()
                .map(|t| format!("{}\t{}\t{}\n", t.id, t.name, t.created_at))
                .collect())
        }
        Command::TokenCreate { team, name, scopes } => {
            let team = find_team(&team)?;
            let name = crate::domain::label_text(&name, 100).ok_or("a token name is 1 to 100 printable characters")?;
            let scopes = scopes
                .iter()
                .map(|s| s.parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()?;
            let (token, secret) = mint(team.id, &name, &scopes);
            let row = token.clone();
            store
                .write_blocking(move |tx| tx.create_token(&row))
                .map_err(store_err)?;
            Ok(format!(
                "token {} {:?} for team {} with scopes {}\n{secret}\n",
                token.id,
                token.name,
                team.name,
                token.scopes.join(",")
            ))
        }
        Command::TokenList { team } => {
            let team = find_team(&team)?;
            let mut tokens = store.read_blocking(|r| r.tokens(team.id)).map_err(store_err)?;
            tokens.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            Ok(tokens
                .iter()
                .map(|t| {
                    let expired = t.expires.is_some_and(|e| crate::domain::unix_now() >= e);
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if expired {
                        "expired"
                    } else {
                        "active"
                    };
                    format!(
                        "{}\t{}\t{}\t{}\t{state}\n",
                        t.id,
                        t.name,
                        t.scopes.join(","),
                        t.created_at
                    )
                })
                .collect())
        }
        Command::TokenRevoke { id } => {
            let id = uuid::Uuid::try_parse(&id).map_err(|_| format!("{id:?} is not a token id"))?;
            let token = store.write_blocking(move |tx| tx.revoke_token(id)).map_err(store_err)?;
            if let Some(auth) = auth {
                auth.forget(id);
            }
            Ok(format!("revoked {}\n", token.id))
        }
        Command::ZoneExport { zone } => {
            let (zone, records) = store
                .read_blocking(|r| {
                    let z = match uuid::Uuid::try_parse(&zone) {
                        Ok(id) => r.zone(id)?,
                        Err(_) => r.zone_by_name(
                            DomainName::parse(&zone)
                                .map(|n| n.to_string())
                                .unwrap_or_default()
                                .as_str(),
                        )?,
                    };
                    let Some(z) = z else { return Ok(None) };
                    let mut rows = Vec::new();
                    r.each_record(z.id, |rec| {
                        rows.push(rec);
                        Ok(())
                    })?;
                    Ok(Some((z, rows)))
                })
                .map_err(store_err)?
                .ok_or_else(|| format!("no zone {zone:?}"))?;
            Ok(zonefile::export(&zone, &records))
        }
        Command::SiteList { team } => {
            let team = find_team(&team)?;
            let page = store
                .read_blocking(|r| r.sites(team.id, None, usize::MAX, |_| true))
                .map_err(store_err)?;
            Ok(page
                .items
                .iter()
                .map(|s| {
                    format!(
                        "{}\t{}\t{}\tphp {}\tssl {}\twordpress {}\n",
                        s.id, s.domain, s.status, s.php_version, s.ssl, s.wordpress
                    )
                })
                .collect())
        }
        Command::SiteDelete { id } => {
            let id = uuid::Uuid::try_parse(&id).map_err(|_| format!("{id:?} is not a site id"))?;
            let site = store.write_blocking(move |tx| tx.delete_site(id)).map_err(store_err)?;
            Ok(format!(
                "deleted site {} ({}); its managed records are gone, its zone stays\n",
                site.id, site.domain
            ))
        }
        Command::ZoneImport { team, text } => {
            let team = find_team(&team)?;
            let seed = zonefile::parse(&text, None)?;
            let count = seed.records.len() + 1;
            let zone = store
                .write_blocking(move |tx| tx.create_zone(team.id, seed))
                .map_err(store_err)?;
            Ok(format!(
                "{}\t{}\t{count} records\tserial {}\n",
                zone.id, zone.name, zone.serial
            ))
        }
    }
}

/// Binds the operator socket at `path`, owner-only (a stale one from an earlier run is
/// replaced: the store's lock already proved no other server runs here).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves commands on the socket until the task is dropped; a peer must run as the
/// socket's owner.
pub fn serve(
    listener: UnixListener,
    store: Store,
    auth: Arc<Authenticator>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::MetadataExt;
    let path = listener
        .local_addr()?
        .as_pathname()
        .map(Path::to_path_buf)
        .ok_or_else(|| std::io::Error::other("unnamed socket"))?;
    let owner = std::fs::metadata(path)?.uid();
    Ok(tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            if conn.peer_cred().map(|c| c.uid()).ok() != Some(owner) {
                continue;
            }
            let (store, auth) = (store.clone(), auth.clone());
            tokio::spawn(async move {
                if let Err(e) = serve_one(conn, store, auth).await {
                    tracing::warn!(error = %e, "operator socket request failed");
                }
            });
        }
    }))
}

async fn serve_one(conn: UnixStream, store: Store, auth: Arc<Authenticator>) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST)).read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Command>(&line) {
        Ok(cmd) => tokio::task::spawn_blocking(move || execute(&store, Some(&auth), cmd))
            .await
            .unwrap_or_else(|e| Err(format!("command failed: {e}"))),
        Err(e) => Err(format!("bad request: {e}")),
    };
    let reply = match reply {
        Ok(output) => Reply { ok: true, output },
        Err(output) => Reply { ok: false, output },
    };
    let mut bytes = serde_json::to_vec(&reply).expect("reply serialises");
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Sends a command to the running server (the CLI, when the database is held).
pub fn send(path: &Path, cmd: &Command) -> Result<String, String> {
    use std::io::{BufRead, Write};
    let mut conn = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "the database is in use by a running server, and its socket {} cannot be reached: {e}",
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(cmd).expect("command serialises");
    line.push(b'\n');
    conn.write_all(&line).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::BufReader::new(conn)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    let reply: Reply = serde_json::from_str(&answer).map_err(|e| format!("bad reply from server: {e}"))?;
    if reply.ok { Ok(reply.output) } else { Err(reply.output) }
}
