//! The authoritative DNS server: our own request handler over the snapshots in `snapshot`,
//! behind our own UDP and TCP loops (hickory-proto for the wire format, hickory-server's
//! request and response types). This module never writes to the store.

pub mod answer;
pub mod notify;
mod respond;
pub mod rrl;
pub mod snapshot;
pub mod tcp;
pub mod tsig;
pub mod udp;
pub mod xfr;

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

pub use snapshot::Catalog;

use crate::store::{Reader, Store};

/// Answers every query from the current snapshots; holds no lock and does no I/O but the
/// response itself (IXFR alone reads the journal from the store).
#[derive(Clone)]
pub struct Handler {
    catalog: Arc<Catalog>,
    max_payload: u16,
    transfers: Option<Transfers>,
    keys: tsig::Keys,
    rrl: Option<Arc<rrl::Rrl>>,
}

/// Who may transfer zones, and the store whose journal IXFR reads.
#[derive(Clone)]
pub struct Transfers {
    pub acl: Vec<ipnet::IpNet>,
    pub store: Store,
}

impl Handler {
    pub fn new(catalog: Arc<Catalog>, max_payload: u16) -> Self {
        Self {
            catalog,
            max_payload,
            transfers: None,
            keys: tsig::Keys::default(),
            rrl: None,
        }
    }

    /// Limits UDP answers per source prefix (`None`: no limit).
    pub fn with_rrl(mut self, rrl: Option<Arc<rrl::Rrl>>) -> Self {
        self.rrl = rrl;
        self
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

    /// Allows zone transfers as `transfers` says, and TSIG with `keys`.
    pub fn with_transfers(mut self, transfers: Transfers, keys: tsig::Keys) -> Self {
        self.transfers = Some(transfers);
        self.keys = keys;
        self
    }

    /// Answers one message in wire form: every response message (none for what is not
    /// answered, several for a zone transfer). For benches, fuzzing and embedding.
    pub async fn answer(&self, raw: Vec<u8>, src: std::net::SocketAddr, protocol: Protocol) -> Vec<Vec<u8>> {
        match Request::from_bytes(raw.clone(), src, protocol) {
            Ok(request) => {
                let collect = respond::Responder::collect(protocol == Protocol::Udp);
                self.handle_request::<_, hickory_server::net::runtime::TokioTime>(&request, collect.clone())
                    .await;
                collect.taken()
            }
            Err(_) => tcp::formerr(&raw).into_iter().collect(),
        }
    }
}

fn error_info(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// Sends one response built by `$make` (evaluated again when signing: the MAC covers the
/// unsigned message, RFC 8945 §5.3), signed when the request was.
macro_rules! send {
    ($response:expr, $tsig:expr, $make:expr) => {{
        match $tsig.as_mut() {
            Some(session) => {
                let mut unsigned = Vec::with_capacity(512);
                let encoded = {
                    let mut enc = hickory_proto::serialize::binary::BinEncoder::new(&mut unsigned);
                    enc.set_max_size(u16::MAX);
                    $make.destructive_emit(&mut enc).is_ok()
                };
                let mut msg = $make;
                if let Some(sig) = encoded.then(|| session.sign(&unsigned)).flatten() {
                    msg.set_signature(sig);
                }
                $response.send_response(msg).await
            }
            None => $response.send_response($make).await,
        }
    }};
}

/// An empty response with `meta`'s rcode and flags.
macro_rules! empty {
    ($request:expr, $edns:expr, $meta:expr) => {
        MessageResponseBuilder::new(&$request.queries, $edns).build(
            $meta,
            None.iter(),
            None.iter(),
            None.iter(),
            None.iter(),
        )
    };
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        if request.metadata.message_type != MessageType::Query {
            return error_info(request, ResponseCode::FormErr); // responses are never answered (no reflection)
        }
        // OPT in the response: our payload size, capped by what the client can take (the
        // encoder truncates at the response's advertised size). RFC 6891 §6.2.3.
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().clamp(512, self.max_payload));
            e.set_version(0);
            e
        });
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = false;
        meta.authentic_data = false;
        let mut session = None;
        let rcode = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS)
        } else if !matches!(request.metadata.op_code, OpCode::Query | OpCode::Notify) {
            Some(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            Some(ResponseCode::FormErr)
        } else if request.queries.queries()[0].query_class() != DNSClass::IN {
            Some(ResponseCode::Refused)
        } else {
            match self.keys.check(request) {
                tsig::Verdict::Unsigned => None,
                tsig::Verdict::Valid(s) => {
                    session = Some(s);
                    None
                }
                tsig::Verdict::Invalid(why) => {
                    tracing::info!(client = %request.src(), why, "TSIG check failed");
                    Some(ResponseCode::NotAuth)
                }
            }
        };
        if let Some(rcode) = rcode {
            meta.response_code = rcode;
            return match self.limit(request, rrl::Kind::Error, &[], RecordType::NULL) {
                rrl::Verdict::Drop => error_info(request, rcode),
                verdict => {
                    meta.truncation = verdict == rrl::Verdict::Slip;
                    send!(response, session, empty!(request, edns.as_ref(), meta))
                        .unwrap_or_else(|_| error_info(request, rcode))
                }
            };
        }
        let q = &request.queries.queries()[0];
        if request.metadata.op_code == OpCode::Notify || matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
            return self.zone_operation(request, meta, session, response).await;
        }

        // The name as asked (case kept): wildcard answers are synthesised with it.
        let qname: &hickory_proto::rr::Name = q.original().name();
        let zones = self.catalog.load();
        let key = snapshot::Key::from_name(qname);
        let Some(zone) = zones.find(&key) else {
            meta.response_code = ResponseCode::Refused;
            return match self.limit(request, rrl::Kind::Error, &[], RecordType::NULL) {
                rrl::Verdict::Drop => error_info(request, ResponseCode::Refused),
                verdict => {
                    meta.truncation = verdict == rrl::Verdict::Slip;
                    send!(response, session, empty!(request, edns.as_ref(), meta))
                        .unwrap_or_else(|_| error_info(request, ResponseCode::Refused))
                }
            };
        };
        let mut synth: Vec<Record> = Vec::new();
        let plan = answer::resolve(zone, qname, q.query_type(), &mut synth);
        meta.authoritative = plan.authoritative;
        meta.response_code = plan.rcode;
        if self.rrl.is_some() {
            let kind = if !plan.authoritative {
                rrl::Kind::Referral
            } else if plan.rcode == ResponseCode::NXDomain {
                rrl::Kind::NxDomain
            } else if !synth.is_empty() {
                rrl::Kind::Wildcard
            } else if plan.answer.is_empty() {
                rrl::Kind::NoData
            } else {
                rrl::Kind::Positive
            };
            let (name, rtype) = match kind {
                rrl::Kind::Positive | rrl::Kind::NoData => (key.as_bytes(), q.query_type()),
                _ => (&zone.key[..], RecordType::NULL),
            };
            match self.limit(request, kind, name, rtype) {
                rrl::Verdict::Send => {}
                rrl::Verdict::Drop => return error_info(request, plan.rcode),
                rrl::Verdict::Slip => {
                    meta.truncation = true;
                    return send!(response, session, empty!(request, edns.as_ref(), meta))
                        .unwrap_or_else(|_| error_info(request, plan.rcode));
                }
            }
        }
        let make = || {
            MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
                meta,
                plan.answer.iter(&synth),
                plan.authority.iter(&synth),
                None.iter(),
                plan.additional.iter(&synth),
            )
        };
        match send!(response, session, make()) {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS response failed");
                error_info(request, ResponseCode::ServFail)
            }
        }
    }
}

impl Handler {
    /// NOTIFY to us (we are the primary: acknowledged for our zones), AXFR and IXFR. A
    /// transfer is allowed from an `allow_transfer` address or signed with an allowed key.
    async fn zone_operation<R: ResponseHandler>(
        &self,
        request: &Request,
        mut meta: Metadata,
        mut session: Option<tsig::Session>,
        mut response: R,
    ) -> ResponseInfo {
        let q = &request.queries.queries()[0];
        let zones = self.catalog.load();
        let zone = zones
            .find(&snapshot::Key::from_name(q.name()))
            .filter(|z| z.origin == **q.name())
            .cloned();
        let is_transfer = request.metadata.op_code == OpCode::Query;
        let by_address = self
            .transfers
            .as_ref()
            .is_some_and(|t| t.acl.iter().any(|net| net.contains(&request.src().ip())));
        let allowed = by_address || session.is_some();
        let refuse = match (&zone, is_transfer) {
            (None, false) => Some(ResponseCode::NotAuth),
            (None, true) => Some(if allowed {
                ResponseCode::NotAuth
            } else {
                ResponseCode::Refused
            }),
            (Some(_), true) if !allowed || self.transfers.is_none() => Some(ResponseCode::Refused),
            (Some(_), true) if request.protocol() == Protocol::Udp && q.query_type() == RecordType::AXFR => {
                Some(ResponseCode::FormErr)
            }
            _ => None,
        };
        if let Some(rcode) = refuse {
            meta.response_code = rcode;
            return send!(response, session, empty!(request, None, meta))
                .unwrap_or_else(|_| error_info(request, rcode));
        }
        let zone = zone.expect("checked above");
        meta.authoritative = true;
        if !is_transfer {
            return send!(response, session, empty!(request, None, meta))
                .unwrap_or_else(|_| error_info(request, ResponseCode::ServFail));
        }
        let records = if q.query_type() == RecordType::AXFR {
            xfr::axfr(&zone)
        } else {
            let theirs = request.authorities.iter().find_map(|r| match &r.data {
                hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
            match (theirs, request.protocol()) {
                (None, _) => {
                    meta.response_code = ResponseCode::FormErr;
                    return send!(response, session, empty!(request, None, meta))
                        .unwrap_or_else(|_| error_info(request, ResponseCode::FormErr));
                }
                // Over UDP only "you are current" or "use TCP" fit: both are our SOA (RFC 1995 §2).
                (Some(_), Protocol::Udp) => vec![zone.soa[0].clone()],
                (Some(theirs), _) => {
                    xfr::ixfr(&zone, &self.transfers.as_ref().expect("checked above").store, theirs).await
                }
            }
        };
        let mut info = error_info(request, ResponseCode::ServFail);
        for chunk in xfr::chunks(&records) {
            let make = || {
                MessageResponseBuilder::new(&request.queries, None).build(
                    meta,
                    chunk.iter(),
                    None.iter(),
                    None.iter(),
                    None.iter(),
                )
            };
            match send!(response, session, make()) {
                Ok(i) => info = i,
                Err(e) => {
                    tracing::warn!(zone = %zone.origin, error = %e, "zone transfer interrupted");
                    break;
                }
            }
        }
        let key = session.as_ref().map(|s| s.key_name().to_string());
        tracing::info!(zone = %zone.origin, client = %request.src(), ?key, kind = %q.query_type(), records = records.len(), serial = zone.serial, "zone transfer");
        info
    }
}

/// Builds the snapshots of every zone from the store (start-up).
pub fn rebuild(catalog: &Catalog, reader: &Reader) -> crate::store::Result<()> {
    let mut zones = Vec::new();
    for zone in reader.all_zones()? {
        let mut rows = Vec::with_capacity(zone.record_count as usize);
        reader.each_record(zone.id, |r| {
            rows.push(r);
            Ok(())
        })?;
        zones.push((zone, rows));
    }
    catalog.rebuild(zones);
    Ok(())
}

/// Wires the catalog to the store: every committed batch is applied before it is
/// acknowledged (and its zones' secondaries are notified), and the catalog starts from
/// what is stored now.
pub fn attach(store: &Store, catalog: Arc<Catalog>, notifier: Option<notify::Notifier>) -> crate::store::Result<()> {
    store.read_blocking(|r| rebuild(&catalog, r))?;
    store.set_listener(Arc::new(move |changes| {
        catalog.apply(changes);
        if let Some(n) = &notifier {
            let mut seen = std::collections::HashSet::new();
            for c in changes {
                if let crate::store::Change::ZonePut(z) = c
                    && seen.insert(z.id)
                {
                    n.changed(z.id);
                }
            }
        }
    }));
    Ok(())
}

/// UDP receive loops sharing the socket.
const UDP_LOOPS: usize = 4;

/// Starts serving on already-bound sockets (port 0 works: the caller reads the addresses).
/// Dropping (aborting) the returned tasks stops the server and closes its connections.
pub fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    handler: Handler,
    tcp_limits: tcp::Limits,
) -> (tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>) {
    let udp = tokio::spawn(udp::serve(udp, handler.clone(), UDP_LOOPS));
    let tcp = tokio::spawn(tcp::serve(tcp, handler, tcp_limits));
    (udp, tcp)
}
