//! Each node of the file beside what was observed of it: its host's facts
//! and its Node object, looked up once per plan. The diff and the upgrade
//! both read a node this way; looking each up again wherever one is needed
//! cost most of a large plan's time (a lookup by name walks a tree of every
//! node's name, and at thousands of nodes that tree is out of the cache).

use super::diff::Cx;
use crate::facts::{HostFacts, NodeFacts, Observed};
use crate::spec::{Node, Spec};
use std::collections::BTreeSet;

/// One node of the file and what was observed of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen<'a> {
    pub node: &'a Node,
    /// Its host's facts; `None` when it was not observed.
    pub host: Option<&'a HostFacts>,
    /// Its Node object; `None` when the cluster has none by its name.
    pub obj: Option<&'a NodeFacts>,
    /// Named by `--replace`.
    pub replace: bool,
}

/// Every node of the file, in file order.
pub(super) fn seen<'a>(
    spec: &'a Spec,
    obs: &'a Observed,
    replace: &BTreeSet<String>,
) -> Vec<Seen<'a>> {
    spec.nodes
        .iter()
        .map(|node| {
            let name = node.name.as_str();
            Seen {
                node,
                host: obs.hosts.get(name),
                obj: obs.cluster.nodes.get(name),
                replace: !replace.is_empty() && replace.contains(name),
            }
        })
        .collect()
}

impl<'a> Cx<'a> {
    /// The nodes of the file that should be in the cluster, in file order.
    pub(super) fn present(&self) -> impl Iterator<Item = Seen<'a>> + '_ {
        self.seen.iter().copied().filter(|s| s.node.is_present())
    }
}
