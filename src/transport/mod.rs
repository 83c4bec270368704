//! How gt reaches hosts: a small `Host` trait with SSH, local and fake
//! implementations.
//!
//! A `Host` runs shell strings: over one multiplexed SSH master connection
//! (`ssh`), as local processes (`local`), or from a script (`fake`, for unit
//! tests). `Hosts` connects lazily, once per host per run, so that observe,
//! exec and apply all reuse the same connection; `Hosts::close` ends them.

mod connection;
mod control_dir;
pub mod dial;
mod error;
pub mod fake;
mod jump_gate;
mod local;
mod pipe;
mod relay;
mod ssh;
mod ssh_config;

pub use connection::{
    Connection, KnownHostsPolicy, LocalSettings, SettingNames, SshSettings, Target,
};
pub use control_dir::remove_control_dirs;
pub use error::{classify_ssh_failure, TransportError};
pub use local::LocalHost;

/// For a gt about to exit at once (a signal): ends the local commands still
/// running and removes the control directories, which no destructor would.
/// SSH masters need nothing: they die with gt (PR_SET_PDEATHSIG), and the
/// commands running over them with the connection.
pub fn abandon() {
    local::stop_local_commands();
    remove_control_dirs();
}
pub use ssh::{master_args, SshHost};

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OnceCell};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One command: a shell string, optional stdin, a deadline.
#[derive(Debug, Clone)]
pub struct Cmd {
    /// Run by the remote user's shell (ssh) or by `SHELL -c` (local).
    pub script: String,
    pub stdin: Option<Vec<u8>>,
    /// After this the command is abandoned and its processes killed.
    pub timeout: Duration,
    /// What messages call it, when its first word would not say (a script).
    pub label: Option<String>,
    /// At most this many bytes are read of its stdout, and as many of its
    /// stderr; past that the command is stopped and the run is an error.
    pub max_output: usize,
    /// Its stdin stays open (after `stdin`'s bytes, if any) until the
    /// command ends or gt lets go of it: a remote script can read its end
    /// as gt's going away.
    pub hold_stdin: bool,
}

impl Cmd {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    /// Far more than gt's commands print (the probe prints a few KiB;
    /// `kubectl get nodes -o json` some 10 to 30 KiB a Node, so this holds
    /// hundreds of Nodes), and a bound on what a host that prints without
    /// end makes gt hold (a few times this, while it is parsed).
    pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;

    pub fn new(script: impl Into<String>) -> Cmd {
        Cmd {
            script: script.into(),
            stdin: None,
            timeout: Cmd::DEFAULT_TIMEOUT,
            label: None,
            max_output: Cmd::DEFAULT_MAX_OUTPUT,
            hold_stdin: false,
        }
    }

    /// Keeps its stdin open until it ends or gt lets go of the run (see
    /// `hold_stdin`).
    pub fn hold_stdin(mut self) -> Cmd {
        self.hold_stdin = true;
        self.stdin.get_or_insert_with(Vec::new);
        self
    }

    /// Bounds what is read of each of its outputs (see `max_output`).
    pub fn max_output(mut self, bytes: usize) -> Cmd {
        self.max_output = bytes;
        self
    }

    /// Names the command in messages (`gt probe` rather than a script's first word).
    pub fn label(mut self, label: impl Into<String>) -> Cmd {
        self.label = Some(label.into());
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The command's name in messages: its label, else the program the
    /// script starts with (`kubeadm`).
    pub fn program(&self) -> &str {
        match &self.label {
            Some(l) => l,
            None => self.script.split_whitespace().next().unwrap_or(""),
        }
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit status; 128 + N when killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Turns the failures that say something about the host rather than the
    /// command into errors: a missing program (exit 127).
    pub fn check_installed(self, host: &str, cmd: &Cmd) -> Result<Output, TransportError> {
        if self.code == 127 {
            return Err(TransportError::CommandNotFound {
                host: host.to_string(),
                command: missing_program(&self.stderr).unwrap_or_else(|| cmd.program().to_string()),
                stderr: self.stderr.trim().to_string(),
            });
        }
        Ok(self)
    }
}

/// The name a shell reports as missing: dash says `sh: 1: kubeadm: not found`,
/// bash `bash: line 1: kubeadm: command not found`.
fn missing_program(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        let head = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(": not found"))?;
        Some(head.rsplit(": ").next()?.trim().to_string())
    })
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A line of a running command's output, sent as it arrives (`gt exec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub host: String,
    pub stream: Stream,
    /// Without its newline.
    pub line: String,
}

pub type LineSink = mpsc::UnboundedSender<OutputLine>;

/// A host gt can run commands on.
pub trait Host: Send + Sync {
    /// The node name (for messages and output prefixes).
    fn name(&self) -> &str;

    /// Runs one command to completion or to its deadline. Each complete line
    /// of output also goes to `lines` as it arrives, when given. A non-zero
    /// exit is an `Output`, not an error; errors are about reaching the host.
    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>>;

    /// Ends the connection (idempotent). Commands after this fail.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// Puts `fresh` in place of this host's connection and returns the old
    /// one, for hosts that can (those `Hosts` hands out); `None` otherwise.
    fn swap(&self, fresh: Arc<dyn Host>) -> Option<Arc<dyn Host>> {
        drop(fresh);
        None
    }
}

/// A connected host whose connection can be replaced under the holders of
/// it (after a reboot), so that a handle taken before stays good.
struct Swappable {
    name: String,
    inner: std::sync::RwLock<Arc<dyn Host>>,
}

impl Swappable {
    fn new(inner: Arc<dyn Host>) -> Swappable {
        Swappable {
            name: inner.name().to_string(),
            inner: std::sync::RwLock::new(inner),
        }
    }

    fn current(&self) -> Arc<dyn Host> {
        self.inner.read().expect("not poisoned").clone()
    }
}

impl Host for Swappable {
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        let inner = self.current();
        Box::pin(async move { inner.run(cmd, lines).await })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let inner = self.current();
        Box::pin(async move { inner.close().await })
    }

    fn swap(&self, fresh: Arc<dyn Host>) -> Option<Arc<dyn Host>> {
        Some(std::mem::replace(
            &mut *self.inner.write().expect("not poisoned"),
            fresh,
        ))
    }
}

/// Settings of one run's connections.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Where SSH control sockets go; a fresh temporary directory when `None`.
    /// Unix socket paths are short (108 bytes): keep it short.
    pub control_dir: Option<PathBuf>,
    /// How the configuration names the settings a connection error tells
    /// the user to check.
    pub setting_names: &'static SettingNames,
}

/// A host's connection for the run, or why there is none.
pub type Connected = Result<Arc<dyn Host>, TransportError>;

type Connector =
    dyn Fn(&Target) -> BoxFuture<'static, Result<Arc<dyn Host>, TransportError>> + Send + Sync;

/// The hosts of one run, each connected at most once (lazily, on first use)
/// and kept until `close`: observe, exec and apply share connections.
///
/// An SSH master that gt does not relay dies with the thread that started
/// it (PR_SET_PDEATHSIG; a relayed one with gt's process): connect from
/// `block_on` or runtime worker threads, which live as long as the run,
/// never from `spawn_blocking`.
pub struct Hosts {
    targets: BTreeMap<String, Target>,
    slots: BTreeMap<String, OnceCell<Connected>>,
    connector: Box<Connector>,
    setting_names: &'static SettingNames,
    // Holds the control sockets' directory until the run ends.
    _control_dir: Option<control_dir::ControlDir>,
}

impl Hosts {
    /// Real connections: SSH or local processes, per each target's `connection`.
    pub fn new(
        targets: impl IntoIterator<Item = impl Into<Target>>,
        opts: &TransportOptions,
    ) -> Result<Hosts, TransportError> {
        let no_dir = |e: std::io::Error| TransportError::Local {
            what: "create a directory for SSH control sockets".into(),
            reason: e.to_string(),
        };
        let (dir, temp) = match &opts.control_dir {
            Some(d) => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d)
                    .map_err(no_dir)?;
                (d.clone(), None)
            }
            None => {
                let t = control_dir::ControlDir::new().map_err(no_dir)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let connector =
            move |t: &Target| -> BoxFuture<'static, Result<Arc<dyn Host>, TransportError>> {
                let t = t.clone();
                let slot = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let stem = dir.join(slot.to_string());
                Box::pin(async move {
                    match &t.connection {
                        Connection::Ssh(s) => {
                            let host = SshHost::connect(&t.name, s, &stem).await?;
                            Ok(Arc::new(host) as Arc<dyn Host>)
                        }
                        Connection::Local(l) => {
                            Ok(Arc::new(LocalHost::new(&t.name, l)) as Arc<dyn Host>)
                        }
                    }
                })
            };
        let mut hosts = Hosts::with_connector(targets, connector);
        hosts._control_dir = temp;
        hosts.setting_names = opts.setting_names;
        Ok(hosts)
    }

    /// Hosts made by `connect` (fakes in unit tests).
    pub fn with_connector(
        targets: impl IntoIterator<Item = impl Into<Target>>,
        connect: impl Fn(&Target) -> BoxFuture<'static, Result<Arc<dyn Host>, TransportError>>
            + Send
            + Sync
            + 'static,
    ) -> Hosts {
        let targets: BTreeMap<String, Target> = targets
            .into_iter()
            .map(|t| {
                let t = t.into();
                (t.name.clone(), t)
            })
            .collect();
        let slots = targets
            .keys()
            .map(|k| (k.clone(), OnceCell::new()))
            .collect();
        Hosts {
            targets,
            slots,
            connector: Box::new(connect),
            setting_names: Default::default(),
            _control_dir: None,
        }
    }

    /// The connected host, connecting on first use. A failed connection is
    /// remembered for the run: an unreachable host is not retried by every step.
    pub async fn get(&self, name: &str) -> Result<Arc<dyn Host>, TransportError> {
        let (Some(target), Some(slot)) = (self.targets.get(name), self.slots.get(name)) else {
            return Err(TransportError::UnknownHost {
                host: name.to_string(),
                names: self.setting_names,
            });
        };
        slot.get_or_init(|| async {
            (self.connector)(target)
                .await
                .map(|h| Arc::new(Swappable::new(h)) as Arc<dyn Host>)
                .map_err(|e| e.named_as(self.setting_names))
        })
        .await
        .clone()
    }

    /// Connects again to a host whose connection died with it (a reboot):
    /// everyone holding the host (the apply lock too) uses the new
    /// connection from then on; the old one is closed.
    pub async fn reconnect(&self, name: &str) -> Result<Arc<dyn Host>, TransportError> {
        let (Some(target), Some(slot)) = (self.targets.get(name), self.slots.get(name)) else {
            return Err(TransportError::UnknownHost {
                host: name.to_string(),
                names: self.setting_names,
            });
        };
        let fresh = (self.connector)(target)
            .await
            .map_err(|e| e.named_as(self.setting_names))?;
        match slot.get() {
            Some(Ok(held)) => {
                let held = held.clone();
                if let Some(old) = held.swap(fresh) {
                    old.close().await;
                }
                Ok(held)
            }
            // Never connected (or failed to): the fresh one stands for the run.
            _ => {
                let wrapped: Arc<dyn Host> = Arc::new(Swappable::new(fresh));
                let _ = slot.set(Ok(wrapped.clone()));
                self.get(name).await
            }
        }
    }

    /// Closes one host's connection (if it was opened); later `get`s fail.
    pub async fn close_host(&self, name: &str) {
        if let Some(Some(Ok(h))) = self.slots.get(name).map(|s| s.get()) {
            h.close().await;
        }
    }

    /// Closes every open connection, concurrently.
    pub async fn close(&self) {
        let mut closing = tokio::task::JoinSet::new();
        for host in self
            .slots
            .values()
            .filter_map(|s| s.get().and_then(|r| r.as_ref().ok()).cloned())
        {
            closing.spawn(async move { host.close().await });
        }
        closing.join_all().await;
    }
}

/// Runs `f` on every item (a host, usually), at most `parallelism` at once
/// (at least one), and returns the results in the items' order: the one
/// bounded fan-out of observe and exec.
pub async fn run_each<I, F, Fut>(items: I, parallelism: usize, mut f: F) -> Vec<Fut::Output>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    let permits = tokio::sync::Semaphore::new(parallelism.max(1));
    let permits = &permits;
    futures_util::future::join_all(items.into_iter().map(|item| {
        let run = f(item);
        async move {
            let _permit = permits.acquire().await.expect("never closed");
            run.await
        }
    }))
    .await
}

/// Quotes one word for a POSIX shell (shlex). Words made only of
/// characters no shell treats specially stay as they are, `=` and `,`
/// included, so that command lines (`key=value`, `--flag=a,b`) stay readable.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%^".contains(&b));
    if plain {
        return word.to_string();
    }
    shlex::Quoter::new()
        .allow_nul(true)
        .quote(word)
        .expect("with NUL allowed, quoting cannot fail")
        .into_owned()
}

/// Joins words into one shell command line, each quoted.
pub fn shell_join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seconds with one decimal, for messages: `5.0 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_words_are_left_alone() {
        assert_eq!(
            shell_join(&["systemctl", "status", "kubelet"]),
            "systemctl status kubelet"
        );
        assert_eq!(
            shell_quote("/etc/kubernetes/admin.conf"),
            "/etc/kubernetes/admin.conf"
        );
    }

    #[test]
    fn quoting_survives_spaces_quotes_and_expansions() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r#""it's""#);
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '%s|' {}",
                shell_join(&["it's", "a b", "$HOME", "`x`", ""])
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's|a b|$HOME|`x`||");
    }

    #[test]
    fn missing_program_is_read_from_dash_and_bash_messages() {
        assert_eq!(
            missing_program("sh: 1: kubeadm: not found\n").as_deref(),
            Some("kubeadm")
        );
        assert_eq!(
            missing_program("bash: line 1: kubectl: command not found\n").as_deref(),
            Some("kubectl")
        );
        assert_eq!(missing_program("something else"), None);
    }

    fn local(name: &str) -> Target {
        Target {
            name: name.to_string(),
            connection: Connection::Local(LocalSettings {
                env: BTreeMap::new(),
                shell: "/bin/sh".into(),
            }),
        }
    }

    #[test]
    fn a_host_is_connected_once_per_run_and_a_failure_is_remembered() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let n = local("fenn");
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        let hosts = Hosts::with_connector([n], move |t| -> BoxFuture<'static, Connected> {
            counted.fetch_add(1, Ordering::SeqCst);
            let host = t.name.clone();
            Box::pin(async move {
                Err(TransportError::Unreachable {
                    host,
                    reason: "no route to host".into(),
                })
            })
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, b) = tokio::join!(hosts.get("fenn"), hosts.get("fenn"));
            assert!(a.is_err() && b.is_err());
            assert!(hosts.get("fenn").await.is_err());
            assert!(matches!(
                hosts.get("nobody").await,
                Err(TransportError::UnknownHost { .. })
            ));
        });
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_reconnected_host_serves_those_who_held_it_before() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let made: Arc<std::sync::Mutex<Vec<Arc<fake::FakeHost>>>> = Default::default();
        let keep = made.clone();
        let hosts =
            Hosts::with_connector([local("fenn")], move |t| -> BoxFuture<'static, Connected> {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let host = Arc::new(
                    fake::FakeHost::new(&t.name).on("boot", fake::Reply::ok(format!("boot {n}\n"))),
                );
                keep.lock().unwrap().push(host.clone());
                Box::pin(async move { Ok(host as Arc<dyn Host>) })
            });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let held = hosts.get("fenn").await.unwrap();
            let boot = Cmd::new("boot");
            assert_eq!(held.run(&boot, None).await.unwrap().stdout, "boot 0\n");
            hosts.reconnect("fenn").await.unwrap();
            // The handle taken before the reboot now reaches the new connection.
            assert_eq!(held.run(&boot, None).await.unwrap().stdout, "boot 1\n");
            assert_eq!(
                hosts
                    .get("fenn")
                    .await
                    .unwrap()
                    .run(&boot, None)
                    .await
                    .unwrap()
                    .stdout,
                "boot 1\n"
            );
        });
        let made = made.lock().unwrap();
        assert!(made[0].is_closed(), "the dead connection is closed");
        assert!(!made[1].is_closed());
    }

    #[test]
    fn connection_errors_name_the_settings_as_the_hosts_were_told() {
        const NAMED: SettingNames = SettingNames {
            port: "port = 22 in hosts.ini",
            ..SettingNames::GENERIC
        };
        let mut hosts =
            Hosts::with_connector([local("fenn")], |t| -> BoxFuture<'static, Connected> {
                let host = t.name.clone();
                Box::pin(async move {
                    Err(TransportError::ConnectionRefused {
                        host,
                        address: "10.4.0.15:22".into(),
                        after: "0.1 s".into(),
                        names: Default::default(),
                    })
                })
            });
        hosts.setting_names = &NAMED;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(hosts.get("fenn")).err().expect("refused");
        assert!(
            e.to_string()
                .ends_with("on the host and port = 22 in hosts.ini)"),
            "{e}"
        );
        let e = rt.block_on(hosts.get("nobody")).err().expect("unknown");
        assert_eq!(e.to_string(), "nobody is not one of the hosts gt was given");
    }

    #[test]
    fn run_each_keeps_the_order_and_never_exceeds_the_parallelism() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let out = rt.block_on(run_each(0..10u64, 3, |i| {
            let (running, most) = (&running, &most);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Later items finish first: the order comes from the input.
                tokio::time::sleep(Duration::from_millis(10 - i)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        }));
        assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn exit_127_means_not_installed() {
        let cmd = Cmd::new("kubeadm version -o short");
        let out = Output {
            code: 127,
            stdout: String::new(),
            stderr: "sh: 1: kubeadm: not found\n".into(),
        };
        let err = out.check_installed("fenn", &cmd).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kubeadm is not installed on fenn"),
            "{err}"
        );
    }
}
