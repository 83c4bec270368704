//! A test harness around `gt lab`: bring a simulated cluster up, run
//! commands on its hosts the way a user (or gt) would, inject faults, and
//! take it down when the test ends, whatever happens.
//!
//! Include it in a test file with
//!
//! ```ignore
//! #[path = "support/lab.rs"]
//! mod lab_support;
//! use lab_support::{Lab, Transport};
//!
//! #[test]
//! fn fenn_answers_over_ssh() {
//!     let Some(lab) = Lab::up(Transport::Ssh).speed(0.001).start_or_skip() else { return };
//!     lab.run("fenn", "true").assert_ok();
//! }
//! ```
//!
//! Labs bind fixed addresses (127.4.0.11:6443, ...), so two labs of the same
//! topology cannot run at once: every `Lab` holds an exclusive lock
//! (`$TMPDIR/gt-lab-tests.lock`) from `start` until it is dropped, which
//! serialises lab tests across threads and test binaries alike.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const GT: &str = env!("CARGO_BIN_EXE_gt");
pub const SSHD: &str = "/usr/sbin/sshd";

/// The repo's own topology: goldentooth.
pub fn goldentooth() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml")
}

/// How long a command on a simulated host may take before the harness kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub use gt_lab::Transport;

/// True (after saying so loudly) when sshd is not installed: ssh tests skip
/// then, and only then.
pub fn sshd_missing() -> bool {
    if Path::new(SSHD).exists() {
        return false;
    }
    eprintln!(
        "\n*** SKIPPED: {SSHD} is not installed; this test needs a real sshd \
         (apt-get install openssh-server). It did NOT pass. ***\n"
    );
    true
}

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct Run {
    pub what: String,
    /// None when killed (timeout or signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "expected success: {self}");
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit status: {self}");
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, s: &str) -> &Self {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}: {self}");
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, s: &str) -> &Self {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}: {self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `cmd` to completion or until `timeout`, then kills it.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Run {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        what,
        code: status.code(),
        // A killed command's grandchildren may hold the pipes open: don't wait for them.
        stdout: if timed_out {
            String::new()
        } else {
            out.join().unwrap()
        },
        stderr: if timed_out {
            String::new()
        } else {
            err.join().unwrap()
        },
        timed_out,
    }
}

/// Runs the gt binary with `args`.
pub fn gt(args: &[&str]) -> Run {
    run_with_timeout(Command::new(GT).args(args), COMMAND_TIMEOUT)
}

/// The inter-process lock every lab holds (see the module doc).
#[derive(Debug)]
pub struct LabLock(File);

impl LabLock {
    pub fn acquire() -> LabLock {
        let path = std::env::temp_dir().join("gt-lab-tests.lock");
        let f = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: flock on an fd we own; released when the file is closed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        LabLock(f)
    }
}

/// A `gt lab up` that failed, and what it left behind (it should leave nothing).
#[derive(Debug)]
pub struct FailedStart {
    pub run: Run,
    pub dir_left: bool,
    /// Processes whose command line names the lab dir.
    pub processes_left: Vec<String>,
    /// The lab lock, still held: release it (drop) after undoing what the test
    /// prepared, so that no other lab meets it.
    pub lock: LabLock,
}

pub struct LabBuilder {
    transport: Transport,
    speed: f64,
    topology: Option<PathBuf>,
    topology_toml: Option<String>,
    lock: Option<LabLock>,
}

/// A lab that is up. Dropping it runs `gt lab down`.
pub struct Lab {
    transport: Transport,
    dir: PathBuf,
    down: bool,
    topology: serde_json::Value,
    ssh_port: Option<u16>,
    // Fields drop in order: the temp dir and the lock outlive `Drop::drop`'s `gt lab down`.
    _tmp: tempfile::TempDir,
    _lock: LabLock,
}

impl Lab {
    /// Starts describing a lab of goldentooth; finish with `start` or `start_or_skip`.
    pub fn up(transport: Transport) -> LabBuilder {
        LabBuilder {
            transport,
            speed: 0.01,
            topology: None,
            topology_toml: None,
            lock: None,
        }
    }
}

impl LabBuilder {
    /// Latency multiplier (default 0.01 in tests).
    pub fn speed(mut self, f: f64) -> Self {
        self.speed = f;
        self
    }

    /// Another topology file instead of goldentooth.
    pub fn topology(mut self, path: impl Into<PathBuf>) -> Self {
        self.topology = Some(path.into());
        self
    }

    /// A topology given as TOML text.
    pub fn topology_toml(mut self, toml: impl Into<String>) -> Self {
        self.topology_toml = Some(toml.into());
        self
    }

    /// Use a lock the test already holds (to prepare the machine before `up`).
    pub fn holding(mut self, lock: LabLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// `None` (after a loud message) for an ssh lab when sshd is not installed.
    pub fn start_or_skip(self) -> Option<Lab> {
        if self.transport == Transport::Ssh && sshd_missing() {
            return None;
        }
        Some(self.start())
    }

    /// Brings the lab up; panics with gt's output if it cannot.
    #[track_caller]
    pub fn start(self) -> Lab {
        match self.try_start() {
            Ok(lab) => lab,
            Err(f) => panic!("gt lab up failed: {}", f.run),
        }
    }

    /// Brings the lab up, or says how `gt lab up` failed and what it left.
    pub fn try_start(self) -> Result<Lab, FailedStart> {
        let lock = self.lock.unwrap_or_else(LabLock::acquire);
        let tmp = tempfile::Builder::new()
            .prefix("gt-lab-test-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().join("lab");
        let topology = match (self.topology_toml, self.topology) {
            (Some(text), _) => {
                let p = tmp.path().join("topology.toml");
                std::fs::write(&p, text).expect("write topology");
                p
            }
            (None, Some(p)) => p,
            (None, None) => goldentooth(),
        };
        let speed = self.speed.to_string();
        let run = gt(&[
            "lab",
            "up",
            "--dir",
            dir.to_str().unwrap(),
            "--from",
            topology.to_str().unwrap(),
            "--transport",
            self.transport.as_str(),
            "--speed",
            &speed,
        ]);
        if !run.success() {
            return Err(FailedStart {
                dir_left: dir.exists(),
                processes_left: processes_naming(&dir),
                run,
                lock,
            });
        }
        let dir = dir.canonicalize().expect("lab dir");
        let topology: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("lab-state.json")).unwrap())
                .unwrap();
        let ssh_port = state["ssh"]["port"].as_u64().map(|p| p as u16);
        Ok(Lab {
            transport: self.transport,
            dir,
            down: false,
            topology,
            ssh_port,
            _tmp: tmp,
            _lock: lock,
        })
    }
}

impl Lab {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The lab's own cluster.toml.
    pub fn config(&self) -> PathBuf {
        self.dir.join("cluster.toml")
    }

    /// lab.json as JSON.
    pub fn topology(&self) -> &serde_json::Value {
        &self.topology
    }

    pub fn node_names(&self) -> Vec<String> {
        self.topology["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// A node's loopback address, e.g. `127.4.0.15`.
    #[track_caller]
    pub fn address(&self, node: &str) -> String {
        self.topology["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .unwrap_or_else(|| panic!("no node {node} in the lab"))["address"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn endpoint(&self) -> String {
        self.topology["endpoint"].as_str().unwrap().to_string()
    }

    pub fn host_root(&self, node: &str) -> PathBuf {
        self.dir.join("hosts").join(node)
    }

    pub fn ssh_port(&self) -> Option<u16> {
        self.ssh_port
    }

    /// Runs `cmd` on `node` through the lab's transport.
    pub fn run(&self, node: &str, cmd: &str) -> Run {
        self.run_timeout(node, cmd, COMMAND_TIMEOUT)
    }

    pub fn run_timeout(&self, node: &str, cmd: &str, timeout: Duration) -> Run {
        match self.transport {
            Transport::Local => self.local_timeout(node, cmd, timeout),
            Transport::Ssh => self.ssh_timeout(node, cmd, timeout),
        }
    }

    /// The `ssh` command line a user would type to reach `address` in this lab.
    pub fn ssh_command(&self, address: &str) -> Command {
        let port = self.ssh_port.expect("an ssh lab");
        let ssh = self.dir.join("ssh");
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(ssh.join("id_ed25519"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                ssh.join("known_hosts").display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=5"])
            .args(["-o", "LogLevel=ERROR"])
            .arg(format!("{}@{address}", whoami()));
        c
    }

    /// Runs `cmd` on `node` with plain `ssh`, as a user would.
    pub fn ssh(&self, node: &str, cmd: &str) -> Run {
        self.ssh_timeout(node, cmd, COMMAND_TIMEOUT)
    }

    pub fn ssh_timeout(&self, node: &str, cmd: &str, timeout: Duration) -> Run {
        run_with_timeout(self.ssh_command(&self.address(node)).arg(cmd), timeout)
    }

    /// Runs `cmd` on `node` as gt's local transport does: the lab shell, the host's env.
    pub fn local(&self, node: &str, cmd: &str) -> Run {
        self.local_timeout(node, cmd, COMMAND_TIMEOUT)
    }

    pub fn local_timeout(&self, node: &str, cmd: &str, timeout: Duration) -> Run {
        run_with_timeout(
            Command::new(self.dir.join("bin").join("gt-lab-sh"))
                .arg("-c")
                .arg(cmd)
                .env("GT_HOST_ROOT", self.host_root(node))
                .env(
                    "PATH",
                    format!("{}/bin:/usr/local/bin:/usr/bin:/bin", self.dir.display()),
                ),
            timeout,
        )
    }

    /// `gt --config DIR/cluster.toml ARGS...`
    pub fn gt(&self, args: &[&str]) -> Run {
        let config = self.config();
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        gt(&all)
    }

    /// `gt lab SUBCOMMAND --dir DIR ARGS...`
    pub fn gt_lab(&self, subcommand: &str, args: &[&str]) -> Run {
        let mut all = vec!["lab", subcommand, "--dir", self.dir_str()];
        all.extend_from_slice(args);
        gt(&all)
    }

    /// `gt lab fault NODE KIND...`, which must succeed.
    #[track_caller]
    pub fn fault(&self, node: &str, kind: &[&str]) -> Run {
        let mut args = vec![node];
        args.extend_from_slice(kind);
        let r = self.gt_lab("fault", &args);
        r.assert_ok();
        r
    }

    /// The node's fault file, as JSON (`{}` when it has none).
    pub fn faults(&self, node: &str) -> serde_json::Value {
        std::fs::read_to_string(self.dir.join("faults").join(format!("{node}.json")))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }

    /// Every simulated command the node ran (`logs/NODE.log`, one JSON object a line).
    pub fn log(&self, node: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("logs").join(format!("{node}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Live processes whose command line names the lab dir (`pgrep -af DIR`).
    pub fn processes(&self) -> Vec<String> {
        processes_naming(&self.dir)
    }

    /// `gt lab down`, once; the lab is not taken down again on drop.
    pub fn down(mut self) -> Run {
        self.down = true;
        self.gt_lab("down", &[])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let r = self.gt_lab("down", &[]);
            if !r.success() {
                eprintln!("gt lab down failed while dropping the lab: {r}");
            }
        }
    }
}

/// `pgrep -af PATTERN`, without the pgrep itself.
pub fn processes_naming(dir: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .arg("-af")
        .arg(dir)
        .output()
        .expect("pgrep (procps) is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn whoami() -> String {
    // SAFETY: getpwuid's result is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null(), "no passwd entry for the current user");
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Pids recorded in `DIR/pids/`, read before `down` removes them.
pub fn recorded_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir.join("pids"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Running and not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let i = s.rfind(')')?;
            s[i + 1..].split_whitespace().next().map(|st| st != "Z")
        })
        .unwrap_or(false)
}
