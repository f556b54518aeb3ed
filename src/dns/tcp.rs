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
use super::query::Transport;
use super::respond::Responder;
use super::snapshot::Key;
use super::wire::{self, Parsed};
use crate::metrics::dns::{Proto, Stamp};

/// Queries of one connection answered at once; more wait for a slot.
const IN_FLIGHT_PER_CONNECTION: usize = 32;

/// A FORMERR for a message we cannot parse but whose header we can read; its question is
/// echoed when it reads (one question, its name uncompressed), as Knot does.
pub(crate) fn formerr(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < 12 || raw[2] & 0x80 != 0 {
        return None; // too short to answer, or a response: never answered
    }
    let mut out = raw[..12].to_vec();
    out[2] = 0x80 | (raw[2] & 0x79); // QR, the query's opcode, RD
    out[3] = 1; // FORMERR
    out[4..12].fill(0);
    let question = uncompressed_name_end(raw, 12)
        .filter(|&end| end + 4 <= raw.len())
        .map(|end| &raw[12..end + 4]);
    if let (Some(q), [0, 1]) = (question, &raw[4..6]) {
        out[5] = 1;
        out.extend_from_slice(q);
    }
    Some(out)
}

/// Where the name at `at` ends when it is written out in full: labels only, no
/// compression pointer (echoed alone, a pointer would point into nothing), at most 255
/// octets.
fn uncompressed_name_end(raw: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        match *raw.get(at)? {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0 && at + 1 + usize::from(l) - start < 255 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
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

/// Bytes read from a connection at most once past what one message needs: the room for the
/// queries of a pipelining client to arrive together (and be answered with one write).
const READ_ROOM: usize = 16 * 1024;

/// One task per connection. Plain queries are answered as they are read, into one output
/// buffer written once per read (a pipelining client gets many answers per system call, and
/// nothing is allocated per query); anything else (transfers, UPDATE, NOTIFY, signed or odd
/// messages) runs as a task of its own and sends its framed answers back through a channel.
async fn connection(stream: TcpStream, peer: SocketAddr, handler: Arc<Handler>, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    let mut write = WriteDeadline::new(write, limits.write);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(IN_FLIGHT_PER_CONNECTION);
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION));
    let mut conn = Connection {
        peer,
        handler,
        tx,
        in_flight,
        slow: JoinSet::new(),
        input: Vec::with_capacity(READ_ROOM),
        output: Vec::with_capacity(4096),
        scratch: Vec::with_capacity(512),
        key: Key::default(),
    };
    let mut open = true;
    loop {
        let stalled = conn.answer_all();
        if !conn.output.is_empty() {
            if write.write_all(&conn.output).await.is_err() {
                break; // the peer is gone or does not read: stop reading its queries too
            }
            conn.output.clear();
        }
        while conn.slow.try_join_next().is_some() {}
        if !open && conn.slow.is_empty() && rx.is_empty() {
            break; // everything read is answered
        }
        let room = !stalled && conn.input.len() < usize::from(u16::MAX) + 2 + READ_ROOM;
        if room {
            conn.input.reserve(READ_ROOM);
        }
        tokio::select! {
            Some(framed) = rx.recv() => conn.output.extend_from_slice(&framed),
            Some(_) = conn.slow.join_next(), if !conn.slow.is_empty() => {}
            read = tokio::time::timeout(limits.idle, read.read_buf(&mut conn.input)), if open && room => {
                if !matches!(read, Ok(Ok(n)) if n > 0) {
                    open = false; // idle, closed, or reset: answer what was read, then close
                }
            }
        }
    }
}

/// A connection's state between reads.
struct Connection {
    peer: SocketAddr,
    handler: Arc<Handler>,
    /// Framed answers of the queries that run as tasks.
    tx: mpsc::Sender<Vec<u8>>,
    in_flight: Arc<Semaphore>,
    slow: JoinSet<()>,
    input: Vec<u8>,
    output: Vec<u8>,
    scratch: Vec<u8>,
    key: Key,
}

impl Connection {
    /// Answers every whole message in `input` and drops it from there. `true` when it
    /// stopped at a message that needs a task while `IN_FLIGHT_PER_CONNECTION` run: the
    /// caller waits for one to finish before reading more.
    fn answer_all(&mut self) -> bool {
        let mut at = 0;
        let mut stalled = false;
        while let Some(len) = self
            .input
            .get(at..at + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        {
            if self.input.len() < at + 2 + len {
                break;
            }
            let msg = &self.input[at + 2..at + 2 + len];
            match wire::parse(msg, &mut self.key) {
                Parsed::Plain(q) => {
                    let started = Stamp::now();
                    let sent = self.handler.answer_plain(&q, Transport::Tcp, 0, &mut self.scratch);
                    if sent {
                        self.output
                            .extend_from_slice(&(self.scratch.len() as u16).to_be_bytes());
                        self.output.extend_from_slice(&self.scratch);
                    }
                    let rcode = sent.then(|| self.scratch[3] & 0x0F);
                    self.handler.count(Proto::Tcp, q.qtype, rcode, started);
                }
                Parsed::Ignore => {}
                Parsed::Other => {
                    let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                        stalled = true;
                        break;
                    };
                    let raw = msg.to_vec();
                    let (handler, tx, peer) = (self.handler.clone(), self.tx.clone(), self.peer);
                    self.slow.spawn(async move {
                        let started = Stamp::now();
                        match Request::from_bytes(raw.clone(), peer, Protocol::Tcp) {
                            Ok(request) => handler.handle(&request, &mut Responder::tcp(tx)).await,
                            Err(_) => {
                                let reply = formerr(&raw);
                                handler.malformed(Proto::Tcp, reply.is_some(), started);
                                if let Some(reply) = reply {
                                    let _ = tx.send(framed(&reply)).await;
                                }
                            }
                        }
                        drop(permit);
                    });
                }
            }
            at += 2 + len;
        }
        self.input.drain(..at);
        stalled
    }
}

/// A message with its two-octet length in front (RFC 1035 §4.2.2).
pub(crate) fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

#[cfg(test)]
mod tests {
    use super::formerr;

    #[test]
    fn formerr_keeps_the_id_and_opcode_and_ignores_responses() {
        let q = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let r = formerr(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2], 0x81, "QR and RD");
        assert_eq!(r[3] & 0x0f, 1);
        assert_eq!(r.len(), 12, "a question that does not read is not echoed");
        let whole = [&q[..12], b"\x01a\x00\x00\x01\x00\x01", &[0, 0, 41]].concat();
        let r = formerr(&whole).unwrap();
        assert_eq!((&r[4..6], &r[12..]), (&[0, 1][..], &b"\x01a\x00\x00\x01\x00\x01"[..]));
        assert!(formerr(&[0x12, 0x34, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(formerr(&[1, 2, 3]).is_none());
    }

    #[test]
    fn formerr_never_echoes_a_compressed_question() {
        // Found by the fuzzer: a pointer whose low octet is 0 looked like the root label,
        // and the echoed question pointed past the end of the answer.
        let q = [
            0, 0, 0, 0x80, 0, 1, 0, 0, 0, 0xe6, 0x5b, 0xe6, 0xe6, 0, 0, 0, 2, 0, 0x80, 0, 0,
        ];
        let r = formerr(&q).unwrap();
        assert_eq!((r.len(), &r[4..6]), (12, &[0, 0][..]));
        hickory_proto::op::Message::from_vec(&r).expect("the FORMERR parses");
        let long = [
            &q[..12],
            &[63u8; 1][..],
            &[b'a'; 63],
            &[63],
            &[b'a'; 63],
            &[63],
            &[b'a'; 63],
            &[63],
            &[b'a'; 63],
            &[0, 0, 1, 0, 1],
        ]
        .concat();
        assert_eq!(
            formerr(&long).unwrap().len(),
            12,
            "a name over 255 octets is not echoed"
        );
    }
}
