//! RFC 2136 UPDATE: signed with a team's TSIG key, checked against the key's policy, bounded
//! (records per message, messages per key per second), and handed to the store as one
//! transaction through the `Updater`, the only write this module can ask for. The response
//! leaves once the change is committed and served. A message seen again (a client's retry, or
//! a replay within the TSIG time window) gets the first one's answer and changes nothing.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use hickory_proto::op::{Edns, Metadata, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_server::server::Request;
use uuid::Uuid;

use super::Handler;
use super::keys::Key;
use super::respond::Responder;
use super::snapshot::Key as ZoneKey;
use crate::domain::DomainName;
use crate::domain::update::{Malformed, Update};
use crate::domain::update_plan::Unmet;
use crate::store::{MAX_BATCH_ITEMS, UpdateRefused, Updater};

/// Most prerequisite and update records one message may hold: as many items as an API batch.
pub const MAX_RECORDS: usize = MAX_BATCH_ITEMS;

/// How long a message is remembered: past its TSIG window it fails BADTIME anyway.
const REMEMBER: Duration = Duration::from_secs(2 * super::tsig::FUDGE as u64 + 30);

/// Messages remembered at most; past it the oldest are forgotten first.
const MAX_REMEMBERED: usize = 100_000;

type Limiter = RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock>;

/// What a message seen before got.
#[derive(Clone, Copy)]
enum Seen {
    InFlight,
    Answered(ResponseCode),
}

/// Messages seen recently, by key and request MAC (a MAC names one message of one key).
#[derive(Default)]
struct Remembered {
    seen: HashMap<(Uuid, Vec<u8>), Seen>,
    order: VecDeque<(Instant, (Uuid, Vec<u8>))>,
}

impl Remembered {
    fn forget_old(&mut self, now: Instant) {
        while let Some((at, id)) = self.order.front() {
            if now.duration_since(*at) < REMEMBER && self.order.len() < MAX_REMEMBERED {
                break;
            }
            self.seen.remove(id);
            self.order.pop_front();
        }
    }
}

/// The write door UPDATE goes through, and its bounds.
pub struct Updates {
    updater: Updater,
    per_key: Limiter,
    per_team: Limiter,
    remembered: Mutex<Remembered>,
}

fn limiter(per_second: u32) -> Limiter {
    RateLimiter::keyed(Quota::per_second(
        NonZeroU32::new(per_second.max(1)).expect("at least one"),
    ))
}

impl Updates {
    /// Applies UPDATEs through `updater`, at most `per_key` a second for each key and
    /// `per_team` for all of a team's keys (each also as a burst).
    pub fn new(updater: Updater, per_key: u32, per_team: u32) -> Self {
        Self {
            updater,
            per_key: limiter(per_key),
            per_team: limiter(per_team),
            remembered: Mutex::default(),
        }
    }

    /// Spends one UPDATE of `key`'s budget and its team's; `false` when either is spent.
    fn admit(&self, key: Uuid, team: Uuid) -> bool {
        self.per_key.check_key(&key).is_ok() && self.per_team.check_key(&team).is_ok()
    }

    /// Claims the message `(key, mac)`: `None` the first time, else what it got (or that it
    /// is still running).
    fn claim(&self, id: &(Uuid, Vec<u8>)) -> Option<Seen> {
        let now = Instant::now();
        let mut r = self.remembered.lock().expect("remembered lock");
        r.forget_old(now);
        if let Some(seen) = r.seen.get(id) {
            return Some(*seen);
        }
        r.seen.insert(id.clone(), Seen::InFlight);
        r.order.push_back((now, id.clone()));
        if r.order.len().is_multiple_of(1024) {
            self.per_key.retain_recent();
            self.per_team.retain_recent();
        }
        None
    }

    /// Records the answer to a claimed message; `None` forgets it (so a retry runs again).
    fn settle(&self, id: &(Uuid, Vec<u8>), answer: Option<ResponseCode>) {
        let mut r = self.remembered.lock().expect("remembered lock");
        match answer {
            Some(rcode) => {
                if let Some(seen) = r.seen.get_mut(id) {
                    *seen = Seen::Answered(rcode);
                }
            }
            None => {
                r.seen.remove(id);
            }
        }
    }
}

fn rcode_of(unmet: Unmet) -> ResponseCode {
    match unmet {
        Unmet::NameNotInUse => ResponseCode::NXDomain,
        Unmet::NameInUse => ResponseCode::YXDomain,
        Unmet::RrsetMissing => ResponseCode::NXRRSet,
        Unmet::RrsetPresent => ResponseCode::YXRRSet,
    }
}

impl Handler {
    /// Answers an UPDATE whose signature (if any) checked: `key` signed it, with `mac`.
    pub(super) async fn update(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        mut meta: Metadata,
        signer: Option<(Arc<Key>, Vec<u8>)>,
        responder: &mut Responder,
    ) {
        // `None`: the same message is being applied now, and its answer will go.
        let Some((rcode, remembered)) = self.update_rcode(request, signer).await else {
            return;
        };
        meta.response_code = rcode;
        if let (Some(updates), Some(id)) = (&self.updates, &remembered) {
            let final_answer = !matches!(rcode, ResponseCode::ServFail);
            updates.settle(id, final_answer.then_some(rcode));
        }
        responder.empty(request, edns, meta).await;
    }

    /// The rcode for an UPDATE, and the message's id when it was claimed; `None`: say nothing.
    async fn update_rcode(
        &self,
        request: &Request,
        signer: Option<(Arc<Key>, Vec<u8>)>,
    ) -> Option<(ResponseCode, Option<(Uuid, Vec<u8>)>)> {
        let refuse = |why: &str| {
            tracing::info!(client = %request.src(), why, "UPDATE refused");
            Some((ResponseCode::Refused, None))
        };
        let Some(updates) = &self.updates else {
            return refuse("UPDATE is not served here");
        };
        let Some((key, mac)) = signer else {
            return refuse("not signed: UPDATE needs a TSIG key");
        };
        let Some(row) = key.team_key().cloned() else {
            return refuse("a configured key is for transfers only");
        };
        let q = &request.queries.queries()[0];
        if q.query_type() != RecordType::SOA {
            return Some((ResponseCode::FormErr, None)); // ZTYPE must be SOA (RFC 2136 §3.1.1)
        }
        // A zone not served, another team's or outside the key's rules: all alike NOTAUTH.
        let zone = {
            let zones = self.zones.load();
            zones
                .find(&ZoneKey::from_name(q.name()))
                .filter(|z| z.origin == **q.name() && row.zones().contains(&z.id))
                .map(|z| (z.id, z.origin.to_ascii()))
        };
        let Some((zone_id, zone_name)) = zone else {
            return Some((ResponseCode::NotAuth, None));
        };
        let Ok(zone_name) = DomainName::parse(&zone_name) else {
            return Some((ResponseCode::NotAuth, None));
        };
        if request.answers.len() + request.authorities.len() > MAX_RECORDS {
            return refuse("more records than an UPDATE may hold");
        }
        if !updates.admit(row.id, row.team_id) {
            return refuse("the key's or its team's rate of UPDATEs is spent");
        }
        let update = match Update::parse(&zone_name, &request.answers, &request.authorities) {
            Ok(u) => u,
            Err(Malformed::Form(why)) => {
                tracing::info!(client = %request.src(), key = %row.name, why, "UPDATE malformed");
                return Some((ResponseCode::FormErr, None));
            }
            Err(Malformed::NotZone(name)) => {
                tracing::info!(client = %request.src(), key = %row.name, name, "UPDATE names a name outside its zone");
                return Some((ResponseCode::NotZone, None));
            }
            Err(Malformed::Refused(why)) => return refuse(&why),
        };
        if let Some(why) = update.beyond(&row, zone_id) {
            return refuse(&why);
        }
        let id = (row.id, mac);
        match updates.claim(&id) {
            Some(Seen::InFlight) => return None,
            Some(Seen::Answered(rcode)) => {
                tracing::info!(client = %request.src(), key = %row.name, %rcode, "UPDATE seen before: its first answer again");
                return Some((rcode, None));
            }
            None => {}
        }
        let rcode = match updates
            .updater
            .apply(row.clone(), zone_id, update, request.src().ip())
            .await
        {
            Ok(Ok(outcome)) => {
                let changes = outcome.changes.as_deref().unwrap_or("no change");
                tracing::info!(client = %request.src(), key = %row.name, zone = %zone_name, serial = outcome.serial, changes, "UPDATE applied");
                ResponseCode::NoError
            }
            Ok(Err(refused)) => {
                tracing::info!(client = %request.src(), key = %row.name, zone = %zone_name, ?refused, "UPDATE not applied");
                match refused {
                    UpdateRefused::NotAuth => ResponseCode::NotAuth,
                    UpdateRefused::Revoked | UpdateRefused::Refused(_) => ResponseCode::Refused,
                    UpdateRefused::Unmet(unmet) => rcode_of(unmet),
                }
            }
            Err(e) => {
                tracing::error!(key = %row.name, zone = %zone_name, error = %e, "UPDATE failed in the store");
                ResponseCode::ServFail
            }
        };
        Some((rcode, Some(id)))
    }
}
