//! A standard query: the answer from the zone's snapshot, let out as response rate limiting
//! says. Plain queries come straight from the UDP and TCP loops (`answer_plain`): no lock,
//! no allocation, no hickory. Queries the plain parser leaves alone (TSIG-signed ones, a
//! compressed question) are rewritten as a plain query by the hickory-based path and answered
//! by the same code, so there is one answer logic.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Metadata, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::serialize::binary::BinEncodable;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::respond::Responder;
use super::snapshot::Key;
use super::wire::{self, Opt, Parsed, Question, Response};
use super::{Handler, answer, rrl};

/// How the answer to a plain query goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP from this source: cut to the client's size and rate limited.
    Udp(IpAddr),
    Tcp,
}

const REFUSED: u8 = 5;
const SOA: u16 = 6;
/// RFC 8914 §4.19 and §4.21.
const EDE_PROHIBITED: u16 = 18;
const EDE_NOT_AUTHORITATIVE: u16 = 20;

impl Handler {
    /// Answers a plain query into `out`; `false` when nothing is to be sent (dropped by
    /// response rate limiting). `reserve` is room kept free at the end (a TSIG record).
    pub(crate) fn answer_plain(
        &self,
        q: &Question<'_>,
        transport: Transport,
        reserve: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp(_), Some(e)) => usize::from(e.payload.min(self.max_payload).max(512)),
            (Transport::Udp(_), None) => 512,
        };
        let edns = q.edns.map(|e| Opt {
            payload: self.max_payload,
            dnssec_ok: e.dnssec_ok,
            nsid: self.identity.nsid(e.nsid),
        });
        let mut r = Response::start(out, q, limit.saturating_sub(reserve), edns);
        let zones = self.zones.guard();
        let (kind, zone_key) = match zones.find_for(q.key, q.qtype) {
            Some(zone) if !zone.catalog || q.qtype == SOA => (answer::answer(zone, q, &mut r), &zone.key[..]),
            found => {
                // Outside every zone (as Knot and NSD say it), or in the catalog, whose member
                // list is for the secondaries that may transfer it: only its SOA is answered.
                r.set_rcode(REFUSED);
                r.set_ede(if found.is_some() {
                    EDE_PROHIBITED
                } else {
                    EDE_NOT_AUTHORITATIVE
                });
                (rrl::Kind::Error, &[][..])
            }
        };
        if let (Some(rrl), Transport::Udp(source)) = (&self.rrl, transport) {
            let (name, rtype) = match kind {
                rrl::Kind::Positive | rrl::Kind::NoData => (q.key.as_bytes(), q.qtype),
                rrl::Kind::Error => (&[][..], 0),
                _ => (zone_key, 0),
            };
            match rrl.check(source, kind, name, rtype) {
                rrl::Verdict::Send => {}
                rrl::Verdict::Drop => return false,
                rrl::Verdict::Slip => r.overflow = true, // TC, no records: ask again over TCP
            }
        }
        r.finish();
        true
    }

    /// A query the plain parser left to hickory (it passed `check`): rewritten as the plain
    /// query it asks, answered by `answer_plain`, then signed when the request was.
    pub(super) async fn query(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        meta: Metadata,
        responder: &mut Responder,
    ) {
        let q = &request.queries.queries()[0];
        let mut msg = Vec::with_capacity(64);
        msg.extend_from_slice(&meta.id.to_be_bytes());
        let rd = u8::from(request.metadata.recursion_desired);
        let cd = if request.metadata.checking_disabled { 0x10 } else { 0 };
        msg.extend_from_slice(&[rd, cd, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
        let Ok(name) = q.original().name().to_bytes() else {
            return self.refuse(request, edns, meta, ResponseCode::FormErr, responder).await;
        };
        msg.extend_from_slice(&name);
        msg.extend_from_slice(&u16::from(q.query_type()).to_be_bytes());
        msg.extend_from_slice(&u16::from(q.query_class()).to_be_bytes());
        if let Some(e) = &request.edns {
            let flags: u16 = if e.flags().dnssec_ok { 0x8000 } else { 0 };
            let nsid = e.option(EdnsCode::NSID).is_some();
            msg.extend_from_slice(&[0, 0, 41]);
            msg.extend_from_slice(&e.max_payload().to_be_bytes());
            msg.extend_from_slice(&[0, 0]);
            msg.extend_from_slice(&flags.to_be_bytes());
            if nsid {
                msg.extend_from_slice(&[0, 4, 0, wire::OPTION_NSID as u8, 0, 0]);
            } else {
                msg.extend_from_slice(&[0, 0]);
            }
        }
        let mut key = Key::default();
        let Parsed::Plain(plain) = wire::parse(&msg, &mut key) else {
            return self.refuse(request, edns, meta, ResponseCode::FormErr, responder).await;
        };
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp(request.src().ip()),
            _ => Transport::Tcp,
        };
        let mut out = Vec::with_capacity(512);
        if self.answer_plain(&plain, transport, responder.overhead(), &mut out)
            && let Err(e) = responder.send_wire(out).await
        {
            tracing::debug!(error = %e, "sending a DNS response failed");
        }
    }
}
