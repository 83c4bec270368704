//! A member's process: the simulated kubelet's part for the etcd static Pod.
//!
//! [`sync`] makes the process match the host: running what
//! `/etc/kubernetes/manifests/etcd.yaml` says (restarted when the manifest
//! changes) while the host is up and its kubelet runs; stopped when the
//! host is down or the manifest is gone; left alone while the kubelet is
//! stopped (a stopped kubelet leaves its containers running). The lab
//! daemon calls it for every control plane a few times a second, and
//! kubeadm calls it at once after writing a manifest. The process is
//! detached (its own session), runs with the host's `GT_HOST_ROOT` (so a
//! host going down takes it along, and `gt lab down` finds it), and is
//! recorded in `DIR/pids/etcd-NODE.pid`.

use super::{ctl, manifest, program};
use crate::procs;
use crate::sim::files;
use crate::sim::state;
use crate::topology::{Faults, LabTopology};
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PID_PREFIX: &str = "etcd-";

pub(crate) fn pid_name(node: &str) -> String {
    format!("{PID_PREFIX}{node}")
}

/// Whether a recorded process's name is a member's ([`pid_name`]).
pub(crate) fn is_pid_name(name: &str) -> bool {
    name.starts_with(PID_PREFIX)
}

pub(crate) fn host_root(lab_dir: &Path, node: &str) -> PathBuf {
    lab_dir.join("hosts").join(node)
}

/// The container's own filesystem: what is not on a hostPath volume.
pub(crate) fn scratch_root(lab_dir: &Path, node: &str) -> PathBuf {
    lab_dir.join("etcd").join("containers").join(node)
}

pub(crate) fn log_path(lab_dir: &Path, node: &str) -> PathBuf {
    lab_dir.join("logs").join(format!("etcd-{node}.log"))
}

/// The etcd static Pod on `node`, when its manifest is there.
pub(crate) fn pod(lab_dir: &Path, node: &str) -> Option<manifest::Pod> {
    let text = std::fs::read_to_string(
        host_root(lab_dir, node).join(files::manifest_path("etcd").trim_start_matches('/')),
    )
    .ok()?;
    Some(manifest::parse(&text))
}

/// The pid of the member running for `node`, if one runs.
pub(crate) fn running_pid(lab_dir: &Path, node: &str) -> Option<i32> {
    procs::recorded_pid(lab_dir, &pid_name(node)).filter(|p| procs::is_lab_process(*p, lab_dir))
}

struct NodeLock {
    _file: File,
}

fn lock(lab_dir: &Path, node: &str) -> io::Result<NodeLock> {
    let dir = lab_dir.join("etcd");
    std::fs::create_dir_all(&dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{node}.lock")))?;
    file.lock()?;
    Ok(NodeLock { _file: file })
}

enum Want {
    Run(manifest::Pod),
    Stop,
    Leave,
}

fn wanted(lab_dir: &Path, node: &str) -> io::Result<Want> {
    if Faults::load(lab_dir, node).down {
        return Ok(Want::Stop);
    }
    let Some(pod) = pod(lab_dir, node) else {
        return Ok(Want::Stop);
    };
    if !state::read_hosts(lab_dir)?.kubelet_running(node) {
        return Ok(Want::Leave);
    }
    Ok(Want::Run(pod))
}

/// Brings `node`'s member in line with its host (see the module doc).
pub(crate) fn sync(lab_dir: &Path, node: &str, address: &str) -> io::Result<()> {
    let _guard = lock(lab_dir, node)?;
    match wanted(lab_dir, node)? {
        Want::Leave => Ok(()),
        Want::Stop => {
            stop_locked(lab_dir, node);
            Ok(())
        }
        Want::Run(pod) => {
            let root = host_root(lab_dir, node);
            let args = pod.host_args(address, &root, &scratch_root(lab_dir, node));
            if let Some(pid) = running_pid(lab_dir, node) {
                if procs::cmdline(pid).get(1..) == Some(&args[..]) {
                    return Ok(());
                }
                stop_locked(lab_dir, node);
            }
            start(lab_dir, node, &pod, &args)
        }
    }
}

fn start(lab_dir: &Path, node: &str, pod: &manifest::Pod, args: &[String]) -> io::Result<()> {
    let root = host_root(lab_dir, node);
    let scratch = scratch_root(lab_dir, node);
    std::fs::create_dir_all(&scratch)?;
    // The kubelet creates hostPath volumes (DirectoryOrCreate); kubeadm made
    // the data directory 0700, which etcd 3.5 insists on.
    for (_, hp) in &pod.host_paths {
        std::fs::create_dir_all(root.join(hp.trim_start_matches('/')))?;
    }
    if let Some(data) = pod.flag("data-dir") {
        let p = pod.host_path(data, &root, &scratch);
        std::fs::create_dir_all(&p)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut cmd = Command::new(program(lab_dir, "etcd"));
    cmd.args(args)
        .env_clear()
        .env("GT_HOST_ROOT", &root)
        .env("PATH", "/usr/bin:/bin")
        .current_dir(&scratch);
    let pid = procs::spawn_detached(&mut cmd, &log_path(lab_dir, node))?;
    // spawn_detached closes every inherited descriptor before exec, the
    // one that reports exec to the parent too: it returns as soon as the
    // child is forked. Until the exec, the child still looks like us.
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs::is_alive(pid as i32)
        && !procs::is_lab_process(pid as i32, lab_dir)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    procs::record(lab_dir, &pid_name(node), pid)
}

fn stop_locked(lab_dir: &Path, node: &str) {
    if let Some(pid) = running_pid(lab_dir, node) {
        procs::stop(&[pid], Duration::from_secs(5));
    }
    procs::forget(lab_dir, &pid_name(node));
}

/// Stops `node`'s member now (kubeadm reset removing its containers).
pub(crate) fn stop(lab_dir: &Path, node: &str) -> io::Result<()> {
    let _guard = lock(lab_dir, node)?;
    stop_locked(lab_dir, node);
    Ok(())
}

/// Every control plane's member in line with its host: the daemon's loop.
pub(crate) fn sync_all(lab_dir: &Path) {
    let Ok(topo) = LabTopology::load(lab_dir) else {
        return;
    };
    for n in topo.nodes.iter().filter(|n| n.role == "control-plane") {
        if let Err(e) = sync(lab_dir, &n.name, &n.address) {
            eprintln!("etcd on {}: {e}", n.name);
        }
    }
}

/// Waits until `node`'s member accepts client connections (a learner does,
/// before it can serve reads), or says why not.
pub(crate) fn wait_listening(
    lab_dir: &Path,
    node: &str,
    address: &str,
    timeout: Duration,
) -> Result<(), String> {
    let client = format!("{address}:{}", super::CLIENT_PORT);
    let alive = || running_pid(lab_dir, node).is_some();
    if procs::wait_listening(&client, timeout, alive) {
        return Ok(());
    }
    Err(not_up(
        lab_dir,
        node,
        &format!("is not listening on {client}"),
    ))
}

/// Waits until `node`'s member is healthy (has a leader, serves reads).
pub(crate) fn wait_healthy(
    lab_dir: &Path,
    node: &str,
    address: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if ctl::healthy_now(address) {
            return Ok(());
        }
        if running_pid(lab_dir, node).is_none() {
            return Err(not_up(lab_dir, node, "exited"));
        }
        if Instant::now() >= deadline {
            return Err(not_up(lab_dir, node, "did not become healthy"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn not_up(lab_dir: &Path, node: &str, what: &str) -> String {
    let log = log_path(lab_dir, node);
    format!(
        "etcd on {node} {what}; {} ends:\n{}",
        log.display(),
        procs::log_tail(&log, 5)
    )
}
