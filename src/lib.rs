//! ipx: an authoritative DNS server and a hosting REST API over one embedded store.
//!
//! Data flows one way: API → store → snapshot → DNS.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod certificates;
pub mod cli;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod domain;
pub mod hosting;
pub mod listener;
pub mod metrics;
pub mod seal;
pub mod store;
pub mod zonefile;
