//! Each node of the file beside what was observed of it: its host's facts
//! and its Node object, found once per plan. The diff and the upgrade
//! both read a node this way; looking each up again wherever one is needed
//! cost most of a large plan's time (a lookup by name walks a tree of every
//! node's name, and at thousands of nodes that tree is out of the cache).
//!
//! They are found by walking the file's names and the facts' side by side,
//! all sorted alike, rather than by a lookup per node: one pass over each,
//! in the order they lie in memory, so that the plan's cost per node stays
//! the same from hundreds of nodes to thousands. The walk compares names
//! only: whether a Node of the file is a control plane is asked when the
//! diff visits that node (`Seen::look`), which reads its labels anyway;
//! asked in the walk, the labels were out of the cache again by then.

use crate::facts::{HostFacts, NodeFacts, Observed};
use crate::spec::{Node, Spec};
use std::collections::BTreeSet;

/// One node of the file and what was observed of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen<'a> {
    pub node: &'a Node,
    /// Its place in the file (`spec.nodes`): what the plan indexes a
    /// node's own things by, rather than by name.
    pub at: usize,
    /// Its host's facts; `None` when it was not observed.
    pub host: Option<&'a HostFacts>,
    /// Its Node object; `None` when the cluster has none by its name.
    pub obj: Option<&'a NodeFacts>,
    /// Its Node object carries a control plane's labels (told once, by
    /// `look`: it costs a look into the Node's labels).
    pub obj_control_plane: bool,
    /// Named by `--replace`.
    pub replace: bool,
}

impl Seen<'_> {
    /// Tells `obj_control_plane`; the diff asks it first thing when it
    /// visits the node.
    pub fn look(&mut self) {
        self.obj_control_plane = self.obj.is_some_and(NodeFacts::is_control_plane);
    }
}

/// The file's nodes with their facts, and the cluster's Nodes in name order.
pub(super) struct Observations<'a> {
    /// Every node of the file, in file order (not yet looked at).
    pub seen: Vec<Seen<'a>>,
    /// The cluster's Nodes in name order: the file's by their place in
    /// `seen`, the others only when they carry a control plane's labels.
    by_name: Vec<Named<'a>>,
}

enum Named<'a> {
    InFile(usize),
    ControlPlane(&'a NodeFacts),
}

impl<'a> Observations<'a> {
    /// Every Node of the cluster with a control plane's labels, the file's
    /// or not, in name order; `seen`: the file's nodes, each looked at.
    pub fn control_planes(&self, seen: &[Seen<'a>]) -> Vec<&'a NodeFacts> {
        self.by_name
            .iter()
            .filter_map(|n| match *n {
                Named::InFile(i) => seen[i].obj.filter(|_| seen[i].obj_control_plane),
                Named::ControlPlane(n) => Some(n),
            })
            .collect()
    }
}

pub(super) fn seen<'a>(
    spec: &'a Spec,
    obs: &'a Observed,
    replace: &BTreeSet<String>,
) -> Observations<'a> {
    let mut seen: Vec<Seen<'a>> = spec
        .nodes
        .iter()
        .enumerate()
        .map(|(at, node)| Seen {
            node,
            at,
            host: None,
            obj: None,
            obj_control_plane: false,
            replace: !replace.is_empty() && replace.contains(node.name.as_str()),
        })
        .collect();
    let mut by_name = Vec::with_capacity(seen.len());
    let other = |n: &'a NodeFacts| n.is_control_plane().then_some(Named::ControlPlane(n));
    let mut hosts = obs.hosts.iter().peekable();
    let mut objs = obs.cluster.nodes.iter().peekable();
    for (name, &i) in &spec.index {
        let name = name.as_str();
        while let Some((_, n)) = objs.next_if(|(x, _)| x.as_str() < name) {
            by_name.extend(other(n));
        }
        if let Some((_, n)) = objs.next_if(|(x, _)| x.as_str() == name) {
            seen[i].obj = Some(n);
            by_name.push(Named::InFile(i));
        }
        while hosts.next_if(|(x, _)| x.as_str() < name).is_some() {}
        seen[i].host = hosts.next_if(|(x, _)| x.as_str() == name).map(|(_, h)| h);
    }
    by_name.extend(objs.filter_map(|(_, n)| other(n)));
    Observations { seen, by_name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_of_the_file_meets_its_own_facts() {
        let spec = crate::plan::tests::goldentooth();
        let mut obs = Observed::empty();
        // Facts in another order than the file's, some missing, one extra.
        for n in spec.nodes.iter().rev().skip(1) {
            obs.hosts.insert(
                n.name.to_string(),
                HostFacts {
                    arch: Some(format!("arch-of-{}", n.name)),
                    ..Default::default()
                },
            );
            let mut facts = NodeFacts {
                kubelet_version: Some(format!("v-of-{}", n.name)),
                ..Default::default()
            };
            if n.is_control_plane() {
                facts.labels.insert(
                    "node-role.kubernetes.io/control-plane".into(),
                    String::new(),
                );
            }
            obs.cluster.nodes.insert(n.name.to_string(), facts);
        }
        // Nodes not in the file, before, among and after the file's names.
        for name in ["0-not-in-file", "m-not-in-file", "zz-not-in-file"] {
            let mut n = NodeFacts::default();
            n.labels.insert(
                "node-role.kubernetes.io/control-plane".into(),
                String::new(),
            );
            obs.cluster.nodes.insert(name.into(), n);
            obs.hosts.insert(name.into(), HostFacts::default());
        }
        let first = spec.nodes[0].name.to_string();
        let mut o = seen(&spec, &obs, &BTreeSet::from([first.clone()]));
        assert_eq!(o.seen.len(), spec.nodes.len());
        assert!(o.seen.iter().all(|s| !s.obj_control_plane), "told by look");
        let mut looked = o.seen.clone();
        looked.iter_mut().for_each(Seen::look);
        o.seen = looked;
        for (s, n) in o.seen.iter().zip(&spec.nodes) {
            assert_eq!(s.node.name, n.name);
            assert!(std::ptr::eq(s.node, &spec.nodes[s.at]));
            let observed = n.name != spec.nodes.last().unwrap().name;
            assert_eq!(
                s.host.and_then(|h| h.arch.clone()),
                observed.then(|| format!("arch-of-{}", n.name))
            );
            assert_eq!(
                s.obj.and_then(|o| o.kubelet_version.clone()),
                observed.then(|| format!("v-of-{}", n.name))
            );
            assert_eq!(s.obj_control_plane, observed && n.is_control_plane());
            assert_eq!(s.replace, n.name.as_str() == first);
        }
        let observed_control_planes = spec
            .nodes
            .iter()
            .rev()
            .skip(1)
            .filter(|n| n.is_control_plane())
            .count();
        let control_planes = o.control_planes(&o.seen);
        assert_eq!(control_planes.len(), observed_control_planes + 3);
        // In name order, the file's among the others.
        let names: Vec<&str> = control_planes
            .iter()
            .map(|n| {
                let at = |m: &NodeFacts| std::ptr::eq(m, *n);
                obs.cluster
                    .nodes
                    .iter()
                    .find(|(_, m)| at(m))
                    .unwrap()
                    .0
                    .as_str()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names.first(), Some(&"0-not-in-file"));
        assert_eq!(names.last(), Some(&"zz-not-in-file"));
        assert!(names.contains(&"m-not-in-file"));
    }
}
