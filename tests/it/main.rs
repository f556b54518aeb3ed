//! Integration tests: the real server on ephemeral ports, spoken to over real HTTP, UDP and
//! TCP, and the real binary for the CLI.

mod helpers;
mod pebble;

mod acme;
mod acme_clients;
mod api_auth;
mod api_records;
mod api_zones;
mod ari;
mod auth_flood;
mod backup;
mod catalog;
mod cli;
mod clients;
mod conformance;
mod dns;
mod dnssec;
mod docs;
mod hosting;
mod http_hygiene;
mod idempotency;
mod interop;
mod lifecycle;
mod limits;
mod observe;
mod restricted;
mod rrl;
mod secondaries;
mod store_faults;
mod tokens;
mod tsig_keys;
mod update;
