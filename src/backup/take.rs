//! Collecting a backup from the cluster: a snapshot from the first control
//! plane whose etcd member is healthy, with the rebuild PKI and the kubeadm
//! configuration from the same host. The bytes travel on stdout only, are
//! checked here, and never appear in a message.

use super::{Collected, MAX_SNAPSHOT_BYTES};
use crate::kube::etcd_snapshot::{self, check_snapshot, decode_base64};
use crate::spec::NodeName;
use crate::transport::{Cmd, Hosts, Output};
use std::time::Duration;

/// Why no backup could be taken: what each control plane tried said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    #[error("no control plane to take an etcd snapshot from: cluster.toml has none present, or none has joined the cluster yet")]
    NoControlPlane,
    #[error("no control plane gave a usable etcd snapshot; {}", attempts.iter().map(|(n, why)| format!("{n}: {why}")).collect::<Vec<_>>().join("; "))]
    Failed { attempts: Vec<(NodeName, String)> },
}

/// Takes a backup through the first of `control_planes` that can, each
/// command bounded by `timeout`. `on_try` hears which one is being tried.
pub async fn collect(
    hosts: &Hosts,
    control_planes: &[NodeName],
    timeout: Duration,
    mut on_try: impl FnMut(&NodeName),
) -> Result<Collected, TakeError> {
    if control_planes.is_empty() {
        return Err(TakeError::NoControlPlane);
    }
    let mut attempts = Vec::new();
    for node in control_planes {
        on_try(node);
        match collect_from(hosts, node, timeout).await {
            Ok(c) => return Ok(c),
            Err(why) => attempts.push((node.clone(), why)),
        }
    }
    Err(TakeError::Failed { attempts })
}

async fn collect_from(
    hosts: &Hosts,
    node: &NodeName,
    timeout: Duration,
) -> Result<Collected, String> {
    let host = hosts.get(node.as_str()).await.map_err(|e| e.to_string())?;
    let run = |script: String, label: &'static str, max: u64| {
        let cmd = Cmd::new(script)
            .label(label)
            .timeout(timeout)
            .max_output(usize::try_from(max).unwrap_or(usize::MAX));
        let host = host.clone();
        async move {
            let out = host.run(&cmd, None).await.map_err(|e| e.to_string())?;
            ok_stdout(label, out)
        }
    };
    let nonce = format!("{:016x}", rand::random::<u64>());
    // base64 grows the bytes by a third, plus line breaks.
    let snapshot_text = run(
        etcd_snapshot::take_snapshot(node.as_str(), &etcd_snapshot::remote_snapshot_name(&nonce)),
        "etcd snapshot",
        MAX_SNAPSHOT_BYTES / 3 * 4 + MAX_SNAPSHOT_BYTES / 38,
    )
    .await?;
    let snapshot = decode_base64(&snapshot_text)
        .map_err(|e| format!("the snapshot did not come back whole: {e}"))?;
    let info =
        check_snapshot(&snapshot).map_err(|e| format!("the snapshot it gave is unusable: {e}"))?;
    let pki_text = run(etcd_snapshot::read_rebuild_pki(), "read the PKI", 1 << 20).await?;
    let pki_tar =
        decode_base64(&pki_text).map_err(|e| format!("the PKI did not come back whole: {e}"))?;
    let kubeadm_config = run(
        etcd_snapshot::get_kubeadm_config(),
        "kubectl get configmap kubeadm-config",
        1 << 20,
    )
    .await?;
    Ok(Collected {
        node: node.clone(),
        snapshot,
        info,
        pki_tar,
        kubeadm_config,
    })
}

/// stdout of a command that succeeded; otherwise what its stderr said
/// (never its stdout: that may be part of a snapshot or a key).
fn ok_stdout(label: &str, out: Output) -> Result<String, String> {
    if out.success() {
        return Ok(out.stdout);
    }
    let said: Vec<&str> = out
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('{'))
        .collect();
    let error_line = said
        .iter()
        .find(|l| l.starts_with("Error: ") || l.starts_with("error: "));
    let said = match error_line.or(said.last()) {
        Some(l) => crate::kube::secret::redact(l),
        None => "no message".into(),
    };
    Err(format!("{label} exited with status {}: {said}", out.code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_tools_last_words_never_its_stdout() {
        let out = Output {
            code: 1,
            stdout: "c2VjcmV0".into(),
            stderr: "{\"level\":\"info\",\"msg\":\"created temporary db file\"}\n\
                     Error: context deadline exceeded\n\
                     command terminated with exit code 1\n"
                .into(),
        };
        assert_eq!(
            ok_stdout("etcd snapshot", out),
            Err("etcd snapshot exited with status 1: Error: context deadline exceeded".into())
        );
    }
}
