//! NOTIFY (RFC 1996) to the configured secondaries after every committed change, and
//! confirming that they serve it: after a NOTIFY is answered, the secondary's SOA is asked
//! until it shows the new serial (`Secondaries` keeps what each serves).
//!
//! One task per (zone, secondary) at most: a change while one runs marks the pair dirty, and
//! the task starts again with the newest serial once the round is over. Unanswered NOTIFYs
//! are retried with backoff (RFC 1996 §3.6), six times over about a minute; a secondary that
//! missed them all catches up at its next SOA refresh. At start every zone's SOA is asked of
//! every secondary (nothing is known then), and every half minute the pairs still behind
//! are asked again, so what the API says of propagation settles whatever was lost.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use uuid::Uuid;

use super::Zones;
use super::secondaries::Secondaries;
use super::snapshot::ZoneSnap;
use super::xfr::serial_gt;
use crate::metrics::Metrics;

const ATTEMPTS: u32 = 6;
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// How long a NOTIFY's change is watched for on the secondary before the periodic check
/// takes over; the first SOA query goes this soon after the NOTIFY is answered.
const CONFIRM_FOR: Duration = Duration::from_secs(120);
const FIRST_LOOK: Duration = Duration::from_millis(50);
const LONGEST_LOOK: Duration = Duration::from_secs(1);
/// Time an SOA query to a secondary gets for its answer.
const SOA_TIMEOUT: Duration = Duration::from_secs(1);
/// SOA queries in flight to one secondary at once, and NOTIFY rounds: a bulk change or the
/// start-up sweep of many zones does not flood it, nor hold a socket per zone.
const QUERIES_PER_SECONDARY: usize = 8;
const NOTIFIES_PER_SECONDARY: usize = 32;
/// How often the pairs still behind are asked again, and how many of them at most.
const RECHECK_EVERY: Duration = Duration::from_secs(30);
const RECHECK_MAX: usize = 1_000;

#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// `changed` runs on the store's writer thread, outside the runtime.
    runtime: tokio::runtime::Handle,
    zones: Arc<Zones>,
    /// (zone, secondary) → dirty: a task is running for the pair; `true` once it must start
    /// again with a newer serial.
    running: Mutex<HashMap<(Uuid, usize), bool>>,
    metrics: Option<Arc<Metrics>>,
    /// What each secondary serves; the secondaries' addresses, in its order.
    secondaries: Arc<Secondaries>,
    /// Per secondary, the SOA queries and the NOTIFY rounds it may be sent at once.
    queries: Vec<Semaphore>,
    notifies: Vec<Semaphore>,
}

/// What a secondary said when asked for a zone's SOA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    /// It serves the zone at this serial.
    Serves(u32),
    /// It answered, but not with the zone's SOA (refused, not authoritative: not there yet).
    Lacks,
    /// No answer in time.
    Silent,
}

impl Notifier {
    /// Must be called inside the tokio runtime.
    pub fn new(zones: Arc<Zones>, targets: Vec<SocketAddr>, metrics: Option<Arc<Metrics>>) -> Self {
        let runtime = tokio::runtime::Handle::current();
        let secondaries = Arc::new(Secondaries::new(&targets));
        let slots = |n| secondaries.targets().iter().map(|_| Semaphore::new(n)).collect();
        Self {
            inner: Arc::new(Inner {
                runtime,
                zones,
                running: Mutex::default(),
                metrics,
                queries: slots(QUERIES_PER_SECONDARY),
                notifies: slots(NOTIFIES_PER_SECONDARY),
                secondaries,
            }),
        }
    }

    /// What each secondary serves: the handler reports transfers to it, the API and the
    /// metrics read it.
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
        for i in 0..self.inner.secondaries.targets().len() {
            self.inner.start(zone, i);
        }
    }

    /// Asks every secondary what it serves of every zone (start-up), then, every
    /// `RECHECK_EVERY`, the pairs still behind; NOTIFYs those that answer behind. Runs until
    /// the task is dropped.
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            let all: Vec<Arc<ZoneSnap>> = inner.zones.load().iter().cloned().collect();
            let sweeps = (0..inner.secondaries.targets().len()).map(|i| {
                let (inner, zones) = (inner.clone(), all.clone());
                tokio::spawn(async move { inner.sweep(i, zones).await })
            });
            for sweep in sweeps.collect::<Vec<_>>() {
                let _ = sweep.await;
            }
            let mut tick = tokio::time::interval(RECHECK_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let zones = inner.zones.load();
                let mut by_target: HashMap<usize, Vec<Arc<ZoneSnap>>> = HashMap::new();
                for (i, id) in inner.secondaries.behind(RECHECK_MAX) {
                    if let Some(zone) = zones.by_id(id) {
                        by_target.entry(i).or_default().push(zone.clone());
                    }
                }
                for (i, zones) in by_target {
                    inner.sweep(i, zones).await;
                }
            }
        })
    }
}

impl Inner {
    /// Starts the NOTIFY round for (zone, secondary `i`), or marks the running one dirty.
    fn start(self: &Arc<Self>, zone: Uuid, i: usize) {
        let mut running = self.running.lock().expect("notify state");
        if let Some(dirty) = running.get_mut(&(zone, i)) {
            *dirty = true;
            return;
        }
        running.insert((zone, i), false);
        drop(running);
        let inner = self.clone();
        self.runtime.spawn(async move { inner.run(zone, i).await });
    }

    async fn run(self: &Arc<Self>, zone: Uuid, i: usize) {
        let target = self.secondaries.targets()[i];
        loop {
            let Some(snap) = self.zones.load().by_id(zone).cloned() else {
                break;
            };
            let acked = {
                let _slot = self.notifies[i].acquire().await.expect("never closed");
                send_until_acked(&snap.origin, snap.soa_record(), target).await
            };
            if !acked {
                tracing::warn!(zone = %snap.origin, %target, "NOTIFY unanswered; the secondary will catch up at its refresh");
            }
            if let Some(m) = &self.metrics {
                m.notify_sent(if acked { "acknowledged" } else { "unanswered" });
            }
            if acked {
                self.confirm(i, &snap).await;
            }
            let mut running = self.running.lock().expect("notify state");
            match running.get_mut(&(zone, i)) {
                Some(dirty) if *dirty => *dirty = false,
                _ => {
                    running.remove(&(zone, i));
                    return;
                }
            }
        }
        self.running.lock().expect("notify state").remove(&(zone, i));
    }

    fn dirty(&self, zone: Uuid, i: usize) -> bool {
        self.running.lock().expect("notify state").get(&(zone, i)) == Some(&true)
    }

    /// Asks secondary `i` for `snap`'s SOA until it serves its serial (or a transfer showed
    /// it does), a newer change is to be sent, or `CONFIRM_FOR` passes.
    async fn confirm(&self, i: usize, snap: &ZoneSnap) {
        let deadline = Instant::now() + CONFIRM_FOR;
        let mut wait = FIRST_LOOK;
        while Instant::now() < deadline {
            tokio::time::sleep(wait).await;
            if self.secondaries.serves(i, snap.id, snap.serial) || self.dirty(snap.id, i) {
                return;
            }
            if let Seen::Serves(s) = self.look(i, snap).await
                && !serial_gt(snap.serial, s)
            {
                return;
            }
            wait = (wait * 2).min(LONGEST_LOOK);
        }
    }

    /// Asks secondary `i` for `snap`'s SOA and notes what it serves.
    async fn look(&self, i: usize, snap: &ZoneSnap) -> Seen {
        let seen = {
            let _slot = self.queries[i].acquire().await.expect("never closed");
            soa_query(self.secondaries.targets()[i], &snap.origin).await
        };
        if let Seen::Serves(serial) = seen {
            self.secondaries.served(i, snap.id, serial);
        }
        seen
    }

    /// Asks secondary `i` what it serves of each of `zones`, a few at a time; a zone it serves
    /// at an older serial gets a NOTIFY round. A secondary silent to a whole batch is taken for
    /// down: the zones left are marked behind unasked, for the next check.
    async fn sweep(self: &Arc<Self>, i: usize, zones: Vec<Arc<ZoneSnap>>) {
        let mut left = zones.as_slice();
        while !left.is_empty() {
            let (batch, rest) = left.split_at(left.len().min(QUERIES_PER_SECONDARY));
            left = rest;
            let mut asked = tokio::task::JoinSet::new();
            for zone in batch {
                let (inner, zone) = (self.clone(), zone.clone());
                asked.spawn(async move { (inner.look(i, &zone).await, zone) });
            }
            let mut silent = 0;
            while let Some(Ok((seen, zone))) = asked.join_next().await {
                match seen {
                    Seen::Serves(s) if !serial_gt(zone.serial, s) => {}
                    // An older serial: it missed a NOTIFY.
                    Seen::Serves(_) => {
                        self.secondaries.lacks(i, zone.id, zone.serial);
                        self.start(zone.id, i);
                    }
                    // Not there (yet, or by its operator's choice): asked again later, not
                    // chased with NOTIFYs.
                    Seen::Lacks => self.secondaries.lacks(i, zone.id, zone.serial),
                    Seen::Silent => {
                        silent += 1;
                        self.secondaries.lacks(i, zone.id, zone.serial);
                    }
                }
            }
            if silent == batch.len() {
                tracing::warn!(target = %self.secondaries.targets()[i], "secondary does not answer SOA queries; asking again later");
                for zone in left {
                    self.secondaries.lacks(i, zone.id, zone.serial);
                }
                return;
            }
        }
    }
}

async fn send_until_acked(origin: &Name, soa: Record, target: SocketAddr) -> bool {
    let Some(socket) = connected(target).await else {
        return false;
    };
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
        let deadline = Instant::now() + wait;
        let acked = reply(&socket, deadline, |r| {
            r.metadata.id == id && r.metadata.op_code == OpCode::Notify
        })
        .await;
        if acked.is_some() {
            return true;
        }
        tokio::time::sleep_until(deadline).await; // an ICMP error ends `reply` early
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    false
}

/// What `server` says of `zone`'s SOA: the serial it answers authoritatively, that it does
/// not serve the zone, or nothing within `SOA_TIMEOUT`.
pub async fn soa_query(server: SocketAddr, zone: &Name) -> Seen {
    let Some(socket) = connected(server).await else {
        return Seen::Silent;
    };
    let id = rand_id();
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(zone.clone(), RecordType::SOA));
    let Ok(bytes) = query.to_vec() else { return Seen::Silent };
    if socket.send(&bytes).await.is_err() {
        return Seen::Silent;
    }
    let Some(reply) = reply(&socket, Instant::now() + SOA_TIMEOUT, |r| r.metadata.id == id).await else {
        return Seen::Silent;
    };
    let serial = reply.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if &r.name == zone => Some(soa.serial),
        _ => None,
    });
    match serial {
        Some(serial) if reply.metadata.authoritative => Seen::Serves(serial),
        _ => Seen::Lacks,
    }
}

async fn connected(target: SocketAddr) -> Option<UdpSocket> {
    let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .expect("literal");
    let socket = UdpSocket::bind(bind).await.ok()?;
    socket.connect(target).await.ok()?;
    Some(socket)
}

/// The first response `matches` takes before `deadline`; `None` on a timeout or an error
/// (an ICMP port unreachable).
async fn reply(socket: &UdpSocket, deadline: Instant, matches: impl Fn(&Message) -> bool) -> Option<Message> {
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.message_type == MessageType::Response
            && matches(&m)
        {
            return Some(m);
        }
    }
    None
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_ne_bytes(b)
}
