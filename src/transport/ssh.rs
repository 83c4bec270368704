//! SSH through the system `ssh` (so the user's ~/.ssh/config and agent keep
//! working): one multiplexed master connection per host per run, opened by
//! gt itself (to control its options, deadline and error log), then driven
//! through openssh's native mux client.
//!
//! The master stays gt's child (no `-f`) and dies with gt: a relayed one
//! reads EOF from gt's end of its socket pair, any other is told to
//! (PR_SET_PDEATHSIG). An interrupted or killed gt leaves no ssh behind.

use super::dial;
use super::error::SshTarget;
use super::local::{exit_code, output_too_large};
use super::{
    classify_ssh_failure, pipe, secs, shell_quote, BoxFuture, Cmd, Host, KnownHostsPolicy,
    LineSink, Output, SshSettings, TransportError,
};
use openssh::{Session, Stdio};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time allowed after the TCP connect for key exchange and authentication.
const HANDSHAKE_MARGIN: Duration = Duration::from_secs(10);

pub struct SshHost {
    name: String,
    settings: SshSettings,
    session: Mutex<Option<Arc<Session>>>,
    /// The master process (killed if dropped: a host dropped without
    /// `close`, on an error path, leaves nothing behind).
    master: Mutex<Option<tokio::process::Child>>,
    /// A command was abandoned at its deadline: closing must end the master.
    abandoned: AtomicBool,
}

/// `STEM.EXT`: one of a connection's files (`SshHost::connect`).
fn connection_file(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// How often a starting master is checked for its control socket.
const MASTER_POLL: Duration = Duration::from_millis(5);
/// How long a closed master may take to exit before it is killed.
const MASTER_EXIT_GRACE: Duration = Duration::from_secs(2);

/// The `ssh` arguments that start the master connection of a host. With jump
/// hosts, `generated_config` (written by `jump_config`) replaces `-F`: ssh
/// passes `-F` on to the jump hops but not `-o` options, and the hops need
/// the same known_hosts and identity.
pub fn master_args(
    s: &SshSettings,
    control_socket: &Path,
    log: &Path,
    generated_config: Option<&Path>,
    dialed: bool,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-E".into(),
        log.display().to_string(),
        "-S".into(),
        control_socket.display().to_string(),
        "-M".into(),
        "-N".into(),
    ];
    let dialed = dialed.then(|| dial::SSH_OPTION.to_string());
    for opt in common_options(s).into_iter().chain(dialed) {
        a.push("-o".into());
        a.push(opt);
    }
    a.push("-p".into());
    a.push(s.port.to_string());
    a.push("-l".into());
    a.push(s.user.clone());
    if let Some(key) = &s.identity_file {
        a.push("-i".into());
        a.push(key.display().to_string());
    }
    if let Some(cfg) = generated_config.or(s.config_file.as_deref()) {
        a.push("-F".into());
        a.push(cfg.display().to_string());
    }
    if !s.jump_hosts.is_empty() {
        a.push("-J".into());
        a.push(s.jump_hosts.join(","));
    }
    a.push(s.host.clone());
    a
}

/// The connect timeout as ssh applies it: whole seconds, at least one. gt's
/// connect takes the same, so a dialed login waits exactly as long.
fn connect_timeout(s: &SshSettings) -> Duration {
    Duration::from_secs(s.connect_timeout.as_secs_f64().ceil().max(1.0) as u64)
}

/// Options for the host itself and, through `jump_config`, its jump hops.
fn common_options(s: &SshSettings) -> Vec<String> {
    let mut o = vec![
        // The master lives exactly as long as gt's run (see the module doc).
        "ControlPersist=no".to_string(),
        // Never prompt: a password or passphrase prompt would hang gt.
        "BatchMode=yes".to_string(),
        format!(
            "StrictHostKeyChecking={}",
            match s.known_hosts {
                KnownHostsPolicy::Strict => "yes",
                KnownHostsPolicy::AcceptNew => "accept-new",
            }
        ),
        format!("ConnectTimeout={}", connect_timeout(s).as_secs()),
        // Every login is on the path of a plan. gt logs in with keys, so
        // Kerberos (on in Debian's ssh_config) is never tried, and ssh does
        // not spend a round trip after each login having the host prove the
        // host keys it announces that known_hosts lacks (known_hosts is
        // yours to keep, not gt's).
        "GSSAPIAuthentication=no".to_string(),
        "UpdateHostKeys=no".to_string(),
    ];
    if s.identity_file.is_some() {
        o.push("IdentitiesOnly=yes".into());
    }
    if let Some(f) = &s.known_hosts_file {
        o.push(format!("UserKnownHostsFile={}", f.display()));
    }
    o
}

/// An ssh_config giving the jump hops the node's settings, then the user's own.
pub fn jump_config(s: &SshSettings, user_config: Option<&Path>) -> String {
    let mut c = String::from(
        "# Written by gt for one run: the jump hosts get the node's settings.\nHost *\n",
    );
    for opt in common_options(s) {
        if opt.starts_with("ControlPersist") {
            continue;
        }
        let (k, v) = opt.split_once('=').expect("options are key=value");
        c.push_str(&format!("  {k} {v}\n"));
    }
    if let Some(key) = &s.identity_file {
        c.push_str(&format!("  IdentityFile {}\n", key.display()));
    }
    if let Some(u) = user_config {
        c.push_str(&format!("  Include {}\n", u.display()));
    }
    c
}

impl SshHost {
    /// Opens the master connection; its files are `STEM.m` (the control
    /// socket), `STEM.log` (ssh's log and stderr) and, with jump hosts,
    /// `STEM.ssh_config`, where `stem` names them in an existing private
    /// directory (see `connection_file`). The TCP connection is gt's own
    /// (`dial.rs`) unless gt steps aside or `GT_SSH_DIAL` switches that off.
    pub async fn connect(
        name: &str,
        s: &SshSettings,
        stem: &Path,
    ) -> Result<SshHost, TransportError> {
        SshHost::connect_with(name, s, stem, dial::switched_on()).await
    }

    /// `connect`, with gt dialing only when `dial_allowed` (and nothing
    /// makes it step aside).
    pub async fn connect_with(
        name: &str,
        s: &SshSettings,
        stem: &Path,
        dial_allowed: bool,
    ) -> Result<SshHost, TransportError> {
        let dialed = dial::dials(s, dial_allowed);
        let local = |what: &str, e: std::io::Error| TransportError::Local {
            what: format!("{what} for {name}"),
            reason: e.to_string(),
        };
        // Files beside the run's other connections' in its private directory,
        // none of their own: each file or directory made is an inode, and on
        // ext4 (/tmp on many systems) allocating one searches past those the
        // last runs freed, at hundreds of hosts a third of gt's own CPU.
        let ctl = connection_file(stem, "m");
        let log = connection_file(stem, "log");
        let generated = if s.jump_hosts.is_empty() {
            None
        } else {
            let path = connection_file(stem, "ssh_config");
            let user = s.config_file.clone().or_else(default_user_config);
            std::fs::write(&path, jump_config(s, user.as_deref()))
                .map_err(|e| local("write the jump hosts' ssh_config", e))?;
            Some(path)
        };
        // ssh's stderr goes to its log (`-E`, which ssh opens to append): both
        // append, so neither writes over the other. Owner-only, whatever the
        // directory's mode (ssh keeps the mode of a log that exists).
        let stderr = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&log)
            .map_err(|e| local("create ssh's error log", e))?;
        // Held until the login is up or has failed (see jump_gate).
        let _starting = match s.jump_hosts.first() {
            Some(hop) => Some(
                super::jump_gate::gate(hop)
                    .acquire_owned()
                    .await
                    .expect("the gates are never closed"),
            ),
            None => None,
        };
        let known_hosts = s
            .known_hosts_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.ssh/known_hosts".into());
        let target = SshTarget {
            host: name,
            ip: &s.host,
            port: s.port,
            user: &s.user,
            known_hosts_file: &known_hosts,
        };
        let hops = s.jump_hosts.len() as u32 + 1;
        let deadline = s.connect_timeout * hops + HANDSHAKE_MARGIN;
        let timed_out = || TransportError::ConnectTimeout {
            host: name.to_string(),
            address: format!("{}:{}", s.host, s.port),
            after: secs(deadline),
            names: Default::default(),
        };
        let started = Instant::now();
        let relayed = dialed && super::relay::switched_on();
        let (stdin, stdout) = if dialed {
            // The login's deadline covers gt's connect as it covered ssh's.
            let stream =
                tokio::time::timeout(deadline, dial::connect(&s.host, s.port, connect_timeout(s)))
                    .await
                    .map_err(|_| timed_out())?
                    // A failed dial reads as ssh's own connect failure would.
                    .map_err(|text| classify_ssh_failure(&target, &text, started.elapsed()))?;
            // ssh reads the host's bytes through gt's relay, which has them
            // acknowledged at once, and writes to the connection itself
            // (relay.rs); switched off, it has the connection both ways.
            let (ssh_in, ssh_out): (std::os::fd::OwnedFd, std::os::fd::OwnedFd) = if relayed {
                let (ssh_in, ssh_out) = super::relay::relayed(stream)
                    .map_err(|e| local("hand the connection to ssh", e))?;
                (ssh_in.into(), ssh_out.into())
            } else {
                let copy = stream
                    .try_clone()
                    .map_err(|e| local("hand the connection to ssh", e))?;
                (stream.into(), copy.into())
            };
            (
                std::process::Stdio::from(ssh_in),
                std::process::Stdio::from(ssh_out),
            )
        } else {
            (std::process::Stdio::null(), std::process::Stdio::null())
        };
        let mut master = tokio::process::Command::new("ssh");
        master
            .args(master_args(s, &ctl, &log, generated.as_deref(), dialed))
            .stdin(stdin)
            .stdout(stdout)
            // Not a pipe: nobody reads it while the master runs; classified from the file on failure.
            .stderr(stderr)
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal interrupts gt
            // (which then lets running steps finish), not the connection
            // those steps run over. It still ends with gt (below).
            .process_group(0);
        // A relayed master reads the host through gt's end of a socket pair:
        // when gt ends, however it ends, that end closes and ssh reads EOF
        // and exits. Any other master is told to die with gt
        // (PR_SET_PDEATHSIG), which takes a `pre_exec`, and with it a fork
        // that copies gt's page tables (a relayed one is started by
        // posix_spawn: at hundreds of hosts the copies were a fifth of gt's
        // own CPU).
        if !relayed {
            // SAFETY: prctl is async-signal-safe and touches no memory of ours.
            unsafe {
                master.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let spawned = master.spawn();
        // ssh holds the connection now; gt's copies go with the command.
        drop(master);
        let mut child = spawned.map_err(|e| local("start ssh", e))?;
        let ready = async {
            loop {
                if let Some(status) = child.try_wait().map_err(|e| local("wait for ssh", e))? {
                    return Ok(Err(status));
                }
                if ctl.exists() {
                    if let Ok(mut c) = openssh_mux_client::Connection::connect(&ctl).await {
                        if c.send_alive_check().await.is_ok() {
                            return Ok(Ok(()));
                        }
                    }
                }
                tokio::time::sleep(MASTER_POLL).await;
            }
        };
        let ready: Result<Result<(), std::process::ExitStatus>, TransportError> =
            match tokio::time::timeout(deadline.saturating_sub(started.elapsed()), ready).await {
                Ok(r) => r,
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(timed_out());
                }
            };
        if ready?.is_err() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(classify_ssh_failure(&target, &text, started.elapsed()));
        }
        let session = Session::resume_mux(ctl.into_boxed_path(), Some(log.into_boxed_path()));
        Ok(SshHost {
            name: name.to_string(),
            settings: s.clone(),
            session: Mutex::new(Some(Arc::new(session))),
            master: Mutex::new(Some(child)),
            abandoned: AtomicBool::new(false),
        })
    }

    /// The remote command line: under `sudo -n` when configured, so that a
    /// password prompt fails at once instead of hanging.
    pub fn remote_script(&self, script: &str) -> String {
        wrap_sudo(self.settings.sudo, script)
    }

    async fn run_ssh(&self, cmd: &Cmd, lines: Option<&LineSink>) -> Result<Output, TransportError> {
        let session = self
            .session
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or_else(|| TransportError::Unreachable {
                host: self.name.clone(),
                reason: "the SSH connection was already closed".into(),
            })?;
        let script = self.remote_script(&cmd.script);
        let lost = |e: openssh::Error| TransportError::Unreachable {
            host: self.name.clone(),
            reason: format!("the SSH connection was lost: {e}"),
        };
        let finished = async {
            let mut command = session.raw_command(&script);
            command
                .stdin(if cmd.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = command.spawn().await.map_err(lost)?;
            let (stdin, stdout, stderr) = (
                child.stdin().take(),
                child.stdout().take(),
                child.stderr().take(),
            );
            let exchanged = pipe::exchange(
                &self.name,
                stdin,
                cmd.stdin.as_deref(),
                cmd.hold_stdin,
                (stdout, stderr),
                lines,
                cmd.max_output,
            )
            .await;
            let (stdout, stderr) = match exchanged {
                Ok(both) => both,
                Err(too_much) => {
                    // Dropping the session's pipes ends the remote command
                    // (its next write fails); the master is not waited for.
                    self.abandoned.store(true, Ordering::SeqCst);
                    return Err(output_too_large(&self.name, cmd, too_much));
                }
            };
            let code = match child.wait().await {
                Ok(status) => exit_code(status),
                // The mux client reports exit 127 as an error; it is an exit status here.
                Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => 127,
                Err(openssh::Error::RemoteProcessTerminated) => {
                    return Err(TransportError::Unreachable {
                        host: self.name.clone(),
                        reason: "the remote command was terminated without an exit status".into(),
                    })
                }
                Err(e) => return Err(lost(e)),
            };
            Ok(Output {
                code,
                stdout,
                stderr,
            })
        };
        let out = match tokio::time::timeout(cmd.timeout, finished).await {
            Ok(r) => r?,
            Err(_) => {
                self.abandoned.store(true, Ordering::SeqCst);
                return Err(TransportError::CommandTimeout {
                    host: self.name.clone(),
                    command: cmd.program().to_string(),
                    after: secs(cmd.timeout),
                });
            }
        };
        if self.settings.sudo && out.code == 1 && out.stderr.contains("a password is required") {
            return Err(TransportError::SudoPasswordRequired {
                host: self.name.clone(),
                user: self.settings.user.clone(),
            });
        }
        Ok(out)
    }

    async fn close_ssh(&self) {
        let session = self.session.lock().expect("not poisoned").take();
        if let Some(session) = session {
            match Arc::try_unwrap(session) {
                Ok(session) => {
                    let _ = session.close().await;
                }
                Err(_) => self.abandoned.store(true, Ordering::SeqCst),
            }
        }
        let Some(mut master) = self.master.lock().expect("not poisoned").take() else {
            return;
        };
        // The master waits for open sessions before it exits; a hung one never ends.
        if self.abandoned.load(Ordering::SeqCst) {
            let _ = master.start_kill();
        }
        if tokio::time::timeout(MASTER_EXIT_GRACE, master.wait())
            .await
            .is_err()
        {
            let _ = master.kill().await;
        }
    }
}

fn wrap_sudo(sudo: bool, script: &str) -> String {
    if sudo {
        format!("sudo -n sh -c {}", shell_quote(script))
    } else {
        script.to_string()
    }
}

fn default_user_config() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".ssh/config");
    p.exists().then_some(p)
}

impl Host for SshHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(self.run_ssh(cmd, lines))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.close_ssh())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A host's settings with every default, for unit tests of the transport.
    pub(in crate::transport) fn settings() -> SshSettings {
        SshSettings {
            host: "10.4.0.15".into(),
            user: "root".into(),
            port: 22,
            identity_file: None,
            jump_hosts: vec![],
            config_file: None,
            connect_timeout: Duration::from_secs(5),
            known_hosts: KnownHostsPolicy::Strict,
            known_hosts_file: None,
            sudo: false,
        }
    }

    #[test]
    fn master_with_defaults_is_strict_batch_and_multiplexed() {
        let a = master_args(
            &settings(),
            Path::new("/t/0.m"),
            Path::new("/t/0.log"),
            None,
            false,
        );
        assert_eq!(
            a.join(" "),
            "-E /t/0.log -S /t/0.m -M -N -o ControlPersist=no -o BatchMode=yes \
             -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o GSSAPIAuthentication=no \
             -o UpdateHostKeys=no -p 22 -l root 10.4.0.15"
        );
    }

    #[test]
    fn master_carries_every_setting() {
        let mut s = settings();
        s.user = "pi".into();
        s.port = 2222;
        s.identity_file = Some("/home/me/.ssh/gt".into());
        s.config_file = Some("/home/me/ssh_config".into());
        s.connect_timeout = Duration::from_millis(2500);
        s.known_hosts = KnownHostsPolicy::AcceptNew;
        s.known_hosts_file = Some("/lab/known_hosts".into());
        let a = master_args(&s, Path::new("/t/1.m"), Path::new("/t/1.log"), None, false);
        assert_eq!(
            a.join(" "),
            "-E /t/1.log -S /t/1.m -M -N -o ControlPersist=no -o BatchMode=yes \
             -o StrictHostKeyChecking=accept-new -o ConnectTimeout=3 -o GSSAPIAuthentication=no \
             -o UpdateHostKeys=no -o IdentitiesOnly=yes \
             -o UserKnownHostsFile=/lab/known_hosts -p 2222 -l pi -i /home/me/.ssh/gt \
             -F /home/me/ssh_config 10.4.0.15"
        );
    }

    #[test]
    fn a_dialed_master_takes_its_connection_from_its_stdin_and_stdout() {
        let a = master_args(
            &settings(),
            Path::new("/t/0.m"),
            Path::new("/t/0.log"),
            None,
            true,
        );
        assert_eq!(
            a.join(" "),
            "-E /t/0.log -S /t/0.m -M -N -o ControlPersist=no -o BatchMode=yes \
             -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o GSSAPIAuthentication=no \
             -o UpdateHostKeys=no -o ProxyCommand=- -p 22 -l root 10.4.0.15"
        );
    }

    #[test]
    fn jump_hosts_use_the_generated_config_that_carries_the_settings() {
        let mut s = settings();
        s.jump_hosts = vec!["root@127.4.0.11:2222".into(), "10.4.0.1".into()];
        s.known_hosts_file = Some("/lab/known_hosts".into());
        s.identity_file = Some("/lab/id".into());
        s.config_file = Some("/home/me/ssh_config".into());
        let a = master_args(
            &s,
            Path::new("/t/2.m"),
            Path::new("/t/2.log"),
            Some(Path::new("/t/2/ssh_config")),
            false,
        );
        let line = a.join(" ");
        assert!(
            line.ends_with("-F /t/2/ssh_config -J root@127.4.0.11:2222,10.4.0.1 10.4.0.15"),
            "{line}"
        );
        assert_eq!(
            jump_config(&s, s.config_file.as_deref()),
            "# Written by gt for one run: the jump hosts get the node's settings.\nHost *\n  \
             BatchMode yes\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  GSSAPIAuthentication no\n  \
             UpdateHostKeys no\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile /lab/known_hosts\n  IdentityFile /lab/id\n  Include /home/me/ssh_config\n"
        );
    }

    #[test]
    fn sudo_wraps_the_whole_script_quoted() {
        assert_eq!(wrap_sudo(false, "uname -m"), "uname -m");
        assert_eq!(
            wrap_sudo(true, "cat '/etc/kubernetes/admin.conf'"),
            r#"sudo -n sh -c "cat '/etc/kubernetes/admin.conf'""#
        );
    }
}
