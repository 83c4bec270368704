//! Which kubelet a host runs: the version of the kubelet package installed
//! when the kubelet last started. Upgrading the package changes nothing until
//! systemd restarts the kubelet (apt does not restart it); the restarted
//! kubelet posts its new version in its Node's `status.nodeInfo` and, after
//! `systemctl restart`, reports NotReady until it has re-synced
//! (`Op::KubeletRestartReady`). A kubelet
//! newer than the API server still starts and registers, as the real one
//! does: the skew policy is the operator's to keep.

use super::debver;
use super::dpkg;
use super::host::Host;
use super::latency::Op;
use super::state::State;

/// `v1.33.3` from the installed kubelet package; `None` when it is not installed.
pub(crate) fn installed_version(host: &Host) -> Option<String> {
    let db = dpkg::load(host);
    db.get("kubelet")
        .filter(|e| e.installed())
        .map(|e| format!("v{}", debver::upstream(&e.version)))
}

/// The kubelet process on `host` started: its Node reports the installed
/// version. After `systemctl restart` (`resync`) it is NotReady while the
/// kubelet re-syncs; a kubelet started after a stop, a boot or a crash loop is
/// Ready at once, as the lab's other timings assume.
pub(crate) fn started(host: &Host, s: &mut State, now: f64, resync: bool) {
    let version = installed_version(host);
    let ready_at = now + host.latency(Op::KubeletRestartReady);
    let rv = s.resource_version + 1;
    for n in s.nodes.values_mut().filter(|n| n.host == host.name) {
        if let Some(v) = &version {
            n.kubelet_version = v.clone();
        }
        if resync {
            n.kubelet_ready_at = Some(ready_at);
        }
        n.resource_version = rv;
    }
}
