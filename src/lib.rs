//! ipx: an authoritative DNS server and a hosting REST API over one embedded store.
//!
//! Data flows one way: API → store → snapshot → DNS.

pub mod config;
pub mod listener;
pub mod domain;
pub mod store;
pub mod dns;
pub mod auth;
pub mod hosting;
pub mod api;
pub mod zonefile;
pub mod admin;
pub mod app;
pub mod cli;
