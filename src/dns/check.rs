//! What a request must be before it is looked at: a query (responses are never answered, so
//! we cannot be made to reflect), EDNS version 0, an opcode we implement (QUERY, NOTIFY,
//! UPDATE), one question (one zone, for UPDATE), nothing after its last record, a question
//! its opcode allows, and a valid signature when it is signed. The codes are Knot's: BADVERS
//! (RFC 6891 §6.1.3), NOTIMP, FORMERR, REFUSED for a class we do not serve, NOTIMP for
//! TYPE0, FORMERR for a NOTIFY that is not about an SOA (RFC 1996 §3.7).

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_server::server::Request;

use super::keys::Keys;
use super::{tsig, wire};

/// The outcome of checking a request.
pub enum Checked {
    /// Not a query: no response at all.
    Ignore,
    /// Answer with this rcode and nothing else.
    Refuse(ResponseCode),
    /// A TSIG error: NOTAUTH, with the session's (unsigned or signed) TSIG record.
    TsigError(tsig::Session),
    /// Go on; responses are signed with the session when the request was signed.
    Accept(Option<tsig::Session>),
}

pub fn check(request: &Request, keys: &Keys) -> Checked {
    if request.metadata.message_type != MessageType::Query {
        return Checked::Ignore;
    }
    let rcode = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        ResponseCode::BADVERS // RFC 6891 §6.1.3
    } else if !matches!(
        request.metadata.op_code,
        OpCode::Query | OpCode::Notify | OpCode::Update
    ) {
        ResponseCode::NotImp
    } else if request.queries.len() != 1 || wire::message_end(request.as_slice()) != Some(request.as_slice().len()) {
        ResponseCode::FormErr // RFC 9619; trailing bytes (RFC 1035 §4.1)
    } else if let Some(rcode) = question(request) {
        rcode
    } else {
        return match tsig::check(keys, request) {
            tsig::Verdict::Unsigned => Checked::Accept(None),
            tsig::Verdict::Valid(session) => Checked::Accept(Some(session)),
            tsig::Verdict::Error(session) => {
                tracing::info!(client = %request.src(), key = %session.key_name(), error = ?session.error(), "TSIG check failed");
                Checked::TsigError(session)
            }
            tsig::Verdict::Malformed(why) => {
                tracing::info!(client = %request.src(), why, "TSIG record malformed");
                Checked::Refuse(ResponseCode::FormErr)
            }
        };
    };
    Checked::Refuse(rcode)
}

/// What the question's class and type allow for the request's opcode: `None` when it may go on.
/// Standard queries take IN, ANY (answered from the IN data) and CH (the server's identity);
/// zone transfers, NOTIFY and UPDATE take IN only.
fn question(request: &Request) -> Option<ResponseCode> {
    let q = &request.queries.queries()[0];
    let (class, qtype) = (q.query_class(), q.query_type());
    let transfer = matches!(qtype, RecordType::AXFR | RecordType::IXFR);
    match request.metadata.op_code {
        OpCode::Query if qtype == RecordType::ZERO => Some(ResponseCode::NotImp),
        OpCode::Query if !transfer && matches!(class, DNSClass::ANY | DNSClass::CH) => None,
        OpCode::Notify if class == DNSClass::IN && qtype != RecordType::SOA => Some(ResponseCode::FormErr),
        _ if class != DNSClass::IN => Some(ResponseCode::Refused),
        _ => None,
    }
}
