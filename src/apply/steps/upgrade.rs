//! `upgrade/NODE@vX.Y.Z`: one node's upgrade to one rung's release, in the
//! order the kubeadm upgrade docs give: the repository of the release's
//! minor, kubeadm, `kubeadm upgrade plan` + `apply` (the first control
//! plane) or `kubeadm upgrade node`, the drain, kubelet and kubectl, the
//! kubelet's restart, Ready at the release, the uncordon.
//!
//! The step starts by reading where the node is (its packages, repository
//! and API server manifest on the host; its Node object) and skips every
//! phase already done, so a node interrupted anywhere (a failure, Ctrl-C,
//! kill -9) resumes where it stopped. The kubeadm phase counts as done once
//! the kubelet package is at the release: the docs' order upgrades it only
//! after kubeadm's own step.
//!
//! Cordons: gt marks a node (`kube::upgrade::CORDON_MARK`) before its drain
//! cordons it and uncordons only marked nodes; a node an operator cordoned
//! is drained but stays cordoned.

use super::exec::first_line;
use super::{StepError, StepRunner};
use crate::kube::apt::{self, AptSource};
use crate::kube::kubeadm::Release;
use crate::kube::nodes::ConditionStatus;
use crate::kube::upgrade::{self as ku, DrainBlock, HostState};
use crate::kube::{self, script, secret::redact, workloads};
use crate::plan::{RungRelease, StepId, UpgradeRole};
use crate::spec::NodeName;
use crate::transport::Cmd;
use std::time::{Duration, Instant};

impl StepRunner<'_> {
    pub(super) async fn upgrade_node(
        &self,
        id: &StepId,
        node: &NodeName,
        rung: &RungRelease,
        role: UpgradeRole,
    ) -> Result<(), StepError> {
        // Where the node is, on its host and in the API, read at once: no
        // phase before the drain changes what the Node says.
        let (host, before) =
            tokio::join!(self.upgrade_host_state(id, node), self.node_now(id, node));
        let (mut host, before) = (host?, before?);

        let repository = self.rung_repository(node, &rung.floor())?;
        let switch = (
            format!("switch the kubernetes apt source to {repository}"),
            ku::switch_repository(&repository),
        );
        let release = match rung.exact().or_else(|| self.rung_resolved(rung)) {
            Some(r) => r,
            None => {
                // The minor's patches are listed only once the source names it.
                if host.source.as_ref().map(|s| s.url.as_str()) != Some(repository.as_str()) {
                    self.upgrade_phases(id, node, vec![switch.clone()]).await?;
                    host.source = AptSource::parse(&apt::source_line(&repository));
                }
                self.resolve_rung(id, node, rung, role).await?
            }
        };
        let release = &release;
        let want = release.to_string();
        let mut packages = Vec::new();
        if host.source.as_ref().map(|s| s.url.as_str()) != Some(repository.as_str()) {
            packages.push(switch);
        }
        if host.kubeadm != Some(*release) {
            packages.push((
                format!("apt-get install kubeadm={}", ku::package_version(release)),
                ku::install_kubeadm(release),
            ));
        } else {
            self.events
                .progress(id, format!("kubeadm is at {want} already"));
        }
        // Whether kubeadm's step is done reads what the host said before its
        // packages changed (and, for the first control plane, the cluster).
        if self.kubeadm_phase_done(id, &host, release, role).await? {
            self.upgrade_phases(id, node, packages).await?;
            self.events.progress(
                id,
                format!("kubeadm's upgrade to {want} was done on {node} already"),
            );
        } else {
            match role {
                UpgradeRole::First => {
                    self.upgrade_phases(id, node, packages).await?;
                    self.upgrade_first(id, node, release).await?
                }
                UpgradeRole::ControlPlane | UpgradeRole::Worker => {
                    // The packages, then kubeadm's step: one round trip.
                    packages.push(("kubeadm upgrade node".into(), ku::upgrade_node()));
                    self.upgrade_phases(id, node, packages).await?;
                }
            }
        }

        let running = before
            .kubelet_version
            .as_deref()
            .and_then(kube::kubeadm::parse_version);
        let packages_done = host.kubelet == Some(*release) && host.kubectl == Some(*release);
        let kubelet_done = packages_done && running == Some(*release);
        // gt uncordons what it cordoned (its mark, even from an interrupted
        // run) and never a node cordoned by someone else.
        let mut ours = before.cordoned_by_gt;
        if !kubelet_done {
            let mark = !before.unschedulable && !before.cordoned_by_gt;
            if before.unschedulable && !before.cordoned_by_gt {
                self.events.progress(
                    id,
                    format!(
                        "{node} was cordoned by someone else: it stays cordoned after its upgrade"
                    ),
                );
            }
            self.upgrade_drain(id, node, mark).await?;
            ours |= mark;
            let mut kubelet = Vec::new();
            if !packages_done {
                kubelet.push((
                    format!(
                        "apt-get install kubelet={v} kubectl={v}",
                        v = ku::package_version(release)
                    ),
                    ku::install_kubelet_kubectl(release),
                ));
            }
            if running != Some(*release) {
                kubelet.push((
                    "systemctl daemon-reload && systemctl restart kubelet".into(),
                    ku::restart_kubelet(),
                ));
            }
            self.upgrade_phases(id, node, kubelet).await?;
        } else {
            self.events
                .progress(id, format!("{node}'s kubelet runs {want} already"));
        }
        self.wait_kubelet_at(id, node, release).await?;
        if role != UpgradeRole::Worker {
            self.gate(id, std::slice::from_ref(node)).await?;
        }
        if ours {
            self.uncordon(id, node).await?;
        }
        Ok(())
    }

    /// `kubectl uncordon`, then gt's mark off, in one admin command (in
    /// this order: a crash between leaves a mark on a schedulable node,
    /// which the next upgrade clears, never a cordon without the mark,
    /// which gt would keep).
    pub(super) async fn uncordon(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let phases = [
            ("kubectl uncordon".into(), ku::uncordon(node.as_str())),
            (
                "take gt's cordon mark off".into(),
                ku::unmark_cordoned(node.as_str()),
            ),
        ];
        let cmd = self
            .step_cmd(folded(&phases))
            .label("kubectl uncordon, then take gt's cordon mark off");
        self.admin(id, &cmd, self.settings().gate_timeout)
            .await
            .map(drop)
            .map_err(|e| name_failed_phase(e, &phases))
    }

    /// `kubeadm upgrade plan vX` as a check (its refusal stops the rung
    /// before anything changed), then `kubeadm upgrade apply vX -y`.
    async fn upgrade_first(
        &self,
        id: &StepId,
        node: &NodeName,
        release: &Release,
    ) -> Result<(), StepError> {
        const PLAN: &str = "kubeadm upgrade plan";
        const APPLY: &str = "kubeadm upgrade apply";
        let both = script::in_order(&[ku::upgrade_plan(release), ku::upgrade_apply(release)]);
        let cmd = self
            .step_cmd(both)
            .label("kubeadm upgrade plan, then kubeadm upgrade apply");
        let out = self.exec(id, node, &cmd).await?;
        if out.success() {
            return Ok(());
        }
        let (phase, stderr) = match script::failed_part(&out.stderr) {
            Some((0, rest)) => (PLAN, rest),
            Some((_, rest)) => (APPLY, rest),
            None => (APPLY, out.stderr.clone()),
        };
        let text = if stderr.trim().is_empty() {
            &out.stdout
        } else {
            &stderr
        };
        Err(StepError::UpgradeRefused {
            command: phase,
            node: node.clone(),
            version: *release,
            why: redact(&ku::upgrade_refusal(text)),
        })
    }

    /// kubeadm's step of this rung is behind the node: its kubelet package
    /// is at the release (the docs' order upgrades it after kubeadm's step),
    /// a control plane's API server runs the release, and after the first
    /// control plane's `upgrade apply` the cluster's recorded version is it.
    async fn kubeadm_phase_done(
        &self,
        id: &StepId,
        host: &HostState,
        release: &Release,
        role: UpgradeRole,
    ) -> Result<bool, StepError> {
        if host.kubelet != Some(*release) {
            return Ok(false);
        }
        if role != UpgradeRole::Worker && host.apiserver != Some(*release) {
            return Ok(false);
        }
        if role == UpgradeRole::First {
            let cmd = self
                .step_cmd(kube::etcd_snapshot::get_kubeadm_config())
                .label("kubectl get configmap kubeadm-config");
            let yaml = self.admin(id, &cmd, self.settings().gate_timeout).await?;
            return Ok(ku::parse_cluster_version(&yaml) == Some(*release));
        }
        Ok(true)
    }

    /// The patch a newest-patch rung came to earlier in this apply.
    fn rung_resolved(&self, rung: &RungRelease) -> Option<Release> {
        self.rung_releases
            .lock()
            .unwrap()
            .get(&rung.minor())
            .copied()
    }

    /// Settles a newest-patch rung: on its first control plane (whose
    /// source now names the minor), the newest kubeadm patch its repository
    /// lists; elsewhere (the first control plane finished in an earlier
    /// run), the release kubeadm recorded for the cluster.
    async fn resolve_rung(
        &self,
        id: &StepId,
        node: &NodeName,
        rung: &RungRelease,
        role: UpgradeRole,
    ) -> Result<Release, StepError> {
        let (major, minor) = rung.minor();
        let no_release = || StepError::NoRelease {
            node: node.clone(),
            minor: format!("{major}.{minor}"),
        };
        let release = if role == UpgradeRole::First {
            let cmd = self
                .step_cmd(apt::madison("kubeadm"))
                .label("apt-cache madison kubeadm");
            let listed = apt::parse_madison(&self.must(id, node, &cmd).await?);
            listed
                .get("kubeadm")
                .and_then(|v| apt::newest(v, major, minor, None))
                .and_then(|v| apt::release_of(&v))
                .map(|(a, b, c)| Release(a, b, c))
                .ok_or_else(no_release)?
        } else {
            let cmd = self
                .step_cmd(kube::etcd_snapshot::get_kubeadm_config())
                .label("kubectl get configmap kubeadm-config");
            let yaml = self.admin(id, &cmd, self.settings().gate_timeout).await?;
            ku::parse_cluster_version(&yaml)
                .filter(|r| r.minor() == (major, minor))
                .ok_or_else(no_release)?
        };
        let settled = *self
            .rung_releases
            .lock()
            .unwrap()
            .entry((major, minor))
            .or_insert(release);
        self.events.progress(
            id,
            format!("the rung {rung} is {settled}: the newest patch its repository lists"),
        );
        Ok(settled)
    }

    /// The repository of the release's minor: the file's (pkgs.k8s.io's,
    /// or its mirror) with the minor in its path set to the release's.
    fn rung_repository(&self, node: &NodeName, release: &Release) -> Result<String, StepError> {
        let n = self.node(node)?;
        let file = crate::plan::host::repository(&n.host, release.minor());
        Ok(ku::repository_for_minor(&file, release))
    }

    async fn upgrade_host_state(
        &self,
        id: &StepId,
        node: &NodeName,
    ) -> Result<HostState, StepError> {
        let cmd = Cmd::new(ku::host_state_script())
            .timeout(Duration::from_secs(30))
            .label("read the kube packages and the API server's version");
        let out = self.must(id, node, &cmd).await?;
        Ok(ku::parse_host_state(&out))
    }

    /// The node's Node object, as the shared poll last saw it.
    async fn node_now(
        &self,
        id: &StepId,
        node: &NodeName,
    ) -> Result<crate::kube::nodes::Node, StepError> {
        let nodes = self.nodes_now(id).await?;
        nodes
            .get(node.as_str())
            .cloned()
            .ok_or_else(|| StepError::NoNode(node.clone()))
    }

    /// `phases` (`(label, script)`) on `node` in one round trip; the one
    /// that fails is named in the error, with its tool's last words.
    async fn upgrade_phases(
        &self,
        id: &StepId,
        node: &NodeName,
        phases: Vec<(String, String)>,
    ) -> Result<(), StepError> {
        if phases.is_empty() {
            return Ok(());
        }
        let label = phases
            .iter()
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join(", then ");
        let cmd = self.step_cmd(folded(&phases)).label(label);
        self.must(id, node, &cmd)
            .await
            .map(drop)
            .map_err(|e| name_failed_phase(e, &phases))
    }

    /// The drain before the kubelet's upgrade, after gt's cordon mark when
    /// `mark` (one admin command: the mark lands before the drain cordons);
    /// a drain that a budget or a pod without a controller blocked fails
    /// naming them.
    async fn upgrade_drain(
        &self,
        id: &StepId,
        node: &NodeName,
        mark: bool,
    ) -> Result<(), StepError> {
        let timeout = self.settings().drain_timeout;
        let mut phases = Vec::new();
        if mark {
            phases.push((
                "mark the cordon as gt's".to_string(),
                ku::mark_cordoned(node.as_str()),
            ));
        }
        phases.push((
            "kubectl drain".to_string(),
            ku::drain_for_upgrade(node.as_str(), timeout, self.spec.drain.force),
        ));
        let cmd = Cmd::new(folded(&phases))
            .timeout(timeout + Duration::from_secs(30))
            .label(if mark {
                "mark the cordon as gt's, then kubectl drain"
            } else {
                "kubectl drain"
            });
        let error = match self.admin(id, &cmd, self.settings().gate_timeout).await {
            Ok(_) => return Ok(()),
            Err(e) => name_failed_phase(e, &phases),
        };
        let said = match &error {
            StepError::Exited { output, .. } => output.clone(),
            StepError::GaveUp { last, .. } => match last.as_ref() {
                StepError::Exited { output, .. } => output.clone(),
                _ => return Err(error),
            },
            _ => return Err(error),
        };
        match ku::parse_drain_block(&said) {
            Some(DrainBlock::BarePods(pods)) => Err(StepError::DrainBarePods {
                node: node.clone(),
                pods: pods.join(", "),
            }),
            Some(DrainBlock::Evictions(pods)) => {
                let blocked = self.budgets_blocking(id, &pods).await;
                Err(StepError::DrainBlocked {
                    node: node.clone(),
                    timeout,
                    blocked,
                })
            }
            None => Err(error),
        }
    }

    /// What held the evictions of `pods` (`(namespace, name)`): the
    /// budgets covering each (those allowing no disruption, when any do),
    /// or the pod alone when they cannot be read.
    async fn budgets_blocking(&self, id: &StepId, pods: &[(String, String)]) -> String {
        let quick = Duration::from_secs(10);
        let read = |script: String, label: &'static str| {
            let cmd = Cmd::new(script).timeout(quick).label(label);
            async move { self.admin(id, &cmd, quick).await.ok() }
        };
        let (all_pods, pdbs) = tokio::join!(
            read(workloads::get_pods_json(), "kubectl get pods"),
            read(workloads::get_pdbs_json(), "kubectl get pdb"),
        );
        let all_pods = all_pods
            .and_then(|j| workloads::parse_pods(&j).ok())
            .unwrap_or_default();
        let pdbs = pdbs
            .and_then(|j| workloads::parse_pdbs(&j).ok())
            .unwrap_or_default();
        let named: Vec<String> = pods
            .iter()
            .map(|(ns, name)| {
                let key = format!("{ns}/{name}");
                let covering: Vec<&workloads::Pdb> = all_pods
                    .iter()
                    .find(|p| p.namespace == *ns && p.name == *name)
                    .map(|p| pdbs.iter().filter(|b| b.covers(p)).collect())
                    .unwrap_or_default();
                let exhausted: Vec<&&workloads::Pdb> = covering
                    .iter()
                    .filter(|b| b.disruptions_allowed <= 0)
                    .collect();
                let shown: Vec<String> = if exhausted.is_empty() {
                    covering
                        .iter()
                        .map(|b| format!("{}/{}", b.namespace, b.name))
                        .collect()
                } else {
                    exhausted
                        .iter()
                        .map(|b| format!("{}/{}", b.namespace, b.name))
                        .collect()
                };
                if shown.is_empty() {
                    format!("pod {key}")
                } else {
                    format!("PodDisruptionBudget {} (pod {key})", shown.join(", "))
                }
            })
            .collect();
        named.join("; ")
    }

    /// Waits until the node's Node is Ready with its kubelet at the
    /// release (a restarted kubelet reports its new version when it
    /// registers again), within gate_timeout: as the shared poll finds it,
    /// or as a line of the watch of Nodes that came after the wait began
    /// says.
    pub(super) async fn wait_kubelet_at(
        &self,
        id: &StepId,
        node: &NodeName,
        release: &Release,
    ) -> Result<(), StepError> {
        let timeout = self.settings().gate_timeout;
        let deadline = Instant::now() + timeout;
        let want = release.to_string();
        let waiting_since = tokio::time::Instant::now();
        let mut seen = 0;
        let mut shown = String::new();
        loop {
            let watched =
                self.node_watch
                    .ready()
                    .ready_at_since(node.as_str(), waiting_since, release);
            let Some(snapshot) = self
                .next_nodes_unless(id, waiting_since, seen, watched)
                .await
            else {
                return Ok(());
            };
            seen = snapshot.seq;
            let why = match snapshot.value {
                Ok(nodes) => match nodes.get(node.as_str()) {
                    Some(n) => {
                        let at = n.kubelet_version.as_deref().unwrap_or("no version");
                        let at_release = n
                            .kubelet_version
                            .as_deref()
                            .and_then(kube::kubeadm::parse_version)
                            == Some(*release);
                        match (at_release, n.ready) {
                            (true, ConditionStatus::True) => return Ok(()),
                            (true, ready) => format!(
                                "its kubelet runs {at}, Ready={ready:?} ({})",
                                n.ready_reason.as_deref().unwrap_or("no reason given")
                            ),
                            (false, _) => format!("its kubelet reports {at}"),
                        }
                    }
                    None => format!("no Node {node}"),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(StepError::KubeletNotAtRelease {
                    node: node.clone(),
                    version: *release,
                    timeout,
                    why,
                });
            }
            if why != shown {
                self.events.progress(
                    id,
                    format!(
                        "waiting for {node} to be Ready at {want} ({})",
                        first_line(&why)
                    ),
                );
                shown = why;
            }
        }
    }
}

/// `(label, script)` phases as one remote script (`kube::script`): one
/// round trip, stopping at the first that fails.
fn folded(phases: &[(String, String)]) -> String {
    let scripts: Vec<&str> = phases.iter().map(|(_, s)| s.as_str()).collect();
    script::in_order(&scripts)
}

/// A [`folded`] script's failure under the label of the phase that failed,
/// its marker line dropped from the output.
fn name_failed_phase(e: StepError, phases: &[(String, String)]) -> StepError {
    match e {
        StepError::Exited {
            program,
            node,
            code,
            output,
        } => match script::failed_part(&output)
            .and_then(|(i, rest)| Some((phases.get(i)?.0.clone(), rest)))
        {
            Some((phase, rest)) => StepError::Exited {
                program: phase,
                node,
                code,
                output: rest,
            },
            None => StepError::Exited {
                program,
                node,
                code,
                output,
            },
        },
        StepError::GaveUp { last, patience } => StepError::GaveUp {
            last: Box::new(name_failed_phase(*last, phases)),
            patience,
        },
        e => e,
    }
}
