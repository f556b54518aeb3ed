//! What the server says about itself, each off unless configured: its name to the CH TXT
//! queries `id.server` and `hostname.bind` (RFC 4892), a version text to `version.bind` and
//! `version.server`, and the NSID option (RFC 5001) to queries that ask for it. Answered as
//! Knot answers them: TTL 0, class CH, AA clear; REFUSED when off, and for every other CH
//! question. These answers go through response rate limiting like any other.

use hickory_proto::op::{Edns, Metadata, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageResponseBuilder;

use super::respond::Responder;
use super::{Handler, rrl};
use crate::config::DnsConfig;

/// The configured texts, as octets; `None` where off.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    identity: Option<Box<[u8]>>,
    version: Option<Box<[u8]>>,
    nsid: Option<Box<[u8]>>,
}

impl Identity {
    pub fn from_config(c: &DnsConfig) -> Self {
        let text = |s: &str| (!s.is_empty()).then(|| s.as_bytes().into());
        Self {
            identity: text(&c.identity),
            version: text(&c.version),
            nsid: text(&c.nsid),
        }
    }

    /// The NSID to send to a query that `asked` for it.
    pub fn nsid(&self, asked: bool) -> Option<&[u8]> {
        if asked { self.nsid.as_deref() } else { None }
    }

    /// The text a CH question asks for, when it is one we answer and it is on.
    fn text(&self, name: &str, qtype: RecordType) -> Option<&[u8]> {
        if qtype != RecordType::TXT {
            return None;
        }
        match name {
            "id.server." | "hostname.bind." => self.identity.as_deref(),
            "version.bind." | "version.server." => self.version.as_deref(),
            _ => None,
        }
    }
}

impl Handler {
    /// A query in class CH (it passed `check`).
    pub(super) async fn chaos(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        mut meta: Metadata,
        responder: &mut Responder,
    ) {
        let q = &request.queries.queries()[0];
        let name = q.name().to_ascii().to_ascii_lowercase();
        let Some(text) = self.identity.text(&name, q.query_type()) else {
            return self.refuse(request, edns, meta, ResponseCode::Refused, responder).await;
        };
        meta.authoritative = false;
        match self.limit(request, rrl::Kind::Positive, name.as_bytes(), RecordType::TXT) {
            rrl::Verdict::Drop => {}
            rrl::Verdict::Slip => {
                meta.truncation = true;
                responder.empty(request, edns, meta).await;
            }
            rrl::Verdict::Send => {
                let owner = q.original().name().clone();
                let mut record = Record::from_rdata(owner, 0, RData::TXT(TXT::from_bytes(vec![text])));
                record.dns_class = DNSClass::CH;
                let response = MessageResponseBuilder::new(&request.queries, edns).build(
                    meta,
                    [&record],
                    None.iter(),
                    None.iter(),
                    None.iter(),
                );
                if let Err(e) = responder.send(response).await {
                    tracing::debug!(error = %e, "sending a DNS response failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_texts_are_told_and_only_to_txt_questions() {
        let mut c = crate::config::Config::defaults().dns;
        let off = Identity::from_config(&c);
        assert_eq!(off.text("id.server.", RecordType::TXT), None);
        assert_eq!(
            off.text("version.bind.", RecordType::TXT),
            None,
            "no version by default"
        );
        assert_eq!(off.nsid(true), None);
        c.identity = "ns1.example.net".into();
        c.nsid = "ns1".into();
        let on = Identity::from_config(&c);
        for name in ["id.server.", "hostname.bind."] {
            assert_eq!(on.text(name, RecordType::TXT), Some(&b"ns1.example.net"[..]));
        }
        assert_eq!(on.text("id.server.", RecordType::A), None);
        assert_eq!(on.text("version.server.", RecordType::TXT), None, "version still off");
        assert_eq!(on.text("authors.bind.", RecordType::TXT), None);
        assert_eq!((on.nsid(true), on.nsid(false)), (Some(&b"ns1"[..]), None));
    }
}
