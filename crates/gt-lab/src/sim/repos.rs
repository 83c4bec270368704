//! The simulated package repositories and the host's apt sources.
//!
//! No network: what a repository URL serves is computed here. pkgs.k8s.io
//! serves one repository per minor (`https://pkgs.k8s.io/core:/stable:/v1.32/deb/`,
//! a flat repository, suite `/`) for 1.30 to 1.35, each with its patch
//! releases as `1.32.4-1.1` (kubeadm, kubelet, kubectl) plus cri-tools and
//! kubernetes-cni; deb.debian.org serves bookworm's containerd and the tools
//! the kubelet depends on; download.docker.com serves containerd.io 1.7 and
//! 2.1. A mirror is any loopback URL (`http://127.0.0.1/...`, `localhost`) or a
//! `file:` URL of a directory on the host: its path's tail says which
//! repository it mirrors (`.../core:/stable:/v1.32/deb/`, `.../debian`).
//! Every other host name does not resolve.

use super::host::Host;

/// pkgs.k8s.io's signing key (`Release.key`), by its long id.
pub(crate) const K8S_KEY_ID: &str = "234654DA9A296436";
pub(crate) const DOCKER_KEY_ID: &str = "8D81803C0EBFCD88";

/// The minors pkgs.k8s.io serves in the lab, with their newest patch.
pub const K8S_MINORS: &[(u32, u32)] = &[(30, 12), (31, 8), (32, 4), (33, 3), (34, 2), (35, 1)];

/// bookworm's containerd.
pub const DEBIAN_CONTAINERD: &str = "1.6.20~ds1-1+b1";

/// One package version a repository holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pkg {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) depends: Vec<String>,
}

fn pkg(name: &str, version: &str, depends: &[&str]) -> Pkg {
    Pkg {
        name: name.into(),
        version: version.into(),
        depends: depends.iter().map(|d| d.to_string()).collect(),
    }
}

fn cni_for(minor: u32) -> &'static str {
    match minor {
        30 => "1.4.0-1.1",
        31 => "1.5.1-1.1",
        32 | 33 => "1.6.0-1.1",
        34 => "1.7.1-1.1",
        _ => "1.8.0-1.1",
    }
}

/// The newest patch the lab's pkgs.k8s.io holds for `1.minor`.
pub fn newest_patch(minor: u32) -> Option<u32> {
    K8S_MINORS
        .iter()
        .find(|(m, _)| *m == minor)
        .map(|(_, p)| *p)
}

/// pkgs.k8s.io's `v1.MINOR` repository.
pub(crate) fn k8s_packages(minor: u32) -> Option<Vec<Pkg>> {
    let newest = newest_patch(minor)?;
    let mut v = Vec::new();
    for patch in 0..=newest {
        let ver = format!("1.{minor}.{patch}-1.1");
        v.push(pkg("kubeadm", &ver, &["cri-tools"]));
        v.push(pkg(
            "kubelet",
            &ver,
            &[
                "conntrack",
                "ebtables",
                "ethtool",
                "iptables",
                "kubernetes-cni",
                "socat",
            ],
        ));
        v.push(pkg("kubectl", &ver, &[]));
    }
    v.push(pkg("cri-tools", &format!("1.{minor}.0-1.1"), &[]));
    v.push(pkg("kubernetes-cni", cni_for(minor), &[]));
    Some(v)
}

fn debian_packages() -> Vec<Pkg> {
    vec![
        pkg("containerd", DEBIAN_CONTAINERD, &["runc"]),
        pkg("runc", "1.1.5+ds1-1+deb12u1", &[]),
        pkg("iptables", "1.8.9-2", &[]),
        pkg("conntrack", "1:1.4.7-1+b2", &[]),
        pkg("ebtables", "2.0.11-5", &[]),
        pkg("ethtool", "1:6.1-1", &[]),
        pkg("socat", "1.7.4.4-2", &[]),
        pkg("apt-transport-https", "2.6.1", &[]),
        pkg("ca-certificates", "20230311", &[]),
        pkg("curl", "7.88.1-10+deb12u8", &[]),
        pkg("gpg", "2.2.40-1.1", &[]),
        pkg("dphys-swapfile", "20100506-7.1+rpt3", &[]),
    ]
}

fn docker_packages() -> Vec<Pkg> {
    vec![
        pkg("containerd.io", "1.7.27-1", &[]),
        pkg("containerd.io", "2.1.4-1~debian.12~bookworm", &[]),
    ]
}

/// What is wrong with one repository, as apt reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fetch {
    Served {
        packages: Vec<Pkg>,
        key: Option<&'static str>,
    },
    Unresolved(String),
    NoRelease,
}

fn host_of(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((scheme, host, path))
}

fn loopback(host: &str) -> bool {
    let h = host.split(':').next().unwrap_or(host);
    h == "localhost" || h.starts_with("127.")
}

/// The minor of a pkgs.k8s.io-shaped path: `.../core:/stable:/v1.32/deb/`.
pub(crate) fn k8s_minor_of(path: &str) -> Option<u32> {
    let p = path.trim_end_matches('/');
    let p = p.strip_suffix("/deb")?;
    let v = p.rsplit('/').next()?.strip_prefix("v1.")?;
    if !p.ends_with(&format!("core:/stable:/v1.{v}")) {
        return None;
    }
    v.parse().ok()
}

/// What `uri` + `suite` (+ component) serves to a host.
pub(crate) fn serve(host: &Host, uri: &str, suite: &str, component: Option<&str>) -> Fetch {
    let Some((scheme, name, path)) = host_of(uri).or_else(|| {
        uri.strip_prefix("file:")
            .map(|p| ("file", "", p.trim_start_matches("//")))
    }) else {
        return Fetch::Unresolved(uri.to_string());
    };
    let mirrored = match scheme {
        "file" => {
            if !host.path(path).is_dir() {
                return Fetch::NoRelease;
            }
            true
        }
        "http" | "https" if loopback(name) => true,
        "http" | "https" => false,
        _ => return Fetch::Unresolved(name.to_string()),
    };
    if mirrored || name == "pkgs.k8s.io" {
        if let Some(minor) = k8s_minor_of(path) {
            if suite != "/" {
                return Fetch::NoRelease;
            }
            return match k8s_packages(minor) {
                Some(packages) => Fetch::Served {
                    packages,
                    key: Some(K8S_KEY_ID),
                },
                None => Fetch::NoRelease,
            };
        }
        if !mirrored {
            return Fetch::NoRelease;
        }
    }
    let debian =
        (mirrored || name == "deb.debian.org") && path.trim_end_matches('/').ends_with("/debian");
    if debian {
        return match (suite, component) {
            ("bookworm", Some("main")) => Fetch::Served {
                packages: debian_packages(),
                key: None,
            },
            ("bookworm" | "bookworm-updates", _) => Fetch::Served {
                packages: vec![],
                key: None,
            },
            _ => Fetch::NoRelease,
        };
    }
    let security = (mirrored || name == "deb.debian.org" || name == "security.debian.org")
        && path.trim_end_matches('/').ends_with("/debian-security");
    if security {
        return match suite {
            "bookworm-security" => Fetch::Served {
                packages: vec![],
                key: None,
            },
            _ => Fetch::NoRelease,
        };
    }
    match name {
        "archive.raspberrypi.com" => match suite {
            "bookworm-security" | "bookworm" => Fetch::Served {
                packages: vec![],
                key: None,
            },
            _ => Fetch::NoRelease,
        },
        "download.docker.com" if path.trim_end_matches('/') == "/linux/debian" => {
            match (suite, component) {
                ("bookworm", Some("stable")) => Fetch::Served {
                    packages: docker_packages(),
                    key: Some(DOCKER_KEY_ID),
                },
                ("bookworm", _) => Fetch::Served {
                    packages: vec![],
                    key: Some(DOCKER_KEY_ID),
                },
                _ => Fetch::NoRelease,
            }
        }
        "pkgs.k8s.io" | "deb.debian.org" | "download.docker.com" => Fetch::NoRelease,
        _ if mirrored => Fetch::NoRelease,
        other => Fetch::Unresolved(other.split(':').next().unwrap_or(other).to_string()),
    }
}

/// One `deb` line (or one suite × component of a deb822 stanza).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub(crate) uri: String,
    pub(crate) suite: String,
    pub(crate) components: Vec<String>,
    pub(crate) signed_by: Option<String>,
}

impl Source {
    fn flat(&self) -> bool {
        self.suite.ends_with('/')
    }

    fn base(&self) -> String {
        format!("{}/", self.uri.trim_end_matches('/'))
    }

    /// `https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease`, as apt names it in messages.
    pub(crate) fn release_name(&self, file: &str) -> String {
        if self.flat() {
            format!(
                "{} {} {file}",
                self.base().trim_end_matches('/'),
                self.suite.trim_end_matches('/')
            )
        } else {
            format!("{} {} {file}", self.uri.trim_end_matches('/'), self.suite)
        }
    }

    /// The fetch URL of the Release file, as apt prints it in `Failed to fetch`.
    pub(crate) fn release_url(&self) -> String {
        if self.flat() {
            format!(
                "{}{}InRelease",
                self.base(),
                self.suite.trim_start_matches('/')
            )
        } else {
            format!("{}dists/{}/InRelease", self.base(), self.suite)
        }
    }

    /// `(component, lists file name, index description)` of each index.
    pub(crate) fn indexes(&self, arch: &str) -> Vec<(Option<String>, String, String)> {
        let stem = self
            .base()
            .split_once("://")
            .map(|(_, r)| r.to_string())
            .unwrap_or_else(|| {
                self.base()
                    .trim_start_matches("file:")
                    .trim_start_matches('/')
                    .to_string()
            });
        if self.flat() {
            let s = format!("{stem}{}", self.suite.trim_start_matches('/'));
            vec![(
                None,
                format!("{}Packages", s.replace('/', "_")),
                format!("{}  Packages", self.release_name("").trim_end()),
            )]
        } else {
            self.components
                .iter()
                .map(|c| {
                    (
                        Some(c.clone()),
                        format!("{stem}dists/{}/{c}/binary-{arch}/Packages", self.suite)
                            .replace('/', "_"),
                        format!(
                            "{} {}/{c} {arch} Packages",
                            self.uri.trim_end_matches('/'),
                            self.suite
                        ),
                    )
                })
                .collect()
        }
    }
}

/// Where apt reads its sources, in its order.
const SOURCE_LIST: &str = "/etc/apt/sources.list";
const SOURCE_DIR: &str = "/etc/apt/sources.list.d";
pub(crate) const LISTS_DIR: &str = "/var/lib/apt/lists";

/// The host's sources, or apt's errors for a malformed one.
pub(crate) fn read_sources(host: &Host) -> Result<Vec<Source>, Vec<String>> {
    let mut files = vec![SOURCE_LIST.to_string()];
    if let Ok(d) = std::fs::read_dir(host.path(SOURCE_DIR)) {
        let mut names: Vec<String> = d
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".list") || n.ends_with(".sources"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("{SOURCE_DIR}/{n}")));
    }
    let mut out = Vec::new();
    for f in files {
        let Some(text) = host.read(&f) else { continue };
        let parsed = if f.ends_with(".sources") {
            parse_deb822(&text, &f)
        } else {
            parse_list(&text, &f)
        };
        match parsed {
            Ok(v) => out.extend(v),
            Err(e) => return Err(vec![e, "E: The list of sources could not be read.".into()]),
        }
    }
    Ok(out)
}

fn malformed(n: usize, kind: &str, file: &str, why: &str) -> String {
    format!("E: Malformed entry {n} in {kind} file {file} ({why})")
}

fn parse_list(text: &str, file: &str) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let (kind, mut rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match kind {
            "deb" => {}
            "deb-src" => continue,
            _ => return Err(malformed(n, "list", file, "Type")),
        }
        rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(opts) = rest.strip_prefix('[') {
            let Some(end) = opts.find(']') else {
                return Err(malformed(n, "list", file, "option"));
            };
            for o in opts[..end].split_whitespace() {
                let Some((k, v)) = o.split_once('=') else {
                    return Err(malformed(n, "list", file, "option"));
                };
                if k == "signed-by" {
                    signed_by = Some(v.to_string());
                }
            }
            rest = opts[end + 1..].trim_start();
        }
        let mut words = rest.split_whitespace();
        let Some(uri) = words.next() else {
            return Err(malformed(n, "list", file, "URI"));
        };
        if !(uri.contains("://") || uri.starts_with("file:")) {
            return Err(malformed(n, "list", file, "URI parse"));
        }
        let Some(suite) = words.next() else {
            return Err(malformed(n, "list", file, "Suite"));
        };
        let components: Vec<String> = words.map(str::to_string).collect();
        if suite.ends_with('/') && !components.is_empty() {
            return Err(malformed(n, "list", file, "absolute Suite Component"));
        }
        if !suite.ends_with('/') && components.is_empty() {
            return Err(malformed(n, "list", file, "Component"));
        }
        out.push(Source {
            uri: uri.into(),
            suite: suite.into(),
            components,
            signed_by,
        });
    }
    Ok(out)
}

fn parse_deb822(text: &str, file: &str) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for (i, stanza) in text.split("\n\n").enumerate() {
        let mut fields = std::collections::BTreeMap::new();
        for line in stanza.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((k, v)) = line.split_once(':') {
                if !line.starts_with(char::is_whitespace) {
                    fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
        }
        if fields.is_empty() {
            continue;
        }
        if fields.get("enabled").is_some_and(|e| e == "no") {
            continue;
        }
        if !fields
            .get("types")
            .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
        {
            continue;
        }
        let n = i + 1;
        let uris = fields
            .get("uris")
            .ok_or_else(|| malformed(n, "sources", file, "URI"))?;
        let suites = fields
            .get("suites")
            .ok_or_else(|| malformed(n, "sources", file, "Suite"))?;
        let components: Vec<String> = fields
            .get("components")
            .map(|c| c.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        for uri in uris.split_whitespace() {
            for suite in suites.split_whitespace() {
                if !suite.ends_with('/') && components.is_empty() {
                    return Err(malformed(n, "sources", file, "Component"));
                }
                out.push(Source {
                    uri: uri.into(),
                    suite: suite.into(),
                    components: components.clone(),
                    signed_by: fields.get("signed-by").cloned(),
                });
            }
        }
    }
    Ok(out)
}

/// Writes a Packages index as apt keeps it in /var/lib/apt/lists.
pub(crate) fn packages_file(pkgs: &[Pkg], arch: &str) -> String {
    let mut s = String::new();
    for p in pkgs {
        s.push_str(&format!(
            "Package: {}\nVersion: {}\nArchitecture: {arch}\n",
            p.name, p.version
        ));
        if !p.depends.is_empty() {
            s.push_str(&format!("Depends: {}\n", p.depends.join(", ")));
        }
        s.push('\n');
    }
    s
}

fn parse_packages(text: &str) -> Vec<Pkg> {
    text.split("\n\n")
        .filter_map(|st| {
            let mut p = Pkg {
                name: String::new(),
                version: String::new(),
                depends: vec![],
            };
            for l in st.lines() {
                match l.split_once(": ") {
                    Some(("Package", v)) => p.name = v.into(),
                    Some(("Version", v)) => p.version = v.into(),
                    Some(("Depends", v)) => {
                        p.depends = v
                            .split(", ")
                            .map(|d| d.split(' ').next().unwrap_or(d).to_string())
                            .collect()
                    }
                    _ => {}
                }
            }
            (!p.name.is_empty()).then_some(p)
        })
        .collect()
}

/// One version apt knows, with the index it came from.
#[derive(Debug, Clone)]
pub(crate) struct Available {
    pub(crate) pkg: Pkg,
    pub(crate) index: String,
}

/// Everything in the package lists of the configured sources (what
/// `apt-get update` last fetched), newest version first per package.
pub(crate) fn available(host: &Host, sources: &[Source]) -> Vec<Available> {
    let arch = host.node().arch.clone();
    let mut out: Vec<Available> = Vec::new();
    for s in sources {
        for (_, file, index) in s.indexes(&arch) {
            let Some(text) = host.read(&format!("{LISTS_DIR}/{file}")) else {
                continue;
            };
            for pkg in parse_packages(&text) {
                if !out.iter().any(|a| a.pkg == pkg) {
                    out.push(Available {
                        pkg,
                        index: index.clone(),
                    });
                } else if let Some(a) = out.iter_mut().find(|a| a.pkg == pkg) {
                    a.index.push('\n');
                    a.index.push_str(&index);
                }
            }
        }
    }
    out.sort_by(|a, b| {
        a.pkg
            .name
            .cmp(&b.pkg.name)
            .then_with(|| super::debver::compare(&b.pkg.version, &a.pkg.version))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeadm_docs_line_is_one_flat_source() {
        let s = parse_list(
            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /\n",
            "k.list",
        )
        .unwrap();
        assert_eq!(
            s[0].signed_by.as_deref(),
            Some("/etc/apt/keyrings/kubernetes-apt-keyring.gpg")
        );
        assert_eq!(
            s[0].release_name("InRelease"),
            "https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease"
        );
        let idx = s[0].indexes("arm64");
        assert_eq!(idx[0].1, "pkgs.k8s.io_core:_stable:_v1.32_deb_Packages");
        assert_eq!(
            idx[0].2,
            "https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages"
        );
        assert_eq!(k8s_minor_of("/core:/stable:/v1.32/deb/"), Some(32));
        assert_eq!(k8s_minor_of("/mirror/core:/stable:/v1.30/deb"), Some(30));
        assert_eq!(k8s_minor_of("/debian"), None);
    }

    #[test]
    fn malformed_lines_get_apts_messages() {
        let e = parse_list(
            "deb https://pkgs.k8s.io/core:/stable:/v1.32/deb/\n",
            "/etc/apt/sources.list.d/k.list",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "E: Malformed entry 1 in list file /etc/apt/sources.list.d/k.list (Suite)"
        );
        let e = parse_list("\ndeb http://deb.debian.org/debian bookworm\n", "f").unwrap_err();
        assert_eq!(e, "E: Malformed entry 2 in list file f (Component)");
        let e = parse_list("deb [signed-by=/k.gpg https://x/ /\n", "f").unwrap_err();
        assert_eq!(e, "E: Malformed entry 1 in list file f (option)");
    }

    #[test]
    fn deb822_stanzas_expand_to_one_source_per_suite() {
        let s = parse_deb822(
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
            "debian.sources",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[1].indexes("amd64")[0].2,
            "http://deb.debian.org/debian bookworm-updates/main amd64 Packages"
        );
    }

    #[test]
    fn each_minor_holds_its_patches_and_their_tools() {
        let p = k8s_packages(32).unwrap();
        assert!(p
            .iter()
            .any(|p| p.name == "kubeadm" && p.version == "1.32.0-1.1"));
        assert!(p
            .iter()
            .any(|p| p.name == "kubelet" && p.version == "1.32.4-1.1"));
        assert!(!p.iter().any(|p| p.version == "1.32.5-1.1"));
        assert!(k8s_packages(29).is_none());
        assert!(k8s_packages(36).is_none());
    }
}
