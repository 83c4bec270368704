//! The steps of a plan's DAG, their typed ids, and what the walker and the
//! renderers need to know about each kind.

use super::RungRelease;
use super::{HostWork, Label, SetDiff};
#[cfg(test)]
use crate::kube::kubeadm::Release;
use crate::spec::{NodeName, Taint};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a step does. Internal steps (token, certs, gates) appear in the DAG,
/// not in the change list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Packages, container runtime and kernel settings of a managed host
    /// (plan/host.rs), before its init or join.
    PrepareHost {
        node: NodeName,
        #[serde(flatten)]
        work: HostWork,
    },
    /// `kubeadm init` on the bootstrap node.
    Init {
        node: NodeName,
    },
    /// `kubectl apply -f` of the CNI manifest.
    InstallCni,
    /// `kubeadm init phase upload-certs --upload-certs`: a fresh certificate key.
    UploadCerts,
    /// `kubeadm token create`: the one short-lived join token of this apply.
    MintToken,
    /// Wait until these control planes' API servers are ready, `/readyz`
    /// through the endpoint is ok, and their Nodes are Ready. One stands
    /// before each control-plane join (etcd grows by one healthy member at a
    /// time) and one before the worker joins.
    GateControlPlaneReady {
        before: GateBefore,
        control_planes: Vec<NodeName>,
    },
    JoinControlPlane {
        node: NodeName,
    },
    JoinWorker {
        node: NodeName,
    },
    /// `systemctl start kubelet` on a joined host whose kubelet is not
    /// active, then wait for its Node to be Ready.
    StartKubelet {
        node: NodeName,
    },
    /// `kubectl label` / `kubectl taint` with the admin kubeconfig.
    UpdateNode {
        node: NodeName,
        labels: SetDiff<Label>,
        taints: SetDiff<Taint>,
    },
    Drain {
        node: NodeName,
    },
    DeleteNode {
        node: NodeName,
    },
    /// `kubeadm reset -f` on the host.
    Reset {
        node: NodeName,
    },
    /// `etcdctl member remove ID` through `via`'s etcd pod: the member of a
    /// control plane whose host cannot be reset, or one no control plane owns.
    RemoveEtcdMember {
        /// Its ID, hex as etcdctl prints it (`id` is the step's own).
        member: String,
        /// The member's name (empty while it never started).
        name: String,
        via: NodeName,
    },
    /// `kubeadm token delete`.
    RevokeToken,
    /// An etcd backup to the operator's machine (`gt backup`), before the
    /// first step that changes etcd's membership.
    BackupEtcd,
    /// `gt restore`: the snapshot (and etcdutl, if gt ships it) copied to
    /// the control plane and checked there, before anything stops.
    RestorePrepare {
        node: NodeName,
    },
    /// `gt restore`: the API server's and etcd's manifests parked.
    StopControlPlane {
        node: NodeName,
    },
    /// `gt restore`: `etcdutl snapshot restore` into a fresh data directory,
    /// which the parked etcd manifest then mounts.
    RestoreEtcd {
        node: NodeName,
        /// `NAME=https://ADDRESS:2380,...`, every control plane.
        initial_cluster: String,
        peer_url: String,
        token: String,
        data_dir: String,
    },
    /// `gt restore`: etcd's manifest back (every member before any API server).
    StartEtcd {
        node: NodeName,
    },
    /// `gt restore`: the API server's manifest back.
    StartApiServer {
        node: NodeName,
    },
    /// `gt restore`: the copy of the snapshot removed from the host, however
    /// the restore went.
    CleanRestore {
        node: NodeName,
    },
    /// One node's whole upgrade to one rung of the ladder (plan/upgrade.rs),
    /// as kubeadm's upgrade docs order it: the package repository switched
    /// to the rung's minor, the kubeadm package, `kubeadm upgrade plan` and
    /// `upgrade apply` (first control plane) or `upgrade node`, drain,
    /// kubelet and kubectl packages, kubelet restart, Ready, uncordon if gt
    /// cordoned it. Apply skips the phases the node already did.
    UpgradeNode {
        node: NodeName,
        /// The rung's exact patch, or its minor's newest (read at apply).
        release: RungRelease,
        role: UpgradeRole,
    },
    /// `kubectl uncordon` of a node gt cordoned (it carries gt's cordon
    /// annotation) and an interrupted apply left cordoned; the annotation
    /// goes with it.
    Uncordon {
        node: NodeName,
    },
}

/// Which kubeadm upgrade a node runs in its rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeRole {
    /// The first control plane: `kubeadm upgrade plan` as a check, then
    /// `kubeadm upgrade apply vX.Y.Z`.
    First,
    /// Every other control plane: `kubeadm upgrade node`.
    ControlPlane,
    /// `kubeadm upgrade node` (kubelet configuration only).
    Worker,
}

impl UpgradeRole {
    /// `first control plane`, `control plane`, `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeRole::First => "first control plane",
            UpgradeRole::ControlPlane => "control plane",
            UpgradeRole::Worker => "worker",
        }
    }
}

/// Which joins a readiness gate stands before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateBefore {
    /// The join of this control plane.
    ControlPlaneJoin(NodeName),
    /// Every worker join.
    WorkerJoins,
    /// The end of a restore: the restored control plane serves again.
    RestoreDone,
}

impl Step {
    /// Stable id, unique in a plan: `join-worker/fenn`.
    pub fn id(&self) -> StepId {
        match self {
            Step::PrepareHost { node, .. } => StepId::PrepareHost(node.clone()),
            Step::Init { node } => StepId::Init(node.clone()),
            Step::InstallCni => StepId::InstallCni,
            Step::UploadCerts => StepId::UploadCerts,
            Step::MintToken => StepId::MintToken,
            Step::GateControlPlaneReady { before, .. } => StepId::Gate(before.clone()),
            Step::JoinControlPlane { node } => StepId::JoinControlPlane(node.clone()),
            Step::JoinWorker { node } => StepId::JoinWorker(node.clone()),
            Step::StartKubelet { node } => StepId::StartKubelet(node.clone()),
            Step::UpdateNode { node, .. } => StepId::Update(node.clone()),
            Step::Drain { node } => StepId::Drain(node.clone()),
            Step::DeleteNode { node } => StepId::DeleteNode(node.clone()),
            Step::Reset { node } => StepId::Reset(node.clone()),
            Step::RemoveEtcdMember { member, .. } => StepId::RemoveEtcdMember(member.clone()),
            Step::RevokeToken => StepId::RevokeToken,
            Step::BackupEtcd => StepId::BackupEtcd,
            Step::RestorePrepare { node } => StepId::RestorePrepare(node.clone()),
            Step::StopControlPlane { node } => StepId::StopControlPlane(node.clone()),
            Step::RestoreEtcd { node, .. } => StepId::RestoreEtcd(node.clone()),
            Step::StartEtcd { node } => StepId::StartEtcd(node.clone()),
            Step::StartApiServer { node } => StepId::StartApiServer(node.clone()),
            Step::CleanRestore { node } => StepId::CleanRestore(node.clone()),
            Step::UpgradeNode { node, release, .. } => StepId::UpgradeNode(node.clone(), *release),
            Step::Uncordon { node } => StepId::Uncordon(node.clone()),
        }
    }

    /// A short human label (graphs, progress lines). Never contains a secret.
    pub fn label(&self) -> String {
        match self {
            Step::PrepareHost { node, .. } => format!("prepare host {node}"),
            Step::Init { node } => format!("kubeadm init on {node}"),
            Step::InstallCni => "install CNI".into(),
            Step::UploadCerts => "upload control-plane certs".into(),
            Step::MintToken => "mint join token".into(),
            Step::GateControlPlaneReady { control_planes, .. } => format!(
                "gate: control plane ready ({})",
                control_planes
                    .iter()
                    .map(NodeName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::JoinControlPlane { node } => format!("join control plane {node}"),
            Step::JoinWorker { node } => format!("join worker {node}"),
            Step::StartKubelet { node } => format!("start the kubelet on {node}"),
            Step::UpdateNode { node, .. } => format!("update labels/taints of {node}"),
            Step::Drain { node } => format!("drain {node}"),
            Step::DeleteNode { node } => format!("delete node {node}"),
            Step::Reset { node } => format!("kubeadm reset on {node}"),
            Step::RemoveEtcdMember { member, name, via } if name.is_empty() => {
                format!("remove etcd member {member} (through {via})")
            }
            Step::RemoveEtcdMember { member, name, via } => {
                format!("remove etcd member {name} ({member}, through {via})")
            }
            Step::RevokeToken => "revoke join token".into(),
            Step::BackupEtcd => "back up etcd".into(),
            Step::RestorePrepare { node } => format!("copy the snapshot to {node}"),
            Step::StopControlPlane { node } => format!("stop etcd and the API server on {node}"),
            Step::RestoreEtcd { node, .. } => format!("restore etcd on {node}"),
            Step::StartEtcd { node } => format!("start etcd on {node}"),
            Step::StartApiServer { node } => format!("start the API server on {node}"),
            Step::CleanRestore { node } => format!("remove the snapshot copy from {node}"),
            Step::UpgradeNode {
                node,
                release,
                role: UpgradeRole::First,
            } => format!("kubeadm upgrade apply {release} on {node}"),
            Step::UpgradeNode { node, release, .. } => format!("upgrade {node} to {release}"),
            Step::Uncordon { node } => format!("uncordon {node}"),
        }
    }

    /// A readiness wait rather than a change (graphs draw it as a diamond).
    pub fn is_gate(&self) -> bool {
        matches!(self, Step::GateControlPlaneReady { .. })
    }

    /// A step that cleans up after others: it runs once its dependencies
    /// have finished, whether they succeeded, failed or were cancelled (the
    /// join token must not outlive a failed apply).
    pub fn always_runs(&self) -> bool {
        // A restore's copy of the snapshot holds every Secret of the cluster.
        matches!(self, Step::RevokeToken | Step::CleanRestore { .. })
    }
}

/// A step's id, unique in a plan. Displays as the ids that output, JSON and
/// events show (`join-worker/fenn`, `gate/before-worker-joins`) and parses
/// back from them (saved plans).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepId {
    PrepareHost(NodeName),
    Init(NodeName),
    InstallCni,
    UploadCerts,
    MintToken,
    Gate(GateBefore),
    JoinControlPlane(NodeName),
    JoinWorker(NodeName),
    StartKubelet(NodeName),
    Update(NodeName),
    Drain(NodeName),
    DeleteNode(NodeName),
    Reset(NodeName),
    /// By the member's hex ID (a member may have no name).
    RemoveEtcdMember(String),
    RevokeToken,
    BackupEtcd,
    RestorePrepare(NodeName),
    StopControlPlane(NodeName),
    RestoreEtcd(NodeName),
    StartEtcd(NodeName),
    StartApiServer(NodeName),
    CleanRestore(NodeName),
    /// `upgrade/NODE@v1.33.2`: one node, one rung.
    UpgradeNode(NodeName, RungRelease),
    Uncordon(NodeName),
}

impl Step {
    /// The node the step concerns, if any (events and the recap).
    pub fn node(&self) -> Option<&NodeName> {
        match self {
            Step::Init { node }
            | Step::PrepareHost { node, .. }
            | Step::JoinControlPlane { node }
            | Step::JoinWorker { node }
            | Step::StartKubelet { node }
            | Step::UpdateNode { node, .. }
            | Step::Drain { node }
            | Step::DeleteNode { node }
            | Step::Reset { node }
            | Step::RestorePrepare { node }
            | Step::StopControlPlane { node }
            | Step::RestoreEtcd { node, .. }
            | Step::StartEtcd { node }
            | Step::StartApiServer { node }
            | Step::CleanRestore { node }
            | Step::UpgradeNode { node, .. }
            | Step::Uncordon { node } => Some(node),
            _ => None,
        }
    }
}

impl StepId {
    /// The node named in the id, if any (a control-plane gate names the
    /// node it stands before, but concerns the whole control plane).
    pub fn node(&self) -> Option<&NodeName> {
        match self {
            StepId::Init(n)
            | StepId::PrepareHost(n)
            | StepId::JoinControlPlane(n)
            | StepId::JoinWorker(n)
            | StepId::StartKubelet(n)
            | StepId::Update(n)
            | StepId::Drain(n)
            | StepId::DeleteNode(n)
            | StepId::Reset(n)
            | StepId::RestorePrepare(n)
            | StepId::StopControlPlane(n)
            | StepId::RestoreEtcd(n)
            | StepId::StartEtcd(n)
            | StepId::StartApiServer(n)
            | StepId::CleanRestore(n)
            | StepId::UpgradeNode(n, _)
            | StepId::Uncordon(n) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepId::PrepareHost(n) => write!(f, "prepare-host/{n}"),
            StepId::Init(n) => write!(f, "init/{n}"),
            StepId::InstallCni => f.write_str("install-cni"),
            StepId::UploadCerts => f.write_str("upload-certs"),
            StepId::MintToken => f.write_str("mint-token"),
            StepId::Gate(GateBefore::ControlPlaneJoin(n)) => {
                write!(f, "gate/before-join-control-plane/{n}")
            }
            StepId::Gate(GateBefore::WorkerJoins) => f.write_str("gate/before-worker-joins"),
            StepId::Gate(GateBefore::RestoreDone) => f.write_str("gate/after-restore"),
            StepId::JoinControlPlane(n) => write!(f, "join-control-plane/{n}"),
            StepId::JoinWorker(n) => write!(f, "join-worker/{n}"),
            StepId::StartKubelet(n) => write!(f, "start-kubelet/{n}"),
            StepId::Update(n) => write!(f, "update/{n}"),
            StepId::Drain(n) => write!(f, "drain/{n}"),
            StepId::DeleteNode(n) => write!(f, "delete-node/{n}"),
            StepId::Reset(n) => write!(f, "reset/{n}"),
            StepId::RemoveEtcdMember(id) => write!(f, "remove-etcd-member/{id}"),
            StepId::RevokeToken => f.write_str("revoke-token"),
            StepId::BackupEtcd => f.write_str("backup-etcd"),
            StepId::RestorePrepare(n) => write!(f, "restore-prepare/{n}"),
            StepId::StopControlPlane(n) => write!(f, "stop-control-plane/{n}"),
            StepId::RestoreEtcd(n) => write!(f, "restore-etcd/{n}"),
            StepId::StartEtcd(n) => write!(f, "start-etcd/{n}"),
            StepId::StartApiServer(n) => write!(f, "start-api-server/{n}"),
            StepId::CleanRestore(n) => write!(f, "clean-restore/{n}"),
            StepId::UpgradeNode(n, r) => write!(f, "upgrade/{n}@{r}"),
            StepId::Uncordon(n) => write!(f, "uncordon/{n}"),
        }
    }
}

/// A string that is not a step id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a step id")]
pub struct BadStepId(String);

impl FromStr for StepId {
    type Err = BadStepId;
    fn from_str(s: &str) -> Result<StepId, BadStepId> {
        let bad = || BadStepId(s.to_string());
        let simple = match s {
            "install-cni" => Some(StepId::InstallCni),
            "upload-certs" => Some(StepId::UploadCerts),
            "mint-token" => Some(StepId::MintToken),
            "revoke-token" => Some(StepId::RevokeToken),
            "backup-etcd" => Some(StepId::BackupEtcd),
            "gate/before-worker-joins" => Some(StepId::Gate(GateBefore::WorkerJoins)),
            "gate/after-restore" => Some(StepId::Gate(GateBefore::RestoreDone)),
            _ => None,
        };
        if let Some(id) = simple {
            return Ok(id);
        }
        if let Some(id) = s.strip_prefix("remove-etcd-member/") {
            let hex = !id.is_empty()
                && id.len() <= 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            return hex
                .then(|| StepId::RemoveEtcdMember(id.to_string()))
                .ok_or_else(bad);
        }
        if let Some(rest) = s.strip_prefix("upgrade/") {
            let (node, release) = rest.split_once('@').ok_or_else(bad)?;
            if !release.starts_with('v') {
                return Err(bad());
            }
            let node: NodeName = node.parse().map_err(|_| bad())?;
            let release: RungRelease = release.parse().map_err(|_| bad())?;
            return Ok(StepId::UpgradeNode(node, release));
        }
        let (kind, node) = s.rsplit_once('/').ok_or_else(bad)?;
        let node: NodeName = node.parse().map_err(|_| bad())?;
        Ok(match kind {
            "prepare-host" => StepId::PrepareHost(node),
            "init" => StepId::Init(node),
            "gate/before-join-control-plane" => StepId::Gate(GateBefore::ControlPlaneJoin(node)),
            "join-control-plane" => StepId::JoinControlPlane(node),
            "join-worker" => StepId::JoinWorker(node),
            "start-kubelet" => StepId::StartKubelet(node),
            "update" => StepId::Update(node),
            "drain" => StepId::Drain(node),
            "delete-node" => StepId::DeleteNode(node),
            "reset" => StepId::Reset(node),
            "restore-prepare" => StepId::RestorePrepare(node),
            "stop-control-plane" => StepId::StopControlPlane(node),
            "restore-etcd" => StepId::RestoreEtcd(node),
            "start-etcd" => StepId::StartEtcd(node),
            "start-api-server" => StepId::StartApiServer(node),
            "clean-restore" => StepId::CleanRestore(node),
            "uncordon" => StepId::Uncordon(node),
            _ => return Err(bad()),
        })
    }
}

impl Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StepId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<str> for StepId {
    fn eq(&self, other: &str) -> bool {
        other.parse::<StepId>().is_ok_and(|id| id == *self)
    }
}

impl PartialEq<&str> for StepId {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<StepId>().is_ok_and(|id| id == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_step_round_trips_through_plan_json() {
        let step = Step::UpgradeNode {
            node: "bettley".parse().unwrap(),
            release: Release(1, 33, 3).into(),
            role: UpgradeRole::First,
        };
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "upgrade_node", "node": "bettley", "release": "v1.33.3", "role": "first"})
        );
        assert_eq!(serde_json::from_value::<Step>(json).unwrap(), step);
        assert_eq!(step.label(), "kubeadm upgrade apply v1.33.3 on bettley");
        let bad = serde_json::json!({"kind": "upgrade_node", "node": "fenn", "release": "1.x", "role": "worker"});
        assert!(serde_json::from_value::<Step>(bad).is_err());
        // A rung whose patch is read at apply: its minor.
        let newest = serde_json::json!({"kind": "upgrade_node", "node": "fenn", "release": "v1.33", "role": "worker"});
        assert!(matches!(
            serde_json::from_value::<Step>(newest),
            Ok(Step::UpgradeNode {
                release: RungRelease::NewestPatch(1, 33),
                ..
            })
        ));
    }

    #[test]
    fn every_id_displays_as_before_and_parses_back() {
        let n = |s: &str| s.parse::<NodeName>().unwrap();
        let ids = [
            (StepId::Init(n("bettley")), "init/bettley"),
            (StepId::PrepareHost(n("fenn")), "prepare-host/fenn"),
            (StepId::InstallCni, "install-cni"),
            (StepId::UploadCerts, "upload-certs"),
            (StepId::MintToken, "mint-token"),
            (
                StepId::Gate(GateBefore::ControlPlaneJoin(n("dalt"))),
                "gate/before-join-control-plane/dalt",
            ),
            (
                StepId::Gate(GateBefore::WorkerJoins),
                "gate/before-worker-joins",
            ),
            (
                StepId::JoinControlPlane(n("cargyll")),
                "join-control-plane/cargyll",
            ),
            (StepId::JoinWorker(n("fenn")), "join-worker/fenn"),
            (StepId::StartKubelet(n("jast")), "start-kubelet/jast"),
            (StepId::Update(n("fenn")), "update/fenn"),
            (StepId::Drain(n("a.b")), "drain/a.b"),
            (StepId::DeleteNode(n("zed")), "delete-node/zed"),
            (StepId::Reset(n("zed")), "reset/zed"),
            (
                StepId::RemoveEtcdMember("8e9e05c52164694d".into()),
                "remove-etcd-member/8e9e05c52164694d",
            ),
            (StepId::RevokeToken, "revoke-token"),
            (StepId::BackupEtcd, "backup-etcd"),
            (StepId::RestorePrepare(n("dalt")), "restore-prepare/dalt"),
            (
                StepId::StopControlPlane(n("dalt")),
                "stop-control-plane/dalt",
            ),
            (StepId::RestoreEtcd(n("dalt")), "restore-etcd/dalt"),
            (StepId::StartEtcd(n("dalt")), "start-etcd/dalt"),
            (StepId::StartApiServer(n("dalt")), "start-api-server/dalt"),
            (StepId::CleanRestore(n("dalt")), "clean-restore/dalt"),
            (StepId::Gate(GateBefore::RestoreDone), "gate/after-restore"),
            (
                StepId::UpgradeNode(n("fenn"), Release(1, 33, 2).into()),
                "upgrade/fenn@v1.33.2",
            ),
            (
                StepId::UpgradeNode(n("fenn"), RungRelease::NewestPatch(1, 33)),
                "upgrade/fenn@v1.33",
            ),
            (StepId::Uncordon(n("fenn")), "uncordon/fenn"),
        ];
        for (id, text) in ids {
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<StepId>(), Ok(id));
        }
        for bad in [
            "",
            "init",
            "init/",
            "join-worker/Fenn",
            "frobnicate/fenn",
            "remove-etcd-member/",
            "remove-etcd-member/xyz",
            "remove-etcd-member/12345678901234567",
            "upgrade/fenn",
            "upgrade/fenn@1.33.2",
            "upgrade/fenn@v1",
            "upgrade/Fenn@v1.33.2",
            "upgrade/@v1.33.2",
        ] {
            assert!(bad.parse::<StepId>().is_err(), "{bad}");
        }
    }
}
