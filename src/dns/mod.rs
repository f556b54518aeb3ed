//! The authoritative DNS server: hickory-server's sockets, our own request handler over the
//! snapshots in `snapshot`. This module never writes to the store.

pub mod answer;
pub mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

pub use snapshot::Catalog;

use crate::store::{Reader, Store};

/// Answers every query from the current snapshots; holds no lock and does no I/O but the
/// response itself.
pub struct Handler {
    catalog: Arc<Catalog>,
    max_payload: u16,
}

impl Handler {
    pub fn new(catalog: Arc<Catalog>, max_payload: u16) -> Self {
        Handler { catalog, max_payload }
    }
}

fn error_info(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
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
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());

        let rcode = if request.metadata.message_type != MessageType::Query {
            None // responses are never answered (no reflection)
        } else if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            Some(ResponseCode::FormErr)
        } else {
            let q = &request.queries.queries()[0];
            // Other classes, and zone transfers (not offered to anyone yet), are refused.
            let refused = q.query_class() != DNSClass::IN || matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR);
            refused.then_some(ResponseCode::Refused)
        };
        if request.metadata.message_type != MessageType::Query {
            return error_info(request, ResponseCode::FormErr);
        }
        if let Some(rcode) = rcode {
            meta.response_code = rcode;
            let msg = builder.build(meta, None.iter(), None.iter(), None.iter(), None.iter());
            return response.send_response(msg).await.unwrap_or_else(|_| error_info(request, rcode));
        }

        let q = &request.queries.queries()[0];
        // The name as asked (case kept): wildcard answers are synthesised with it.
        let qname: &hickory_proto::rr::Name = q.original().name();
        let zones = self.catalog.load();
        let key = snapshot::Key::from_name(qname);
        let Some(zone) = zones.find(&key) else {
            meta.response_code = ResponseCode::Refused;
            let msg = builder.build(meta, None.iter(), None.iter(), None.iter(), None.iter());
            return response.send_response(msg).await.unwrap_or_else(|_| error_info(request, ResponseCode::Refused));
        };
        let mut synth: Vec<Record> = Vec::new();
        let tcp = request.protocol() != Protocol::Udp;
        let plan = answer::resolve(zone, qname, q.query_type(), tcp, &mut synth);
        meta.authoritative = plan.authoritative;
        meta.response_code = plan.rcode;
        let msg = builder.build(
            meta,
            plan.answer.iter(&synth),
            plan.authority.iter(&synth),
            None.iter(),
            plan.additional.iter(&synth),
        );
        match response.send_response(msg).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS response failed");
                error_info(request, ResponseCode::ServFail)
            }
        }
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
/// acknowledged, and the catalog starts from what is stored now.
pub fn attach(store: &Store, catalog: Arc<Catalog>) -> crate::store::Result<()> {
    store.read_blocking(|r| rebuild(&catalog, r))?;
    store.set_listener(Arc::new(move |changes| catalog.apply(changes)));
    Ok(())
}

/// Starts serving on already-bound sockets (port 0 works: the caller reads the addresses).
pub fn serve(udp: UdpSocket, tcp: TcpListener, handler: Handler, tcp_idle: Duration) -> Server<Handler> {
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, tcp_idle, 32);
    server
}
