//! Kubernetes versions as kubeadm compares them, what each minor's kubeadm
//! deploys (etcd and CoreDNS image tags), and kubeadm's version skew policy
//! for `kubeadm upgrade apply` (`phases/upgrade/policy.go`).
//!
//! The lab's repositories hold 1.30 to 1.35; the tags are what the newest
//! patch of each minor in those repositories ships, except 1.32, where the
//! lab's `kubeadm init` has always written etcd 3.5.16-0 (kubeadm 1.32.4's).

use std::fmt;

/// A released version, `v1.33.2` (kubeadm's `version.ParseSemantic` without
/// pre-releases, which the lab's repositories do not hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) patch: u32,
}

impl Version {
    /// `v1.33.2` or `1.33.2`; `None` for anything else (`v1.33`, `stable`).
    pub(crate) fn parse(s: &str) -> Option<Version> {
        let mut parts = s.strip_prefix('v').unwrap_or(s).split('.');
        let mut next = || -> Option<u32> {
            let p = parts.next()?;
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return None;
            }
            p.parse().ok()
        };
        let v = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        parts.next().is_none().then_some(v)
    }

    /// `1.33.2`: Go's `version.Version.String()`, which kubeadm prints in places.
    pub(crate) fn bare(self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The etcd image tag kubeadm of minor `minor` deploys (`SupportedEtcdVersion`).
pub(crate) fn etcd_tag(minor: u32) -> &'static str {
    match minor {
        0..=31 => "3.5.15-0",
        32 => "3.5.16-0",
        33 => "3.5.21-0",
        34 => "3.6.4-0",
        _ => "3.6.5-0",
    }
}

/// The CoreDNS image tag kubeadm of minor `minor` deploys (`CoreDNSVersion`).
pub(crate) fn coredns_tag(minor: u32) -> &'static str {
    match minor {
        0..=30 => "v1.11.1",
        31 | 32 => "v1.11.3",
        33 => "v1.12.0",
        34 => "v1.12.1",
        _ => "v1.13.1",
    }
}

/// How many minors a kubelet may trail the control plane (1.29 and later).
const KUBELET_SKEW: u32 = 3;

/// What kubeadm's `EnforceVersionPolicies` finds wrong with upgrading to `target`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PolicyErrors {
    /// Fatal whatever the flags say.
    pub(crate) mandatory: Vec<String>,
    /// Fatal unless `--force`.
    pub(crate) skippable: Vec<String>,
}

/// kubeadm's version skew policy for an upgrade of a cluster at `cluster` to
/// `target` by a kubeadm at `kubeadm`, with the cluster's kubelets at `kubelets`.
pub(crate) fn policy(
    cluster: Version,
    kubeadm: Version,
    target: Version,
    kubelets: &[String],
) -> PolicyErrors {
    let mut e = PolicyErrors::default();
    // constants.MinimumControlPlaneVersion: one minor below kubeadm's, patch 0.
    let minimum = Version {
        major: kubeadm.major,
        minor: kubeadm.minor.saturating_sub(1),
        patch: 0,
    };
    if minimum >= target {
        e.mandatory.push(format!("Specified version to upgrade to \"{target}\" is equal to or lower than the minimum supported version \"{cluster}\". Please specify a higher version to upgrade to"));
    }
    if target.minor > cluster.minor + 1 {
        e.mandatory.push(format!("Specified version to upgrade to \"{target}\" is too high; kubeadm can upgrade only 1 minor version at a time"));
    }
    if target.minor + 1 < cluster.minor {
        e.mandatory.push(format!("Specified version to downgrade to \"{target}\" is too low; kubeadm can downgrade only 1 minor version at a time"));
    }
    if kubeadm < target {
        if target.minor > kubeadm.minor {
            e.mandatory.push(format!("Specified version to upgrade to \"{target}\" is at least one minor release higher than the kubeadm minor release ({} > {}). Such an upgrade is not supported", target.minor, kubeadm.minor));
        } else {
            e.skippable.push(format!("Specified version to upgrade to \"{target}\" is higher than the kubeadm version \"{kubeadm}\". Upgrade kubeadm first using the tool you used to install kubeadm"));
        }
    }
    if kubeadm.major > target.major || kubeadm.minor > target.minor {
        e.skippable.push(format!(
            "Kubeadm version {kubeadm} can only be used to upgrade to Kubernetes version {}.{}",
            kubeadm.major, kubeadm.minor
        ));
    }
    let too_old: Vec<&str> = kubelets
        .iter()
        .filter(|k| Version::parse(k).is_some_and(|k| target.minor > k.minor + KUBELET_SKEW))
        .map(String::as_str)
        .collect();
    if !too_old.is_empty() {
        e.skippable.push(format!(
            "There are kubelets in this cluster that are too old that have these versions [{}]",
            too_old.join(" ")
        ));
    }
    e
}

/// kubeadm's `FormatErrMsg`: one `\t- ERR\n` line per error.
pub(crate) fn format_errors(errors: &[String]) -> String {
    errors.iter().map(|e| format!("\t- {e}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_parse_only_full_releases() {
        assert_eq!(v("v1.33.2").to_string(), "v1.33.2");
        assert_eq!(v("1.33.2").bare(), "1.33.2");
        for bad in [
            "v1.33",
            "stable-1.33",
            "v1.33.2-rc.1",
            "v1.033.2",
            "1.33.2.1",
            "",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(v("v1.33.10") > v("v1.33.9"));
    }

    #[test]
    fn one_minor_up_with_a_matching_kubeadm_passes() {
        let e = policy(
            v("v1.32.4"),
            v("v1.33.3"),
            v("v1.33.3"),
            &["v1.32.4".into()],
        );
        assert_eq!(e, PolicyErrors::default());
        // A patch upgrade, and re-applying the same version, too.
        let e = policy(v("v1.32.2"), v("v1.32.4"), v("v1.32.4"), &[]);
        assert_eq!(e, PolicyErrors::default());
    }

    #[test]
    fn skipping_a_minor_is_fatal_with_kubeadms_words() {
        let e = policy(v("v1.32.4"), v("v1.34.2"), v("v1.34.2"), &[]);
        assert_eq!(
            e.mandatory,
            vec!["Specified version to upgrade to \"v1.34.2\" is too high; kubeadm can upgrade only 1 minor version at a time"]
        );
        assert!(e.skippable.is_empty());
    }

    #[test]
    fn a_kubeadm_older_than_the_target_is_fatal_across_minors_and_forceable_within_one() {
        let e = policy(v("v1.32.4"), v("v1.32.4"), v("v1.33.3"), &[]);
        assert_eq!(e.mandatory, vec!["Specified version to upgrade to \"v1.33.3\" is at least one minor release higher than the kubeadm minor release (33 > 32). Such an upgrade is not supported"]);
        let e = policy(v("v1.33.0"), v("v1.33.0"), v("v1.33.3"), &[]);
        assert!(e.mandatory.is_empty());
        assert_eq!(e.skippable, vec!["Specified version to upgrade to \"v1.33.3\" is higher than the kubeadm version \"v1.33.0\". Upgrade kubeadm first using the tool you used to install kubeadm"]);
    }

    #[test]
    fn downgrades_below_kubeadms_minimum_and_across_minors_are_refused() {
        // kubeadm 1.33 targeting 1.32.0: at its minimum control plane version.
        let e = policy(v("v1.33.3"), v("v1.33.3"), v("v1.32.0"), &[]);
        assert_eq!(e.mandatory, vec!["Specified version to upgrade to \"v1.32.0\" is equal to or lower than the minimum supported version \"v1.33.3\". Please specify a higher version to upgrade to"]);
        assert_eq!(
            e.skippable,
            vec!["Kubeadm version v1.33.3 can only be used to upgrade to Kubernetes version 1.33"]
        );
        let e = policy(v("v1.34.2"), v("v1.32.4"), v("v1.32.4"), &[]);
        assert_eq!(e.mandatory, vec!["Specified version to downgrade to \"v1.32.4\" is too low; kubeadm can downgrade only 1 minor version at a time"]);
    }

    #[test]
    fn kubelets_more_than_three_minors_behind_need_force() {
        let e = policy(
            v("v1.32.4"),
            v("v1.33.3"),
            v("v1.33.3"),
            &["v1.29.1".into(), "v1.30.12".into(), "v1.32.4".into()],
        );
        assert_eq!(e.skippable, vec!["There are kubelets in this cluster that are too old that have these versions [v1.29.1]"]);
    }

    #[test]
    fn errors_format_as_kubeadm_lists_them() {
        assert_eq!(format_errors(&["a".into(), "b".into()]), "\t- a\n\t- b\n");
    }

    #[test]
    fn each_minor_has_its_etcd_and_coredns() {
        assert_eq!(etcd_tag(32), "3.5.16-0");
        assert_eq!(etcd_tag(33), "3.5.21-0");
        assert_eq!(etcd_tag(34), "3.6.4-0");
        assert_eq!(coredns_tag(32), "v1.11.3");
        assert_eq!(coredns_tag(33), "v1.12.0");
    }
}
