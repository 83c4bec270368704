//! `etcdctl member remove` through a healthy control plane's etcd pod: the
//! member of a control plane `kubeadm reset` cannot reach, or one that no
//! control plane owns.

use super::{StepError, StepRunner};
use crate::kube::etcd::{self, MemberId};
use crate::plan::StepId;
use crate::spec::NodeName;
use std::time::{Duration, Instant};

/// etcd's answers to a membership change it will take once its members
/// have been connected for its health interval (5 s).
const NOT_YET: [&str; 2] = ["unhealthy cluster", "not enough started members"];

impl StepRunner<'_> {
    pub(super) async fn remove_etcd_member(
        &self,
        id: &StepId,
        member: &str,
        via: &NodeName,
    ) -> Result<(), StepError> {
        let member_id: MemberId = member.parse().map_err(|_| StepError::BadEtcdMemberId {
            id: member.to_string(),
        })?;
        match self.remove_member(id, via, member_id).await {
            Ok(()) => Ok(()),
            // Gone already (a rerun, or kubeadm reset got to it first).
            Err(e) if e.tool_said("member not found") => {
                self.events
                    .progress(id, format!("etcd member {member} is gone already"));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `etcdctl member remove` through `via`'s etcd pod, asked again while
    /// etcd says its members have not been connected long enough, within
    /// gate_timeout.
    async fn remove_member(
        &self,
        id: &StepId,
        via: &NodeName,
        member: MemberId,
    ) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(etcd::member_remove(via.as_str(), member))
            .label("etcdctl member remove");
        let deadline = Instant::now() + self.settings().gate_timeout;
        loop {
            match self.admin(id, &cmd, Duration::ZERO).await {
                Ok(out) => {
                    self.events.progress(id, out.trim().to_string());
                    return Ok(());
                }
                Err(e) if NOT_YET.iter().any(|n| e.tool_said(n)) && Instant::now() < deadline => {
                    self.events.progress(
                        id,
                        "etcd takes a membership change once its members have been connected for 5 s; asking again".to_string(),
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `kubeadm reset` on `node` wiped its etcd data but kept its member
    /// (`why`): find the member by name through another control plane's etcd
    /// pod and remove it, waiting out etcd's health interval, within
    /// gate_timeout.
    pub(super) async fn remove_member_reset_kept(
        &self,
        id: &StepId,
        node: &NodeName,
        why: &str,
    ) -> Result<(), StepError> {
        let kept = |e: String| StepError::EtcdMemberKept {
            node: node.clone(),
            why: format!("{why}; then gt's own `etcdctl member remove`: {e}"),
        };
        let via = self
            .admins
            .lock()
            .unwrap()
            .iter()
            .find(|n| *n != node)
            .cloned()
            .ok_or_else(|| kept("no other control plane to run it through".into()))?;
        self.events.progress(
            id,
            format!("kubeadm reset kept {node}'s etcd member ({why}); removing it through {via}"),
        );
        let patience = self.settings().gate_timeout;
        let list = self
            .step_cmd(etcd::member_list(via.as_str()))
            .label("etcdctl member list");
        let members = self
            .admin(id, &list, patience)
            .await
            .map_err(|e| kept(e.to_string()))?;
        let members = etcd::parse_member_list(&members).map_err(|e| kept(e.to_string()))?;
        let Some(member) = members.iter().find(|m| m.name == node.as_str()) else {
            return Ok(());
        };
        match self.remove_member(id, &via, member.id).await {
            Err(e) if !e.tool_said("member not found") => Err(kept(e.to_string())),
            _ => Ok(()),
        }
    }
}
