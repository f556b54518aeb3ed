//! TSIG (RFC 8945): verifying a signed request against the key table, and signing its
//! responses: every message of a multi-message zone transfer (§5.3.1: each MAC covers the
//! previous one), and the error responses of §5.2 and §5.3.2 (BADKEY and BADSIG unsigned,
//! BADTIME and BADTRUNC signed, with our time in BADTIME's Other Data). The MACs are ring's
//! HMACs, so hmac-sha1 works too (hickory's TSIG computes only the SHA-2 ones).

use std::sync::Arc;

use hickory_proto::rr::rdata::tsig::{self as wire, TSIG, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::Request;
use ring::hmac;

use super::keys::{Key, Keys};
use crate::domain::TsigAlgorithm;

/// Longest name on the wire.
const MAX_NAME: usize = 255;

/// Seconds of clock difference accepted (RFC 8945 §10 recommends 300). A request's own fudge
/// may narrow the window, never widen it: a long window is a long replay window.
pub const FUDGE: u16 = 300;

/// What a request's signature says about it.
pub enum Verdict {
    Unsigned,
    /// Verified: answer, signing every response with the session.
    Valid(Session),
    /// A TSIG error (BADKEY, BADSIG, BADTIME, BADTRUNC): answer NOTAUTH with the session's
    /// TSIG record and nothing else.
    Error(Session),
    /// A TSIG record no key could have made (a MAC of an impossible length): FORMERR.
    Malformed(&'static str),
}

fn hickory_algorithm(a: TsigAlgorithm) -> wire::TsigAlgorithm {
    match a {
        TsigAlgorithm::HmacSha1 => wire::TsigAlgorithm::HmacSha1,
        TsigAlgorithm::HmacSha256 => wire::TsigAlgorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => wire::TsigAlgorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => wire::TsigAlgorithm::HmacSha512,
    }
}

/// The HMAC of `data` under `key`.
pub fn mac(key: &Key, data: &[u8]) -> Vec<u8> {
    let algorithm = match key.algorithm {
        TsigAlgorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        TsigAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    hmac::sign(&hmac::Key::new(algorithm, key.secret()), data)
        .as_ref()
        .to_vec()
}

/// Equality that takes as long whatever the first differing octet.
fn same_octets(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(diff) == 0
}

/// Checks the request's TSIG record, in RFC 8945 §5.2's order: key, MAC, time, truncation.
pub fn check(keys: &Keys, request: &Request) -> Verdict {
    let Some(sig) = request.signature.as_ref() else {
        return Verdict::Unsigned;
    };
    let tsig = &sig.data;
    let now = crate::domain::unix_now();
    let error = |key: Option<Arc<Key>>, error: TsigError, previous_mac: Vec<u8>| {
        Verdict::Error(Session::new(
            key,
            sig.name.clone(),
            tsig.algorithm.clone(),
            previous_mac,
            request.metadata.id,
            tsig.time,
            Some(error),
        ))
    };
    let algorithm = tsig.algorithm.to_name().to_ascii().parse::<TsigAlgorithm>().ok();
    let Some(key) = keys.find(&sig.name).filter(|k| Some(k.algorithm) == algorithm) else {
        return error(None, TsigError::BadKey, Vec::new());
    };
    let full = key.algorithm.output_len();
    if tsig.mac.len() > full || tsig.mac.len() < (full / 2).max(10) {
        return Verdict::Malformed("a TSIG MAC of an impossible length");
    }
    let Ok((signed, _)) = wire::signed_bitmessage_to_buf(request.as_slice(), None, true) else {
        return Verdict::Malformed("an unreadable TSIG record");
    };
    if !same_octets(&mac(&key, &signed)[..tsig.mac.len()], &tsig.mac) {
        return error(Some(key), TsigError::BadSig, Vec::new());
    }
    let window = u64::from(tsig.fudge.min(FUDGE));
    if now.abs_diff(tsig.time) > window {
        return error(Some(key), TsigError::BadTime, tsig.mac.clone());
    }
    if tsig.mac.len() < full {
        return error(Some(key), TsigError::BadTrunc, tsig.mac.clone());
    }
    Verdict::Valid(Session::new(
        Some(key),
        sig.name.clone(),
        tsig.algorithm.clone(),
        tsig.mac.clone(),
        request.metadata.id,
        tsig.time,
        None,
    ))
}

/// Signs the responses to one request, in order.
pub struct Session {
    /// `None` after BADKEY: the error goes out unsigned, under the name the request used.
    key: Option<Arc<Key>>,
    key_name: Name,
    algorithm: wire::TsigAlgorithm,
    previous_mac: Vec<u8>,
    first: bool,
    request_id: u16,
    request_time: u64,
    error: Option<TsigError>,
    overhead: usize,
}

impl Session {
    fn new(
        key: Option<Arc<Key>>,
        key_name: Name,
        algorithm: wire::TsigAlgorithm,
        previous_mac: Vec<u8>,
        request_id: u16,
        request_time: u64,
        error: Option<TsigError>,
    ) -> Self {
        let algorithm = key.as_ref().map_or(algorithm, |k| hickory_algorithm(k.algorithm));
        let unsigned = matches!(error, Some(TsigError::BadKey | TsigError::BadSig));
        let mac_len = match &key {
            Some(k) if !unsigned => k.algorithm.output_len(),
            _ => 0,
        };
        let other = if error == Some(TsigError::BadTime) { 6 } else { 0 };
        // Owner, type/class/TTL/length, then algorithm, time (6), fudge, MAC size, MAC,
        // original id, error and other length (2 each), other data.
        let wire_len = |n: &Name| n.to_bytes().map_or(MAX_NAME, |b| b.len());
        let overhead = wire_len(&key_name) + 10 + wire_len(&algorithm.to_name()) + 16 + mac_len + other;
        Self {
            key,
            key_name,
            algorithm,
            previous_mac,
            first: true,
            request_id,
            request_time,
            error,
            overhead,
        }
    }

    /// The verified key (`None` after BADKEY).
    pub fn key(&self) -> Option<&Arc<Key>> {
        self.key.as_ref()
    }

    /// The key the responses are signed with, when they are.
    pub fn key_name(&self) -> &Name {
        &self.key_name
    }

    /// The request's MAC: identifies the request (a replay carries the same one).
    pub fn request_mac(&self) -> &[u8] {
        &self.previous_mac
    }

    /// The TSIG error the response reports, if any.
    pub fn error(&self) -> Option<TsigError> {
        self.error
    }

    /// The octets the TSIG record adds to a response: room a UDP response keeps for it.
    pub fn overhead(&self) -> usize {
        self.overhead
    }

    /// The TSIG record for a response whose unsigned wire form is `unsigned`.
    pub fn sign(&mut self, unsigned: &[u8]) -> Option<Box<Record<TSIG>>> {
        let now = crate::domain::unix_now();
        let key = match (&self.key, self.error) {
            (Some(key), None | Some(TsigError::BadTime | TsigError::BadTrunc)) => key.clone(),
            // BADKEY, BADSIG: "MUST NOT send back a signed error message" (RFC 8945 §5.3.2).
            _ => {
                let stub = TSIG::new(
                    self.algorithm.clone(),
                    now,
                    FUDGE,
                    Vec::new(),
                    self.request_id,
                    self.error,
                    Vec::new(),
                );
                return Some(Box::new(make_tsig_record(self.key_name.clone(), stub)));
            }
        };
        // BADTIME: the request's time, so the client can check the MAC, and ours in Other
        // Data, so it can see how far off it is (RFC 8945 §5.2.3).
        let (time, other) = match self.error {
            Some(TsigError::BadTime) => (self.request_time, now.to_be_bytes()[2..].to_vec()),
            _ => (now, Vec::new()),
        };
        let stub = TSIG::new(
            self.algorithm.clone(),
            time,
            FUDGE,
            Vec::new(),
            self.request_id,
            self.error,
            other,
        );
        let mut tbs = Vec::with_capacity(unsigned.len() + 128);
        {
            let mut enc = BinEncoder::new(&mut tbs);
            enc.emit_u16(self.previous_mac.len() as u16).ok()?;
            enc.emit_vec(&self.previous_mac).ok()?;
            enc.emit_vec(unsigned).ok()?;
            if self.first {
                stub.emit_tsig_for_mac(&mut enc, &self.key_name).ok()?;
            } else {
                // Later messages of a transfer cover the timers only (RFC 8945 §5.3.1).
                enc.emit_u16((time >> 32) as u16).ok()?;
                enc.emit_u32(time as u32).ok()?;
                enc.emit_u16(FUDGE).ok()?;
            }
        }
        let mac = mac(&key, &tbs);
        self.previous_mac = mac.clone();
        self.first = false;
        Some(Box::new(make_tsig_record(self.key_name.clone(), stub.set_mac(mac))))
    }
}
