//! When a certificate is renewed: at two thirds of its lifetime, or at a random point of the
//! CA's suggested window when it offers ACME Renewal Information (RFC 9773 §4.2); after a
//! failure, with a backoff that doubles and never waits past a quarter of the time left.
//! Each time is spread by a little randomness, so certificates issued together are not all
//! renewed together. Pure: the randomness is passed in, in `[0, 1)`.

use crate::domain::{CertificateInfo, Timestamp, Window};

/// First retry after a failure; doubled each time, up to a day.
const FIRST_RETRY_MS: i64 = 5 * 60 * 1000;
const MAX_RETRY_MS: i64 = 24 * 3600 * 1000;
/// Shortest wait between two attempts.
const MIN_RETRY_MS: i64 = 1000;
/// The spread of a scheduled renewal: this share of the lifetime, before the two-thirds mark.
const SPREAD: f64 = 1.0 / 30.0;

/// When a new certificate is first to be renewed.
pub fn first_renewal(info: &CertificateInfo, window: Option<Window>, random: f64, now: Timestamp) -> Timestamp {
    if let Some(w) = window.filter(|w| w.end > w.start) {
        // RFC 9773 §4.2: a uniformly random time in the window; now when it has begun.
        let span = w.end.unix_millis() - w.start.unix_millis();
        return w.start.plus_millis((span as f64 * random) as i64).max(now);
    }
    let (start, end) = (info.not_before.unix_millis(), info.not_after.unix_millis());
    let lifetime = (end - start).max(0);
    let spread = (lifetime as f64 * SPREAD * random) as i64;
    Timestamp::from_unix_millis(start + lifetime * 2 / 3 - spread).max(now)
}

/// When to try again after the `failures`-th failure in a row.
pub fn retry(info: &CertificateInfo, failures: u32, random: f64, now: Timestamp) -> Timestamp {
    let doubled = FIRST_RETRY_MS.saturating_mul(1 << failures.saturating_sub(1).min(20));
    let mut wait = doubled.min(MAX_RETRY_MS);
    let left = info.not_after.unix_millis() - now.unix_millis();
    if left > 0 {
        wait = wait.min((left / 4).max(MIN_RETRY_MS));
    }
    // Up to a tenth later, so that failures at the same moment do not retry together.
    now.plus_millis(wait + (wait as f64 * 0.1 * random) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn cert(not_before: i64, days: i64) -> CertificateInfo {
        CertificateInfo {
            subject: String::new(),
            sans: vec![],
            issuer: String::new(),
            serial: "01".into(),
            not_before: Timestamp::from_unix_millis(not_before),
            not_after: Timestamp::from_unix_millis(not_before + days * DAY),
            fingerprint_sha256: String::new(),
            ari_id: None,
        }
    }

    #[test]
    fn a_certificate_is_renewed_at_two_thirds_of_its_life_spread_a_little() {
        let c = cert(0, 90);
        let now = Timestamp::from_unix_millis(0);
        assert_eq!(first_renewal(&c, None, 0.0, now).unix_millis(), 60 * DAY);
        let latest_spread = first_renewal(&c, None, 0.999, now).unix_millis();
        assert!(latest_spread < 60 * DAY && latest_spread > 57 * DAY, "{latest_spread}");
        let late = Timestamp::from_unix_millis(70 * DAY);
        assert_eq!(first_renewal(&c, None, 0.5, late), late, "overdue: now");
    }

    #[test]
    fn the_cas_window_wins_and_a_random_point_in_it_is_chosen() {
        let c = cert(0, 90);
        let w = Window {
            start: Timestamp::from_unix_millis(10 * DAY),
            end: Timestamp::from_unix_millis(12 * DAY),
        };
        let now = Timestamp::from_unix_millis(DAY);
        assert_eq!(first_renewal(&c, Some(w), 0.0, now).unix_millis(), 10 * DAY);
        assert_eq!(first_renewal(&c, Some(w), 0.5, now).unix_millis(), 11 * DAY);
        let inside = Timestamp::from_unix_millis(11 * DAY);
        assert_eq!(first_renewal(&c, Some(w), 0.0, inside), inside, "a window begun: now");
        let backwards = Window {
            start: w.end,
            end: w.start,
        };
        assert_eq!(
            first_renewal(&c, Some(backwards), 0.0, now).unix_millis(),
            60 * DAY,
            "ignored"
        );
    }

    #[test]
    fn retries_back_off_but_never_past_a_quarter_of_the_time_left() {
        let c = cert(0, 90);
        let now = Timestamp::from_unix_millis(60 * DAY);
        let wait = |n| retry(&c, n, 0.0, now).unix_millis() - now.unix_millis();
        assert_eq!(wait(1), 5 * 60_000);
        assert_eq!(wait(2), 10 * 60_000);
        assert_eq!(wait(12), DAY, "at most a day");
        assert_eq!(wait(u32::MAX), DAY);
        let short = cert(0, 0).clone();
        let mut short = short;
        short.not_after = Timestamp::from_unix_millis(60_000);
        let near = Timestamp::from_unix_millis(40_000);
        assert_eq!(
            retry(&short, 1, 0.0, near).unix_millis() - 40_000,
            5_000,
            "20 s left: 5 s"
        );
        let expired = Timestamp::from_unix_millis(120_000);
        assert_eq!(
            retry(&short, 1, 0.0, expired).unix_millis() - 120_000,
            5 * 60_000,
            "expired: plain backoff"
        );
        assert!(retry(&c, 1, 0.999, now).unix_millis() - now.unix_millis() < 5 * 60_000 * 11 / 10);
    }
}
