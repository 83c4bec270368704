//! Why a step failed, and what to do about it. Every message is built from
//! words gt wrote or from tool output with secrets redacted.

use crate::kube::kubeadm::Release;
use crate::spec::{format_duration, NodeName};
use crate::transport::TransportError;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The host could not be reached or the command could not be run (the
    /// transport's message names the host and the remedy).
    #[error(transparent)]
    Host(Box<TransportError>),
    /// A tool exited non-zero; `output` is its last lines, redacted.
    #[error("{program} on {node} exited {code}{}", tail(output))]
    Exited {
        program: String,
        node: NodeName,
        code: i32,
        output: String,
    },
    #[error("no control plane with an admin kubeconfig to run `{program}` on: none was reachable with /etc/kubernetes/admin.conf when gt observed")]
    NoAdminHost { program: String },
    /// An admin command kept failing the way a starting API server does.
    #[error("{last} (gave up after {} of retries)", format_duration(*patience))]
    GaveUp {
        last: Box<StepError>,
        patience: Duration,
    },
    #[error("{node} is not in {}", file.display())]
    NotInSpec { node: NodeName, file: PathBuf },
    #[error("{what}: {why}")]
    BadCaCertificate { what: String, why: String },
    #[error("kubectl get nodes -o json: {0}")]
    BadNodeList(String),
    #[error("kubeadm init phase upload-certs printed no certificate key (output: {output})")]
    NoCertificateKey { output: String },
    #[error("kubeadm token create printed something that is not a bootstrap token")]
    NotAToken,
    #[error("no join token: the mint-token step did not run")]
    NoToken,
    #[error("no certificate key: the upload-certs step did not run")]
    NoCertificateKeyYet,
    #[error("no CNI manifest: gt reads it before the walk when the plan installs the CNI")]
    NoCniManifest,
    #[error("could not revoke join token {token_id}: {error}; it expires by itself {} after it was made (or delete it: `kubeadm token delete {token_id}` on a control plane)", format_duration(*ttl))]
    TokenNotRevoked {
        token_id: String,
        error: Box<StepError>,
        ttl: Duration,
    },
    #[error("{node} {done}, but its Node was not Ready within {} (gate_timeout in [apply]): {why}", format_duration(*timeout))]
    NodeNotReady {
        node: NodeName,
        /// What happened before the wait: `joined`, `its kubelet started`.
        done: &'static str,
        timeout: Duration,
        why: String,
    },
    #[error("the control plane was not ready within {} (gate_timeout in [apply]): {problems}", format_duration(*timeout))]
    ControlPlaneNotReady { timeout: Duration, problems: String },
    /// kubeadm goes on when etcd refuses the removal: the cluster then
    /// keeps a member that will never answer again, one step from losing quorum.
    #[error("kubeadm reset on {node} could not remove its etcd member ({why}); etcd still counts it: on a healthy control plane, find it with `etcdctl member list` and remove it with `etcdctl member remove ID`")]
    EtcdMemberKept { node: NodeName, why: String },
    #[error("the kubernetes apt source on {node} lists no kubeadm {minor}.x: is it the repository of Kubernetes {minor}? (check `mirror` in [nodes.{node}.host] or [defaults.host])")]
    NoRelease { node: NodeName, minor: String },
    #[error("{node} did not come back with the memory cgroup within {} of its reboot (reboot_timeout in [apply]): {last}", format_duration(*timeout))]
    RebootTimedOut {
        node: NodeName,
        timeout: Duration,
        last: String,
    },
    #[error("kubeadm on {node} is {found}, not a Kubernetes {want} release (kubernetes_version in cluster.toml): let gt manage its packages, or install kubeadm {want}")]
    KubeadmVersion {
        node: NodeName,
        found: String,
        want: String,
    },
    /// The etcd backup before a risky step: nothing after it runs.
    #[error("etcd backup: {0}")]
    Backup(String),
    #[error("{0}")]
    Restore(String),
    #[error("{command} on {node} refused {version}: {why}")]
    UpgradeRefused {
        command: &'static str,
        node: NodeName,
        version: Release,
        why: String,
    },
    #[error("the drain of {node} did not finish within {} (drain_timeout in [apply]): {blocked} allows no disruption now; scale its workload up or relax the budget, then apply again", format_duration(*timeout))]
    DrainBlocked {
        node: NodeName,
        timeout: Duration,
        /// `PodDisruptionBudget web/hr-pdb (pod web/hr-app)`, or the pod alone.
        blocked: String,
    },
    #[error("kubectl drain refuses to delete pods that no controller manages on {node}: {pods}; move or delete them, or set force = true in [drain] to let the drain delete them")]
    DrainBarePods { node: NodeName, pods: String },
    #[error("{node}'s kubelet did not run {version} Ready within {} (gate_timeout in [apply]): {why}", format_duration(*timeout))]
    KubeletNotAtRelease {
        node: NodeName,
        version: Release,
        timeout: Duration,
        why: String,
    },
    #[error("the cluster has no Node {0}: it is not joined, so gt cannot upgrade it; plan again")]
    NoNode(NodeName),
    /// A saved plan whose member ID etcdctl would not take.
    #[error("etcd member ID {id:?} is not hex as etcdctl prints it; plan again")]
    BadEtcdMemberId { id: String },
}

impl From<TransportError> for StepError {
    fn from(e: TransportError) -> StepError {
        StepError::Host(Box::new(e))
    }
}

fn tail(output: &str) -> String {
    if output.is_empty() {
        " without a message".to_string()
    } else {
        format!(": {output}")
    }
}

impl StepError {
    /// The failing tool's output says `needle` (after retries, too).
    pub fn tool_said(&self, needle: &str) -> bool {
        match self {
            StepError::Exited { output, .. } => output.contains(needle),
            StepError::GaveUp { last, .. } => last.tool_said(needle),
            _ => false,
        }
    }
}
