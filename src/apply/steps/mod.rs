//! What each step does on the hosts, through `transport` with command lines
//! from `kube`. Secrets (the token, the certificate key) live only in this
//! runner's memory and reach hosts only on stdin; tool output is redacted
//! before it becomes an event or an error.
//!
//! Here the steps bound to one host (init, join, start the kubelet, reset);
//! `exec` runs a command on a host; `admin` the steps that go through a
//! control plane's admin kubeconfig; `gate` the readiness waits.

mod admin;
mod backup;
mod error;
mod etcd;
mod exec;
mod gate;
mod host;
mod node_watch;
mod poll;
#[cfg(test)]
mod reboot_tests;
mod restore;
#[cfg(test)]
mod test_fixture;
mod token;
#[cfg(test)]
mod update_tests;
mod upgrade;
#[cfg(test)]
mod upgrade_tests;
#[cfg(test)]
mod waits_tests;

pub use super::run::{host_name, user_name, RunInfo};
pub use error::StepError;
pub use restore::RestoreInput;

use super::events::Events;
use super::walker::Runner;
use crate::facts::Observed;
use crate::kube::secret::{BootstrapToken, CertificateKey};
use crate::kube::{self, kubeadm};
use crate::plan::{Step, StepId};
use crate::spec::{NodeName, Spec};
use crate::transport::{BoxFuture, Hosts};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
struct Secrets {
    token: Option<BootstrapToken>,
    /// When the token was made (at the latest): a join renews it when
    /// little of its TTL is left (`token.rs`).
    token_made: Option<tokio::time::Instant>,
    certificate_key: Option<CertificateKey>,
}

/// Carries out the plan's steps for one apply.
pub struct StepRunner<'a> {
    spec: &'a Spec,
    hosts: &'a Hosts,
    events: Events,
    run: RunInfo,
    secrets: Mutex<Secrets>,
    ca_pin: Mutex<Option<String>>,
    /// Control planes with an admin kubeconfig, best first: the one observed
    /// through, then file order; a node joined or initialised by this run
    /// goes first once it is up.
    admins: Mutex<Vec<NodeName>>,
    /// `kubectl get nodes`, polled for every step waiting on Node readiness
    /// at once (a hundred joining workers must not run a hundred kubectls a
    /// second on a Raspberry Pi control plane).
    nodes: poll::Poller<Result<NodeMap, StepError>>,
    /// A watch of Nodes that tells that poll when to look (node_watch.rs),
    /// when `watch_nodes`.
    node_watch: node_watch::NodeWatch,
    watch_nodes: bool,
    /// Hosts that did not answer when gt observed.
    unreachable: BTreeSet<String>,
    /// The patch "newest 1.32 patch" came to, settled once per apply.
    kube_release: tokio::sync::OnceCell<kubeadm::Release>,
    /// What a restore copies to the control planes (`gt restore` only).
    restore: Option<std::sync::Arc<RestoreInput>>,
    /// What install-cni pipes to `kubectl apply -f -`.
    cni_manifest: Option<std::sync::Arc<crate::cni::CniManifest>>,
    /// The cluster's exact release: the one kubeadm recorded when gt
    /// observed, or the one this run's init made it.
    cluster_release: Mutex<Option<kubeadm::Release>>,
    /// Held while a join renews the token, so that concurrent joins renew once.
    token_renewal: tokio::sync::Mutex<()>,
    /// The patch each newest-patch rung of the upgrade came to, by minor.
    rung_releases: Mutex<BTreeMap<(u32, u32), kubeadm::Release>>,
}

type NodeMap = BTreeMap<String, crate::kube::nodes::Node>;

/// Retries of commands that fail while an API server is still coming up
/// start this fast and back off to at most `MAX_POLL`.
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(1);

impl<'a> StepRunner<'a> {
    /// The patch each newest-patch rung came to in this walk, by minor
    /// (for the recap).
    pub fn rung_releases(&self) -> BTreeMap<(u32, u32), kubeadm::Release> {
        self.rung_releases.lock().unwrap().clone()
    }

    pub fn new(
        spec: &'a Spec,
        observed: &'a Observed,
        hosts: &'a Hosts,
        events: Events,
        run: RunInfo,
    ) -> StepRunner<'a> {
        let mut admins: Vec<NodeName> = observed
            .cluster
            .observed_via
            .iter()
            .filter_map(|n| NodeName::try_from(n.clone()).ok())
            .collect();
        for n in spec.control_planes() {
            let usable = observed
                .hosts
                .get(n.name.as_str())
                .is_some_and(|h| h.is_reachable() && h.admin_conf);
            if usable && !admins.contains(&n.name) {
                admins.push(n.name.clone());
            }
        }
        StepRunner {
            spec,
            hosts,
            events,
            run,
            secrets: Mutex::new(Secrets::default()),
            ca_pin: Mutex::new(observed.cluster.ca_pin.clone()),
            admins: Mutex::new(admins),
            nodes: poll::Poller::new(poll::POLL),
            node_watch: Default::default(),
            watch_nodes: false,
            kube_release: tokio::sync::OnceCell::new(),
            unreachable: observed
                .hosts
                .iter()
                .filter(|(_, h)| !h.is_reachable())
                .map(|(n, _)| n.clone())
                .collect(),
            restore: None,
            cni_manifest: None,
            cluster_release: Mutex::new(
                observed
                    .cluster
                    .kubernetes_version
                    .as_deref()
                    .and_then(kubeadm::parse_version),
            ),
            token_renewal: tokio::sync::Mutex::new(()),
            rung_releases: Mutex::new(BTreeMap::new()),
        }
    }

    /// Gives the runner the CNI manifest read on the operator's machine.
    pub fn applying_cni_manifest(&mut self, manifest: std::sync::Arc<crate::cni::CniManifest>) {
        self.cni_manifest = Some(manifest);
    }

    /// Has waits on Nodes watch them through an admin host (node_watch.rs)
    /// besides polling. Off unless asked: a scripted host in a unit test
    /// answers only what its test expects.
    pub fn watching_nodes(&mut self) {
        self.watch_nodes = true;
    }

    /// Ends the watch of Nodes, if one runs (at the end of the walk).
    pub async fn stop_watching_nodes(&self) {
        self.node_watch.stop().await;
    }

    /// Starts the watch of Nodes through the first admin host, if it is
    /// wanted and due (none runs, and it may start again).
    async fn watch_nodes_if_due(&self) {
        if !self.watch_nodes || !self.node_watch.due() {
            return;
        }
        let Some(admin) = self.admins.lock().unwrap().first().cloned() else {
            return;
        };
        if let Ok(host) = self.hosts.get(admin.as_str()).await {
            self.node_watch.start(host, self.nodes.hint());
        }
    }

    /// Gives the runner what a restore plan's steps copy to the hosts.
    pub fn restoring(&mut self, input: std::sync::Arc<RestoreInput>) {
        self.restore = Some(input);
    }

    /// The token this run made, if any (its id is public; the CLI names it
    /// when a second Ctrl-C leaves it to expire).
    pub fn token_id(&self) -> Option<String> {
        self.secrets
            .lock()
            .unwrap()
            .token
            .as_ref()
            .map(|t| t.id().to_string())
    }

    fn settings(&self) -> &crate::spec::ApplySettings {
        &self.spec.apply
    }

    fn node(&self, name: &NodeName) -> Result<&'a crate::spec::Node, StepError> {
        self.spec
            .node(name.as_str())
            .ok_or_else(|| StepError::NotInSpec {
                node: name.clone(),
                file: self.spec.source.clone(),
            })
    }

    async fn init(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let n = self.node(node)?;
        // The run's one token: known to gt before init creates it, so it is
        // revoked at the end even when init fails halfway.
        let token = BootstrapToken::generate();
        {
            let mut s = self.secrets.lock().unwrap();
            s.token = Some(token.clone());
            s.token_made = Some(tokio::time::Instant::now());
        }
        let release = self.init_release(id, node).await?;
        *self.cluster_release.lock().unwrap() = Some(release);
        let config = kubeadm::init_config(
            self.spec,
            n,
            &token,
            self.spec.tokens.ttl,
            &self.run.token_description(),
            &release,
        );
        let cmd = self
            .step_cmd(kubeadm::init_command(self.spec))
            .stdin(config)
            .label("kubeadm init");
        self.must(id, node, &cmd).await?;
        let read_ca = crate::transport::Cmd::new(kubeadm::read_ca_command()).label("read ca.crt");
        let pem = self.must(id, node, &read_ca).await?;
        let pin = kube::pin::ca_pin_from_pem(&pem).map_err(|e| StepError::BadCaCertificate {
            what: format!("{node}: /etc/kubernetes/pki/ca.crt after kubeadm init"),
            why: e.to_string(),
        })?;
        *self.ca_pin.lock().unwrap() = Some(pin);
        self.promote_admin(node);
        Ok(())
    }

    /// The file's patch, else the installed kubeadm's (the patch gt
    /// installed on every managed host, or the one the host was prepared with).
    async fn init_release(
        &self,
        id: &StepId,
        node: &NodeName,
    ) -> Result<kubeadm::Release, StepError> {
        let want = self.spec.cluster.kubernetes_version;
        if let Some(p) = want.patch {
            return Ok(kubeadm::Release(want.major, want.minor, p));
        }
        let cmd = crate::transport::Cmd::new(kubeadm::version_command()).label("kubeadm version");
        let out = self.must(id, node, &cmd).await?;
        kubeadm::parse_version(&out)
            .filter(|r| r.0 == want.major && r.1 == want.minor)
            .ok_or_else(|| StepError::KubeadmVersion {
                node: node.clone(),
                found: out.trim().to_string(),
                want: want.to_string(),
            })
    }

    async fn join(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let n = self.node(node)?;
        let pin = self.ca_pin(id).await?;
        let token = self.token_for_join(id).await?;
        let key = self.secrets.lock().unwrap().certificate_key.clone();
        if n.is_control_plane() && key.is_none() {
            return Err(StepError::NoCertificateKeyYet);
        }
        let config = kubeadm::join_config(self.spec, n, &token, &pin, key.as_ref());
        let cmd = self
            .step_cmd(kubeadm::join_command(self.spec))
            .stdin(config)
            .label("kubeadm join");
        self.must(id, node, &cmd).await?;
        self.wait_node_ready(id, node, "joined").await?;
        if n.is_control_plane() {
            let mut a = self.admins.lock().unwrap();
            if !a.contains(node) {
                a.push(node.clone());
            }
        }
        Ok(())
    }

    async fn start_kubelet(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(kube::start_kubelet())
            .label("systemctl start kubelet");
        self.must(id, node, &cmd).await?;
        self.wait_node_ready(id, node, "its kubelet started").await
    }

    async fn reset(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(kubeadm::reset_command())
            .label("kubeadm reset");
        let r = self.exec(id, node, &cmd).await;
        // Its admin.conf is gone (or half gone): later admin commands of this
        // run (the next removal, a label) must go through another control plane.
        self.admins.lock().unwrap().retain(|n| n != node);
        match r {
            Ok(out) if !out.success() => Err(exec::exited(&cmd, node, &out)),
            Ok(out) => match kubeadm::reset_kept_etcd_member(&out.stderr) {
                // etcd refuses a removal while a member joined less than its
                // health interval ago; gt takes the member out itself.
                Some(why) => {
                    let why = kube::secret::redact(why);
                    self.remove_member_reset_kept(id, node, &why).await
                }
                None => Ok(()),
            },
            Err(e) => Err(e),
        }
    }
}

impl Runner for StepRunner<'_> {
    fn run<'b>(&'b self, id: &'b StepId, step: &'b Step) -> BoxFuture<'b, Result<(), StepError>> {
        Box::pin(async move {
            match step {
                Step::PrepareHost { node, work } => self.prepare_host(id, node, work).await,
                Step::Init { node } => self.init(id, node).await,
                Step::InstallCni => self.install_cni(id).await,
                Step::UploadCerts => self.upload_certs(id).await,
                Step::MintToken => self.mint_token(id).await,
                Step::GateControlPlaneReady { control_planes, .. } => {
                    self.gate(id, control_planes).await
                }
                Step::JoinControlPlane { node } | Step::JoinWorker { node } => {
                    self.join(id, node).await
                }
                Step::UpdateNode {
                    node,
                    labels,
                    taints,
                } => self.update(id, node, labels, taints).await,
                Step::StartKubelet { node } => self.start_kubelet(id, node).await,
                Step::Drain { node } => self.drain(id, node).await,
                Step::DeleteNode { node } => self.delete_node(id, node).await,
                Step::Reset { node } => self.reset(id, node).await,
                Step::RemoveEtcdMember { member, via, .. } => {
                    self.remove_etcd_member(id, member, via).await
                }
                Step::RevokeToken => self.revoke_token(id).await,
                Step::BackupEtcd => self.backup_etcd(id).await,
                Step::RestorePrepare { node } => self.restore_prepare(id, node).await,
                Step::StopControlPlane { node } => self.stop_control_plane(id, node).await,
                Step::RestoreEtcd {
                    node,
                    initial_cluster,
                    peer_url,
                    token,
                    data_dir,
                } => {
                    let member = kube::etcd_snapshot::RestoredMember {
                        name: node.as_str(),
                        initial_cluster,
                        peer_url,
                        token,
                        data_dir,
                    };
                    self.restore_etcd(id, node, &member).await
                }
                Step::StartEtcd { node } => self.start_manifest(id, node, "etcd.yaml").await,
                Step::StartApiServer { node } => {
                    self.start_manifest(id, node, "kube-apiserver.yaml").await
                }
                Step::CleanRestore { node } => self.clean_restore(id, node).await,
                Step::UpgradeNode {
                    node,
                    release,
                    role,
                } => self.upgrade_node(id, node, release, *role).await,
                Step::Uncordon { node } => self.uncordon(id, node).await,
            }
        })
    }
}
