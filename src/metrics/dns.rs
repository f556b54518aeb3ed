//! DNS answer counters, cheap enough for the hot path: every thread that answers writes its
//! own shard of plain atomics (no lock, no allocation, no read-modify-write: a shard has one
//! writer, so a relaxed load and store count), indexed by small fixed enums, and the scraper
//! sums the shards. Labels are bounded by construction: 2 transports × 18 query types × 9
//! outcomes, and a latency histogram with fixed buckets per transport.
//!
//! Two ways in: `DnsMetrics::record` from any thread (it finds the calling thread's shard in
//! a thread-local), or a `Worker` a thread owns (no lookup at all) for a loop of its own.

use std::cell::RefCell;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp = 0,
    Tcp = 1,
}

const PROTOS: [&str; 2] = ["udp", "tcp"];

/// Query types with series of their own; every other type counts as `other`, so a client
/// cannot make new series by asking for odd types. Zone transfers last: they are not timed.
const QTYPES: [(u16, &str); 17] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (257, "CAA"),
    (255, "ANY"),
    (251, "IXFR"),
    (252, "AXFR"),
];
const TYPES: usize = QTYPES.len() + 1;
const OTHER: usize = QTYPES.len();
/// The indexes of IXFR and AXFR: counted, not timed.
const TRANSFERS: std::ops::RangeInclusive<usize> = 15..=16;
const CAA: usize = 13;

/// The index in `QTYPES` of every type below 256 (`OTHER` for the rest), made at compile time:
/// one load per answer instead of a chain of compares.
const TYPE_INDEX: [u8; 256] = {
    let mut table = [OTHER as u8; 256];
    let mut i = 0;
    while i < QTYPES.len() {
        if QTYPES[i].0 < 256 {
            table[QTYPES[i].0 as usize] = i as u8;
        }
        i += 1;
    }
    table
};

/// Response codes with series of their own (the header's four bits); the rest are `other`,
/// and a request left unanswered (dropped by rate limiting, or never answered) is `none`.
const RCODES: [&str; 9] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "NOTAUTH", "other", "none",
];
const NO_RESPONSE: usize = 8;
/// The index in `RCODES` of each value of the header's four bits (9 is NOTAUTH).
const RCODE_INDEX: [u8; 16] = [0, 1, 2, 3, 4, 5, 7, 7, 7, 6, 7, 7, 7, 7, 7, 7];

/// Upper bounds of the latency buckets, in nanoseconds (and as Prometheus writes them).
const BUCKETS: [(u64, &str); 14] = [
    (10_000, "1e-05"),
    (25_000, "2.5e-05"),
    (50_000, "5e-05"),
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (100_000_000, "0.1"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
];
/// The buckets and the one past the last bound (+Inf).
const SLOTS: usize = BUCKETS.len() + 1;

/// Most shards made for threads found by `record`; threads past it share one, counted with
/// read-modify-writes. Only the answering threads (UDP, the runtime's workers) ever record,
/// so this is never reached in a server; it bounds what a stray caller could cost.
const MAX_SHARDS: usize = 256;

/// The index of `qtype` in `QTYPES`, `OTHER` past them.
#[inline]
fn qtype_index(qtype: u16) -> usize {
    match TYPE_INDEX.get(usize::from(qtype)) {
        Some(&i) => usize::from(i),
        None if qtype == 257 => CAA,
        None => OTHER,
    }
}

#[inline]
fn rcode_index(rcode: Option<u8>) -> usize {
    match rcode {
        Some(r) => usize::from(RCODE_INDEX[usize::from(r & 0x0F)]),
        None => NO_RESPONSE,
    }
}

/// A linear scan: real answers take microseconds, so it stops at the first bound or two.
fn bucket_index(nanos: u64) -> usize {
    BUCKETS
        .iter()
        .position(|(bound, _)| nanos <= *bound)
        .unwrap_or(BUCKETS.len())
}

/// A point in time for timing answers: the monotonic clock in nanoseconds, read with one
/// `clock_gettime` (the vDSO, no system call) and subtracted as plain integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    #[inline]
    pub fn now() -> Self {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the timespec we pass; CLOCK_MONOTONIC always exists.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        Self(
            (ts.tv_sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(ts.tv_nsec as u64),
        )
    }

    /// Nanoseconds from `self` to now.
    #[inline]
    pub fn elapsed_nanos(self) -> u64 {
        Self::now().0.saturating_sub(self.0)
    }
}

/// One thread's counters, on cache lines of their own.
#[repr(align(128))]
struct Shard {
    /// [proto][type][outcome]
    answers: [AtomicU64; 2 * TYPES * RCODES.len()],
    /// [proto][bucket]
    latency: [AtomicU64; 2 * SLOTS],
    latency_nanos: [AtomicU64; 2],
}

impl Shard {
    fn new() -> Self {
        Self {
            answers: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_nanos: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Adds to a counter: a plain load and store when the shard has one writer, else an
/// atomic add.
#[inline]
fn add(counter: &AtomicU64, n: u64, exclusive: bool) {
    if exclusive {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    } else {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A thread's handle on a shard of its own. Not `Clone` and not `Sync`: one writer.
pub struct Worker {
    shard: Arc<Shard>,
    exclusive: bool,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl Worker {
    /// Counts one request of `qtype` over `proto`, answered with `rcode` (the header's four
    /// bits) or not answered (`None`), `nanos` after it arrived. Zone transfers stay out of
    /// the latency histogram: they last as long as the zone is large.
    #[inline]
    pub fn answered(&self, proto: Proto, qtype: u16, rcode: Option<u8>, nanos: u64) {
        let p = proto as usize;
        let t = qtype_index(qtype);
        add(
            &self.shard.answers[(p * TYPES + t) * RCODES.len() + rcode_index(rcode)],
            1,
            self.exclusive,
        );
        if TRANSFERS.contains(&t) || rcode.is_none() {
            return;
        }
        add(&self.shard.latency[p * SLOTS + bucket_index(nanos)], 1, self.exclusive);
        add(&self.shard.latency_nanos[p], nanos, self.exclusive);
    }

    /// `answered` for every (type, rcode) of a batch that took `nanos` from arrival to
    /// send: the same counts, with the latency bucket found once for the batch.
    #[inline]
    pub fn answered_batch(&self, proto: Proto, answers: &[(u16, Option<u8>)], nanos: u64) {
        let p = proto as usize;
        let mut timed = 0;
        for &(qtype, rcode) in answers {
            let t = qtype_index(qtype);
            add(
                &self.shard.answers[(p * TYPES + t) * RCODES.len() + rcode_index(rcode)],
                1,
                self.exclusive,
            );
            timed += u64::from(!TRANSFERS.contains(&t) && rcode.is_some());
        }
        if timed > 0 {
            add(
                &self.shard.latency[p * SLOTS + bucket_index(nanos)],
                timed,
                self.exclusive,
            );
            add(&self.shard.latency_nanos[p], nanos * timed, self.exclusive);
        }
    }
}

/// Every shard of one server.
pub struct DnsMetrics {
    /// Tells this server's workers from others' in a thread's `LOCAL` (never reused).
    id: u64,
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Shared by the threads past `MAX_SHARDS`.
    overflow: Arc<Shard>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's workers, one per server it answers for (one, outside tests), with the
    /// server's id and a weak handle to let go of the workers of servers that are gone.
    static LOCAL: RefCell<Vec<(u64, Weak<DnsMetrics>, Worker)>> = const { RefCell::new(Vec::new()) };
}

impl DnsMetrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::default(),
            overflow: Arc::new(Shard::new()),
        })
    }

    /// A shard for the calling thread to own (a UDP thread's loop, say).
    pub fn worker(&self) -> Worker {
        let mut shards = self.shards.lock().expect("dns metrics shards");
        if shards.len() >= MAX_SHARDS {
            return Worker {
                shard: self.overflow.clone(),
                exclusive: false,
                _not_sync: std::marker::PhantomData,
            };
        }
        let shard = Arc::new(Shard::new());
        shards.push(shard.clone());
        Worker {
            shard,
            exclusive: true,
            _not_sync: std::marker::PhantomData,
        }
    }

    /// `Worker::answered` on the calling thread's shard, timed from `started`.
    #[inline]
    pub fn record(self: &Arc<Self>, proto: Proto, qtype: u16, rcode: Option<u8>, started: Stamp) {
        let nanos = started.elapsed_nanos();
        LOCAL.with_borrow_mut(|workers| {
            if let Some((_, _, w)) = workers.iter().find(|(id, _, _)| *id == self.id) {
                return w.answered(proto, qtype, rcode, nanos);
            }
            workers.retain(|(_, m, _)| m.strong_count() > 0);
            let w = self.worker();
            w.answered(proto, qtype, rcode, nanos);
            workers.push((self.id, Arc::downgrade(self), w));
        });
    }

    /// Sums the shards.
    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let shards = self.shards.lock().expect("dns metrics shards").clone();
        for shard in shards.iter().chain([&self.overflow]) {
            for (sum, c) in t.answers.iter_mut().zip(&shard.answers) {
                *sum += c.load(Ordering::Relaxed);
            }
            for (sum, c) in t.latency.iter_mut().zip(&shard.latency) {
                *sum += c.load(Ordering::Relaxed);
            }
            for (sum, c) in t.latency_nanos.iter_mut().zip(&shard.latency_nanos) {
                *sum += c.load(Ordering::Relaxed);
            }
        }
        t
    }

    /// Appends the counters in the Prometheus text format. Series that never counted are
    /// left out; the histogram is always there.
    pub fn render(&self, out: &mut String) {
        let t = self.totals();
        let type_name = |i: usize| QTYPES.get(i).map_or("other", |(_, n)| n);
        out.push_str("# HELP ipx_dns_requests_total DNS requests received, by transport and query type.\n");
        out.push_str("# TYPE ipx_dns_requests_total counter\n");
        for (p, proto) in PROTOS.iter().enumerate() {
            for ty in 0..TYPES {
                let at = (p * TYPES + ty) * RCODES.len();
                let n: u64 = t.answers[at..at + RCODES.len()].iter().sum();
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "ipx_dns_requests_total{{proto=\"{proto}\",type=\"{}\"}} {n}",
                        type_name(ty)
                    );
                }
            }
        }
        out.push_str("# HELP ipx_dns_responses_total DNS requests by transport, query type and response code (rcode \"none\": not answered).\n");
        out.push_str("# TYPE ipx_dns_responses_total counter\n");
        for (p, proto) in PROTOS.iter().enumerate() {
            for ty in 0..TYPES {
                for (r, rcode) in RCODES.iter().enumerate() {
                    let n = t.answers[(p * TYPES + ty) * RCODES.len() + r];
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "ipx_dns_responses_total{{proto=\"{proto}\",type=\"{}\",rcode=\"{rcode}\"}} {n}",
                            type_name(ty)
                        );
                    }
                }
            }
        }
        out.push_str("# HELP ipx_dns_request_duration_seconds Time from a query's arrival to its answer, zone transfers aside.\n");
        out.push_str("# TYPE ipx_dns_request_duration_seconds histogram\n");
        for (p, proto) in PROTOS.iter().enumerate() {
            let mut cumulative = 0;
            for (b, (_, le)) in BUCKETS.iter().enumerate() {
                cumulative += t.latency[p * SLOTS + b];
                let _ = writeln!(
                    out,
                    "ipx_dns_request_duration_seconds_bucket{{proto=\"{proto}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += t.latency[p * SLOTS + BUCKETS.len()];
            let _ = writeln!(
                out,
                "ipx_dns_request_duration_seconds_bucket{{proto=\"{proto}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = t.latency_nanos[p] as f64 / 1e9;
            let _ = writeln!(out, "ipx_dns_request_duration_seconds_sum{{proto=\"{proto}\"}} {sum}");
            let _ = writeln!(
                out,
                "ipx_dns_request_duration_seconds_count{{proto=\"{proto}\"}} {cumulative}"
            );
        }
    }
}

struct Totals {
    answers: [u64; 2 * TYPES * RCODES.len()],
    latency: [u64; 2 * SLOTS],
    latency_nanos: [u64; 2],
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            answers: [0; 2 * TYPES * RCODES.len()],
            latency: [0; 2 * SLOTS],
            latency_nanos: [0; 2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn counts_from_many_threads_add_up_and_odd_types_and_rcodes_share_a_series() {
        let m = DnsMetrics::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let m = m.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        m.record(Proto::Udp, 1, Some(0), Stamp::now());
                    }
                    m.record(Proto::Tcp, 65_000, Some(3), Stamp::now());
                    m.record(Proto::Tcp, 12_345, Some(11), Stamp::now());
                    m.record(Proto::Udp, 28, None, Stamp::now());
                });
            }
        });
        let w = m.worker();
        w.answered(Proto::Udp, 1, Some(5), 30_000);
        let mut text = String::new();
        m.render(&mut text);
        assert_eq!(
            line(&text, "ipx_dns_requests_total{proto=\"udp\",type=\"A\"}"),
            Some("4001")
        );
        assert_eq!(
            line(
                &text,
                "ipx_dns_responses_total{proto=\"udp\",type=\"A\",rcode=\"NOERROR\"}"
            ),
            Some("4000")
        );
        assert_eq!(
            line(
                &text,
                "ipx_dns_responses_total{proto=\"udp\",type=\"A\",rcode=\"REFUSED\"}"
            ),
            Some("1")
        );
        assert_eq!(
            line(&text, "ipx_dns_requests_total{proto=\"tcp\",type=\"other\"}"),
            Some("8")
        );
        assert_eq!(
            line(
                &text,
                "ipx_dns_responses_total{proto=\"tcp\",type=\"other\",rcode=\"other\"}"
            ),
            Some("4")
        );
        assert_eq!(
            line(
                &text,
                "ipx_dns_responses_total{proto=\"udp\",type=\"AAAA\",rcode=\"none\"}"
            ),
            Some("4")
        );
        // Unanswered requests are not timed.
        assert_eq!(
            line(&text, "ipx_dns_request_duration_seconds_count{proto=\"udp\"}"),
            Some("4001")
        );
        assert_eq!(
            line(&text, "ipx_dns_request_duration_seconds_count{proto=\"tcp\"}"),
            Some("8")
        );
        assert!(
            !text.contains("type=\"A\",rcode=\"SERVFAIL\""),
            "series that never counted are left out"
        );
    }

    #[test]
    fn the_type_index_matches_the_type_table() {
        for (i, (t, _)) in QTYPES.iter().enumerate() {
            assert_eq!(qtype_index(*t), i, "type {t}");
        }
        assert_eq!(qtype_index(0), OTHER);
        assert_eq!(qtype_index(256), OTHER);
        assert_eq!(qtype_index(65_535), OTHER);
        assert_eq!(
            (QTYPES[*TRANSFERS.start()].1, QTYPES[*TRANSFERS.end()].1),
            ("IXFR", "AXFR")
        );
        let names: Vec<&str> = (0..16).map(|r| RCODES[rcode_index(Some(r))]).collect();
        assert_eq!(
            &names[..7],
            [
                "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"
            ]
        );
        assert_eq!(names[9], "NOTAUTH");
        assert_eq!(RCODES[rcode_index(None)], "none");
    }

    #[test]
    fn latency_buckets_are_cumulative_and_the_sum_is_in_seconds() {
        let m = DnsMetrics::new();
        let w = m.worker();
        for nanos in [5_000, 10_000, 10_001, 2_000_000, 3_000_000_000] {
            w.answered(Proto::Udp, 1, Some(0), nanos);
        }
        w.answered(Proto::Tcp, 252, Some(0), 9_000_000_000); // AXFR: counted, not timed
        let mut text = String::new();
        m.render(&mut text);
        let bucket = |le: &str| {
            line(
                &text,
                &format!("ipx_dns_request_duration_seconds_bucket{{proto=\"udp\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("1e-05"), Some("2"));
        assert_eq!(bucket("2.5e-05"), Some("3"));
        assert_eq!(bucket("0.0025"), Some("4"));
        assert_eq!(bucket("1"), Some("4"));
        assert_eq!(bucket("+Inf"), Some("5"));
        assert_eq!(
            line(&text, "ipx_dns_request_duration_seconds_sum{proto=\"udp\"}"),
            Some("3.002025001")
        );
        assert_eq!(
            line(&text, "ipx_dns_request_duration_seconds_count{proto=\"tcp\"}"),
            Some("0")
        );
        assert_eq!(
            line(&text, "ipx_dns_requests_total{proto=\"tcp\",type=\"AXFR\"}"),
            Some("1")
        );
    }

    #[test]
    fn a_batch_counts_what_its_answers_one_by_one_would() {
        let batch = [(1, Some(0)), (28, Some(3)), (252, Some(0)), (1, None), (16, Some(0))];
        let (one, all) = (DnsMetrics::new(), DnsMetrics::new());
        let w = one.worker();
        for &(t, r) in &batch {
            w.answered(Proto::Udp, t, r, 40_000);
        }
        all.worker().answered_batch(Proto::Udp, &batch, 40_000);
        let render = |m: &DnsMetrics| {
            let mut text = String::new();
            m.render(&mut text);
            text
        };
        assert_eq!(render(&one), render(&all));
        assert!(render(&all).contains("ipx_dns_request_duration_seconds_count{proto=\"udp\"} 3\n"));
    }

    #[test]
    fn a_thread_answering_for_two_servers_counts_each_in_its_own() {
        let (a, b) = (DnsMetrics::new(), DnsMetrics::new());
        a.record(Proto::Udp, 1, Some(0), Stamp::now());
        b.record(Proto::Udp, 1, Some(0), Stamp::now());
        b.record(Proto::Udp, 1, Some(0), Stamp::now());
        drop(a);
        let c = DnsMetrics::new();
        c.record(Proto::Udp, 1, Some(0), Stamp::now());
        let count = |m: &DnsMetrics| {
            let mut text = String::new();
            m.render(&mut text);
            line(&text, "ipx_dns_requests_total{proto=\"udp\",type=\"A\"}").map(str::to_string)
        };
        assert_eq!(count(&b).as_deref(), Some("2"));
        assert_eq!(count(&c).as_deref(), Some("1"));
        assert!(
            LOCAL.with_borrow(|w| w.iter().all(|(_, m, _)| m.strong_count() > 0)),
            "the dropped server's worker is let go"
        );
    }
}
