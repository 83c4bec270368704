//! The topology a lab is built from: the few things the lab needs from a
//! cluster.toml (the cluster's name, version and endpoint, the load balancer,
//! and each node's name, role, address and arch), read by the lab's own
//! reader. Everything else in the file (labels, taints, groups, ssh settings,
//! tokens, ...) is gt's business and passes through untouched.
//!
//! The lab does not validate a config as gt does: it reads only what it must
//! to build hosts, and says which file, line and key it could not read.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml_edit::{Document, Item, TableLike};

/// What the lab builds: the topology's cluster and hosts, in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub(crate) cluster_name: String,
    pub(crate) version: Version,
    pub(crate) endpoint: SourceEndpoint,
    /// The control plane that runs `kubeadm init` (HAProxy lists it first).
    pub(crate) bootstrap: String,
    pub(crate) load_balancer: Option<LoadBalancer>,
    pub(crate) nodes: Vec<SourceNode>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceEndpoint {
    /// An address or a DNS name; the lab can map only an IPv4 address.
    pub(crate) host: String,
    pub(crate) port: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadBalancer {
    pub(crate) name: String,
    pub(crate) address: IpAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceNode {
    pub(crate) name: String,
    /// `control-plane` or `worker`.
    pub(crate) role: String,
    pub(crate) address: IpAddr,
    /// A Kubernetes arch name (`arm64`), whatever spelling `uname -m` gave it.
    pub(crate) arch: String,
    /// `state = "absent"`: a host that exists but is to leave the cluster.
    pub(crate) absent: bool,
    /// 1-based line of the node's table (for messages).
    pub(crate) line: usize,
}

/// A Kubernetes release, `1.32` or `1.32.4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) patch: Option<u32>,
}

impl Version {
    /// `1.32`, `v1.32.4`; a build suffix (`+k3s1`, `-rc.0`) is dropped.
    pub(crate) fn parse(s: &str) -> Option<Version> {
        let core = s.trim().trim_start_matches('v');
        let core = &core[..core.find(['+', '-']).unwrap_or(core.len())];
        let parts: Vec<&str> = core.split('.').collect();
        let number = |p: &str| p.parse::<u32>().ok();
        match parts[..] {
            [major, minor] => Some(Version {
                major: number(major)?,
                minor: number(minor)?,
                patch: None,
            }),
            [major, minor, patch] => Some(Version {
                major: number(major)?,
                minor: number(minor)?,
                patch: Some(number(patch)?),
            }),
            _ => None,
        }
    }
}

/// Why the lab cannot read a topology: the file, and what is wrong where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceError {
    pub(crate) path: PathBuf,
    pub(crate) message: String,
}

/// Reads `text`, the contents of `path`.
pub(crate) fn read(text: &str, path: &Path) -> Result<Source, SourceError> {
    Reader::new(text, path).source()
}

struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
}

type Found<T> = Result<T, SourceError>;

impl<'a> Reader<'a> {
    fn new(text: &'a str, path: &'a Path) -> Reader<'a> {
        Reader { text, path }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn error(&self, at: Option<std::ops::Range<usize>>, message: String) -> SourceError {
        let message = match at {
            Some(span) => format!("line {}: {message}", self.line_of(span.start)),
            None => message,
        };
        SourceError {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn source(&self) -> Found<Source> {
        let doc = Document::parse(self.text)
            .map_err(|e| self.error(e.span(), format!("not TOML: {}", e.message().trim_end())))?;
        let root = doc.as_table();
        let cluster = self.table(root, "cluster", "the file")?;
        let cluster_name = self.string(cluster, "cluster", "name")?.to_string();
        let version_text = self.string(cluster, "cluster", "kubernetes_version")?;
        let version = Version::parse(version_text).ok_or_else(|| {
            self.error(
                cluster.get("kubernetes_version").and_then(Item::span),
                format!(
                    "[cluster] kubernetes_version {version_text:?} is not a Kubernetes version \
                     (write \"1.32\" or \"1.32.4\")"
                ),
            )
        })?;
        let endpoint = self.endpoint(cluster)?;
        let load_balancer = self.load_balancer(root)?;
        let default_arch = match root.get("defaults").and_then(Item::as_table_like) {
            Some(d) => self.optional_arch(d, "[defaults]")?,
            None => None,
        };
        let nodes = self.nodes(root, default_arch.as_deref())?;
        let bootstrap = self.bootstrap(cluster, &nodes)?;
        Ok(Source {
            cluster_name,
            version,
            endpoint,
            bootstrap,
            load_balancer,
            nodes,
        })
    }

    fn table<'d>(
        &self,
        parent: &'d dyn TableLike,
        key: &str,
        within: &str,
    ) -> Found<&'d dyn TableLike> {
        match parent.get(key) {
            None => Err(self.error(None, format!("{within} has no [{key}] table"))),
            Some(item) => item.as_table_like().ok_or_else(|| {
                self.error(item.span(), format!("`{key}` in {within} is not a table"))
            }),
        }
    }

    fn string<'d>(&self, t: &'d dyn TableLike, within: &str, key: &str) -> Found<&'d str> {
        match t.get(key) {
            None => Err(self.error(None, format!("[{within}] has no `{key}`"))),
            Some(item) => item.as_str().ok_or_else(|| {
                self.error(item.span(), format!("[{within}] `{key}` is not a string"))
            }),
        }
    }

    fn address(&self, t: &dyn TableLike, within: &str) -> Found<IpAddr> {
        let text = self.string(t, within, "address")?;
        text.parse().map_err(|_| {
            self.error(
                t.get("address").and_then(Item::span),
                format!("[{within}] address {text:?} is not an IP address"),
            )
        })
    }

    fn endpoint(&self, cluster: &dyn TableLike) -> Found<SourceEndpoint> {
        let text = self.string(cluster, "cluster", "endpoint")?;
        let bad = |why: &str| {
            self.error(
                cluster.get("endpoint").and_then(Item::span),
                format!(
                    "[cluster] endpoint {text:?} {why}; write host:port, e.g. \"10.4.0.10:6443\""
                ),
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("has no valid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        Ok(SourceEndpoint {
            host: host.to_string(),
            port,
        })
    }

    fn load_balancer(&self, root: &dyn TableLike) -> Found<Option<LoadBalancer>> {
        let Some(item) = root.get("load_balancer") else {
            return Ok(None);
        };
        let t = item
            .as_table_like()
            .ok_or_else(|| self.error(item.span(), "`load_balancer` is not a table".to_string()))?;
        Ok(Some(LoadBalancer {
            name: self.string(t, "load_balancer", "name")?.to_string(),
            address: self.address(t, "load_balancer")?,
        }))
    }

    fn optional_arch(&self, t: &dyn TableLike, within: &str) -> Found<Option<String>> {
        let Some(item) = t.get("arch") else {
            return Ok(None);
        };
        let text = item
            .as_str()
            .ok_or_else(|| self.error(item.span(), format!("{within} `arch` is not a string")))?;
        kubernetes_arch(text)
            .map(|a| Some(a.to_string()))
            .ok_or_else(|| {
                self.error(
                    item.span(),
                    format!(
                        "{within} arch {text:?} is not an architecture the lab simulates \
                     (amd64, arm64, arm, ppc64le, s390x, riscv64)"
                    ),
                )
            })
    }

    fn nodes(&self, root: &dyn TableLike, default_arch: Option<&str>) -> Found<Vec<SourceNode>> {
        let nodes = self.table(root, "nodes", "the file")?;
        let mut out = Vec::new();
        for (name, item) in nodes.iter() {
            let within = format!("nodes.{name}");
            let header = nodes.key(name).and_then(|k| k.span());
            let t = item
                .as_table_like()
                .ok_or_else(|| self.error(item.span(), format!("[{within}] is not a table")))?;
            let role = self.string(t, &within, "role")?;
            if role != "control-plane" && role != "worker" {
                return Err(self.error(
                    t.get("role").and_then(Item::span),
                    format!("[{within}] role {role:?} is neither \"control-plane\" nor \"worker\""),
                ));
            }
            let arch = match self.optional_arch(t, &format!("[{within}]"))? {
                Some(a) => a,
                None => default_arch.map(str::to_string).ok_or_else(|| {
                    self.error(
                        header.clone(),
                        format!("[{within}] has no arch, and [defaults] gives none"),
                    )
                })?,
            };
            out.push(SourceNode {
                name: name.to_string(),
                role: role.to_string(),
                address: self.address(t, &within)?,
                arch,
                absent: t.get("state").and_then(Item::as_str) == Some("absent"),
                line: header.map(|s| self.line_of(s.start)).unwrap_or(0),
            });
        }
        if out.is_empty() {
            return Err(self.error(None, "[nodes] names no node".to_string()));
        }
        Ok(out)
    }

    /// `[cluster] bootstrap`, else the first control plane that stays in the cluster.
    fn bootstrap(&self, cluster: &dyn TableLike, nodes: &[SourceNode]) -> Found<String> {
        if cluster.get("bootstrap").is_some() {
            let name = self.string(cluster, "cluster", "bootstrap")?;
            if !nodes.iter().any(|n| n.name == name) {
                return Err(self.error(
                    cluster.get("bootstrap").and_then(Item::span),
                    format!("[cluster] bootstrap {name:?} is not a node in [nodes]"),
                ));
            }
            return Ok(name.to_string());
        }
        nodes
            .iter()
            .find(|n| n.role == "control-plane" && !n.absent)
            .map(|n| n.name.clone())
            .ok_or_else(|| {
                self.error(
                    None,
                    "[nodes] has no control plane that stays in the cluster".to_string(),
                )
            })
    }
}

/// The Kubernetes name of an architecture, from either spelling.
fn kubernetes_arch(s: &str) -> Option<&'static str> {
    Some(match s {
        "amd64" | "x86_64" => "amd64",
        "arm64" | "aarch64" => "arm64",
        "arm" | "armv7l" | "armv6l" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPOLOGY: &str = r#"
[cluster]
name = "goldentooth"
kubernetes_version = "1.32"
endpoint = "10.4.0.10:6443"

[load_balancer]
name = "allyrion"
address = "10.4.0.10"

[defaults]
arch = "arm64"
ssh = { user = "root" }

[nodes.bettley]
role = "control-plane"
address = "10.4.0.11"
state = "absent"

[nodes.cargyll]
role = "control-plane"
address = "10.4.0.12"
labels = { "goldentooth.io/x" = "y" }

[nodes.velaryon]
role = "worker"
address = "10.4.1.10"
arch = "x86_64"
"#;

    fn read_str(text: &str) -> Result<Source, SourceError> {
        read(text, Path::new("/t/cluster.toml"))
    }

    fn error_of(text: &str) -> String {
        let e = read_str(text).unwrap_err();
        assert_eq!(e.path, Path::new("/t/cluster.toml"));
        e.message
    }

    #[test]
    fn reads_what_the_lab_builds_and_nothing_else() {
        let s = read_str(TOPOLOGY).unwrap();
        assert_eq!(s.cluster_name, "goldentooth");
        assert_eq!(
            s.version,
            Version {
                major: 1,
                minor: 32,
                patch: None
            }
        );
        assert_eq!(s.endpoint.host, "10.4.0.10");
        assert_eq!(s.endpoint.port, 6443);
        assert_eq!(s.load_balancer.unwrap().name, "allyrion");
        let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["bettley", "cargyll", "velaryon"]);
        assert_eq!(s.nodes[1].arch, "arm64", "inherited from [defaults]");
        assert_eq!(s.nodes[2].arch, "amd64", "uname's spelling, normalised");
        assert_eq!(s.nodes[2].line, 25);
        assert_eq!(s.bootstrap, "cargyll", "the first control plane that stays");
    }

    #[test]
    fn versions_read_like_kubernetes_releases() {
        let v = |s| Version::parse(s).map(|v| (v.major, v.minor, v.patch));
        assert_eq!(v("v1.32.4+k3s1"), Some((1, 32, Some(4))));
        assert_eq!(v("1.31"), Some((1, 31, None)));
        assert_eq!(v("1"), None);
        assert_eq!(v("1.32.4.1"), None);
        assert_eq!(v("one.two"), None);
    }

    #[test]
    fn errors_name_the_line_and_what_is_wrong() {
        let bad_address = TOPOLOGY.replace("10.4.0.12", "10.4.0");
        assert_eq!(
            error_of(&bad_address),
            "line 22: [nodes.cargyll] address \"10.4.0\" is not an IP address"
        );
        let no_role = TOPOLOGY.replace("role = \"worker\"\n", "");
        assert_eq!(error_of(&no_role), "[nodes.velaryon] has no `role`");
        let no_port = TOPOLOGY.replace("10.4.0.10:6443", "10.4.0.10");
        assert!(
            error_of(&no_port).starts_with("line 5: [cluster] endpoint \"10.4.0.10\" has no port"),
            "{}",
            error_of(&no_port)
        );
        let no_arch = TOPOLOGY.replace("arch = \"arm64\"\n", "");
        assert_eq!(
            error_of(&no_arch),
            "line 14: [nodes.bettley] has no arch, and [defaults] gives none"
        );
        let not_toml = TOPOLOGY.replace("[nodes.velaryon]", "[nodes.velaryon");
        assert!(error_of(&not_toml).starts_with("line 25: not TOML"));
        let stranger = format!("{TOPOLOGY}\n").replace(
            "endpoint = \"10.4.0.10:6443\"",
            "endpoint = \"10.4.0.10:6443\"\nbootstrap = \"bettly\"",
        );
        assert_eq!(
            error_of(&stranger),
            "line 6: [cluster] bootstrap \"bettly\" is not a node in [nodes]"
        );
    }
}
