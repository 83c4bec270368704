//! Validated value types of the desired state. Parse once, here; nothing
//! downstream re-validates strings (STYLE.md §2).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A Kubernetes node name: a DNS-1123 subdomain (lowercase alphanumerics,
/// `-` and `.`, at most 253 characters, alphanumeric at both ends).
///
/// Shared, not copied: a plan names each node in its change, its steps,
/// their ids and the graph's index, and a copy each was an allocation and a
/// copy per node, which at thousands of nodes took the plan out of the cache.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct NodeName(Arc<str>);

impl NodeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if is_dns_subdomain(&s) {
            Ok(NodeName(s.into()))
        } else {
            Err(format!(
                "node name {s:?} is not a DNS subdomain: use lowercase letters, digits, '-' and '.', \
                 starting and ending with a letter or digit, at most 253 characters"
            ))
        }
    }
}

impl FromStr for NodeName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NodeName::try_from(s.to_string())
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> String {
        n.0.to_string()
    }
}

impl Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// What a node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CPU architecture as Kubernetes names it (`kubernetes.io/arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
    Arm,
    Ppc64le,
    S390x,
    Riscv64,
}

impl Arch {
    pub const ALL: [Arch; 6] = [
        Arch::Amd64,
        Arch::Arm64,
        Arch::Arm,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Riscv64,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Arm => "arm",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// What `uname -m` prints on this architecture.
    pub fn uname_machine(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
            Arch::Arm => "armv7l",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// Parses either the Kubernetes name or a `uname -m` machine string.
    pub fn parse(s: &str) -> Option<Arch> {
        match s.trim() {
            "amd64" | "x86_64" => Some(Arch::Amd64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            "arm" | "armv7l" | "armv6l" => Some(Arch::Arm),
            "ppc64le" => Some(Arch::Ppc64le),
            "s390x" => Some(Arch::S390x),
            "riscv64" => Some(Arch::Riscv64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label key: optional DNS-subdomain prefix (≤253) + `/` + name (≤63).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelKey(Arc<str>);

impl LabelKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Keys gt never manages: the kubelet and kubeadm own them.
    pub fn is_system_managed(&self) -> bool {
        let k = self.as_str();
        k.starts_with("kubernetes.io/")
            || k.starts_with("beta.kubernetes.io/")
            || k == "node.kubernetes.io/exclude-from-external-load-balancers"
            || k.starts_with("node-role.kubernetes.io/")
            || k.starts_with("node.kubernetes.io/")
            || k.starts_with("topology.kubernetes.io/")
            || k.starts_with("projectcalico.org/")
    }

    /// Whether a kubelet may set this label on its own Node, as
    /// `--node-labels` when it registers: the kubelet refuses to start with
    /// a key in the `kubernetes.io` or `k8s.io` namespaces (their
    /// subdomains too) unless it is one it may set (`[*.]kubelet.kubernetes.io`,
    /// `[*.]node.kubernetes.io`, a few well-known keys), and the
    /// NodeRestriction admission plugin refuses the same. gt registers only
    /// keys outside those namespaces or in the two it may set, and labels
    /// any other with kubectl after the join.
    pub fn kubelet_may_set(&self) -> bool {
        let Some((namespace, _)) = self.as_str().split_once('/') else {
            return true;
        };
        let within =
            |domain: &str| namespace == domain || namespace.ends_with(&format!(".{domain}"));
        !(within("kubernetes.io") || within("k8s.io"))
            || within("kubelet.kubernetes.io")
            || within("node.kubernetes.io")
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Validates a qualified name (label key, taint key). Returns the reason on failure.
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !is_dns_subdomain(p) {
            return Err(format!(
                "prefix {p:?} must be a DNS subdomain (lowercase letters, digits, '-', '.'; at most 253 characters)"
            ));
        }
    }
    if name.contains('/') {
        return Err("a key may contain at most one '/'".into());
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "name {name:?} must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Validates a label value: empty, or ≤63 with the qualified-name charset.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || is_qualified_name_part(s) {
        Ok(())
    } else {
        Err(format!(
            "value {s:?} must be empty or 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

impl TryFrom<String> for LabelKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_qualified_name(&s).map(|()| LabelKey(s.into()))
    }
}

impl From<LabelKey> for String {
    fn from(k: LabelKey) -> String {
        k.0.to_string()
    }
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }

    pub fn parse(s: &str) -> Option<TaintEffect> {
        match s {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }
}

/// A taint, `key[=value]:Effect`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl Taint {
    /// The well-known control-plane taint kubeadm puts on control planes.
    pub fn control_plane() -> Taint {
        Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        }
    }

    /// Taints gt never manages: kubeadm and the node lifecycle controller own them.
    pub fn is_system_managed(&self) -> bool {
        self.key.starts_with("node-role.kubernetes.io/")
            || self.key.starts_with("node.kubernetes.io/")
            || self.key.starts_with("node.cloudprovider.kubernetes.io/")
    }
}

impl FromStr for Taint {
    type Err = String;
    fn from_str(s: &str) -> Result<Taint, String> {
        let (kv, effect) = s.rsplit_once(':').ok_or_else(|| {
            format!("taint {s:?} has no effect: write key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
        })?;
        let effect = TaintEffect::parse(effect).ok_or_else(|| {
            format!(
                "taint effect {effect:?} must be one of NoSchedule, PreferNoSchedule, NoExecute"
            )
        })?;
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, v),
            None => (kv, ""),
        };
        check_qualified_name(key).map_err(|e| format!("taint key {key:?}: {e}"))?;
        check_label_value(value).map_err(|e| format!("taint {e}"))?;
        Ok(Taint {
            key: key.to_string(),
            value: value.to_string(),
            effect,
        })
    }
}

impl TryFrom<String> for Taint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Taint> for String {
    fn from(t: Taint) -> String {
        t.to_string()
    }
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect.as_str())
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect.as_str())
        }
    }
}

/// `host:port` of the control-plane endpoint (the load balancer).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Endpoint, String> {
        let hint = "write host:port, e.g. \"10.4.0.10:6443\"";
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            if sa.port() == 0 {
                return Err(format!("endpoint {s:?} has port 0; {hint}"));
            }
            return Ok(Endpoint {
                host: sa.ip().to_string(),
                port: sa.port(),
            });
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("endpoint {s:?} has no port; {hint}"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("endpoint {s:?} has an invalid port {port:?}; {hint}"))?;
        if host.parse::<IpAddr>().is_err() && !is_dns_subdomain(host) {
            return Err(format!(
                "endpoint host {host:?} is neither an IP address nor a DNS name; {hint}"
            ));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A Kubernetes version as the file gives it: `1.32` (any patch) or `1.32.4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

impl KubeVersion {
    /// Parses `1.32`, `1.32.4`, `v1.32.4`, and tolerates build suffixes such as `v1.32.4+k3s1`.
    pub fn parse(s: &str) -> Option<KubeVersion> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split(['+', '-']).next()?;
        let mut it = s.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = match it.next() {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        if it.next().is_some() {
            return None;
        }
        Some(KubeVersion {
            major,
            minor,
            patch,
        })
    }

    /// The version cluster.toml asks for: a release, `1.32` or `1.32.4`
    /// (a `v` prefix is fine). A pre-release or a build suffix is refused
    /// rather than read as the release it precedes (`1.32.0-rc.1` is not
    /// `1.32.0`, and kubeadm has no images for `v1.32.4+k3s1`). The error
    /// is "what is wrong; what to write".
    pub fn parse_release(s: &str) -> Result<KubeVersion, String> {
        let t = s.trim();
        let bare = t.strip_prefix('v').unwrap_or(t);
        if let Some((release, _)) = bare.split_once('-') {
            return Err(format!(
                "`{s}` is a pre-release; gt installs only releases: write \"{release}\" for the release, or pin an exact released patch such as \"1.32.4\""
            ));
        }
        if let Some((release, _)) = bare.split_once('+') {
            return Err(format!(
                "`{s}` carries build metadata, which kubeadm has no images for; write the upstream release, e.g. \"{release}\""
            ));
        }
        let well_formed = !bare.is_empty()
            && bare
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match KubeVersion::parse(bare).filter(|_| well_formed) {
            Some(v) if v.major == 1 => Ok(v),
            Some(_) => Err(format!(
                "`{s}` is not a Kubernetes 1.x version; write e.g. \"1.32\" or \"1.32.4\""
            )),
            None => Err(format!(
                "`{s}` is not a Kubernetes version; write \"1.32\" or \"1.32.4\""
            )),
        }
    }

    /// Whether an observed version satisfies this desired one.
    pub fn matches(&self, observed: &KubeVersion) -> bool {
        self.major == observed.major
            && self.minor == observed.minor
            && self.patch.is_none_or(|p| Some(p) == observed.patch)
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}", self.major, self.minor, p),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl Serialize for KubeVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KubeVersion::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid Kubernetes version {s:?}")))
    }
}

/// The longest duration any key of cluster.toml may hold: far beyond any
/// sensible timeout, and far below what a clock can add without overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a Go-style duration as kubeadm's `--ttl` takes it: `15m`, `24h`,
/// `1h30m`, `90s`, `0`. The error says what is wrong (not a duration, or
/// longer than `MAX_DURATION`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let not_one = || format!("`{s}` is not a duration");
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(not_one());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(not_one());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| not_one())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(not_one()),
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    // Compared as a float first: `Duration::from_secs_f64` panics past u64 seconds.
    if !total.is_finite() || total > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "`{s}` is longer than gt allows for any duration ({})",
            format_duration(MAX_DURATION)
        ));
    }
    Ok(Duration::from_secs_f64(total))
}

/// The lifetime of a bootstrap token gt mints: at least `MIN`, at most
/// `MAX`, whole seconds. kubeadm reads a TTL of 0 as "never expires" and
/// rounds sub-second values down to it, so the only way to build one is
/// the checked `new`: no command line can carry `--ttl 0s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TokenTtl(Duration);

impl TokenTtl {
    pub const MIN: Duration = Duration::from_secs(60);
    /// kubeadm's own default: a join token has no business living longer.
    pub const MAX: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT: TokenTtl = TokenTtl(Duration::from_secs(15 * 60));

    /// The TTL, truncated to whole seconds, or why it is not one.
    pub fn new(d: Duration) -> Result<TokenTtl, String> {
        let whole = Duration::from_secs(d.as_secs());
        if d.is_zero() {
            Err("0 would mint a join token that never expires".into())
        } else if whole < Self::MIN {
            Err(format!(
                "{} is shorter than the shortest token TTL gt mints ({})",
                format_duration(d),
                format_duration(Self::MIN)
            ))
        } else if whole > Self::MAX {
            Err(format!(
                "{} is longer than the longest token TTL gt mints ({})",
                format_duration(d),
                format_duration(Self::MAX)
            ))
        } else {
            Ok(TokenTtl(whole))
        }
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

/// Formats a duration the way Go prints it for whole units: `15m0s` → we
/// print the shorter `15m`, `2h`, `1h30m`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() {
            "0".into()
        } else if d.as_millis() > 0 {
            format!("{}ms", d.as_millis())
        } else if d.as_micros() > 0 {
            format!("{}us", d.as_micros())
        } else {
            format!("{}ns", d.as_nanos())
        };
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubelet_may_set_only_keys_outside_the_kubernetes_namespaces_or_in_its_own() {
        let may = |k: &str| LabelKey::try_from(k.to_string()).unwrap().kubelet_may_set();
        for k in [
            "goldentooth.io/gpu",
            "rack",
            "example.org/kubernetes.io",
            "notkubernetes.io/x",
            "kubelet.kubernetes.io/x",
            "pool.node.kubernetes.io/x",
            "node.kubernetes.io/instance-type",
        ] {
            assert!(may(k), "{k}");
        }
        for k in [
            "kubernetes.io/x",
            "app.kubernetes.io/name",
            "node-role.kubernetes.io/worker",
            "node-restriction.kubernetes.io/x",
            "k8s.io/x",
            "sig.k8s.io/x",
        ] {
            assert!(!may(k), "{k}");
        }
    }

    #[test]
    fn taint_round_trips_and_rejects_bad_effects() {
        let t: Taint = "goldentooth.io/gpu=true:NoSchedule".parse().unwrap();
        assert_eq!(t.key, "goldentooth.io/gpu");
        assert_eq!(t.value, "true");
        assert_eq!(t.to_string(), "goldentooth.io/gpu=true:NoSchedule");
        let bare: Taint = "node-role.kubernetes.io/control-plane:NoSchedule"
            .parse()
            .unwrap();
        assert_eq!(bare, Taint::control_plane());
        assert!("gpu=true:NoScheduled"
            .parse::<Taint>()
            .unwrap_err()
            .contains("NoSchedule, PreferNoSchedule, NoExecute"));
        assert!("gpu=true".parse::<Taint>().is_err());
        assert!("-gpu:NoSchedule".parse::<Taint>().is_err());
    }

    #[test]
    fn label_keys_follow_kubernetes_syntax() {
        assert!(check_qualified_name("goldentooth.io/role").is_ok());
        assert!(check_qualified_name("role").is_ok());
        assert!(check_qualified_name("Goldentooth.io/role").is_err());
        assert!(check_qualified_name("a/b/c").is_err());
        assert!(check_qualified_name(&"x".repeat(64)).is_err());
        assert!(check_qualified_name("/role").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("ray-head").is_ok());
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn endpoints_need_a_port() {
        let e: Endpoint = "10.4.0.10:6443".parse().unwrap();
        assert_eq!((e.host.as_str(), e.port), ("10.4.0.10", 6443));
        assert!("10.4.0.10".parse::<Endpoint>().is_err());
        assert!("10.4.0.10:0".parse::<Endpoint>().is_err());
        assert!("10.4.0.10:99999".parse::<Endpoint>().is_err());
        assert_eq!(
            "k8s.goldentooth.net:6443".parse::<Endpoint>().unwrap().port,
            6443
        );
        assert_eq!(
            "[::1]:6443".parse::<Endpoint>().unwrap().to_string(),
            "[::1]:6443"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("15").is_err());
        assert!(parse_go_duration("fifteen minutes").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(900)), "15m");
        assert_eq!(format_duration(Duration::from_nanos(1)), "1ns");
        assert_eq!(format_duration(Duration::from_micros(7)), "7us");
    }

    #[test]
    fn durations_too_long_for_a_clock_are_errors_not_panics() {
        for s in ["99999999999999h", "1e400s", "184467440737095516160s"] {
            assert!(parse_go_duration(s).is_err(), "{s}");
        }
        let huge = format!("{}h", "9".repeat(400));
        assert!(parse_go_duration(&huge)
            .unwrap_err()
            .contains("longer than"));
        assert_eq!(parse_go_duration("8784h"), Ok(MAX_DURATION));
    }

    #[test]
    fn a_token_ttl_is_between_a_minute_and_a_day_in_whole_seconds() {
        assert!(TokenTtl::new(Duration::ZERO)
            .unwrap_err()
            .contains("never expires"));
        assert!(TokenTtl::new(Duration::from_millis(500)).is_err());
        assert!(TokenTtl::new(Duration::from_secs(59)).is_err());
        assert!(TokenTtl::new(Duration::from_millis(59_999)).is_err());
        assert!(TokenTtl::new(Duration::from_secs(24 * 3600 + 1)).is_err());
        assert_eq!(
            TokenTtl::new(Duration::from_millis(60_900)).unwrap().get(),
            Duration::from_secs(60)
        );
        assert_eq!(TokenTtl::DEFAULT.get(), Duration::from_secs(900));
    }

    #[test]
    fn kube_versions() {
        let want = KubeVersion::parse("1.32").unwrap();
        assert!(want.matches(&KubeVersion::parse("v1.32.4").unwrap()));
        assert!(!want.matches(&KubeVersion::parse("v1.31.9").unwrap()));
        let exact = KubeVersion::parse("1.32.4").unwrap();
        assert!(!exact.matches(&KubeVersion::parse("v1.32.3").unwrap()));
    }

    #[test]
    fn the_file_asks_for_releases_only() {
        assert_eq!(
            KubeVersion::parse_release("v1.32.4").unwrap(),
            KubeVersion::parse("1.32.4").unwrap()
        );
        for pre in ["1.32.0-rc.1", "1.32-alpha", "v1.33.0-beta.0"] {
            assert!(
                KubeVersion::parse_release(pre)
                    .unwrap_err()
                    .contains("pre-release"),
                "{pre}"
            );
        }
        assert!(KubeVersion::parse_release("1.32.4+k3s1")
            .unwrap_err()
            .contains("build metadata"));
        for bad in [
            "1", "1.32.", "1..32", "1.32.4.5", "2.0", "1.+32", " ", "1.x",
        ] {
            assert!(KubeVersion::parse_release(bad).is_err(), "{bad}");
        }
    }
}
