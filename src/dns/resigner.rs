//! The background side of signing: every `resign_interval_secs` it looks at a slice of each
//! signed zone's chain (the whole chain once per sweep) and asks the store to sign again the
//! names whose signatures come due, and it moves rollovers on when their next step is due.
//! Both are ordinary writes of the store (serial bumped, journaled, published signed), so
//! secondaries get the new signatures by IXFR. A zone is never signed in one burst: only
//! what is due in the slice, and signatures were spread over days when they were made
//! (`Policy::window`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Zones;
use super::signer::{Clock, due};
use crate::config::DnssecConfig;
use crate::domain::{Actor, Timestamp};
use crate::metrics::Metrics;
use crate::store::Store;

/// Names one write signs again at most; the rest wait for the next round.
const MAX_NAMES_PER_WRITE: usize = 2_000;
/// The longest a sweep of a zone takes: every name is looked at this often.
const MAX_SWEEP_SECS: u64 = 86_400;

/// Runs until `stop` turns true; failures are counted in `metrics` when it is on.
pub fn start(
    store: Store,
    zones: Arc<Zones>,
    config: DnssecConfig,
    metrics: Option<Arc<Metrics>>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut cursors: HashMap<Uuid, Vec<u8>> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(config.resign_interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let failed = |kind| {
                if let Some(m) = &metrics {
                    m.dnssec_failed(kind);
                }
            };
            round(&store, &zones, &config, &mut cursors, failed).await;
        }
    })
}

/// One look at every signed zone.
async fn round(
    store: &Store,
    zones: &Zones,
    config: &DnssecConfig,
    cursors: &mut HashMap<Uuid, Vec<u8>>,
    failed: impl Fn(&'static str),
) {
    let map = zones.load();
    let clock = Clock::now(config.policy());
    // A sweep takes at most a quarter of the refresh time, so a due signature is met well
    // before it expires.
    let sweep = (config.signature_refresh_secs / 4).clamp(1, MAX_SWEEP_SECS);
    let rounds = (sweep / config.resign_interval_secs).max(1) as usize;
    cursors.retain(|id, _| map.by_id(*id).is_some());
    for zone in map.zones() {
        let Some(state) = &zone.dnssec else { continue };
        if state
            .rollover
            .as_ref()
            .and_then(|r| r.next_step_at)
            .or(state.unsign_at)
            .is_some_and(|at| at <= Timestamp::now())
        {
            let (id, ttl) = (zone.id, config.dnskey_ttl);
            if let Err(e) = store
                .write_as(Actor::operator(), move |tx| tx.dnssec_step(id, ttl))
                .await
            {
                tracing::error!(zone = %zone.origin, error = %e, "a DNSSEC step failed; tried again next round");
                failed("step");
            }
        }
        if zone.keys.zone_signers().is_empty() {
            failed("keys"); // logged at start-up; its signatures will run out
            continue;
        }
        let chain_len = match zone.signed.as_ref().map(|s| &s.chain) {
            Some(super::signed::Chain::Nsec3(c)) => c.len(),
            Some(super::signed::Chain::Nsec(c)) => c.len(),
            None => continue,
        };
        // At most what one write signs, so every name looked at is signed if due (a zone of
        // millions of names then takes more rounds per sweep rather than skipping names).
        let visit = chain_len.div_ceil(rounds).clamp(1, MAX_NAMES_PER_WRITE);
        let cursor = cursors.get(&zone.id).map(Vec::as_slice);
        let (names, next) = due(zone, cursor, visit, &clock);
        match next {
            Some(n) => cursors.insert(zone.id, n),
            None => cursors.remove(&zone.id),
        };
        if names.is_empty() {
            continue;
        }
        let (id, count) = (zone.id, names.len());
        match store.write_as(Actor::operator(), move |tx| tx.resign(id, names)).await {
            Ok(_) => tracing::debug!(zone = %zone.origin, names = count, "signed again what came due"),
            Err(e) => {
                tracing::error!(zone = %zone.origin, error = %e, "re-signing failed; tried again next round");
                failed("resign");
            }
        }
    }
}
