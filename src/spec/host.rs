//! `[defaults.host]` / `[nodes.NAME.host]`: the host software and kernel
//! settings gt keeps each node at (packages, container runtime, swap,
//! modules, sysctls, the Raspberry Pi memory cgroup).

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where the kube packages come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "url", rename_all = "lowercase")]
pub enum PackageSource {
    /// pkgs.k8s.io's repository of the cluster's minor, as the kubeadm
    /// install docs configure it.
    Upstream,
    /// A mirror of it for sites without internet: the URL stands where
    /// `https://pkgs.k8s.io/core:/stable:/v1.32/deb/` would.
    Mirror(String),
}

/// What gt keeps a node's host at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSettings {
    /// `false`: the host is prepared some other way and gt installs nothing
    /// on it (the behaviour before gt managed hosts).
    pub manage: bool,
    pub source: PackageSource,
    /// Kernel modules loaded and persisted (/etc/modules-load.d/k8s.conf).
    pub modules: BTreeSet<String>,
    /// Sysctls set and persisted (/etc/sysctl.d/k8s.conf), value as written.
    pub sysctls: BTreeMap<String, String>,
    /// gt may edit the kernel command line and reboot the host.
    pub allow_reboot: bool,
}

/// What the kubeadm install docs prescribe (container-runtimes.md): IPv4
/// forwarding; modules and bridge sysctls depend on the CNI, so a user adds
/// them (`modules = ["br_netfilter"]`).
pub const DEFAULT_SYSCTLS: &[(&str, &str)] = &[("net.ipv4.ip_forward", "1")];
pub const DEFAULT_MODULES: &[&str] = &[];

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            manage: true,
            source: PackageSource::Upstream,
            modules: DEFAULT_MODULES.iter().map(|m| m.to_string()).collect(),
            sysctls: DEFAULT_SYSCTLS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            allow_reboot: false,
        }
    }
}

/// A sysctl name as `sysctl` takes it (`net.ipv4.ip_forward`): dot-separated
/// words of letters, digits, `_` and `-`; it names a file under /proc/sys.
pub fn check_sysctl_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.split('.').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a sysctl name; write dot-separated words, e.g. \"net.ipv4.ip_forward\"",
            s.escape_debug()
        ))
    }
}

/// A sysctl value: one line of printable text without `#` (a comment in a
/// sysctl.d file) or leading/trailing blanks (sysctl strips them).
pub fn check_sysctl_value(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.trim() != s
        || s.contains(['#', ';'])
        || s.chars().any(|c| c.is_control() && c != '\t')
    {
        Err(format!(
            "`{}` is not a sysctl value gt can persist; write a number or a word, e.g. \"1\"",
            s.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// A kernel module name as modprobe takes it.
pub fn check_module_name(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a kernel module name; write e.g. \"br_netfilter\"",
            s.escape_debug()
        ))
    }
}

/// A mirror URL: http(s), no blanks or quotes (it goes into an apt source line).
pub fn check_mirror_url(s: &str) -> Result<String, String> {
    let scheme_ok = s.starts_with("https://") || s.starts_with("http://");
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or("");
    if !scheme_ok || rest.is_empty() || rest.starts_with('/') {
        return Err(format!(
            "`{}` is not an http(s) URL; write the mirror's URL of the repository, e.g. \"https://mirror.example/kubernetes/v1.32/deb/\"",
            s.escape_debug()
        ));
    }
    if s.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '"' | '\'' | '[' | ']' | '\\' | '$' | '`')
    }) {
        return Err(format!(
            "`{}` contains a blank, a quote, a bracket or a shell character, which an apt source line cannot carry; write a plain URL",
            s.escape_debug()
        ));
    }
    Ok(if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_what_the_install_docs_prescribe() {
        let h = HostSettings::default();
        assert!(h.manage);
        assert!(!h.allow_reboot);
        assert_eq!(h.source, PackageSource::Upstream);
        assert_eq!(
            h.sysctls.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn names_and_values_are_checked() {
        assert!(check_sysctl_name("net.ipv4.ip_forward").is_ok());
        assert!(check_sysctl_name("net..x").is_err());
        assert!(check_sysctl_name("net/ipv4").is_err());
        assert!(check_sysctl_value("1").is_ok());
        assert!(check_sysctl_value("4096 87380").is_ok());
        assert!(check_sysctl_value(" 1").is_err());
        assert!(check_sysctl_value("1 # on").is_err());
        assert!(check_module_name("br_netfilter").is_ok());
        assert!(check_module_name("-r").is_err());
        assert_eq!(
            check_mirror_url("http://mirror.lan/k8s/v1.32/deb").unwrap(),
            "http://mirror.lan/k8s/v1.32/deb/"
        );
        assert!(check_mirror_url("ftp://x").is_err());
        assert!(check_mirror_url("https://x/ y").is_err());
        assert!(check_mirror_url("https://x/$(id)").is_err());
    }
}
