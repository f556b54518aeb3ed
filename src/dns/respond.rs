//! Where a response goes: a TCP connection's writer, or a buffer (the UDP threads,
//! `Handler::answer`). One `Responder` for all three, so encoding, its size rules and TSIG
//! signing live in one place: each response is encoded once, cut to the client's UDP size,
//! then signed when the request was.

use std::sync::{Arc, Mutex};

use hickory_proto::op::{Edns, Metadata};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use tokio::sync::mpsc;

use super::tsig;
use super::wire::skip_name;

#[derive(Clone)]
enum Sink {
    Tcp(mpsc::Sender<Vec<u8>>),
    Collect(Arc<Mutex<Vec<Vec<u8>>>>),
    /// The one response to a UDP query, taken by the UDP thread that sends it.
    One(Option<Vec<u8>>),
}

pub(crate) struct Responder {
    sink: Sink,
    /// Cut at the advertised size (RFC 1035 §4.2.1: 512 without OPT), else 65,535.
    udp: bool,
    /// Signs every response once the request's signature checked (RFC 8945 §5.3).
    tsig: Option<tsig::Session>,
    /// The response code of the last response sent (the header's four bits), for metrics.
    rcode: Option<u8>,
}

impl Responder {
    pub(crate) fn tcp(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            sink: Sink::Tcp(tx),
            udp: false,
            tsig: None,
            rcode: None,
        }
    }

    /// Keeps responses in memory, sized as `udp` says; `taken` reads them back.
    pub(crate) fn collect(udp: bool) -> Self {
        Self {
            sink: Sink::Collect(Arc::default()),
            udp,
            tsig: None,
            rcode: None,
        }
    }

    /// Keeps the (one) response in itself; `take_one` hands it over.
    pub(crate) fn one() -> Self {
        Self {
            sink: Sink::One(None),
            udp: true,
            tsig: None,
            rcode: None,
        }
    }

    pub(crate) fn take_one(&mut self) -> Option<Vec<u8>> {
        match &mut self.sink {
            Sink::One(out) => out.take(),
            _ => None,
        }
    }

    pub(crate) fn taken(&self) -> Vec<Vec<u8>> {
        match &self.sink {
            Sink::Collect(out) => std::mem::take(&mut *out.lock().expect("collect lock")),
            _ => Vec::new(),
        }
    }

    /// The response code of the last response sent; `None` while none was.
    pub(crate) fn rcode(&self) -> Option<u8> {
        self.rcode
    }

    /// Signs what follows with the request's verified TSIG session.
    pub(crate) fn sign_with(&mut self, session: tsig::Session) {
        self.tsig = Some(session);
    }

    /// Sends a response with no records and `meta`'s rcode and flags: errors, refusals, NOTIFY
    /// acknowledgements and RRL slips (hickory's `error_msg`, with our header bits).
    pub(crate) async fn empty(&mut self, request: &Request, edns: Option<&Edns>, meta: Metadata) {
        let response = MessageResponseBuilder::new(&request.queries, edns).build_no_records(meta);
        if let Err(e) = self.send(response).await {
            tracing::debug!(error = %e, "sending a DNS response failed");
        }
    }

    /// Room a response must leave for its signature (0 when unsigned).
    pub(crate) fn overhead(&self) -> usize {
        self.tsig.as_ref().map_or(0, tsig::Session::overhead)
    }

    /// Sends a response already in wire form and within the size limits, signed when the
    /// request was.
    pub(crate) async fn send_wire(&mut self, mut buf: Vec<u8>) -> Result<(), NetError> {
        if let Some(session) = &mut self.tsig {
            sign(session, &mut buf);
        }
        self.deliver(buf).await
    }

    async fn deliver(&mut self, buf: Vec<u8>) -> Result<(), NetError> {
        self.rcode = buf.get(3).map(|b| b & 0x0F);
        match &mut self.sink {
            Sink::Tcp(tx) => tx
                .send(super::tcp::framed(&buf))
                .await
                .map_err(|_| NetError::from("connection closed"))?,
            Sink::Collect(out) => out.lock().expect("collect lock").push(buf),
            Sink::One(out) => *out = Some(buf),
        }
        Ok(())
    }

    /// Encodes and sends one response.
    pub(crate) async fn send<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<(), NetError> {
        let limit = if self.udp {
            response.edns().map_or(512, |e| e.max_payload())
        } else {
            u16::MAX
        };
        let mut buf = Vec::with_capacity(512);
        {
            let mut enc = BinEncoder::new(&mut buf);
            enc.set_max_size(u16::MAX);
            response.destructive_emit(&mut enc)?;
        }
        // The TSIG record must fit too (RFC 8945 §5.3): cut the message with room for it.
        let signature = self.tsig.as_ref().map_or(0, tsig::Session::overhead);
        if buf.len() + signature > usize::from(limit) {
            buf = truncated(&buf).ok_or_else(|| NetError::from("cannot truncate the response"))?;
        }
        self.send_wire(buf).await
    }
}

/// Appends the TSIG record for the unsigned message in `buf` and counts it in ARCOUNT. The
/// MAC covers the message as sent without its TSIG (RFC 8945 §4.3.3), so a truncated
/// response is signed as truncated. A message that cannot be signed goes out unsigned, and
/// the client refuses it.
fn sign(session: &mut tsig::Session, buf: &mut Vec<u8>) {
    let Some(record) = session.sign(buf) else { return };
    let Ok(wire) = record.to_bytes() else { return };
    let Some(count) = buf.get(10..12).map(|c| u16::from_be_bytes([c[0], c[1]])) else {
        return;
    };
    let Some(count) = count.checked_add(1) else { return };
    buf[10..12].copy_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&wire);
}

/// A response too large for the client's UDP size as RFC 2181 §9 and RFC 6891 §7 want it
/// sent instead: the header with TC set, the question, no records, and the OPT record kept
/// (so the client still learns our size and any extended rcode). `None` if `full` is not a
/// well-formed message.
pub(crate) fn truncated(full: &[u8]) -> Option<Vec<u8>> {
    let count =
        |at: usize| -> Option<usize> { Some(u16::from_be_bytes([*full.get(at)?, *full.get(at + 1)?]) as usize) };
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(full, at)? + 4;
    }
    let question_end = at;
    let mut opt = None;
    for i in 0..an + ns + ar {
        let start = at;
        at = skip_name(full, at)?;
        let rtype = count(at)?;
        at += 10 + count(at + 8)?;
        if i >= an + ns && rtype == 41 {
            opt = Some(full.get(start..at)?);
        }
    }
    let mut out = Vec::with_capacity(question_end + 32);
    out.extend_from_slice(full.get(..question_end)?);
    out[2] |= 0x02; // TC
    out[6..12].copy_from_slice(&[0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    out.extend_from_slice(opt.unwrap_or_default());
    Some(out)
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::TXT};

    use super::truncated;

    #[test]
    fn a_truncated_response_keeps_the_question_and_opt_and_nothing_else() {
        let mut m = Message::new(0x4242, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        let name = Name::from_ascii("big.example.").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::TXT));
        for i in 0..40 {
            m.add_answer(Record::from_rdata(
                name.clone(),
                60,
                RData::TXT(TXT::new(vec![format!("{i:03}{}", "x".repeat(60))])),
            ));
        }
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
        let full = m.to_vec().unwrap();
        let cut = Message::from_vec(&truncated(&full).unwrap()).unwrap();
        assert!(cut.metadata.truncation && cut.metadata.authoritative);
        assert_eq!(cut.metadata.id, 0x4242);
        assert_eq!(cut.queries.len(), 1);
        assert!(cut.answers.is_empty() && cut.authorities.is_empty() && cut.additionals.is_empty());
        assert_eq!(cut.edns.as_ref().map(|e| e.max_payload()), Some(1232), "OPT kept");
        let mut plain = m.clone();
        plain.edns = None;
        let cut = Message::from_vec(&truncated(&plain.to_vec().unwrap()).unwrap()).unwrap();
        assert!(cut.edns.is_none() && cut.metadata.truncation);
        assert!(
            truncated(&full[..40]).is_none(),
            "a message cut short is not ours to fix"
        );
    }
}
