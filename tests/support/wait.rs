//! Waiting for the lab to get somewhere, bounded.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Polls `cond` every 50 ms until it holds; panics naming `what` after 20 s.
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    eventually_within(what, Duration::from_secs(20), cond)
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `limit`.
pub fn eventually_within(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never happened within {limit:?}: {what}");
}
