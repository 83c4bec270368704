//! The two doors into a simulated host, both multi-call names of the gt binary:
//!
//! - `gt-lab-sh`: the shell gt's local transport runs commands with
//!   (`[nodes.X.local] shell`), with GT_HOST_ROOT already in its environment.
//! - `gt-lab-ssh-session`: sshd's ForceCommand; the host is the address the
//!   client connected to (`SSH_CONNECTION`), the command `SSH_ORIGINAL_COMMAND`.
//!
//! Both honour the host's faults before running anything: `down` fails the
//! way an unreachable host does (exit 255, like ssh), `hang` never answers.

use crate::topology::{host_from_root, Faults, LabTopology, LAB_FILE};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

pub(crate) const LAB_SHELL: &str = "gt-lab-sh";
pub(crate) const SSH_SESSION: &str = "gt-lab-ssh-session";

/// The PATH gt's config gives the lab shell: the lab's tools first.
pub(crate) fn host_path(dir: &Path) -> String {
    format!("{}/bin:/usr/local/bin:/usr/bin:/bin", dir.display())
}

/// The PATH a simulated host's commands run with: the host's own /usr/bin
/// (the programs of its installed packages), the lab's OS tools, then this
/// machine's programs except those a package brings (see [`os_programs`]), so
/// that a host without kubectl has none, whatever this machine has.
pub(crate) fn node_path(dir: &Path, node: &str) -> String {
    format!(
        "{}/hosts/{node}/usr/bin:{}/bin:{}",
        dir.display(),
        dir.display(),
        os_programs(dir).display()
    )
}

/// `DIR/os-bin`: links to this machine's programs (/usr/local/bin, /usr/bin),
/// without the ones simulated hosts get from packages.
pub(crate) fn os_programs(dir: &Path) -> PathBuf {
    dir.join("os-bin")
}

/// Fills [`os_programs`].
pub(crate) fn link_os_programs(dir: &Path) -> std::io::Result<()> {
    let out = os_programs(dir);
    std::fs::create_dir_all(&out)?;
    for src in ["/usr/local/bin", "/usr/bin", "/bin"] {
        let Ok(entries) = std::fs::read_dir(src) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            if crate::sim::TOOLS.contains(&n) {
                continue;
            }
            let link = out.join(n);
            if link.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(e.path(), &link)?;
            }
        }
    }
    Ok(())
}

/// Runs the lab shell or the ssh session when gt is invoked under their name.
pub(crate) fn dispatch(tool: &str, args: &[String]) -> Option<ExitCode> {
    match tool {
        LAB_SHELL => Some(lab_shell(args)),
        SSH_SESSION => Some(ssh_session()),
        _ => None,
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("gt-lab: {msg}");
    ExitCode::from(255)
}

/// Never answers, as a hung host would; exits only when killed or when the
/// lab is gone, so a forgotten hang cannot outlive its lab.
fn hang(dir: &Path) -> ExitCode {
    let marker = dir.join(LAB_FILE);
    while marker.exists() {
        std::thread::sleep(Duration::from_millis(500));
    }
    ExitCode::from(255)
}

/// Down or hanging hosts stop here; healthy ones return.
fn honour_faults(dir: &Path, node: &str) -> Option<ExitCode> {
    let f = Faults::load(dir, node);
    if f.down {
        return Some(fail(&format!("host {node} is down (lab fault)")));
    }
    if f.hang {
        return Some(hang(dir));
    }
    None
}

fn exec_sh(cmd: &mut Command) -> ExitCode {
    let e = cmd.exec();
    fail(&format!("cannot run /bin/sh: {e}"))
}

fn lab_shell(args: &[String]) -> ExitCode {
    let Some(root) = std::env::var_os("GT_HOST_ROOT") else {
        return fail(
            "GT_HOST_ROOT is not set; gt-lab-sh runs a simulated host's commands \
             and is meant to be used through the lab's cluster.toml",
        );
    };
    let Some((dir, node)) = host_from_root(Path::new(&root)) else {
        return fail(&format!(
            "GT_HOST_ROOT={} is not a lab host root (DIR/hosts/NODE)",
            Path::new(&root).display()
        ));
    };
    if let Some(code) = honour_faults(&dir, &node) {
        return code;
    }
    exec_sh(
        Command::new("/bin/sh")
            .args(args)
            .env("PATH", node_path(&dir, &node)),
    )
}

fn lab_dir_of_session() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("GT_LAB_DIR") {
        return Some(PathBuf::from(d));
    }
    // DIR/bin/gt-lab-ssh-session
    let argv0 = PathBuf::from(std::env::args_os().next()?);
    Some(argv0.parent()?.parent()?.to_path_buf())
}

fn ssh_session() -> ExitCode {
    let Some(dir) = lab_dir_of_session() else {
        return fail("cannot tell which lab this session belongs to (GT_LAB_DIR is not set)");
    };
    let Some(local) = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| c.split_whitespace().nth(2).map(str::to_string))
    else {
        return fail(
            "SSH_CONNECTION is not set; gt-lab-ssh-session runs only as sshd's ForceCommand",
        );
    };
    let topo = match LabTopology::load(&dir) {
        Ok(t) => t,
        Err(e) => return fail(&format!("no lab in {}: {e}", dir.display())),
    };
    let Some(node) = topo.nodes.iter().find(|n| n.address == local) else {
        return fail(&format!("no lab host has the address {local}"));
    };
    if let Some(code) = honour_faults(&dir, &node.name) {
        return code;
    }
    let mut sh = Command::new("/bin/sh");
    sh.env("GT_HOST_ROOT", dir.join("hosts").join(&node.name))
        .env("PATH", node_path(&dir, &node.name));
    match std::env::var("SSH_ORIGINAL_COMMAND") {
        Ok(c) => exec_sh(sh.arg("-c").arg(c)),
        Err(_) => exec_sh(sh.arg("-l")),
    }
}
