//! DNS over TCP (RFC 7766) with our own accept loop: hickory-server's TCP listener has no
//! cap on connections and answers one query of a connection at a time. Here connections are
//! capped in all and per client address (one past either is closed at once), queries on one
//! connection are answered concurrently and in any order (pipelining, §6.2.1.1), and a
//! connection is closed when idle (§6.2.3), when its peer stops reading answers, and at the
//! end of its lifetime however busy it is: no client can hold a slot for ever. The messages
//! themselves go through the same `Handler` as UDP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::listener::{Caps, WriteDeadline};
use tokio::task::JoinSet;

use super::Handler;
use super::respond::Responder;

/// Queries of one connection answered at once; more wait for a slot.
const IN_FLIGHT_PER_CONNECTION: usize = 32;

/// A FORMERR for a message we cannot parse but whose header we can read.
pub(crate) fn formerr(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < 12 || raw[2] & 0x80 != 0 {
        return None; // too short to answer, or a response: never answered
    }
    let mut out = raw[..12].to_vec();
    out[2] = 0x80 | (raw[2] & 0x78); // QR, the query's opcode
    out[3] = 1; // FORMERR
    out[4..12].fill(0);
    Some(out)
}

/// What bounds the connections of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection with no query for this long is closed.
    pub idle: Duration,
    /// A connection whose answers wait this long for the peer to read them is closed.
    pub write: Duration,
    /// A connection is closed this long after it opened.
    pub lifetime: Duration,
    pub max_connections: usize,
    pub max_per_address: usize,
}

impl Limits {
    pub fn from_config(c: &crate::config::DnsConfig) -> Self {
        Self {
            idle: Duration::from_secs(c.tcp_idle_timeout_secs),
            write: Duration::from_secs(c.tcp_write_timeout_secs),
            lifetime: Duration::from_secs(c.tcp_max_connection_secs),
            max_connections: c.tcp_max_connections,
            max_per_address: c.tcp_max_connections_per_address,
        }
    }
}

/// Accepts connections until the task is dropped; dropping it closes every connection.
pub async fn serve(listener: TcpListener, handler: Handler, limits: Limits) {
    let handler = Arc::new(handler);
    let caps = Caps::new(limits.max_connections, limits.max_per_address);
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(%peer, ?why, "tcp connection refused at its cap");
                drop(stream);
                continue;
            }
        };
        let handler = handler.clone();
        connections.spawn(async move {
            if tokio::time::timeout(limits.lifetime, connection(stream, peer, handler, limits))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "tcp connection closed at the end of its lifetime");
            }
            drop(slot);
        });
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, handler: Arc<Handler>, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let idle = limits.idle;
    let (mut read, write) = stream.into_split();
    let mut write = WriteDeadline::new(write, limits.write);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(IN_FLIGHT_PER_CONNECTION);
    // Ends when the peer stops reading (write timeout) or the connection breaks.
    let writer = async move {
        while let Some(msg) = rx.recv().await {
            let len = (msg.len() as u16).to_be_bytes();
            if write.write_all(&len).await.is_err() || write.write_all(&msg).await.is_err() {
                break;
            }
        }
    };
    let reader = async move {
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION));
        let mut queries = JoinSet::new();
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(idle, read.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => break, // idle, closed, or reset
            }
            let mut raw = vec![0u8; u16::from_be_bytes(len) as usize];
            match tokio::time::timeout(idle, read.read_exact(&mut raw)).await {
                Ok(Ok(_)) => {}
                _ => break,
            }
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let (handler, tx) = (handler.clone(), tx.clone());
            while queries.try_join_next().is_some() {}
            queries.spawn(async move {
                let started = crate::metrics::dns::Stamp::now();
                match Request::from_bytes(raw.clone(), peer, Protocol::Tcp) {
                    Ok(request) => {
                        handler.handle(&request, &mut Responder::tcp(tx)).await;
                    }
                    Err(_) => {
                        let reply = formerr(&raw);
                        handler.malformed(crate::metrics::dns::Proto::Tcp, reply.is_some(), started);
                        if let Some(reply) = reply {
                            let _ = tx.send(reply).await;
                        }
                    }
                }
                drop(permit);
            });
        }
        // Let the answers to queries already read go out before closing.
        while queries.join_next().await.is_some() {}
    };
    tokio::pin!(writer);
    tokio::select! {
        // The writer gave up: the peer is gone or does not read; stop reading its queries.
        () = &mut writer => {}
        () = reader => writer.await,
    }
}

#[cfg(test)]
mod tests {
    use super::formerr;

    #[test]
    fn formerr_keeps_the_id_and_opcode_and_ignores_responses() {
        let q = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let r = formerr(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80);
        assert_eq!(r[3] & 0x0f, 1);
        assert!(formerr(&[0x12, 0x34, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(formerr(&[1, 2, 3]).is_none());
    }
}
