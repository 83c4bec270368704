//! Each node of the file beside what was observed of it: its host's facts
//! and its Node object, found once per plan. The diff and the upgrade
//! both read a node this way; looking each up again wherever one is needed
//! cost most of a large plan's time (a lookup by name walks a tree of every
//! node's name, and at thousands of nodes that tree is out of the cache).
//!
//! They are found by walking the file's names and the facts' side by side,
//! all sorted alike, rather than by a lookup per node: one pass over each,
//! in the order they lie in memory, so that the plan's cost per node stays
//! the same from hundreds of nodes to thousands.

use super::diff::Cx;
use crate::facts::{HostFacts, NodeFacts, Observed};
use crate::spec::{Node, Spec};
use std::collections::BTreeSet;
use std::iter::Peekable;

/// One node of the file and what was observed of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen<'a> {
    pub node: &'a Node,
    /// Its host's facts; `None` when it was not observed.
    pub host: Option<&'a HostFacts>,
    /// Its Node object; `None` when the cluster has none by its name.
    pub obj: Option<&'a NodeFacts>,
    /// Its Node object carries a control plane's labels (told once: it
    /// costs a look into the Node's labels).
    pub obj_control_plane: bool,
    /// Named by `--replace`.
    pub replace: bool,
}

/// The file's nodes with their facts, and the cluster's control planes.
pub(super) struct Observations<'a> {
    /// Every node of the file, in file order.
    pub seen: Vec<Seen<'a>>,
    /// Every Node of the cluster with a control plane's labels, the file's
    /// or not, in name order.
    pub control_planes: Vec<&'a NodeFacts>,
}

pub(super) fn seen<'a>(
    spec: &'a Spec,
    obs: &'a Observed,
    replace: &BTreeSet<String>,
) -> Observations<'a> {
    let mut seen: Vec<Seen<'a>> = spec
        .nodes
        .iter()
        .map(|node| Seen {
            node,
            host: None,
            obj: None,
            obj_control_plane: false,
            replace: !replace.is_empty() && replace.contains(node.name.as_str()),
        })
        .collect();
    let mut control_planes = Vec::new();
    let in_file = || spec.index.iter().map(|(name, &i)| (name.as_str(), i));
    side_by_side(
        in_file(),
        obs.hosts.iter().map(|(name, h)| (name.as_str(), h)),
        |i, h| {
            if let Some(i) = i {
                seen[i].host = Some(h);
            }
        },
    );
    side_by_side(
        in_file(),
        obs.cluster.nodes.iter().map(|(name, n)| (name.as_str(), n)),
        |i, n| {
            let control_plane = n.is_control_plane();
            if control_plane {
                control_planes.push(n);
            }
            if let Some(i) = i {
                seen[i].obj = Some(n);
                seen[i].obj_control_plane = control_plane;
            }
        },
    );
    Observations {
        seen,
        control_planes,
    }
}

/// Calls `each` with every value of `b` and the value `a` holds under the
/// same name, if any (both sorted by name, without repeats).
fn side_by_side<'n, A, B>(
    a: impl Iterator<Item = (&'n str, A)>,
    b: impl Iterator<Item = (&'n str, B)>,
    mut each: impl FnMut(Option<A>, B),
) {
    let mut a: Peekable<_> = a.peekable();
    for (name, vb) in b {
        while a.next_if(|(x, _)| *x < name).is_some() {}
        each(a.next_if(|(x, _)| *x == name).map(|(_, va)| va), vb);
    }
}

impl<'a> Cx<'a> {
    /// The nodes of the file that should be in the cluster, in file order.
    pub(super) fn present(&self) -> impl Iterator<Item = Seen<'a>> + '_ {
        self.seen.iter().copied().filter(|s| s.node.is_present())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(names: &[&'static str]) -> Vec<(&'static str, &'static str)> {
        names.iter().map(|n| (*n, *n)).collect()
    }

    #[test]
    fn side_by_side_gives_each_of_b_the_value_a_holds_under_its_name() {
        let a = pairs(&["a", "b", "d", "e", "g", "i"]);
        let b = pairs(&["0", "b", "c", "d", "f", "g", "h"]);
        let mut met = vec![];
        side_by_side(a.into_iter(), b.into_iter(), |x, y| met.push((x, y)));
        assert_eq!(
            met,
            [
                (None, "0"),
                (Some("b"), "b"),
                (None, "c"),
                (Some("d"), "d"),
                (None, "f"),
                (Some("g"), "g"),
                (None, "h")
            ]
        );
        let mut none = vec![];
        side_by_side(
            pairs(&["a"]).into_iter(),
            pairs(&[]).into_iter(),
            |x: Option<&str>, y: &str| none.push((x, y)),
        );
        assert!(none.is_empty());
    }

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
        obs.cluster.nodes.insert("zz-not-in-file".into(), {
            let mut n = NodeFacts::default();
            n.labels.insert(
                "node-role.kubernetes.io/control-plane".into(),
                String::new(),
            );
            n
        });
        let first = spec.nodes[0].name.to_string();
        let o = seen(&spec, &obs, &BTreeSet::from([first.clone()]));
        assert_eq!(o.seen.len(), spec.nodes.len());
        for (s, n) in o.seen.iter().zip(&spec.nodes) {
            assert_eq!(s.node.name, n.name);
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
        assert_eq!(o.control_planes.len(), observed_control_planes + 1);
    }
}
