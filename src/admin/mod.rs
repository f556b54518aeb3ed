//! Operator commands: one type serves both clap (`ipx team create …`) and the operator socket,
//! and each command is one function (in `teams`, `tokens`, `tsig`, `zones`, `sites`). A command runs
//! directly on the database or, while `ipx serve` holds it (redb allows one process), by the
//! server on the CLI's behalf over a Unix socket only the owner can open (`socket`).

pub mod backup;
mod dnssec;
mod sites;
mod socket;
mod teams;
mod tokens;
mod tsig;
mod zones;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;

pub use socket::{Server, bind, send, serve};

use crate::auth::Authenticator;
use crate::domain::{Actor, Team};
use crate::seal::Sealer;
use crate::store::{Store, StoreError, UnlockError};

/// An operator command, as typed (the socket carries it in its own frozen form, `socket::Wire`).
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Teams: the tenants.
    #[command(subcommand)]
    Team(TeamCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// TSIG keys of teams, for RFC 2136 UPDATE and zone transfers.
    #[command(subcommand)]
    Tsig(TsigCmd),
    /// Zones.
    #[command(subcommand)]
    Zone(ZoneCmd),
    /// Sites (irreversible operator actions live here, not in the API).
    #[command(subcommand)]
    Site(SiteCmd),
}

#[derive(Subcommand, Debug, Clone)]
pub enum TeamCmd {
    /// Create a team; prints its UUID.
    Create { name: String },
    /// List teams: UUID, name, creation time.
    List,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenCmd {
    /// Create a token; the secret is printed alone on the last line, once.
    Create {
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
        #[arg(long)]
        name: String,
        /// A scope such as dns:write; repeat for more. None means all scopes.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    /// List a team's tokens (never their secrets).
    List {
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
    },
    /// Revoke a token at once.
    Revoke { token_id: String },
}

#[derive(Subcommand, Debug, Clone)]
pub enum TsigCmd {
    /// Create a team's TSIG key; the secret is printed alone on the last line, once.
    Create(TsigCreate),
    /// List a team's TSIG keys (never their secrets).
    List {
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
    },
    /// Revoke a TSIG key at once (by UUID or DNS name).
    Revoke { key: String },
}

/// `ipx tsig create`: one rule per `--zone`, each with the same names, subtrees and types.
#[derive(clap::Args, Debug, Clone)]
pub struct TsigCreate {
    #[arg(long, value_name = "NAME_OR_ID")]
    pub team: String,
    /// One DNS label; the key's DNS name is made from it and the team.
    #[arg(long)]
    pub name: String,
    /// A zone the key may change (name or UUID); repeat for more.
    #[arg(long = "zone", value_name = "ZONE", required = true)]
    pub zones: Vec<String>,
    /// An owner name the key may change, matched exactly (relative, @ or fully qualified);
    /// repeat for more.
    #[arg(long = "owner", value_name = "NAME")]
    pub names: Vec<String>,
    /// A name the key may change with every name below it; repeat for more.
    #[arg(long = "subtree", value_name = "NAME")]
    pub subtrees: Vec<String>,
    /// A record type the key may change; repeat for more. None: every type the API accepts.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Let the key transfer (AXFR/IXFR) its zones.
    #[arg(long)]
    pub transfer: bool,
    /// hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1.
    #[arg(long, default_value = "hmac-sha256")]
    pub algorithm: String,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ZoneCmd {
    /// Print a zone as an RFC 1035 master file.
    Export {
        /// Zone name or UUID.
        zone: String,
    },
    /// Delete a zone, its records and its catalog membership (irreversible; refused while a
    /// site is hosted in it).
    Delete {
        /// Zone name or UUID.
        zone: String,
    },
    /// Which serial each secondary ([dns] also_notify) serves of a zone (asks the running
    /// server: only it knows).
    Secondaries {
        /// Zone name or UUID.
        zone: String,
    },
    /// A zone's DNSSEC signing.
    #[command(subcommand)]
    Dnssec(DnssecCmd),
    /// Import an RFC 1035 master file as a new zone of a team.
    Import {
        file: PathBuf,
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
        /// The file's text, read by the CLI before the command runs (the server may not see
        /// the CLI's working directory).
        #[arg(skip)]
        text: Option<String>,
    },
}

/// `ipx zone dnssec …`: ZONE is a name or a UUID, of any team.
#[derive(Subcommand, Debug, Clone)]
pub enum DnssecCmd {
    /// Sign the zone: a new key, every RRset signed, CDS/CDNSKEY published.
    Enable { zone: String },
    /// Start turning signing off: CDS/CDNSKEY DELETE are published and the zone stays signed
    /// until the parent's DS is gone.
    Disable {
        zone: String,
        /// The parent holds no DS for the zone any more: serve it unsigned now.
        #[arg(long)]
        ds_gone: bool,
    },
    /// The zone's signing state, its keys, and the DS records for its parent.
    Show { zone: String },
    /// Start a key rollover; it moves on by itself (show says where it is).
    Rollover { zone: String },
    /// The parent's DS is as the zone's CDS asks (the first DS, a rollover's new one, or none
    /// while signing is turned off).
    DsSeen { zone: String },
}

#[derive(Subcommand, Debug, Clone)]
pub enum SiteCmd {
    /// List a team's sites.
    List {
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
    },
    /// Delete a site and its managed DNS records (its zone and the team's own records stay).
    Delete { site_id: String },
}

/// Why an operator command failed. Shown to the operator as `ipx: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no team {0:?}")]
    NoTeam(String),
    #[error("no zone {0:?}")]
    NoZone(String),
    #[error("{text:?} is not a {what} id")]
    NotAnId { text: String, what: &'static str },
    /// An argument that does not pass its rule.
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] UnlockError),
    #[error("the database is in use by a running server, and its socket {} cannot be reached: {source}", path.display())]
    Unreachable { path: PathBuf, source: std::io::Error },
    /// Talking to the server over its socket failed.
    #[error("{0}")]
    Socket(#[source] std::io::Error),
    #[error("bad reply from server: {0}")]
    BadReply(#[source] serde_json::Error),
    /// What the server said went wrong (its message, as the CLI would have said it).
    #[error("{0}")]
    Remote(String),
}

pub type Result<T, E = AdminError> = std::result::Result<T, E>;

impl Command {
    /// Whether the command changes the store (and so may create a database on a new data
    /// directory); the others never create one.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Self::Team(TeamCmd::List)
                | Self::Token(TokenCmd::List { .. })
                | Self::Tsig(TsigCmd::List { .. })
                | Self::Zone(ZoneCmd::Export { .. })
                | Self::Zone(ZoneCmd::Secondaries { .. })
                | Self::Zone(ZoneCmd::Dnssec(DnssecCmd::Show { .. }))
                | Self::Site(SiteCmd::List { .. })
        )
    }

    /// Reads what the command needs from the operator's side (a zone file) into it.
    pub fn prepare(mut self) -> Result<Self> {
        if let Self::Zone(ZoneCmd::Import {
            file,
            text: text @ None,
            ..
        }) = &mut self
        {
            *text = Some(std::fs::read_to_string(&*file).map_err(|source| AdminError::ReadFile {
                path: file.clone(),
                source,
            })?);
        }
        Ok(self)
    }
}

/// What a command runs against.
pub struct Ctx<'a> {
    pub store: &'a Store,
    /// The running server's token cache, when the server runs the command (revocation
    /// drops the token from it at once).
    pub auth: Option<&'a Authenticator>,
    /// What seals secrets: the running server's key, or the key file to unlock when a
    /// command needs it (only then: a command that seals nothing never touches it).
    pub sealer: Sealing<'a>,
    /// What the secondaries serve, when the server runs the command and has secondaries.
    pub secondaries: Option<&'a crate::dns::secondaries::Secondaries>,
    /// Whether the server runs the command (some facts live only in it).
    pub served: bool,
    /// What new keys and signed zones get.
    pub dnssec: &'a crate::config::DnssecConfig,
}

/// Where a command gets the key-encryption key from.
pub enum Sealing<'a> {
    Unlocked(Arc<Sealer>),
    File(&'a Path),
}

impl Ctx<'_> {
    fn actor(&self) -> Actor {
        Actor::operator()
    }

    fn sealer(&self) -> Result<Arc<Sealer>> {
        match &self.sealer {
            Sealing::Unlocked(s) => Ok(s.clone()),
            Sealing::File(path) => Ok(Arc::new(self.store.unlock(path)?)),
        }
    }

    fn team(&self, name_or_id: &str) -> Result<Team> {
        self.store
            .read_blocking(|r| r.find_team(name_or_id))?
            .ok_or_else(|| AdminError::NoTeam(name_or_id.to_string()))
    }
}

fn id(text: &str, what: &'static str) -> Result<uuid::Uuid> {
    uuid::Uuid::try_parse(text).map_err(|_| AdminError::NotAnId {
        text: text.to_string(),
        what,
    })
}

/// Runs a prepared command; returns what to print on stdout. Blocking (argon2, redb): call
/// from a plain thread or the blocking pool.
pub fn execute(ctx: &Ctx<'_>, command: Command) -> Result<String> {
    match command {
        Command::Team(TeamCmd::Create { name }) => teams::create(ctx, name),
        Command::Team(TeamCmd::List) => teams::list(ctx),
        Command::Token(TokenCmd::Create { team, name, scopes }) => tokens::create(ctx, &team, &name, &scopes),
        Command::Token(TokenCmd::List { team }) => tokens::list(ctx, &team),
        Command::Token(TokenCmd::Revoke { token_id }) => tokens::revoke(ctx, &token_id),
        Command::Tsig(TsigCmd::Create(args)) => tsig::create(ctx, &args),
        Command::Tsig(TsigCmd::List { team }) => tsig::list(ctx, &team),
        Command::Tsig(TsigCmd::Revoke { key }) => tsig::revoke(ctx, &key),
        Command::Zone(ZoneCmd::Export { zone }) => zones::export(ctx, &zone),
        Command::Zone(ZoneCmd::Delete { zone }) => zones::delete(ctx, &zone),
        Command::Zone(ZoneCmd::Secondaries { zone }) => zones::secondaries(ctx, &zone),
        Command::Zone(ZoneCmd::Import { team, text, .. }) => zones::import(
            ctx,
            &team,
            &text.ok_or_else(|| AdminError::Invalid("the zone file was not read".into()))?,
        ),
        Command::Zone(ZoneCmd::Dnssec(cmd)) => match cmd {
            DnssecCmd::Enable { zone } => dnssec::enable(ctx, &zone),
            DnssecCmd::Disable { zone, ds_gone } => dnssec::disable(ctx, &zone, ds_gone),
            DnssecCmd::Show { zone } => dnssec::show(ctx, &zone),
            DnssecCmd::Rollover { zone } => dnssec::rollover(ctx, &zone),
            DnssecCmd::DsSeen { zone } => dnssec::ds_seen(ctx, &zone),
        },
        Command::Site(SiteCmd::List { team }) => sites::list(ctx, &team),
        Command::Site(SiteCmd::Delete { site_id }) => sites::delete(ctx, &site_id),
    }
}
