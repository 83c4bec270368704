//! Spec × Observed → resource changes, warnings, and the operations the DAG
//! is built from. Every decision about what a situation means lives here.

use super::node_change::StepsGo;
use super::seen::Seen;
use super::*;
use crate::facts::{HostFacts, NodeFacts, ReadyStatus};
use crate::spec::Node;

/// What the graph builder needs, besides the changes shown to the user.
#[derive(Debug, Default)]
pub(super) struct Diff {
    pub changes: Vec<Change>,
    pub warnings: Vec<Warning>,
    /// `kubeadm init` on this node (the cluster does not exist yet).
    pub init: Option<NodeName>,
    pub install_cni: bool,
    /// Control planes already serving (or about to be, by init), file order.
    pub existing_control_planes: Vec<NodeName>,
    /// Control planes to join, file order (joined one at a time).
    pub control_plane_joins: Vec<NodeName>,
    /// Workers to join, file order (joined in parallel).
    pub worker_joins: Vec<NodeName>,
    /// Nodes to take out before they are rejoined (replace): drain+delete when
    /// their Node object is in this cluster, then reset.
    pub replacements: Vec<Removal>,
    /// Label/taint updates, file order; `after_join` when the node is new.
    pub updates: Vec<Update>,
    /// Joined hosts whose kubelet is not active, file order.
    pub kubelet_starts: Vec<NodeName>,
    /// Nodes to remove for good, in order (control planes first, one at a time).
    pub removals: Vec<Removal>,
    /// Managed hosts to prepare, file order, with their work.
    pub hosts: Vec<(NodeName, super::HostWork)>,
    /// Host preparations that would reboot a host the file does not allow to.
    refused_reboots: Vec<PlanError>,
    /// etcd members no control plane owns, removed before the control-plane
    /// removals (they are dead: the unhealthy leave first).
    pub member_removals: Vec<MemberRemoval>,
    /// An etcd backup before the first step that changes etcd's membership.
    pub backup_etcd: bool,
    /// The version upgrade's ladder (plan/upgrade.rs).
    pub upgrade: super::upgrade::Upgrade,
}

/// `etcdctl member remove` through a healthy control plane's etcd pod.
#[derive(Debug, Clone)]
pub(super) struct MemberRemoval {
    /// Hex, as etcdctl prints it.
    pub id: String,
    pub name: String,
    pub via: NodeName,
}

impl MemberRemoval {
    pub fn step(&self) -> Step {
        Step::RemoveEtcdMember {
            member: self.id.clone(),
            name: self.name.clone(),
            via: self.via.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Update {
    pub node: NodeName,
    pub labels: SetDiff<Label>,
    pub taints: SetDiff<Taint>,
}

#[derive(Debug, Clone)]
pub(super) struct Removal {
    pub node: NodeName,
    /// The Node object is in the cluster: drain, then delete it.
    pub in_cluster: bool,
    /// The host is reachable and in the file: `kubeadm reset -f` it.
    pub reset: Option<NodeName>,
    pub control_plane: bool,
    /// Its etcd member, when `kubeadm reset` cannot remove it (the host is
    /// not reset, or its Node is gone already).
    pub etcd_member: Option<MemberRemoval>,
}

impl Removal {
    /// kubeadm's order: drain → reset → delete the Node (reset removes the
    /// etcd member only while it can still read the node's registration);
    /// a member reset cannot remove goes before the Node.
    pub fn step_ids(&self) -> Vec<StepId> {
        let mut ids = Vec::new();
        if self.in_cluster {
            ids.push(StepId::Drain(self.node.clone()));
        }
        if let Some(n) = &self.reset {
            ids.push(StepId::Reset(n.clone()));
        }
        if let Some(m) = &self.etcd_member {
            ids.push(StepId::RemoveEtcdMember(m.id.clone()));
        }
        if self.in_cluster {
            ids.push(StepId::DeleteNode(self.node.clone()));
        }
        ids
    }
}

fn sorted_labels(labels: impl Iterator<Item = Label>) -> Vec<Label> {
    let mut v: Vec<Label> = labels.collect();
    v.sort();
    v
}

/// An observed taint as cluster.toml's type; the API server admits only
/// the three effects, so `None` is for a server gt does not understand.
fn observed_taint(t: &crate::facts::ObservedTaint) -> Option<Taint> {
    Some(Taint {
        key: t.key.clone(),
        value: t.value.clone(),
        effect: crate::spec::TaintEffect::parse(&t.effect)?,
    })
}

/// `observed` is `want` (compared in place: no copy of each node's taint).
fn is_taint(observed: &crate::facts::ObservedTaint, want: &Taint) -> bool {
    observed.key == want.key
        && observed.value == want.value
        && crate::spec::TaintEffect::parse(&observed.effect) == Some(want.effect)
}

/// Shortened CA pin for messages: `sha256:3f2a…9c1d`.
fn short_pin(p: &str) -> String {
    let hex = p.strip_prefix("sha256:").unwrap_or(p);
    // Counted in characters: a facts file may hold anything here.
    let chars: Vec<char> = hex.chars().collect();
    if chars.len() > 12 {
        let head: String = chars[..8].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("sha256:{head}…{tail}")
    } else {
        p.to_string()
    }
}

pub(super) struct Cx<'a> {
    pub(super) spec: &'a Spec,
    pub(super) obs: &'a Observed,
    pub(super) opts: &'a PlanOptions,
    /// The label and taint keys gt owns (spec/ownership.rs).
    owner: &'a crate::spec::KeyOwnership,
    pub(super) out: Diff,
    /// Where each node of the file has its update among `out.changes`, by
    /// the node's place in the file (plan/node_change.rs).
    pub(super) node_updates: Vec<Option<usize>>,
    /// Each node of the file with its facts, file order (plan/seen.rs).
    pub(super) seen: Vec<Seen<'a>>,
    /// Every Node of the cluster with a control plane's labels, once every
    /// node of the file was visited (plan/seen.rs).
    pub(super) cluster_control_planes: Vec<&'a NodeFacts>,
    /// The file's present workers, counted as the main loop visits them
    /// (an upgrade's share of workers is of these).
    pub(super) present_workers: usize,
}

pub(super) fn diff(spec: &Spec, obs: &Observed, opts: &PlanOptions) -> Result<Diff, PlanError> {
    let mut cx = compare(spec, obs, opts)?;
    if let Some(e) = cx.out.refused_reboots.first() {
        return Err(e.clone());
    }
    if let Some(e) = cx.out.upgrade.refusals.first() {
        return Err(e.clone());
    }
    match cx.check_etcd_quorum() {
        Some(checked) => checked?,
        None => cx.check_quorum()?,
    }
    cx.out.backup_etcd = super::backup::wanted(&cx.out, spec, opts);
    Ok(cx.out)
}

/// The differences, without asking whether the removals they imply could be
/// carried out (etcd's quorum): what `gt drift` reports. A file whose
/// removals `gt plan` refuses has drifted all the same.
pub(super) fn differences(
    spec: &Spec,
    obs: &Observed,
    opts: &PlanOptions,
) -> Result<Diff, PlanError> {
    compare(spec, obs, opts).map(|cx| cx.out)
}

fn compare<'a>(
    spec: &'a Spec,
    obs: &'a Observed,
    opts: &'a PlanOptions,
) -> Result<Cx<'a>, PlanError> {
    let mut observed = super::seen::seen(spec, obs, &opts.replace);
    let mut cx = Cx {
        spec,
        obs,
        opts,
        owner: &spec.owned_keys,
        out: Diff::default(),
        node_updates: vec![None; spec.nodes.len()],
        seen: std::mem::take(&mut observed.seen),
        cluster_control_planes: Vec::new(),
        present_workers: 0,
    };
    cx.check_observable()?;
    cx.cluster();
    // One visit per node: what the upgrade and the host plans read of a
    // node is gathered while its facts are at hand. A pass of its own
    // each, at thousands of nodes, found them out of the cache again.
    let release = cx.upgrade_release();
    // Sized once: at thousands of nodes, growing it by doubling copied
    // three times its size through memory the plan had not touched yet.
    let mut members = Vec::with_capacity(if release.is_some() { cx.seen.len() } else { 0 });
    let mut prepared = Vec::with_capacity(cx.seen.len());
    // Control planes of the file whose Node is one, file order: gathered
    // here rather than by a pass of their own over every node of the file.
    let mut serving = Vec::new();
    let cluster_exists = cx.obs.cluster.exists();
    for i in 0..cx.seen.len() {
        cx.seen[i].look();
        let node = cx.seen[i];
        if node.node.is_present() {
            if !node.node.is_control_plane() {
                cx.present_workers += 1;
            } else if cluster_exists && node.obj_control_plane {
                // Before the visit: a replacement takes it out again.
                cx.out.existing_control_planes.push(node.node.name.clone());
                serving.push(node.node.name.clone());
            }
            cx.present_node(node)?;
            if release.is_some() {
                members.extend(Cx::member(node));
            }
            if super::host::may_plan(node.node, node.host) {
                prepared.push(node);
            }
        } else {
            cx.absent_node(node);
        }
    }
    if cluster_exists {
        cx.api_server_warnings(&serving);
    }
    cx.cluster_control_planes = observed.control_planes(&cx.seen);
    cx.nodes_not_in_file();
    if let Some(current) = release {
        cx.upgrade(current, members);
    }
    cx.hosts(&prepared);
    cx.order_removals();
    cx.drain_predictions();
    cx.etcd();
    cx.out.warnings.sort();
    Ok(cx)
}

impl<'a> Cx<'a> {
    /// The `host` resources of managed nodes (plan/host.rs): `prepared`,
    /// the present nodes `host::may_plan` let through, file order.
    fn hosts(&mut self, prepared: &[Seen<'a>]) {
        if prepared.is_empty() {
            return;
        }
        let target = super::host::target(self.spec, self.obs, &self.cluster_control_planes);
        for &Seen { node, at, host, .. } in prepared {
            let Some(facts) = host else {
                continue;
            };
            let upgrading = !self.out.upgrade.rungs.is_empty() && self.out.upgrade.covers(at);
            let planned = super::host::plan_host(self.spec, node, facts, target);
            let planned = match planned {
                Some(p) if upgrading => super::upgrade::leave_kube_packages(p),
                p => p,
            };
            if let Some(p) = planned {
                self.out.changes.push(p.change);
                self.out.hosts.push((p.node, p.work));
                self.out.refused_reboots.extend(p.refused_reboot);
            }
        }
    }

    pub(super) fn host(&self, name: &str) -> Option<&'a HostFacts> {
        self.obs.hosts.get(name)
    }

    /// `short`: the fact in a few words, without the node's name (a `gt
    /// drift` line); `message`: the whole sentence, with what to do.
    pub(super) fn warn(
        &mut self,
        node: Option<&NodeName>,
        kind: WarningKind,
        short: String,
        message: String,
    ) {
        self.out.warnings.push(Warning {
            node: node.cloned(),
            kind,
            message,
            short,
        });
    }

    /// Control planes that hold a cluster's files while no API answered: planning
    /// a fresh init then would clobber a cluster we merely failed to see.
    fn check_observable(&self) -> Result<(), PlanError> {
        if self.obs.cluster.exists() {
            return Ok(());
        }
        let holders: Vec<&str> = self
            .spec
            .control_planes()
            .filter(|n| !self.opts.replace.contains(n.name.as_str()))
            .filter(|n| {
                self.host(n.name.as_str()).is_some_and(|h| {
                    h.is_reachable() && (h.admin_conf || h.has_control_plane_manifests())
                })
            })
            .map(|n| n.name.as_str())
            .collect();
        if holders.is_empty() {
            return Ok(());
        }
        let api_error = self
            .obs
            .cluster
            .api
            .error
            .clone()
            .unwrap_or_else(|| "no answer".into());
        if let Some(why) = self.etcd_lost_quorum_without_api() {
            return Err(PlanError::EtcdDown {
                why,
                api: api_error,
            });
        }
        Err(PlanError::ClusterUnobservable {
            have: if holders.len() == 1 { "has" } else { "have" },
            hosts: holders.join(", "),
            error: api_error,
        })
    }

    fn cluster(&mut self) {
        let spec = self.spec;
        let c = &spec.cluster;
        let address = Resource::Cluster(c.name.clone());
        if !self.obs.cluster.exists() {
            self.new_cluster(address);
            return;
        }
        // Control planes already in the cluster (`existing_control_planes`)
        // are gathered as the main loop visits each node, and their own API
        // servers' warnings then (`api_server_warnings`).
        // A node waits for the pod network after every join, until the CNI's
        // agent starts on it: the CNI is missing only when no node has a
        // network at all (asked first: the first Ready node ends the look).
        let some_ready = self
            .obs
            .cluster
            .nodes
            .values()
            .any(|n| n.ready == ReadyStatus::True);
        let waiting: Vec<&str> = if some_ready {
            vec![]
        } else {
            self.obs
                .cluster
                .nodes
                .iter()
                .filter(|(_, n)| n.waits_for_cni())
                .map(|(name, _)| name.as_str())
                .collect()
        };
        if !waiting.is_empty() && !some_ready {
            self.out.install_cni = true;
            self.out.changes.push(Change {
                resource: address,
                action: Action::Update,
                reason: format!(
                    "the pod network is not ready on {}: install the CNI ({})",
                    waiting.join(", "),
                    c.cni.name
                ),
                role: None,
                attributes: vec![("cni".into(), c.cni.name.clone())],
                labels: SetDiff::default(),
                taints: SetDiff::default(),
                host: vec![],
                steps: vec![Step::InstallCni.id()],
            });
        }
        let api = &self.obs.cluster.api;
        if !api.ready {
            let via = self.obs.cluster.observed_via.clone().unwrap_or_default();
            let why = if !api.failed_checks.is_empty() {
                format!("failing checks: {}", api.failed_checks.join(", "))
            } else {
                api.error.clone().unwrap_or_else(|| "not ready".into())
            };
            self.warn(
                None,
                WarningKind::ApiNotReady,
                format!(
                    "API server not ready through the endpoint {}: {why}",
                    c.endpoint
                ),
                format!(
                    "the API server is not ready through the endpoint {} (asked via {via}): {why}; joins will wait at the readiness gate",
                    c.endpoint
                ),
            );
        }
    }

    /// No cluster yet: `kubeadm init` on the bootstrap node, then the CNI.
    fn new_cluster(&mut self, address: Resource) {
        let spec = self.spec;
        let c = &spec.cluster;
        let boot = spec.bootstrap_node();
        self.out.init = Some(boot.name.clone());
        self.out.install_cni = true;
        self.out.existing_control_planes.push(boot.name.clone());
        self.out.changes.push(Change {
            resource: address,
            action: Action::Create,
            reason: format!("no cluster yet: kubeadm init on {}", boot.name),
            role: None,
            attributes: vec![
                ("bootstrap".into(), boot.name.to_string()),
                ("endpoint".into(), c.endpoint.to_string()),
                (
                    "kubernetes_version".into(),
                    c.kubernetes_version.to_string(),
                ),
                ("pod_cidr".into(), c.pod_cidr.to_string()),
                ("service_cidr".into(), c.service_cidr.to_string()),
                ("cni".into(), c.cni.name.clone()),
            ],
            labels: SetDiff::default(),
            taints: SetDiff::default(),
            host: vec![],
            steps: vec![
                Step::Init {
                    node: boot.name.clone(),
                }
                .id(),
                Step::InstallCni.id(),
            ],
        });
    }

    /// Each control plane in the cluster whose own API server is not ready
    /// (the endpoint may still answer through the others); `serving`: the
    /// file's control planes whose Node is one, replaced or not.
    fn api_server_warnings(&mut self, serving: &[NodeName]) {
        let unready: Vec<(NodeName, String, String)> = serving
            .iter()
            .filter_map(|name| {
                let r = self.obs.cluster.api_servers.get(name.as_str())?;
                if r.ready {
                    return None;
                }
                let why = if !r.failed_checks.is_empty() {
                    format!("failing checks: {}", r.failed_checks.join(", "))
                } else {
                    r.error.clone().unwrap_or_else(|| "not ready".into())
                };
                let node = self.spec.node(name.as_str())?;
                Some((node.name.clone(), node.address.to_string(), why))
            })
            .collect();
        for (name, address, why) in unready {
            self.warn(
                Some(&name),
                WarningKind::ApiNotReady,
                format!("API server not ready: {why}"),
                format!(
                    "the API server on {name} ({address}:6443) is not ready: {why}; check it with `gt exec {name} -- crictl ps --name kube-apiserver` and its kubelet's log"
                ),
            );
        }
    }

    fn desired_labels(node: &Node) -> Vec<Label> {
        sorted_labels(node.labels.iter().map(|(k, v)| Label {
            key: k.clone(),
            value: v.clone(),
        }))
    }

    fn desired_taints(node: &Node) -> Vec<Taint> {
        node.taints.clone()
    }

    fn node_attributes(&self, node: &Node) -> Vec<(String, String)> {
        let mut a = vec![
            ("role".into(), node.role.to_string()),
            ("address".into(), node.address.to_string()),
            ("arch".into(), node.arch.to_string()),
        ];
        if node.name == self.spec.cluster.bootstrap && self.out.init.is_some() {
            a.push(("bootstrap".into(), "true".into()));
        }
        a
    }

    fn present_node(&mut self, seen: Seen<'a>) -> Result<(), PlanError> {
        let Seen {
            node,
            host,
            obj: in_cluster,
            replace,
            ..
        } = seen;
        let name = node.name.as_str();

        if let Some(h) = host {
            if let Some(reason) = &h.unreachable {
                self.warn(
                    Some(&node.name),
                    WarningKind::Unreachable,
                    format!("unreachable: {reason}"),
                    format!("{name} is unreachable: {reason}"),
                );
            }
        }

        if let Some(obj) = in_cluster {
            self.node_in_cluster(seen, obj);
            return Ok(());
        }

        // Not in the cluster.
        let Some(h) = host.filter(|h| h.is_reachable()) else {
            let reason = host
                .and_then(|h| h.unreachable.clone())
                .unwrap_or_else(|| "no facts were recorded for it".into());
            if self.out.init.as_ref() == Some(&node.name) {
                return Err(PlanError::BootstrapUnreachable {
                    node: node.name.clone(),
                    reason,
                });
            }
            if host.is_none() {
                self.warn(
                    Some(&node.name),
                    WarningKind::Unreachable,
                    format!("not observed: {reason}"),
                    format!("{name} was not observed ({reason}); its join cannot be planned"),
                );
            } else {
                // The unreachable warning is already recorded; say what it blocks.
                if let Some(w) = self.out.warnings.last_mut() {
                    w.message
                        .push_str("; its join cannot be planned until it answers");
                }
            }
            return Ok(());
        };

        if h.is_joined() {
            self.joined_but_not_in_cluster(node, h, replace);
            return Ok(());
        }

        self.create(node);
        Ok(())
    }

    /// A node of the file whose Node is in the cluster: replaced (with
    /// consent) when its host moved to another cluster or its role differs,
    /// else brought in line with the file.
    fn node_in_cluster(&mut self, seen: Seen<'a>, obj: &NodeFacts) {
        let Seen {
            node,
            at,
            host,
            obj_control_plane,
            replace,
            ..
        } = seen;
        let name = node.name.as_str();
        // The host carries another cluster's CA although its Node is here:
        // it was re-joined elsewhere behind our back.
        let foreign_pin = self.foreign_pin(host);
        let role_differs = obj_control_plane != node.is_control_plane();
        if foreign_pin.is_some() || role_differs {
            let observed_role = if obj_control_plane {
                "control plane"
            } else {
                "worker"
            };
            let why = match &foreign_pin {
                Some(p) => {
                    format!("{name} now carries another cluster's CA ({})", short_pin(p))
                }
                None => format!(
                    "{name} is a {} in the cluster but a {} in cluster.toml",
                    observed_role, node.role
                ),
            };
            if replace {
                self.replace(node, true, format!("{why} (--replace)"));
            } else {
                let short = match &foreign_pin {
                    Some(p) => {
                        format!("joined to another cluster (its CA is {})", short_pin(p))
                    }
                    None => format!(
                        "a {} in the cluster, a {} in cluster.toml",
                        observed_role, node.role
                    ),
                };
                self.warn(
                    Some(&node.name),
                    if foreign_pin.is_some() { WarningKind::OtherCluster } else { WarningKind::RoleMismatch },
                    short,
                    format!("{why}; gt changes neither without consent: run with --replace {name} to reset it and join it again"),
                );
            }
            return;
        }
        self.update_if_drifted(at, node, obj);
        self.start_kubelet_if_stopped(at, node, host);
        self.health_warnings(node, obj, host);
    }

    /// A reachable host with kubeadm state whose Node is not in the
    /// cluster: another cluster's (left alone without --replace), or this
    /// cluster's leftovers (reset and joined again).
    fn joined_but_not_in_cluster(&mut self, node: &Node, h: &HostFacts, replace: bool) {
        let name = node.name.as_str();
        let foreign = self.foreign_pin(Some(h)).or_else(|| {
            // No cluster yet but the host has joined one: that one is not ours.
            (!self.obs.cluster.exists())
                .then(|| h.ca_pin.clone().unwrap_or_else(|| "unknown".into()))
        });
        match foreign {
            Some(pin) if !replace => {
                self.warn(
                    Some(&node.name),
                    WarningKind::OtherCluster,
                    format!("joined to another cluster (its CA is {})", short_pin(&pin)),
                    format!(
                        "{name} belongs to another cluster (CA pin {}{}); gt will not touch it. To reset it and join it here: --replace {name}",
                        short_pin(&pin),
                        self.obs
                            .cluster
                            .ca_pin
                            .as_deref()
                            .map(|p| format!(", this cluster's is {}", short_pin(p)))
                            .unwrap_or_default()
                    ),
                );
            }
            Some(pin) => {
                self.replace(
                    node,
                    false,
                    format!(
                        "{name} belongs to another cluster (CA pin {}); reset and join here (--replace)",
                        short_pin(&pin)
                    ),
                );
            }
            None => {
                self.replace(
                    node,
                    false,
                    format!(
                        "{name} has this cluster's kubeadm state but no Node object: reset it and join it again"
                    ),
                );
            }
        }
    }

    /// The host's CA pin when it differs from the cluster's.
    fn foreign_pin(&self, host: Option<&HostFacts>) -> Option<String> {
        let h = host?;
        let mine = self.obs.cluster.ca_pin.as_deref()?;
        let theirs = h.ca_pin.as_deref()?;
        (theirs != mine).then(|| theirs.to_string())
    }

    fn create(&mut self, node: &Node) {
        let is_init = self.out.init.as_ref() == Some(&node.name);
        let join = if is_init {
            Step::Init {
                node: node.name.clone(),
            }
        } else if node.is_control_plane() {
            self.out.control_plane_joins.push(node.name.clone());
            Step::JoinControlPlane {
                node: node.name.clone(),
            }
        } else {
            self.out.worker_joins.push(node.name.clone());
            Step::JoinWorker {
                node: node.name.clone(),
            }
        };
        let labels = SetDiff {
            before: vec![],
            after: Self::desired_labels(node),
        };
        let taints = SetDiff {
            before: vec![],
            after: Self::desired_taints(node),
        };
        let mut steps = vec![join.id()];
        // kubeadm registers the Node with its taints and the labels its
        // kubelet may set on itself (`kube::kubeadm::join_config`): only
        // other labels need kubectl after the join.
        let after_join = SetDiff {
            before: vec![],
            after: labels
                .after
                .iter()
                .filter(|l| !l.key.kubelet_may_set())
                .cloned()
                .collect(),
        };
        if !after_join.is_empty() {
            self.out.updates.push(Update {
                node: node.name.clone(),
                labels: after_join,
                taints: SetDiff {
                    before: vec![],
                    after: vec![],
                },
            });
            steps.push(StepId::Update(node.name.clone()));
        }
        let reason = if is_init {
            "not in a cluster: kubeadm init registers it as the first control plane".to_string()
        } else if node.is_control_plane() {
            "not in the cluster: join as a control plane".to_string()
        } else {
            "not in the cluster: join as a worker".to_string()
        };
        self.out.changes.push(Change {
            resource: Resource::Node(node.name.clone()),
            action: Action::Create,
            reason,
            role: Some(node.role),
            attributes: self.node_attributes(node),
            labels,
            taints,
            host: vec![],
            steps,
        });
    }

    /// `-/+`: take the node out (drain/delete if its Node is here, reset), join again.
    fn replace(&mut self, node: &Node, in_cluster: bool, reason: String) {
        // Reset before it joins again: no readiness gate may wait for its API server.
        self.out.existing_control_planes.retain(|n| n != &node.name);
        let removal = Removal {
            node: node.name.clone(),
            in_cluster,
            reset: Some(node.name.clone()),
            control_plane: node.is_control_plane(),
            etcd_member: None,
        };
        let before = self.changes_len();
        self.create(node);
        let created = self.out.changes.pop().expect("create pushed a change");
        debug_assert_eq!(self.changes_len(), before);
        let mut steps = removal.step_ids();
        steps.extend(created.steps);
        self.out.replacements.push(removal);
        self.out.changes.push(Change {
            action: Action::Replace,
            reason,
            host: vec![],
            steps,
            ..created
        });
    }

    fn changes_len(&self) -> usize {
        self.out.changes.len()
    }

    fn update_if_drifted(&mut self, at: usize, node: &Node, obj: &NodeFacts) {
        // Most Nodes match the file: tell so without building the two sets
        // (both label maps are sorted by key; a node has at most one taint
        // almost always). Anything else is decided by the sets below.
        let mut owned_labels = obj.labels.iter().filter(|(k, _)| self.owner.owns(k));
        let labels_match = node.labels.iter().all(|(k, v)| {
            owned_labels
                .next()
                .is_some_and(|(ok, ov)| ok == k.as_str() && ov == v)
        }) && owned_labels.next().is_none();
        let mut owned_taints = obj.taints.iter().filter(|t| self.owner.owns(&t.key));
        let taints_match = match node.taints.as_slice() {
            [] => owned_taints.next().is_none(),
            [want] => {
                owned_taints.next().is_some_and(|t| is_taint(t, want))
                    && owned_taints.next().is_none()
            }
            _ => false,
        };
        if labels_match && taints_match {
            return;
        }
        let labels = SetDiff {
            // The API server accepted these keys, so they parse as cluster.toml's do.
            before: sorted_labels(
                obj.labels
                    .iter()
                    .filter(|(k, _)| self.owner.owns(k))
                    .filter_map(|(k, v)| Label::new(k, v)),
            ),
            after: Self::desired_labels(node),
        };
        let mut observed_taints: Vec<Taint> = obj
            .taints
            .iter()
            .filter(|t| self.owner.owns(&t.key))
            .filter_map(observed_taint)
            .collect();
        observed_taints.sort_by_cached_key(ToString::to_string);
        let taints = SetDiff {
            before: observed_taints,
            after: Self::desired_taints(node),
        };
        if labels.is_empty() && taints.is_empty() {
            return;
        }
        let what = match (labels.is_empty(), taints.is_empty()) {
            (false, false) => "labels and taints differ",
            (false, true) => "labels differ",
            _ => "taints differ",
        };
        self.out.updates.push(Update {
            node: node.name.clone(),
            labels: labels.clone(),
            taints: taints.clone(),
        });
        self.push_node_update(
            at,
            Change {
                resource: Resource::Node(node.name.clone()),
                action: Action::Update,
                reason: format!("{what} from cluster.toml"),
                role: Some(node.role),
                attributes: vec![],
                labels,
                taints,
                host: vec![],
                steps: vec![StepId::Update(node.name.clone())],
            },
        );
    }

    /// A joined, reachable host whose kubelet is installed but not active
    /// (stopped by hand, crashed for good): the file wants the node in the
    /// cluster, so start it. One change per node: merged into its update.
    fn start_kubelet_if_stopped(&mut self, at: usize, node: &Node, host: Option<&HostFacts>) {
        let Some(h) = host else { return };
        if !h.is_reachable() || h.kubelet_active || !h.is_joined() || h.kubelet_version.is_none() {
            return;
        }
        self.out.kubelet_starts.push(node.name.clone());
        let step = Step::StartKubelet {
            node: node.name.clone(),
        }
        .id();
        self.merge_node_change(
            at,
            node,
            "kubelet not active: start it",
            vec![("kubelet".into(), "active".into())],
            vec![step],
            StepsGo::First,
        );
    }

    fn health_warnings(&mut self, node: &Node, obj: &NodeFacts, host: Option<&HostFacts>) {
        let name = node.name.as_str();
        if obj.ready != ReadyStatus::True && !(obj.waits_for_cni() && self.out.install_cni) {
            let reason = obj.ready_reason.as_deref().unwrap_or("no reason given");
            let status = match obj.ready {
                ReadyStatus::False => "False",
                _ => "Unknown",
            };
            let kubelet_stopped = host.is_some_and(|h| h.is_reachable() && !h.kubelet_active);
            let apply_starts_it = self.out.kubelet_starts.contains(&node.name);
            let (kubelet, short_tail) = match (kubelet_stopped, apply_starts_it) {
                // The start is a drift item of its own: the short line leaves it out.
                (true, true) => ("; its kubelet is not active (apply starts it)".into(), ""),
                (true, false) => (
                    format!("; its kubelet is not active (`gt exec {name} -- systemctl start kubelet`)"),
                    "; kubelet not active",
                ),
                _ if obj.waits_for_cni() => (
                    "; its pod network is not ready yet (the CNI's agent may still be starting on it)"
                        .into(),
                    "",
                ),
                _ => (String::new(), ""),
            };
            let short = format!("NotReady (Ready={status}, {reason}){short_tail}");
            self.warn(
                Some(&node.name),
                WarningKind::NotReady,
                short,
                format!("{name} is NotReady (Ready={status}, {reason}){kubelet}"),
            );
        }
        // Versions are the upgrade's (plan/upgrade.rs): steps for the
        // nodes gt upgrades, a warning with what to run for the others.
        let observed_arch = obj
            .arch
            .as_deref()
            .or_else(|| host.and_then(|h| h.arch.as_deref()));
        if let Some(a) = observed_arch {
            if a != node.arch.as_str() {
                self.warn(
                    Some(&node.name),
                    WarningKind::ArchMismatch,
                    format!("arch {a} (want {})", node.arch),
                    format!(
                        "{name} reports arch {a} but cluster.toml says {}; fix arch in [nodes.{name}]",
                        node.arch
                    ),
                );
            }
        }
    }

    fn absent_node(&mut self, seen: Seen<'a>) {
        let Seen {
            node,
            host,
            obj: in_cluster,
            obj_control_plane,
            ..
        } = seen;
        let name = node.name.as_str();
        let reachable = host.is_some_and(HostFacts::is_reachable);
        let host_joined_here =
            reachable && host.is_some_and(|h| h.is_joined()) && self.foreign_pin(host).is_none();
        if in_cluster.is_none() && !host_joined_here {
            return;
        }
        let control_plane = obj_control_plane || (in_cluster.is_none() && node.is_control_plane());
        let removal = Removal {
            node: node.name.clone(),
            in_cluster: in_cluster.is_some(),
            // A host that now carries another cluster's CA is not ours to reset.
            reset: host_joined_here.then(|| node.name.clone()),
            control_plane,
            etcd_member: None,
        };
        let reason = if in_cluster.is_some() {
            if removal.reset.is_none() && !reachable {
                self.warn(
                    Some(&node.name),
                    WarningKind::Unreachable,
                    "unreachable: cannot be reset".to_string(),
                    format!("{name} will be drained and deleted, but not reset: its host is unreachable; run `kubeadm reset -f` on it when it is back"),
                );
                "state = \"absent\" in cluster.toml: drain and delete (no reset: its host is unreachable)".to_string()
            } else if removal.reset.is_none() && self.foreign_pin(host).is_some() {
                "state = \"absent\" in cluster.toml: drain and delete (no reset: its host now belongs to another cluster)".to_string()
            } else if removal.reset.is_none() {
                "state = \"absent\" in cluster.toml: drain and delete (its host holds no kubeadm state to reset)".to_string()
            } else {
                "state = \"absent\" in cluster.toml: drain, reset, delete".to_string()
            }
        } else {
            "state = \"absent\" in cluster.toml, and the host still carries kubeadm state: reset"
                .to_string()
        };
        self.out.changes.push(Change {
            resource: Resource::Node(node.name.clone()),
            action: Action::Delete,
            reason,
            role: Some(node.role),
            attributes: vec![],
            labels: SetDiff::default(),
            taints: SetDiff::default(),
            host: vec![],
            steps: removal.step_ids(),
        });
        self.out.removals.push(removal);
    }

    fn nodes_not_in_file(&mut self) {
        // Each Node the file names was found already: when those are all the
        // cluster has, no other is left to look for.
        let in_file = self.seen.iter().filter(|s| s.obj.is_some()).count();
        if in_file == self.obs.cluster.nodes.len() {
            return;
        }
        // The API server admits only DNS-subdomain names, as cluster.toml does.
        let unknown: Vec<(NodeName, bool)> = self
            .obs
            .cluster
            .nodes
            .iter()
            .filter(|(name, _)| self.spec.node(name).is_none())
            .filter_map(|(name, n)| {
                Some((NodeName::try_from(name.clone()).ok()?, n.is_control_plane()))
            })
            .collect();
        for (name, control_plane) in unknown {
            if !self.opts.prune {
                self.warn(
                    Some(&name),
                    WarningKind::NotInFile,
                    "in the cluster but not in cluster.toml".to_string(),
                    format!("{name} is in the cluster but not in cluster.toml; add it to the file, or remove it with --prune"),
                );
                continue;
            }
            let removal = Removal {
                node: name.clone(),
                in_cluster: true,
                reset: None,
                control_plane,
                etcd_member: None,
            };
            self.out.changes.push(Change {
                resource: Resource::Node(name),
                action: Action::Delete,
                reason: "not in cluster.toml (--prune): drain and delete; gt cannot reach its host to reset it".into(),
                role: Some(if control_plane { Role::ControlPlane } else { Role::Worker }),
                attributes: vec![],
                labels: SetDiff::default(),
                taints: SetDiff::default(),
                host: vec![],
                steps: removal.step_ids(),
            });
            self.out.removals.push(removal);
        }
    }

    /// Whether a control plane counts towards etcd's healthy majority: its
    /// Node is Ready, its host answered and its own API server is ready, when
    /// gt observed them. The API server of a stacked control plane talks to
    /// its local etcd member only: a failing `etcd` check there is that
    /// member; any other unready API server is counted out too (to be safe
    /// when the next step removes a member).
    pub(super) fn healthy_control_plane(&self, name: &str, node: &NodeFacts) -> bool {
        self.etcd_member_healthy(name).unwrap_or(true)
            && node.ready == ReadyStatus::True
            && self.host(name).is_none_or(HostFacts::is_reachable)
            && self
                .obs
                .cluster
                .api_servers
                .get(name)
                .is_none_or(|a| a.ready)
    }

    /// Why a control plane does not count as healthy, for the refusal.
    pub(super) fn unhealthy_reason(&self, name: &str, node: &NodeFacts) -> String {
        if let Some(why) = self.host(name).and_then(|h| h.unreachable.as_deref()) {
            return format!("{name} is unreachable ({why})");
        }
        if node.ready == ReadyStatus::True {
            if let Some(api) = self.obs.cluster.api_servers.get(name).filter(|a| !a.ready) {
                let why = if api.failed_checks.is_empty() {
                    api.error.clone().unwrap_or_else(|| "not ready".into())
                } else {
                    format!("failing checks: {}", api.failed_checks.join(", "))
                };
                return format!("{name}'s API server is not ready ({why})");
            }
        }
        let status = match node.ready {
            ReadyStatus::True => "True",
            ReadyStatus::False => "False",
            ReadyStatus::Unknown => "Unknown",
        };
        format!(
            "{name} is NotReady (Ready={status}, {})",
            node.ready_reason.as_deref().unwrap_or("no reason given")
        )
    }

    /// Control planes that leave and are not healthy go first: each removal
    /// is an etcd membership change, committed by a majority of the members
    /// of that moment, and a dead member that stays counts against it.
    fn order_removals(&mut self) {
        let nodes = &self.obs.cluster.nodes;
        let healthy: BTreeSet<NodeName> = self
            .out
            .removals
            .iter()
            .filter(|r| {
                nodes
                    .get(r.node.as_str())
                    .is_some_and(|n| self.healthy_control_plane(r.node.as_str(), n))
            })
            .map(|r| r.node.clone())
            .collect();
        self.out
            .removals
            .sort_by_key(|r| (!r.control_plane, healthy.contains(&r.node)));
    }

    /// Removing control planes must keep etcd a healthy majority at every
    /// step. The walk removes them one at a time in `removals` order, after
    /// every join (joining control planes count as healthy members; a join
    /// that fails skips the removals). Replacements leave first, before any
    /// join. For each removal of `x` from the members `m` of that moment:
    /// etcd commits it with a quorum of `m` (`x` votes if healthy), and the
    /// members that stay keep a quorum of their own.
    fn check_quorum(&self) -> Result<(), PlanError> {
        let leaving = |r: &&Removal| r.control_plane && r.in_cluster;
        let replaced: Vec<&str> = self
            .out
            .replacements
            .iter()
            .filter(leaving)
            .map(|r| r.node.as_str())
            .collect();
        let removed: Vec<&str> = self
            .out
            .removals
            .iter()
            .filter(leaving)
            .map(|r| r.node.as_str())
            .collect();
        if replaced.is_empty() && removed.is_empty() {
            return Ok(());
        }
        // Current etcd members (control-plane Nodes) and whether each is healthy.
        let members: BTreeMap<String, bool> = self
            .obs
            .cluster
            .nodes
            .iter()
            .filter(|(_, n)| n.is_control_plane())
            .map(|(name, n)| (name.clone(), self.healthy_control_plane(name, n)))
            .collect();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        super::etcd::play_removals(
            members,
            &owned(&replaced),
            &self.out.control_plane_joins,
            &owned(&removed),
            |n| match self.obs.cluster.nodes.get(n) {
                Some(o) => self.unhealthy_reason(n, o),
                None => format!("{n} is not Ready"),
            },
        )
    }
}
