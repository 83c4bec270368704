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
    fail(&format!(
        "cannot run {}: {e}",
        Path::new(cmd.get_program()).display()
    ))
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

/// What sshd's ForceCommand sources (`. DIR/ssh/session.sh`, in the login
/// shell sshd starts anyway): the work of [`ssh_session`] in the shell, so
/// that a session starts no program of the lab's before its command, as on
/// a real host. The command runs in that login shell (`eval`), as sshd runs
/// a real host's commands with `$SHELL -c` (root's bash on Debian and
/// Raspberry Pi OS): one shell per session, not two. A host with a fault file, or an address the table does not
/// know (the topology changed), goes to `gt-lab-ssh-session`, which reads
/// the lab itself.
pub(crate) fn ssh_session_script(dir: &Path, topo: &LabTopology) -> String {
    let d = dir.display();
    let mut s = String::from(
        "# Written by `gt lab up`: sourced by sshd's ForceCommand in the login shell.\n\
         # The host is the address the client connected to.\n\
         set -- $SSH_CONNECTION\n\
         case $3 in\n",
    );
    for n in &topo.nodes {
        s.push_str(&format!(
            "{a}) n={name} p={path} ;;\n",
            a = n.address,
            name = n.name,
            path = node_path(dir, &n.name)
        ));
    }
    s.push_str(&format!(
        "*) n= ;;\n\
         esac\n\
         if [ -z \"$n\" ] || [ -e {d}/faults/\"$n\".json ]; then exec {d}/bin/{SSH_SESSION}; fi\n\
         export GT_HOST_ROOT={d}/hosts/\"$n\" PATH=\"$p\"\n\
         if [ \"${{SSH_ORIGINAL_COMMAND+set}}\" = set ]; then unset n p; set --; eval \"$SSH_ORIGINAL_COMMAND\"; exit; fi\n\
         exec /bin/sh -l\n"
    ));
    s
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
    // The login shell, as sshd runs a command (and as session.sh does).
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut sh = Command::new(shell);
    sh.env("GT_HOST_ROOT", dir.join("hosts").join(&node.name))
        .env("PATH", node_path(&dir, &node.name));
    match std::env::var("SSH_ORIGINAL_COMMAND") {
        Ok(c) => exec_sh(sh.arg("-c").arg(c)),
        Err(_) => exec_sh(sh.arg("-l")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::LabNode;
    use std::os::unix::fs::PermissionsExt;

    fn node(name: &str, address: &str) -> LabNode {
        LabNode {
            name: name.into(),
            address: address.into(),
            role: "worker".into(),
            arch: "arm64".into(),
            kubernetes_version: "v1.32.4".into(),
        }
    }

    /// The session script as sshd's login shell sources it, for a client
    /// connected to `address`, running `command`.
    fn session(dir: &Path, address: &str, command: &str) -> String {
        session_with_status(dir, address, command).1
    }

    fn session_with_status(dir: &Path, address: &str, command: &str) -> (Option<i32>, String) {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(". {}/ssh/session.sh", dir.display()))
            .env("SSH_CONNECTION", format!("127.0.0.1 50000 {address} 2200"))
            .env("SSH_ORIGINAL_COMMAND", command)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
        )
    }

    #[test]
    fn a_session_runs_its_command_on_the_host_of_its_address_and_faults_go_to_the_lab() {
        let scratch = std::env::temp_dir().join(format!("gt-lab-session-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let dir = scratch.as_path();
        let topo = LabTopology {
            cluster_name: "goldentooth".into(),
            endpoint: "127.4.0.10:6443".into(),
            transport: "ssh".into(),
            speed: 1.0,
            api_listeners: false,
            nodes: vec![node("bettley", "127.4.0.11"), node("fenn", "127.4.0.15")],
        };
        for sub in ["ssh", "bin", "faults"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("ssh/session.sh"), ssh_session_script(dir, &topo)).unwrap();
        // The lab's own session, which reads the lab itself.
        let stub = dir.join("bin").join(SSH_SESSION);
        std::fs::write(
            &stub,
            "#!/bin/sh\necho \"lab session: $SSH_ORIGINAL_COMMAND\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();

        let fenn = session(dir, "127.4.0.15", "echo \"$GT_HOST_ROOT\"; echo \"$PATH\"");
        let d = dir.display();
        assert_eq!(
            fenn,
            format!("{d}/hosts/fenn\n{}\n", node_path(dir, "fenn")),
            "the command runs with fenn's root and PATH"
        );
        assert_eq!(
            session(dir, "127.4.0.11", "echo \"$GT_HOST_ROOT\""),
            format!("{d}/hosts/bettley\n")
        );
        // A fault, or an address the table does not know: the lab decides.
        std::fs::write(dir.join("faults/fenn.json"), "{\"hang\":true}").unwrap();
        assert_eq!(session(dir, "127.4.0.15", "true"), "lab session: true\n");
        assert_eq!(session(dir, "127.4.0.99", "true"), "lab session: true\n");
        assert_eq!(
            session(
                dir,
                "127.4.0.11",
                "echo \"${BASH_VERSION:+bash} n=$n p=$p args=$#\""
            ),
            "bash n= p= args=0\n",
            "the command runs in the login shell itself, with nothing of the table left"
        );
        assert_eq!(
            session_with_status(dir, "127.4.0.11", "exit 3; echo no"),
            (Some(3), String::new()),
            "the command's own status and output"
        );
        assert_eq!(
            session_with_status(dir, "127.4.0.11", "echo one; false"),
            (Some(1), "one\n".to_string()),
            "the status of the command's last part"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
