//! The simulated cluster's clock: the wall clock, shifted by `GT_LAB_NOW_OFFSET`
//! seconds so that tests can see tokens and uploaded certificates expire
//! without waiting two hours.

use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable: seconds added to the wall clock (may be negative or fractional).
pub(crate) const NOW_OFFSET_ENV: &str = "GT_LAB_NOW_OFFSET";

/// Seconds since the Unix epoch, as the simulated cluster sees them.
pub(crate) fn now() -> f64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let offset = std::env::var(NOW_OFFSET_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    wall + offset
}

/// `2025-11-23T21:06:00Z` (UTC, whole seconds), as Go's `time.RFC3339` prints UTC times.
pub(crate) fn rfc3339(secs: f64) -> String {
    let secs = secs.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `duration.ShortHumanDuration` (apimachinery), used by `kubeadm token list`'s TTL.
pub(crate) fn short_human_duration(secs: f64) -> String {
    let s = secs as i64;
    if s < -1 {
        return "<invalid>".into();
    }
    if s < 0 {
        return "0s".into();
    }
    if s < 60 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

/// Go's `duration.HumanDuration` (apimachinery), used by kubectl's AGE column.
pub(crate) fn human_duration(secs: f64) -> String {
    let s = secs as i64;
    if s < -1 {
        return "<invalid>".into();
    }
    if s < 0 {
        return "0s".into();
    }
    if s < 120 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        let rs = s % 60;
        return if rs == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rs}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Go's `time.ParseDuration` (`15m`, `24h`, `1h30m`, `2.5s`, `-1s`, `0`), in
/// seconds. The lab's own reading, so that a duration gt gets wrong shows up as
/// the real tools' error rather than as the same mistake made twice.
pub(crate) fn parse_go_duration(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    // Go accepts a bare zero, and only zero, without a unit.
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        let number: f64 = format!("{}.{}", if int.is_empty() { "0" } else { int }, frac)
            .trim_end_matches('.')
            .parse()
            .ok()?;
        total += number * scale;
        rest = after;
    }
    // Go keeps a duration in an int64 of nanoseconds and refuses more
    // (about 2562047h47m16s) as an invalid duration, as kubectl's flags do.
    if total * 1e9 > i64::MAX as f64 {
        return None;
    }
    Some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_beyond_gos_int64_of_nanoseconds_is_invalid() {
        assert_eq!(parse_go_duration("2562047h"), Some(2_562_047.0 * 3600.0));
        assert_eq!(parse_go_duration("2562048h"), None);
        assert_eq!(parse_go_duration("5124095576030431h0m15s"), None);
    }

    #[test]
    fn rfc3339_formats_utc_like_go() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_614_973_882.7), "2021-03-05T19:51:22Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn short_human_duration_matches_apimachinery() {
        assert_eq!(short_human_duration(30.0), "30s");
        assert_eq!(short_human_duration(14.0 * 60.0 + 59.0), "14m");
        assert_eq!(short_human_duration(23.0 * 3600.0 + 59.0 * 60.0), "23h");
        assert_eq!(short_human_duration(3.0 * 86400.0), "3d");
    }

    #[test]
    fn human_duration_matches_apimachinery() {
        assert_eq!(human_duration(119.0), "119s");
        assert_eq!(human_duration(5.0 * 60.0 + 12.0), "5m12s");
        assert_eq!(human_duration(45.0 * 60.0), "45m");
        assert_eq!(human_duration(5.0 * 3600.0 + 60.0), "5h1m");
        assert_eq!(human_duration(3.0 * 86400.0 + 7200.0), "3d2h");
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("15m"), Some(900.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("0"), Some(0.0));
        assert_eq!(parse_go_duration("2.5s"), Some(2.5));
        assert_eq!(parse_go_duration("15"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration(".5m"), Some(30.0));
        assert_eq!(parse_go_duration("1.h"), Some(3600.0));
        assert_eq!(parse_go_duration("-1m"), Some(-60.0));
        assert_eq!(parse_go_duration("300ms"), Some(0.3));
        assert_eq!(parse_go_duration("1\u{b5}s"), Some(1e-6));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("-"), None);
        assert_eq!(parse_go_duration("."), None);
        assert_eq!(parse_go_duration("1h 30m"), None);
    }
}
