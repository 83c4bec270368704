//! `etcdctl member remove` through a healthy control plane's etcd pod: the
//! member of a control plane `kubeadm reset` cannot reach, or one that no
//! control plane owns.

use super::{StepError, StepRunner};
use crate::kube::etcd::{self, MemberId};
use crate::plan::StepId;
use crate::spec::NodeName;

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
        let cmd = self
            .step_cmd(etcd::member_remove(via.as_str(), member_id))
            .label("etcdctl member remove");
        match self.admin(id, &cmd, self.settings().gate_timeout).await {
            Ok(out) => {
                self.events.progress(id, out.trim().to_string());
                Ok(())
            }
            // Gone already (a rerun, or kubeadm reset got to it first).
            Err(e) if e.tool_said("member not found") => {
                self.events
                    .progress(id, format!("etcd member {member} is gone already"));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
