//! Real programs some tests need (sshd, haproxy). build.rs finds them and
//! sets `cfg(has_sshd)`, `cfg(has_haproxy)` and `cfg(ci)`; a test that needs
//! one is marked
//!
//! ```ignore
//! #[cfg_attr(not(any(has_sshd, ci)), ignore = "needs sshd: apt-get install openssh-server")]
//! ```
//!
//! so that without it, outside CI, it shows as ignored (never as passed),
//! and under CI it runs and fails in `require_*`, saying what to install.

use std::path::Path;

/// Where build.rs looked for sshd (`GT_TEST_SSHD` overrides it).
pub const SSHD: &str = env!("GT_TEST_SSHD_PATH");
/// Where build.rs looked for haproxy (`GT_TEST_HAPROXY` overrides it).
pub const HAPROXY: &str = env!("GT_TEST_HAPROXY_PATH");

/// Panics, naming the package, unless sshd is installed.
#[track_caller]
pub fn require_sshd() {
    require(SSHD, "openssh-server");
}

/// Panics, naming the package, unless haproxy is installed.
#[track_caller]
pub fn require_haproxy() {
    require(HAPROXY, "haproxy");
}

#[track_caller]
fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is not installed and this test needs it: apt-get install {package} \
         (scripts/test.sh installs it when run as root)"
    );
}
