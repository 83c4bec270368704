//! apt and dpkg, as the kubeadm install docs use them for the kube
//! packages (docs/kubeadm.md, "Host software"): the per-minor pkgs.k8s.io
//! repository and its keyring, `apt-get install` of exact versions between
//! `apt-mark unhold` and `hold`, and what dpkg-query and apt-cache print.

use crate::transport::shell_join;
use std::collections::BTreeMap;

/// The packages gt installs at the cluster's version and holds there.
pub const KUBE_PACKAGES: [&str; 3] = ["kubeadm", "kubelet", "kubectl"];
/// The container runtime's package, from the distribution (not held).
pub const CONTAINERD: &str = "containerd";
/// kubeadm's dependency for `crictl`; comes with kubeadm from the same repository.
pub const CRI_TOOLS: &str = "cri-tools";

/// The repository list file and the keyring the install docs write.
pub const SOURCE_LIST: &str = "/etc/apt/sources.list.d/kubernetes.list";
pub const KEYRING: &str = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";

/// pkgs.k8s.io's repository of one minor: `https://pkgs.k8s.io/core:/stable:/v1.32/deb/`.
pub fn upstream_repository(major: u32, minor: u32) -> String {
    format!("https://pkgs.k8s.io/core:/stable:/v{major}.{minor}/deb/")
}

/// The line of kubernetes.list: `deb [signed-by=KEYRING] URL /`.
pub fn source_line(repository: &str) -> String {
    format!("deb [signed-by={KEYRING}] {repository} /")
}

/// The `deb` line of kubernetes.list, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub url: String,
    pub signed_by: Option<String>,
}

impl AptSource {
    /// `deb [signed-by=/etc/apt/keyrings/k.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /`.
    pub fn parse(line: &str) -> Option<AptSource> {
        let rest = line.trim().strip_prefix("deb")?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(opts) = rest.strip_prefix('[') {
            let (opts, after) = opts.split_once(']')?;
            signed_by = opts
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_string);
            rest = after.trim_start();
        }
        let url = rest.split_whitespace().next()?.to_string();
        Some(AptSource { url, signed_by })
    }

    /// The minor a pkgs.k8s.io-shaped URL names (`…/v1.32/deb/` → (1, 32)),
    /// mirrors included when they keep the path.
    pub fn minor(&self) -> Option<(u32, u32)> {
        self.url.split('/').find_map(|part| {
            let v = part.strip_prefix('v')?;
            let (major, minor) = v.split_once('.')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
    }
}

/// One package as `dpkg-query -W -f='package=${Package} ${Version} ${db:Status-Abbrev}\n'`
/// prints it (after the `package=` the probe strips): `kubelet 1.32.4-1.1 hi `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    pub name: String,
    pub version: String,
    /// Desired action `h`: held (`apt-mark hold`).
    pub held: bool,
    /// Status `i`: installed (not merely known, or only its config files left).
    pub installed: bool,
}

pub fn parse_dpkg_line(line: &str) -> Option<DpkgPackage> {
    let mut w = line.split_whitespace();
    let name = w.next()?.to_string();
    let version = w.next()?.to_string();
    let abbrev = w.next()?.as_bytes();
    let (want, status) = (*abbrev.first()?, *abbrev.get(1)?);
    Some(DpkgPackage {
        name,
        version,
        held: want == b'h',
        installed: status == b'i',
    })
}

/// `apt-cache madison` lines, `   kubeadm | 1.32.4-1.1 | https://pkgs.k8s.io/… Packages`:
/// every version per package, as apt lists them (newest first).
pub fn parse_madison(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut cols = line.split('|').map(str::trim);
        let (Some(name), Some(version), Some(_)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        if name.is_empty() || version.is_empty() || name.contains(' ') || version.contains(' ') {
            continue;
        }
        let versions = out.entry(name.to_string()).or_default();
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_string());
        }
    }
    out
}

/// The upstream release a pkgs.k8s.io package version carries:
/// `1.32.4-1.1` → (1, 32, 4); the legacy `-00` revisions too.
pub fn release_of(version: &str) -> Option<(u32, u32, u32)> {
    let upstream = version.split(['-', '~', '+']).next()?;
    let upstream = upstream.split_once(':').map_or(upstream, |(_, v)| v);
    let mut it = upstream.split('.').map(|p| p.parse::<u32>().ok());
    let v = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

/// The newest version of a release line that `versions` holds: with a
/// patch, that patch's newest revision; without, the newest patch.
pub fn newest(versions: &[String], major: u32, minor: u32, patch: Option<u32>) -> Option<String> {
    versions
        .iter()
        .filter_map(|v| Some((release_of(v)?, v)))
        .filter(|((ma, mi, p), _)| {
            *ma == major && *mi == minor && patch.is_none_or(|want| want == *p)
        })
        .max_by(|(a, va), (b, vb)| a.cmp(b).then_with(|| revision_cmp(va, vb)))
        .map(|(_, v)| v.clone())
}

/// Debian revisions of one release (`-1.1` vs `-2.1`), numerically.
fn revision_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let rev = |v: &str| -> Vec<u64> {
        v.split_once('-')
            .map(|(_, r)| r.split(['.', '-']).filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    };
    rev(a).cmp(&rev(b))
}

/// Writes the keyring and the repository line, as the install docs do
/// (`curl … Release.key | gpg --dearmor`), from `repository`'s own key.
pub fn configure_repository(repository: &str) -> String {
    let key_url = format!("{repository}Release.key");
    let root = "${GT_HOST_ROOT}";
    format!(
        "mkdir -p -m 755 \"{root}/etc/apt/keyrings\" && \
         curl -fsSL {} | gpg --dearmor --batch --yes -o \"{root}{KEYRING}\" && \
         printf '%s\\n' {} > \"{root}{SOURCE_LIST}\"",
        shell_join(&[key_url.as_str()]),
        shell_join(&[source_line(repository).as_str()]),
    )
}

/// `apt-get update`, quiet but for errors.
pub fn update() -> String {
    "apt-get update -q".into()
}

/// `apt-mark unhold P…`, `apt-get install -y P=V…`, `apt-mark hold` of those
/// in `hold`: a held package changes only between gt's own unhold and hold.
pub fn install(packages: &[(String, Option<String>)], hold: &[String]) -> String {
    let mut steps = Vec::new();
    if !hold.is_empty() {
        let mut w = vec!["apt-mark".to_string(), "unhold".into()];
        w.extend(hold.iter().cloned());
        steps.push(shell_join(&w));
    }
    let mut w = vec![
        "DEBIAN_FRONTEND=noninteractive".to_string(),
        "apt-get".into(),
        "install".into(),
        "-y".into(),
        "-q".into(),
        // A version upgraded by hand is brought back down to the file's.
        "--allow-downgrades".into(),
    ];
    w.extend(packages.iter().map(|(p, v)| match v {
        Some(v) => format!("{p}={v}"),
        None => p.clone(),
    }));
    steps.push(shell_join(&w));
    if !hold.is_empty() {
        let mut w = vec!["apt-mark".to_string(), "hold".into()];
        w.extend(hold.iter().cloned());
        steps.push(shell_join(&w));
    }
    steps.join(" && ")
}

/// Every version the configured repositories offer of `package`.
pub fn madison(package: &str) -> String {
    shell_join(&["apt-cache", "madison", package])
}

/// `apt-mark hold P…` alone (a hold removed behind gt's back).
pub fn hold(packages: &[String]) -> String {
    let mut w = vec!["apt-mark".to_string(), "hold".into()];
    w.extend(packages.iter().cloned());
    shell_join(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_line_is_the_install_docs_one() {
        let url = upstream_repository(1, 32);
        assert_eq!(url, "https://pkgs.k8s.io/core:/stable:/v1.32/deb/");
        assert_eq!(
            source_line(&url),
            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /"
        );
        let read = AptSource::parse(&source_line(&url)).unwrap();
        assert_eq!(read.url, url);
        assert_eq!(read.signed_by.as_deref(), Some(KEYRING));
        assert_eq!(read.minor(), Some((1, 32)));
        let bare = AptSource::parse("deb http://mirror.lan/k8s/v1.31/deb/ /").unwrap();
        assert_eq!(
            (bare.signed_by.clone(), bare.minor()),
            (None, Some((1, 31)))
        );
        assert_eq!(AptSource::parse("deb-src x /"), None);
        assert_eq!(AptSource::parse("# deb x /"), None);
    }

    #[test]
    fn dpkg_query_lines_give_version_hold_and_state() {
        let p = parse_dpkg_line("kubelet 1.32.4-1.1 hi ").unwrap();
        assert_eq!(
            (p.version.as_str(), p.held, p.installed),
            ("1.32.4-1.1", true, true)
        );
        let p = parse_dpkg_line("containerd 1.6.20~ds1-1+b1 ii ").unwrap();
        assert_eq!((p.held, p.installed), (false, true));
        let p = parse_dpkg_line("kubeadm 1.31.2-1.1 rc ").unwrap();
        assert!(!p.installed);
        // Known to dpkg but never installed: no version.
        assert_eq!(parse_dpkg_line("kubectl  un "), None);
    }

    #[test]
    fn madison_lists_versions_newest_first() {
        let out = "   kubeadm | 1.32.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n   kubeadm | 1.32.3-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n   kubelet | 1.32.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n";
        let m = parse_madison(out);
        assert_eq!(m["kubeadm"], ["1.32.4-1.1", "1.32.3-1.1"]);
        assert_eq!(m["kubelet"], ["1.32.4-1.1"]);
        assert!(parse_madison("W: some warning\n").is_empty());
    }

    #[test]
    fn the_newest_patch_or_revision_is_chosen() {
        let v: Vec<String> = [
            "1.32.10-1.1",
            "1.32.9-1.1",
            "1.32.4-2.1",
            "1.32.4-1.1",
            "1.31.9-1.1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(newest(&v, 1, 32, None).as_deref(), Some("1.32.10-1.1"));
        assert_eq!(newest(&v, 1, 32, Some(4)).as_deref(), Some("1.32.4-2.1"));
        assert_eq!(newest(&v, 1, 33, None), None);
        assert_eq!(release_of("1.26.0-00"), Some((1, 26, 0)));
        assert_eq!(release_of("garbage"), None);
    }

    #[test]
    fn packages_change_only_between_gts_own_unhold_and_hold() {
        assert_eq!(
            install(
                &[
                    ("kubelet".into(), Some("1.32.4-1.1".into())),
                    ("containerd".into(), None)
                ],
                &["kubelet".into()]
            ),
            "apt-mark unhold kubelet && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades kubelet=1.32.4-1.1 containerd && apt-mark hold kubelet"
        );
        assert_eq!(
            configure_repository("https://pkgs.k8s.io/core:/stable:/v1.32/deb/"),
            "mkdir -p -m 755 \"${GT_HOST_ROOT}/etc/apt/keyrings\" && curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key | gpg --dearmor --batch --yes -o \"${GT_HOST_ROOT}/etc/apt/keyrings/kubernetes-apt-keyring.gpg\" && printf '%s\\n' 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /' > \"${GT_HOST_ROOT}/etc/apt/sources.list.d/kubernetes.list\""
        );
    }
}
