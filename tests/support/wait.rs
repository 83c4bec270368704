//! Waiting for something to happen, bounded: the only way tests wait. A
//! test waits on the event it needs (a line, a file, a state), polled at a
//! short interval, never on a fixed sleep that "should be enough".

use std::time::{Duration, Instant};

/// How long `eventually` waits before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `PATIENCE`.
#[track_caller]
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    eventually_within(what, PATIENCE, cond)
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `limit`.
#[track_caller]
pub fn eventually_within(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    eventually_some(what, limit, || cond().then_some(()))
}

/// Polls `probe` every 20 ms until it gives a value; panics naming `what`
/// after `limit`.
#[track_caller]
pub fn eventually_some<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "never happened within {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
