//! `gt lab up` and `gt lab down`.

use crate::config::{self, Reach, Rewrite};
use crate::daemon;
use crate::haproxy;
use crate::procs;
use crate::session::{host_path, link_os_programs, LAB_SHELL};
use crate::sim::image::{self, HostImage};
use crate::source::{self, Source, Version};
use crate::ssh;
use crate::state::{EndpointServer, LabState, Transport};
use crate::to_loopback;
use crate::topology::{LabNode, LabTopology};
use crate::LabError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub dir: PathBuf,
    /// The topology: a cluster.toml.
    pub from: PathBuf,
    pub transport: Transport,
    /// Multiplies every simulated latency.
    pub speed: f64,
    /// The lab's user's own check of a config (its text and path; `Err` holds
    /// the diagnostics), run on the topology before anything is built and on
    /// the config the lab writes: gt passes its full validation, so that the
    /// lab never builds a cluster gt would refuse to drive.
    pub check_config: Option<CheckConfig>,
    /// Bare hosts (a fresh OS) or hosts prepared for kubeadm.
    pub hosts: HostImage,
}

/// A check of a config: its text and path in, the diagnostics out.
pub type CheckConfig = fn(&str, &Path) -> Result<(), String>;

#[derive(Debug, Clone)]
pub struct UpReport {
    pub state: LabState,
    /// Real etcd members, or the model and why.
    pub etcd: crate::sim::etcd::EtcdMode,
    pub topology: LabTopology,
    /// The lab's own cluster.toml.
    pub config: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct DownReport {
    /// False when there was no lab to take down.
    pub was_up: bool,
    /// `(name, pid)` of each process stopped (hosts' commands as `host`).
    pub stopped: Vec<(String, i32)>,
    /// Pids that survived SIGKILL (should never happen; reported, not hidden).
    pub survivors: Vec<i32>,
}

/// The release a topology's version means: a minor alone is its newest
/// patch in the lab's pkgs.k8s.io (what `apt-get install` picks).
fn full_version(v: &Version) -> String {
    let patch = v.patch.unwrap_or_else(|| {
        if v.major == 1 {
            crate::sim::repos::newest_patch(v.minor).unwrap_or(0)
        } else {
            0
        }
    });
    format!("v{}.{}.{patch}", v.major, v.minor)
}

fn absolute(p: &Path) -> Result<PathBuf, LabError> {
    std::path::absolute(p).map_err(LabError::io(format!("resolving {}", p.display())))
}

/// The loopback topology of `source`, or the first address the lab cannot map.
fn lab_topology(source: &Source, opts: &UpOptions) -> Result<LabTopology, LabError> {
    let bad = |message: String| LabError::Address {
        path: opts.from.clone(),
        message,
    };
    let ep = &source.endpoint;
    let ep_ip: std::net::IpAddr = ep.host.parse().map_err(|_| {
        bad(format!(
            "the endpoint {}:{} names a host, not an address; the lab needs an IPv4 endpoint \
             (e.g. \"10.4.0.10:6443\") to map onto loopback",
            ep.host, ep.port
        ))
    })?;
    let ep_ip = to_loopback(ep_ip).map_err(|e| bad(format!("endpoint: {e}")))?;
    let version = full_version(&source.version);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut nodes = Vec::new();
    for n in &source.nodes {
        let a = to_loopback(n.address)
            .map_err(|e| bad(format!("node {} (line {}): {e}", n.name, n.line)))?
            .to_string();
        if let Some(other) = seen.insert(a.clone(), n.name.clone()) {
            return Err(bad(format!(
                "nodes {other} and {} both map to {a} on loopback (the lab keeps the last three octets); \
                 give one of them another address",
                n.name
            )));
        }
        nodes.push(LabNode {
            name: n.name.clone(),
            address: a,
            role: n.role.clone(),
            arch: n.arch.clone(),
            kubernetes_version: version.clone(),
        });
    }
    Ok(LabTopology {
        cluster_name: source.cluster_name.clone(),
        endpoint: format!("{ep_ip}:{}", ep.port),
        transport: opts.transport.as_str().to_string(),
        speed: opts.speed,
        api_listeners: false,
        nodes,
    })
}

/// Brings a lab up; on failure stops what was started and removes the directory.
pub fn up(opts: &UpOptions) -> Result<UpReport, LabError> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(LabError::Usage(format!(
            "--speed {} must be a positive number (1 = realistic latencies, 0.01 = a hundred times faster)",
            opts.speed
        )));
    }
    let dir = absolute(&opts.dir)?;
    if LabTopology::path(&dir).exists() || LabState::path(&dir).exists() {
        return Err(LabError::AlreadyUp(opts.dir.clone()));
    }
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(LabError::Usage(format!(
            "{} exists and is not empty; `gt lab down` removes the lab directory, so the lab \
             needs a new or empty one: choose another --dir",
            opts.dir.display()
        )));
    }
    let from = absolute(&opts.from)?;
    let text = std::fs::read_to_string(&from).map_err(|e| LabError::Io {
        what: format!(
            "reading the topology {} (give one with --from FILE)",
            from.display()
        ),
        source: e,
    })?;
    if let Some(check) = opts.check_config {
        check(&text, &from).map_err(|diagnostics| LabError::Rejected {
            path: from.clone(),
            diagnostics,
        })?;
    }
    let topology = source::read(&text, &from).map_err(|e| LabError::Topology {
        path: e.path,
        message: e.message,
    })?;
    let topo = lab_topology(&topology, opts)?;

    std::fs::create_dir_all(&dir).map_err(LabError::io(format!("creating {}", dir.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(LabError::io(format!("resolving {}", dir.display())))?;
    let started = build(&dir, &from, &text, &topology, topo, opts);
    if started.is_err() {
        let _ = teardown(&dir);
    }
    started
}

fn build(
    dir: &Path,
    from: &Path,
    text: &str,
    source: &Source,
    mut topo: LabTopology,
    opts: &UpOptions,
) -> Result<UpReport, LabError> {
    let transport = opts.transport;
    for sub in ["bin", "logs", "faults", "pids"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(LabError::io(format!("creating {}", p.display())))?;
    }
    for n in &topo.nodes {
        let p = dir.join("hosts").join(&n.name);
        std::fs::create_dir_all(&p).map_err(LabError::io(format!("creating {}", p.display())))?;
    }
    let exe = std::env::current_exe().map_err(LabError::io("finding the gt binary"))?;
    for tool in crate::sim::os_tools() {
        let link = dir.join("bin").join(tool);
        std::os::unix::fs::symlink(&exe, &link)
            .map_err(LabError::io(format!("linking {}", link.display())))?;
    }
    link_os_programs(dir).map_err(LabError::io("linking this machine's programs"))?;
    topo.save(dir).map_err(LabError::io(format!(
        "writing {}",
        LabTopology::path(dir).display()
    )))?;
    let etcd = crate::sim::etcd::install(dir).map_err(LabError::io("linking etcd's binaries"))?;
    for n in &topo.nodes {
        image::build(&dir.join("hosts").join(&n.name), opts.hosts).map_err(|message| {
            LabError::Topology {
                path: from.to_path_buf(),
                message: format!("node {}: {message}", n.name),
            }
        })?;
    }

    let endpoint_is_a_cp = topo.nodes.iter().any(|n| {
        n.role == "control-plane" && format!("{}:{}", n.address, daemon::API_PORT) == topo.endpoint
    });
    let haproxy_bin = haproxy::find();
    let endpoint_server = match (&haproxy_bin, endpoint_is_a_cp) {
        (_, true) => EndpointServer::ControlPlane,
        (Some(_), false) => EndpointServer::Haproxy,
        (None, false) => EndpointServer::Daemon,
    };
    let mut state = LabState {
        dir: dir.to_path_buf(),
        transport,
        source: from.to_path_buf(),
        ssh: None,
        endpoint_server,
    };
    if transport == Transport::Ssh {
        state.ssh = Some(ssh::prepare(dir, &topo)?);
    }
    state.save()?;

    if let Some(s) = &state.ssh {
        ssh::start_all(dir, &topo, s)?;
    }
    start_daemon(dir, &topo, &state)?;
    if let (EndpointServer::Haproxy, Some(bin)) = (endpoint_server, &haproxy_bin) {
        haproxy::start(dir, bin, &topo, &source.bootstrap)?;
    }
    topo.api_listeners = true;
    topo.save(dir).map_err(LabError::io(format!(
        "writing {}",
        LabTopology::path(dir).display()
    )))?;

    let config = write_config(dir, from, text, source, &topo, &state)?;
    if let Some(check) = opts.check_config {
        let written = std::fs::read_to_string(&config)
            .map_err(LabError::io(format!("reading {}", config.display())))?;
        check(&written, &config).map_err(|diagnostics| LabError::Rejected {
            path: config.clone(),
            diagnostics,
        })?;
    }
    Ok(UpReport {
        state,
        etcd,
        topology: topo,
        config,
    })
}

const SERVE: &str = "serve";

fn start_daemon(dir: &Path, topo: &LabTopology, state: &LabState) -> Result<(), LabError> {
    let exe = std::env::current_exe().map_err(LabError::io("finding the gt binary"))?;
    let log = dir.join("logs").join("serve.log");
    let pid = procs::spawn_detached(
        Command::new(exe).args(["lab", "serve", "--dir"]).arg(dir),
        &log,
    )
    .map_err(|e| LabError::Process(format!("cannot start the lab daemon: {e}")))?;
    procs::record(dir, SERVE, pid).map_err(LabError::io("recording the daemon's pid"))?;
    let ready = daemon::ready_file(dir);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if !procs::is_alive(pid as i32) || std::time::Instant::now() >= deadline {
            return Err(LabError::Process(format!(
                "the lab daemon did not start listening on {}; {} says:\n{}",
                daemon::listen_addresses(topo, state)
                    .iter()
                    .map(|(a, _)| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                log.display(),
                procs::log_tail(&log, 10)
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn write_config(
    dir: &Path,
    from: &Path,
    text: &str,
    source: &Source,
    topo: &LabTopology,
    state: &LabState,
) -> Result<PathBuf, LabError> {
    let addresses: BTreeMap<String, String> = topo
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.address.clone()))
        .collect();
    let host_roots: BTreeMap<String, String> = topo
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                dir.join("hosts").join(&n.name).display().to_string(),
            )
        })
        .collect();
    let path = host_path(dir);
    let shell = dir.join("bin").join(LAB_SHELL).display().to_string();
    let identity = ssh::identity_file(dir).display().to_string();
    let known_hosts = ssh::known_hosts_file(dir).display().to_string();
    let lb = match &source.load_balancer {
        Some(lb) => Some(
            to_loopback(lb.address)
                .map_err(|e| LabError::Address {
                    path: from.to_path_buf(),
                    message: format!("load balancer {}: {e}", lb.name),
                })?
                .to_string(),
        ),
        None => None,
    };
    let reach = match &state.ssh {
        None => Reach::Local {
            host_roots: &host_roots,
            path: &path,
            shell: &shell,
        },
        Some(s) => Reach::Ssh {
            user: &s.user,
            port: s.port,
            identity_file: &identity,
            known_hosts_file: &known_hosts,
        },
    };
    let cni_copy = dir.join("calico.yaml");
    std::fs::write(&cni_copy, config::calico_copy())
        .map_err(LabError::io(format!("writing {}", cni_copy.display())))?;
    let rewritten = config::rewrite(
        text,
        &Rewrite {
            cni_copy: &cni_copy,
            source_dir: from.parent().unwrap_or(Path::new("/")),
            addresses: &addresses,
            endpoint: &topo.endpoint,
            load_balancer: lb.as_deref(),
            reach,
        },
    )
    .map_err(|message| LabError::Address {
        path: from.to_path_buf(),
        message,
    })?;
    let header = format!(
        "# The lab's config, written by `gt lab up` from {}:\n\
         # the same cluster with its addresses on loopback, reaching the simulated hosts\n\
         # over the {} transport. Use it with `gt --config {} plan`.\n",
        from.display(),
        state.transport.as_str(),
        dir.join("cluster.toml").display()
    );
    let out = dir.join("cluster.toml");
    std::fs::write(&out, format!("{header}{rewritten}"))
        .map_err(LabError::io(format!("writing {}", out.display())))?;
    Ok(out)
}

/// Takes the lab in `dir` down: stops its processes, removes the directory.
pub fn down(dir: &Path) -> Result<DownReport, LabError> {
    let Ok(dir) = dir.canonicalize() else {
        return Ok(DownReport::default());
    };
    if !LabTopology::path(&dir).exists() && !LabState::path(&dir).exists() {
        return Ok(DownReport::default());
    }
    teardown(&dir)
}

fn teardown(dir: &Path) -> Result<DownReport, LabError> {
    let mut report = DownReport {
        was_up: true,
        ..DownReport::default()
    };
    let (members, servers): (Vec<_>, Vec<_>) = procs::recorded(dir)
        .into_iter()
        .filter(|(_, pid)| procs::is_lab_process(*pid, dir))
        .partition(|(name, _)| crate::sim::etcd::member::is_pid_name(name));
    // The servers first: no new session starts while hosts' commands are
    // stopped, and the daemon restarts no member once they are gone.
    report
        .survivors
        .extend(procs::stop(&pids_of(&servers), Duration::from_secs(5)));
    // etcd members are killed, not asked to stop: an etcd leader asked to
    // stop first hands its leadership to a member, and with every member
    // stopping at once no hand-over completes, so each waits out etcd's
    // request timeout (7 s). Their data is removed with the directory.
    report.survivors.extend(procs::kill(&pids_of(&members)));
    let recorded = pids_of(&[servers.as_slice(), members.as_slice()].concat());
    let strays = procs::unrecorded_servers(dir, &recorded);
    report
        .survivors
        .extend(procs::stop(&pids_of(&strays), Duration::from_secs(5)));
    report.stopped.extend(servers);
    report.stopped.extend(members);
    report.stopped.extend(strays);
    let hosts = procs::host_processes(dir, None);
    report
        .survivors
        .extend(procs::stop(&hosts, Duration::from_secs(2)));
    report
        .stopped
        .extend(hosts.into_iter().map(|p| ("host".to_string(), p)));
    report.stopped.sort();
    std::fs::remove_dir_all(dir).map_err(LabError::io(format!("removing {}", dir.display())))?;
    Ok(report)
}

fn pids_of(processes: &[(String, i32)]) -> Vec<i32> {
    processes.iter().map(|(_, pid)| *pid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a lab process (`title`: its command's first word, as
    /// `ps` shows it): it names a file in `dir` on its command line, as the
    /// lab's own do, and on TERM appends `name` to `log`.
    fn stand_in(dir: &Path, title: &str, name: &str, log: &Path) -> i32 {
        use std::os::unix::process::CommandExt;
        let script = format!(
            "trap 'echo {name} >> {}; exit 0' TERM; while :; do sleep 0.05; done",
            log.display()
        );
        let pid = procs::spawn_detached(
            Command::new("sh")
                .arg0(title)
                .args(["-c", &script])
                .arg(dir.join("config")),
            &dir.join("stand-in.log"),
        )
        .unwrap() as i32;
        // Until the exec, the child still runs the test's own command line.
        while !procs::is_lab_process(pid, dir) {
            std::thread::sleep(Duration::from_millis(5));
        }
        pid
    }

    fn recorded_stand_in(dir: &Path, name: &str, log: &Path) -> i32 {
        let pid = stand_in(dir, "sh", name, log);
        procs::record(dir, name, pid as u32).unwrap();
        pid
    }

    #[test]
    fn down_asks_servers_to_stop_and_kills_etcd_members() {
        let tmp = std::env::temp_dir().join(format!("gt-lab-down-{}", std::process::id()));
        let dir = tmp.join("lab");
        std::fs::create_dir_all(&dir).unwrap();
        let log = tmp.join("terminated");
        let serve = recorded_stand_in(&dir, "serve", &log);
        let member = recorded_stand_in(&dir, &crate::sim::etcd::member::pid_name("bettley"), &log);
        // An sshd that a reboot restarted under a pid no file records; and
        // someone's shell that names the lab dir, which is not the lab's.
        let sshd = stand_in(&dir, "sshd: /usr/sbin/sshd -D [listener]", "sshd", &log);
        let bystander = stand_in(&dir, "sh", "bystander", &log);
        // Killed however the test ends: a failed assertion must not leave it.
        struct Reaped(i32);
        impl Drop for Reaped {
            fn drop(&mut self) {
                procs::kill(&[self.0]);
            }
        }
        let _reaped = Reaped(bystander);
        let report = teardown(&dir).unwrap();
        assert!(report.survivors.is_empty(), "{report:?}");
        assert!(![serve, member, sshd].into_iter().any(procs::is_alive));
        assert_eq!(
            report.stopped,
            [
                ("etcd-bettley".to_string(), member),
                ("serve".to_string(), serve),
                ("sshd".to_string(), sshd)
            ]
        );
        // The servers got their TERM; the member never did (a TERM would
        // make an etcd leader wait for a hand-over no stopping member takes).
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "serve\nsshd\n");
        assert!(procs::is_alive(bystander));
        assert!(!dir.exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_minor_version_gets_a_real_patch_release() {
        let v = Version::parse("1.32").unwrap();
        assert_eq!(full_version(&v), "v1.32.4");
        let v = Version::parse("1.31.2").unwrap();
        assert_eq!(full_version(&v), "v1.31.2");
    }
}
