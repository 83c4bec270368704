//! Simulated `systemctl` (for the kubelet unit), `kubelet --version` and `uname`.

use super::clock;
use super::files;
use super::host::{self, Host};
use super::latency::Op;
use super::services;
use super::state;

/// The kubelet unit's state as systemd reports it.
fn kubelet_state(host: &Host, running: bool) -> &'static str {
    if !running && services::kubelet_crashloop(host).is_some() {
        return "activating";
    }
    match (running, host.exists(files::KUBELET_CONF)) {
        (true, true) => "active",
        // Without a kubeconfig the kubelet exits at once and systemd restarts it.
        (true, false) => "activating",
        (false, _) => "inactive",
    }
}

fn unit_name(u: &str) -> &str {
    u.strip_suffix(".service").unwrap_or(u)
}

const KNOWN_UNITS: &[&str] = &["kubelet", "containerd", "dphys-swapfile", "ssh", "haproxy"];

pub(crate) fn systemctl(host: &Host, args: &[String]) -> u8 {
    let mut verb = None;
    let mut units = Vec::new();
    let mut now_flag = false;
    for a in args {
        match a.as_str() {
            "--now" => now_flag = true,
            "-q" | "--quiet" | "--no-pager" | "--no-block" | "-l" | "--full" | "--system" => {}
            s if s.starts_with("--") => {
                eprintln!("systemctl: unrecognized option '{s}'");
                return 1;
            }
            s if s.starts_with('-') => {
                eprintln!("systemctl: invalid option -- '{}'", &s[1..2]);
                return 1;
            }
            s if verb.is_none() => verb = Some(s.to_string()),
            s => units.push(unit_name(s).to_string()),
        }
    }
    let quiet = args.iter().any(|a| a == "-q" || a == "--quiet");
    let Some(verb) = verb else {
        eprintln!(
            "systemctl (gt lab simulator): listing units is not simulated; name a verb and a unit"
        );
        return 1;
    };
    let changes = matches!(
        verb.as_str(),
        "start" | "stop" | "restart" | "enable" | "disable"
    );
    host.pause(if changes {
        Op::SystemctlChange
    } else {
        Op::SystemctlQuery
    });
    match verb.as_str() {
        "daemon-reload" => return 0,
        "is-active" | "is-enabled" | "status" | "start" | "stop" | "restart" | "enable"
        | "disable" => {}
        other => {
            eprintln!("Unknown command verb {other}.");
            return 1;
        }
    }
    if units.is_empty() {
        eprintln!("Too few arguments.");
        return 1;
    }
    let mut code = 0;
    for unit in &units {
        let c = unit_verb(host, &verb, unit, now_flag, quiet);
        if c != 0 && code == 0 {
            code = c;
        }
    }
    code
}

fn unit_verb(host: &Host, verb: &str, unit: &str, now_flag: bool, quiet: bool) -> u8 {
    let exists = services::unit_exists(host, unit);
    if exists && matches!(unit, "containerd" | "dphys-swapfile") {
        return package_unit(host, verb, unit, now_flag, quiet);
    }
    if let Some(code) = other_unit(verb, unit, quiet, exists) {
        return code;
    }
    // A query reads what the host's init system knows, as systemd does: no
    // API objects, no write, no exclusive hold on the lab's state.
    let queried = match verb {
        "is-active" | "is-enabled" | "status" => Some(state::read_hosts(&host.lab_dir).map(|s| {
            let h = s.host(&host.name);
            (h.clone(), h)
        })),
        _ => None,
    };
    let changed = match queried {
        Some(q) => q,
        None => change_kubelet(host, verb, now_flag),
    };
    let (before, after) = match changed {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Failed to connect to bus: {e}");
            return 1;
        }
    };
    report_kubelet(host, verb, quiet, &before, &after)
}

/// The answer for a unit that is not the kubelet: unknown, or part of the host
/// image and always running. `None` for the kubelet.
fn other_unit(verb: &str, unit: &str, quiet: bool, exists: bool) -> Option<u8> {
    if !exists || !KNOWN_UNITS.contains(&unit) {
        return Some(match verb {
            "is-active" => {
                if !quiet {
                    println!("inactive");
                }
                3
            }
            "is-enabled" | "status" | "enable" | "disable" => {
                eprintln!("Unit {unit}.service could not be found.");
                4
            }
            _ => {
                eprintln!("Failed to {verb} {unit}.service: Unit {unit}.service not found.");
                5
            }
        });
    }
    if unit != "kubelet" {
        // Other units are part of the host image and always run.
        return Some(match verb {
            "is-active" => {
                if !quiet {
                    println!("active");
                }
                0
            }
            "is-enabled" => {
                if !quiet {
                    println!("enabled");
                }
                0
            }
            _ => 0,
        });
    }
    None
}

/// Applies `verb` to this host's kubelet; its state before and after.
fn change_kubelet(
    host: &Host,
    verb: &str,
    now_flag: bool,
) -> std::io::Result<(state::HostState, state::HostState)> {
    let now = clock::now();
    state::update_hosts(&host.lab_dir, |s| {
        let before = s.host(&host.name);
        match verb {
            "start" => services::start_kubelet(host, s),
            "restart" => services::restart_kubelet(host, s),
            "stop" => {
                s.host_mut(&host.name).kubelet_running = false;
                services::stopped_kubelet(host);
            }
            "enable" => {
                s.host_mut(&host.name).kubelet_enabled = true;
                if now_flag {
                    services::start_kubelet(host, s);
                }
            }
            "disable" => {
                s.host_mut(&host.name).kubelet_enabled = false;
                if now_flag {
                    s.host_mut(&host.name).kubelet_running = false;
                    services::stopped_kubelet(host);
                }
            }
            _ => {}
        }
        let after = s.host(&host.name);
        let starting = matches!(verb, "start" | "restart") || (verb == "enable" && now_flag);
        if starting && s.cluster.is_some() {
            reregister_node(s, host, now);
        }
        (before, after)
    })
}

/// A kubelet with a kubeconfig whose Node was deleted registers it again on start.
fn reregister_node(s: &mut state::State, host: &Host, now: f64) {
    if let Some(name) = node_name_from_kubelet_conf(host) {
        if !s.nodes.contains_key(&name) {
            let cri = host
                .read("/var/lib/kubelet/kubeadm-flags.env")
                .and_then(|f| {
                    f.split("--container-runtime-endpoint=")
                        .nth(1)
                        .map(|r| r.split([' ', '"']).next().unwrap_or("").to_string())
                })
                .unwrap_or_else(|| "unix:///var/run/containerd/containerd.sock".into());
            super::kubeadm::register_node(
                s,
                host,
                &name,
                false,
                None,
                &Default::default(),
                &cri,
                now,
            );
        }
    }
}

/// What systemctl prints and exits with for `verb` on the kubelet.
fn report_kubelet(
    host: &Host,
    verb: &str,
    quiet: bool,
    before: &state::HostState,
    after: &state::HostState,
) -> u8 {
    let state_now = kubelet_state(host, after.kubelet_running);
    match verb {
        "is-active" => {
            if !quiet {
                println!("{state_now}");
            }
            if state_now == "active" {
                0
            } else {
                3
            }
        }
        "is-enabled" => {
            let e = if after.kubelet_enabled {
                "enabled"
            } else {
                "disabled"
            };
            if !quiet {
                println!("{e}");
            }
            if after.kubelet_enabled {
                0
            } else {
                1
            }
        }
        "enable" => {
            if !before.kubelet_enabled {
                eprintln!("Created symlink /etc/systemd/system/multi-user.target.wants/kubelet.service → /lib/systemd/system/kubelet.service.");
            }
            0
        }
        "disable" => {
            if before.kubelet_enabled {
                eprintln!(
                    "Removed \"/etc/systemd/system/multi-user.target.wants/kubelet.service\"."
                );
            }
            0
        }
        "status" => {
            let enabled = if after.kubelet_enabled {
                "enabled"
            } else {
                "disabled"
            };
            let active = match state_now {
                "active" => "active (running)".to_string(),
                "activating" => "activating (auto-restart) (Result: exit-code)".to_string(),
                _ => "inactive (dead)".to_string(),
            };
            println!("● kubelet.service - kubelet: The Kubernetes Node Agent");
            println!("     Loaded: loaded (/lib/systemd/system/kubelet.service; {enabled}; preset: enabled)");
            println!("    Drop-In: /usr/lib/systemd/system/kubelet.service.d");
            println!("             └─10-kubeadm.conf");
            println!("     Active: {active}");
            println!("       Docs: https://kubernetes.io/docs/");
            if let Some(why) = services::kubelet_crashloop(host) {
                println!();
                println!("{} kubelet[1042]: E1130 00:00:00.000000    1042 run.go:72] \"command failed\" err=\"{}\"", host.name, why.replace('"', "\\\""));
            }
            if state_now == "active" {
                0
            } else {
                3
            }
        }
        _ => 0,
    }
}

/// `system:node:NAME` from kubelet.conf's client certificate, as the kubelet knows its name.
fn node_name_from_kubelet_conf(host: &Host) -> Option<String> {
    host.read(files::KUBELET_CONF)?;
    let pem = host.read(files::KUBELET_CLIENT_PEM)?;
    let cn = super::pki::common_name(&pem)?;
    cn.strip_prefix("system:node:").map(str::to_string)
}

pub(crate) fn kubelet(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    match args.first().map(String::as_str) {
        Some("--version") | Some("--version=true") => {
            println!("Kubernetes {}", host.node().kubernetes_version);
            0
        }
        Some(a)
            if a.starts_with("--") && !KUBELET_DAEMON_FLAGS.iter().any(|f| a.starts_with(f)) =>
        {
            eprintln!("Error: unknown flag: {}", a.split('=').next().unwrap_or(a));
            1
        }
        _ => {
            eprintln!("kubelet (gt lab simulator): the simulated kubelet runs under systemd; use `systemctl start kubelet`");
            1
        }
    }
}

const KUBELET_DAEMON_FLAGS: &[&str] = &[
    "--config",
    "--kubeconfig",
    "--bootstrap-kubeconfig",
    "--container-runtime-endpoint",
    "--node-labels",
    "--node-ip",
    "--hostname-override",
    "--v",
];

pub(crate) fn uname(host: &Host, args: &[String]) -> u8 {
    let lab = host.node();
    let machine = host::uname_machine(&lab.arch);
    let release = host::kernel_release(&lab.arch);
    let version = if lab.arch == "arm64" || lab.arch == "arm" {
        "#1 SMP PREEMPT Debian 1:6.6.51-1+rpt3 (2024-10-08)"
    } else {
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"
    };
    // GNU order: kernel-name nodename kernel-release kernel-version machine operating-system.
    let mut want = [false; 6];
    for a in args {
        let letters: Vec<char> = match a.as_str() {
            "--all" => vec!['a'],
            "--kernel-name" => vec!['s'],
            "--nodename" => vec!['n'],
            "--kernel-release" => vec!['r'],
            "--kernel-version" => vec!['v'],
            "--machine" => vec!['m'],
            "--operating-system" => vec!['o'],
            "--processor" => vec!['p'],
            "--hardware-platform" => vec!['i'],
            s if s.starts_with("--") => {
                eprintln!(
                    "uname: unrecognized option '{s}'\nTry 'uname --help' for more information."
                );
                return 1;
            }
            s if s.starts_with('-') && s.len() > 1 => s[1..].chars().collect(),
            s => {
                eprintln!("uname: extra operand '{s}'\nTry 'uname --help' for more information.");
                return 1;
            }
        };
        for c in letters {
            match c {
                'a' => want = [true; 6],
                's' => want[0] = true,
                'n' => want[1] = true,
                'r' => want[2] = true,
                'v' => want[3] = true,
                'm' | 'p' | 'i' => want[4] = true,
                'o' => want[5] = true,
                other => {
                    eprintln!("uname: invalid option -- '{other}'\nTry 'uname --help' for more information.");
                    return 1;
                }
            }
        }
    }
    if !want.iter().any(|w| *w) {
        want[0] = true;
    }
    let fields = [
        "Linux",
        host.name.as_str(),
        release,
        version,
        machine,
        "GNU/Linux",
    ];
    let out: Vec<&str> = fields
        .iter()
        .zip(want)
        .filter(|(_, w)| *w)
        .map(|(f, _)| *f)
        .collect();
    println!("{}", out.join(" "));
    0
}

/// containerd and dphys-swapfile: enabled by their unit link, running by what they leave on the host.
fn package_unit(host: &Host, verb: &str, unit: &str, now_flag: bool, quiet: bool) -> u8 {
    let containerd = unit == "containerd";
    let start = |host: &Host| -> Result<(), String> {
        if containerd {
            super::containerd::start(host)?;
        } else {
            super::kernel::dphys_swapon(host);
        }
        services::retry_kubelet(host);
        Ok(())
    };
    let stop = |host: &Host| {
        if containerd {
            super::containerd::stop(host);
        } else {
            super::kernel::dphys_swapoff(host);
            services::retry_kubelet(host);
        }
    };
    let failed = |what: &str| {
        eprintln!(
            "Job for {unit}.service failed because the control process exited with error code."
        );
        eprintln!("See \"systemctl status {unit}.service\" and \"journalctl -xeu {unit}.service\" for details.");
        let _ = what;
        1
    };
    let active = |host: &Host| {
        if containerd {
            super::containerd::running(host)
        } else {
            super::kernel::swap_on(host)
        }
    };
    let say = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    match verb {
        "start" | "restart" => {
            if verb == "restart" {
                stop(host);
            }
            match start(host) {
                Ok(()) => 0,
                Err(e) => failed(&e),
            }
        }
        "stop" => {
            stop(host);
            0
        }
        "enable" | "disable" => {
            let on = verb == "enable";
            if services::set_enabled(host, unit, on) {
                if on {
                    eprintln!("Created symlink /etc/systemd/system/multi-user.target.wants/{unit}.service → /lib/systemd/system/{unit}.service.");
                } else {
                    eprintln!(
                        "Removed \"/etc/systemd/system/multi-user.target.wants/{unit}.service\"."
                    );
                }
            }
            if now_flag {
                if on {
                    if let Err(e) = start(host) {
                        return failed(&e);
                    }
                } else {
                    stop(host);
                }
            }
            0
        }
        "is-enabled" => {
            let on = services::unit_enabled(host, unit);
            say(if on { "enabled" } else { "disabled" });
            u8::from(!on)
        }
        "is-active" | "status" => {
            let on = active(host);
            if verb == "status" {
                let enabled = if services::unit_enabled(host, unit) {
                    "enabled"
                } else {
                    "disabled"
                };
                println!("● {unit}.service");
                println!("     Loaded: loaded (/lib/systemd/system/{unit}.service; {enabled}; preset: enabled)");
                println!(
                    "     Active: {}",
                    if on {
                        "active (running)"
                    } else {
                        "inactive (dead)"
                    }
                );
            } else {
                say(if on { "active" } else { "inactive" });
            }
            if on {
                0
            } else {
                3
            }
        }
        _ => 0,
    }
}
