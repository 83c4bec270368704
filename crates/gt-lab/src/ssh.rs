//! The ssh transport: real sshd processes on the hosts' loopback addresses.
//!
//! One sshd listens on at most 16 addresses (OpenSSH's MAX_LISTEN_SOCKS), so
//! hosts are served by groups `sshd-0`, `sshd-1`, ... in topology order. A
//! `down` host is dropped from its group's ListenAddress lines and that sshd
//! is sent SIGHUP: with `-D` it re-executes itself in place (same pid) and
//! rebinds, so the address really refuses connections while established
//! sessions carry on. A group left with no address is stopped (an sshd with
//! no ListenAddress would listen on every interface).
//!
//! sshd runs ForceCommand through the user's login shell; bash sources
//! ~/.bashrc for commands that come over ssh, but only at shell level 1, so
//! the sessions get `SHLVL=1`: a heavy rc file (pyenv, nvm) would otherwise
//! cost every simulated command a few hundred milliseconds.

use crate::procs;
use crate::state::SshState;
use crate::topology::{Faults, LabTopology};
use crate::LabError;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub(crate) const SSHD: &str = "/usr/sbin/sshd";
const MAX_LISTEN: usize = 16;
const FIRST_PORT: u16 = 2200;
const LAST_PORT: u16 = 2999;

pub(crate) fn ssh_dir(dir: &Path) -> PathBuf {
    dir.join("ssh")
}
pub(crate) fn host_key(dir: &Path) -> PathBuf {
    ssh_dir(dir).join("ssh_host_ecdsa_key")
}
pub(crate) fn identity_file(dir: &Path) -> PathBuf {
    ssh_dir(dir).join("id_ecdsa")
}
pub(crate) fn known_hosts_file(dir: &Path) -> PathBuf {
    ssh_dir(dir).join("known_hosts")
}
/// What each session sources before its command (see
/// [`crate::session::ssh_session_script`]).
fn session_script(dir: &Path) -> PathBuf {
    ssh_dir(dir).join("session.sh")
}
fn config_file(dir: &Path, group: usize) -> PathBuf {
    ssh_dir(dir).join(format!("sshd_config-{group}"))
}
pub(crate) fn process_name(group: usize) -> String {
    format!("sshd-{group}")
}

/// The user gt will log in as: whoever runs the lab.
pub(crate) fn current_user() -> Result<String, LabError> {
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy
    // the name out at once, and `gt lab up` is single-threaded here.
    let name = unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            None
        } else {
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_str()
                .ok()
                .map(str::to_string)
        }
    };
    name.or_else(|| std::env::var("USER").ok()).ok_or_else(|| {
        LabError::Process("cannot tell the current user's name (no passwd entry, no $USER)".into())
    })
}

/// ECDSA P-256 keys: OpenSSH signs and verifies them with OpenSSL, where
/// its own Ed25519 code (and Curve25519's, see the kex in [`render_config`])
/// is the reference C implementation; every simulated host's handshake
/// shares this machine's CPU, on both ends.
const KEY_TYPE: [&str; 4] = ["-t", "ecdsa", "-b", "256"];

fn keygen(path: &Path, comment: &str) -> Result<(), LabError> {
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .args(KEY_TYPE)
        .args(["-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .map_err(|e| {
            LabError::Process(format!(
                "cannot run ssh-keygen ({e}); the ssh transport needs OpenSSH (apt-get install openssh-client openssh-server)"
            ))
        })?;
    if !out.status.success() {
        return Err(LabError::Process(format!(
            "ssh-keygen failed for {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A port free on every one of `addresses`.
fn pick_port(addresses: &[String]) -> Result<u16, LabError> {
    'port: for port in FIRST_PORT..=LAST_PORT {
        for a in addresses {
            if TcpListener::bind((a.as_str(), port)).is_err() {
                continue 'port;
            }
        }
        return Ok(port);
    }
    Err(LabError::Process(format!(
        "no port between {FIRST_PORT} and {LAST_PORT} is free on every lab address; \
         are other labs up? (`gt lab status --dir ...`)"
    )))
}

/// Keys, known_hosts, authorized_keys, the port and the groups.
pub(crate) fn prepare(dir: &Path, topo: &LabTopology) -> Result<SshState, LabError> {
    if !Path::new(SSHD).exists() {
        return Err(LabError::Process(format!(
            "{SSHD} is not installed; the ssh transport runs a real sshd \
             (apt-get install openssh-server), or use `--transport local`"
        )));
    }
    let d = dir.to_string_lossy();
    if d.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '#')
    {
        return Err(LabError::Usage(format!(
            "the lab directory {d:?} contains a space, quote or '#', which sshd_config cannot carry; \
             choose another --dir for the ssh transport"
        )));
    }
    let sd = ssh_dir(dir);
    std::fs::create_dir_all(&sd).map_err(LabError::io(format!("creating {}", sd.display())))?;
    keygen(&host_key(dir), "gt-lab host key")?;
    keygen(&identity_file(dir), "gt-lab user key")?;
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(LabError::io(format!("reading {}", p.display())))
    };
    let host_pub = read(host_key(dir).with_extension("pub"))?;
    let host_pub = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let user_pub = read(identity_file(dir).with_extension("pub"))?;
    let authorized = ssh_dir(dir).join("authorized_keys");
    std::fs::write(&authorized, user_pub)
        .map_err(LabError::io(format!("writing {}", authorized.display())))?;

    let script = session_script(dir);
    std::fs::write(&script, crate::session::ssh_session_script(dir, topo))
        .map_err(LabError::io(format!("writing {}", script.display())))?;

    let addresses: Vec<String> = topo.nodes.iter().map(|n| n.address.clone()).collect();
    let port = pick_port(&addresses)?;
    let known: String = addresses
        .iter()
        .map(|a| format!("[{a}]:{port} {host_pub}\n"))
        .collect();
    let kh = known_hosts_file(dir);
    std::fs::write(&kh, known).map_err(LabError::io(format!("writing {}", kh.display())))?;

    let groups = topo
        .nodes
        .chunks(MAX_LISTEN)
        .map(|c| c.iter().map(|n| n.name.clone()).collect())
        .collect();
    Ok(SshState {
        port,
        user: current_user()?,
        groups,
    })
}

fn render_config(dir: &Path, ssh: &SshState, group: usize, listen: &[String]) -> String {
    let d = dir.display();
    let mut s = format!(
        "# Written by `gt lab up`: sshd {group} of the lab in {d}.\n\
         # The host a session runs on is the address the client connected to (ssh/session.sh).\n\
         # Key exchange on NIST P-256 (OpenSSL's code) rather than OpenSSH's own Curve25519 or the\n\
         # post-quantum default (sntrup761): every simulated host's sshd shares this machine's CPU.\n"
    );
    for a in listen {
        s.push_str(&format!("ListenAddress {a}:{}\n", ssh.port));
    }
    s.push_str(&format!(
        "HostKey {hk}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {d}/ssh/authorized_keys\n\
         AllowUsers {user}\n\
         StrictModes no\n\
         UsePAM no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         MaxStartups 200:30:300\n\
         MaxSessions 100\n\
         LogLevel VERBOSE\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         KexAlgorithms ecdh-sha2-nistp256\n\
         AllowTcpForwarding local\n\
         PermitOpen *:{port}\n\
         AllowAgentForwarding no\n\
         SetEnv GT_LAB_DIR={d} SHLVL=1\n\
         ForceCommand . {script}\n",
        hk = host_key(dir).display(),
        // sshd rewrites its pid file each time it re-executes on SIGHUP
        // (truncated, then written): a reload reading the lab's record at
        // that moment would find no sshd and start a second one. The pid is
        // the same across re-executions, so the lab keeps its own record.
        pid = ssh_dir(dir)
            .join(format!("{}.pid", process_name(group)))
            .display(),
        user = ssh.user,
        script = session_script(dir).display(),
        port = ssh.port,
    ));
    s
}

/// Writes group `group`'s config, unless it would listen nowhere: an sshd
/// config without a ListenAddress listens on every interface (port 22), so
/// such a file must never exist for a SIGHUP or a start to pick up. A group
/// with no live host keeps its last config and is stopped instead.
fn write_config(
    dir: &Path,
    ssh: &SshState,
    group: usize,
    listen: &[String],
) -> Result<(), LabError> {
    if listen.is_empty() {
        return Ok(());
    }
    let cfg = config_file(dir, group);
    let tmp = cfg.with_extension("new");
    std::fs::write(&tmp, render_config(dir, ssh, group, listen))
        .and_then(|()| std::fs::rename(&tmp, &cfg))
        .map_err(LabError::io(format!("writing {}", cfg.display())))
}

/// The addresses group `group` should listen on now (its hosts that are not down).
fn live_addresses(dir: &Path, topo: &LabTopology, ssh: &SshState, group: usize) -> Vec<String> {
    ssh.groups[group]
        .iter()
        .filter(|n| !Faults::load(dir, n).down)
        .filter_map(|n| topo.node(n).map(|n| n.address.clone()))
        .collect()
}

fn start_group(
    dir: &Path,
    ssh: &SshState,
    group: usize,
    listen: &[String],
) -> Result<(), LabError> {
    // Debian's sshd refuses to start as root without its privilege separation directory.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && !Path::new("/run/sshd").exists() {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let name = process_name(group);
    let log = dir.join("logs").join(format!("{name}.log"));
    let pid = procs::spawn_detached(
        Command::new(SSHD)
            .arg("-D")
            // No re-exec for each connection (OpenSSH up to 9.7; later ones
            // log that -r is deprecated and ignore it): one sshd plays every
            // host of its group on this machine, and the re-exec (a fresh
            // dynamic link and OpenSSL start, ~12 ms of CPU a login) is what a
            // real host pays on its own CPU. What the session sees is the same.
            .arg("-r")
            .arg("-f")
            .arg(config_file(dir, group))
            .arg("-E")
            .arg(&log),
        &dir.join("logs").join(format!("{name}.out")),
    )
    .map_err(|e| LabError::Process(format!("cannot start {SSHD}: {e}")))?;
    procs::record(dir, &name, pid).map_err(LabError::io("recording sshd's pid"))?;
    for a in listen {
        let addr = format!("{a}:{}", ssh.port);
        if !procs::wait_listening(&addr, Duration::from_secs(10), || {
            procs::is_alive(pid as i32)
        }) {
            return Err(LabError::Process(format!(
                "{name} did not start listening on {addr}; its log {} says:\n{}",
                log.display(),
                procs::log_tail(&log, 10)
            )));
        }
    }
    Ok(())
}

/// Writes every group's config and starts its sshd.
pub(crate) fn start_all(dir: &Path, topo: &LabTopology, ssh: &SshState) -> Result<(), LabError> {
    for group in 0..ssh.groups.len() {
        let listen = live_addresses(dir, topo, ssh, group);
        write_config(dir, ssh, group, &listen)?;
        if !listen.is_empty() {
            start_group(dir, ssh, group, &listen)?;
        }
    }
    Ok(())
}

/// After a `down` fault or a `heal` on `node`: make its group listen on
/// exactly its live hosts' addresses.
pub(crate) fn reconfigure_for(
    dir: &Path,
    topo: &LabTopology,
    ssh: &SshState,
    node: &str,
) -> Result<(), LabError> {
    let Some(group) = ssh.groups.iter().position(|g| g.iter().any(|n| n == node)) else {
        return Ok(());
    };
    // Two hosts of one group can go down or come back at once (reboots):
    // without this lock, one could SIGHUP the sshd after the other rewrote
    // its config, and whatever it re-executed with would be a race.
    let lock_path = config_file(dir, group).with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(LabError::io(format!("opening {}", lock_path.display())))?;
    // SAFETY: flock on an fd we own; released when `lock` is dropped.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(LabError::Process(format!(
            "cannot lock {}: {}",
            lock_path.display(),
            std::io::Error::last_os_error()
        )));
    }
    let listen = live_addresses(dir, topo, ssh, group);
    let name = process_name(group);
    let node_addr = topo
        .node(node)
        .map(|n| format!("{}:{}", n.address, ssh.port))
        .unwrap_or_default();
    let now_down = Faults::load(dir, node).down;
    let running = procs::recorded_pid(dir, &name).filter(|p| procs::is_lab_process(*p, dir));
    // Hosts rebooting together come back within moments of each other: the
    // reload one of them ran under this lock may already have picked up the
    // others' changes (it reads every host's state once it holds the lock,
    // and released it only once sshd listened as told). Then sshd needs no
    // reload for them, only the check that their address is as it should be.
    let current = std::fs::read_to_string(config_file(dir, group)).ok();
    if running.is_some()
        && already_loaded(current.as_deref(), &render_config(dir, ssh, group, &listen))
        && address_is(&node_addr, now_down)
    {
        return Ok(());
    }
    write_config(dir, ssh, group, &listen)?;
    match (running, listen.is_empty()) {
        (Some(pid), true) => {
            procs::stop(&[pid], Duration::from_secs(5));
            procs::forget(dir, &name);
        }
        (Some(pid), false) => {
            // SAFETY: signalling a pid verified to be this lab's sshd.
            unsafe { libc::kill(pid, libc::SIGHUP) };
            // The signal is handled asynchronously: until the node's own address
            // changes state, the other addresses may still be the old sockets,
            // about to close for the restart. Only then check them.
            let witnessed = if now_down {
                procs::wait_refusing(&node_addr, Duration::from_secs(10))
            } else {
                procs::wait_listening(&node_addr, Duration::from_secs(10), || procs::is_alive(pid))
            };
            let mut failed = (!witnessed).then(|| node_addr.clone());
            for a in &listen {
                let addr = format!("{a}:{}", ssh.port);
                if failed.is_none()
                    && !procs::wait_listening(&addr, Duration::from_secs(10), || {
                        procs::is_alive(pid)
                    })
                {
                    failed = Some(addr);
                }
            }
            if let Some(addr) = failed {
                return Err(LabError::Process(format!(
                    "{name} did not reload its listen addresses (stuck at {addr}); see {}",
                    dir.join("logs").join(format!("{name}.log")).display()
                )));
            }
        }
        (None, false) => start_group(dir, ssh, group, &listen)?,
        (None, true) => {}
    }
    if now_down && !procs::wait_refusing(&node_addr, Duration::from_secs(10)) {
        return Err(LabError::Process(format!(
            "{node_addr} still accepts connections after {node} was marked down"
        )));
    }
    Ok(())
}

/// Whether the config sshd last loaded is already `wanted` (a group with
/// no live address is stopped rather than reloaded: never "loaded").
fn already_loaded(current: Option<&str>, wanted: &str) -> bool {
    current == Some(wanted) && wanted.contains("ListenAddress")
}

/// One connection attempt: refused for a host that is down, accepted else.
fn address_is(addr: &str, down: bool) -> bool {
    if down {
        procs::wait_refusing(addr, Duration::ZERO)
    } else {
        procs::wait_listening(addr, Duration::ZERO, || true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_listens_on_each_live_address_and_forces_the_lab_session() {
        let ssh = SshState {
            port: 2222,
            user: "root".into(),
            groups: vec![vec!["bettley".into(), "cargyll".into()]],
        };
        let c = render_config(Path::new("/lab"), &ssh, 0, &["127.4.0.11".into()]);
        assert!(c.contains("ListenAddress 127.4.0.11:2222\n"));
        assert!(!c.contains("127.4.0.12"));
        assert!(c.contains("ForceCommand . /lab/ssh/session.sh\n"));
        assert!(c.contains("SetEnv GT_LAB_DIR=/lab SHLVL=1\n"));
        // Never the lab's own record of the pid, which a reload reads.
        assert!(c.contains("PidFile /lab/ssh/sshd-0.pid\n"), "{c}");
        assert!(!c.contains(&format!(
            "PidFile {}\n",
            procs::pid_file(Path::new("/lab"), "sshd-0").display()
        )));
        assert!(c.contains("MaxStartups 200:30:300\n"));
        // OpenSSL's code, not OpenSSH's reference Curve25519.
        assert!(c.contains("KexAlgorithms ecdh-sha2-nistp256\n"), "{c}");
    }

    #[test]
    fn a_reload_that_already_carried_a_change_is_not_run_again() {
        let ssh = SshState {
            port: 2222,
            user: "root".into(),
            groups: vec![vec!["bettley".into(), "cargyll".into()]],
        };
        let both = render_config(
            Path::new("/lab"),
            &ssh,
            0,
            &["127.4.0.11".into(), "127.4.0.12".into()],
        );
        let one = render_config(Path::new("/lab"), &ssh, 0, &["127.4.0.11".into()]);
        assert!(already_loaded(Some(&both), &both));
        assert!(!already_loaded(Some(&one), &both));
        assert!(!already_loaded(None, &both));
        // A config listening nowhere is never written, so never "loaded".
        let nowhere = render_config(Path::new("/lab"), &ssh, 0, &[]);
        assert!(!already_loaded(Some(&nowhere), &nowhere));
    }

    #[test]
    fn a_group_with_no_live_host_keeps_its_last_config_rather_than_one_that_listens_everywhere() {
        let dir = std::env::temp_dir().join(format!("gt-lab-ssh-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ssh")).unwrap();
        let ssh = SshState {
            port: 2222,
            user: "root".into(),
            groups: vec![vec!["bettley".into()]],
        };
        write_config(&dir, &ssh, 0, &["127.4.0.11".into()]).unwrap();
        write_config(&dir, &ssh, 0, &[]).unwrap();
        let c = std::fs::read_to_string(config_file(&dir, 0)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(c.contains("ListenAddress 127.4.0.11:2222\n"), "{c}");
    }
}
