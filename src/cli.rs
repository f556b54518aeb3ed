//! The `ipx` command line: `serve` and the operator commands (`admin::Command`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::{self, AdminError, Command, Ctx, Sealing};
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
        /// Metrics listen address (/metrics, /healthz, /readyz); "" turns it off.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics_listen: Option<String>,
        /// Check the configuration, print it, and exit.
        #[arg(long)]
        check: bool,
    },
    /// Write a consistent, verified copy of the whole store to FILE (replaced only once the
    /// new copy checks out), through the server while it runs. Keep the key file apart.
    Backup { file: PathBuf },
    /// Build the data directory's database from the backup FILE, verified; refuses a data
    /// directory that already holds a database.
    Restore { file: PathBuf },
    #[command(flatten)]
    Operator(Command),
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
            dns_listen,
            api_listen,
            metrics_listen,
            ..
        } = &self.command
        {
            if let Some(a) = dns_listen {
                config.dns.listen = *a;
            }
            if let Some(a) = api_listen {
                config.api.listen = *a;
            }
            if let Some(a) = metrics_listen {
                config.metrics.listen = crate::config::parse_listen(a).map_err(|e| format!("--metrics-listen: {e}"))?;
            }
        }
        Ok(config)
    }
}

/// Runs an operator command on the database, or through the server when it holds it.
pub fn run_operator(config: &Config, command: Command) -> Result<String, AdminError> {
    let command = command.prepare()?;
    let opened = if command.writes() {
        Store::open_with_cache(&config.db_path(), config.store.cache_mib.max(1) << 20)
    } else {
        Store::open_existing(&config.db_path())
    };
    match opened {
        Ok(store) => {
            store.set_caps(config.limits);
            let out = admin::execute(
                &Ctx {
                    store: &store,
                    auth: None,
                    sealer: Sealing::File(&config.key_path()),
                    secondaries: None,
                    served: false,
                    dnssec: &config.dnssec,
                },
                command,
            );
            store.close();
            out
        }
        Err(StoreError::Locked) => admin::send(&config.socket_path(), &command),
        Err(e @ (StoreError::Missing(_) | StoreError::Unusable(_))) => Err(e.into()),
        Err(e) => Err(AdminError::Invalid(format!(
            "cannot open {}: {e}",
            config.db_path().display()
        ))),
    }
}

/// Prints a command's output, or its error as `ipx: <message>`.
pub fn exit_with<E: std::fmt::Display>(result: Result<String, E>) -> ExitCode {
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
