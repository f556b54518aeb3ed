//! What a request must be before it is looked at: a query (responses are never answered, so
//! we cannot be made to reflect), EDNS version 0, an opcode we implement, one question, class
//! IN, and a valid signature when it is signed.

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_server::server::Request;

use super::tsig;

/// The outcome of checking a request.
pub enum Checked {
    /// Not a query: no response at all.
    Ignore,
    /// Answer with this rcode and nothing else.
    Refuse(ResponseCode),
    /// Go on; responses are signed with the session when the request was signed.
    Accept(Option<tsig::Session>),
}

pub fn check(request: &Request, keys: &tsig::Keys) -> Checked {
    if request.metadata.message_type != MessageType::Query {
        return Checked::Ignore;
    }
    let rcode = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        ResponseCode::BADVERS // RFC 6891 §6.1.3
    } else if !matches!(request.metadata.op_code, OpCode::Query | OpCode::Notify) {
        ResponseCode::NotImp
    } else if request.queries.len() != 1 {
        ResponseCode::FormErr
    } else if request.queries.queries()[0].query_class() != DNSClass::IN {
        ResponseCode::Refused
    } else {
        return match keys.check(request) {
            tsig::Verdict::Unsigned => Checked::Accept(None),
            tsig::Verdict::Valid(session) => Checked::Accept(Some(session)),
            tsig::Verdict::Invalid(why) => {
                tracing::info!(client = %request.src(), why, "TSIG check failed");
                Checked::Refuse(ResponseCode::NotAuth)
            }
        };
    };
    Checked::Refuse(rcode)
}
