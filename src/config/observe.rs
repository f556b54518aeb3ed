//! The `[metrics]` and `[log]` sections: what an operator watches the server with.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the listener serving `/metrics`, `/healthz` and `/readyz`; `None` (an empty
    /// string in the file): no listener, and nothing is counted.
    #[serde(deserialize_with = "optional_listen")]
    pub listen: Option<SocketAddr>,
    /// Zones the server may hold and still export series per zone (serial, records); past
    /// it, only the totals, so a scrape stays small whatever the customers create.
    pub per_zone_series_limit: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (for people) or `json` (one object a line, for log pipelines).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A listen address, or none for an empty string: how `--metrics-listen ""` and
/// `IPX_METRICS_LISTEN=` turn a listener off.
pub fn parse_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is not an ADDR:PORT (or empty, for none)"))
}

fn optional_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    parse_listen(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}
