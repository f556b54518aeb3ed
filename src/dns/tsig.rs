//! TSIG (RFC 8945): verifying signed requests and signing their responses, including every
//! message of a multi-message zone transfer (§5.3.1: each MAC covers the previous one).

use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, make_tsig_record};
use hickory_proto::rr::{Name, Record, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::Request;

use crate::config::TsigKey;

/// Longest name on the wire.
const MAX_NAME: usize = 255;

/// Seconds of clock difference accepted (RFC 8945 recommends 300).
const FUDGE: u16 = 300;

/// The keys we know.
#[derive(Clone, Default)]
pub struct Keys(Vec<TSigner>);

impl Keys {
    pub fn new(keys: &[&TsigKey]) -> Self {
        Self(
            keys.iter()
                .filter_map(|k| {
                    let secret = data_encoding::BASE64.decode(k.secret.as_bytes()).ok()?;
                    let name = Name::from_ascii(&k.name).ok()?;
                    let alg = TsigAlgorithm::from_name(Name::from_ascii(&k.algorithm).ok()?);
                    TSigner::new(secret, alg, name, FUDGE).ok()
                })
                .collect(),
        )
    }

    /// What the request's signature says about it.
    pub fn check(&self, request: &Request) -> Verdict {
        let Some(sig) = request.signature.as_ref() else {
            return Verdict::Unsigned;
        };
        let Some(signer) = self.0.iter().find(|k| k.signer_name() == &sig.name) else {
            return Verdict::Invalid("unknown TSIG key");
        };
        match signer.verify_message_byte(request.as_slice(), None, true) {
            Ok((mac, _, window)) => {
                let now = crate::domain::unix_now();
                if now < window.start || now > window.end {
                    return Verdict::Invalid("TSIG time outside the fudge window");
                }
                // Owner, type/class/TTL/length, then algorithm, time (6), fudge, MAC size,
                // MAC, original id, error and other length (2 each). The MAC is as long as
                // the request's: same key, same algorithm.
                let wire = |n: &Name| n.to_bytes().map_or(MAX_NAME, |b| b.len());
                let overhead = wire(signer.signer_name()) + 10 + wire(&signer.algorithm().to_name()) + 16 + mac.len();
                Verdict::Valid(Session {
                    signer: signer.clone(),
                    previous_mac: mac,
                    first: true,
                    request_id: request.metadata.id,
                    overhead,
                })
            }
            Err(_) => Verdict::Invalid("bad TSIG signature"),
        }
    }
}

pub enum Verdict {
    Unsigned,
    Valid(Session),
    Invalid(&'static str),
}

/// Signs the responses to one verified request, in order.
pub struct Session {
    signer: TSigner,
    previous_mac: Vec<u8>,
    first: bool,
    request_id: u16,
    overhead: usize,
}

impl Session {
    pub fn key_name(&self) -> &Name {
        self.signer.signer_name()
    }

    /// The octets the TSIG record adds to a response: room a UDP response keeps for it.
    pub fn overhead(&self) -> usize {
        self.overhead
    }

    /// The TSIG record for a response whose unsigned wire form is `unsigned`.
    pub fn sign(&mut self, unsigned: &[u8]) -> Option<Box<Record<TSIG>>> {
        let now = crate::domain::unix_now();
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            now,
            FUDGE,
            Vec::new(),
            self.request_id,
            None,
            Vec::new(),
        );
        let mut tbs = Vec::with_capacity(unsigned.len() + 128);
        {
            let mut enc = BinEncoder::new(&mut tbs);
            enc.emit_u16(self.previous_mac.len() as u16).ok()?;
            enc.emit_vec(&self.previous_mac).ok()?;
            enc.emit_vec(unsigned).ok()?;
            if self.first {
                stub.emit_tsig_for_mac(&mut enc, self.signer.signer_name()).ok()?;
            } else {
                // Later messages of a transfer cover the timers only (RFC 8945 §5.3.1).
                enc.emit_u16((now >> 32) as u16).ok()?;
                enc.emit_u32(now as u32).ok()?;
                enc.emit_u16(FUDGE).ok()?;
            }
        }
        let mac = self.signer.sign(&tbs).ok()?;
        self.previous_mac = mac.clone();
        self.first = false;
        Some(Box::new(make_tsig_record(
            self.signer.signer_name().clone(),
            stub.set_mac(mac),
        )))
    }
}
