//! The TOML walk: cluster.toml's document, table by table, into a `Spec`.
//! Each table's reader reports its own problems and returns what it could
//! read; `checks` then compares the tables with each other.

mod backup;
mod connection;
mod host;
mod node;
mod table;
mod upgrade;

pub(super) use table::{as_table_like, value_span, AnyTable, TableLike};

use super::checks::Draft;
use super::load::Loader;
use super::*;
use crate::spec::tree::{Item, Value};
use connection::Defaults;
use std::ops::Range;

const TOP_KEYS: &[&str] = &[
    "cluster",
    "load_balancer",
    "defaults",
    "tokens",
    "preflight",
    "apply",
    "backup",
    "upgrade",
    "drain",
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
const TOKENS_KEYS: &[&str] = &["ttl"];
const APPLY_KEYS: &[&str] = &[
    "gate_timeout",
    "step_timeout",
    "drain_timeout",
    "reboot_timeout",
];
const PREFLIGHT_KEYS: &[&str] = &["ignore", "allow_ignore_all"];

const DEFAULT_CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
const DEFAULT_CNI_NAME: &str = "calico";
const DEFAULT_CNI_MANIFEST: &str =
    "https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml";

/// A manifest value before a path is resolved against cluster.toml's directory.
enum ManifestKind {
    Url(String),
    Path(String),
}

/// An `http(s)://` URL with a host, or anything without a scheme (a path).
fn manifest_kind(s: &str) -> Result<ManifestKind, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok(ManifestKind::Path(s.to_string()));
    };
    let example = format!("e.g. \"{DEFAULT_CNI_MANIFEST}\", or the path of a file on this machine");
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(format!(
            "`{s}` is a {scheme} URL, and gt fetches only http and https; write an http(s) URL, {example}"
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{s}` is not a URL gt can fetch; write one such as {example}"
        ));
    }
    Ok(ManifestKind::Url(s.to_string()))
}

/// `[cluster]` as read; a required value is `None` when it was wrong or
/// missing (and reported).
struct ClusterTable {
    name: Option<String>,
    version: Option<KubeVersion>,
    endpoint: Option<Endpoint>,
    pod_cidr: Option<ipnet::IpNet>,
    service_cidr: Option<ipnet::IpNet>,
    cri_socket: String,
    cni: Cni,
    /// `bootstrap` as written, with the place of its value.
    bootstrap: Option<(String, Range<usize>)>,
}

impl Loader<'_> {
    /// The Spec of a document (`doc`: its root table).
    pub(super) fn spec(&mut self, doc: &mut Item) -> Option<Spec> {
        let root = as_table_like(doc)?;
        self.check_keys(&root, TOP_KEYS, "the top level");
        let Some(cluster_tbl) = root.get("cluster").and_then(as_table_like) else {
            self.error_at_start(
                "missing [cluster] table".into(),
                Some("add [cluster] with name, kubernetes_version, endpoint, pod_cidr and service_cidr".into()),
            );
            return None;
        };
        let cluster = self.cluster(&cluster_tbl);
        let load_balancer = self.load_balancer(root.get("load_balancer"));
        let defaults = self.defaults(root.get("defaults"));
        let tokens = self.tokens(root.get("tokens"));
        let apply = self.apply_settings(root.get("apply"));
        let backup = self.backup_settings(root.get("backup"));
        let upgrade = self.upgrade_settings(root.get("upgrade"));
        let drain = self.drain_settings(root.get("drain"));
        let preflight = self.preflight(root.get("preflight"));
        let NodesRead {
            nodes,
            index,
            spans,
            control_planes,
            own_groups,
            incomplete: incomplete_nodes,
        } = self.nodes(nodes_item(doc), &defaults);
        let root = as_table_like(doc)?;
        self.cross_checks(&Draft {
            root: &root,
            nodes: &nodes,
            spans: &spans,
            control_planes: &control_planes,
            own_groups,
            incomplete_nodes,
            pod_cidr: cluster.pod_cidr.as_ref(),
            service_cidr: cluster.service_cidr.as_ref(),
            endpoint: cluster.endpoint.as_ref(),
            load_balancer: load_balancer.as_ref(),
        });
        let bootstrap = match &cluster.bootstrap {
            Some((name, span)) => self.named_bootstrap(name, span.clone(), &nodes),
            None => nodes
                .iter()
                .find(|n| n.is_control_plane() && n.is_present())
                .map(|n| n.name.clone()),
        };
        Some(Spec {
            index: index.into_iter().collect(),
            owned_keys: std::mem::take(&mut self.owned_keys),
            source: self.source.file.clone(),
            cluster: Cluster {
                name: cluster.name?,
                kubernetes_version: cluster.version?,
                endpoint: cluster.endpoint?,
                pod_cidr: cluster.pod_cidr?,
                service_cidr: cluster.service_cidr?,
                cri_socket: cluster.cri_socket,
                cni: cluster.cni,
                bootstrap: bootstrap?,
            },
            load_balancer,
            tokens,
            preflight,
            apply,
            backup,
            upgrade,
            drain,
            nodes,
        })
    }

    fn cluster(&mut self, t: &dyn TableLike) -> ClusterTable {
        self.check_keys(t, CLUSTER_KEYS, "[cluster]");
        let name = self.req_str(t, "name", "[cluster]");
        let version = self.req_parsed(
            t,
            "kubernetes_version",
            "[cluster]",
            KubeVersion::parse_release,
        );
        let endpoint = self.req_parsed(t, "endpoint", "[cluster]", |s| {
            let e = s.parse::<Endpoint>()?;
            match e.ip() {
                Some(ip) => unicast(ip).map(|()| e),
                None => Ok(e),
            }
        });
        let pod_cidr = self.req_parsed(t, "pod_cidr", "[cluster]", parse_cidr);
        let service_cidr = self.req_parsed(t, "service_cidr", "[cluster]", parse_service_cidr);
        let cri_socket = self
            .opt_str(t, "cri_socket")
            .unwrap_or_else(|| DEFAULT_CRI_SOCKET.into());
        let socket_path = cri_socket.strip_prefix("unix://").unwrap_or(&cri_socket);
        if !socket_path.starts_with('/') || socket_path.len() < 2 {
            self.error(
                value_span(t.get("cri_socket")),
                format!("cri_socket `{cri_socket}` is not a unix socket"),
                Some(format!(
                    "write a unix socket URL, e.g. \"{DEFAULT_CRI_SOCKET}\""
                )),
            );
        }
        let cni = self.cni(t.get("cni"));
        let bootstrap = self
            .opt_str(t, "bootstrap")
            .map(|b| (b, value_span(t.get("bootstrap"))));
        ClusterTable {
            name,
            version,
            endpoint,
            pod_cidr,
            service_cidr,
            cri_socket,
            cni,
            bootstrap,
        }
    }

    /// `[cluster.cni]`; calico's manifest when absent.
    fn cni(&mut self, item: Option<&Item>) -> Cni {
        let default = || Cni {
            name: DEFAULT_CNI_NAME.into(),
            manifest: ManifestSource::Url(DEFAULT_CNI_MANIFEST.into()),
            line: 0,
        };
        let Some(item) = item else {
            return default();
        };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "cluster.cni", "a table with name and manifest");
            return default();
        };
        self.check_keys(&t, CNI_KEYS, "[cluster.cni]");
        let line = self.source.line_of(value_span(t.get("manifest")).start);
        let manifest = self
            .req_parsed(&t, "manifest", "[cluster.cni]", manifest_kind)
            .map(|m| match m {
                ManifestKind::Url(u) => ManifestSource::Url(u),
                ManifestKind::Path(p) => ManifestSource::File(self.path(&p)),
            })
            .unwrap_or_else(|| ManifestSource::Url(DEFAULT_CNI_MANIFEST.into()));
        Cni {
            name: self
                .opt_str(&t, "name")
                .unwrap_or_else(|| DEFAULT_CNI_NAME.into()),
            manifest,
            line,
        }
    }

    fn load_balancer(&mut self, item: Option<&Item>) -> Option<LoadBalancer> {
        let item = item?;
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "load_balancer", "a table with name and address");
            return None;
        };
        self.check_keys(&t, LB_KEYS, "[load_balancer]");
        let name = self.req_str(&t, "name", "[load_balancer]");
        let address = self.req_parsed(&t, "address", "[load_balancer]", parse_ip);
        Some(LoadBalancer {
            name: name?,
            address: address?,
        })
    }

    fn tokens(&mut self, item: Option<&Item>) -> Tokens {
        let mut ttl = None;
        self.durations(item, "tokens", TOKENS_KEYS, |_, d| {
            TokenTtl::new(d).map(|t| ttl = Some(t)).map_err(|e| {
                format!(
                    "{e}; give the join token a short TTL from {} to {}, e.g. \"15m\"",
                    format_duration(TokenTtl::MIN),
                    format_duration(TokenTtl::MAX)
                )
            })
        });
        Tokens {
            ttl: ttl.unwrap_or(TokenTtl::DEFAULT),
        }
    }

    fn apply_settings(&mut self, item: Option<&Item>) -> ApplySettings {
        let mut apply = BTreeMap::new();
        self.durations(item, "apply", APPLY_KEYS, |key, d| {
            let (min, max) = (ApplySettings::MIN_TIMEOUT, ApplySettings::MAX_TIMEOUT);
            let range = format!("from {} to {}", format_duration(min), format_duration(max));
            if d.is_zero() {
                Err(format!("0 would give up at once; use a timeout {range}, e.g. \"5m\""))
            } else if d < min {
                Err(format!(
                    "{} is shorter than a second (kubectl would read it as 0: no timeout at all); use a timeout {range}, e.g. \"5m\"",
                    format_duration(d)
                ))
            } else if d > max {
                Err(format!(
                    "{} is longer than gt waits for anything; use a timeout {range}",
                    format_duration(d)
                ))
            } else {
                apply.insert(key.to_string(), d);
                Ok(())
            }
        });
        ApplySettings {
            gate_timeout: apply
                .remove("gate_timeout")
                .unwrap_or(ApplySettings::DEFAULT_GATE_TIMEOUT),
            step_timeout: apply
                .remove("step_timeout")
                .unwrap_or(ApplySettings::DEFAULT_STEP_TIMEOUT),
            drain_timeout: apply
                .remove("drain_timeout")
                .unwrap_or(ApplySettings::DEFAULT_DRAIN_TIMEOUT),
            reboot_timeout: apply
                .remove("reboot_timeout")
                .unwrap_or(ApplySettings::DEFAULT_REBOOT_TIMEOUT),
        }
    }

    /// Every `[nodes.NAME]` that loaded, and what the checks and the
    /// spec's index want of them, taken while each node is at hand. Each
    /// node's table is emptied once read: freed while it is in the cache,
    /// not by a walk over every node's table at the end.
    fn nodes(&mut self, item: Option<&mut Item>, defaults: &Defaults) -> NodesRead {
        let mut read = NodesRead::default();
        let Some(item) = item else {
            self.error_at_start(
                "no nodes: add at least one [nodes.NAME] table".into(),
                Some(
                    "e.g. [nodes.bettley] role = \"control-plane\" address = \"10.4.0.11\"".into(),
                ),
            );
            return read;
        };
        if as_table_like(item).is_none() {
            self.type_error(item, "nodes", "tables [nodes.NAME]");
            return read;
        }
        // In the order `TableLike::entries` reads them: by place for a
        // table, as written for an inline one.
        let inline = matches!(item.value, Value::InlineTable(_));
        let (Value::Table(table) | Value::InlineTable(table)) = &mut item.value else {
            return read;
        };
        let order = table::file_order(table, inline);
        // Grown once: a Node is large, and thousands copied again at
        // each doubling are out of the cache.
        read.nodes.reserve_exact(order.len());
        read.index.reserve_exact(order.len());
        read.spans.reserve_exact(order.len());
        // Searched only to explain a wrong name.
        let names: Vec<&str> = order.iter().map(|&i| table.entries[i].key).collect();
        for &i in &order {
            let entry = &mut table.entries[i];
            let before = self.error_count();
            let loaded = self.node(
                entry.key,
                entry.key_span.range(),
                &entry.item,
                defaults,
                &names,
            );
            let own = as_table_like(&entry.item);
            if let Some(n) = loaded {
                let span_of = |key| value_span(own.as_ref().and_then(|t| t.get(key)));
                read.spans.push(NodeSpans {
                    address: span_of("address"),
                    groups: span_of("groups"),
                });
                let at = read.nodes.len();
                read.index.push((n.name.clone(), at));
                if n.is_control_plane() && n.is_present() {
                    read.control_planes.push(at);
                }
                // The first two groups of each node are the implicit ones.
                read.own_groups |= n.groups.len() > 2;
                read.nodes.push(n);
            } else if self.error_count() > before {
                read.incomplete = true;
            }
            if let Value::Table(t) | Value::InlineTable(t) = &mut entry.item.value {
                *t = Default::default();
            }
        }
        read
    }

    /// A table whose keys are all durations (`[tokens]`, `[apply]`); `accept`
    /// takes each duration that parsed, or says why not as "what; fix".
    fn durations(
        &mut self,
        item: Option<&Item>,
        table: &str,
        keys: &[&str],
        mut accept: impl FnMut(&str, Duration) -> Result<(), String>,
    ) {
        let Some(item) = item else {
            return;
        };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, table, "a table");
            return;
        };
        let what = format!("[{table}]");
        self.check_keys(&t, keys, &what);
        for &key in keys {
            self.opt_parsed(&t, key, &what, |s| {
                let d = parse_go_duration(s).map_err(|e| {
                    format!("{e}; write a Go duration, e.g. \"15m\", \"1h\" or \"1h30m\"")
                })?;
                accept(key, d)
            });
        }
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
        let allow_all = self.opt_bool(&t, "allow_ignore_all").unwrap_or(false);
        let mut all_span = None;
        if let Some(item) = t.get("ignore") {
            for (name, span) in self.str_array(item, "preflight.ignore") {
                let lower = name.to_ascii_lowercase();
                if lower.is_empty()
                    || lower.contains(',')
                    || lower.contains(|c: char| c.is_whitespace() || c.is_control())
                {
                    self.error(
                        span,
                        format!("`{}` is not a preflight check name", name.escape_debug()),
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
}

/// A host's own address: not "any" (0.0.0.0, ::), not broadcast, not
/// multicast, none of which a host can be reached at.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let ip = s
        .parse::<IpAddr>()
        .map_err(|_| format!("`{s}` is not an IP address; write e.g. \"10.4.0.11\""))?;
    unicast(ip).map(|()| ip)
}

fn unicast(ip: IpAddr) -> Result<(), String> {
    let canonical = ip.to_canonical();
    let kind = if canonical.is_unspecified() {
        Some("the unspecified address (\"any\")")
    } else if canonical.is_multicast() {
        Some("a multicast address")
    } else if matches!(canonical, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("the broadcast address")
    } else {
        None
    };
    match kind {
        Some(k) => Err(format!(
            "{ip} is {k}, which no single host answers on; write the host's own unicast address, e.g. \"10.4.0.11\""
        )),
        None => Ok(()),
    }
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

/// kube-apiserver's own bounds on `--service-cluster-ip-range`: at most
/// 2^20 addresses (a /12 for IPv4, a /108 for IPv6), and room for the
/// `kubernetes` Service at the range's first address after the network.
fn parse_service_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let net = parse_cidr(s)?;
    let (shortest, longest) = match net {
        ipnet::IpNet::V4(_) => (12, 30),
        ipnet::IpNet::V6(_) => (108, 126),
    };
    if net.prefix_len() < shortest {
        Err(format!(
            "`{s}` is larger than kube-apiserver accepts for services (at most a /{shortest}); choose a smaller range, e.g. \"172.16.0.0/20\""
        ))
    } else if net.prefix_len() > longest {
        Err(format!(
            "`{s}` has no room for the cluster's Services (at least a /{longest}); choose a larger range, e.g. \"172.16.0.0/20\""
        ))
    } else {
        Ok(net)
    }
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    Arch::parse(s).ok_or_else(|| {
        format!(
            "arch `{s}` is not valid; write one of {}",
            Arch::ALL.map(Arch::as_str).join(", ")
        )
    })
}

/// `[nodes]` as the walk read it. A pass of its own over thousands of
/// nodes after the walk found each node out of the cache again: what later
/// steps want of every node is taken while the walk has it at hand.
#[derive(Default)]
struct NodesRead {
    /// Every `[nodes.NAME]` that loaded, in file order.
    nodes: Vec<Node>,
    /// Each one's name and place in `nodes` (the spec's index).
    index: Vec<(NodeName, usize)>,
    /// The places in the file the cross-checks may name, beside `nodes`.
    spans: Vec<NodeSpans>,
    /// The places of the control planes that stay, file order.
    control_planes: Vec<usize>,
    /// Some node names groups of its own.
    own_groups: bool,
    /// A node failed to load (then counts over the nodes would mislead).
    incomplete: bool,
}

/// Where a node's values that the cross-checks may name are written.
pub(super) struct NodeSpans {
    pub(super) address: Range<usize>,
    pub(super) groups: Range<usize>,
}

/// `[nodes]`, to be walked (and emptied) node by node.
fn nodes_item<'a, 's>(doc: &'a mut Item<'s>) -> Option<&'a mut Item<'s>> {
    let (Value::Table(root) | Value::InlineTable(root)) = &mut doc.value else {
        return None;
    };
    root.entries
        .iter_mut()
        .find(|e| e.key == "nodes")
        .map(|e| &mut e.item)
}
