//! Steps that go through a control plane's admin kubeconfig (kubectl, and
//! kubeadm's token and certificate commands), retried while an API server
//! is still coming up.

use super::exec::{exited, first_line};
use super::{NodeMap, StepError, StepRunner, FIRST_POLL, MAX_POLL};
use crate::kube::nodes::ConditionStatus;
use crate::kube::secret::redact;
use crate::kube::{self, kubeadm};
use crate::plan::{Label, SetDiff, StepId};
use crate::spec::{NodeName, Taint};
use crate::transport::{Cmd, Output};
use std::time::{Duration, Instant};

impl StepRunner<'_> {
    /// Runs an admin command (kubectl with admin.conf, kubeadm token/certs)
    /// on the first control plane that can, retrying while the API server is
    /// still coming up, until `patience` has passed.
    pub(super) async fn admin(
        &self,
        id: &StepId,
        cmd: &Cmd,
        patience: Duration,
    ) -> Result<String, StepError> {
        let deadline = Instant::now() + patience;
        let mut delay = FIRST_POLL;
        loop {
            let candidates = self.admins.lock().unwrap().clone();
            if candidates.is_empty() {
                return Err(StepError::NoAdminHost {
                    program: cmd.program().to_string(),
                });
            }
            let mut last = None;
            for node in &candidates {
                match self.exec(id, node, cmd).await {
                    Ok(out) if out.success() => return Ok(out.stdout),
                    Ok(out) if transient(&out) => last = Some(exited(cmd, node, &out)),
                    Ok(out) => return Err(exited(cmd, node, &out)),
                    // This host is gone: try the next control plane.
                    Err(e) => last = Some(e),
                }
            }
            let last = last.unwrap_or_else(|| StepError::NoAdminHost {
                program: cmd.program().to_string(),
            });
            if Instant::now() + delay > deadline {
                return Err(StepError::GaveUp {
                    last: Box::new(last),
                    patience,
                });
            }
            self.events.progress(
                id,
                format!(
                    "API server not answering yet; retrying: {}",
                    first_line(&last.to_string())
                ),
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    /// Every Node, as of at most one poll interval ago.
    pub(super) async fn nodes_now(&self, id: &StepId) -> Result<NodeMap, StepError> {
        let latest = self.nodes.latest();
        match &latest {
            Some(s) if s.taken.elapsed() < super::poll::POLL => s.value.clone(),
            _ => {
                let seen = latest.map_or(0, |s| s.seq);
                // Now, not when the watch next sees a change.
                let _eager = self.nodes.eager();
                self.nodes
                    .newer_than(seen, || self.get_nodes(id))
                    .await
                    .value
            }
        }
    }

    pub(super) fn promote_admin(&self, node: &NodeName) {
        let mut a = self.admins.lock().unwrap();
        a.retain(|n| n != node);
        a.insert(0, node.clone());
    }

    pub(super) async fn install_cni(&self, id: &StepId) -> Result<(), StepError> {
        let manifest = self.cni_manifest.clone().ok_or(StepError::NoCniManifest)?;
        self.events
            .progress(id, format!("{} ({})", manifest.source, manifest.sha256));
        let cmd = self
            .step_cmd(kube::cni::apply_manifest_from_stdin())
            .stdin(manifest.bytes.to_vec())
            .label("kubectl apply -f - (CNI)");
        self.admin(id, &cmd, self.settings().gate_timeout)
            .await
            .map(drop)
    }

    pub(super) async fn upload_certs(&self, id: &StepId) -> Result<(), StepError> {
        let release = self.cluster_release(id).await?;
        let cmd = self
            .step_cmd(kubeadm::upload_certs_command())
            .stdin(kubeadm::upload_certs_config(self.spec, &release))
            .label("kubeadm init phase upload-certs");
        let out = self.admin(id, &cmd, self.settings().gate_timeout).await?;
        let key = kubeadm::parse_upload_certs(&out).ok_or_else(|| StepError::NoCertificateKey {
            output: first_line(&redact(&out)).to_string(),
        })?;
        self.secrets.lock().unwrap().certificate_key = Some(key);
        Ok(())
    }

    pub(super) async fn mint_token(&self, id: &StepId) -> Result<(), StepError> {
        if self.secrets.lock().unwrap().token.is_some() {
            self.events
                .progress(id, "kubeadm init created this run's token");
            return Ok(());
        }
        self.create_token(id).await.map(drop)
    }

    /// The cluster's exact release for a configuration kubeadm reads: the
    /// one kubeadm recorded (or this run's init made), else the one init
    /// would make (the file's exact patch, else the control plane's kubeadm).
    async fn cluster_release(&self, id: &StepId) -> Result<kubeadm::Release, StepError> {
        if let Some(r) = *self.cluster_release.lock().unwrap() {
            return Ok(r);
        }
        let node = self
            .admins
            .lock()
            .unwrap()
            .first()
            .cloned()
            .ok_or_else(|| StepError::NoAdminHost {
                program: "kubeadm".into(),
            })?;
        self.init_release(id, &node).await
    }

    pub(super) async fn revoke_token(&self, id: &StepId) -> Result<(), StepError> {
        let Some(token) = self.secrets.lock().unwrap().token.clone() else {
            self.events
                .progress(id, "no token was created: nothing to revoke");
            return Ok(());
        };
        let cmd = self
            .step_cmd(kubeadm::token_delete_command(token.id()))
            .label("kubeadm token delete");
        // Patience of one poll cycle: the cluster is up if any join worked.
        match self.admin(id, &cmd, Duration::from_secs(10)).await {
            Ok(_) => {
                self.secrets.lock().unwrap().token = None;
                Ok(())
            }
            Err(e) if e.tool_said("not found") => Ok(()),
            Err(e) => Err(StepError::TokenNotRevoked {
                token_id: token.id().to_string(),
                error: Box::new(e),
                ttl: self.spec.tokens.ttl.get(),
            }),
        }
    }

    pub(super) async fn ca_pin(&self, id: &StepId) -> Result<String, StepError> {
        if let Some(p) = self.ca_pin.lock().unwrap().clone() {
            return Ok(p);
        }
        let pem = self
            .admin(
                id,
                &Cmd::new(kubeadm::read_ca_command()).label("read ca.crt"),
                Duration::ZERO,
            )
            .await?;
        let pin = kube::pin::ca_pin_from_pem(&pem).map_err(|e| StepError::BadCaCertificate {
            what: "the cluster's ca.crt".into(),
            why: e.to_string(),
        })?;
        *self.ca_pin.lock().unwrap() = Some(pin.clone());
        Ok(pin)
    }

    /// `kubectl label` then `kubectl taint`, each only when its set changes.
    /// A key whose value changes is set, not removed and set again.
    pub(super) async fn update(
        &self,
        id: &StepId,
        node: &NodeName,
        labels: &SetDiff<Label>,
        taints: &SetDiff<Taint>,
    ) -> Result<(), StepError> {
        let set: Vec<String> = labels.added().iter().map(ToString::to_string).collect();
        let added = labels.added();
        let remove: Vec<String> = labels
            .removed()
            .into_iter()
            .filter(|r| !added.iter().any(|a| a.key == r.key))
            .map(|r| r.key.to_string())
            .collect();
        let patience = self.settings().gate_timeout;
        let label = (!set.is_empty() || !remove.is_empty()).then(|| {
            self.step_cmd(kube::label_node(node.as_str(), &set, &remove))
                .label("kubectl label")
        });
        let add: Vec<Taint> = taints.added().into_iter().cloned().collect();
        let remove: Vec<Taint> = taints
            .removed()
            .into_iter()
            .filter(|r| !add.iter().any(|a| a.key == r.key && a.effect == r.effect))
            .cloned()
            .collect();
        let taint = (!add.is_empty() || !remove.is_empty()).then(|| {
            self.step_cmd(kube::taint_node(node.as_str(), &add, &remove))
                .label("kubectl taint")
        });
        // Labels (metadata) and taints (spec) are separate fields, each
        // patched alone: neither command waits for the other.
        let patch = |cmd: Option<Cmd>| async move {
            match cmd {
                Some(cmd) => self.admin(id, &cmd, patience).await.map(drop),
                None => Ok(()),
            }
        };
        let (labelled, tainted) = tokio::join!(patch(label), patch(taint));
        labelled.and(tainted)
    }

    pub(super) async fn drain(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let t = self.settings().drain_timeout;
        let dead = self.unreachable.contains(node.as_str())
            || match self.nodes_now(id).await {
                Ok(nodes) => nodes
                    .get(node.as_str())
                    .is_some_and(|n| n.ready != ConditionStatus::True),
                Err(_) => false,
            };
        if dead {
            self.events.progress(
                id,
                format!("{node} is unreachable or not Ready: its pods cannot confirm they stopped; not waiting for them past their grace period"),
            );
        }
        let cmd = Cmd::new(kube::drain(node.as_str(), t, dead))
            .timeout(t + Duration::from_secs(30))
            .label("kubectl drain");
        self.admin(id, &cmd, self.settings().gate_timeout)
            .await
            .map(drop)
    }

    pub(super) async fn delete_node(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(kube::delete_node(node.as_str()))
            .label("kubectl delete node");
        match self.admin(id, &cmd, self.settings().gate_timeout).await {
            Err(e) if e.tool_said("NotFound") => Ok(()),
            r => r.map(drop),
        }
    }
}

/// `kubectl get nodes -o json`'s output as Node facts.
pub(super) fn parse_nodes(json: &str) -> Result<NodeMap, StepError> {
    kube::nodes::parse(json).map_err(|e| StepError::BadNodeList(e.to_string()))
}

/// A failure an API server that is still starting (or a load balancer
/// still checking it) gives: worth another try.
fn transient(out: &Output) -> bool {
    let e = out.stderr.to_ascii_lowercase();
    [
        "connection refused",
        "was refused",
        "unable to connect to the server",
        "etcdserver: request timed out",
        "eof",
        "serviceunavailable",
        "the server is currently unable",
        "connection reset",
        "i/o timeout",
        "tls handshake timeout",
    ]
    .iter()
    .any(|p| e.contains(p))
}
