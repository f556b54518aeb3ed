//! The platform's vocabulary as types: validated names and record data, zones, records,
//! sites, jobs, certificates, tokens, TSIG keys and UPDATE messages, scopes, audit events, time; and the
//! pure rules over them. No I/O: the store keeps these, the API and the DNS server speak them.

mod account;
mod audit;
mod catalog;
mod certificate;
mod dnssec;
mod name;
mod rdata;
mod reserved;
pub mod rules;
mod scope;
mod site;
pub mod text;
mod time;
mod tsig;
pub mod update;
pub mod update_plan;
mod zone;

pub use account::{Team, Token, TokenState};
pub use audit::{Actor, ActorKind, Event, ResourceKind};
pub use catalog::Catalog;
pub use certificate::{
    AcmeAccount, Certificate, CertificateInfo, Issuance, KeyType, Obtained, Renewal, RenewalState, Window,
    account_context, key_context,
};
pub use dnssec::{
    Algorithm, CSK_FLAGS, Denial, DnssecKey, KeyState, Phase, Rollover, Step, Waits, ZoneDnssec, ZoneState,
    key_context as dnssec_key_context,
};
pub use name::{DomainName, NameError};
pub use rdata::{MAX_TTL, RecordData, USER_TYPES, check_ttl, from_rdata, parse_rdata, present, user_type};
pub use reserved::{Reserved, is_public_suffix};
pub use scope::{Resource, Scope};
pub use site::{Job, JobState, JobStep, JobSummary, Project, Site, SiteStatus, SslState, WordpressState};
pub use text::label_text;
pub use time::{Timestamp, unix_now};
pub use tsig::{KeyRule, KeySpec, TsigAlgorithm, TsigKey, key_label, key_name};
pub use zone::{NewRecord, Record, ServedRecord, Soa, Zone, ZoneSeed};

/// A new row id: UUIDv7, so rows sort by creation and their ids say nothing secret.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
