//! Debian version ordering (dpkg's `verrevcmp`), so that the simulated apt
//! picks the same candidate as the real one: `1.32.10-1.1` is newer than
//! `1.32.9-1.1`, `1.6.20~ds1-1` older than `1.6.20-1`, an epoch beats all.

use std::cmp::Ordering;

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((up, rev)) => (epoch, up, rev),
        None => (epoch, rest, ""),
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Compares two Debian versions as `dpkg --compare-versions` does.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

/// The upstream part of a Debian version: `1.32.4` of `1.32.4-1.1`.
pub(crate) fn upstream(v: &str) -> &str {
    split(v).1
}

/// apt's version match for `pkg=VERSION`: exact, or a glob with `*`.
pub(crate) fn matches(pattern: &str, version: &str) -> bool {
    fn glob(p: &[u8], v: &[u8]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some((b'*', rest)) => (0..=v.len()).any(|k| glob(rest, &v[k..])),
            Some((c, rest)) => v.first() == Some(c) && glob(rest, &v[1..]),
        }
    }
    glob(pattern.as_bytes(), version.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        assert_eq!(compare("1.32.10-1.1", "1.32.9-1.1"), Ordering::Greater);
        assert_eq!(compare("1.32.4-1.1", "1.32.4-1.1"), Ordering::Equal);
        assert_eq!(compare("1.6.20~ds1-1+b1", "1.6.20-1"), Ordering::Less);
        assert_eq!(compare("1:1.0", "9.9"), Ordering::Greater);
        assert_eq!(compare("1.33.0-1.1", "1.32.4-1.1"), Ordering::Greater);
        assert_eq!(
            compare("2.1.4-1~debian.12~bookworm", "1.7.27-1"),
            Ordering::Greater
        );
    }

    #[test]
    fn upstream_drops_epoch_and_revision() {
        assert_eq!(upstream("1.32.4-1.1"), "1.32.4");
        assert_eq!(upstream("1:6.1-1"), "6.1");
    }

    #[test]
    fn version_globs_match_as_apt_matches_them() {
        assert!(matches("1.32.4-*", "1.32.4-1.1"));
        assert!(matches("1.32.4-1.1", "1.32.4-1.1"));
        assert!(!matches("1.32.4-1.1", "1.32.40-1.1"));
        assert!(!matches("1.32.*", "1.33.0-1.1"));
    }
}
