//! Tells the integration tests which real components this machine has, so
//! that a test needing one is visibly ignored where it is missing, and a
//! failure where it must not be (CI).
//!
//! For each component found this emits `cfg(has_sshd)` / `cfg(has_haproxy)` /
//! `cfg(has_kubectl)` (a real kubectl 1.32, whose flag parser checks every
//! kubectl line gt builds), `cfg(has_etcd)` (a directory holding etcd 3.5's
//! etcd, etcdctl and etcdutl, which the lab's control planes run),
//! and `cfg(ci)` when `CI` (set by CI services) or `GT_TEST_REQUIRE` is
//! non-empty. Tests carry
//! `#[cfg_attr(not(any(has_sshd, ci)), ignore = "needs sshd: ...")]`: outside
//! CI cargo lists them as ignored rather than passed; under CI they run and
//! fail naming the package to install (tests/support/components.rs).
//!
//! Where to look is overridable with `GT_TEST_SSHD`, `GT_TEST_HAPROXY`,
//! `GT_TEST_KUBECTL` and `GT_TEST_ETCD_DIR` (test-only: point one at a path
//! that does not exist to see what a machine without it does; scripts/test.sh
//! sets the last two to what it installed); the path decided here reaches the
//! tests as `GT_TEST_SSHD_PATH` / `GT_TEST_HAPROXY_PATH` /
//! `GT_TEST_KUBECTL_PATH` / `GT_TEST_ETCD_PATH` (the etcd binary), so both
//! sides agree.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_sshd, has_haproxy, has_kubectl, has_etcd, ci)");
    for var in [
        "CI",
        "GT_TEST_REQUIRE",
        "GT_TEST_SSHD",
        "GT_TEST_HAPROXY",
        "GT_TEST_KUBECTL",
        "GT_TEST_ETCD_DIR",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=build.rs");

    let sshd = overridable("GT_TEST_SSHD", || PathBuf::from("/usr/sbin/sshd"));
    let haproxy = overridable("GT_TEST_HAPROXY", find_haproxy);
    let kubectl = overridable("GT_TEST_KUBECTL", find_kubectl);
    let etcd = overridable("GT_TEST_ETCD_DIR", find_etcd_dir).join("etcd");
    for (cfg, env, path) in [
        ("has_sshd", "GT_TEST_SSHD_PATH", &sshd),
        ("has_haproxy", "GT_TEST_HAPROXY_PATH", &haproxy),
        ("has_kubectl", "GT_TEST_KUBECTL_PATH", &kubectl),
        ("has_etcd", "GT_TEST_ETCD_PATH", &etcd),
    ] {
        println!("cargo::rustc-env={env}={}", path.display());
        if path.is_file() {
            // Only existing paths: cargo reruns a script whose watched path is
            // missing on every build. Installing one later means a `touch build.rs`.
            println!("cargo::rerun-if-changed={}", path.display());
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if set("CI") || set("GT_TEST_REQUIRE") {
        println!("cargo::rustc-cfg=ci");
    }
}

fn overridable(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(default)
}

/// Where the lab looks for haproxy: PATH, then /usr/sbin.
fn find_haproxy() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("/usr/sbin/haproxy").to_path_buf())
}

/// Where scripts/test.sh installs kubectl 1.32 (under the default target
/// directory), then the versioned binary of the `kubectl` package (Google's
/// apt repository ships one per minor).
fn find_kubectl() -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let installed = manifest_dir.join("target/gt-test/kubectl-1.32");
    [
        installed.clone(),
        PathBuf::from("/usr/lib/google-cloud-sdk/bin/kubectl.1.32"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .unwrap_or(installed)
}

/// Where scripts/install-etcd.sh puts etcd 3.5 (under the default target
/// directory), which is also where the lab looks last.
fn find_etcd_dir() -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    manifest_dir.join("target/gt-test/etcd-3.5")
}
