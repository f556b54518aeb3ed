//! A standard query: the answer from the zone's snapshot, let out as response rate limiting
//! says. No lock, no allocation for a plain answer, no I/O but the response itself.

use hickory_proto::op::{Edns, Metadata, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageResponseBuilder;

use super::respond::Responder;
use super::snapshot::Key;
use super::{Handler, answer, rrl};

impl Handler {
    pub(super) async fn query(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        mut meta: Metadata,
        responder: &mut Responder,
    ) {
        let q = &request.queries.queries()[0];
        // The name as asked (case kept): wildcard answers are synthesised with it.
        let qname = q.original().name();
        let zones = self.zones.load();
        let key = Key::from_name(qname);
        let Some(zone) = zones.find(&key) else {
            return self.refuse(request, edns, meta, ResponseCode::Refused, responder).await;
        };
        let mut synth: Vec<Record> = Vec::new();
        let answer = answer::lookup(zone, qname, q.query_type(), &mut synth);
        meta.authoritative = answer.authoritative;
        meta.response_code = answer.rcode;
        if self.rrl.is_some() {
            let kind = if !answer.authoritative {
                rrl::Kind::Referral
            } else if answer.rcode == ResponseCode::NXDomain {
                rrl::Kind::NxDomain
            } else if !synth.is_empty() {
                rrl::Kind::Wildcard
            } else if answer.answer.is_empty() {
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
                rrl::Verdict::Drop => return,
                rrl::Verdict::Slip => {
                    meta.truncation = true;
                    return responder.empty(request, edns, meta).await;
                }
            }
        }
        let response = MessageResponseBuilder::new(&request.queries, edns).build(
            meta,
            answer.answer.iter(&synth),
            answer.authority.iter(&synth),
            None.iter(),
            answer.additional.iter(&synth),
        );
        if let Err(e) = responder.send(response).await {
            tracing::debug!(error = %e, "sending a DNS response failed");
        }
    }
}
