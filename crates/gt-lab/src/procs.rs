//! The lab's processes: starting them detached, recording them, finding
//! every process that belongs to a lab, and stopping them.
//!
//! A process belongs to the lab in DIR when it was recorded in `DIR/pids/`
//! and its command line still names DIR (pids get reused), or when its
//! environment says it runs on a simulated host of DIR (`GT_HOST_ROOT=DIR/hosts/...`,
//! or `GT_LAB_DIR=DIR`, which the lab's sshd sets for every session). The
//! second rule is what finds commands left hanging by a `hang` fault: they are
//! children of gt's transport or of sshd, not of the lab.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn pid_dir(dir: &Path) -> PathBuf {
    dir.join("pids")
}

pub(crate) fn pid_file(dir: &Path, name: &str) -> PathBuf {
    pid_dir(dir).join(format!("{name}.pid"))
}

pub(crate) fn record(dir: &Path, name: &str, pid: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(pid_dir(dir))?;
    std::fs::write(pid_file(dir, name), format!("{pid}\n"))
}

pub(crate) fn forget(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(pid_file(dir, name));
}

/// Every recorded process, `(name, pid)`, sorted by name.
pub(crate) fn recorded(dir: &Path) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(pid_dir(dir)) else {
        return out;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pid"))
        else {
            continue;
        };
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            out.push((name.to_string(), pid));
        }
    }
    out.sort();
    out
}

pub(crate) fn recorded_pid(dir: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(pid_file(dir, name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Running, not a zombie (orphans may never be reaped in some containers).
pub(crate) fn is_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain ") ".
    match stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
    {
        Some(state) => state != "Z" && state != "X",
        None => false,
    }
}

fn read_nul_separated(path: String) -> Vec<String> {
    std::fs::read(path)
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn cmdline(pid: i32) -> Vec<String> {
    read_nul_separated(format!("/proc/{pid}/cmdline"))
}

/// A recorded process is still ours when its command line names the lab dir.
pub(crate) fn is_lab_process(pid: i32, dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    is_alive(pid) && cmdline(pid).iter().any(|a| a.contains(d.as_ref()))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The program of a server the lab starts (`sshd`, `haproxy`, `gt lab
/// serve`) from its command line; sshd retitles itself (`sshd: /usr/sbin/sshd
/// -D -f ... [listener] ...` as its first word).
fn server_program(cmdline: &[String]) -> Option<&'static str> {
    let first = cmdline.first()?.split_whitespace().next()?;
    let name = first.rsplit('/').next()?.trim_end_matches(':');
    match name {
        "sshd" => Some("sshd"),
        "haproxy" => Some("haproxy"),
        _ if cmdline.get(1..3).is_some_and(|a| a == ["lab", "serve"]) => Some("serve"),
        _ => None,
    }
}

/// The lab's servers in `dir` that its pid files do not record (`recorded`):
/// one restarted under a new pid would otherwise outlive the lab. Only
/// the lab's server programs count, never a shell or an editor that
/// happens to name a file in `dir`. `(program, pid)`.
pub(crate) fn unrecorded_servers(dir: &Path, recorded: &[i32]) -> Vec<(String, i32)> {
    let me = std::process::id() as i32;
    let d = dir.to_string_lossy();
    let inside = format!("{d}/");
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me && !recorded.contains(&pid) && is_alive(pid))
        .filter_map(|pid| {
            let c = cmdline(pid);
            let names_dir = c.iter().any(|a| *a == d || a.contains(&inside));
            let program = server_program(&c).filter(|_| names_dir)?;
            Some((program.to_string(), pid))
        })
        .collect()
}

/// Processes running on simulated hosts of the lab in `dir` (`node` = one host only).
pub(crate) fn host_processes(dir: &Path, node: Option<&str>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let hosts = dir.join("hosts");
    let root_marker = match node {
        Some(n) => format!("GT_HOST_ROOT={}", hosts.join(n).display()),
        None => format!("GT_HOST_ROOT={}/", hosts.display()),
    };
    let lab_marker = format!("GT_LAB_DIR={}", dir.display());
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me && is_alive(pid))
        .filter(|&pid| {
            read_nul_separated(format!("/proc/{pid}/environ"))
                .iter()
                .any(|v| match node {
                    Some(_) => *v == root_marker,
                    None => v.starts_with(&root_marker) || *v == lab_marker,
                })
        })
        .collect()
}

/// Starts `cmd` in its own session (no terminal, not in the caller's process
/// group, so ^C in the shell that ran `gt lab up` does not reach it).
/// A daemon outlives the command that started it: it must not keep that
/// command's descriptors (a `flock 9` of the shell that ran `gt lab up`
/// would stay held until the lab is down). Closes all but stdio in the child.
pub(crate) fn close_inherited(cmd: &mut Command) {
    // SAFETY: close_range is an async-signal-safe syscall on the child's own
    // descriptor table; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
}

pub(crate) fn spawn_detached(cmd: &mut Command, log: &Path) -> std::io::Result<u32> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    close_inherited(cmd);
    Ok(cmd.spawn()?.id())
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: plain syscalls on a pid we checked belongs to the lab.
    unsafe {
        // Each process the lab starts leads its own process group.
        if libc::getpgid(pid) == pid {
            libc::kill(-pid, sig);
        }
        libc::kill(pid, sig);
    }
}

/// TERM, wait up to `grace`, then KILL. Returns the pids still alive after KILL.
pub(crate) fn stop(pids: &[i32], grace: Duration) -> Vec<i32> {
    for &p in pids {
        signal(p, libc::SIGTERM);
    }
    if wait_gone(pids, grace) {
        return Vec::new();
    }
    let left: Vec<i32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
    kill(&left)
}

/// KILL at once, for a process whose graceful exit nobody needs (its files
/// are about to be removed). Returns the pids still alive after it.
pub(crate) fn kill(pids: &[i32]) -> Vec<i32> {
    for &p in pids {
        signal(p, libc::SIGKILL);
    }
    wait_gone(pids, Duration::from_secs(2));
    pids.iter().copied().filter(|p| is_alive(*p)).collect()
}

fn wait_gone(pids: &[i32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|p| !is_alive(*p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until a TCP connection to `addr` succeeds.
pub(crate) fn wait_listening(
    addr: &str,
    timeout: Duration,
    still_running: impl Fn() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(sa) = addr.parse::<std::net::SocketAddr>() else {
        return false;
    };
    loop {
        if std::net::TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline || !still_running() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until connections to `addr` are refused.
pub(crate) fn wait_refusing(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(sa) = addr.parse::<std::net::SocketAddr>() else {
        return false;
    };
    loop {
        if std::net::TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of a log, to explain why a process did not start.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
