//! What each configured secondary (`[dns] also_notify`) serves: per zone, the newest serial
//! it was seen serving, and, from the moment a zone changes until it serves the new serial,
//! that it is behind. What `GET /v1/zones/{id}` shows as `propagated` and the metrics as
//! zones behind and lag per secondary.
//!
//! A secondary is seen serving a serial when it answers our SOA query with it (the notifier
//! asks after each NOTIFY, and at start for every zone), when it completes a transfer of it,
//! and when it asks for an IXFR from it. Transfers and IXFR requests are matched by source
//! address, and only count when one configured secondary has that address (several on one
//! address are told apart by their SOA answers alone). Nothing is known at start-up: a zone
//! is not propagated until its secondaries were asked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::xfr::serial_gt;

/// Per secondary and zone, what it serves and whether it is behind.
pub struct Secondaries {
    targets: Vec<SocketAddr>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// (secondary, zone) → the newest serial it was seen serving.
    served: HashMap<(usize, Uuid), u32>,
    /// (secondary, zone) → (the serial it needs, since when it is behind).
    behind: HashMap<(usize, Uuid), (u32, Instant)>,
}

/// One secondary's standing.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub addr: SocketAddr,
    pub zones_behind: usize,
    /// Since the oldest change it does not serve yet; zero when current.
    pub lag: Duration,
}

/// What one secondary serves of one zone, for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneStanding {
    pub addr: SocketAddr,
    /// The newest serial it was seen serving, if any.
    pub serial: Option<u32>,
    /// Since when it lacks the zone's newest serial, if it does.
    pub behind_for: Option<Duration>,
}

impl Secondaries {
    pub fn new(targets: &[SocketAddr]) -> Self {
        let mut targets = targets.to_vec();
        targets.sort();
        targets.dedup();
        Self {
            targets,
            state: Mutex::default(),
        }
    }

    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("secondaries")
    }

    /// `zone` changed to `serial`: every secondary that does not serve it is behind until it
    /// does (a pair already behind keeps the time it fell behind).
    pub fn changed(&self, zone: Uuid, serial: u32) {
        let now = Instant::now();
        let mut state = self.lock();
        for i in 0..self.targets.len() {
            if state.served.get(&(i, zone)).is_some_and(|s| !serial_gt(serial, *s)) {
                continue;
            }
            state
                .behind
                .entry((i, zone))
                .and_modify(|(needed, _)| *needed = serial)
                .or_insert((serial, now));
        }
    }

    /// `zone` is gone: nobody serves it or is behind on it.
    pub fn removed(&self, zone: Uuid) {
        let mut state = self.lock();
        state.served.retain(|(_, z), _| *z != zone);
        state.behind.retain(|(_, z), _| *z != zone);
    }

    /// Secondary `i` answered our SOA query for `zone` with `serial`.
    pub fn served(&self, i: usize, zone: Uuid, serial: u32) {
        let mut state = self.lock();
        let newest = match state.served.get(&(i, zone)) {
            Some(&s) if serial_gt(s, serial) => s,
            _ => serial,
        };
        state.served.insert((i, zone), newest);
        if let Some((needed, _)) = state.behind.get(&(i, zone))
            && !serial_gt(*needed, newest)
        {
            state.behind.remove(&(i, zone));
        }
    }

    /// A client at `from` completed a transfer of `zone` at `serial`, or asked for an IXFR
    /// from it: the secondary at that address serves it, if it is the only one there.
    pub fn seen(&self, from: IpAddr, zone: Uuid, serial: u32) {
        let mut at = (0..self.targets.len()).filter(|&i| self.targets[i].ip() == from);
        if let (Some(only), None) = (at.next(), at.next()) {
            self.served(only, zone, serial);
        }
    }

    /// Secondary `i` was found not serving `zone` at `serial`: behind from now, unless it
    /// already was.
    pub fn lacks(&self, i: usize, zone: Uuid, serial: u32) {
        self.lock()
            .behind
            .entry((i, zone))
            .and_modify(|(needed, _)| *needed = serial)
            .or_insert((serial, Instant::now()));
    }

    /// Whether secondary `i` serves `zone` at `serial` or later.
    pub fn serves(&self, i: usize, zone: Uuid, serial: u32) -> bool {
        self.lock()
            .served
            .get(&(i, zone))
            .is_some_and(|s| !serial_gt(serial, *s))
    }

    /// Whether every secondary serves `zone` at `serial` or later (true when there are none).
    pub fn propagated(&self, zone: Uuid, serial: u32) -> bool {
        let state = self.lock();
        (0..self.targets.len()).all(|i| state.served.get(&(i, zone)).is_some_and(|s| !serial_gt(serial, *s)))
    }

    /// What each secondary serves of `zone`.
    pub fn zone(&self, zone: Uuid) -> Vec<ZoneStanding> {
        let now = Instant::now();
        let state = self.lock();
        self.targets
            .iter()
            .enumerate()
            .map(|(i, &addr)| ZoneStanding {
                addr,
                serial: state.served.get(&(i, zone)).copied(),
                behind_for: state.behind.get(&(i, zone)).map(|(_, since)| now - *since),
            })
            .collect()
    }

    /// The (secondary, zone) pairs behind, the longest behind first, at most `limit`.
    pub fn behind(&self, limit: usize) -> Vec<(usize, Uuid)> {
        let state = self.lock();
        let mut pairs: Vec<_> = state.behind.iter().map(|(k, (_, since))| (*since, *k)).collect();
        pairs.sort();
        pairs.into_iter().take(limit).map(|(_, k)| k).collect()
    }

    /// Every secondary's standing, in address order.
    pub fn standings(&self) -> Vec<Standing> {
        let now = Instant::now();
        let state = self.lock();
        let mut out: Vec<Standing> = self
            .targets
            .iter()
            .map(|&addr| Standing {
                addr,
                zones_behind: 0,
                lag: Duration::ZERO,
            })
            .collect();
        for ((i, _), (_, since)) in state.behind.iter() {
            let s = &mut out[*i];
            s.zones_behind += 1;
            s.lag = s.lag.max(now - *since);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secondary_is_behind_from_a_change_until_it_serves_that_serial_or_a_later_one() {
        let s = Secondaries::new(&["192.0.2.1:53".parse().unwrap(), "192.0.2.2:5300".parse().unwrap()]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(s.standings().iter().all(|x| x.zones_behind == 0 && x.lag.is_zero()));
        s.changed(a, 5);
        s.changed(b, 9);
        s.changed(a, 6);
        assert_eq!(s.standings()[0].zones_behind, 2);
        s.seen(one, a, 5);
        assert_eq!(s.standings()[0].zones_behind, 2, "an older serial does not catch up");
        s.seen(one, a, 6);
        s.seen("198.51.100.1".parse().unwrap(), b, 9); // not a secondary of ours
        let st = s.standings();
        assert_eq!((st[0].zones_behind, st[1].zones_behind), (1, 2));
        assert!(st[1].lag >= st[0].lag);
        s.removed(b);
        assert_eq!(s.standings()[0].zones_behind, 0);
        assert_eq!(s.standings()[0].lag, Duration::ZERO);
        // Serial arithmetic: a wrapped serial is later.
        s.changed(a, u32::MAX);
        s.seen(one, a, 3);
        assert_eq!(s.standings()[0].zones_behind, 0);
    }

    #[test]
    fn a_zone_is_propagated_once_every_secondary_serves_its_serial() {
        let s = Secondaries::new(&["127.0.0.1:5301".parse().unwrap(), "127.0.0.1:5302".parse().unwrap()]);
        let z = Uuid::new_v4();
        assert!(!s.propagated(z, 7), "nothing known at start");
        assert!(
            Secondaries::new(&[]).propagated(z, 7),
            "no secondaries: nothing to wait for"
        );
        s.changed(z, 7);
        s.seen("127.0.0.1".parse().unwrap(), z, 7);
        assert!(
            !s.propagated(z, 7),
            "two secondaries on one address: a transfer names neither"
        );
        s.served(0, z, 7);
        assert!(!s.propagated(z, 7));
        s.served(1, z, 8);
        assert!(s.propagated(z, 7) && !s.propagated(z, 8), "the one at 7 is behind 8");
        s.served(1, z, 6);
        assert!(s.serves(1, z, 8), "an older answer does not take back what was seen");
        let view = s.zone(z);
        assert_eq!((view[0].serial, view[1].serial), (Some(7), Some(8)));
        assert!(view.iter().all(|v| v.behind_for.is_none()));
        s.changed(z, 9);
        assert_eq!(s.behind(10).len(), 2);
        assert!(s.zone(z)[0].behind_for.is_some());
        s.removed(z);
        assert!(!s.propagated(z, 9) && s.behind(10).is_empty());
    }
}
