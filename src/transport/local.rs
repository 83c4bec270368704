//! Commands as local processes: `SHELL -c CMD` with the node's environment
//! added (gt on the node itself, or the lab's simulated hosts).

use super::LocalSettings;
use super::{pipe, secs, BoxFuture, Cmd, Host, LineSink, Output, TransportError};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Instant;

pub struct LocalHost {
    name: String,
    settings: LocalSettings,
}

impl LocalHost {
    pub fn new(name: &str, settings: &LocalSettings) -> LocalHost {
        LocalHost {
            name: name.to_string(),
            settings: settings.clone(),
        }
    }

    async fn run_local(
        &self,
        cmd: &Cmd,
        lines: Option<&LineSink>,
    ) -> Result<Output, TransportError> {
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.settings.shell);
        command
            .arg("-c")
            .arg(&cmd.script)
            .envs(&self.settings.env)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout kills what the shell started too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| TransportError::Unreachable {
            host: self.name.clone(),
            reason: format!("cannot start {}: {e}", self.settings.shell.display()),
        })?;
        let pid = child.id();
        let _running = pid.map(Running::new);
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let finished = async {
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
            match exchanged {
                Ok((out, err)) => Ok((out, err, child.wait().await)),
                Err(too_much) => Err(too_much),
            }
        };
        match tokio::time::timeout(cmd.timeout, finished).await {
            Ok(Err(too_much)) => {
                kill_group(pid);
                let _ = child.wait().await;
                Err(output_too_large(&self.name, cmd, too_much))
            }
            Ok(Ok((stdout, stderr, status))) => {
                let code = status.map(exit_code).map_err(|e| TransportError::Local {
                    what: format!("wait for a command on {}", self.name),
                    reason: e.to_string(),
                })?;
                // The lab's shell (and any wrapper like it) exits 255 with nothing
                // on stdout when the host is down, as ssh does.
                if code == 255 && stdout.is_empty() {
                    let reason = stderr.trim();
                    return Err(TransportError::Unreachable {
                        host: self.name.clone(),
                        reason: if reason.is_empty() {
                            format!(
                                "{} exited 255 after {}",
                                self.settings.shell.display(),
                                secs(started.elapsed())
                            )
                        } else {
                            reason.to_string()
                        },
                    });
                }
                Ok(Output {
                    code,
                    stdout,
                    stderr,
                })
            }
            Err(_) => {
                kill_group(pid);
                let _ = child.wait().await;
                Err(TransportError::CommandTimeout {
                    host: self.name.clone(),
                    command: cmd.program().to_string(),
                    after: secs(cmd.timeout),
                })
            }
        }
    }
}

/// The process groups of the local commands running now: each command
/// runs in a group of its own (so that a Ctrl-C at the terminal does not cut
/// it), which no signal gt gets reaches, and which would outlive a gt that
/// exits at once.
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn running() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command's group, listed in `RUNNING` while its run lasts.
struct Running(u32);

impl Running {
    fn new(pid: u32) -> Running {
        running().insert(pid);
        Running(pid)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        running().remove(&self.0);
    }
}

/// Ends every local command still running (SIGTERM to its group), for a gt
/// about to exit at once.
pub fn stop_local_commands() {
    for pid in std::mem::take(&mut *running()) {
        // SAFETY: killpg has no memory-safety preconditions; the group is our child's.
        unsafe {
            libc::killpg(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}

/// Kills the command and whatever its shell started.
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        // SAFETY: killpg has no memory-safety preconditions; the group is our child's.
        unsafe {
            libc::killpg(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

/// The error of a command stopped for printing too much.
pub(crate) fn output_too_large(host: &str, cmd: &Cmd, e: pipe::Exceeded) -> TransportError {
    TransportError::OutputTooLarge {
        host: host.to_string(),
        command: cmd.program().to_string(),
        stream: match e.stream {
            super::Stream::Stdout => "stdout",
            super::Stream::Stderr => "stderr",
        },
        limit: match e.bound {
            pipe::Bound::Bytes(n) => mib(n),
            pipe::Bound::Lines(n) => format!("{n} lines"),
        },
    }
}

/// `16 MiB`, `512 KiB`, `100 bytes`.
fn mib(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(self.run_local(cmd, lines))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn host(env: &[(&str, &str)]) -> LocalHost {
        LocalHost::new(
            "fenn",
            &LocalSettings {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                shell: "/bin/sh".into(),
            },
        )
    }

    fn run(h: &LocalHost, cmd: Cmd) -> Result<Output, TransportError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(h.run(&cmd, None))
    }

    #[test]
    fn runs_with_the_added_environment_and_stdin() {
        let h = host(&[("GT_HOST_ROOT", "/lab/hosts/fenn")]);
        let out = run(
            &h,
            Cmd::new("echo \"$GT_HOST_ROOT\"; cat; echo oops >&2; exit 3").stdin("piped\n"),
        )
        .unwrap();
        assert_eq!(out.code, 3);
        assert_eq!(out.stdout, "/lab/hosts/fenn\npiped\n");
        assert_eq!(out.stderr, "oops\n");
    }

    #[test]
    fn exit_255_with_empty_stdout_is_an_unreachable_host() {
        let e = run(
            &host(&[]),
            Cmd::new("echo 'lab: fenn is down' >&2; exit 255"),
        )
        .unwrap_err();
        assert_eq!(
            e,
            TransportError::Unreachable {
                host: "fenn".into(),
                reason: "lab: fenn is down".into()
            }
        );
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_deadline() {
        let e = run(
            &host(&[]),
            Cmd::new("sleep 30 & sleep 30; echo never").timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
        assert!(matches!(e, TransportError::CommandTimeout { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("`sleep` did not finish within 0.2 s"),
            "{e}"
        );
    }

    #[test]
    fn lines_are_streamed_as_they_come() {
        let h = host(&[]);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cmd = Cmd::new("echo one; echo two >&2; printf three");
        rt.block_on(h.run(&cmd, Some(&tx))).unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Ok(l) = rx.try_recv() {
            got.push((l.host, l.stream, l.line));
        }
        got.sort_by(|a, b| a.2.cmp(&b.2));
        use crate::transport::Stream::*;
        assert_eq!(
            got,
            vec![
                ("fenn".to_string(), Stdout, "one".to_string()),
                ("fenn".to_string(), Stdout, "three".to_string()),
                ("fenn".to_string(), Stderr, "two".to_string()),
            ]
        );
    }
}
