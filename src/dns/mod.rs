//! The authoritative DNS server: our own request handler over the snapshots in `snapshot`,
//! behind our own UDP and TCP loops (hickory-proto for the wire format, hickory-server's
//! request and response types). A request is checked (`check`, `tsig` against the key table
//! in `keys`), then answered as a query (`query`, `answer`), a zone operation (`xfr`) or an
//! UPDATE (`update`); every response leaves through one `Responder`, which encodes,
//! truncates and signs it. This module never writes to the store itself: an UPDATE goes
//! through the store's `Updater`, the one write it can ask for.

pub mod answer;
mod check;
pub mod identity;
pub mod keys;
pub mod node;
pub mod notify;
mod ordered;
mod proof;
mod query;
pub mod resigner;
mod respond;
pub mod rrl;
pub mod secondaries;
pub mod signed;
pub mod signer;
pub mod snapshot;
pub mod tcp;
mod trie;
pub mod tsig;
pub mod udp;
pub mod update;
pub mod wire;
pub mod xfr;

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::net::TcpListener;

pub use identity::Identity;
pub use keys::Keys;
pub use snapshot::Zones;
pub use update::Updates;
pub use xfr::Transfers;

use self::check::Checked;
use self::query::Transport;
use self::respond::Responder;
use crate::metrics::Metrics;
use crate::metrics::dns::{Proto, Stamp};
use crate::store::{Reader, Store};

/// What a UDP thread does with a datagram.
pub(crate) enum UdpAnswer {
    /// A plain query, answered in place (`send`: not dropped by rate limiting).
    Plain { send: bool, qtype: u16 },
    /// Not a query: no response.
    Ignore,
    /// For the hickory path (`Handler::answer_udp_other`).
    Other,
}

/// Answers every query from the current snapshots; holds no lock and does no I/O but the
/// response itself (IXFR alone reads the journal).
#[derive(Clone)]
pub struct Handler {
    zones: Arc<Zones>,
    max_payload: u16,
    transfers: Option<Transfers>,
    keys: Arc<Keys>,
    updates: Option<Arc<Updates>>,
    rrl: Option<Arc<rrl::Rrl>>,
    metrics: Option<Arc<Metrics>>,
    /// Told of every completed transfer, to know which secondaries are behind.
    secondaries: Option<Arc<secondaries::Secondaries>>,
    /// What the server tells about itself (CH TXT, NSID).
    identity: Arc<Identity>,
}

impl Handler {
    pub fn new(zones: Arc<Zones>, max_payload: u16) -> Self {
        Self {
            zones,
            max_payload,
            transfers: None,
            keys: Arc::default(),
            updates: None,
            rrl: None,
            metrics: None,
            secondaries: None,
            identity: Arc::default(),
        }
    }

    /// Answers the CH identity questions and NSID as `identity` says.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Arc::new(identity);
        self
    }

    /// Reports completed transfers to `secondaries` (the notifier's).
    pub fn with_secondaries(mut self, secondaries: Option<Arc<secondaries::Secondaries>>) -> Self {
        self.secondaries = secondaries;
        self
    }

    /// Counts every request, its answer and how long it took (`None`: nothing is counted).
    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Limits UDP answers per source prefix (`None`: no limit).
    pub fn with_rrl(mut self, rrl: Option<Arc<rrl::Rrl>>) -> Self {
        self.rrl = rrl;
        self
    }

    /// Allows zone transfers as `transfers` says, and TSIG with `keys`.
    pub fn with_transfers(mut self, transfers: Transfers, keys: Arc<Keys>) -> Self {
        self.transfers = Some(transfers);
        self.keys = keys;
        self
    }

    /// Applies RFC 2136 UPDATEs signed with a team's key.
    pub fn with_updates(mut self, updates: Updates) -> Self {
        self.updates = Some(Arc::new(updates));
        self
    }

    /// Answers one message in wire form: every response message (none for what is not
    /// answered, several for a zone transfer). For benches, fuzzing and embedding.
    pub async fn answer(&self, raw: Vec<u8>, src: SocketAddr, protocol: Protocol) -> Vec<Vec<u8>> {
        let mut key = snapshot::Key::default();
        match wire::parse(&raw, &mut key) {
            wire::Parsed::Plain(q) => {
                let started = Stamp::now();
                let (transport, proto) = match protocol {
                    Protocol::Udp => (Transport::Udp(src.ip()), Proto::Udp),
                    _ => (Transport::Tcp, Proto::Tcp),
                };
                let mut out = Vec::with_capacity(512);
                let sent = self.answer_plain(&q, transport, 0, &mut out);
                if let Some(m) = &self.metrics {
                    m.dns.record(proto, q.qtype, sent.then(|| out[3] & 0x0F), started);
                }
                return if sent { vec![out] } else { Vec::new() };
            }
            wire::Parsed::Ignore => return Vec::new(),
            wire::Parsed::Other => {}
        }
        match Request::from_bytes(raw.clone(), src, protocol) {
            Ok(request) => {
                let mut responder = Responder::collect(protocol == Protocol::Udp);
                self.handle(&request, &mut responder).await;
                responder.taken()
            }
            Err(_) => tcp::formerr(&raw).into_iter().collect(),
        }
    }

    /// Counts a plain query answered outside `handle` (`rcode` none: not answered).
    pub(crate) fn count(&self, proto: Proto, qtype: u16, rcode: Option<u8>, started: Stamp) {
        if let Some(m) = &self.metrics {
            m.dns.record(proto, qtype, rcode, started);
        }
    }

    /// A shard of the DNS counters for a thread of its own (the UDP threads), when counting.
    pub(crate) fn metrics_worker(&self) -> Option<crate::metrics::dns::Worker> {
        self.metrics.as_ref().map(|m| m.dns.worker())
    }

    /// Answers a plain UDP query from `peer` into `out` (see `UdpAnswer`). Called by the UDP
    /// threads, each with its own `key` buffer; nothing here blocks.
    pub(crate) fn answer_udp(
        &self,
        raw: &[u8],
        peer: SocketAddr,
        key: &mut snapshot::Key,
        out: &mut Vec<u8>,
    ) -> UdpAnswer {
        match wire::parse(raw, key) {
            wire::Parsed::Plain(q) => UdpAnswer::Plain {
                send: self.answer_plain(&q, Transport::Udp(peer.ip()), 0, out),
                qtype: q.qtype,
            },
            wire::Parsed::Ignore => UdpAnswer::Ignore,
            wire::Parsed::Other => UdpAnswer::Other,
        }
    }

    /// Answers a UDP message the plain parser left to hickory (UPDATE, NOTIFY, transfers,
    /// signed or malformed messages): the response, if any. It may wait on the store (an
    /// UPDATE commits), so the UDP threads run it as a task. Counted in `handle`.
    pub(crate) async fn answer_udp_other(&self, raw: Vec<u8>, peer: SocketAddr) -> Option<Vec<u8>> {
        let started = Stamp::now();
        let Ok(request) = Request::from_bytes(raw.clone(), peer, Protocol::Udp) else {
            let reply = tcp::formerr(&raw);
            self.malformed(Proto::Udp, reply.is_some(), started);
            return reply;
        };
        let mut responder = Responder::one();
        self.handle(&request, &mut responder).await;
        responder.take_one()
    }

    /// Answers one parsed request through `responder`, and counts it: this is where every
    /// request of the hickory path ends (the fast path calls `DnsMetrics::record` itself).
    pub(crate) async fn handle(&self, request: &Request, responder: &mut Responder) {
        let Some(metrics) = &self.metrics else {
            return self.respond(request, responder).await;
        };
        let started = Stamp::now();
        self.respond(request, responder).await;
        let qtype = request
            .queries
            .queries()
            .first()
            .map_or(0, |q| u16::from(q.query_type()));
        let proto = match request.protocol() {
            Protocol::Udp => Proto::Udp,
            _ => Proto::Tcp,
        };
        metrics.dns.record(proto, qtype, responder.rcode(), started);
    }

    /// Counts a message that does not parse: answered FORMERR when its header allows, else
    /// not at all.
    pub(crate) fn malformed(&self, proto: Proto, answered: bool, started: Stamp) {
        if let Some(m) = &self.metrics {
            m.dns.record(proto, 0, answered.then_some(1), started);
        }
    }

    async fn respond(&self, request: &Request, responder: &mut Responder) {
        let checked = check::check(request, &self.keys);
        if let Checked::Ignore = checked {
            return; // responses are never answered (no reflection)
        }
        // OPT in the response: our payload size, capped by what the client can take (the
        // encoder truncates at the response's advertised size). RFC 6891 §6.2.3.
        // RFC 3225 §3: the DO bit copied, errors included.
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().clamp(512, self.max_payload));
            e.set_version(0);
            e.set_dnssec_ok(req.flags().dnssec_ok);
            if let Some(nsid) = self.identity.nsid(req.option(EdnsCode::NSID).is_some()) {
                e.options_mut()
                    .insert(EdnsOption::Unknown(wire::OPTION_NSID, nsid.to_vec()));
            }
            e
        });
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = false;
        meta.authentic_data = false;
        match checked {
            Checked::Ignore => {}
            Checked::Refuse(rcode) => self.refuse(request, edns.as_ref(), meta, rcode, responder).await,
            Checked::TsigError(session) => {
                responder.sign_with(session);
                self.refuse(request, edns.as_ref(), meta, ResponseCode::NotAuth, responder)
                    .await;
            }
            Checked::Accept(session) => {
                let signer = session
                    .as_ref()
                    .and_then(|s| Some((s.key()?.clone(), s.request_mac().to_vec())));
                if let Some(session) = session {
                    responder.sign_with(session);
                }
                let q = &request.queries.queries()[0];
                let key = signer.as_ref().map(|(k, _)| k.clone());
                let edns = edns.as_ref();
                match request.metadata.op_code {
                    OpCode::Update => self.update(request, edns, meta, signer, responder).await,
                    OpCode::Notify => self.zone_operation(request, edns, meta, key, responder).await,
                    _ if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) => {
                        self.zone_operation(request, edns, meta, key, responder).await
                    }
                    _ if q.query_class() == DNSClass::CH => self.chaos(request, edns, meta, responder).await,
                    _ => self.query(request, edns, meta, responder).await,
                }
            }
        }
    }

    /// An error response (rcode, no records), as response rate limiting lets it out.
    async fn refuse(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        mut meta: Metadata,
        rcode: ResponseCode,
        responder: &mut Responder,
    ) {
        meta.response_code = rcode;
        match self.limit(request, rrl::Kind::Error, &[], RecordType::NULL) {
            rrl::Verdict::Drop => {}
            verdict => {
                meta.truncation = verdict == rrl::Verdict::Slip;
                responder.empty(request, edns, meta).await;
            }
        }
    }

    /// What RRL says of a UDP answer of `kind` about `name`; TCP is never limited.
    fn limit(&self, request: &Request, kind: rrl::Kind, name: &[u8], rtype: RecordType) -> rrl::Verdict {
        match &self.rrl {
            Some(rrl) if request.protocol() == Protocol::Udp => {
                rrl.check(request.src().ip(), kind, name, u16::from(rtype))
            }
            _ => rrl::Verdict::Send,
        }
    }
}

/// Builds the snapshots of every zone from the store (start-up): each zone's records are
/// read lean (`Reader::each_served`) straight into its builder, so a million records never
/// exist as rows at once; signed zones come back with what signing derived for them. What
/// the build used and freed is handed back to the OS.
pub fn rebuild(zones: &Zones, reader: &Reader) -> crate::store::Result<()> {
    let mut built = Vec::new();
    for zone in reader.all_zones()? {
        let mut b = snapshot::ZoneBuilder::new(&zone);
        reader.each_served(zone.id, |r, rdata| {
            b.add(r.name, r.rtype, r.ttl, rdata);
            Ok(())
        })?;
        let (mut keys, mut signed) = (Vec::new(), Vec::new());
        if zone.dnssec.is_some() {
            keys = reader.dnssec_keys(zone.id)?;
            reader.each_signed(zone.id, |k, v| signed.push((k.to_vec(), v.to_vec())))?;
        }
        built.push(snapshot::Stored {
            snap: b.finish(),
            keys,
            signed,
        });
    }
    zones.restore(built);
    // SAFETY: malloc_trim only releases free memory of glibc's heap back to the OS.
    unsafe { libc::malloc_trim(0) };
    Ok(())
}

/// Wires the snapshots and the key table to the store: every batch is staged (signed) before
/// it commits and published before it is acknowledged (and its zones' secondaries are
/// notified), and both start from what is stored now. Signed zones whose stored signatures
/// are not all they should be are repaired before this returns, so nothing stale is served.
pub fn attach(
    store: &Store,
    zones: Arc<Zones>,
    keys: Arc<Keys>,
    notifier: Option<notify::Notifier>,
) -> crate::store::Result<()> {
    store.read_blocking(|r| {
        rebuild(&zones, r)?;
        keys.rebuild(r.all_tsig_keys()?);
        Ok(())
    })?;
    let notifier = notifier.map(Arc::new);
    let repair = zones.needing_repair();
    store.set_listener(Arc::new(move |changes: &[crate::store::Change]| {
        use crate::store::Change;
        let (map, signed) = zones.stage(changes)?;
        // What publishing needs of the changes, taken now: the closure outlives them.
        let tsig: Vec<Change> = changes
            .iter()
            .filter(|c| matches!(c, Change::TsigKeyPut(_) | Change::TsigKeyRemoved(_)))
            .cloned()
            .collect();
        let mut seen = std::collections::HashSet::new();
        let notices: Vec<(uuid::Uuid, Option<u32>)> = changes
            .iter()
            .rev()
            .filter_map(|c| match c {
                Change::ZonePut(z) if seen.insert(z.id) => Some((z.id, Some(z.serial))),
                Change::ZoneRemoved(z) if seen.insert(z.id) => Some((z.id, None)),
                _ => None,
            })
            .collect();
        let (zones, keys, notifier) = (zones.clone(), keys.clone(), notifier.clone());
        let publish = Box::new(move || {
            zones.publish(map);
            keys.apply(&tsig);
            if let Some(n) = &notifier {
                for (zone, serial) in notices {
                    match serial {
                        Some(serial) => n.changed(zone, serial),
                        None => n.removed(zone),
                    }
                }
            }
        });
        Ok(crate::store::Prepared { signed, publish })
    }));
    for zone in repair {
        tracing::warn!(%zone, "repairing the stored signatures of a signed zone before serving it");
        store.write_blocking_as(crate::domain::Actor::operator(), move |tx| tx.resign(zone, Vec::new()))?;
    }
    Ok(())
}

/// Starts serving on already-bound sockets (port 0 works: the caller reads the addresses):
/// a thread per UDP socket (`udp::bind`: they share one port) and the TCP listener's task.
/// `Udp::stop` and aborting the task stop them.
pub fn serve(
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
    handler: Handler,
    tcp_limits: tcp::Limits,
) -> std::io::Result<(udp::Udp, tokio::task::JoinHandle<()>)> {
    let udp = udp::serve(udp, handler.clone())?;
    let tcp = tokio::spawn(tcp::serve(tcp, handler, tcp_limits));
    Ok((udp, tcp))
}
