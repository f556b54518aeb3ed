//! What a request must be before it is looked at: a query (responses are never answered, so
//! we cannot be made to reflect), EDNS version 0, an opcode we implement (QUERY, NOTIFY,
//! UPDATE), one question (one zone, for UPDATE), class IN, and a valid signature when it is
//! signed.

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_server::server::Request;

use super::keys::Keys;
use super::tsig;

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
    } else if request.queries.len() != 1 {
        ResponseCode::FormErr
    } else if request.queries.queries()[0].query_class() != DNSClass::IN {
        ResponseCode::Refused
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
