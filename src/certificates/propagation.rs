//! Waiting for the secondaries: the CA may ask any of the zone's nameservers, so before it is
//! told to validate, every secondary in `[dns] also_notify` must serve the serial that holds
//! the challenge records (they get it by NOTIFY and IXFR).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Pause between two SOA queries to one secondary.
const POLL: Duration = Duration::from_millis(200);
/// Time one SOA query gets for its answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Waits until every one of `secondaries` serves `zone` at `serial` or a later one (RFC 1982).
pub async fn wait(secondaries: &[SocketAddr], zone: &str, serial: u32, timeout: Duration) -> Result<(), String> {
    let name = Name::from_ascii(format!("{zone}.")).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    for &secondary in secondaries {
        let mut seen = None;
        loop {
            match soa_serial(secondary, &name).await {
                Some(s) if serial_ge(s, serial) => break,
                other => seen = other.or(seen),
            }
            if Instant::now() + POLL > deadline {
                let t = timeout.as_secs();
                let state = match seen {
                    Some(s) => format!("still serves serial {s} of {zone} after {t} s"),
                    None => format!("did not answer for {zone} within {t} s"),
                };
                return Err(format!(
                    "the secondary {secondary} {state}; the challenge records are in serial {serial}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// `a` is `b` or after it in serial number arithmetic (RFC 1982).
fn serial_ge(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) < 1 << 31
}

/// The serial `server` answers for `zone`'s SOA, authoritatively; `None` when it does not.
async fn soa_serial(server: SocketAddr, zone: &Name) -> Option<u32> {
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().ok()?;
    let socket = UdpSocket::bind(bind).await.ok()?;
    socket.connect(server).await.ok()?;
    let mut id = [0u8; 2];
    getrandom::fill(&mut id).ok()?;
    let id = u16::from_ne_bytes(id);
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(zone.clone(), RecordType::SOA));
    socket.send(&query.to_vec().ok()?).await.ok()?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + QUERY_TIMEOUT;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        if !reply.metadata.authoritative {
            return None;
        }
        return reply.answers.iter().find_map(|r| match &r.data {
            RData::SOA(soa) if &r.name == zone => Some(soa.serial),
            _ => None,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::serial_ge;

    #[test]
    fn serials_compare_across_the_wrap() {
        assert!(serial_ge(5, 5));
        assert!(serial_ge(6, 5));
        assert!(!serial_ge(4, 5));
        assert!(serial_ge(2, u32::MAX - 1), "after the wrap");
        assert!(!serial_ge(u32::MAX - 1, 2));
    }
}
