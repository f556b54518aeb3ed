//! Zone transfers out: AXFR (RFC 5936) from the snapshot, IXFR (RFC 1995) from the journal
//! in the store, falling back to the whole zone when the journal does not reach back.

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::BinEncodable;

use super::snapshot::{ZoneSnap, to_record};
use crate::store::{JournalEntry, Reader, Store};

/// Target size of one transfer message (RFC 5936 §2.2 allows many; 16 KiB keeps each small).
pub const CHUNK: usize = 16 * 1024;

fn soa_with_serial(zone: &ZoneSnap, serial: u32) -> Record {
    let mut r = zone.soa[0].clone();
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
    let mut out = vec![zone.soa[0].clone()];
    for node in zone.nodes.values() {
        for set in &node.rrsets {
            out.extend(set.records.iter().cloned());
        }
    }
    out.push(zone.soa[0].clone());
    out
}

/// RFC 1982: is `a` newer than `b`?
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The IXFR answer for a secondary at `their` serial.
pub async fn ixfr(zone: &ZoneSnap, store: &Store, their: u32) -> Vec<Record> {
    let current = zone.serial;
    if their == current || serial_gt(their, current) {
        return vec![zone.soa[0].clone()]; // up to date (RFC 1995 §2)
    }
    let id = zone.id;
    let journal = store.read(move |r: &Reader| r.journal_since(id, their, current)).await;
    let Ok(Some(entries)) = journal else { return axfr(zone) };
    let mut out = vec![zone.soa[0].clone()];
    for JournalEntry {
        from,
        to,
        removed,
        added,
    } in entries
    {
        out.push(soa_with_serial(zone, from));
        out.extend(removed.iter().filter_map(to_record));
        out.push(soa_with_serial(zone, to));
        out.extend(added.iter().filter_map(to_record));
    }
    out.push(zone.soa[0].clone());
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
