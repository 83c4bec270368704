//! The steps of `gt restore`'s plan on each control plane. The snapshot
//! (every Secret of the cluster) travels on stdin, is checked by its sha256
//! on arrival, and is removed by the last step whatever happened.

use super::{StepError, StepRunner};
use crate::kube::etcd_snapshot::{self as snap, RestoreTool, RestoredMember};
use crate::plan::StepId;
use crate::spec::NodeName;
use crate::transport::Cmd;

/// How long the old etcd container may take to stop once its manifest is
/// parked: the kubelet's 20 s file check plus etcd's 30 s graceful stop, and
/// slack for a loaded Raspberry Pi.
const OLD_ETCD_STOPS_WITHIN: std::time::Duration = std::time::Duration::from_secs(90);

/// What a restore copies to every control plane.
pub struct RestoreInput {
    pub snapshot: Vec<u8>,
    /// sha256 of `snapshot`, lowercase hex.
    pub snapshot_sha256: String,
    /// An etcdutl for the control planes to run, when gt ships one
    /// (`--etcdutl`); otherwise the hosts' own, on their PATH.
    pub etcdutl: Option<Vec<u8>>,
}

impl RestoreInput {
    fn tool(&self) -> RestoreTool {
        if self.etcdutl.is_some() {
            RestoreTool::Shipped
        } else {
            RestoreTool::OnPath
        }
    }
}

impl StepRunner<'_> {
    fn restore_input(&self) -> Result<&RestoreInput, StepError> {
        self.restore.as_deref().ok_or_else(|| {
            StepError::Restore("internal error: a restore step outside gt restore".into())
        })
    }

    pub(super) async fn restore_prepare(
        &self,
        id: &StepId,
        node: &NodeName,
    ) -> Result<(), StepError> {
        let input = self.restore_input()?;
        let copy = |name: &str, bytes: &[u8], mode: &str| {
            self.step_cmd(snap::receive_file(name, &snap::sha256_hex(bytes), mode))
                .stdin(snap::encode_base64(bytes))
                .label(format!("copy {name}"))
        };
        self.must(id, node, &copy("snapshot.db", &input.snapshot, "600"))
            .await?;
        if let Some(tool) = &input.etcdutl {
            self.must(id, node, &copy("etcdutl", tool, "700")).await?;
        }
        let check = self
            .step_cmd(snap::check_restore_host(input.tool()))
            .label("check the host can restore");
        self.must(id, node, &check).await?;
        Ok(())
    }

    pub(super) async fn stop_control_plane(
        &self,
        id: &StepId,
        node: &NodeName,
    ) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(snap::stop_control_plane())
            .label("park the etcd and API server manifests");
        self.must(id, node, &cmd).await?;
        let within = OLD_ETCD_STOPS_WITHIN.min(self.settings().step_timeout);
        let wait = Cmd::new(snap::wait_etcd_stopped(
            &self.spec.cluster.cri_socket,
            within,
        ))
        .timeout(within + std::time::Duration::from_secs(10))
        .label("wait for the old etcd container to stop");
        self.must(id, node, &wait).await.map(drop)
    }

    pub(super) async fn restore_etcd(
        &self,
        id: &StepId,
        node: &NodeName,
        member: &RestoredMember<'_>,
    ) -> Result<(), StepError> {
        let tool = self.restore_input()?.tool();
        let cmd = self
            .step_cmd(snap::restore_member(tool, member))
            .label("etcdutl snapshot restore");
        self.must(id, node, &cmd).await.map(drop)
    }

    pub(super) async fn start_manifest(
        &self,
        id: &StepId,
        node: &NodeName,
        manifest: &str,
    ) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(snap::start_manifest(manifest))
            .label(format!("put {manifest} back"));
        self.must(id, node, &cmd).await.map(drop)
    }

    pub(super) async fn clean_restore(
        &self,
        id: &StepId,
        node: &NodeName,
    ) -> Result<(), StepError> {
        let cmd = self
            .step_cmd(snap::clean_restore_work_dir())
            .label("remove the snapshot copy");
        self.must(id, node, &cmd).await.map(drop)
    }
}
