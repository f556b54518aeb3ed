//! The operator socket: while `ipx serve` holds the database, the CLI sends its command here
//! as one JSON line and the server answers with one `{ok, output}` line. The socket lives in
//! the data directory, mode 0600, and a peer must also run as its owner.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{AdminError, Command, Ctx, execute};
use crate::auth::Authenticator;
use crate::store::Store;

/// Largest request on the socket: a zone file travels inside it.
const MAX_REQUEST: u64 = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    output: String,
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

/// Serves commands on the socket until the task is dropped.
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
        Ok(command) => tokio::task::spawn_blocking(move || {
            execute(
                &Ctx {
                    store: &store,
                    auth: Some(&auth),
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
        Ok(output) => Reply { ok: true, output },
        Err(output) => Reply { ok: false, output },
    };
    let mut bytes = serde_json::to_vec(&reply).expect("a reply serialises");
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Sends a command to the running server (the CLI, when the database is held).
pub fn send(path: &Path, command: &Command) -> Result<String, AdminError> {
    use std::io::{BufRead, Write};
    let mut conn = std::os::unix::net::UnixStream::connect(path).map_err(|source| AdminError::Unreachable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut line = serde_json::to_vec(command).expect("a command serialises");
    line.push(b'\n');
    conn.write_all(&line).map_err(AdminError::Socket)?;
    let mut answer = String::new();
    std::io::BufReader::new(conn)
        .read_line(&mut answer)
        .map_err(AdminError::Socket)?;
    let reply: Reply = serde_json::from_str(&answer).map_err(AdminError::BadReply)?;
    if reply.ok {
        Ok(reply.output)
    } else {
        Err(AdminError::Remote(reply.output))
    }
}
