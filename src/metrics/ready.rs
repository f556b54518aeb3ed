//! Readiness: what `/readyz` waits for before it says a load balancer may send traffic. The
//! start-up sets each step as it completes; the store's health is asked at each probe.

use std::sync::atomic::{AtomicBool, Ordering};

/// The start-up steps a server must have passed to take traffic.
#[derive(Debug, Default)]
pub struct Readiness {
    snapshots: AtomicBool,
    dns: AtomicBool,
    api: AtomicBool,
    stopping: AtomicBool,
}

impl Readiness {
    /// Every zone's snapshot is built: DNS answers what the store holds.
    pub fn snapshots_built(&self) {
        self.snapshots.store(true, Ordering::Release);
    }

    /// The DNS listeners answer.
    pub fn dns_serving(&self) {
        self.dns.store(true, Ordering::Release);
    }

    /// The API listener serves.
    pub fn api_serving(&self) {
        self.api.store(true, Ordering::Release);
    }

    /// The server drains to stop: no new traffic, please.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// What is not ready yet, in the order start-up does it; empty when all is.
    pub fn waiting_for(&self) -> Vec<&'static str> {
        [(&self.snapshots, "snapshots"), (&self.dns, "dns"), (&self.api, "api")]
            .into_iter()
            .filter(|(flag, _)| !flag.load(Ordering::Acquire))
            .map(|(_, what)| what)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn ready_once_every_step_is_done_in_whatever_order() {
        let r = Readiness::default();
        assert_eq!(r.waiting_for(), ["snapshots", "dns", "api"]);
        r.api_serving();
        r.snapshots_built();
        assert_eq!(r.waiting_for(), ["dns"]);
        r.dns_serving();
        assert!(r.waiting_for().is_empty());
        assert!(!r.is_stopping());
        r.stopping();
        assert!(r.is_stopping());
    }
}
