//! Response rate limiting (RRL) for UDP, in the shape BIND, Knot and NSD use: answers per
//! second to one source prefix (IPv4 /24, IPv6 /56 by default) for one kind of answer. Past
//! the rate, every `slip`-th answer goes out truncated (TC, no records: a real resolver asks
//! again over TCP, which is never limited) and the others are dropped, so a spoofed flood
//! cannot use us as an amplifier while real resolvers lose nothing.
//!
//! The state is a fixed table of atomic counters indexed by a keyed hash (no allocation, no
//! lock, bounded memory whatever the flood); two keys that share a slot share a budget, which
//! only ever limits sooner, never later.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::RrlConfig;

/// Counter slots: 2^16 × 8 bytes.
const SLOTS: usize = 1 << 16;

/// The kind of answer, as RRL counts it. Each kind has its own budget per prefix, keyed by
/// the name that answer is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Records for the name asked (keyed by name and type).
    Positive,
    /// The name exists, the type does not (keyed by name and type).
    NoData,
    /// The name does not exist (keyed by zone: random names are one budget).
    NxDomain,
    /// Synthesised from a wildcard (keyed by zone).
    Wildcard,
    /// A referral below a cut (keyed by zone).
    Referral,
    /// REFUSED, FORMERR, NOTIMP and the like (one budget per prefix).
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send a truncated answer instead.
    Slip,
    Drop,
}

pub struct Rrl {
    rate: u32,
    slip: u32,
    v4_mask: u32,
    v6_mask: u128,
    exempt: Vec<ipnet::IpNet>,
    keys: RandomState,
    epoch: Instant,
    /// Per slot: the second it counts (high 32 bits) and the answers sent in it (low 32).
    slots: Box<[AtomicU64]>,
    /// Answers sent truncated and answers dropped, since start.
    slipped: AtomicU64,
    dropped: AtomicU64,
}

impl Rrl {
    /// `None` when RRL is off.
    pub fn new(c: &RrlConfig) -> Option<Self> {
        if !c.enabled {
            return None;
        }
        let v4_mask = u32::MAX.checked_shl(32 - u32::from(c.ipv4_prefix_length)).unwrap_or(0);
        let v6_mask = u128::MAX
            .checked_shl(128 - u32::from(c.ipv6_prefix_length))
            .unwrap_or(0);
        Some(Self {
            rate: c.responses_per_second,
            slip: c.slip,
            v4_mask,
            v6_mask,
            exempt: c.exempt_prefixes(),
            keys: RandomState::new(),
            epoch: Instant::now(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            slipped: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Answers sent truncated and answers dropped since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.slipped.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Counts one answer of `kind` about `name` (and `rtype`) to `source`.
    pub fn check(&self, source: IpAddr, kind: Kind, name: &[u8], rtype: u16) -> Verdict {
        let prefix: (bool, u128) = match source {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4) & self.v4_mask)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (false, u128::from(u32::from(v4) & self.v4_mask)),
                None => (true, u128::from(v6) & self.v6_mask),
            },
        };
        if !self.exempt.is_empty() && self.exempt.iter().any(|net| net.contains(&source)) {
            return Verdict::Send;
        }
        let hash = self.keys.hash_one((prefix, kind, name, rtype));
        let slot = &self.slots[hash as usize % SLOTS];
        let now = self.epoch.elapsed().as_secs() as u32;
        let mut current = slot.load(Ordering::Relaxed);
        let count = loop {
            let (second, count) = ((current >> 32) as u32, current as u32);
            let next = if second == now {
                u64::from(now) << 32 | u64::from(count.saturating_add(1))
            } else {
                u64::from(now) << 32 | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next as u32,
                Err(seen) => current = seen,
            }
        };
        if count <= self.rate {
            Verdict::Send
        } else if self.slip > 0 && (count - self.rate).is_multiple_of(self.slip) {
            self.slipped.fetch_add(1, Ordering::Relaxed);
            Verdict::Slip
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, slip: u32) -> Rrl {
        let c = RrlConfig {
            enabled: true,
            responses_per_second: rate,
            slip,
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
            exempt: vec!["198.51.100.0/24".into()],
        };
        Rrl::new(&c).unwrap()
    }

    #[test]
    fn past_the_rate_every_slipth_answer_is_truncated_and_the_rest_dropped() {
        let r = rrl(5, 2);
        let src: IpAddr = "192.0.2.7".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..11).map(|_| r.check(src, Kind::NxDomain, b"\x04test", 1)).collect();
        assert!(verdicts[..5].iter().all(|v| *v == Verdict::Send));
        assert_eq!(
            &verdicts[5..],
            &[
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        // Same /24, same kind and name: the same budget. Another /24, another kind: their own.
        assert_ne!(
            r.check("192.0.2.200".parse().unwrap(), Kind::NxDomain, b"\x04test", 1),
            Verdict::Send
        );
        assert_eq!(
            r.check("192.0.3.7".parse().unwrap(), Kind::NxDomain, b"\x04test", 1),
            Verdict::Send
        );
        assert_eq!(r.check(src, Kind::Positive, b"\x04test", 1), Verdict::Send);
    }

    #[test]
    fn exempt_prefixes_and_slip_zero() {
        let r = rrl(1, 0);
        let exempt: IpAddr = "198.51.100.9".parse().unwrap();
        assert!((0..10).all(|_| r.check(exempt, Kind::Error, b"", 0) == Verdict::Send));
        let v6: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(r.check(v6, Kind::Error, b"", 0), Verdict::Send);
        assert_eq!(
            r.check("2001:db8:0:2::1".parse().unwrap(), Kind::Error, b"", 0),
            Verdict::Drop,
            "same /56, slip 0: dropped"
        );
    }
}
