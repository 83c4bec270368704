//! The one compact duration format of gt's messages: `45s`, `3m12s`, `2h05m`
//! (lock ages and lease ends, elapsed time on progress bars). Durations gt
//! passes to kubeadm are Go-style and live with the spec (`spec::format_duration`).

use std::time::Duration;

/// Whole seconds, truncated: `45s`, `3m12s`, `2h05m`.
pub fn compact(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Rounded to the nearest second, for counters that move every second.
pub fn compact_rounded(d: Duration) -> String {
    compact(Duration::from_secs(d.as_secs_f64().round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_minutes_and_hours() {
        assert_eq!(compact(Duration::from_secs(7)), "7s");
        assert_eq!(compact(Duration::from_secs(192)), "3m12s");
        assert_eq!(compact(Duration::from_secs(7500)), "2h05m");
        assert_eq!(compact(Duration::from_millis(59_900)), "59s");
        assert_eq!(compact_rounded(Duration::from_millis(59_600)), "1m00s");
        assert_eq!(compact_rounded(Duration::from_millis(7_400)), "7s");
    }
}
