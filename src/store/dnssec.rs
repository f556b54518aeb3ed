//! A zone's DNSSEC in the store: its keys (sealed), its state in the zone's row, the managed
//! apex records its keys publish (DNSKEY, CDS, CDNSKEY, NSEC3PARAM), and the signed data
//! derived from its records (`SIGNED`), written by the writer in the transaction of the
//! change it comes from. Each state change is one transaction that touches the zone (serial,
//! journal, audit), so DNS, transfers and the API's ETag all see it.

use hickory_proto::rr::RecordType;
use redb::{ReadableTable, WriteTransaction};
use uuid::Uuid;

use super::read::Tables;
use super::records::{put_record, remove_record};
use super::tables::{DNSSEC_KEYS, JOURNAL, SIGNED};
use super::{Change, Reader, Result, SignedDelta, SignedRecords, StoreError, WriteCtx};
use crate::dnssec::records::{TYPES, published};
use crate::domain::{
    DnssecKey, KeyState, NewRecord, Record, RecordData, ResourceKind, Rollover, Step, Timestamp, Waits, Zone,
    ZoneDnssec, ZoneState,
};

impl<T: Tables> Reader<T> {
    /// A zone's keys, oldest first.
    pub fn dnssec_keys(&self, zone: Uuid) -> Result<Vec<DnssecKey>> {
        let z = zone.as_u128();
        let t = self.txn.table(DNSSEC_KEYS)?;
        t.range((z, 0)..=(z, u128::MAX))?.map(|e| Ok(e?.1.value())).collect()
    }

    /// Every stored row of a zone's signed data, in key order.
    pub fn each_signed(&self, zone: Uuid, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let z = zone.as_u128();
        let t = self.txn.table(SIGNED)?;
        for entry in t.range((z, &[][..])..(z.wrapping_add(1), &[][..]))? {
            let (k, v) = entry?;
            f(k.value().1, v.value());
        }
        Ok(())
    }

    /// The zone of `team`, signed; `409 dnssec_off` otherwise.
    fn signed_zone(&self, team: Uuid, zone_id: Uuid) -> Result<(Zone, ZoneDnssec)> {
        let zone = self.team_zone(team, zone_id)?;
        match zone.dnssec.clone() {
            Some(d) => Ok((zone, d)),
            None => Err(StoreError::conflict(
                "dnssec_off",
                format!("{} is not signed; turn DNSSEC on first", zone.name),
            )),
        }
    }
}

/// Stores what signing derived from a batch (`SignedDelta`), in its transaction: the zone's
/// signed rows, and the derived records joined to the journal entry of the change (or the
/// entry dropped when they are too many: a secondary then transfers the whole zone).
pub(crate) fn store_signed(txn: &WriteTransaction, deltas: &[SignedDelta]) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut rows = txn.open_table(SIGNED)?;
    let mut journal = txn.open_table(JOURNAL)?;
    for d in deltas {
        let z = d.zone.as_u128();
        if d.clear {
            rows.retain_in((z, &[][..])..(z.wrapping_add(1), &[][..]), |_, _| false)?;
        }
        for (key, value) in &d.rows {
            match value {
                Some(v) => rows.insert((z, key.as_slice()), v.as_slice())?,
                None => rows.remove((z, key.as_slice()))?,
            };
        }
        for (i, &from) in d.from_serials.iter().enumerate() {
            let at = (z, from);
            let Some(mut entry) = journal.get(at)?.map(|v| v.value()) else {
                continue;
            };
            let last = i + 1 == d.from_serials.len();
            match (&d.records, last) {
                (Some(records), true) => entry.signed = Some(records.clone()),
                (Some(_), false) => entry.signed = Some(SignedRecords::default()),
                (None, _) => {
                    journal.remove(at)?;
                    continue;
                }
            }
            journal.insert(at, &entry)?;
        }
    }
    Ok(())
}

/// What turning signing on needs: the key made (and sealed) by the caller, off the writer.
pub struct Enable {
    pub key: DnssecKey,
    pub denial: crate::domain::Denial,
    pub dnskey_ttl: u32,
}

impl WriteCtx {
    /// Turns signing on (`Enable`), or back on while it is being turned off. Returns the zone
    /// and whether anything changed (on already: nothing, the key made is dropped).
    pub fn enable_dnssec(
        &mut self,
        team: Uuid,
        zone_id: Uuid,
        expected: Option<u32>,
        enable: Enable,
    ) -> Result<(Zone, bool)> {
        self.zone_serial(team, zone_id, expected)?;
        let zone = self.team_zone(team, zone_id)?;
        if zone.catalog {
            return Err(StoreError::conflict(
                "catalog_zone",
                format!(
                    "{} is the catalog zone: it is for secondaries, not resolvers, and is not signed",
                    zone.name
                ),
            ));
        }
        match &zone.dnssec {
            Some(d) if d.state != ZoneState::Disabling => return Ok((zone, false)),
            Some(d) => {
                let state = ZoneDnssec {
                    state: ZoneState::Signed,
                    unsign_at: None,
                    ..d.clone()
                };
                let zone = self.set_dnssec(
                    zone,
                    Some(state),
                    enable.dnskey_ttl,
                    "zone.dnssec_enabled",
                    "turning off cancelled",
                )?;
                return Ok((zone, true));
            }
            None => {}
        }
        let mut key = enable.key;
        key.zone_id = zone.id;
        key.state = KeyState::Active;
        self.txn()
            .open_table(DNSSEC_KEYS)?
            .insert((zone.id.as_u128(), key.id.as_u128()), &key)?;
        self.emit(Change::DnssecKeyPut(key.clone()));
        let state = ZoneDnssec {
            state: ZoneState::Signed,
            denial: enable.denial,
            rollover: None,
            since: Timestamp::now(),
            unsign_at: None,
        };
        let summary = format!("key {} algorithm {}, {:?}", key.tag, key.algorithm, state.denial);
        let zone = self.set_dnssec(zone, Some(state), enable.dnskey_ttl, "zone.dnssec_enabled", &summary)?;
        Ok((zone, true))
    }

    /// Starts turning signing off: CDS/CDNSKEY DELETE are published and the zone stays
    /// signed until the parent's DS is confirmed gone (`dnssec_ds_seen`, or asking to turn
    /// it off again, which completes it). Returns the zone and whether anything changed.
    pub fn disable_dnssec(
        &mut self,
        team: Uuid,
        zone_id: Uuid,
        expected: Option<u32>,
        waits: Waits,
        dnskey_ttl: u32,
    ) -> Result<(Zone, bool)> {
        self.zone_serial(team, zone_id, expected)?;
        let zone = self.team_zone(team, zone_id)?;
        let Some(d) = zone.dnssec.clone() else {
            return Ok((zone, false));
        };
        if d.state == ZoneState::Disabling {
            if d.unsign_at.is_some() {
                return Ok((zone, false));
            }
            return self.ds_gone(zone, d, waits, dnskey_ttl).map(|z| (z, true));
        }
        if d.rollover.is_some() {
            return Err(StoreError::conflict(
                "rollover_in_progress",
                "a key rollover is under way; turn DNSSEC off once it is over",
            ));
        }
        let state = ZoneDnssec {
            state: ZoneState::Disabling,
            ..d
        };
        let zone = self.set_dnssec(
            zone,
            Some(state),
            dnskey_ttl,
            "zone.dnssec_disabling",
            "CDS/CDNSKEY DELETE published",
        )?;
        Ok((zone, true))
    }

    /// The parent's DS is confirmed as the zone asks for it: for the active key (signed →
    /// secure), for a rollover's new key (the old one may retire), or gone while signing is
    /// being turned off (then the zone is served unsigned once caches forget the DS).
    pub fn dnssec_ds_seen(&mut self, team: Uuid, zone_id: Uuid, waits: Waits, dnskey_ttl: u32) -> Result<Zone> {
        let (zone, d) = self.signed_zone(team, zone_id)?;
        if let Some(r) = &d.rollover {
            let Some(next) = r.ds_seen(Timestamp::now(), waits) else {
                return Err(StoreError::conflict(
                    "not_waiting_for_ds",
                    format!(
                        "the rollover is in its {} phase: the new key's DS is asked for once it signs the zone",
                        r.phase.as_str()
                    ),
                ));
            };
            let state = ZoneDnssec {
                state: ZoneState::Secure,
                rollover: Some(next),
                ..d
            };
            return self.set_dnssec(
                zone,
                Some(state),
                dnskey_ttl,
                "zone.dnssec_ds_seen",
                "the new key's DS is at the parent",
            );
        }
        match d.state {
            ZoneState::Signed => {
                let state = ZoneDnssec {
                    state: ZoneState::Secure,
                    ..d
                };
                self.set_dnssec(
                    zone,
                    Some(state),
                    dnskey_ttl,
                    "zone.dnssec_ds_seen",
                    "the DS is at the parent",
                )
            }
            ZoneState::Secure => Ok(zone),
            ZoneState::Disabling if d.unsign_at.is_some() => Ok(zone),
            ZoneState::Disabling => self.ds_gone(zone, d, waits, dnskey_ttl),
        }
    }

    /// The parent's DS is gone: the zone stays signed while resolvers may still cache it
    /// (`waits.parent_ds`), then `dnssec_step` serves it unsigned.
    fn ds_gone(&mut self, zone: Zone, d: ZoneDnssec, waits: Waits, dnskey_ttl: u32) -> Result<Zone> {
        let at = Timestamp::now().plus_millis(waits.parent_ds as i64 * 1000);
        let state = ZoneDnssec {
            unsign_at: Some(at),
            ..d
        };
        let summary = format!("the parent's DS is gone; served unsigned from {at}");
        self.set_dnssec(zone, Some(state), dnskey_ttl, "zone.dnssec_ds_gone", &summary)
    }

    /// Starts a CSK rollover with `key` (made and sealed by the caller): the new key is
    /// published, and the rollover moves on by itself (`dnssec_step`).
    pub fn start_rollover(
        &mut self,
        team: Uuid,
        zone_id: Uuid,
        key: DnssecKey,
        waits: Waits,
        dnskey_ttl: u32,
    ) -> Result<Zone> {
        let (zone, d) = self.signed_zone(team, zone_id)?;
        if d.state == ZoneState::Disabling {
            return Err(StoreError::conflict(
                "dnssec_disabling",
                "DNSSEC is being turned off; turn it back on before rolling the key",
            ));
        }
        if let Some(r) = &d.rollover {
            return Err(StoreError::conflict(
                "rollover_in_progress",
                format!("a rollover is under way (phase {})", r.phase.as_str()),
            ));
        }
        let old = self
            .dnssec_keys(zone.id)?
            .into_iter()
            .find(|k| k.state == KeyState::Active)
            .ok_or_else(|| StoreError::Internal(format!("signed zone {} has no active key", zone.id)))?;
        let mut key = key;
        key.zone_id = zone.id;
        key.state = KeyState::Published;
        if key.tag == old.tag {
            return Err(StoreError::conflict(
                "key_tag_taken",
                "the new key's tag is the current key's; ask again",
            ));
        }
        self.txn()
            .open_table(DNSSEC_KEYS)?
            .insert((zone.id.as_u128(), key.id.as_u128()), &key)?;
        self.emit(Change::DnssecKeyPut(key.clone()));
        let state = ZoneDnssec {
            rollover: Some(Rollover::start(old.id, key.id, Timestamp::now(), waits)),
            ..d
        };
        let summary = format!("from key {} to key {}", old.tag, key.tag);
        self.set_dnssec(zone, Some(state), dnskey_ttl, "zone.dnssec_rollover_started", &summary)
    }

    /// Moves a zone's rollover on, or serves a zone being turned off unsigned, when the next
    /// step is due (the background schedule calls this); `None` when nothing was due.
    pub fn dnssec_step(&mut self, zone_id: Uuid, dnskey_ttl: u32) -> Result<Option<Zone>> {
        let Some(zone) = self.zone(zone_id)? else {
            return Ok(None);
        };
        let Some(d) = zone.dnssec.clone() else { return Ok(None) };
        if let Some(at) = d.unsign_at {
            if at > Timestamp::now() {
                return Ok(None);
            }
            for key in self.dnssec_keys(zone.id)? {
                self.remove_dnssec_key(key)?;
            }
            return self
                .set_dnssec(
                    zone,
                    None,
                    dnskey_ttl,
                    "zone.dnssec_disabled",
                    "caches have forgotten the parent's DS; served unsigned",
                )
                .map(Some);
        }
        let Some(r) = d.rollover.clone() else { return Ok(None) };
        let keys = self.dnssec_keys(zone.id)?;
        let find = |id: Uuid| {
            keys.iter()
                .find(|k| k.id == id)
                .cloned()
                .ok_or_else(|| StoreError::Internal(format!("rollover key {id} of zone {} is gone", zone.id)))
        };
        match r.step(Timestamp::now()) {
            Step::Wait => Ok(None),
            Step::Activate(next) => {
                let (mut old, mut new) = (find(r.old_key)?, find(r.new_key)?);
                old.state = KeyState::Retiring;
                new.state = KeyState::Active;
                for k in [&old, &new] {
                    self.txn()
                        .open_table(DNSSEC_KEYS)?
                        .insert((zone.id.as_u128(), k.id.as_u128()), k)?;
                    self.emit(Change::DnssecKeyPut(k.clone()));
                }
                let summary = format!("key {} signs the zone; its CDS/CDNSKEY are published", new.tag);
                let state = ZoneDnssec {
                    state: ZoneState::Signed,
                    rollover: Some(next),
                    ..d
                };
                self.set_dnssec(zone, Some(state), dnskey_ttl, "zone.dnssec_rollover_ready", &summary)
                    .map(Some)
            }
            Step::Finish => {
                let old = find(r.old_key)?;
                let summary = format!("key {} retired", old.tag);
                self.remove_dnssec_key(old)?;
                let state = ZoneDnssec { rollover: None, ..d };
                self.set_dnssec(zone, Some(state), dnskey_ttl, "zone.dnssec_rollover_done", &summary)
                    .map(Some)
            }
        }
    }

    /// Asks for signatures at `names` to be made again where due (no names: wherever any is
    /// missing or due). Touches the zone, so secondaries get them.
    pub fn resign(&mut self, zone_id: Uuid, names: Vec<Box<[u8]>>) -> Result<Option<Zone>> {
        let Some(zone) = self.zone(zone_id)? else {
            return Ok(None);
        };
        if zone.dnssec.is_none() {
            return Ok(None);
        }
        let zone = self.touch_zone(zone, 0, &[], &[])?;
        self.emit(Change::Resign { zone: zone_id, names });
        Ok(Some(zone))
    }

    fn remove_dnssec_key(&mut self, key: DnssecKey) -> Result<()> {
        self.txn()
            .open_table(DNSSEC_KEYS)?
            .remove((key.zone_id.as_u128(), key.id.as_u128()))?;
        self.emit(Change::DnssecKeyRemoved(key));
        Ok(())
    }

    /// Puts the zone in `state` (`None`: unsigned) with the apex records that state
    /// publishes, as one change of the zone, audited.
    fn set_dnssec(
        &mut self,
        mut zone: Zone,
        state: Option<ZoneDnssec>,
        dnskey_ttl: u32,
        action: &str,
        summary: &str,
    ) -> Result<Zone> {
        let keys = self.dnssec_keys(zone.id)?;
        let apex = zone.name.to_wire();
        let wanted = match &state {
            Some(s) => published(&apex, s, &keys),
            None => Vec::new(),
        };
        let have: Vec<Record> = self
            .records_at(zone.id, &zone.name)?
            .into_iter()
            .filter(|r| r.managed && TYPES.contains(&r.rtype))
            .collect();
        let now = Timestamp::now();
        let removed: Vec<Record> = have
            .iter()
            .filter(|r| !wanted.iter().any(|w| w.rtype == r.rtype && w.wire == r.rdata))
            .cloned()
            .collect();
        let mut added = Vec::new();
        for w in wanted
            .iter()
            .filter(|w| !have.iter().any(|r| w.rtype == r.rtype && w.wire == r.rdata))
        {
            // NSEC3PARAM with the TTL of the NSEC3 records (RFC 9077), as Knot has it.
            let ttl = if w.rtype == RecordType::NSEC3PARAM {
                zone.soa.ttl.min(zone.soa.minimum)
            } else {
                dnskey_ttl
            };
            let new = NewRecord {
                name: zone.name.clone(),
                data: record_data(w.rtype, w.wire.clone(), w.content.clone()),
                ttl,
                managed: true,
                site_id: None,
            };
            added.push(Record::new(zone.id, &new, now));
        }
        let delta = added.len() as i64 - removed.len() as i64;
        if delta > 0 {
            self.check_team_records(zone.team_id, delta, "dnssec")?;
        }
        for r in &removed {
            remove_record(self.txn(), r)?;
        }
        for r in &added {
            put_record(self.txn(), r)?;
        }
        zone.dnssec = state;
        let team = zone.team_id;
        let zone = self.touch_zone(zone, delta, &removed, &added)?;
        removed.into_iter().for_each(|r| self.emit(Change::RecordRemoved(r)));
        added
            .into_iter()
            .for_each(|r| self.emit(Change::RecordPut { old: None, new: r }));
        self.audit(
            team,
            action,
            (ResourceKind::Zone, zone.id),
            Some(zone.id),
            summary.to_string(),
        )?;
        Ok(zone)
    }
}

/// A managed DNSSEC record's data: the text and the RDATA given.
fn record_data(rtype: RecordType, wire: Vec<u8>, content: String) -> RecordData {
    RecordData { rtype, content, wire }
}
