//! `gt lab ...`: a simulated cluster on this machine (the `gt-lab` crate).

use super::{exit, Context};
use crate::transport::shell_quote;
use clap::{Args, Subcommand, ValueEnum};
use gt_lab::{self as lab, FaultKind, Transport};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring up a simulated cluster from a topology (a cluster.toml).
    #[command(after_help = super::examples::LAB_UP)]
    Up(UpArgs),
    /// Stop everything the lab started and remove its directory.
    #[command(after_help = super::examples::LAB_DOWN)]
    Down(DirArgs),
    /// The lab's transport, processes and hosts with their faults.
    #[command(after_help = super::examples::LAB_STATUS)]
    Status(DirArgs),
    /// Inject a fault on a simulated host, or heal it.
    #[command(after_help = super::examples::LAB_FAULT)]
    Fault(FaultArgs),
    /// The lab daemon (started by `gt lab up`).
    #[command(hide = true)]
    Serve(DirArgs),
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The lab directory.
    #[arg(long, value_name = "DIR", default_value = lab::DEFAULT_DIR)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    /// Local processes through the lab shell (no dependencies).
    Local,
    /// A real sshd on each host's loopback address.
    Ssh,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The lab directory (must not exist or be empty).
    #[arg(long, value_name = "DIR", default_value = lab::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// The topology [default: --config, else ./cluster.toml].
    #[arg(long, value_name = "TOPOLOGY.toml")]
    pub from: Option<PathBuf>,
    /// How gt reaches the simulated hosts.
    #[arg(long, value_enum, default_value = "local")]
    pub transport: TransportArg,
    /// Multiplies every simulated latency (1 = realistic, 0.01 = a hundred times faster).
    #[arg(long, env = "GT_LAB_SPEED", default_value_t = 1.0)]
    pub speed: f64,
    /// Hosts as a fresh OS install, or already prepared for kubeadm.
    #[arg(long, value_enum, env = "GT_LAB_HOSTS", default_value = "bare")]
    pub hosts: HostsArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HostsArg {
    /// A fresh Debian / Raspberry Pi OS: no Kubernetes packages, swap on.
    Bare,
    /// What the kubeadm install docs leave: packages held, containerd, swap off.
    Prepared,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FaultArg {
    /// Unreachable: ssh refuses connections; the lab shell exits 255.
    Down,
    /// Reachable, but commands never answer.
    Hang,
    /// The next `kubeadm join` on the host fails.
    FailJoin,
    /// Every `kubeadm upgrade apply|node` on the host fails until healed.
    FailUpgrade,
    /// The control plane's API server is unready.
    ApiserverDown,
    /// Stop the host's kubelet (`systemctl stop kubelet`).
    KubeletStopped,
    /// Every latency multiplied by FACTOR (default 10).
    Slow,
    /// Clear the host's faults (and start a kubelet the fault stopped).
    Heal,
}

#[derive(Debug, Args)]
pub struct FaultArgs {
    /// The lab directory.
    #[arg(long, value_name = "DIR", default_value = lab::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// The simulated host.
    pub node: String,
    /// What goes wrong.
    #[arg(value_enum)]
    pub kind: FaultArg,
    /// For `slow`: how many times slower.
    pub factor: Option<f64>,
}

pub fn run(ctx: &Context, c: LabCommand) -> Result<u8, lab::LabError> {
    match c {
        LabCommand::Up(a) => up(ctx, a),
        LabCommand::Down(a) => down(&a.dir),
        LabCommand::Status(a) => status(&a.dir),
        LabCommand::Fault(a) => fault(a),
        LabCommand::Serve(a) => lab::serve(&a.dir).map(|()| exit::OK),
    }
}

fn up(ctx: &Context, a: UpArgs) -> Result<u8, lab::LabError> {
    let from = a
        .from
        .or_else(|| ctx.config_flag.clone())
        .unwrap_or_else(|| PathBuf::from("cluster.toml"));
    // The lab reads its topology with its own code: refuse here what gt's
    // readers refuse (a FIFO would hang it, a device fill its memory). A
    // missing file is the lab's to word.
    match crate::fsutil::read_regular(&from, crate::fsutil::MAX_CONFIG_BYTES) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(lab::LabError::Usage(format!(
                "cannot read {}: {e}",
                from.display()
            )))
        }
        _ => {}
    }
    let transport = match a.transport {
        TransportArg::Local => Transport::Local,
        TransportArg::Ssh => Transport::Ssh,
    };
    let r = lab::up(&lab::UpOptions {
        dir: a.dir.clone(),
        from,
        transport,
        speed: a.speed,
        check_config: Some(check_config),
        hosts: match a.hosts {
            HostsArg::Bare => lab::HostImage::Bare,
            HostsArg::Prepared => lab::HostImage::Prepared,
        },
    })?;
    let t = &r.topology;
    let how = match &r.state.ssh {
        Some(s) => format!(
            "ssh on port {} ({} sshd{})",
            s.port,
            s.groups.len(),
            if s.groups.len() == 1 { "" } else { "s" }
        ),
        None => "local processes".to_string(),
    };
    println!(
        "Lab {} is up in {}: {} hosts reached over {how}, speed {}.",
        t.cluster_name,
        r.state.dir.display(),
        t.nodes.len(),
        t.speed
    );
    let server = match r.state.endpoint_server {
        lab::EndpointServer::Haproxy => "HAProxy",
        lab::EndpointServer::Daemon => "the lab daemon (haproxy is not installed)",
        lab::EndpointServer::ControlPlane => "a control plane's own API server",
    };
    println!("  endpoint {} served by {server}", t.endpoint);
    match &r.etcd {
        lab::EtcdMode::Real { dir, version } => println!(
            "  etcd {version} (real, from {}) runs on every control plane",
            dir.display()
        ),
        lab::EtcdMode::Model { reason } => println!(
            "  etcd: {reason}; the lab falls back to its model of etcd (scripts/install-etcd.sh installs etcd 3.5, {} names it)",
            lab::ETCD_DIR_ENV
        ),
    }
    print_hosts(
        t.nodes
            .iter()
            .map(|n| (&n.name, &n.address, &n.role, &n.arch, String::new())),
    );
    let dir = shell_quote(&a.dir.display().to_string());
    let config = shell_quote(&r.config.display().to_string());
    println!("\nNext:");
    println!("  gt --config {config} plan");
    println!("  gt --config {config} apply");
    println!("  gt lab status --dir {dir}");
    println!("  gt lab fault --dir {dir} NODE down|hang|fail-join|fail-upgrade|apiserver-down|kubelet-stopped|slow|heal");
    println!("  gt lab down --dir {dir}");
    Ok(exit::OK)
}

/// gt's full validation of a config, for the lab to run on its topology and
/// on the config it writes.
fn check_config(text: &str, path: &Path) -> Result<(), String> {
    crate::spec::load_str(text, path)
        .map(drop)
        .map_err(|d| d.to_string())
}

fn print_hosts<'a>(
    rows: impl Iterator<Item = (&'a String, &'a String, &'a String, &'a String, String)>,
) {
    let rows: Vec<_> = rows.collect();
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    println!(
        "  {:w$}  {:15}  {:13}  {:7}  FAULTS",
        "HOST", "ADDRESS", "ROLE", "ARCH"
    );
    for (name, addr, role, arch, faults) in rows {
        let faults = if faults.is_empty() {
            "-".to_string()
        } else {
            faults
        };
        println!("  {name:w$}  {addr:15}  {role:13}  {arch:7}  {faults}");
    }
}

fn down(dir: &Path) -> Result<u8, lab::LabError> {
    let r = lab::down(dir)?;
    if !r.was_up {
        println!("No lab in {}: nothing to take down.", dir.display());
        return Ok(exit::OK);
    }
    let hosts = r.stopped.iter().filter(|(n, _)| n == "host").count();
    let servers: Vec<String> = r
        .stopped
        .iter()
        .filter(|(n, _)| n != "host")
        .map(|(n, p)| format!("{n} ({p})"))
        .collect();
    println!(
        "Lab in {} is down: stopped {}{}; removed the directory.",
        dir.display(),
        if servers.is_empty() {
            "no server".to_string()
        } else {
            servers.join(", ")
        },
        if hosts > 0 {
            format!(" and {hosts} command(s) still running on its hosts")
        } else {
            String::new()
        }
    );
    if !r.survivors.is_empty() {
        super::warn(format_args!(
            "these processes survived SIGKILL: {:?}",
            r.survivors
        ));
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}

fn status(dir: &Path) -> Result<u8, lab::LabError> {
    let s = lab::status(dir)?;
    let t = &s.topology;
    let transport = match &s.state.ssh {
        Some(ssh) => format!("ssh on port {} as {}", ssh.port, ssh.user),
        None => "local".to_string(),
    };
    println!("Lab {} in {}", t.cluster_name, s.state.dir.display());
    println!("  transport {transport}; speed {}", t.speed);
    println!(
        "  endpoint  {} served by {}; API listeners {}",
        t.endpoint,
        s.endpoint_server(),
        if t.api_listeners { "up" } else { "off" }
    );
    println!("Processes:");
    if s.processes.is_empty() {
        println!("  (none)");
    }
    for p in &s.processes {
        println!(
            "  {:10} pid {:<8} {}",
            p.name,
            p.pid,
            if p.alive { "alive" } else { "DEAD" }
        );
    }
    println!("Hosts:");
    print_hosts(
        s.hosts
            .iter()
            .map(|h| (&h.name, &h.address, &h.role, &h.arch, h.faults.join(", "))),
    );
    Ok(exit::OK)
}

fn fault(a: FaultArgs) -> Result<u8, lab::LabError> {
    if a.factor.is_some() && !matches!(a.kind, FaultArg::Slow) {
        return Err(lab::LabError::Usage(
            "a FACTOR goes only with `slow` (e.g. `gt lab fault fenn slow 10`)".into(),
        ));
    }
    let kind = match a.kind {
        FaultArg::Down => FaultKind::Down,
        FaultArg::Hang => FaultKind::Hang,
        FaultArg::FailJoin => FaultKind::FailJoin,
        FaultArg::FailUpgrade => FaultKind::FailUpgrade,
        FaultArg::ApiserverDown => FaultKind::ApiserverDown,
        FaultArg::KubeletStopped => FaultKind::KubeletStopped,
        FaultArg::Slow => FaultKind::Slow(a.factor.unwrap_or(lab::DEFAULT_SLOW_FACTOR)),
        FaultArg::Heal => FaultKind::Heal,
    };
    let r = lab::fault(&a.dir, &a.node, kind)?;
    let now = &r.now;
    println!(
        "{}: {}; faults now: {}",
        r.node,
        kind.name(),
        if now.is_empty() {
            "none".to_string()
        } else {
            now.join(", ")
        }
    );
    if r.killed > 0 {
        println!("  stopped {} command(s) running on {}", r.killed, r.node);
    }
    Ok(exit::OK)
}
