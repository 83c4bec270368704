//! etcd in the plan, from etcd's own member list and health: members no
//! control plane owns (`- etcd_member`), members `kubeadm reset` cannot
//! remove (removed through a healthy control plane's etcd pod instead),
//! learners that stayed learners, and the quorum every join and removal
//! needs. Without etcd facts (older facts files, `GT_SKIP_ETCD_FACTS`) the
//! planner falls back to counting control-plane Nodes.

use super::diff::{Cx, MemberRemoval};
use super::*;
use crate::facts::{EtcdFacts, EtcdMember};

impl Cx<'_> {
    /// etcd's facts, when etcdctl ran against an existing cluster.
    fn etcd_facts(&self) -> Option<&EtcdFacts> {
        self.obs
            .cluster
            .etcd
            .as_ref()
            .filter(|e| e.asked() && self.obs.cluster.exists())
    }

    /// No API answered, and etcd (asked all the same) says it has no
    /// quorum: why, in etcd's words.
    pub(super) fn etcd_lost_quorum_without_api(&self) -> Option<String> {
        let e = self.obs.cluster.etcd.as_ref().filter(|e| e.asked())?;
        if let Some(error) = &e.error {
            return Some(format!(
                "no control plane's etcd pod could list its members: {error}"
            ));
        }
        let q = e.quorum();
        (!q.holds()).then(|| {
            format!(
                "{} of {} voting members healthy, {} needed; not healthy: {}",
                q.healthy,
                q.voters,
                q.needed(),
                self.unhealthy_members(e).join("; ")
            )
        })
    }

    /// The member of a node (by name, or by its address while unnamed).
    fn member_of_node(&self, name: &str) -> Option<&EtcdMember> {
        let address = self.spec.node(name).map(|n| n.address);
        self.etcd_facts()?.member_of(name, address.as_ref())
    }

    /// Whether etcd calls `name`'s member healthy; `None` when etcd was not
    /// read or lists no member of it.
    pub(super) fn etcd_member_healthy(&self, name: &str) -> Option<bool> {
        let e = self.etcd_facts().filter(|e| e.readable())?;
        let address = self.spec.node(name).map(|n| n.address);
        e.member_of(name, address.as_ref())
            .map(EtcdMember::is_healthy)
    }

    /// Whether some control plane of the file, or a control-plane Node of
    /// the cluster, owns the member.
    fn owned(&self, m: &EtcdMember) -> bool {
        let e = self.etcd_facts();
        let of_file = self
            .spec
            .control_planes()
            .filter(|n| n.is_present())
            .any(|n| {
                e.and_then(|e| e.member_of(n.name.as_str(), Some(&n.address)))
                    .is_some_and(|owned| owned.id == m.id)
            });
        of_file
            || self
                .obs
                .cluster
                .nodes
                .get(&m.name)
                .is_some_and(|n| n.is_control_plane())
    }

    /// Every control plane that leaves in this plan (removed or replaced).
    fn leaving(&self) -> BTreeSet<NodeName> {
        self.out
            .removals
            .iter()
            .chain(self.out.replacements.iter())
            .filter(|r| r.control_plane)
            .map(|r| r.node.clone())
            .collect()
    }

    /// A healthy member's control plane that stays, to remove others
    /// through: the one etcd was read through if it qualifies, else the
    /// first in file order.
    fn removal_via(&self) -> Option<NodeName> {
        let e = self.etcd_facts()?;
        let leaving = self.leaving();
        let candidates: Vec<NodeName> = self
            .spec
            .control_planes()
            .filter(|n| n.is_present() && !leaving.contains(&n.name))
            .filter(|n| {
                e.member_of(n.name.as_str(), Some(&n.address))
                    .is_some_and(|m| m.is_healthy() && !m.learner)
            })
            .map(|n| n.name.clone())
            .collect();
        candidates
            .iter()
            .find(|n| e.observed_via.as_deref() == Some(n.as_str()))
            .or(candidates.first())
            .cloned()
    }

    /// What etcd itself says, after every node was diffed: warnings, the
    /// members `kubeadm reset` cannot remove, and members no one owns.
    pub(super) fn etcd(&mut self) {
        let Some(e) = self.etcd_facts().cloned() else {
            return;
        };
        if let Some(error) = &e.error {
            self.warn(
                None,
                WarningKind::EtcdQuorum,
                format!("etcd could not be read: {error}"),
                format!("no control plane's etcd pod could list etcd's members ({error}); etcd has lost its quorum or is down: gt refuses joins and removals until it answers"),
            );
            return;
        }
        let q = e.quorum();
        if !q.holds() {
            self.warn(
                None,
                WarningKind::EtcdQuorum,
                format!(
                    "etcd has lost quorum: {} of {} voting members healthy, {} needed",
                    q.healthy,
                    q.voters,
                    q.needed()
                ),
                format!(
                    "etcd has lost quorum: {} of {} voting members are healthy and it needs {}; not healthy: {}. gt refuses joins and removals until a majority is back",
                    q.healthy,
                    q.voters,
                    q.needed(),
                    self.unhealthy_members(&e).join("; ")
                ),
            );
        }
        for m in e.members.iter().filter(|m| m.learner) {
            let node = NodeName::try_from(m.name.clone())
                .ok()
                .filter(|n| self.spec.node(n.as_str()).is_some());
            self.warn(
                node.as_ref(),
                WarningKind::EtcdMember,
                format!("etcd member {} is still a learner", m.id),
                format!(
                    "etcd member {} ({}) is still a learner: its control plane's join did not finish (kubeadm promotes the learner once it caught up); reset that control plane and join it again, or remove the member with `etcdctl member remove {}`",
                    m.label(),
                    m.id,
                    m.id
                ),
            );
        }
        self.members_reset_cannot_remove();
        self.unowned_members(&e);
    }

    /// `kubeadm reset` removes a control plane's member only while the
    /// node's registration can be read: not when the host is not reset
    /// (unreachable, another cluster's) nor when its Node is gone.
    fn members_reset_cannot_remove(&mut self) {
        let via = self.removal_via();
        for i in 0..self.out.removals.len() {
            let r = &self.out.removals[i];
            if !r.control_plane || (r.reset.is_some() && r.in_cluster) {
                continue;
            }
            let Some(m) = self.member_of_node(r.node.as_str()).cloned() else {
                continue;
            };
            let node = r.node.clone();
            let Some(via) = via.clone() else {
                self.warn(
                    Some(&node),
                    WarningKind::EtcdMember,
                    format!("etcd member {} stays: no healthy control plane to remove it through", m.id),
                    format!("{node}'s etcd member {} cannot be removed: no healthy control plane stays to run `etcdctl member remove` through; it stays in etcd and counts against its quorum", m.id),
                );
                continue;
            };
            self.out.removals[i].etcd_member = Some(MemberRemoval {
                id: m.id.clone(),
                name: m.name.clone(),
                via: via.clone(),
            });
            let steps = self.out.removals[i].step_ids();
            let resource = Resource::Node(node);
            if let Some(c) = self
                .out
                .changes
                .iter_mut()
                .find(|c| c.resource == resource && c.action == Action::Delete)
            {
                c.reason.push_str(&format!(
                    "; its etcd member {} is removed through {via} (`etcdctl member remove`), which kubeadm reset cannot do here",
                    m.id
                ));
                c.steps = steps;
            }
        }
    }

    /// Members whose control plane is in neither the file nor the cluster
    /// (a dead host's leftover): removed with --prune, or when the file
    /// marks its node absent; drift otherwise.
    fn unowned_members(&mut self, e: &EtcdFacts) {
        let attached: BTreeSet<String> = self
            .out
            .removals
            .iter()
            .filter_map(|r| r.etcd_member.as_ref().map(|m| m.id.clone()))
            .collect();
        let unowned: Vec<EtcdMember> = e
            .members
            .iter()
            .filter(|m| !attached.contains(&m.id) && !self.owned(m))
            .cloned()
            .collect();
        for m in unowned {
            let label = m.label();
            let absent_in_file = self.spec.node(&m.name).is_some_and(|n| !n.is_present());
            let why = if absent_in_file {
                format!("state = \"absent\" in cluster.toml: its Node is gone but etcd member {} stayed", m.id)
            } else {
                format!(
                    "etcd member {} has no control plane in cluster.toml or the cluster",
                    m.id
                )
            };
            if !self.opts.prune && !absent_in_file {
                self.warn(
                    None,
                    WarningKind::EtcdMember,
                    format!("etcd member {label} ({}) has no control plane in cluster.toml or the cluster", m.id),
                    format!("etcd member {label} ({}) has no control plane in cluster.toml or the cluster (a host that left without `kubeadm reset`); it counts against etcd's quorum. Remove it with --prune", m.id),
                );
                continue;
            }
            let Some(via) = self.removal_via() else {
                self.warn(
                    None,
                    WarningKind::EtcdMember,
                    format!("etcd member {label} ({}) stays: no healthy control plane to remove it through", m.id),
                    format!("etcd member {label} ({}) cannot be removed: no healthy control plane stays to run `etcdctl member remove` through", m.id),
                );
                continue;
            };
            let removal = MemberRemoval {
                id: m.id.clone(),
                name: m.name.clone(),
                via: via.clone(),
            };
            let mut attributes = vec![("id".to_string(), m.id.clone())];
            if let Some(u) = m.peer_urls.first() {
                attributes.push(("peer_url".into(), u.clone()));
            }
            attributes.push(("through".into(), via.to_string()));
            let reason = if absent_in_file {
                format!("{why}: etcdctl member remove through {via}")
            } else {
                format!("{why} (--prune): etcdctl member remove through {via}")
            };
            self.out.changes.push(Change {
                resource: Resource::EtcdMember(label),
                action: Action::Delete,
                reason,
                role: None,
                attributes,
                labels: SetDiff::default(),
                taints: SetDiff::default(),
                host: Vec::new(),
                steps: vec![StepId::RemoveEtcdMember(m.id.clone())],
            });
            self.out.member_removals.push(removal);
        }
    }

    /// Each unhealthy voting member, with why.
    fn unhealthy_members(&self, e: &EtcdFacts) -> Vec<String> {
        e.members
            .iter()
            .filter(|m| !m.learner && !m.is_healthy())
            .map(|m| {
                let host = self
                    .host(&m.name)
                    .and_then(|h| h.unreachable.as_deref())
                    .map(|u| format!("; its host is unreachable ({u})"))
                    .unwrap_or_default();
                let why = match (&m.health_error, m.healthy) {
                    (Some(e), _) => e.as_str(),
                    (None, Some(false)) => "unhealthy",
                    (None, _) => "no health answer",
                };
                format!("{} ({why}{host})", m.label())
            })
            .collect()
    }

    /// Joins and removals against etcd's own members, one membership change
    /// at a time in the order apply makes them; `None` without etcd facts.
    pub(super) fn check_etcd_quorum(&self) -> Option<Result<(), PlanError>> {
        let e = self.etcd_facts()?;
        let cp_leaving = |r: &&super::diff::Removal| r.control_plane;
        let joins: Vec<&str> = self
            .out
            .control_plane_joins
            .iter()
            .chain(self.out.worker_joins.iter())
            .map(NodeName::as_str)
            .collect();
        let removals: Vec<&str> = self
            .out
            .replacements
            .iter()
            .chain(self.out.removals.iter())
            .map(|r| r.node.as_str())
            .chain(self.out.member_removals.iter().map(|m| m.id.as_str()))
            .collect();
        if joins.is_empty() && removals.is_empty() {
            return Some(Ok(()));
        }
        let mut what = vec![];
        if !joins.is_empty() {
            what.push(format!("join {}", joins.join(", ")));
        }
        if !removals.is_empty() {
            what.push(format!("remove {}", removals.join(", ")));
        }
        let what = what.join(" and ");
        if let Some(error) = &e.error {
            return Some(Err(PlanError::EtcdQuorumLost {
                what,
                why: format!("no control plane's etcd pod could list etcd's members ({error})"),
                advice: "bring etcd's members back (`gt exec k8s_control_plane -- crictl ps --name etcd`) or restore it from a snapshot, then plan again".into(),
            }));
        }
        let q = e.quorum();
        if !q.holds() {
            return Some(Err(PlanError::EtcdQuorumLost {
                what,
                why: format!(
                    "etcd has lost quorum: {} of {} voting members are healthy, {} needed ({}/2+1); not healthy: {}",
                    q.healthy,
                    q.voters,
                    q.needed(),
                    q.voters,
                    self.unhealthy_members(e).join("; ")
                ),
                advice: "bring a majority of etcd's members back, or restore etcd from a snapshot, then plan again".into(),
            }));
        }
        // The members of each moment: label → healthy. Learners do not vote.
        // A member etcd calls healthy still counts out when its control
        // plane does not look healthy (NotReady, unreachable, API not ready):
        // the next removal must not lean on it.
        let members: BTreeMap<String, bool> = e
            .members
            .iter()
            .filter(|m| !m.learner)
            .map(|m| {
                let node_ok = self
                    .obs
                    .cluster
                    .nodes
                    .get(&m.name)
                    .is_none_or(|n| self.healthy_control_plane(&m.name, n));
                (m.label(), m.is_healthy() && node_ok)
            })
            .collect();
        let label_of = |node: &str| self.member_of_node(node).map(EtcdMember::label);
        let replaced: Vec<String> = self
            .out
            .replacements
            .iter()
            .filter(cp_leaving)
            .filter_map(|r| label_of(r.node.as_str()))
            .collect();
        // After every join: the members no one owns, then the control planes.
        let after_joins: Vec<String> = self
            .out
            .member_removals
            .iter()
            .map(|m| {
                e.members
                    .iter()
                    .find(|x| x.id == m.id)
                    .map(EtcdMember::label)
                    .unwrap_or_else(|| m.id.clone())
            })
            .chain(
                self.out
                    .removals
                    .iter()
                    .filter(cp_leaving)
                    .filter_map(|r| label_of(r.node.as_str())),
            )
            .collect();
        Some(play_removals(
            members,
            &replaced,
            &self.out.control_plane_joins,
            &after_joins,
            |label| {
                let Some(m) = e.members.iter().find(|m| m.label() == label) else {
                    return format!("{label} is not healthy");
                };
                let why = self
                    .obs
                    .cluster
                    .nodes
                    .get(&m.name)
                    .map(|n| self.unhealthy_reason(&m.name, n))
                    .unwrap_or_else(|| format!("{label} is not healthy"));
                match &m.health_error {
                    Some(err) => format!("{why}; etcd: {err}"),
                    None => why,
                }
            },
        ))
    }
}

/// Plays the membership changes in the order apply makes them, one at a
/// time: `replaced` leave first, then `joins` join (healthy), then `removed`
/// leave. `members`: each voting member and whether it is healthy. For each
/// removal of `x` from the `m` members of that moment, etcd commits it with
/// a majority of `m` (`x` votes if healthy), and the members that stay keep
/// a majority of their own; `why_unhealthy` words a member that is not.
pub(super) fn play_removals(
    mut members: BTreeMap<String, bool>,
    replaced: &[String],
    joins: &[NodeName],
    removed: &[String],
    why_unhealthy: impl Fn(&str) -> String,
) -> Result<(), PlanError> {
    let leaving: Vec<&str> = replaced.iter().chain(removed).map(String::as_str).collect();
    let several = leaving.len() > 1;
    let step = |members: &mut BTreeMap<String, bool>, x: &str| -> Result<(), PlanError> {
        let count = |m: &BTreeMap<String, bool>| (m.len(), m.values().filter(|h| **h).count());
        let (before, healthy_before) = count(members);
        let at_start = members.clone();
        if members.remove(x).is_none() {
            return Ok(());
        }
        if members.is_empty() {
            return Err(PlanError::LastControlPlane {
                nodes: leaving.join(", "),
            });
        }
        let (after, healthy_after) = count(members);
        let (shown, members_n, healthy, quorum) = if healthy_before < before / 2 + 1 {
            (&at_start, before, healthy_before, before / 2 + 1)
        } else if healthy_after < after / 2 + 1 {
            (&*members, after, healthy_after, after / 2 + 1)
        } else {
            return Ok(());
        };
        let sick: Vec<&str> = shown
            .iter()
            .filter(|(_, h)| !**h)
            .map(|(n, _)| n.as_str())
            .collect();
        let mut advice = vec![format!("heal {} first and plan again", sick.join(", "))];
        if several {
            advice.push("remove fewer control planes at once".into());
        }
        advice.push("join a new control plane in the same apply".into());
        Err(PlanError::WouldBreakQuorum {
            node: x.to_string(),
            members: members_n,
            healthy,
            quorum,
            staying: members.keys().cloned().collect::<Vec<_>>().join(", "),
            unhealthy: sick
                .iter()
                .map(|n| why_unhealthy(n))
                .collect::<Vec<_>>()
                .join("; "),
            advice: advice.join(", or "),
        })
    };
    for x in replaced {
        step(&mut members, x)?;
    }
    for n in joins {
        members.insert(n.to_string(), true);
    }
    for x in removed {
        step(&mut members, x)?;
    }
    Ok(())
}
