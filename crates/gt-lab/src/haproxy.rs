//! A real HAProxy on the control-plane endpoint, as goldentooth's allyrion
//! runs one: TCP passthrough to the API servers, health-checked with
//! `GET /readyz`, so a control plane whose API server is unready drops out of
//! the rotation exactly as it would in the real cluster.

use crate::daemon::API_PORT;
use crate::procs;
use crate::topology::LabTopology;
use crate::LabError;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const NAME: &str = "haproxy";

/// haproxy on PATH, if installed.
pub(crate) fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
}

pub(crate) fn config_path(dir: &Path) -> PathBuf {
    dir.join("haproxy.cfg")
}

/// Health checks follow the lab's speed so that fast test labs notice an
/// unready API server quickly; never faster than 100ms, never slower than 2s.
fn check_interval_ms(speed: f64) -> u64 {
    ((2000.0 * speed) as u64).clamp(100, 2000)
}

/// `bootstrap`: the control plane that runs `kubeadm init`. HAProxy sends
/// traffic to it, as a backup server, while no control plane passes its
/// health check: right after `kubeadm init` a client must not depend on the
/// check interval (real kubeadm retries discovery for minutes; scripts and
/// the simulator's join do not).
pub(crate) fn render_config(dir: &Path, topo: &LabTopology, bootstrap: &str) -> String {
    let mut s = format!(
        "# Written by `gt lab up`: the load balancer of the lab in {d}.\n\
         global\n    maxconn 4096\n    # Another lab's HAProxy on the same endpoint must be an error, not a silent share.\n    noreuseport\n\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5m\n    timeout server 5m\n\n\
         frontend kube-apiserver\n    bind {ep}\n    default_backend control-planes\n\n\
         backend control-planes\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n    \
         default-server inter {inter}ms downinter {down}ms fall 2 rise 1\n",
        d = dir.display(),
        ep = topo.endpoint,
        inter = check_interval_ms(topo.speed),
        down = (check_interval_ms(topo.speed) / 4).max(25),
    );
    for n in topo.nodes.iter().filter(|n| n.role == "control-plane") {
        s.push_str(&format!(
            "    server {} {}:{API_PORT} check\n",
            n.name, n.address
        ));
    }
    if let Some(b) = topo.node(bootstrap) {
        s.push_str(&format!(
            "    server {}-fallback {}:{API_PORT} backup\n",
            b.name, b.address
        ));
    }
    s
}

pub(crate) fn start(
    dir: &Path,
    haproxy: &Path,
    topo: &LabTopology,
    bootstrap: &str,
) -> Result<(), LabError> {
    let cfg = config_path(dir);
    std::fs::write(&cfg, render_config(dir, topo, bootstrap))
        .map_err(LabError::io(format!("writing {}", cfg.display())))?;
    let log = dir.join("logs").join("haproxy.log");
    let out = std::fs::File::create(&log).map_err(LabError::io("creating the haproxy log"))?;
    let err = out
        .try_clone()
        .map_err(LabError::io("creating the haproxy log"))?;
    // -D: haproxy daemonizes itself and writes the pid file before the parent exits.
    let mut cmd = Command::new(haproxy);
    procs::close_inherited(&mut cmd);
    let status = cmd
        .arg("-D")
        .arg("-f")
        .arg(&cfg)
        .arg("-p")
        .arg(procs::pid_file(dir, NAME))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| LabError::Process(format!("cannot run {}: {e}", haproxy.display())))?;
    if !status.success() {
        return Err(LabError::Process(format!(
            "haproxy did not start ({status}); {} says:\n{}",
            log.display(),
            procs::log_tail(&log, 10)
        )));
    }
    let pid = procs::recorded_pid(dir, NAME);
    let alive = || pid.is_some_and(procs::is_alive);
    if !procs::wait_listening(&topo.endpoint, Duration::from_secs(10), alive) {
        return Err(LabError::Process(format!(
            "haproxy did not start listening on {}; {} says:\n{}",
            topo.endpoint,
            log.display(),
            procs::log_tail(&log, 10)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::LabNode;

    #[test]
    fn balances_the_control_planes_and_checks_readyz() {
        let node = |name: &str, address: &str, role: &str| LabNode {
            name: name.into(),
            address: address.into(),
            role: role.into(),
            arch: "arm64".into(),
            kubernetes_version: "v1.32.4".into(),
        };
        let topo = LabTopology {
            cluster_name: "goldentooth".into(),
            endpoint: "127.4.0.10:6443".into(),
            transport: "local".into(),
            speed: 0.001,
            api_listeners: false,
            nodes: vec![
                node("bettley", "127.4.0.11", "control-plane"),
                node("fenn", "127.4.0.15", "worker"),
            ],
        };
        let c = render_config(Path::new("/lab"), &topo, "bettley");
        assert!(c.contains("bind 127.4.0.10:6443\n"));
        assert!(c.contains("option httpchk GET /readyz\n"));
        assert!(c.contains("server bettley 127.4.0.11:6443 check\n"));
        assert!(!c.contains("fenn"), "workers serve no API");
        assert!(c.contains("server bettley-fallback 127.4.0.11:6443 backup\n"));
        assert!(c.contains("inter 100ms"), "fast labs check fast");
    }
}
