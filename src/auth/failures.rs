//! Failed verifications per token id and per client address, in fixed one-minute windows,
//! in bounded memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// The failure window.
pub(super) const WINDOW: Duration = Duration::from_secs(60);
/// Most ids and addresses whose failures are tracked; beyond it new ones are refused until
/// old windows expire (memory stays bounded whatever an attacker sends).
const MAX_TRACKED: usize = 100_000;

/// Who a failure counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Culprit {
    Token(Uuid),
    /// An IPv4 address, or the /64 of an IPv6 one.
    Address(IpAddr),
}

/// Failures per culprit in fixed one-minute windows.
#[derive(Default)]
pub(super) struct Failures(Mutex<HashMap<Culprit, (Instant, u32)>>);

impl Failures {
    /// When `who` has used its `limit` this window: how long until it may try again.
    pub(super) fn blocked(&self, who: Culprit, limit: u32) -> Option<Duration> {
        let map = self.0.lock().expect("failures");
        let (start, count) = *map.get(&who)?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (count >= limit).then_some(left)
    }

    pub(super) fn record(&self, who: Culprit) {
        let mut map = self.0.lock().expect("failures");
        if map.len() >= MAX_TRACKED && !map.contains_key(&who) {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let now = Instant::now();
        let entry = map.entry(who).or_insert((now, 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Whether a new culprit can be tracked at all (else it is refused, bounded memory).
    pub(super) fn full(&self, who: Culprit) -> bool {
        let map = self.0.lock().expect("failures");
        map.len() >= MAX_TRACKED && !map.contains_key(&who)
    }

    pub(super) fn prune(&self) {
        self.0
            .lock()
            .expect("failures")
            .retain(|_, (start, _)| start.elapsed() < WINDOW);
    }
}
