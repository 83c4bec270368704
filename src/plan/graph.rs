//! The DAG of steps (petgraph), built from the diff and validated before it
//! is returned: acyclic, every dependency known, joins behind their gate,
//! control-plane joins in series, the token revoked after every join.

use super::diff::{Diff, Removal};
use super::*;
use petgraph::algo::{has_path_connecting, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

/// A graph that breaks the invariants apply relies on: a bug in the
/// planner, caught before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("step {0} added twice")]
    AddedTwice(StepId),
    #[error("step {step} depends on unknown step {dependency}")]
    UnknownDependency { step: StepId, dependency: StepId },
    #[error("cycle through {0}")]
    Cycle(StepId),
    #[error("{0} is not behind its readiness gate")]
    ControlPlaneJoinUngated(StepId),
    #[error("{join} may run alongside {previous}: control planes join one at a time")]
    ControlPlaneJoinsInParallel { join: StepId, previous: StepId },
    #[error("worker joins may run before the control-plane join {0}")]
    WorkersBeforeControlPlane(StepId),
    #[error("{0} is not behind the readiness gate")]
    WorkerJoinUngated(StepId),
    #[error("the join token may be revoked before {0}")]
    RevokedTooEarly(StepId),
    #[error("{0} may run before the etcd backup")]
    BeforeBackup(StepId),
}

/// Steps and their dependencies; an edge `a → b` means b runs after a.
#[derive(Debug, Clone, Default)]
pub struct StepGraph {
    graph: DiGraph<Step, ()>,
    /// Hashed, not a tree: a plan of thousands of steps looks up every
    /// dependency, and a tree's search compared names all over the heap.
    /// Never iterated, so its order cannot reach the plan.
    index: std::collections::HashMap<StepId, NodeIndex>,
}

impl StepGraph {
    /// Room for `steps` steps and a few dependencies each: thousands of
    /// steps grown by doubling were copied again and again, each copy out
    /// of the cache.
    fn with_capacity(steps: usize) -> StepGraph {
        StepGraph {
            graph: DiGraph::with_capacity(steps, 2 * steps),
            index: std::collections::HashMap::with_capacity(steps),
        }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn contains(&self, id: &StepId) -> bool {
        self.index.contains_key(id)
    }

    pub fn step(&self, id: &StepId) -> Option<&Step> {
        self.index.get(id).map(|&i| &self.graph[i])
    }

    /// Steps in a deterministic topological order: among steps whose
    /// dependencies are done, insertion order (file order) breaks ties.
    pub fn ordered(&self) -> Vec<&Step> {
        let mut indegree: Vec<usize> = self
            .graph
            .node_indices()
            .map(|i| {
                self.graph
                    .neighbors_directed(i, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: std::collections::BTreeSet<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|i| indegree[i.index()] == 0)
            .collect();
        let mut out = Vec::with_capacity(self.len());
        while let Some(i) = ready.pop_first() {
            out.push(&self.graph[i]);
            for e in self.graph.edges_directed(i, Direction::Outgoing) {
                let t = e.target();
                indegree[t.index()] -= 1;
                if indegree[t.index()] == 0 {
                    ready.insert(t);
                }
            }
        }
        out
    }

    /// Ids of the steps `id` waits for, sorted as their names sort (the
    /// order plan JSON lists them in).
    pub fn dependencies(&self, id: &StepId) -> Vec<StepId> {
        let Some(&i) = self.index.get(id) else {
            return vec![];
        };
        let mut deps: Vec<StepId> = self
            .graph
            .neighbors_directed(i, Direction::Incoming)
            .map(|d| self.graph[d].id())
            .collect();
        deps.sort_by_cached_key(ToString::to_string);
        deps
    }

    /// Every edge as (from id, to id), in deterministic order, without the
    /// edges another path already implies (a transitive reduction, as
    /// `terraform graph` draws).
    pub fn edges(&self) -> Vec<(StepId, StepId)> {
        let order: BTreeMap<NodeIndex, usize> = self
            .ordered()
            .iter()
            .enumerate()
            .map(|(n, s)| (self.index[&s.id()], n))
            .collect();
        let implied = |a: NodeIndex, b: NodeIndex| {
            self.graph
                .neighbors_directed(a, Direction::Outgoing)
                .any(|c| c != b && has_path_connecting(&self.graph, c, b, None))
        };
        let mut e: Vec<(usize, usize, StepId, StepId)> = self
            .graph
            .edge_references()
            .filter(|e| !implied(e.source(), e.target()))
            .map(|e| {
                (
                    order[&e.source()],
                    order[&e.target()],
                    self.graph[e.source()].id(),
                    self.graph[e.target()].id(),
                )
            })
            .collect();
        e.sort();
        e.into_iter().map(|(_, _, a, b)| (a, b)).collect()
    }

    pub(super) fn add(&mut self, step: Step, deps: &[StepId]) -> Result<StepId, GraphError> {
        let id = step.id();
        let mut dep_ix = Vec::with_capacity(deps.len());
        for d in deps {
            let &di = self
                .index
                .get(d)
                .ok_or_else(|| GraphError::UnknownDependency {
                    step: id.clone(),
                    dependency: d.clone(),
                })?;
            dep_ix.push(di);
        }
        // A new vertex has no edges yet: dedup locally instead of asking the
        // graph (`contains_edge` is linear in the degree of gates and tokens).
        dep_ix.sort();
        dep_ix.dedup();
        // One look into the index for the new step, not one to ask and one to insert.
        let std::collections::hash_map::Entry::Vacant(entry) = self.index.entry(id.clone()) else {
            return Err(GraphError::AddedTwice(id));
        };
        let i = self.graph.add_node(step);
        entry.insert(i);
        for di in dep_ix {
            self.graph.add_edge(di, i, ());
        }
        Ok(id)
    }

    /// Every step reachable from `from` (following edges `dir`), `from` included.
    fn reachable(&self, from: &StepId, dir: Direction) -> Reachable<'_> {
        let mut visited = vec![false; self.graph.node_count()];
        if let Some(&start) = self.index.get(from) {
            let mut stack = vec![start];
            while let Some(i) = stack.pop() {
                if std::mem::replace(&mut visited[i.index()], true) {
                    continue;
                }
                stack.extend(self.graph.neighbors_directed(i, dir));
            }
        }
        Reachable {
            graph: self,
            visited,
        }
    }
}

/// The steps one sweep reached, by vertex: asking costs one index lookup,
/// and the sweep copies no step ids.
struct Reachable<'g> {
    graph: &'g StepGraph,
    visited: Vec<bool>,
}

impl Reachable<'_> {
    fn contains(&self, id: &StepId) -> bool {
        self.graph
            .index
            .get(id)
            .is_some_and(|i| self.visited[i.index()])
    }
}

/// About how many steps `build` adds for `d` (at most a few more).
fn steps_of(d: &Diff) -> usize {
    let removals = d.removals.len() + d.replacements.len();
    let joins = 2 * d.control_plane_joins.len() + d.worker_joins.len();
    let upgrades: usize = d.upgrade.rungs.iter().map(|r| r.nodes().count()).sum();
    d.hosts.len()
        + joins
        + d.kubelet_starts.len()
        + d.updates.len()
        + d.member_removals.len()
        + 4 * removals
        + upgrades
        + d.upgrade.uncordons.len()
        + 8
}

pub(super) fn build(d: &Diff) -> Result<StepGraph, GraphError> {
    let mut g = StepGraph::with_capacity(steps_of(d));
    // Hosts are prepared first, in parallel, each before its own init or join.
    let mut prepared: BTreeMap<NodeName, StepId> = BTreeMap::new();
    for (node, work) in &d.hosts {
        let id = g.add(
            Step::PrepareHost {
                node: node.clone(),
                work: work.clone(),
            },
            &[],
        )?;
        prepared.insert(node.clone(), id);
    }
    let mut after_init: Vec<StepId> = vec![];
    if let Some(b) = &d.init {
        let deps: Vec<StepId> = prepared.get(b).cloned().into_iter().collect();
        after_init.push(g.add(Step::Init { node: b.clone() }, &deps)?);
    }
    let backup: Vec<StepId> = if d.backup_etcd {
        vec![g.add(Step::BackupEtcd, &[])?]
    } else {
        vec![]
    };
    let cni = if d.install_cni {
        Some(g.add(Step::InstallCni, &after_init)?)
    } else {
        None
    };

    // Replaced nodes are taken out before anything joins them again.
    // Control planes among them leave one at a time, as removals do.
    let mut reset_of: BTreeMap<NodeName, StepId> = BTreeMap::new();
    let mut prev_cp: Vec<StepId> = vec![];
    for r in &d.replacements {
        // The first control plane to leave waits for the backup; the others wait for it.
        let deps = if r.control_plane && prev_cp.is_empty() {
            backup.clone()
        } else if r.control_plane {
            prev_cp.clone()
        } else {
            vec![]
        };
        if let Some(last) = add_removal(&mut g, r, &deps)? {
            if r.control_plane {
                prev_cp = vec![last.clone()];
            }
            reset_of.insert(r.node.clone(), last);
        }
    }

    let mut gate_deps = after_init.clone();
    // The gate waits for the network too: control-plane Nodes are not Ready before the CNI.
    gate_deps.extend(cni);
    // A join waits for its host as it waits for its reset: merged per node.
    let mut before_join: BTreeMap<NodeName, Vec<StepId>> = BTreeMap::new();
    for (n, id) in reset_of.into_iter().chain(prepared) {
        before_join.entry(n).or_default().push(id);
    }
    let joins = add_joins(&mut g, d, &after_init, &gate_deps, &before_join)?;

    for n in &d.kubelet_starts {
        g.add(Step::StartKubelet { node: n.clone() }, &[])?;
    }

    for u in &d.updates {
        let joined_by = [
            StepId::Init(u.node.clone()),
            StepId::JoinControlPlane(u.node.clone()),
            StepId::JoinWorker(u.node.clone()),
        ];
        let deps: Vec<StepId> = joined_by.into_iter().filter(|id| g.contains(id)).collect();
        g.add(
            Step::UpdateNode {
                node: u.node.clone(),
                labels: u.labels.clone(),
                taints: u.taints.clone(),
            },
            &deps,
        )?;
    }

    // Removals after every join (capacity first), control planes one at a
    // time, members no control plane owns first (they are dead already).
    let mut prev_cp_removal: Option<StepId> = None;
    for m in &d.member_removals {
        let mut deps = joins.clone();
        match &prev_cp_removal {
            Some(prev) => deps.push(prev.clone()),
            None => deps.extend(backup.clone()),
        }
        prev_cp_removal = Some(g.add(m.step(), &deps)?);
    }
    for r in &d.removals {
        let mut deps = joins.clone();
        if r.control_plane {
            match &prev_cp_removal {
                Some(prev) => deps.push(prev.clone()),
                None => deps.extend(backup.clone()),
            }
        }
        let last = add_removal(&mut g, r, &deps)?;
        if r.control_plane {
            prev_cp_removal = last.or(prev_cp_removal);
        }
    }

    // The upgrade starts once every join is done (a joining host installs
    // the cluster's release) and etcd is backed up.
    let mut before_upgrade = joins.clone();
    before_upgrade.extend(backup.clone());
    super::upgrade::add_steps(&mut g, &d.upgrade, &before_upgrade)?;

    validate(&g, d)?;
    Ok(g)
}

/// The join token, each control-plane join behind its own gate and the
/// previous join, the workers behind one gate, and the revocation after
/// every join; returns the joins' ids.
fn add_joins(
    g: &mut StepGraph,
    d: &Diff,
    after_init: &[StepId],
    gate_deps: &[StepId],
    before_join: &BTreeMap<NodeName, Vec<StepId>>,
) -> Result<Vec<StepId>, GraphError> {
    let mut joins: Vec<StepId> = vec![];
    if d.control_plane_joins.is_empty() && d.worker_joins.is_empty() {
        return Ok(joins);
    }
    let token = g.add(Step::MintToken, after_init)?;
    let mut ready_cps = d.existing_control_planes.clone();
    let mut last_cp_join: Option<StepId> = None;
    if !d.control_plane_joins.is_empty() {
        let certs = g.add(Step::UploadCerts, after_init)?;
        let mut prev: Vec<StepId> = gate_deps.to_vec();
        if g.contains(&StepId::BackupEtcd) {
            prev.push(StepId::BackupEtcd);
        }
        for n in &d.control_plane_joins {
            let gate = g.add(
                Step::GateControlPlaneReady {
                    before: GateBefore::ControlPlaneJoin(n.clone()),
                    control_planes: ready_cps.clone(),
                },
                &prev,
            )?;
            let mut deps = vec![gate, token.clone(), certs.clone()];
            deps.extend(before_join.get(n).into_iter().flatten().cloned());
            let join = g.add(Step::JoinControlPlane { node: n.clone() }, &deps)?;
            joins.push(join.clone());
            ready_cps.push(n.clone());
            prev = vec![join];
        }
        last_cp_join = prev.pop();
    }
    if !d.worker_joins.is_empty() {
        let mut deps = gate_deps.to_vec();
        deps.extend(last_cp_join);
        let gate = g.add(
            Step::GateControlPlaneReady {
                before: GateBefore::WorkerJoins,
                control_planes: ready_cps,
            },
            &deps,
        )?;
        for n in &d.worker_joins {
            let mut deps = vec![gate.clone(), token.clone()];
            deps.extend(before_join.get(n).into_iter().flatten().cloned());
            joins.push(g.add(Step::JoinWorker { node: n.clone() }, &deps)?);
        }
    }
    g.add(Step::RevokeToken, &joins)?;
    Ok(joins)
}

/// A removal's steps in kubeadm's order (`Removal::step_ids`), each after
/// the one before; returns the last step's id.
fn add_removal(
    g: &mut StepGraph,
    r: &Removal,
    deps: &[StepId],
) -> Result<Option<StepId>, GraphError> {
    let mut prev: Vec<StepId> = deps.to_vec();
    let mut last = None;
    for id in r.step_ids() {
        let step = match &id {
            StepId::Drain(node) => Step::Drain { node: node.clone() },
            StepId::Reset(node) => Step::Reset { node: node.clone() },
            StepId::DeleteNode(node) => Step::DeleteNode { node: node.clone() },
            StepId::RemoveEtcdMember(_) => match &r.etcd_member {
                Some(m) => m.step(),
                None => continue,
            },
            _ => continue,
        };
        let added = g.add(step, &prev)?;
        prev = vec![added.clone()];
        last = Some(added);
    }
    Ok(last)
}

/// Invariants a plan must keep before anyone walks it. Linear in the graph:
/// one sweep from each gate and one back from the revocation.
fn validate(g: &StepGraph, d: &Diff) -> Result<(), GraphError> {
    toposort(&g.graph, None).map_err(|c| GraphError::Cycle(g.graph[c.node_id()].id()))?;
    let behind_w_gate = g.reachable(&StepId::Gate(GateBefore::WorkerJoins), Direction::Outgoing);
    let before_revoke = g.reachable(&StepId::RevokeToken, Direction::Incoming);
    let mut prev: Option<StepId> = None;
    for n in &d.control_plane_joins {
        let id = StepId::JoinControlPlane(n.clone());
        let own_gate = StepId::Gate(GateBefore::ControlPlaneJoin(n.clone()));
        if !g.reachable(&own_gate, Direction::Outgoing).contains(&id) {
            return Err(GraphError::ControlPlaneJoinUngated(id));
        }
        if let Some(p) = &prev {
            if !g.reachable(p, Direction::Outgoing).contains(&id) {
                return Err(GraphError::ControlPlaneJoinsInParallel {
                    join: id,
                    previous: p.clone(),
                });
            }
        }
        prev = Some(id);
    }
    // Every worker join is behind the worker gate, which the last control-plane join precedes.
    if let Some(p) = prev {
        if !d.worker_joins.is_empty()
            && !g
                .reachable(&p, Direction::Outgoing)
                .contains(&StepId::Gate(GateBefore::WorkerJoins))
        {
            return Err(GraphError::WorkersBeforeControlPlane(p));
        }
    }
    for n in &d.worker_joins {
        let id = StepId::JoinWorker(n.clone());
        if !behind_w_gate.contains(&id) {
            return Err(GraphError::WorkerJoinUngated(id));
        }
    }
    for id in d
        .control_plane_joins
        .iter()
        .map(|n| StepId::JoinControlPlane(n.clone()))
        .chain(d.worker_joins.iter().map(|n| StepId::JoinWorker(n.clone())))
    {
        if !before_revoke.contains(&id) {
            return Err(GraphError::RevokedTooEarly(id));
        }
    }
    if d.backup_etcd {
        let after_backup = g.reachable(&StepId::BackupEtcd, Direction::Outgoing);
        if let Some(id) = super::backup::guarded(d)
            .into_iter()
            .find(|id| !after_backup.contains(id))
        {
            return Err(GraphError::BeforeBackup(id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{facts, goldentooth, with_state};

    #[test]
    fn a_step_added_twice_or_behind_an_unknown_step_is_refused() {
        let mut g = StepGraph::with_capacity(2);
        let token = g.add(Step::MintToken, &[]).unwrap();
        assert_eq!(
            g.add(Step::MintToken, &[]),
            Err(GraphError::AddedTwice(token.clone()))
        );
        assert_eq!(
            g.add(Step::RevokeToken, &[StepId::InstallCni]),
            Err(GraphError::UnknownDependency {
                step: StepId::RevokeToken,
                dependency: StepId::InstallCni
            })
        );
        assert_eq!(
            g.add(Step::RevokeToken, std::slice::from_ref(&token)),
            Ok(StepId::RevokeToken)
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g.dependencies(&StepId::RevokeToken), [token]);
    }

    /// The room `build` makes is never less than the steps it adds (less
    /// would only cost copies, but the estimate is there to spare those),
    /// and not far more.
    #[test]
    fn the_room_made_for_steps_covers_every_step_added() {
        let at = |version| {
            let mut spec = goldentooth();
            spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse(version).unwrap();
            spec
        };
        let removal = with_state(&goldentooth(), "fenn", crate::spec::NodeState::Absent);
        let cases = [
            (goldentooth(), "empty"),
            (goldentooth(), "bootstrap-initialised"),
            (goldentooth(), "host-drift"),
            (goldentooth(), "label-taint-drift"),
            (at("1.33"), "upgrade-interrupted"),
            (at("1.34.1"), "upgrade-at-1.32"),
            (removal, "converged"),
        ];
        for (spec, fixture) in cases {
            let d = super::super::diff::diff(&spec, &facts(fixture), &PlanOptions::default())
                .unwrap_or_else(|e| panic!("{fixture}: {e}"));
            let g = build(&d).unwrap();
            let room = steps_of(&d);
            assert!(
                g.len() <= room,
                "{fixture}: {} steps, room for {room}",
                g.len()
            );
            assert!(
                room <= 2 * g.len() + 8,
                "{fixture}: {} steps, room for {room}",
                g.len()
            );
        }
    }
}
