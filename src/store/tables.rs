//! Every table of the database, in one place, with the rows only the store has (journal
//! entries, idempotency records). Rows are JSON through one typed value (`Json<T>`), keyed by
//! ids as `u128`; index tables map a key to `()`.

use std::fmt::Debug;
use std::marker::PhantomData;

use redb::{ReadableTable, TableDefinition, TypeName, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{
    AcmeAccount, Certificate, DnssecKey, Event, Issuance, Job, Project, Record, Site, Team, Token, TsigKey, Zone,
};

/// What a JSON row can hold.
pub(crate) trait Row: Debug + Serialize + DeserializeOwned + 'static {}

impl<T: Debug + Serialize + DeserializeOwned + 'static> Row for T {}

/// A row stored as JSON. redb's `Value` cannot fail to decode, so a row that does not parse
/// panics inside redb's call; the store turns that panic into an error at its boundary
/// (`Store::read`, the writer). The read-through at open reads the rows as bytes: a row
/// this version cannot decode fails the reads that meet it, not the whole database.
#[derive(Debug)]
pub(crate) struct Json<T>(PhantomData<T>);

impl<T: Row> Value for Json<T> {
    type SelfType<'a>
        = T
    where
        Self: 'a;
    type AsBytes<'a>
        = Vec<u8>
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> T
    where
        Self: 'a,
    {
        serde_json::from_slice(data)
            .unwrap_or_else(|e| panic!("a stored {} does not decode: {e}", std::any::type_name::<T>()))
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a T) -> Vec<u8>
    where
        Self: 'b,
    {
        serde_json::to_vec(value).expect("rows serialise")
    }

    /// The name the tables had when they were declared as bytes: the same bytes, so
    /// databases made then open now.
    fn type_name() -> TypeName {
        <&[u8] as Value>::type_name()
    }
}

type Rows<T> = TableDefinition<'static, u128, Json<T>>;
type Index<K> = TableDefinition<'static, K, ()>;

pub(crate) const TEAMS: Rows<Team> = TableDefinition::new("teams");
pub(crate) const TEAM_NAMES: TableDefinition<'static, &str, u128> = TableDefinition::new("team_names");
pub(crate) const TOKENS: Rows<Token> = TableDefinition::new("tokens");
/// (team, token): a team's tokens in creation order.
pub(crate) const TEAM_TOKENS: Index<(u128, u128)> = TableDefinition::new("team_tokens");

pub(crate) const ZONES: Rows<Zone> = TableDefinition::new("zones");
/// Reversed zone name (`com.example`) → zone: finds a name's ancestors and descendants.
pub(crate) const ZONE_NAMES: TableDefinition<'static, &str, u128> = TableDefinition::new("zone_names");
/// (team, zone): a team's zones in creation order.
pub(crate) const TEAM_ZONES: Index<(u128, u128)> = TableDefinition::new("team_zones");
/// team → records across its zones: what the per-team record cap is checked against.
pub(crate) const TEAM_RECORDS: TableDefinition<'static, u128, u64> = TableDefinition::new("team_records");
/// (zone, record) → row: a zone's records in creation order (ids are UUIDv7).
pub(crate) const RECORDS: TableDefinition<'static, (u128, u128), Json<Record>> = TableDefinition::new("records");
/// The same table read as bytes: start-up decodes only what the DNS snapshot needs.
pub(crate) const RECORDS_RAW: TableDefinition<'static, (u128, u128), &[u8]> = TableDefinition::new("records");
/// (zone, owner name, record): the records at one name, for the record rules.
pub(crate) const RECORD_NAMES: Index<(u128, &str, u128)> = TableDefinition::new("record_names");
/// (zone, serial) → the change that led away from that serial: IXFR's journal.
pub(crate) const JOURNAL: TableDefinition<'static, (u128, u32), Json<JournalEntry>> = TableDefinition::new("journal");

/// (zone, key) → a signed zone's key, its private half sealed.
pub(crate) const DNSSEC_KEYS: TableDefinition<'static, (u128, u128), Json<DnssecKey>> =
    TableDefinition::new("dnssec_keys");
/// (zone, row) → what signing derived from a zone's records (RRSIGs, NSEC, NSEC3), kept so
/// that a restart serves, and secondaries keep, the very same signed zone (`dns::signer`
/// says what the rows hold).
pub(crate) const SIGNED: TableDefinition<'static, (u128, &[u8]), &[u8]> = TableDefinition::new("signed");

pub(crate) const TSIG_KEYS: Rows<TsigKey> = TableDefinition::new("tsig_keys");
/// (team, key): a team's TSIG keys in creation order.
pub(crate) const TEAM_TSIG_KEYS: Index<(u128, u128)> = TableDefinition::new("team_tsig_keys");
/// Key name → key: a key's DNS name is unique on the platform.
pub(crate) const TSIG_KEY_NAMES: TableDefinition<'static, &str, u128> = TableDefinition::new("tsig_key_names");

/// (team, event) → event, in creation order.
pub(crate) const EVENTS: TableDefinition<'static, (u128, u128), Json<Event>> = TableDefinition::new("events");

pub(crate) const PROJECTS: Rows<Project> = TableDefinition::new("projects");
pub(crate) const TEAM_PROJECTS: Index<(u128, u128)> = TableDefinition::new("team_projects");
/// (project, site): refuses deleting a project that holds sites.
pub(crate) const PROJECT_SITES: Index<(u128, u128)> = TableDefinition::new("project_sites");
pub(crate) const SITES: Rows<Site> = TableDefinition::new("sites");
pub(crate) const TEAM_SITES: Index<(u128, u128)> = TableDefinition::new("team_sites");
/// Site domain → site: a domain is hosted once, across all teams.
pub(crate) const SITE_DOMAINS: TableDefinition<'static, &str, u128> = TableDefinition::new("site_domains");
pub(crate) const JOBS: Rows<Job> = TableDefinition::new("jobs");
/// Jobs not yet done or failed: what the worker resumes after a restart.
pub(crate) const OPEN_JOBS: Index<u128> = TableDefinition::new("open_jobs");

/// Site → its installed certificate (the key sealed).
pub(crate) const CERTIFICATES: Rows<Certificate> = TableDefinition::new("certificates");
/// Site → the issuance under way for it: what a restart resumes.
pub(crate) const ISSUANCES: Rows<Issuance> = TableDefinition::new("issuances");
/// (renewal due, in ms since the epoch; site): the certificates waiting for renewal, the
/// earliest first (one being renewed is not in it).
pub(crate) const RENEWAL_QUEUE: Index<(u64, u128)> = TableDefinition::new("renewal_queue");
/// (expiry, in ms since the epoch; site): the certificates not yet noticed as expired.
pub(crate) const EXPIRY_QUEUE: Index<(u64, u128)> = TableDefinition::new("expiry_queue");
/// CA directory URL → the ACME account ipx holds there (credentials sealed).
pub(crate) const ACME_ACCOUNTS: TableDefinition<'static, &str, Json<AcmeAccount>> =
    TableDefinition::new("acme_accounts");

/// (token, "METHOD path\nkey") → the stored outcome.
pub(crate) const IDEMPOTENCY: TableDefinition<'static, (u128, &str), Json<IdempotencyRecord>> =
    TableDefinition::new("idempotency_v2");
/// (created, token, "METHOD path\nkey"): what the sweeper removes, oldest first.
pub(crate) const IDEMPOTENCY_BY_AGE: Index<(u64, u128, &str)> = TableDefinition::new("idempotency_by_age");
/// The first version of the table: keyed by team, it held whole responses, secrets
/// included. Dropped at open.
pub(crate) const IDEMPOTENCY_V1: TableDefinition<'static, (u128, &str), &[u8]> = TableDefinition::new("idempotency");

/// "format" → the layout version; present in every ipx database (older ones get it at open).
pub(crate) const META: TableDefinition<'static, &str, &str> = TableDefinition::new("ipx_meta");
pub(crate) const FORMAT: &str = "1";

/// Every table, to create at open and to read through before anything writes.
pub(crate) const ALL: [&dyn Walk; 34] = [
    &TEAMS,
    &TEAM_NAMES,
    &TOKENS,
    &TEAM_TOKENS,
    &ZONES,
    &ZONE_NAMES,
    &TEAM_ZONES,
    &TEAM_RECORDS,
    &RECORDS,
    &RECORD_NAMES,
    &JOURNAL,
    &DNSSEC_KEYS,
    &SIGNED,
    &TSIG_KEYS,
    &TEAM_TSIG_KEYS,
    &TSIG_KEY_NAMES,
    &EVENTS,
    &PROJECTS,
    &TEAM_PROJECTS,
    &PROJECT_SITES,
    &SITES,
    &TEAM_SITES,
    &SITE_DOMAINS,
    &JOBS,
    &OPEN_JOBS,
    &CERTIFICATES,
    &ISSUANCES,
    &RENEWAL_QUEUE,
    &EXPIRY_QUEUE,
    &ACME_ACCOUNTS,
    &IDEMPOTENCY,
    &IDEMPOTENCY_BY_AGE,
    &IDEMPOTENCY_V1,
    &META,
];

/// One change of a zone, from serial `from` to serial `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
    /// What signing changed with it (RRSIG, NSEC, NSEC3 records), when the zone is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedRecords>,
}

/// Derived records of one change, each list in wire form (uncompressed RRs one after the
/// other), as IXFR sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignedRecords {
    #[serde(with = "hex")]
    pub removed: Vec<u8>,
    #[serde(with = "hex")]
    pub added: Vec<u8>,
}

/// Octets as lowercase hex in JSON rows.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// The stored outcome of a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdempotencyRecord {
    /// Hash of method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    /// Seconds since the epoch when the first request arrived.
    pub created: u64,
    /// `None` while the first request still runs.
    pub status: Option<u16>,
    pub body: Option<String>,
    pub location: Option<String>,
    #[serde(default)]
    pub etag: Option<String>,
}

/// A table whose every row can be read back, and that can be made in a new file and
/// copied into one.
pub(crate) trait Walk {
    fn walk(&self, txn: &redb::ReadTransaction) -> Result<(), String>;
    fn create(&self, txn: &redb::WriteTransaction) -> Result<(), redb::TableError>;
    /// Copies every row `from` sees into the same table of `to`, as stored (JSON rows as
    /// their bytes), in transactions of `COPY_CHUNK` rows; returns the rows copied.
    fn copy(&self, from: &redb::ReadTransaction, to: &redb::Database) -> Result<u64, String>;
    fn table_name(&self) -> &str;
}

/// Rows per transaction of a copy: bounds what one transaction holds.
const COPY_CHUNK: u64 = 50_000;

/// How a table's values are read through at open: JSON rows as their bytes (same type name,
/// so redb opens them so), everything else as itself.
pub(crate) trait Stored: Value + 'static {
    type Raw: Value + 'static;
}

impl<T: Row> Stored for Json<T> {
    type Raw = &'static [u8];
}

impl Stored for u128 {
    type Raw = Self;
}

impl Stored for u64 {
    type Raw = Self;
}

impl Stored for () {
    type Raw = Self;
}

impl Stored for &'static str {
    type Raw = Self;
}

impl Stored for &'static [u8] {
    type Raw = Self;
}

impl<K: redb::Key + 'static, V: Stored> Walk for TableDefinition<'_, K, V> {
    fn create(&self, txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
        txn.open_table(*self).map(drop)
    }

    fn walk(&self, txn: &redb::ReadTransaction) -> Result<(), String> {
        let raw = TableDefinition::<K, V::Raw>::new(redb::TableHandle::name(self));
        let table = match txn.open_table(raw) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        for entry in table.iter().map_err(|e| e.to_string())? {
            let (k, v) = entry.map_err(|e| e.to_string())?;
            let _ = (
                K::as_bytes(&k.value()).as_ref().len(),
                V::Raw::as_bytes(&v.value()).as_ref().len(),
            );
        }
        Ok(())
    }

    fn copy(&self, from: &redb::ReadTransaction, to: &redb::Database) -> Result<u64, String> {
        let raw = TableDefinition::<K, V::Raw>::new(redb::TableHandle::name(self));
        let source = match from.open_table(raw) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(e.to_string()),
        };
        let mut rows = source.iter().map_err(|e| e.to_string())?;
        let mut copied = 0;
        loop {
            let txn = to.begin_write().map_err(|e| e.to_string())?;
            let mut more = false;
            {
                let mut dest = txn.open_table(raw).map_err(|e| e.to_string())?;
                for entry in rows.by_ref() {
                    let (k, v) = entry.map_err(|e| e.to_string())?;
                    dest.insert(k.value(), v.value()).map_err(|e| e.to_string())?;
                    copied += 1;
                    if copied % COPY_CHUNK == 0 {
                        more = true;
                        break;
                    }
                }
            }
            txn.commit().map_err(|e| e.to_string())?;
            if !more {
                return Ok(copied);
            }
        }
    }

    fn table_name(&self) -> &str {
        redb::TableHandle::name(self)
    }
}
