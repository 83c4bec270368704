//! The one way tests run a program and check what it did, in the style of
//! just's tests: `Test::new().args(["plan"]).config(path).run()` runs the gt
//! binary; the `Output` it returns asserts fluently:
//! `.status(2).stdout_contains("Plan:")`.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const GT: &str = env!("CARGO_BIN_EXE_gt");

/// How long a command may take before the harness kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository (its cluster.toml, examples, fixtures).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repo's own topology: goldentooth.
pub fn goldentooth() -> PathBuf {
    root().join("cluster.toml")
}

/// A recorded observation in tests/fixtures/facts/, by name.
pub fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures/facts")
        .join(format!("{name}.json"))
        .to_string_lossy()
        .into_owned()
}

/// A run of the gt binary being described. Without `current_dir` it runs in
/// the repository, so that a bare `gt plan` finds goldentooth's cluster.toml.
pub struct Test {
    command: Command,
    stdin: Option<String>,
    timeout: Duration,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test::program(GT).current_dir(root())
    }

    /// Another program, with the same assertions (ssh, a simulated tool's shell).
    pub fn program(program: impl AsRef<OsStr>) -> Test {
        let mut command = Command::new(program);
        // The caller's environment must not pick the config or the colors.
        command.env_remove("GT_CONFIG").env_remove("NO_COLOR");
        Test {
            command,
            stdin: None,
            timeout: COMMAND_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// `--config PATH`, given first as a user types it.
    pub fn config(self, path: impl AsRef<Path>) -> Self {
        self.arg("--config").arg(path.as_ref())
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the program with its output piped, for a test that reacts to
    /// what it prints while it runs.
    pub fn spawn(mut self) -> Child {
        assert!(self.stdin.is_none(), "spawn takes no stdin text");
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.command))
    }

    /// Runs to completion, or kills the program at the timeout.
    pub fn run(self) -> Output {
        self.run_watching(|_| {})
    }

    /// Runs, and returns with the output the most memory gt itself held
    /// (its `VmHWM`, read while it runs), in KiB: a bound on this one
    /// command, whatever else the test binary runs at the same time.
    pub fn run_peak_rss_kib(self) -> (Output, u64) {
        let mut peak = 0;
        let out = self.run_watching(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        });
        (out, peak)
    }

    fn run_watching(mut self, mut on_tick: impl FnMut(u32)) -> Output {
        let what = format!("{:?}", self.command);
        let started = Instant::now();
        let mut child = self
            .command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        if let Some(text) = self.stdin.take() {
            let mut pipe = child.stdin.take().unwrap();
            std::thread::spawn(move || pipe.write_all(text.as_bytes()));
        }
        let reader = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = reader(Box::new(child.stdout.take().unwrap()));
        let err = reader(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + self.timeout;
        let mut timed_out = false;
        let status = loop {
            on_tick(child.id());
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
        // Where a slow test spends its time: GT_TEST_TIMES=1 and --nocapture.
        if std::env::var_os("GT_TEST_TIMES").is_some() {
            eprintln!("[{:6.2}s] {what}", started.elapsed().as_secs_f64());
        }
        // A killed command's grandchildren may hold the pipes open: don't wait for them.
        let collect = |h: std::thread::JoinHandle<String>| {
            if timed_out {
                String::new()
            } else {
                h.join().unwrap()
            }
        };
        Output {
            what,
            code: status.code(),
            stdout: collect(out),
            stderr: collect(err),
            timed_out,
        }
    }

    /// Runs and asserts exit 0.
    #[track_caller]
    pub fn success(self) -> Output {
        self.run().success()
    }

    /// Runs and asserts the exit status.
    #[track_caller]
    pub fn status(self, code: i32) -> Output {
        self.run().status(code)
    }
}

/// What a finished (or killed) program left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub what: String,
    /// None when killed (timeout or signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// The assertions borrow and hand back a copy, so that both
/// `let out = cmd.success();` and `out.status(1); use(out)` read naturally.
impl Output {
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    pub fn success(&self) -> Self {
        assert!(self.succeeded(), "expected success: {self}");
        self.clone()
    }

    #[track_caller]
    pub fn status(&self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "unexpected exit status: {self}");
        self.clone()
    }

    #[track_caller]
    pub fn stdout_contains(&self, s: &str) -> Self {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}: {self}");
        self.clone()
    }

    #[track_caller]
    pub fn stdout_lacks(&self, s: &str) -> Self {
        assert!(!self.stdout.contains(s), "stdout has {s:?}: {self}");
        self.clone()
    }

    #[track_caller]
    pub fn stderr_contains(&self, s: &str) -> Self {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}: {self}");
        self.clone()
    }

    #[track_caller]
    pub fn stdout_is(&self, s: &str) -> Self {
        assert_eq!(self.stdout, s, "stdout: {self}");
        self.clone()
    }

    #[track_caller]
    pub fn stderr_is(&self, s: &str) -> Self {
        assert_eq!(self.stderr, s, "stderr: {self}");
        self.clone()
    }

    /// stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// stdout as one JSON document a line (`--json` event streams).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{self}"))
            })
            .collect()
    }
}

impl std::fmt::Display for Output {
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
