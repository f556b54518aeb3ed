//! Time as the domain speaks of it: one `Timestamp` type, shown and stored as RFC 3339 UTC
//! with milliseconds (`2026-11-26T00:00:00.005Z`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            millis: d.as_millis() as i64,
        }
    }

    /// The start of second `secs` of the Unix epoch.
    pub fn from_unix(secs: u64) -> Self {
        Self {
            millis: secs as i64 * 1000,
        }
    }

    pub fn from_unix_millis(millis: i64) -> Self {
        Self { millis }
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(self) -> i64 {
        self.millis
    }

    /// This instant moved by `millis` (earlier when negative).
    pub fn plus_millis(self, millis: i64) -> Self {
        Self {
            millis: self.millis.saturating_add(millis),
        }
    }

    /// Whole seconds since the epoch.
    pub fn unix_secs(self) -> u64 {
        self.millis.div_euclid(1000).max(0) as u64
    }

    /// Whether the instant has come.
    pub fn is_past(self) -> bool {
        Self::now() >= self
    }

    /// The whole second `secs` seconds from now (expiry times are kept to the second).
    pub fn in_secs(secs: u64) -> Self {
        Self::from_unix(unix_now().saturating_add(secs))
    }

    /// Reads what `Display` writes (milliseconds optional).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        // Read byte by byte: every record of a page has two of these.
        let digits = |r: std::ops::Range<usize>| -> Option<i64> {
            b.get(r)?
                .iter()
                .try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let millis = match (b[19], text.len()) {
            (b'Z', 20) => 0,
            (b'.', 24) if b[23] == b'Z' => digits(20..23)?,
            _ => return None,
        };
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        Some(Self {
            millis: secs * 1000 + millis,
        })
    }
}

impl Timestamp {
    /// The RFC 3339 text in a fixed buffer when the year has four digits (every instant
    /// this program makes): written without the formatting machinery, since every record
    /// of an API page shows two.
    fn rfc3339(self) -> Option<[u8; 24]> {
        let (year, month, day, hour, minute, second, millis) = self.civil();
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, hour);
        put(14, 2, minute);
        put(17, 2, second);
        put(20, 3, millis);
        Some(out)
    }

    /// (year, month, day, hour, minute, second, millisecond), proleptic Gregorian, UTC.
    fn civil(self) -> (i64, i64, i64, i64, i64, i64, i64) {
        // Civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar.
        let secs = self.millis.div_euclid(1000);
        let millis = self.millis.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60, millis)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.rfc3339() {
            return f.write_str(std::str::from_utf8(&text).expect("ASCII digits"));
        }
        let (year, month, day, hour, minute, second, millis) = self.civil();
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        )
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            Some(text) => s.serialize_str(std::str::from_utf8(&text).expect("ASCII digits")),
            None => s.collect_str(self),
        }
    }
}

/// Read from RFC 3339 text, or from Unix seconds (how token expiry is stored).
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 UTC time or Unix seconds")
            }

            fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Timestamp, E> {
                Timestamp::parse(t).ok_or_else(|| E::custom(format!("{t:?} is not an RFC 3339 UTC time")))
            }

            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_unix(secs))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `Option<Timestamp>` as Unix seconds, for the rows that have always stored it so (token
/// expiry): an older binary reads them back.
pub mod unix_secs {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.unix_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<Timestamp>::deserialize(d)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_and_parse_known_instants() {
        assert_eq!(Timestamp { millis: 0 }.to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp {
                millis: 1_795_651_200_005
            }
            .to_string(),
            "2026-11-26T00:00:00.005Z"
        );
        for t in [0, 1_795_651_200_005, 951_782_400_123, 4_102_444_799_999] {
            let ts = Timestamp { millis: t };
            assert_eq!(Timestamp::parse(&ts.to_string()), Some(ts));
        }
        assert_eq!(
            Timestamp::parse("2026-11-26T00:00:00Z"),
            Some(Timestamp::from_unix(1_795_651_200))
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-11-26 00:00:00Z",
            "2026-11-26T00:00:00.5Z",
            "yesterday",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fast_text_is_the_formatted_text_and_reads_back() {
        // Every 7,919,993 s (a prime, so seconds, days and months all move) from 1900 to 2200,
        // plus the edges of the fast path.
        let mut samples: Vec<i64> = (-2_208_988_800_000i64..7_258_118_400_000)
            .step_by(7_919_993_001)
            .collect();
        samples.extend([
            -62_167_219_200_000,
            253_402_300_799_999,
            951_868_799_999,
            951_868_800_000,
        ]);
        for millis in samples {
            let t = Timestamp { millis };
            let (year, month, day, hour, minute, second, ms) = t.civil();
            let slow = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z");
            assert_eq!(t.to_string(), slow, "{millis}");
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{slow}\""));
            assert_eq!(Timestamp::parse(&slow), Some(t), "{slow}");
        }
        // Past year 9999 the formatter says so rather than a wrong four digits.
        let far = Timestamp {
            millis: 253_402_300_800_000,
        };
        assert_eq!(far.to_string(), "10000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::parse("2026-11-26T00:0a:00Z"), None);
        assert_eq!(Timestamp::parse("2026-11-26T00:00:00.0x5Z"), None);
    }

    #[test]
    fn stored_unix_seconds_still_read() {
        let t: Timestamp = serde_json::from_str("1795651200").unwrap();
        assert_eq!(t.to_string(), "2026-11-26T00:00:00.000Z");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-26T00:00:00.000Z\"");
    }
}
