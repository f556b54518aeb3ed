//! The operator socket: while `ipx serve` holds the database, the CLI sends its command here
//! as one JSON line and the server answers with one `{ok, output}` line. The socket lives in
//! the data directory, mode 0600, and a peer must also run as its owner.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{
    AdminError, Command, Ctx, DnssecCmd, Sealing, SiteCmd, TeamCmd, TokenCmd, TsigCmd, TsigCreate, ZoneCmd, execute,
};
use crate::auth::Authenticator;
use crate::config::DnssecConfig;
use crate::dns::secondaries::Secondaries;
use crate::seal::Sealer;
use crate::store::Store;

/// Largest request on the socket: a zone file travels inside it.
const MAX_REQUEST: u64 = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    output: String,
    /// A backup's size: that many bytes of the file follow the reply's line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

/// A command as the socket carries it. The form is frozen: while a new binary is installed
/// under a running server, its CLI and the old server (or the reverse) still understand
/// each other. Only what the server needs travels (a zone file's text, not its path).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum Wire {
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
    TsigCreate {
        team: String,
        name: String,
        zones: Vec<String>,
        names: Vec<String>,
        subtrees: Vec<String>,
        types: Vec<String>,
        transfer: bool,
        algorithm: String,
    },
    TsigList {
        team: String,
    },
    TsigRevoke {
        key: String,
    },
    ZoneImport {
        team: String,
        text: String,
    },
    ZoneExport {
        zone: String,
    },
    ZoneDelete {
        zone: String,
    },
    ZoneSecondaries {
        zone: String,
    },
    ZoneDnssec {
        action: String,
        zone: String,
        #[serde(default)]
        ds_gone: bool,
    },
    SiteList {
        team: String,
    },
    SiteDelete {
        id: String,
    },
    /// A backup of the whole store, streamed after the reply (`fetch_backup`).
    Backup,
}

impl Wire {
    fn from_command(command: &Command) -> Result<Self, AdminError> {
        Ok(match command.clone() {
            Command::Team(TeamCmd::Create { name }) => Self::TeamCreate { name },
            Command::Team(TeamCmd::List) => Self::TeamList,
            Command::Token(TokenCmd::Create { team, name, scopes }) => Self::TokenCreate { team, name, scopes },
            Command::Token(TokenCmd::List { team }) => Self::TokenList { team },
            Command::Token(TokenCmd::Revoke { token_id }) => Self::TokenRevoke { id: token_id },
            Command::Tsig(TsigCmd::Create(a)) => Self::TsigCreate {
                team: a.team,
                name: a.name,
                zones: a.zones,
                names: a.names,
                subtrees: a.subtrees,
                types: a.types,
                transfer: a.transfer,
                algorithm: a.algorithm,
            },
            Command::Tsig(TsigCmd::List { team }) => Self::TsigList { team },
            Command::Tsig(TsigCmd::Revoke { key }) => Self::TsigRevoke { key },
            Command::Zone(ZoneCmd::Import { team, text, .. }) => {
                let text = text.ok_or_else(|| AdminError::Invalid("the zone file was not read".into()))?;
                Self::ZoneImport { team, text }
            }
            Command::Zone(ZoneCmd::Export { zone }) => Self::ZoneExport { zone },
            Command::Zone(ZoneCmd::Delete { zone }) => Self::ZoneDelete { zone },
            Command::Zone(ZoneCmd::Secondaries { zone }) => Self::ZoneSecondaries { zone },
            Command::Zone(ZoneCmd::Dnssec(cmd)) => {
                let (action, zone, ds_gone) = match cmd {
                    DnssecCmd::Enable { zone } => ("enable", zone, false),
                    DnssecCmd::Disable { zone, ds_gone } => ("disable", zone, ds_gone),
                    DnssecCmd::Show { zone } => ("show", zone, false),
                    DnssecCmd::Rollover { zone } => ("rollover", zone, false),
                    DnssecCmd::DsSeen { zone } => ("ds_seen", zone, false),
                };
                Self::ZoneDnssec {
                    action: action.into(),
                    zone,
                    ds_gone,
                }
            }
            Command::Site(SiteCmd::List { team }) => Self::SiteList { team },
            Command::Site(SiteCmd::Delete { site_id }) => Self::SiteDelete { id: site_id },
        })
    }

    /// The command; `None` for a backup, which is no command but a stream (`serve_backup`).
    fn into_command(self) -> Option<Command> {
        Some(match self {
            Self::TeamCreate { name } => Command::Team(TeamCmd::Create { name }),
            Self::TeamList => Command::Team(TeamCmd::List),
            Self::TokenCreate { team, name, scopes } => Command::Token(TokenCmd::Create { team, name, scopes }),
            Self::TokenList { team } => Command::Token(TokenCmd::List { team }),
            Self::TokenRevoke { id } => Command::Token(TokenCmd::Revoke { token_id: id }),
            Self::TsigCreate {
                team,
                name,
                zones,
                names,
                subtrees,
                types,
                transfer,
                algorithm,
            } => Command::Tsig(TsigCmd::Create(TsigCreate {
                team,
                name,
                zones,
                names,
                subtrees,
                types,
                transfer,
                algorithm,
            })),
            Self::TsigList { team } => Command::Tsig(TsigCmd::List { team }),
            Self::TsigRevoke { key } => Command::Tsig(TsigCmd::Revoke { key }),
            Self::ZoneImport { team, text } => Command::Zone(ZoneCmd::Import {
                file: std::path::PathBuf::new(),
                team,
                text: Some(text),
            }),
            Self::ZoneExport { zone } => Command::Zone(ZoneCmd::Export { zone }),
            Self::ZoneDelete { zone } => Command::Zone(ZoneCmd::Delete { zone }),
            Self::ZoneSecondaries { zone } => Command::Zone(ZoneCmd::Secondaries { zone }),
            Self::ZoneDnssec { action, zone, ds_gone } => Command::Zone(ZoneCmd::Dnssec(match action.as_str() {
                "enable" => DnssecCmd::Enable { zone },
                "disable" => DnssecCmd::Disable { zone, ds_gone },
                "rollover" => DnssecCmd::Rollover { zone },
                "ds_seen" => DnssecCmd::DsSeen { zone },
                _ => DnssecCmd::Show { zone },
            })),
            Self::SiteList { team } => Command::Site(SiteCmd::List { team }),
            Self::SiteDelete { id } => Command::Site(SiteCmd::Delete { site_id: id }),
            Self::Backup => return None,
        })
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

/// What the running server lends the commands it runs.
#[derive(Clone)]
pub struct Server {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub sealer: Arc<Sealer>,
    pub secondaries: Option<Arc<Secondaries>>,
    /// What new keys and signed zones get (`[dnssec]`).
    pub dnssec: Arc<DnssecConfig>,
}

/// Serves commands on the socket until the task is dropped.
pub fn serve(listener: UnixListener, server: Server) -> std::io::Result<tokio::task::JoinHandle<()>> {
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
            let server = server.clone();
            tokio::spawn(async move {
                if let Err(e) = serve_one(conn, server).await {
                    tracing::warn!(error = %e, "operator socket request failed");
                }
            });
        }
    }))
}

async fn serve_one(conn: UnixStream, server: Server) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST)).read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Wire>(&line).map(Wire::into_command) {
        Ok(None) => return serve_backup(server.store, write).await,
        Ok(Some(command)) => tokio::task::spawn_blocking(move || {
            execute(
                &Ctx {
                    store: &server.store,
                    auth: Some(&server.auth),
                    sealer: Sealing::Unlocked(server.sealer.clone()),
                    secondaries: server.secondaries.as_deref(),
                    served: true,
                    dnssec: &server.dnssec,
                },
                command,
            )
            .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("command failed: {e}"))),
        Err(e) => Err(format!("bad request: {e}")),
    };
    let reply = match reply {
        Ok(output) => Reply {
            ok: true,
            output,
            bytes: None,
        },
        Err(output) => Reply {
            ok: false,
            output,
            bytes: None,
        },
    };
    write_reply(&mut write, &reply).await
}

async fn write_reply(write: &mut (impl AsyncWriteExt + Unpin), reply: &Reply) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(reply).expect("a reply serialises");
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Makes a backup (a copy of every table from one read transaction: writes go on meanwhile)
/// and streams it after the reply's line.
async fn serve_backup(store: Store, mut write: impl AsyncWriteExt + Unpin) -> std::io::Result<()> {
    let made = tokio::task::spawn_blocking(move || store.backup_to_temp())
        .await
        .unwrap_or_else(|e| Err(crate::store::StoreError::Internal(format!("backup failed: {e}"))));
    let (file, contents) = match made {
        Ok(made) => made,
        Err(e) => {
            tracing::error!(error = %e, "backup failed");
            let reply = Reply {
                ok: false,
                output: e.to_string(),
                bytes: None,
            };
            return write_reply(&mut write, &reply).await;
        }
    };
    tracing::info!(
        bytes = contents.bytes,
        zones = contents.zones,
        records = contents.records,
        "backup made for the operator"
    );
    let reply = Reply {
        ok: true,
        output: String::new(),
        bytes: Some(contents.bytes),
    };
    write_reply(&mut write, &reply).await?;
    let mut file = tokio::fs::File::from_std(file);
    tokio::io::copy(&mut (&mut file).take(contents.bytes), &mut write).await?;
    write.flush().await
}

/// Sends a command to the running server (the CLI, when the database is held).
pub fn send(path: &Path, command: &Command) -> Result<String, AdminError> {
    let (reply, _) = request(path, &Wire::from_command(command)?)?;
    Ok(reply.output)
}

/// Asks the running server for a backup and writes it into `out`; returns its size.
pub fn fetch_backup(path: &Path, out: &mut impl std::io::Write) -> Result<u64, AdminError> {
    use std::io::Read;
    let (reply, mut conn) = request(path, &Wire::Backup)?;
    let expected = reply
        .bytes
        .ok_or_else(|| AdminError::Remote("the server sent no backup".into()))?;
    let got = std::io::copy(&mut (&mut conn).take(expected), out).map_err(AdminError::Socket)?;
    if got != expected {
        return Err(AdminError::Remote(format!(
            "the backup stopped after {got} of {expected} bytes (did the server stop?)"
        )));
    }
    Ok(got)
}

/// Sends one request and reads the reply's line; the connection is left at what follows it.
fn request(
    path: &Path,
    wire: &Wire,
) -> Result<(Reply, std::io::BufReader<std::os::unix::net::UnixStream>), AdminError> {
    use std::io::{BufRead, Write};
    let mut conn = std::os::unix::net::UnixStream::connect(path).map_err(|source| AdminError::Unreachable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut line = serde_json::to_vec(wire).expect("a command serialises");
    line.push(b'\n');
    conn.write_all(&line).map_err(AdminError::Socket)?;
    let mut conn = std::io::BufReader::new(conn);
    let mut answer = String::new();
    conn.read_line(&mut answer).map_err(AdminError::Socket)?;
    let reply: Reply = serde_json::from_str(&answer).map_err(AdminError::BadReply)?;
    if reply.ok {
        Ok((reply, conn))
    } else {
        Err(AdminError::Remote(reply.output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form an older CLI or server speaks, byte for byte.
    #[test]
    fn the_wire_form_is_the_one_older_binaries_speak() {
        let revoke = Command::Token(TokenCmd::Revoke { token_id: "t".into() });
        let import = Command::Zone(ZoneCmd::Import {
            file: "/operator/only.zone".into(),
            team: "acme".into(),
            text: Some("$ORIGIN a.test.\n".into()),
        });
        let wire = |c: &Command| serde_json::to_string(&Wire::from_command(c).unwrap()).unwrap();
        assert_eq!(wire(&revoke), r#"{"command":"token_revoke","id":"t"}"#);
        assert_eq!(
            wire(&import),
            r#"{"command":"zone_import","team":"acme","text":"$ORIGIN a.test.\n"}"#
        );
        assert_eq!(wire(&Command::Team(TeamCmd::List)), r#"{"command":"team_list"}"#);
        assert_eq!(serde_json::to_string(&Wire::Backup).unwrap(), r#"{"command":"backup"}"#);
        let old = r#"{"command":"site_delete","id":"s"}"#;
        let back = serde_json::from_str::<Wire>(old).unwrap().into_command().unwrap();
        assert!(matches!(back, Command::Site(SiteCmd::Delete { site_id }) if site_id == "s"));
        let unread = Command::Zone(ZoneCmd::Import {
            file: "f".into(),
            team: "acme".into(),
            text: None,
        });
        assert!(Wire::from_command(&unread).is_err());
    }
}
