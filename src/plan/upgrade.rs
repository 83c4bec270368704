//! Version upgrades: the file's `kubernetes_version` against the release
//! the cluster records (kube-system/kubeadm-config) and each node runs, as a
//! ladder of rungs, one per minor, in the order kubeadm's upgrade docs
//! prescribe (docs/kubeadm.md, "Upgrades"): the first control plane's
//! `kubeadm upgrade apply`, the other control planes one at a time, then
//! the workers in batches of `[upgrade] max_unavailable`. The skew policy
//! is checked here, before anything runs.

use super::diff::Cx;
use super::node_change::StepsGo;
use super::seen::Seen;
use super::*;
use crate::facts::NodeVersions;
use crate::kube::apt;
use crate::kube::kubeadm::Release;
use crate::spec::{KubeVersion, MaxUnavailable, Node};

/// How far behind the API server a kubelet may be (minors).
const KUBELET_MAX_BEHIND: u32 = 3;

/// The ladder and what goes with it (empty when nothing is behind).
#[derive(Debug, Clone, Default)]
pub(super) struct Upgrade {
    pub rungs: Vec<Rung>,
    /// Nodes gt cordoned that an interrupted apply left so, and that no rung
    /// of this plan drains (an upgrade step uncordons its own node).
    pub uncordons: Vec<NodeName>,
    /// Nodes whose kube packages and repository the rungs own, by their
    /// place in the file: the host plan leaves those to the upgrade steps
    /// (none without rungs). By place, not a set of names: thousands of
    /// names sorted into a set compared names all over the heap.
    covered: Vec<bool>,
    /// Why the plan cannot upgrade (the skew policy); `gt plan` refuses
    /// with the first, `gt drift` still reports the versions.
    pub refusals: Vec<PlanError>,
}

impl Upgrade {
    /// The rungs own the kube packages and repository of the file's node
    /// at `at`.
    pub fn covers(&self, at: usize) -> bool {
        self.covered.get(at).copied().unwrap_or(false)
    }

    /// Some control plane is upgraded (kubeadm upgrades its etcd member).
    pub fn touches_etcd(&self) -> bool {
        self.rungs
            .iter()
            .any(|r| r.first.is_some() || !r.control_planes.is_empty())
    }
}

/// One minor (or a patch) of the ladder: every node to `release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rung {
    pub release: RungRelease,
    /// The control plane that runs `kubeadm upgrade apply`; `None` when the
    /// cluster records this release already (a resumed rung).
    pub first: Option<NodeName>,
    /// The other control planes still behind, file order, one at a time.
    pub control_planes: Vec<NodeName>,
    /// Workers still behind, file order, in batches of `max_unavailable`.
    pub batches: Vec<Vec<NodeName>>,
}

impl Rung {
    /// Every node of the rung with its role, in walk order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeName, UpgradeRole)> {
        self.first
            .iter()
            .map(|n| (n, UpgradeRole::First))
            .chain(
                self.control_planes
                    .iter()
                    .map(|n| (n, UpgradeRole::ControlPlane)),
            )
            .chain(
                self.batches
                    .iter()
                    .flatten()
                    .map(|n| (n, UpgradeRole::Worker)),
            )
    }

    fn step(&self, node: &NodeName, role: UpgradeRole) -> Step {
        Step::UpgradeNode {
            node: node.clone(),
            release: self.release,
            role,
        }
    }
}

/// Workers in batches of `max` (a percentage counts every worker of the file).
pub(super) fn batches(
    workers: Vec<NodeName>,
    max: MaxUnavailable,
    all_workers: usize,
) -> Vec<Vec<NodeName>> {
    let size = max.batch_size(all_workers);
    let mut out = Vec::with_capacity(workers.len().div_ceil(size));
    let mut rest = workers.into_iter();
    while rest.len() > 0 {
        out.push(rest.by_ref().take(size).collect());
    }
    out
}

/// The releases of the ladder from the cluster's `current` to `target`:
/// a rung at `current` itself when some node is still behind it (a rung an
/// interrupted apply left unfinished), then one per minor, each at
/// `patch_of(minor)` when a repository lists it, else at the newest patch
/// read at apply; the last at `target`.
pub(super) fn ladder(
    current: Release,
    target: Release,
    catch_up: bool,
    patch_of: impl Fn(u32, u32) -> Option<u32>,
) -> Vec<RungRelease> {
    let mut out = Vec::new();
    if catch_up {
        out.push(current.into());
    }
    if target <= current {
        return out;
    }
    if target.minor() == current.minor() {
        out.push(target.into());
        return out;
    }
    for minor in current.1 + 1..target.1 {
        out.push(match patch_of(current.0, minor) {
            Some(patch) => Release(current.0, minor, patch).into(),
            None => RungRelease::NewestPatch(current.0, minor),
        });
    }
    out.push(target.into());
    out
}

/// Words for a list of rungs: `v1.33 (newest patch at apply), v1.34.2`.
fn rung_words(releases: &[RungRelease]) -> String {
    releases
        .iter()
        .map(RungRelease::words)
        .collect::<Vec<_>>()
        .join(", ")
}

fn minor_words(r: Release) -> String {
    format!("{}.{}", r.0, r.1)
}

/// Where one node of the file stands for the upgrade.
pub(super) struct Member<'n> {
    node: &'n Node,
    /// Its place in the file.
    at: usize,
    /// Its Node carries gt's cordon mark (read with the rest of the Node:
    /// at thousands of nodes, a second look at each is out of the cache).
    cordoned_by_gt: bool,
    /// Its Node is cordoned (by anyone).
    unschedulable: bool,
    versions: NodeVersions,
    control_plane: bool,
    /// gt may upgrade it: reachable, its host software managed.
    upgradable: bool,
    /// Why not, in words (`its host software is not managed`).
    why_not: Option<String>,
}

impl<'a> Cx<'a> {
    /// The newest patch of `major.minor` any host's repository lists; the
    /// `.0` patch when none lists that minor yet (no host has its
    /// repository before the rung switches to it).
    fn newest_listed_patch(&self, major: u32, minor: u32) -> Option<u32> {
        self.obs
            .hosts
            .values()
            .filter_map(|h| h.software.as_ref())
            .filter(|s| s.source_minor() == Some((major, minor)))
            .filter_map(|s| apt::newest(s.available.get("kubeadm")?, major, minor, None))
            .filter_map(|v| apt::release_of(&v))
            .map(|(_, _, p)| p)
            .max()
    }

    /// The release the file asks for, given the cluster's: its exact patch;
    /// for a minor alone, the cluster's own patch when it is that minor,
    /// else the newest patch listed.
    fn wanted_release(&self, current: Release) -> Release {
        let want: KubeVersion = self.spec.cluster.kubernetes_version;
        match want.patch {
            Some(p) => Release(want.major, want.minor, p),
            None if (want.major, want.minor) == current.minor() => current,
            None => Release(
                want.major,
                want.minor,
                self.newest_listed_patch(want.major, want.minor)
                    .unwrap_or(0),
            ),
        }
    }

    /// A present node of the file as the upgrade sees it; `None` when its
    /// Node is not in the cluster.
    pub(super) fn member(seen: Seen<'a>) -> Option<Member<'a>> {
        let Seen {
            node,
            at,
            host,
            obj,
            replace,
            ..
        } = seen;
        let name = node.name.as_str();
        let obj = obj?;
        let why_not = match host {
            _ if !node.host.manage => Some(format!(
                "gt does not manage its packages (manage = false in [nodes.{name}.host] or [defaults.host])"
            )),
            Some(h) if !h.is_reachable() => Some("its host is unreachable".to_string()),
            None => Some("it was not observed".to_string()),
            _ if replace => {
                Some("it is replaced (--replace): it rejoins at the cluster's version".into())
            }
            _ => None,
        };
        Some(Member {
            node,
            at,
            cordoned_by_gt: obj.cordoned_by_gt,
            unschedulable: obj.unschedulable,
            versions: NodeVersions::of(Some(obj), host),
            control_plane: seen.obj_control_plane,
            upgradable: why_not.is_none(),
            why_not,
        })
    }

    /// The release the cluster records, when there is a cluster to upgrade
    /// (`None`: no upgrade is planned, and no node is looked at for one).
    pub(super) fn upgrade_release(&self) -> Option<Release> {
        if !self.obs.cluster.exists() {
            return None;
        }
        self.obs.cluster_release()
    }

    /// Plans the ladder from the cluster's `current` release into
    /// `out.upgrade`, its changes and its warnings; `members`: each present
    /// node of the file whose Node is in the cluster (`member`), file order.
    pub(super) fn upgrade(&mut self, current: Release, members: Vec<Member<'a>>) {
        let target = self.wanted_release(current);
        self.uncordons(&members);
        if let Some(refusal) = self.skew_refusal(current, target, &members) {
            self.out.upgrade.refusals.push(refusal);
            return;
        }
        let catch_up = members.iter().any(|m| !m.versions.at_least(current));
        let releases = ladder(current, target, catch_up, |major, minor| {
            self.newest_listed_patch(major, minor)
        });
        let mut record = RungRelease::from(current);
        let all_workers = self.present_workers;
        let mut rungs = Vec::new();
        // Each member's rungs, told as the rungs are made: (member, rung's
        // release, role), rung after rung.
        // One rung takes each member at most once: sized for the usual one.
        let mut placed: Vec<(usize, RungRelease, UpgradeRole)> = Vec::with_capacity(members.len());
        for release in releases {
            let first = if record < release {
                match self.first_control_plane(&members) {
                    Some(f) => Some(f),
                    None => {
                        self.no_first_control_plane(current, release, &members);
                        break;
                    }
                }
            } else {
                None
            };
            record = record.max(release);
            let placed_before = placed.len();
            placed.extend(first.map(|f| (f, release, UpgradeRole::First)));
            let mut control_planes = Vec::new();
            let mut workers = Vec::new();
            for (i, m) in members.iter().enumerate() {
                if !m.upgradable || m.versions.at_least(release.floor()) {
                    continue;
                }
                if !m.control_plane {
                    workers.push(m.node.name.clone());
                    placed.push((i, release, UpgradeRole::Worker));
                } else if Some(i) != first {
                    control_planes.push(m.node.name.clone());
                    placed.push((i, release, UpgradeRole::ControlPlane));
                }
            }
            let rung = Rung {
                release,
                first: first.map(|f| members[f].node.name.clone()),
                control_planes,
                batches: batches(workers, self.spec.upgrade.max_unavailable, all_workers),
            };
            if rung.nodes().next().is_some() {
                rungs.push(rung);
            } else {
                placed.truncate(placed_before);
            }
        }
        // Member by member, each one's rungs in ladder order.
        placed.sort_by_key(|&(i, _, _)| i);
        self.unmanaged_behind(&members, current, target);
        self.upgrade_changes(current, target, &rungs, &members, &placed);
        if !rungs.is_empty() {
            let mut covered = vec![false; self.spec.nodes.len()];
            for m in members.iter().filter(|m| m.upgradable) {
                covered[m.at] = true;
            }
            self.out.upgrade.covered = covered;
        }
        self.out.upgrade.rungs = rungs;
    }

    /// The control plane that runs `kubeadm upgrade apply` (its place among
    /// `members`): the bootstrap node when gt may upgrade it, else the first
    /// such in file order.
    fn first_control_plane(&self, members: &[Member]) -> Option<usize> {
        let mut candidates = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.control_plane && m.upgradable);
        let first = candidates.next()?;
        std::iter::once(first)
            .chain(candidates)
            .find(|(_, m)| m.node.name == self.spec.cluster.bootstrap)
            .or(Some(first))
            .map(|(i, _)| i)
    }

    fn no_first_control_plane(
        &mut self,
        current: Release,
        release: RungRelease,
        members: &[Member],
    ) {
        let why: Vec<String> = members
            .iter()
            .filter(|m| m.control_plane)
            .map(|m| format!("{}: {}", m.node.name, m.why_not.as_deref().unwrap_or("")))
            .collect();
        // kubeadm takes an exact release: a newest-patch rung names its x.
        let release = match release.exact() {
            Some(r) => r.to_string(),
            None => format!("{release}.x"),
        };
        self.warn(
            None,
            WarningKind::VersionSkew,
            format!("cluster at {current}, behind cluster.toml"),
            format!(
                "the cluster is at {current} and cluster.toml wants {}, but gt cannot upgrade any control plane ({}); run `kubeadm upgrade apply {release}` on one control plane yourself (kubeadm {release} installed first), then plan again",
                self.spec.cluster.kubernetes_version,
                why.join("; ")
            ),
        );
    }

    /// The skew policy (docs/kubeadm.md, "Version skew"): the first rule the
    /// plan would break, with the numbers and what to do.
    fn skew_refusal(
        &self,
        current: Release,
        target: Release,
        members: &[Member],
    ) -> Option<PlanError> {
        let file = self.spec.cluster.kubernetes_version;
        if target < current {
            return Some(PlanError::UpgradeDowngrade {
                file: file.to_string(),
                cluster: current.to_string(),
                minor: minor_words(current),
            });
        }
        for m in members {
            let name = || m.node.name.to_string();
            // The policy counts minors: a kubelet a patch ahead is within it.
            if let Some(kubelet) = m.versions.kubelet.filter(|k| k.minor() > current.minor()) {
                return Some(PlanError::UpgradeKubeletAhead {
                    node: name(),
                    kubelet: kubelet.to_string(),
                    api: current.to_string(),
                    minor: minor_words(kubelet),
                });
            }
            if let Some(kubeadm) = m
                .versions
                .kubeadm
                .filter(|k| k.0 == current.0 && k.1 > current.1 + 1)
            {
                return Some(PlanError::UpgradeKubeadmSkipsMinor {
                    node: name(),
                    kubeadm: kubeadm.to_string(),
                    cluster: current.to_string(),
                    minors: kubeadm.1 - current.1,
                    next: format!("{}.{}", current.0, current.1 + 1),
                });
            }
        }
        // A kubelet gt does not upgrade stays where it is while the API
        // servers move on: at most three minors behind the last rung.
        for m in members.iter().filter(|m| !m.upgradable) {
            let Some(kubelet) = m.versions.kubelet else {
                continue;
            };
            if kubelet.0 == target.0 && kubelet.1 + KUBELET_MAX_BEHIND < target.1 {
                return Some(PlanError::UpgradeKubeletTooOld {
                    node: m.node.name.to_string(),
                    kubelet: kubelet.to_string(),
                    target,
                    behind: target.1 - kubelet.1,
                    why: m.why_not.clone().unwrap_or_default(),
                });
            }
        }
        None
    }

    /// A node gt may not upgrade that is behind: what to run on it.
    fn unmanaged_behind(&mut self, members: &[Member], current: Release, target: Release) {
        // With no control plane of gt's to run it, `upgrade apply` is the
        // operator's, on the bootstrap node (else the first control plane).
        let operators_first = match self.first_control_plane(members) {
            Some(_) => None,
            None => members
                .iter()
                .filter(|x| x.control_plane)
                .find(|x| x.node.name == self.spec.cluster.bootstrap)
                .or_else(|| members.iter().find(|x| x.control_plane))
                .map(|x| &x.node.name),
        };
        for m in members.iter().filter(|m| !m.upgradable) {
            let Some(at) = m.versions.oldest() else {
                continue;
            };
            let want = if m.versions.at_least(current) {
                target
            } else {
                current
            };
            if at >= want {
                continue;
            }
            let name = &m.node.name;
            let command = if operators_first == Some(name) && current < want {
                format!("`kubeadm upgrade apply {want}`")
            } else {
                "`kubeadm upgrade node`".to_string()
            };
            let why = m.why_not.as_deref().unwrap_or("");
            self.warn(
                Some(name),
                WarningKind::VersionSkew,
                format!("at {at}, behind {want}"),
                format!(
                    "{name} is at {at}, behind {want}, and gt does not upgrade it: {why}; on {name}, install kubeadm {want}, run {command}, then install kubelet and kubectl {want} and restart the kubelet (`systemctl daemon-reload && systemctl restart kubelet`), one minor at a time"
                ),
            );
        }
    }

    /// Nodes with gt's cordon mark that no rung takes: an interrupted apply
    /// cordoned them, and uncordoning them is the file's wish.
    fn uncordons(&mut self, members: &[Member]) {
        for m in members {
            if m.cordoned_by_gt {
                self.out.upgrade.uncordons.push(m.node.name.clone());
            }
        }
    }

    /// The cluster's version change, each node's kubelet change, and the
    /// uncordons; rungs that take a node drop its uncordon (the upgrade
    /// step uncordons what gt cordoned). `placed`: each member's rungs
    /// (its place among `members`, the rung's release, its role), sorted
    /// by member, each one's in ladder order.
    fn upgrade_changes(
        &mut self,
        current: Release,
        target: Release,
        rungs: &[Rung],
        members: &[Member],
        placed: &[(usize, RungRelease, UpgradeRole)],
    ) {
        let releases: Vec<RungRelease> = rungs.iter().map(|r| r.release).collect();
        if current < target && !rungs.is_empty() {
            let firsts: Vec<StepId> = rungs
                .iter()
                .filter_map(|r| Some(r.step(r.first.as_ref()?, UpgradeRole::First).id()))
                .collect();
            let new_minors: Vec<RungRelease> = releases
                .iter()
                .copied()
                .filter(|r| *r > RungRelease::from(current))
                .collect();
            let count = new_minors.len();
            let file = self.spec.cluster.kubernetes_version;
            // A rung whose patch no repository listed (and the file did not name).
            let newest_at_apply: Vec<String> = new_minors
                .iter()
                .filter(|r| r.exact().is_none())
                .map(ToString::to_string)
                .collect();
            let newest_at_apply = clause_naming(
                &newest_at_apply,
                "no host's repository lists that minor yet, so its rung takes the newest patch the first control plane's repository lists once switched to it",
            );
            let unlisted: Vec<String> = new_minors
                .iter()
                .filter_map(RungRelease::exact)
                .filter(|r| r.2 == 0 && !(file.patch == Some(0) && *r == target))
                .filter(|r| self.newest_listed_patch(r.0, r.1).is_none())
                .map(|r| r.to_string())
                .collect();
            let unlisted = clause_naming(
                &unlisted,
                "no host's repository lists that minor's patches yet, so the rung takes its first patch",
            );
            let change = Change {
                resource: Resource::Cluster(self.spec.cluster.name.clone()),
                action: Action::Update,
                reason: format!(
                    "the cluster is at {current} (kubeadm-config), cluster.toml wants {file}: {count} rung{}, one minor at a time{newest_at_apply}{unlisted}",
                    if count == 1 { "" } else { "s" }
                ),
                role: None,
                attributes: vec![
                    ("kubernetes_version".into(), format!("{current} -> {target}")),
                    ("rungs".into(), rung_words(&new_minors)),
                ],
                labels: SetDiff::default(),
                taints: SetDiff::default(),
                host: vec![],
                steps: firsts,
            };
            let at = self
                .out
                .changes
                .iter()
                .position(|c| !matches!(c.resource, Resource::Cluster(_)))
                .unwrap_or(self.out.changes.len());
            self.insert_change(at, change);
        }
        // One change for each node a rung takes, at most: grown once.
        self.out
            .changes
            .reserve(placed.chunk_by(|a, b| a.0 == b.0).count());
        // The nodes gt cordoned (`uncordons`) that no rung takes.
        let mut uncordons = Vec::new();
        let mut words = RungWords::default();
        let mut rest = placed;
        for (i, m) in members.iter().enumerate() {
            let name = &m.node.name;
            let mine_len = rest.iter().take_while(|&&(at, _, _)| at == i).count();
            let (mine, after) = rest.split_at(mine_len);
            rest = after;
            let uncordon = m.cordoned_by_gt && mine.is_empty();
            if uncordon {
                uncordons.push(name.clone());
            }
            if mine.is_empty() && !uncordon {
                continue;
            }
            let mut reason = String::new();
            let mut attributes = Vec::with_capacity(2);
            let mut steps = Vec::with_capacity(mine.len() + usize::from(uncordon));
            if let Some(&(_, last, _)) = mine.last() {
                let unknown = "unknown";
                let at: &dyn std::fmt::Display = match &m.versions.kubelet {
                    Some(k) => k,
                    None => &unknown,
                };
                let first = mine.iter().any(|&(_, _, role)| role == UpgradeRole::First);
                let apply = if first {
                    "kubeadm upgrade apply, then"
                } else {
                    "kubeadm upgrade node,"
                };
                // An operator's cordon (no mark of gt's) stays.
                let uncordon_word = if m.unschedulable && !m.cordoned_by_gt {
                    "stays cordoned (an operator's cordon)"
                } else {
                    "uncordon"
                };
                reason = if mine.len() == 1 {
                    format!("kubelet {at}, behind {last}: {apply} drain, kubelet {last}, {uncordon_word}")
                } else {
                    format!(
                        "kubelet {at}, behind {last}: {apply} drain, kubelet, {uncordon_word} at each of {} rungs",
                        mine.len()
                    )
                };
                attributes.push(("kubelet_version".to_string(), format!("{at} -> {last}")));
                attributes.push(("rungs".to_string(), words.of(mine).to_string()));
                steps.extend(mine.iter().map(|&(_, release, role)| {
                    Step::UpgradeNode {
                        node: name.clone(),
                        release,
                        role,
                    }
                    .id()
                }));
            }
            if uncordon {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str("cordoned by gt (an interrupted apply): uncordon");
                attributes.push(("schedulable".to_string(), "false -> true".to_string()));
                steps.push(StepId::Uncordon(name.clone()));
            }
            self.merge_node_change(m.at, m.node, &reason, attributes, steps, StepsGo::Last);
        }
        self.out.upgrade.uncordons = uncordons;
    }
}

/// The words for a node's rungs (`rung_words`), made again only when its
/// rungs differ from the node's before: almost every node of a ladder
/// climbs the same rungs.
#[derive(Default)]
struct RungWords {
    rungs: Vec<RungRelease>,
    words: String,
}

impl RungWords {
    /// The words for the rungs of `mine` (a member's placings).
    fn of(&mut self, mine: &[(usize, RungRelease, UpgradeRole)]) -> &str {
        let same = self.rungs.len() == mine.len()
            && self.rungs.iter().zip(mine).all(|(a, &(_, b, _))| *a == b);
        if !same {
            self.rungs = mine.iter().map(|&(_, r, _)| r).collect();
            self.words = rung_words(&self.rungs);
        }
        &self.words
    }
}

/// The host plan of a node the rungs upgrade: its kube packages and
/// repository are the upgrade steps' (a host plan would install the file's
/// release in one jump); what else differs stays.
pub(super) fn leave_kube_packages(mut p: super::host::HostPlan) -> Option<super::host::HostPlan> {
    let kube = |name: &str| apt::KUBE_PACKAGES.contains(&name);
    p.change
        .host
        .retain(|h| !(h.kind == "apt_source" || (h.kind == "package" && kube(&h.name))));
    p.work.repository = None;
    p.work.install.retain(|pin| !kube(&pin.name));
    p.work.hold.retain(|name| !kube(name));
    (!p.change.host.is_empty()).then_some(p)
}

/// The upgrade's steps: rung after rung, each behind the whole previous one;
/// in a rung the first control plane, the others one at a time, then the
/// workers batch by batch. `after`: what the first step waits for.
pub(super) fn add_steps(
    g: &mut StepGraph,
    u: &Upgrade,
    after: &[StepId],
) -> Result<(), GraphError> {
    let mut prev: Vec<StepId> = after.to_vec();
    for rung in &u.rungs {
        if let Some(f) = &rung.first {
            prev = vec![g.add(rung.step(f, UpgradeRole::First), &prev)?];
        }
        for cp in &rung.control_planes {
            prev = vec![g.add(rung.step(cp, UpgradeRole::ControlPlane), &prev)?];
        }
        for batch in &rung.batches {
            let mut ids = Vec::with_capacity(batch.len());
            for w in batch {
                ids.push(g.add(rung.step(w, UpgradeRole::Worker), &prev)?);
            }
            prev = ids;
        }
    }
    for n in &u.uncordons {
        g.add(Step::Uncordon { node: n.clone() }, &[])?;
    }
    Ok(())
}

/// `"; A, B: why"` explaining the rungs named, or nothing when none is.
fn clause_naming(rungs: &[String], why: &str) -> String {
    if rungs.is_empty() {
        String::new()
    } else {
        format!("; {}: {why}", rungs.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{facts, goldentooth};
    use crate::plan::{plan, PlanOptions};

    fn n(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    #[test]
    fn the_ladder_climbs_one_minor_at_a_time_to_the_files_patch() {
        let listed = |_: u32, minor: u32| Some(minor - 30);
        let unlisted = |_: u32, _: u32| None;
        let r = |b, c| RungRelease::Exact(Release(1, b, c));
        let at = |b, c| Release(1, b, c);
        assert_eq!(
            ladder(at(32, 4), at(34, 2), false, listed),
            [r(33, 3), r(34, 2)]
        );
        // A middle minor no repository lists yet: its newest patch at apply.
        assert_eq!(
            ladder(at(32, 4), at(34, 2), false, unlisted),
            [RungRelease::NewestPatch(1, 33), r(34, 2)]
        );
        assert_eq!(ladder(at(32, 4), at(33, 0), false, listed), [r(33, 0)]);
        // A patch upgrade is one rung; nothing behind, nothing to climb.
        assert_eq!(ladder(at(32, 4), at(32, 9), false, listed), [r(32, 9)]);
        assert!(ladder(at(32, 4), at(32, 4), false, listed).is_empty());
        // Nodes left behind the cluster's record: their rung comes first.
        assert_eq!(
            ladder(at(33, 3), at(34, 2), true, listed),
            [r(33, 3), r(34, 2)]
        );
        assert_eq!(ladder(at(33, 3), at(33, 3), true, listed), [r(33, 3)]);
        assert_eq!(
            ladder(at(30, 1), at(34, 0), false, listed),
            [r(31, 1), r(32, 2), r(33, 3), r(34, 0)]
        );
    }

    #[test]
    fn a_nodes_rung_words_are_its_own_rungs_whatever_the_node_before_climbed() {
        let r = |minor, patch| RungRelease::Exact(Release(1, minor, patch));
        let w = UpgradeRole::Worker;
        let mut words = RungWords::default();
        let two = [(0, r(33, 3), w), (0, r(34, 2), w)];
        assert_eq!(words.of(&two), rung_words(&[r(33, 3), r(34, 2)]));
        assert_eq!(
            words.of(&[(1, r(33, 3), w), (1, r(34, 2), w)]),
            "v1.33.3, v1.34.2"
        );
        assert_eq!(words.of(&[(2, r(34, 2), w)]), "v1.34.2");
        assert_eq!(words.of(&[(3, r(33, 3), w)]), "v1.33.3");
        assert_eq!(words.of(&two), "v1.33.3, v1.34.2");
        assert_eq!(words.of(&[]), "");
    }

    #[test]
    fn workers_go_in_batches_of_a_count_or_a_share_of_all_workers() {
        let w: Vec<NodeName> = ["a", "b", "c", "d", "e"].into_iter().map(n).collect();
        let sizes = |max, all| -> Vec<usize> {
            batches(w.clone(), max, all).iter().map(Vec::len).collect()
        };
        assert_eq!(sizes(MaxUnavailable::Count(1), 5), [1, 1, 1, 1, 1]);
        assert_eq!(sizes(MaxUnavailable::Count(2), 5), [2, 2, 1]);
        assert_eq!(sizes(MaxUnavailable::Count(9), 5), [5]);
        // 40% of the file's 10 workers is 4, though only 5 are behind.
        assert_eq!(sizes(MaxUnavailable::Percent(40), 10), [4, 1]);
        assert_eq!(sizes(MaxUnavailable::Percent(10), 5), [1, 1, 1, 1, 1]);
        assert_eq!(batches(w.clone(), MaxUnavailable::Count(2), 5)[2], [n("e")]);
    }

    fn at_1_33() -> Spec {
        let mut s = goldentooth();
        s.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.33.3").unwrap();
        s
    }

    #[test]
    fn a_node_gt_does_not_manage_is_a_warning_with_the_command_for_its_role() {
        let mut spec = at_1_33();
        for name in ["bettley", "fenn"] {
            let node = spec.nodes.iter_mut().find(|x| x.name.as_str() == name);
            std::sync::Arc::make_mut(&mut node.unwrap().host).manage = false;
        }
        let p = plan(&spec, &facts("upgrade-at-1.32"), &PlanOptions::default()).unwrap();
        // Another control plane runs `upgrade apply`; fenn is left to the operator.
        assert!(p
            .graph
            .contains(&"upgrade/cargyll@v1.33.3".parse().unwrap()));
        assert!(matches!(
            p.graph.step(&"upgrade/cargyll@v1.33.3".parse().unwrap()),
            Some(Step::UpgradeNode {
                role: UpgradeRole::First,
                ..
            })
        ));
        assert!(!p.graph.contains(&"upgrade/fenn@v1.33.3".parse().unwrap()));
        let fenn = p
            .warnings
            .iter()
            .find(|w| w.node == Some(n("fenn")))
            .expect("a warning for fenn");
        assert_eq!(fenn.kind, WarningKind::VersionSkew);
        assert!(
            fenn.message.contains("`kubeadm upgrade node`"),
            "{}",
            fenn.message
        );
        assert!(fenn.message.contains("kubeadm v1.33.3"), "{}", fenn.message);
        assert!(fenn.message.contains("manage = false"), "{}", fenn.message);
    }

    #[test]
    fn with_no_control_plane_to_upgrade_the_first_command_is_upgrade_apply() {
        let mut spec = at_1_33();
        for x in spec.nodes.iter_mut() {
            std::sync::Arc::make_mut(&mut x.host).manage = false;
        }
        let p = plan(&spec, &facts("upgrade-at-1.32"), &PlanOptions::default()).unwrap();
        assert!(!p.has_changes());
        let cluster = p.warnings.iter().find(|w| w.node.is_none()).unwrap();
        assert!(
            cluster.message.contains("`kubeadm upgrade apply v1.33.3`"),
            "{}",
            cluster.message
        );
        let bettley = p
            .warnings
            .iter()
            .find(|w| w.node == Some(n("bettley")))
            .unwrap();
        assert!(
            bettley.message.contains("`kubeadm upgrade apply v1.33.3`"),
            "{}",
            bettley.message
        );
        let cargyll = p
            .warnings
            .iter()
            .find(|w| w.node == Some(n("cargyll")))
            .unwrap();
        assert!(
            cargyll.message.contains("`kubeadm upgrade node`"),
            "{}",
            cargyll.message
        );
        // Two minors up: the first rung's patch is the operator's to look up.
        spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.34.2").unwrap();
        let p = plan(&spec, &facts("upgrade-at-1.32"), &PlanOptions::default()).unwrap();
        let cluster = p.warnings.iter().find(|w| w.node.is_none()).unwrap();
        assert!(
            cluster.message.contains("`kubeadm upgrade apply v1.33.x`"),
            "{}",
            cluster.message
        );
    }

    #[test]
    fn a_kubelet_gt_cannot_upgrade_is_refused_when_it_would_fall_more_than_three_minors_behind() {
        let mut spec = at_1_33();
        let fenn = spec.nodes.iter_mut().find(|x| x.name.as_str() == "fenn");
        std::sync::Arc::make_mut(&mut fenn.unwrap().host).manage = false;
        let mut o = facts("upgrade-at-1.32");
        o.cluster.nodes.get_mut("fenn").unwrap().kubelet_version = Some("v1.30.1".into());
        // Three minors behind 1.33: allowed, with a warning.
        assert!(plan(&spec, &o, &PlanOptions::default()).is_ok());
        spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.34.2").unwrap();
        let e = plan(&spec, &o, &PlanOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to upgrade to v1.34.2: the kubelet on fenn is v1.30.1, which would be 4 minors behind the API server (the version skew policy allows 3), and gt does not upgrade it: gt does not manage its packages (manage = false in [nodes.fenn.host] or [defaults.host]); upgrade fenn's kubelet to 1.31 or newer first, or let gt manage its packages"
        );
    }

    #[test]
    fn a_kubelet_a_patch_ahead_of_the_api_server_is_within_the_policy() {
        let mut o = facts("upgrade-at-1.32");
        o.cluster.nodes.get_mut("jast").unwrap().kubelet_version = Some("v1.32.5".into());
        let p = plan(&at_1_33(), &o, &PlanOptions::default()).unwrap();
        assert!(p.graph.contains(&"upgrade/jast@v1.33.3".parse().unwrap()));
    }

    #[test]
    fn a_managed_hosts_kube_packages_are_left_to_the_upgrade_steps() {
        let mut o = facts("upgrade-at-1.32");
        let sw = facts("host-converged").hosts["fenn"].software.clone();
        o.hosts.get_mut("fenn").unwrap().software = sw.clone();
        let p = plan(&at_1_33(), &o, &PlanOptions::default()).unwrap();
        // Converged but for the version: no host change jumps kubeadm to 1.33.
        assert!(!p.graph.contains(&"prepare-host/fenn".parse().unwrap()));
        // Swap back on: the host change keeps that, without the packages.
        let mut sw = sw.unwrap();
        sw.swap = vec!["/var/swap".into()];
        o.hosts.get_mut("fenn").unwrap().software = Some(sw);
        let p = plan(&at_1_33(), &o, &PlanOptions::default()).unwrap();
        let host = p
            .changes
            .iter()
            .find(|c| c.resource == Resource::Host(n("fenn")))
            .unwrap();
        assert!(
            host.host.iter().all(|h| h.kind == "swap"),
            "{:?}",
            host.host
        );
    }

    #[test]
    fn a_ladder_of_two_rungs_backs_etcd_up_once_before_the_first_control_plane_moves() {
        let mut spec = at_1_33();
        spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.34.2").unwrap();
        let p = plan(&spec, &facts("upgrade-at-1.32"), &PlanOptions::default()).unwrap();
        let backups = p
            .graph
            .ordered()
            .iter()
            .filter(|s| matches!(s, Step::BackupEtcd))
            .count();
        assert_eq!(backups, 1);
        let first = p
            .graph
            .ordered()
            .iter()
            .find(|s| matches!(s, Step::UpgradeNode { .. }))
            .map(|s| s.id().to_string());
        assert_eq!(first.as_deref(), Some("upgrade/bettley@v1.33"));
        assert_eq!(
            p.graph
                .dependencies(&"upgrade/bettley@v1.33".parse().unwrap()),
            [StepId::BackupEtcd]
        );
        // The second rung's first control plane follows the first rung, not
        // a backup of its own.
        assert!(!p
            .graph
            .dependencies(&"upgrade/bettley@v1.34.2".parse().unwrap())
            .contains(&StepId::BackupEtcd));
    }

    #[test]
    fn the_last_batch_of_a_rung_holds_back_the_next_rungs_first_control_plane() {
        let mut spec = at_1_33();
        spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.34.2").unwrap();
        spec.upgrade.max_unavailable = MaxUnavailable::Count(4);
        let p = plan(&spec, &facts("upgrade-at-1.32"), &PlanOptions::default()).unwrap();
        let deps: Vec<String> = p
            .graph
            .dependencies(&"upgrade/bettley@v1.34.2".parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        // 9 workers by 4: the third batch is velaryon alone.
        assert_eq!(deps, ["upgrade/velaryon@v1.33"]);
        assert_eq!(
            p.graph
                .dependencies(&"upgrade/velaryon@v1.33".parse().unwrap())
                .len(),
            4
        );
    }

    #[test]
    fn a_share_of_workers_counts_the_workers_that_stay() {
        let mut spec = at_1_33();
        spec.upgrade.max_unavailable = MaxUnavailable::Percent(34);
        let leaving = spec.workers().last().map(|n| n.name.to_string()).unwrap();
        let spec = crate::plan::tests::with_state(&spec, &leaving, crate::spec::NodeState::Absent);
        let staying = spec.workers().count();
        let d = crate::plan::diff::diff(&spec, &facts("upgrade-at-1.32"), &PlanOptions::default())
            .unwrap();
        let first = &d.upgrade.rungs[0].batches[0];
        // 34% of the 8 workers that stay is 2; of all 9 in the file, 3.
        assert_eq!(staying, 8);
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(d
            .upgrade
            .rungs
            .iter()
            .flat_map(|r| r.batches.iter().flatten())
            .all(|n| n.as_str() != leaving));
    }
}
