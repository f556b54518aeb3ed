//! NOTIFY (RFC 1996) to the configured secondaries after every committed change.
//!
//! One task per (zone, secondary) at most: a change while a NOTIFY is unanswered marks the
//! pair dirty, and the task sends again with the newest serial once the first is answered.
//! Unanswered NOTIFYs are retried with backoff (RFC 1996 §3.6), six times over about a
//! minute; a secondary that missed them all catches up at its next SOA refresh.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, RecordType};
use tokio::net::UdpSocket;
use uuid::Uuid;

use super::Zones;
use super::secondaries::Secondaries;
use crate::metrics::Metrics;

const ATTEMPTS: u32 = 6;
const FIRST_WAIT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// `changed` runs on the store's writer thread, outside the runtime.
    runtime: tokio::runtime::Handle,
    zones: Arc<Zones>,
    targets: Vec<SocketAddr>,
    /// (zone, target) → dirty: a task is running for the pair; `true` once it must resend.
    running: Mutex<HashMap<(Uuid, SocketAddr), bool>>,
    metrics: Option<Arc<Metrics>>,
    /// Which secondaries still lack a change.
    secondaries: Arc<Secondaries>,
}

impl Notifier {
    /// Must be called inside the tokio runtime.
    pub fn new(zones: Arc<Zones>, targets: Vec<SocketAddr>, metrics: Option<Arc<Metrics>>) -> Self {
        let runtime = tokio::runtime::Handle::current();
        Self {
            inner: Arc::new(Inner {
                runtime,
                zones,
                running: Mutex::default(),
                metrics,
                secondaries: Arc::new(Secondaries::new(&targets)),
                targets,
            }),
        }
    }

    /// Who is behind on what: the handler reports transfers to it, the metrics read it.
    pub fn secondaries(&self) -> Arc<Secondaries> {
        self.inner.secondaries.clone()
    }

    /// A zone is gone.
    pub fn removed(&self, zone: Uuid) {
        self.inner.secondaries.removed(zone);
    }

    /// Tells every secondary that `zone` changed, now at `serial`.
    pub fn changed(&self, zone: Uuid, serial: u32) {
        self.inner.secondaries.changed(zone, serial);
        for &target in &self.inner.targets {
            let mut running = self.inner.running.lock().expect("notify state");
            if let Some(dirty) = running.get_mut(&(zone, target)) {
                *dirty = true;
                continue;
            }
            running.insert((zone, target), false);
            drop(running);
            let inner = self.inner.clone();
            self.inner.runtime.spawn(async move { inner.run(zone, target).await });
        }
    }
}

impl Inner {
    async fn run(&self, zone: Uuid, target: SocketAddr) {
        loop {
            let Some(snap) = self.zones.load().by_id(zone).cloned() else {
                break;
            };
            let acked = send_until_acked(&snap.origin, snap.soa_record(), target).await;
            if !acked {
                tracing::warn!(zone = %snap.origin, %target, "NOTIFY unanswered; the secondary will catch up at its refresh");
            }
            if let Some(m) = &self.metrics {
                m.notify_sent(if acked { "acknowledged" } else { "unanswered" });
            }
            let mut running = self.running.lock().expect("notify state");
            match running.get_mut(&(zone, target)) {
                Some(dirty) if *dirty => *dirty = false,
                _ => {
                    running.remove(&(zone, target));
                    return;
                }
            }
        }
        self.running.lock().expect("notify state").remove(&(zone, target));
    }
}

async fn send_until_acked(
    origin: &hickory_proto::rr::Name,
    soa: hickory_proto::rr::Record,
    target: SocketAddr,
) -> bool {
    let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .expect("literal");
    let Ok(socket) = UdpSocket::bind(bind).await else {
        return false;
    };
    if socket.connect(target).await.is_err() {
        return false;
    }
    let mut wait = FIRST_WAIT;
    for _ in 0..ATTEMPTS {
        let id: u16 = rand_id();
        let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
        m.metadata.authoritative = true;
        let mut q = Query::query(origin.clone(), RecordType::SOA);
        q.set_query_class(DNSClass::IN);
        m.add_query(q);
        m.answers.push(soa.clone());
        let Ok(bytes) = m.to_vec() else { return false };
        let _ = socket.send(&bytes).await;
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            if let Ok(reply) = Message::from_vec(&buf[..n])
                && reply.metadata.id == id
                && reply.metadata.message_type == MessageType::Response
                && reply.metadata.op_code == OpCode::Notify
            {
                return true;
            }
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    false
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_ne_bytes(b)
}
