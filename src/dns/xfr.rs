//! Zone operations: NOTIFY to us (acknowledged for our zones: we are the primary), and
//! transfers out, AXFR (RFC 5936) from the snapshot and IXFR (RFC 1995) from the journal,
//! falling back to the whole zone when the journal does not reach back. A transfer is allowed
//! from an `allow_transfer` address, signed with an operator's key, or signed with a team's
//! key whose policy allows it for that zone. Every response carries an OPT record when the
//! request had one (RFC 6891 §7), errors included.

use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageResponseBuilder;

use std::sync::Arc;

use super::Handler;
use super::keys::{Key, Owner};
use super::respond::Responder;
use super::snapshot::{Key as ZoneKey, ZoneSnap, to_record, wire_records};
use crate::store::{Journal, JournalEntry};

/// Who may transfer zones, and the journal IXFR reads.
#[derive(Clone)]
pub struct Transfers {
    pub acl: Vec<ipnet::IpNet>,
    pub journal: Journal,
}

impl Handler {
    /// Answers a NOTIFY, AXFR or IXFR (the request passed `check`; `key` signed it). A team's
    /// key transfers only the zones its rules name: any other zone, served or not, is
    /// NOTAUTH to it, so it learns nothing of other teams' zones.
    pub(super) async fn zone_operation(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        mut meta: Metadata,
        key: Option<Arc<Key>>,
        responder: &mut Responder,
    ) {
        let q = &request.queries.queries()[0];
        let zones = self.zones.load();
        let zone = zones
            .find(&ZoneKey::from_name(q.name()))
            .filter(|z| z.origin == **q.name())
            .cloned();
        let is_transfer = request.metadata.op_code == OpCode::Query;
        let by_address = self
            .transfers
            .as_ref()
            .is_some_and(|t| t.acl.iter().any(|net| net.contains(&request.src().ip())));
        let by_key = |zone: &ZoneSnap| match key.as_deref().map(|k| &k.owner) {
            Some(Owner::Operator) => true,
            Some(Owner::Team(row)) => row.transfers(zone.id),
            None => false,
        };
        let key_transfers = match key.as_deref().map(|k| &k.owner) {
            Some(Owner::Operator) => true,
            Some(Owner::Team(row)) => row.transfer,
            None => false,
        };
        let may_ask = by_address || key_transfers;
        let udp = request.protocol() == Protocol::Udp;
        let zone = match (zone, is_transfer) {
            // AXFR over UDP is not defined (RFC 5936 §4.2): NOTIMP to anyone, as Knot and NSD.
            (_, true) if udp && q.query_type() == RecordType::AXFR => Err(ResponseCode::NotImp),
            (None, false) => Err(ResponseCode::NotAuth),
            (None, true) if may_ask => Err(ResponseCode::NotAuth),
            (None, true) => Err(ResponseCode::Refused),
            (Some(_), true) if self.transfers.is_none() => Err(ResponseCode::Refused),
            (Some(z), true) if !by_address && !by_key(&z) => Err(if may_ask {
                ResponseCode::NotAuth
            } else {
                ResponseCode::Refused
            }),
            (Some(zone), _) => Ok(zone),
        };
        let kind = if q.query_type() == RecordType::AXFR {
            "AXFR"
        } else {
            "IXFR"
        };
        let zone = match zone {
            Ok(zone) => zone,
            Err(rcode) => {
                if is_transfer {
                    self.count_transfer(kind, refusal(rcode));
                }
                meta.response_code = rcode;
                return responder.empty(request, edns, meta).await;
            }
        };
        // AA on what we answer for our zone: transfers (RFC 5936 §2.2.1) and NOTIFY (as BIND).
        meta.authoritative = true;
        let (Some(transfers), true) = (&self.transfers, is_transfer) else {
            return responder.empty(request, edns, meta).await; // NOTIFY: acknowledged
        };
        // Whether the client holds our serial once this transfer is through.
        let mut current = !udp;
        let records = if q.query_type() == RecordType::AXFR {
            axfr(&zone)
        } else {
            let theirs = request.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
            // A secondary asking from a serial serves that serial.
            if let (Some(secondaries), Some(theirs)) = (&self.secondaries, theirs) {
                secondaries.seen(request.src().ip(), zone.id, theirs);
            }
            match (theirs, request.protocol()) {
                (None, _) => {
                    self.count_transfer(kind, "malformed");
                    meta.response_code = ResponseCode::FormErr;
                    meta.authoritative = false;
                    return responder.empty(request, edns, meta).await;
                }
                // Over UDP only "you are current" or "use TCP" fit: both are our SOA (RFC 1995 §2).
                (Some(theirs), Protocol::Udp) => {
                    current = theirs == zone.serial;
                    vec![zone.soa_record()]
                }
                (Some(theirs), _) => ixfr(&zone, &transfers.journal, theirs).await,
            }
        };
        for chunk in chunks(&records) {
            let response = MessageResponseBuilder::new(&request.queries, edns).build(
                meta,
                chunk.iter(),
                None.iter(),
                None.iter(),
                None.iter(),
            );
            if let Err(e) = responder.send(response).await {
                tracing::warn!(zone = %zone.origin, error = %e, "zone transfer interrupted");
                return self.count_transfer(kind, "interrupted");
            }
        }
        self.count_transfer(kind, "complete");
        if let (Some(secondaries), true) = (&self.secondaries, current) {
            secondaries.seen(request.src().ip(), zone.id, zone.serial);
        }
        let key = key.map(|k| k.name.to_string());
        tracing::info!(zone = %zone.origin, client = %request.src(), ?key, kind = %q.query_type(), records = records.len(), serial = zone.serial, "zone transfer");
    }
}

impl Handler {
    fn count_transfer(&self, kind: &'static str, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.transfer(kind, outcome);
        }
    }
}

/// A refused transfer's outcome label.
fn refusal(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::Refused => "refused",
        ResponseCode::NotAuth => "not_authoritative",
        _ => "malformed",
    }
}

/// Target size of one transfer message (RFC 5936 §2.2 allows many; 16 KiB keeps each small).
pub const CHUNK: usize = 16 * 1024;

fn soa_with_serial(zone: &ZoneSnap, serial: u32) -> Record {
    let mut r = zone.soa_record();
    if let RData::SOA(soa) = &r.data {
        let s = SOA::new(
            soa.mname.clone(),
            soa.rname.clone(),
            serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        );
        r.data = RData::SOA(s);
    }
    r
}

/// SOA, every record, SOA.
pub fn axfr(zone: &ZoneSnap) -> Vec<Record> {
    let soa = zone.soa_record();
    let mut out = vec![soa.clone()];
    out.extend(zone.records());
    out.push(soa);
    out
}

/// RFC 1982: is `a` newer than `b`?
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The IXFR answer for a secondary at `their` serial.
pub async fn ixfr(zone: &ZoneSnap, journal: &Journal, their: u32) -> Vec<Record> {
    let current = zone.serial;
    if their == current || serial_gt(their, current) {
        return vec![zone.soa_record()]; // up to date (RFC 1995 §2)
    }
    let Ok(Some(entries)) = journal.since(zone.id, their, current).await else {
        return axfr(zone);
    };
    let mut out = vec![zone.soa_record()];
    for JournalEntry {
        from,
        to,
        removed,
        added,
        signed,
    } in entries
    {
        // A signed zone's change without its signed records (made while no server signed
        // it): only the whole zone says what the secondary must hold.
        let (signed_removed, signed_added) = match (&zone.signed, signed) {
            (None, _) => (Vec::new(), Vec::new()),
            (Some(_), None) => return axfr(zone),
            (Some(_), Some(s)) => match (wire_records(&s.removed), wire_records(&s.added)) {
                (Some(r), Some(a)) => (r, a),
                _ => return axfr(zone),
            },
        };
        out.push(soa_with_serial(zone, from));
        out.extend(removed.iter().filter_map(to_record));
        out.extend(signed_removed);
        out.push(soa_with_serial(zone, to));
        out.extend(added.iter().filter_map(to_record));
        out.extend(signed_added);
    }
    out.push(zone.soa_record());
    out
}

/// Splits records into messages of about `CHUNK` octets.
pub fn chunks(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let len = r.to_bytes().map(|b| b.len()).unwrap_or(512);
        if size + len > CHUNK && i > start {
            out.push(&records[start..i]);
            start = i;
            size = 0;
        }
        size += len;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(serial_gt(0, u32::MAX), "0 follows 2^32-1");
        assert!(!serial_gt(5, 5));
    }
}
