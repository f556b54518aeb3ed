//! What the server holds, gathered at scrape time (from one read transaction: `store`
//! fills it) and written as gauges. Per-zone series only while the zones are few.

use std::fmt::Write;

/// A snapshot of the store's contents for a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub teams: u64,
    pub zones: u64,
    pub records: u64,
    /// (zone name, serial, records) of every zone, when there are at most the configured
    /// number of them; `None` past it.
    pub per_zone: Option<Vec<(String, u32, u64)>>,
    /// Open (pending or running) provisioning jobs: (step, state, how many).
    pub open_jobs: Vec<(&'static str, &'static str, u64)>,
    /// Seconds since the oldest open job was asked for; 0 with none open.
    pub oldest_open_job_secs: u64,
}

/// Writes one sample with its HELP and TYPE lines.
pub fn write_one(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// A label value as the text format wants it (RFC-free names can hold `\` and `"`).
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Inventory {
    pub fn render(&self, out: &mut String) {
        write_one(out, "ipx_teams", "gauge", "Teams (tenants).", self.teams);
        write_one(out, "ipx_zones", "gauge", "Zones served.", self.zones);
        write_one(
            out,
            "ipx_records",
            "gauge",
            "Records stored across all zones (SOAs aside).",
            self.records,
        );
        if let Some(zones) = &self.per_zone {
            out.push_str("# HELP ipx_zone_serial The SOA serial of each zone (only while zones are few).\n");
            out.push_str("# TYPE ipx_zone_serial gauge\n");
            for (name, serial, _) in zones {
                let _ = writeln!(out, "ipx_zone_serial{{zone=\"{}\"}} {serial}", escape(name));
            }
            out.push_str("# HELP ipx_zone_records Records of each zone (only while zones are few).\n");
            out.push_str("# TYPE ipx_zone_records gauge\n");
            for (name, _, records) in zones {
                let _ = writeln!(out, "ipx_zone_records{{zone=\"{}\"}} {records}", escape(name));
            }
        }
        out.push_str("# HELP ipx_jobs_open Provisioning jobs not yet ended, by step and state.\n");
        out.push_str("# TYPE ipx_jobs_open gauge\n");
        for (step, state, n) in &self.open_jobs {
            let _ = writeln!(out, "ipx_jobs_open{{step=\"{step}\",state=\"{state}\"}} {n}");
        }
        write_one(
            out,
            "ipx_jobs_oldest_open_age_seconds",
            "gauge",
            "Age of the oldest provisioning job not yet ended (0: none open).",
            self.oldest_open_job_secs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_zone_series_appear_only_when_given_and_names_are_escaped() {
        let mut i = Inventory {
            teams: 1,
            zones: 2,
            records: 7,
            per_zone: Some(vec![("a.test".into(), 5, 3), ("we\"ird.test".into(), 9, 4)]),
            open_jobs: vec![("create", "pending", 2)],
            oldest_open_job_secs: 42,
        };
        let mut out = String::new();
        i.render(&mut out);
        assert!(out.contains("\nipx_zones 2\n"));
        assert!(out.contains("ipx_zone_serial{zone=\"a.test\"} 5\n"));
        assert!(out.contains("ipx_zone_records{zone=\"we\\\"ird.test\"} 4\n"));
        assert!(out.contains("ipx_jobs_open{step=\"create\",state=\"pending\"} 2\n"));
        assert!(out.contains("ipx_jobs_oldest_open_age_seconds 42\n"));
        i.per_zone = None;
        let mut out = String::new();
        i.render(&mut out);
        assert!(!out.contains("ipx_zone_serial"));
    }
}
