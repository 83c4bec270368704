//! Reading cluster.toml into a validated `Spec`. Every problem is collected
//! (not only the first) and carries file:line:column and what to do.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml_edit::{Document, Item};

/// One problem in the config, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line, for the excerpt.
    pub source_line: Option<String>,
    /// Width of the underline under the problem.
    pub width: usize,
}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostic {
    /// rustc-style: message, `--> file:line:col`, the line with a caret, `= help:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if self.line == 0 {
            writeln!(f, "  --> {}", self.file.display())?;
        } else {
            writeln!(
                f,
                "  --> {}:{}:{}",
                self.file.display(),
                self.line,
                self.column
            )?;
            if let Some(src) = &self.source_line {
                let num = self.line.to_string();
                let pad = " ".repeat(num.len());
                writeln!(f, "{pad} |")?;
                writeln!(f, "{num} | {src}")?;
                let caret_pad: String = src
                    .chars()
                    .take(self.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{pad} | {caret_pad}{}", "^".repeat(self.width.max(1)))?;
            }
        }
        if let Some(h) = &self.help {
            writeln!(f, "  = help: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        writeln!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.0
                .first()
                .map(|d| d.file.display().to_string())
                .unwrap_or_default()
        )
    }
}

/// The config file: `--config`, then `$GT_CONFIG`, then `./cluster.toml`.
pub fn find_config(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "config file {} (from --config) does not exist",
                p.display()
            ))
        };
    }
    if let Some(p) = std::env::var_os("GT_CONFIG").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "config file {} (from $GT_CONFIG) does not exist",
                p.display()
            ))
        };
    }
    let p = PathBuf::from("cluster.toml");
    if p.exists() {
        Ok(p)
    } else {
        Err("no cluster.toml in the current directory; pass --config FILE or set GT_CONFIG".into())
    }
}

pub fn load_file(path: &Path) -> Result<Spec, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&src, path),
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read {}: {e}", path.display()),
            help: None,
            source_line: None,
            width: 0,
        }])),
    }
}

/// Parses and validates `src` as if read from `path` (relative paths in the
/// file resolve against `path`'s directory).
pub fn load_str(src: &str, path: &Path) -> Result<Spec, Diagnostics> {
    let mut cx = Loader::new(src, path);
    let doc = match Document::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            let help = if msg.contains("duplicate key") {
                let name = &src[span.clone()];
                Some(format!(
                    "`{name}` is defined twice: each key and each [table] (each node) may appear once; merge or rename one"
                ))
            } else {
                None
            };
            cx.error(span, format!("invalid TOML: {msg}"), help);
            return Err(cx.finish());
        }
    };
    let spec = cx.spec(doc.as_table());
    let diags = cx.finish();
    match spec {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(diags),
    }
}

const TOP_KEYS: &[&str] = &[
    "cluster",
    "load_balancer",
    "defaults",
    "tokens",
    "preflight",
    "apply",
    "nodes",
];
const CLUSTER_KEYS: &[&str] = &[
    "name",
    "kubernetes_version",
    "endpoint",
    "pod_cidr",
    "service_cidr",
    "cri_socket",
    "bootstrap",
    "cni",
];
const CNI_KEYS: &[&str] = &["name", "manifest"];
const LB_KEYS: &[&str] = &["name", "address"];
const DEFAULTS_KEYS: &[&str] = &["arch", "connection", "ssh", "local"];
const SSH_KEYS: &[&str] = &[
    "user",
    "port",
    "identity_file",
    "jump_hosts",
    "config_file",
    "connect_timeout",
    "known_hosts",
    "known_hosts_file",
    "sudo",
];
const LOCAL_KEYS: &[&str] = &["env", "shell"];
const TOKENS_KEYS: &[&str] = &["ttl"];
const APPLY_KEYS: &[&str] = &["gate_timeout", "step_timeout", "drain_timeout"];
const PREFLIGHT_KEYS: &[&str] = &["ignore", "allow_ignore_all"];
const NODE_KEYS: &[&str] = &[
    "role",
    "address",
    "arch",
    "labels",
    "taints",
    "groups",
    "state",
    "connection",
    "ssh",
    "local",
];

const DEFAULT_CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
const DEFAULT_CNI_NAME: &str = "calico";
const DEFAULT_CNI_MANIFEST: &str =
    "https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml";

struct Loader<'s> {
    src: &'s str,
    file: PathBuf,
    base_dir: PathBuf,
    line_starts: Vec<usize>,
    diags: Vec<(usize, Diagnostic)>,
}

/// An SSH or local setting as written, before defaults are merged.
#[derive(Default, Clone)]
struct RawSsh {
    host: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    jump_hosts: Option<Vec<String>>,
    config_file: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    known_hosts: Option<KnownHostsPolicy>,
    known_hosts_file: Option<PathBuf>,
    sudo: Option<bool>,
}

impl RawSsh {
    fn over(self, base: &RawSsh) -> RawSsh {
        RawSsh {
            host: self.host.or_else(|| base.host.clone()),
            user: self.user.or_else(|| base.user.clone()),
            port: self.port.or(base.port),
            identity_file: self.identity_file.or_else(|| base.identity_file.clone()),
            jump_hosts: self.jump_hosts.or_else(|| base.jump_hosts.clone()),
            config_file: self.config_file.or_else(|| base.config_file.clone()),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            known_hosts: self.known_hosts.or(base.known_hosts),
            known_hosts_file: self
                .known_hosts_file
                .or_else(|| base.known_hosts_file.clone()),
            sudo: self.sudo.or(base.sudo),
        }
    }

    fn resolve(self, address: &IpAddr) -> SshSettings {
        let user = self.user.unwrap_or_else(|| "root".into());
        SshSettings {
            host: self.host.unwrap_or_else(|| address.to_string()),
            sudo: self.sudo.unwrap_or(user != "root"),
            user,
            port: self.port.unwrap_or(22),
            identity_file: self.identity_file,
            jump_hosts: self.jump_hosts.unwrap_or_default(),
            config_file: self.config_file,
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(5)),
            known_hosts: self.known_hosts.unwrap_or(KnownHostsPolicy::Strict),
            known_hosts_file: self.known_hosts_file,
        }
    }
}

#[derive(Default, Clone)]
struct RawLocal {
    env: BTreeMap<String, String>,
    shell: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnKind {
    Ssh,
    Local,
}

impl<'s> Loader<'s> {
    fn new(src: &'s str, file: &Path) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        let base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Loader {
            src,
            file: file.to_path_buf(),
            base_dir,
            line_starts,
            diags: Vec::new(),
        }
    }

    fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let start = span.start.min(self.src.len());
        let line_idx = self.line_starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.line_starts[line_idx];
        let line_end = self.src[line_start..]
            .find('\n')
            .map(|i| line_start + i)
            .unwrap_or(self.src.len());
        let line_text = self.src[line_start..line_end].trim_end_matches('\r');
        let column = self.src[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = self.src[start..end].chars().count();
        self.diags.push((
            start,
            Diagnostic {
                file: self.file.clone(),
                line: line_idx + 1,
                column,
                message,
                help,
                source_line: Some(line_text.to_string()),
                width,
            },
        ));
    }

    /// An error about the file as a whole (a missing table).
    fn error_at_start(&mut self, message: String, help: Option<String>) {
        self.diags.push((
            0,
            Diagnostic {
                file: self.file.clone(),
                line: 0,
                column: 0,
                message,
                help,
                source_line: None,
                width: 0,
            },
        ));
    }

    fn finish(mut self) -> Diagnostics {
        self.diags.sort_by_key(|(pos, _)| *pos);
        Diagnostics(self.diags.into_iter().map(|(_, d)| d).collect())
    }

    fn line_of(&self, pos: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= pos)
    }

    /// Reports keys of `table` that are not in `allowed`, with a suggestion.
    fn check_keys(&mut self, table: &dyn TableLike, allowed: &[&str], what: &str) {
        for (key, span) in table.keys_with_spans() {
            if !allowed.contains(&key.as_str()) {
                let help = suggest(&key, allowed)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("valid keys in {what}: {}", allowed.join(", ")));
                self.error(
                    span.unwrap_or(0..0),
                    format!("unknown key `{key}` in {what}"),
                    Some(help),
                );
            }
        }
    }

    fn spec(&mut self, root: &toml_edit::Table) -> Option<Spec> {
        self.check_keys(&root, TOP_KEYS, "the top level");
        let cluster_item = root.get("cluster");
        let cluster_tbl = match cluster_item.and_then(as_table_like) {
            Some(t) => t,
            None => {
                self.error_at_start(
                    "missing [cluster] table".into(),
                    Some("add [cluster] with name, kubernetes_version, endpoint, pod_cidr and service_cidr".into()),
                );
                return None;
            }
        };
        self.check_keys(&cluster_tbl, CLUSTER_KEYS, "[cluster]");

        let name = self.req_str(&cluster_tbl, "name", "[cluster]");
        let version = self.req_parsed(&cluster_tbl, "kubernetes_version", "[cluster]", |s| {
            KubeVersion::parse(s).ok_or_else(|| {
                format!("`{s}` is not a Kubernetes version; write \"1.32\" or \"1.32.4\"")
            })
        });
        let endpoint = self.req_parsed(&cluster_tbl, "endpoint", "[cluster]", |s| {
            s.parse::<Endpoint>()
        });
        let pod_cidr = self.req_parsed(&cluster_tbl, "pod_cidr", "[cluster]", parse_cidr);
        let service_cidr = self.req_parsed(&cluster_tbl, "service_cidr", "[cluster]", parse_cidr);
        if let (Some(p), Some(s)) = (&pod_cidr, &service_cidr) {
            if p.contains(&s.network()) || s.contains(&p.network()) {
                let span = value_span(cluster_tbl.get("service_cidr"));
                self.error(
                    span,
                    format!("pod_cidr {p} and service_cidr {s} overlap"),
                    Some("pod and service addresses must not overlap: choose disjoint ranges, e.g. 192.168.0.0/16 and 172.16.0.0/20".into()),
                );
            }
        }
        let cri_socket = self
            .opt_str(&cluster_tbl, "cri_socket", "[cluster]")
            .unwrap_or_else(|| DEFAULT_CRI_SOCKET.into());
        if !cri_socket.starts_with("unix://") && !cri_socket.starts_with('/') {
            let span = value_span(cluster_tbl.get("cri_socket"));
            self.error(
                span,
                format!("cri_socket `{cri_socket}` is not a unix socket"),
                Some(format!(
                    "write a unix socket URL, e.g. \"{DEFAULT_CRI_SOCKET}\""
                )),
            );
        }
        let cni = match cluster_tbl.get("cni") {
            None => Cni {
                name: DEFAULT_CNI_NAME.into(),
                manifest: DEFAULT_CNI_MANIFEST.into(),
            },
            Some(item) => match as_table_like(item) {
                Some(t) => {
                    self.check_keys(&t, CNI_KEYS, "[cluster.cni]");
                    Cni {
                        name: self
                            .opt_str(&t, "name", "[cluster.cni]")
                            .unwrap_or_else(|| DEFAULT_CNI_NAME.into()),
                        manifest: self
                            .req_str(&t, "manifest", "[cluster.cni]")
                            .unwrap_or_default(),
                    }
                }
                None => {
                    self.type_error(item, "cluster.cni", "a table with name and manifest");
                    Cni {
                        name: DEFAULT_CNI_NAME.into(),
                        manifest: DEFAULT_CNI_MANIFEST.into(),
                    }
                }
            },
        };
        let bootstrap_raw = self.opt_str(&cluster_tbl, "bootstrap", "[cluster]");

        let load_balancer = root.get("load_balancer").and_then(|item| {
            let t = match as_table_like(item) {
                Some(t) => t,
                None => {
                    self.type_error(item, "load_balancer", "a table with name and address");
                    return None;
                }
            };
            self.check_keys(&t, LB_KEYS, "[load_balancer]");
            let name = self.req_str(&t, "name", "[load_balancer]");
            let address = self.req_parsed(&t, "address", "[load_balancer]", parse_ip);
            Some(LoadBalancer {
                name: name?,
                address: address?,
            })
        });

        // [defaults]
        let mut default_arch = None;
        let mut default_conn = ConnKind::Ssh;
        let mut default_ssh = RawSsh::default();
        let mut default_local = RawLocal::default();
        if let Some(item) = root.get("defaults") {
            match as_table_like(item) {
                Some(t) => {
                    self.check_keys(&t, DEFAULTS_KEYS, "[defaults]");
                    default_arch = self.opt_parsed(&t, "arch", "[defaults]", parse_arch);
                    if let Some(c) = self.opt_parsed(&t, "connection", "[defaults]", parse_conn) {
                        default_conn = c;
                    }
                    if let Some(s) = t.get("ssh") {
                        default_ssh = self.ssh(s, SSH_KEYS, "[defaults.ssh]");
                    }
                    if let Some(l) = t.get("local") {
                        default_local = self.local(l, "[defaults.local]");
                    }
                }
                None => self.type_error(item, "defaults", "a table"),
            }
        }

        let tokens = Tokens {
            ttl: self
                .durations(root.get("tokens"), "tokens", TOKENS_KEYS, |k| match k {
                    "ttl" => Some("would mint a join token that never expires; use a short TTL such as \"15m\""),
                    _ => None,
                })
                .remove("ttl")
                .unwrap_or(Tokens::DEFAULT_TTL),
        };
        let mut apply = self.durations(root.get("apply"), "apply", APPLY_KEYS, |_| {
            Some("would give up at once; use e.g. \"5m\"")
        });
        let apply = ApplySettings {
            gate_timeout: apply
                .remove("gate_timeout")
                .unwrap_or(ApplySettings::DEFAULT_GATE_TIMEOUT),
            step_timeout: apply
                .remove("step_timeout")
                .unwrap_or(ApplySettings::DEFAULT_STEP_TIMEOUT),
            drain_timeout: apply
                .remove("drain_timeout")
                .unwrap_or(ApplySettings::DEFAULT_DRAIN_TIMEOUT),
        };

        let preflight = self.preflight(root.get("preflight"));

        // [nodes.*]
        let mut nodes = Vec::new();
        // A node that failed to load would skew the counts below: its own error suffices.
        let mut incomplete_nodes = false;
        match root.get("nodes").map(|i| (i, as_table_like(i))) {
            None => self.error_at_start(
                "no nodes: add at least one [nodes.NAME] table".into(),
                Some(
                    "e.g. [nodes.bettley] role = \"control-plane\" address = \"10.4.0.11\"".into(),
                ),
            ),
            Some((item, None)) => self.type_error(item, "nodes", "tables [nodes.NAME]"),
            Some((_, Some(t))) => {
                for (name, key_span, item) in t.entries() {
                    let before = self.diags.len();
                    if let Some(n) = self.node(
                        &name,
                        key_span.clone(),
                        item,
                        default_arch,
                        default_conn,
                        &default_ssh,
                        &default_local,
                    ) {
                        nodes.push(n);
                    } else if self.diags.len() > before {
                        incomplete_nodes = true;
                    }
                }
            }
        }

        self.cross_checks(
            &nodes,
            incomplete_nodes,
            root,
            &pod_cidr,
            &service_cidr,
            &endpoint,
            &load_balancer,
        );

        let control_planes: Vec<&Node> = nodes
            .iter()
            .filter(|n| n.is_control_plane() && n.is_present())
            .collect();
        let bootstrap = match &bootstrap_raw {
            Some(b) => {
                let span = value_span(cluster_tbl.get("bootstrap"));
                match nodes.iter().find(|n| n.name.as_str() == b) {
                    None => {
                        let names: Vec<&str> =
                            control_planes.iter().map(|n| n.name.as_str()).collect();
                        let help = suggest(b, &names)
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| {
                                format!("name one of the control planes: {}", names.join(", "))
                            });
                        self.error(
                            span,
                            format!("bootstrap node `{b}` is not a node in this file"),
                            Some(help),
                        );
                        None
                    }
                    Some(n) if !n.is_control_plane() => {
                        self.error(
                            span,
                            format!("bootstrap node `{b}` is a worker; kubeadm init runs on a control plane"),
                            Some(format!(
                                "name a control plane ({})",
                                control_planes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
                            )),
                        );
                        None
                    }
                    Some(n) if !n.is_present() => {
                        self.error(
                            span,
                            format!("bootstrap node `{b}` has state = \"absent\""),
                            Some("name a control plane that stays in the cluster".into()),
                        );
                        None
                    }
                    Some(n) => Some(n.name.clone()),
                }
            }
            None => control_planes.first().map(|n| n.name.clone()),
        };

        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.to_string(), i))
            .collect();
        Some(Spec {
            index,
            source: self.file.clone(),
            cluster: Cluster {
                name: name?,
                kubernetes_version: version?,
                endpoint: endpoint?,
                pod_cidr: pod_cidr?,
                service_cidr: service_cidr?,
                cri_socket,
                cni,
                bootstrap: bootstrap?,
            },
            load_balancer,
            tokens,
            preflight,
            apply,
            nodes,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        name: &str,
        key_span: Option<Range<usize>>,
        item: &Item,
        default_arch: Option<Arch>,
        default_conn: ConnKind,
        default_ssh: &RawSsh,
        default_local: &RawLocal,
    ) -> Option<Node> {
        let key_span = key_span.unwrap_or(0..0);
        let what = format!("[nodes.{name}]");
        let node_name = match NodeName::try_from(name.to_string()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(
                    key_span.clone(),
                    e,
                    Some(match NodeName::try_from(name.to_ascii_lowercase()) {
                        Ok(lower) => format!("rename the table: [nodes.{lower}]"),
                        Err(_) => "rename the table, e.g. [nodes.fenn]".into(),
                    }),
                );
                None
            }
        };
        let t = match as_table_like(item) {
            Some(t) => t,
            None => {
                self.type_error(item, &format!("nodes.{name}"), "a table");
                return None;
            }
        };
        self.check_keys(&t, NODE_KEYS, &what);
        let role = self.req_parsed(&t, "role", &what, |s| match s {
            "control-plane" => Ok(Role::ControlPlane),
            "worker" => Ok(Role::Worker),
            "controlplane" | "control_plane" | "master" | "controller" => Err(format!(
                "role `{s}` is not valid; did you mean \"control-plane\"?"
            )),
            _ => Err(format!(
                "role `{s}` is not valid; write \"control-plane\" or \"worker\""
            )),
        });
        let address = self.req_parsed(&t, "address", &what, parse_ip);
        let arch = match self
            .opt_parsed(&t, "arch", &what, parse_arch)
            .or(default_arch)
        {
            Some(a) => Some(a),
            None => {
                if t.get("arch").is_none() {
                    self.error(
                        key_span.clone(),
                        format!("node `{name}` has no arch"),
                        Some(
                            "set arch = \"arm64\" (or amd64, ...) on the node or in [defaults]"
                                .into(),
                        ),
                    );
                }
                None
            }
        };
        let state = self
            .opt_parsed(&t, "state", &what, |s| match s {
                "present" => Ok(NodeState::Present),
                "absent" => Ok(NodeState::Absent),
                _ => Err(format!(
                    "state `{s}` is not valid; write \"present\" or \"absent\""
                )),
            })
            .unwrap_or(NodeState::Present);

        let labels = self.labels(&t, name);
        let taints = self.taints(&t, name);
        let mut groups = vec![
            GROUP_ALL_NODES.to_string(),
            match role {
                Some(Role::ControlPlane) => GROUP_CONTROL_PLANE.to_string(),
                _ => GROUP_WORKER.to_string(),
            },
        ];
        if let Some(item) = t.get("groups") {
            for (g, span) in self.str_array(item, &format!("nodes.{name}.groups")) {
                if g.is_empty()
                    || !g
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    self.error(
                        span,
                        format!("group name `{g}` may contain only letters, digits, '_' and '-'"),
                        None,
                    );
                } else if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }

        let conn = self
            .opt_parsed(&t, "connection", &what, parse_conn)
            .unwrap_or(default_conn);
        let ssh = t
            .get("ssh")
            .map(|s| {
                // A node's ssh table takes every [defaults.ssh] key, and `host`.
                let keys: Vec<&str> = SSH_KEYS.iter().copied().chain(["host"]).collect();
                self.ssh(s, &keys, &format!("[nodes.{name}.ssh]"))
            })
            .unwrap_or_default()
            .over(default_ssh);
        let local = t
            .get("local")
            .map(|l| self.local(l, &format!("[nodes.{name}.local]")));
        let table_pos = item
            .as_table()
            .and_then(|t| t.span())
            .map(|s| s.start)
            .unwrap_or(key_span.start);
        let line = self.line_of(table_pos);

        let address = address?;
        let connection = match conn {
            ConnKind::Ssh => Connection::Ssh(ssh.resolve(&address)),
            ConnKind::Local => {
                let mut env = default_local.env.clone();
                let mut shell = default_local.shell.clone();
                if let Some(l) = local {
                    env.extend(l.env);
                    shell = l.shell.or(shell);
                }
                Connection::Local(LocalSettings {
                    env,
                    shell: shell.unwrap_or_else(|| PathBuf::from("/bin/sh")),
                })
            }
        };
        Some(Node {
            name: node_name?,
            role: role?,
            address,
            arch: arch?,
            labels,
            taints,
            groups,
            state,
            connection,
            line,
        })
    }

    fn labels(&mut self, t: &dyn TableLike, node: &str) -> BTreeMap<LabelKey, String> {
        let mut out = BTreeMap::new();
        let Some(item) = t.get("labels") else {
            return out;
        };
        let Some(lt) = as_table_like(item) else {
            self.type_error(
                item,
                &format!("nodes.{node}.labels"),
                "a table of \"key\" = \"value\"",
            );
            return out;
        };
        for (k, kspan, v) in lt.entries() {
            let kspan = kspan.unwrap_or(0..0);
            let value = match v.as_str() {
                Some(s) => s.to_string(),
                None => {
                    self.type_error(v, &format!("label `{k}`"), "a string");
                    continue;
                }
            };
            let key = match LabelKey::try_from(k.clone()) {
                Ok(key) => key,
                Err(e) => {
                    self.error(
                        kspan,
                        format!("label key `{k}` on node `{node}`: {e}"),
                        Some("label keys are [prefix/]name, e.g. goldentooth.io/role".into()),
                    );
                    continue;
                }
            };
            if key.is_system_managed() {
                self.error(
                    kspan,
                    format!("label `{k}` on node `{node}` is managed by Kubernetes itself (kubelet or kubeadm)"),
                    Some("use your own prefix, e.g. goldentooth.io/...".into()),
                );
                continue;
            }
            if let Err(e) = check_label_value(&value) {
                self.error(
                    value_span(Some(v)),
                    format!("label `{k}` on node `{node}`: {e}"),
                    None,
                );
                continue;
            }
            out.insert(key, value);
        }
        out
    }

    fn taints(&mut self, t: &dyn TableLike, node: &str) -> Vec<Taint> {
        let mut out: Vec<Taint> = Vec::new();
        let Some(item) = t.get("taints") else {
            return out;
        };
        for (s, span) in self.str_array(item, &format!("nodes.{node}.taints")) {
            match s.parse::<Taint>() {
                Err(e) => self.error(span, format!("taint on node `{node}`: {e}"), Some("write key[=value]:Effect, e.g. \"goldentooth.io/gpu=true:NoSchedule\"".into())),
                Ok(taint) if taint.is_system_managed() => self.error(
                    span,
                    format!("taint `{s}` on node `{node}` is managed by Kubernetes itself (kubeadm or the node controller)"),
                    Some("use your own key prefix, e.g. goldentooth.io/...".into()),
                ),
                Ok(taint) => {
                    if out.iter().any(|o| o.key == taint.key && o.effect == taint.effect) {
                        self.error(span, format!("taint `{}:{}` is given twice on node `{node}`", taint.key, taint.effect.as_str()), Some("keep one".into()));
                    } else {
                        out.push(taint);
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// A table whose keys are all durations (`[tokens]`, `[apply]`); a zero
    /// duration is refused with `zero_means`'s words.
    fn durations(
        &mut self,
        item: Option<&Item>,
        table: &str,
        keys: &[&str],
        zero_means: impl Fn(&str) -> Option<&'static str>,
    ) -> BTreeMap<String, Duration> {
        let mut out = BTreeMap::new();
        let Some(item) = item else {
            return out;
        };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, table, "a table");
            return out;
        };
        let what = format!("[{table}]");
        self.check_keys(&t, keys, &what);
        for &key in keys {
            let d = self.opt_parsed(&t, key, &what, |s| match parse_go_duration(s) {
                None => Err(format!(
                    "`{s}` is not a duration; write e.g. \"15m\", \"1h\" or \"1h30m\""
                )),
                Some(d) if d.is_zero() => match zero_means(key) {
                    Some(why) => Err(format!("0 {why}")),
                    None => Ok(d),
                },
                Some(d) => Ok(d),
            });
            if let Some(d) = d {
                out.insert(key.to_string(), d);
            }
        }
        out
    }

    fn preflight(&mut self, item: Option<&Item>) -> Preflight {
        let mut ignore = Vec::new();
        let Some(item) = item else {
            return Preflight { ignore };
        };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "preflight", "a table");
            return Preflight { ignore };
        };
        self.check_keys(&t, PREFLIGHT_KEYS, "[preflight]");
        let allow_all = self
            .opt_bool(&t, "allow_ignore_all", "[preflight]")
            .unwrap_or(false);
        let mut all_span = None;
        if let Some(item) = t.get("ignore") {
            for (name, span) in self.str_array(item, "preflight.ignore") {
                let lower = name.to_ascii_lowercase();
                if lower.is_empty() || lower.contains(',') || lower.contains(char::is_whitespace) {
                    self.error(
                        span,
                        format!("`{name}` is not a preflight check name"),
                        Some(
                            "give one kubeadm check name per string, e.g. \"Swap\" or \"NumCPU\""
                                .into(),
                        ),
                    );
                    continue;
                }
                if lower == "all" {
                    all_span = Some(span);
                }
                ignore.push(lower);
            }
        }
        if let Some(span) = all_span {
            if !allow_all {
                self.error(
                    span.clone(),
                    "preflight.ignore = [\"all\"] hides every kubeadm preflight error (goldentooth's Ansible did this and it hid real failures)".into(),
                    Some("name the checks to ignore, or opt in explicitly with allow_ignore_all = true".into()),
                );
            } else if ignore.len() > 1 {
                self.error(
                    span,
                    "`all` together with other check names: kubeadm refuses this (\"don't specify individual checks if 'all' is used\")".into(),
                    Some("keep only \"all\" or only the named checks".into()),
                );
            }
        }
        ignore.sort();
        ignore.dedup();
        Preflight { ignore }
    }

    fn ssh(&mut self, item: &Item, allowed: &[&str], what: &str) -> RawSsh {
        let mut raw = RawSsh::default();
        let Some(t) = as_table_like(item) else {
            self.type_error(item, what, "a table");
            return raw;
        };
        self.check_keys(&t, allowed, what);
        raw.host = self.opt_str(&t, "host", what);
        raw.user = self.opt_str(&t, "user", what);
        if let Some(item) = t.get("port") {
            match item.as_integer() {
                Some(p) if (1..=65535).contains(&p) => raw.port = Some(p as u16),
                _ => self.error(
                    value_span(Some(item)),
                    format!("port in {what} must be an integer from 1 to 65535"),
                    None,
                ),
            }
        }
        raw.identity_file = self
            .opt_str(&t, "identity_file", what)
            .map(|p| self.path(&p));
        raw.config_file = self.opt_str(&t, "config_file", what).map(|p| self.path(&p));
        raw.known_hosts_file = self
            .opt_str(&t, "known_hosts_file", what)
            .map(|p| self.path(&p));
        if let Some(item) = t.get("jump_hosts") {
            let hops: Vec<String> = if let Some(s) = item.as_str() {
                vec![s.to_string()]
            } else {
                self.str_array(item, &format!("{what} jump_hosts"))
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            };
            raw.jump_hosts = Some(hops);
        }
        raw.connect_timeout = self.opt_parsed(&t, "connect_timeout", what, |s| {
            parse_go_duration(s)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("connect_timeout `{s}` is not a duration; write e.g. \"5s\"")
                })
        });
        raw.known_hosts = self.opt_parsed(&t, "known_hosts", what, |s| match s {
            "strict" => Ok(KnownHostsPolicy::Strict),
            "accept-new" => Ok(KnownHostsPolicy::AcceptNew),
            "no" | "off" | "insecure" | "accept-all" | "ignore" => Err(format!(
                "known_hosts = \"{s}\" would accept any host key; gt never does. Use \"strict\" (default) or \"accept-new\""
            )),
            _ => Err(format!("known_hosts `{s}` is not valid; write \"strict\" or \"accept-new\"")),
        });
        raw.sudo = self.opt_bool(&t, "sudo", what);
        raw
    }

    fn local(&mut self, item: &Item, what: &str) -> RawLocal {
        let mut raw = RawLocal::default();
        let Some(t) = as_table_like(item) else {
            self.type_error(item, what, "a table");
            return raw;
        };
        self.check_keys(&t, LOCAL_KEYS, what);
        if let Some(env) = t.get("env") {
            match as_table_like(env) {
                Some(et) => {
                    for (k, _, v) in et.entries() {
                        match v.as_str() {
                            Some(s) => {
                                raw.env.insert(k, s.to_string());
                            }
                            None => self.type_error(v, &format!("{what} env.{k}"), "a string"),
                        }
                    }
                }
                None => self.type_error(env, &format!("{what} env"), "a table of strings"),
            }
        }
        raw.shell = self.opt_str(&t, "shell", what).map(|p| self.path(&p));
        raw
    }

    /// `~` is the home directory; a relative path is relative to the config file.
    fn path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            if let Some(home) = std::env::var_os("HOME") {
                return PathBuf::from(home).join(rest);
            }
        }
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn cross_checks(
        &mut self,
        nodes: &[Node],
        incomplete_nodes: bool,
        root: &toml_edit::Table,
        pod: &Option<ipnet::IpNet>,
        svc: &Option<ipnet::IpNet>,
        endpoint: &Option<Endpoint>,
        lb: &Option<LoadBalancer>,
    ) {
        let nodes_tbl = root.get("nodes").and_then(as_table_like);
        let addr_span = |name: &str| -> Range<usize> {
            nodes_tbl
                .as_ref()
                .and_then(|t| t.get(name))
                .and_then(as_table_like)
                .map(|nt| value_span(nt.get("address")))
                .unwrap_or(0..0)
        };
        let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
        if let Some(lb) = lb {
            seen.insert(lb.address, lb.name.as_str());
        }
        for n in nodes {
            if let Some(other) = seen.get(&n.address) {
                let msg = format!(
                    "address {} of node `{}` is already used by `{other}`",
                    n.address, n.name
                );
                self.error(
                    addr_span(n.name.as_str()),
                    msg,
                    Some("every node needs its own address".into()),
                );
            } else {
                seen.insert(n.address, n.name.as_str());
            }
            for (cidr, which) in [(pod, "pod_cidr"), (svc, "service_cidr")] {
                if let Some(c) = cidr {
                    if c.contains(&n.address) {
                        self.error(
                            addr_span(n.name.as_str()),
                            format!(
                                "address {} of node `{}` lies inside {which} {c}",
                                n.address, n.name
                            ),
                            Some(format!(
                                "node addresses must be outside the cluster's {which}"
                            )),
                        );
                    }
                }
            }
        }
        if let (Some(e), Some(lb)) = (endpoint, lb) {
            if let Some(ip) = e.ip() {
                if ip != lb.address && nodes.iter().all(|n| n.address != ip) {
                    let span = root
                        .get("cluster")
                        .and_then(as_table_like)
                        .map(|t| value_span(t.get("endpoint")))
                        .unwrap_or(0..0);
                    self.error(
                        span,
                        format!(
                            "endpoint {e} is not the load balancer's address {}",
                            lb.address
                        ),
                        Some(format!(
                            "point the endpoint at the load balancer, e.g. \"{}:{}\"",
                            lb.address, e.port
                        )),
                    );
                }
            }
        }
        let cps: Vec<&Node> = nodes
            .iter()
            .filter(|n| n.is_control_plane() && n.is_present())
            .collect();
        if incomplete_nodes {
            // Counting control planes now would report the failed node's error again.
        } else if !nodes.is_empty() && cps.is_empty() {
            self.error_at_start(
                "no control-plane node: a cluster needs at least one".into(),
                Some(
                    "set role = \"control-plane\" on one node (or three, for high availability)"
                        .into(),
                ),
            );
        } else if cps.len().is_multiple_of(2)
            && !cps.is_empty()
            // Retiring a control plane (a dead Pi, say) passes through an even
            // count until its replacement joins: allowed, as the planner
            // refuses any removal that would cost etcd its quorum.
            && !nodes
                .iter()
                .any(|n| n.is_control_plane() && !n.is_present())
        {
            let span = nodes_tbl
                .as_ref()
                .and_then(|t| t.key_span(cps[cps.len() - 1].name.as_str()))
                .unwrap_or(0..0);
            self.error(
                span,
                format!(
                    "{} control planes ({}): etcd needs an odd number",
                    cps.len(),
                    cps.iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(format!(
                    "{n} members tolerate as many failures as {m}; use {m} or {p} control planes",
                    n = cps.len(),
                    m = cps.len() - 1,
                    p = cps.len() + 1
                )),
            );
        }
        // A group that is also a node name would make `gt exec TARGET` ambiguous.
        let names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        for n in nodes {
            for g in &n.groups[2..] {
                if names.contains(g.as_str()) {
                    let span = nodes_tbl
                        .as_ref()
                        .and_then(|t| t.get(n.name.as_str()))
                        .and_then(as_table_like)
                        .map(|nt| value_span(nt.get("groups")))
                        .unwrap_or(0..0);
                    self.error(
                        span,
                        format!("group `{g}` of node `{}` has the name of a node", n.name),
                        Some("rename the group: `gt exec` targets must be unambiguous".into()),
                    );
                }
            }
        }
    }

    // --- typed getters --------------------------------------------------

    fn type_error(&mut self, item: &Item, what: &str, expected: &str) {
        self.error(
            value_span(Some(item)),
            format!("`{what}` must be {expected}, not {}", type_name(item)),
            None,
        );
    }

    fn opt_str(&mut self, t: &dyn TableLike, key: &str, _what: &str) -> Option<String> {
        let item = t.get(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.type_error(item, key, "a string");
                None
            }
        }
    }

    fn opt_bool(&mut self, t: &dyn TableLike, key: &str, _what: &str) -> Option<bool> {
        let item = t.get(key)?;
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.type_error(item, key, "true or false");
                None
            }
        }
    }

    fn req_str(&mut self, t: &dyn TableLike, key: &str, what: &str) -> Option<String> {
        if t.get(key).is_none() {
            let span = t.span().unwrap_or(0..0);
            self.error(
                span.start..span.start,
                format!("missing `{key}` in {what}"),
                Some(format!("add {key} = ... to {what}")),
            );
            return None;
        }
        self.opt_str(t, key, what)
    }

    fn opt_parsed<T>(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.opt_str(t, key, what)?;
        match parse(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = value_span(t.get(key));
                self.error(span, format!("{key} in {what}: {e}"), None);
                None
            }
        }
    }

    fn req_parsed<T>(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if t.get(key).is_none() {
            // Reports the missing key.
            return self.req_str(t, key, what).and(None);
        }
        self.opt_parsed(t, key, what, parse)
    }

    fn str_array(&mut self, item: &Item, what: &str) -> Vec<(String, Range<usize>)> {
        let Some(arr) = item.as_array() else {
            self.type_error(item, what, "an array of strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in arr.iter() {
            let span = v.span().unwrap_or(0..0);
            match v.as_str() {
                Some(s) => out.push((s.to_string(), span)),
                None => self.error(
                    span,
                    format!("`{what}` must contain only strings, not {}", v.type_name()),
                    None,
                ),
            }
        }
        out
    }
}

/// Tables and inline tables alike.
trait TableLike {
    fn get(&self, key: &str) -> Option<&Item>;
    fn span(&self) -> Option<Range<usize>>;
    fn key_span(&self, key: &str) -> Option<Range<usize>>;
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)>;
    /// (key, key span, value) in file order.
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)>;
}

impl TableLike for &toml_edit::Table {
    fn get(&self, key: &str) -> Option<&Item> {
        toml_edit::Table::get(self, key)
    }
    fn span(&self) -> Option<Range<usize>> {
        toml_edit::Table::span(self)
    }
    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.key(key).and_then(|k| k.span())
    }
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)> {
        self.iter()
            .map(|(k, _)| (k.to_string(), self.key_span(k)))
            .collect()
    }
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)> {
        let mut v: Vec<_> = self
            .iter()
            .map(|(k, i)| (k.to_string(), self.key_span(k), i))
            .collect();
        v.sort_by_key(|(_, span, item)| item_pos(span, item));
        v
    }
}

/// Position of a table in the file: dotted/implicit tables have no span of their own.
fn item_pos(key_span: &Option<Range<usize>>, item: &Item) -> usize {
    item.as_table()
        .and_then(|t| t.span())
        .map(|s| s.start)
        .or_else(|| key_span.as_ref().map(|s| s.start))
        .unwrap_or(usize::MAX)
}

/// An inline table with its values wrapped as Items, so both kinds read alike.
struct InlineTableView {
    span: Option<Range<usize>>,
    items: Vec<(String, Option<Range<usize>>, Item)>,
}

impl TableLike for InlineTableView {
    fn get(&self, key: &str) -> Option<&Item> {
        self.items
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, i)| i)
    }
    fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }
    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.items
            .iter()
            .find(|(k, _, _)| k == key)
            .and_then(|(_, s, _)| s.clone())
    }
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)> {
        self.items
            .iter()
            .map(|(k, s, _)| (k.clone(), s.clone()))
            .collect()
    }
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)> {
        self.items
            .iter()
            .map(|(k, s, i)| (k.clone(), s.clone(), i))
            .collect()
    }
}

/// A table or an inline table, read alike.
enum AnyTable<'a> {
    Table(&'a toml_edit::Table),
    Inline(InlineTableView),
}

impl TableLike for AnyTable<'_> {
    fn get(&self, key: &str) -> Option<&Item> {
        match self {
            AnyTable::Table(t) => t.get(key),
            AnyTable::Inline(v) => v.get(key),
        }
    }
    fn span(&self) -> Option<Range<usize>> {
        match self {
            AnyTable::Table(t) => TableLike::span(t),
            AnyTable::Inline(v) => v.span(),
        }
    }
    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        match self {
            AnyTable::Table(t) => t.key_span(key),
            AnyTable::Inline(v) => v.key_span(key),
        }
    }
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)> {
        match self {
            AnyTable::Table(t) => t.keys_with_spans(),
            AnyTable::Inline(v) => v.keys_with_spans(),
        }
    }
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)> {
        match self {
            AnyTable::Table(t) => t.entries(),
            AnyTable::Inline(v) => v.entries(),
        }
    }
}

fn as_table_like(item: &Item) -> Option<AnyTable<'_>> {
    if let Some(t) = item.as_table() {
        return Some(AnyTable::Table(t));
    }
    let it = item.as_inline_table()?;
    Some(AnyTable::Inline(InlineTableView {
        span: it.span(),
        items: it
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    it.key(k).and_then(|key| key.span()),
                    Item::Value(v.clone()),
                )
            })
            .collect(),
    }))
}

fn value_span(item: Option<&Item>) -> Range<usize> {
    item.and_then(|i| i.span()).unwrap_or(0..0)
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => match v.type_name() {
            "string" => "a string",
            "integer" => "an integer",
            "float" => "a float",
            "boolean" => "a boolean",
            "datetime" => "a datetime",
            "array" => "an array",
            "inline table" => "an inline table",
            other => other,
        },
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

/// The closest allowed key, if it is close enough to be a typo.
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (strsim::damerau_levenshtein(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, a)| (*d, *a))
        .map(|(_, a)| a)
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("`{s}` is not an IP address; write e.g. \"10.4.0.11\""))
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let net: ipnet::IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not a CIDR; write e.g. \"192.168.0.0/16\""))?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    Arch::parse(s).ok_or_else(|| {
        format!(
            "arch `{s}` is not valid; write one of {}",
            Arch::ALL.map(Arch::as_str).join(", ")
        )
    })
}

fn parse_conn(s: &str) -> Result<ConnKind, String> {
    match s {
        "ssh" => Ok(ConnKind::Ssh),
        "local" => Ok(ConnKind::Local),
        _ => Err(format!(
            "connection `{s}` is not valid; write \"ssh\" or \"local\""
        )),
    }
}
