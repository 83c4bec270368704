//! Cross-checks: what one table says against another (node addresses
//! against each other, the CIDRs and the load balancer; the endpoint; the
//! control-plane count etcd needs; group names against node names; the
//! bootstrap node). They run once every table has been read.

use super::load::Loader;
use super::suggest::did_you_mean;
use super::walk::{as_table_like, value_span, AnyTable, TableLike};
use super::{Endpoint, LoadBalancer, Node, NodeName};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;

/// What the walk read, for the checks between its parts.
pub(super) struct Draft<'a> {
    pub(super) root: &'a AnyTable<'a, 'a>,
    pub(super) nodes: &'a [Node],
    /// Where each of `nodes` wrote the values the checks may name.
    pub(super) spans: &'a [super::walk::NodeSpans],
    /// The places in `nodes` of the control planes that stay, file order.
    pub(super) control_planes: &'a [usize],
    /// Some node names groups of its own, beyond the two implicit ones.
    pub(super) own_groups: bool,
    /// A node failed to load (and was reported): counting nodes would
    /// report its error again in other words.
    pub(super) incomplete_nodes: bool,
    pub(super) pod_cidr: Option<&'a ipnet::IpNet>,
    pub(super) service_cidr: Option<&'a ipnet::IpNet>,
    pub(super) endpoint: Option<&'a Endpoint>,
    pub(super) load_balancer: Option<&'a LoadBalancer>,
}

impl Draft<'_> {
    /// The place of a key's value in `[cluster]`.
    fn cluster_value_span(&self, key: &str) -> Range<usize> {
        self.root
            .get("cluster")
            .and_then(as_table_like)
            .map(|t| value_span(t.get(key)))
            .unwrap_or(0..0)
    }

    /// The place of `[load_balancer] address`'s value.
    fn load_balancer_address_span(&self) -> Range<usize> {
        self.root
            .get("load_balancer")
            .and_then(as_table_like)
            .map(|t| value_span(t.get("address")))
            .unwrap_or(0..0)
    }

    /// The place of `[nodes.NAME]`'s name.
    fn node_key_span(&self, node: &str) -> Range<usize> {
        self.root
            .get("nodes")
            .and_then(as_table_like)
            .and_then(|t| t.key_span(node))
            .unwrap_or(0..0)
    }

    /// Control planes that stay in the cluster, in file order.
    fn control_planes(&self) -> Vec<&Node> {
        self.control_planes
            .iter()
            .map(|&i| &self.nodes[i])
            .collect()
    }
}

impl Loader<'_> {
    pub(super) fn cross_checks(&mut self, d: &Draft) {
        self.cidrs_disjoint(d);
        self.addresses(d);
        self.endpoint_is_the_load_balancer(d);
        self.control_plane_count(d);
        self.groups_are_not_node_names(d);
    }

    fn cidrs_disjoint(&mut self, d: &Draft) {
        let (Some(p), Some(s)) = (d.pod_cidr, d.service_cidr) else {
            return;
        };
        let family = |n: &ipnet::IpNet| match n {
            ipnet::IpNet::V4(_) => "IPv4",
            ipnet::IpNet::V6(_) => "IPv6",
        };
        if family(p) != family(s) {
            self.error(
                d.cluster_value_span("service_cidr"),
                format!(
                    "pod_cidr {p} is {} but service_cidr {s} is {}",
                    family(p),
                    family(s)
                ),
                Some("give both CIDRs of one family (kubeadm's dual-stack needs both families in each, which gt does not support)".into()),
            );
            return;
        }
        if p.contains(&s.network()) || s.contains(&p.network()) {
            self.error(
                d.cluster_value_span("service_cidr"),
                format!("pod_cidr {p} and service_cidr {s} overlap"),
                Some("pod and service addresses must not overlap: choose disjoint ranges, e.g. 192.168.0.0/16 and 172.16.0.0/20".into()),
            );
        }
    }

    /// Every node has its own address, outside the cluster's CIDRs.
    fn addresses(&mut self, d: &Draft) {
        let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
        if let Some(lb) = d.load_balancer {
            seen.insert(lb.address.to_canonical(), lb.name.as_str());
            for (cidr, which) in [(d.pod_cidr, "pod_cidr"), (d.service_cidr, "service_cidr")] {
                if let Some(c) = cidr.filter(|c| c.contains(&lb.address.to_canonical())) {
                    self.error(
                        d.load_balancer_address_span(),
                        format!(
                            "address {} of the load balancer `{}` lies inside {which} {c}",
                            lb.address, lb.name
                        ),
                        Some(format!(
                            "the load balancer's address must be outside the cluster's {which}"
                        )),
                    );
                }
            }
        }
        for (n, spans) in d.nodes.iter().zip(d.spans) {
            let span = || spans.address.clone();
            // ::ffff:10.4.0.11 is 10.4.0.11 on the wire.
            if let Some(other) = seen.get(&n.address.to_canonical()) {
                let same = if n.address.to_canonical() != n.address {
                    format!(" (the IPv4 address {})", n.address.to_canonical())
                } else {
                    String::new()
                };
                self.error(
                    span(),
                    format!(
                        "address {}{same} of node `{}` is already used by `{other}`",
                        n.address, n.name
                    ),
                    Some("every node needs its own address".into()),
                );
            } else {
                seen.insert(n.address.to_canonical(), n.name.as_str());
            }
            for (cidr, which) in [(d.pod_cidr, "pod_cidr"), (d.service_cidr, "service_cidr")] {
                if let Some(c) = cidr.filter(|c| c.contains(&n.address.to_canonical())) {
                    self.error(
                        span(),
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

    /// With a load balancer, the endpoint goes through it (or straight to a
    /// node): anything else is an address nobody answers on.
    fn endpoint_is_the_load_balancer(&mut self, d: &Draft) {
        let (Some(e), Some(lb)) = (d.endpoint, d.load_balancer) else {
            return;
        };
        let Some(ip) = e.ip() else { return };
        let ip = ip.to_canonical();
        if ip != lb.address.to_canonical() && d.nodes.iter().all(|n| n.address.to_canonical() != ip)
        {
            self.error(
                d.cluster_value_span("endpoint"),
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

    /// At least one control plane, and an odd number: etcd's quorum.
    fn control_plane_count(&mut self, d: &Draft) {
        let cps = d.control_planes();
        if d.incomplete_nodes {
            // Counting control planes now would report the failed node's error again.
        } else if !d.nodes.is_empty() && cps.is_empty() {
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
            && !d
                .nodes
                .iter()
                .any(|n| n.is_control_plane() && !n.is_present())
        {
            self.error(
                d.node_key_span(cps[cps.len() - 1].name.as_str()),
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
    }

    /// A group that is also a node name would make `gt exec TARGET` ambiguous.
    fn groups_are_not_node_names(&mut self, d: &Draft) {
        if !d.own_groups {
            return;
        }
        let names: BTreeSet<&str> = d.nodes.iter().map(|n| n.name.as_str()).collect();
        for (n, spans) in d.nodes.iter().zip(d.spans) {
            // The first two are the implicit groups.
            for g in &n.groups[2..] {
                if names.contains(g.as_ref()) {
                    self.error(
                        spans.groups.clone(),
                        format!("group `{g}` of node `{}` has the name of a node", n.name),
                        Some("rename the group: `gt exec` targets must be unambiguous".into()),
                    );
                }
            }
        }
    }

    /// `cluster.bootstrap`: a control plane of this file that stays.
    pub(super) fn named_bootstrap(
        &mut self,
        name: &str,
        span: Range<usize>,
        nodes: &[Node],
    ) -> Option<NodeName> {
        let control_planes = || {
            nodes
                .iter()
                .filter(|n| n.is_control_plane() && n.is_present())
                .map(|n| n.name.as_str())
        };
        match nodes.iter().find(|n| n.name.as_str() == name) {
            None => {
                let help = did_you_mean(name, control_planes())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        let names: Vec<&str> = control_planes().collect();
                        format!("name one of the control planes: {}", names.join(", "))
                    });
                self.error(
                    span,
                    format!("bootstrap node `{name}` is not a node in this file"),
                    Some(help),
                );
                None
            }
            Some(n) if !n.is_control_plane() => {
                self.error(
                    span,
                    format!(
                        "bootstrap node `{name}` is a worker; kubeadm init runs on a control plane"
                    ),
                    Some(format!(
                        "name a control plane ({})",
                        control_planes().collect::<Vec<_>>().join(", ")
                    )),
                );
                None
            }
            Some(n) if !n.is_present() => {
                self.error(
                    span,
                    format!("bootstrap node `{name}` has state = \"absent\""),
                    Some("name a control plane that stays in the cluster".into()),
                );
                None
            }
            Some(n) => Some(n.name.clone()),
        }
    }
}
