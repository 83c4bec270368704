//! A rung's release as a plan knows it: an exact patch, or the newest patch
//! of a minor that no host's repository lists yet. A host's apt sources
//! name one minor (pkgs.k8s.io has a repository per minor), so the patches
//! of the ladder's middle minors become known only once a host's source is
//! switched to them: the rung's first control plane reads the newest at
//! apply, and the rung's other nodes take the same.

use crate::kube::kubeadm::Release;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RungRelease {
    Exact(Release),
    /// `(major, minor)`: its newest patch, read at apply.
    NewestPatch(u32, u32),
}

impl RungRelease {
    /// `(1, 33)`.
    pub fn minor(&self) -> (u32, u32) {
        match self {
            RungRelease::Exact(r) => r.minor(),
            RungRelease::NewestPatch(a, b) => (*a, *b),
        }
    }

    pub fn exact(&self) -> Option<Release> {
        match self {
            RungRelease::Exact(r) => Some(*r),
            RungRelease::NewestPatch(..) => None,
        }
    }

    /// The oldest release that counts as on this rung (a newest patch:
    /// any patch of its minor).
    pub fn floor(&self) -> Release {
        match self {
            RungRelease::Exact(r) => *r,
            RungRelease::NewestPatch(a, b) => Release(*a, *b, 0),
        }
    }

    /// The plan's words: `v1.33.3`, or `v1.33 (newest patch at apply)`.
    pub fn words(&self) -> String {
        match self {
            RungRelease::Exact(r) => r.to_string(),
            RungRelease::NewestPatch(..) => format!("{self} (newest patch at apply)"),
        }
    }

    /// Patches compare as numbers; the newest patch of a minor comes after
    /// every exact patch of it.
    fn key(&self) -> (u32, u32, u64) {
        match self {
            RungRelease::Exact(r) => (r.0, r.1, u64::from(r.2)),
            RungRelease::NewestPatch(a, b) => (*a, *b, u64::MAX),
        }
    }
}

impl From<Release> for RungRelease {
    fn from(r: Release) -> RungRelease {
        RungRelease::Exact(r)
    }
}

impl Ord for RungRelease {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for RungRelease {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `v1.33.3`, or `v1.33` for a newest patch.
impl std::fmt::Display for RungRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RungRelease::Exact(r) => r.fmt(f),
            RungRelease::NewestPatch(a, b) => write!(f, "v{a}.{b}"),
        }
    }
}

impl std::str::FromStr for RungRelease {
    type Err = String;
    fn from_str(s: &str) -> Result<RungRelease, String> {
        if let Ok(r) = s.parse::<Release>() {
            return Ok(RungRelease::Exact(r));
        }
        let bad = || format!("{s:?} is not a release like v1.33.2 or a minor like v1.33");
        let (a, b) = s
            .strip_prefix('v')
            .unwrap_or(s)
            .split_once('.')
            .ok_or_else(bad)?;
        let number = |p: &str| -> Result<u32, String> {
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        Ok(RungRelease::NewestPatch(number(a)?, number(b)?))
    }
}

impl serde::Serialize for RungRelease {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RungRelease {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RungRelease, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newest_patch_reads_as_its_minor_and_sorts_after_its_patches() {
        let newest: RungRelease = "v1.33".parse().unwrap();
        assert_eq!(newest, RungRelease::NewestPatch(1, 33));
        assert_eq!(newest.to_string(), "v1.33");
        assert_eq!(newest.words(), "v1.33 (newest patch at apply)");
        let exact: RungRelease = "v1.33.3".parse().unwrap();
        assert_eq!(exact, RungRelease::Exact(Release(1, 33, 3)));
        assert!(exact < newest && newest < "v1.34.0".parse().unwrap());
        assert_eq!(newest.floor(), Release(1, 33, 0));
        assert_eq!(exact.floor(), Release(1, 33, 3));
        for bad in ["v1", "v1.x", "1.33.", "v1.33.3.1", ""] {
            assert!(bad.parse::<RungRelease>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&newest).unwrap();
        assert_eq!(json, "\"v1.33\"");
        assert_eq!(serde_json::from_str::<RungRelease>(&json).unwrap(), newest);
    }
}
