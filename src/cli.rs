//! The `ipx` command line: `serve` and the operator commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::{self, Command};
use crate::config::Config;
use crate::store::{Store, StoreError};

#[derive(Parser, Debug)]
#[command(
    name = "ipx",
    version,
    about = "Authoritative DNS server and hosting API over one embedded store"
)]
pub struct Cli {
    /// Configuration file merged over the built-in defaults (default: ./config.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides store.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the DNS server and the API.
    Serve {
        /// DNS listen address (UDP and TCP).
        #[arg(long, value_name = "ADDR:PORT")]
        dns_listen: Option<SocketAddr>,
        /// API listen address.
        #[arg(long, value_name = "ADDR:PORT")]
        api_listen: Option<SocketAddr>,
        /// Check the configuration, print it, and exit.
        #[arg(long)]
        check: bool,
    },
    /// Teams: the tenants.
    #[command(subcommand)]
    Team(TeamCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Zones.
    #[command(subcommand)]
    Zone(ZoneCmd),
    /// Sites (irreversible operator actions live here, not in the API).
    #[command(subcommand)]
    Site(SiteCmd),
}

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// List a team's sites.
    List {
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
    },
    /// Delete a site and its managed DNS records (its zone and the team's own records stay).
    Delete { site_id: String },
}

#[derive(Subcommand, Debug)]
pub enum TeamCmd {
    /// Create a team; prints its UUID.
    Create { name: String },
    /// List teams: UUID, name, creation time.
    List,
}

#[derive(Subcommand, Debug)]
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

#[derive(Subcommand, Debug)]
pub enum ZoneCmd {
    /// Print a zone as an RFC 1035 master file.
    Export {
        /// Zone name or UUID.
        zone: String,
    },
    /// Import an RFC 1035 master file as a new zone of a team.
    Import {
        file: PathBuf,
        #[arg(long, value_name = "NAME_OR_ID")]
        team: String,
    },
}

impl Cli {
    /// The configuration: defaults, the file, `IPX_*`, then flags.
    pub fn config(&self) -> Result<Config, String> {
        let file = self.config.clone().or_else(|| {
            let local = PathBuf::from("config.toml");
            local.exists().then_some(local)
        });
        let mut config = Config::load(file.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
        if let Some(dir) = &self.data_dir {
            config.store.data_dir = dir.clone();
        }
        if let Cmd::Serve {
            dns_listen, api_listen, ..
        } = &self.command
        {
            if let Some(a) = dns_listen {
                config.dns.listen = *a;
            }
            if let Some(a) = api_listen {
                config.api.listen = *a;
            }
        }
        Ok(config)
    }
}

/// Runs an operator command on the database, or through the server when it holds it.
pub fn run_operator(config: &Config, command: Command) -> Result<String, String> {
    let opened = if command.writes() {
        Store::open(&config.db_path())
    } else {
        Store::open_existing(&config.db_path())
    };
    match opened {
        Ok(store) => {
            store.set_caps(config.limits);
            let out = admin::execute(&store, None, command);
            store.close();
            out
        }
        Err(StoreError::Locked) => admin::send(&config.socket_path(), &command),
        Err(e @ (StoreError::Missing(_) | StoreError::Unusable(_))) => Err(e.to_string()),
        Err(e) => Err(format!("cannot open {}: {e}", config.db_path().display())),
    }
}

pub fn operator_command(cmd: &Cmd) -> Result<Option<Command>, String> {
    Ok(Some(match cmd {
        Cmd::Serve { .. } => return Ok(None),
        Cmd::Team(TeamCmd::Create { name }) => Command::TeamCreate { name: name.clone() },
        Cmd::Team(TeamCmd::List) => Command::TeamList,
        Cmd::Token(TokenCmd::Create { team, name, scopes }) => Command::TokenCreate {
            team: team.clone(),
            name: name.clone(),
            scopes: scopes.clone(),
        },
        Cmd::Token(TokenCmd::List { team }) => Command::TokenList { team: team.clone() },
        Cmd::Token(TokenCmd::Revoke { token_id }) => Command::TokenRevoke { id: token_id.clone() },
        Cmd::Site(SiteCmd::List { team }) => Command::SiteList { team: team.clone() },
        Cmd::Site(SiteCmd::Delete { site_id }) => Command::SiteDelete { id: site_id.clone() },
        Cmd::Zone(ZoneCmd::Export { zone }) => Command::ZoneExport { zone: zone.clone() },
        Cmd::Zone(ZoneCmd::Import { file, team }) => {
            let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            Command::ZoneImport {
                team: team.clone(),
                text,
            }
        }
    }))
}

pub fn exit_with(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipx: {e}");
            ExitCode::FAILURE
        }
    }
}
