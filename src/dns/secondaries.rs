//! How far behind each configured secondary (`[dns] also_notify`) is: from the moment a
//! zone changes until that secondary has transferred the new serial (or a later one) from
//! us, the pair is behind. What the metrics show as zones behind and lag per secondary.
//!
//! A secondary is known by its address: transfers are matched by their source address, so
//! a secondary that transfers from another address than the one it is notified at shows as
//! behind. Nothing is known at start-up: every secondary starts current.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::xfr::serial_gt;

/// Per secondary, the zones it lacks the newest serial of.
pub struct Secondaries {
    addrs: Vec<IpAddr>,
    /// (secondary, zone) → (the serial it needs, since when it is behind).
    behind: Mutex<HashMap<(usize, Uuid), (u32, Instant)>>,
}

/// One secondary's standing.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub addr: IpAddr,
    pub zones_behind: usize,
    /// Since the oldest change it has not transferred; zero when current.
    pub lag: Duration,
}

impl Secondaries {
    pub fn new(targets: &[SocketAddr]) -> Self {
        let mut addrs: Vec<IpAddr> = targets.iter().map(SocketAddr::ip).collect();
        addrs.sort();
        addrs.dedup();
        Self {
            addrs,
            behind: Mutex::default(),
        }
    }

    /// `zone` changed to `serial`: every secondary lacks it until it transfers it (a pair
    /// already behind keeps the time it fell behind).
    pub fn changed(&self, zone: Uuid, serial: u32) {
        let now = Instant::now();
        let mut behind = self.behind.lock().expect("secondaries");
        for i in 0..self.addrs.len() {
            behind
                .entry((i, zone))
                .and_modify(|(needed, _)| *needed = serial)
                .or_insert((serial, now));
        }
    }

    /// `zone` is gone: nobody can be behind on it.
    pub fn removed(&self, zone: Uuid) {
        self.behind.lock().expect("secondaries").retain(|(_, z), _| *z != zone);
    }

    /// `from` completed a transfer of `zone` at `serial`.
    pub fn transferred(&self, from: IpAddr, zone: Uuid, serial: u32) {
        let Some(i) = self.addrs.iter().position(|a| *a == from) else {
            return;
        };
        let mut behind = self.behind.lock().expect("secondaries");
        if let Some((needed, _)) = behind.get(&(i, zone))
            && !serial_gt(*needed, serial)
        {
            behind.remove(&(i, zone));
        }
    }

    /// Every secondary's standing, in address order.
    pub fn standings(&self) -> Vec<Standing> {
        let now = Instant::now();
        let behind = self.behind.lock().expect("secondaries");
        let mut out: Vec<Standing> = self
            .addrs
            .iter()
            .map(|&addr| Standing {
                addr,
                zones_behind: 0,
                lag: Duration::ZERO,
            })
            .collect();
        for ((i, _), (_, since)) in behind.iter() {
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
    fn a_secondary_is_behind_from_a_change_until_it_transfers_that_serial_or_a_later_one() {
        let s = Secondaries::new(&["192.0.2.1:53".parse().unwrap(), "192.0.2.2:5300".parse().unwrap()]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(s.standings().iter().all(|x| x.zones_behind == 0 && x.lag.is_zero()));
        s.changed(a, 5);
        s.changed(b, 9);
        s.changed(a, 6);
        assert_eq!(s.standings()[0].zones_behind, 2);
        s.transferred(one, a, 5);
        assert_eq!(s.standings()[0].zones_behind, 2, "an older serial does not catch up");
        s.transferred(one, a, 6);
        s.transferred("198.51.100.1".parse().unwrap(), b, 9); // not a secondary of ours
        let st = s.standings();
        assert_eq!((st[0].zones_behind, st[1].zones_behind), (1, 2));
        assert!(st[1].lag >= st[0].lag);
        s.removed(b);
        assert_eq!(s.standings()[0].zones_behind, 0);
        assert_eq!(s.standings()[0].lag, Duration::ZERO);
        // Serial arithmetic: a wrapped serial is later.
        s.changed(a, u32::MAX);
        s.transferred(one, a, 3);
        assert_eq!(s.standings()[0].zones_behind, 0);
    }
}
