//! Every kubectl command line gt builds (`kube::examples::kubectl_examples`,
//! one per builder and variant) run through a real kubectl 1.32, exactly as a
//! control plane's shell runs it, against an API server that is not there:
//! kubectl parses its flags before it connects, so a connection error means
//! the line parsed and a flag error names a broken builder.

use crate::support::components::require_kubectl_1_32;
use gt::kube::examples::kubectl_examples;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A kubeconfig for a closed loopback port: every request is refused at once.
const CLOSED_KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: closed
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: not-a-real-token
contexts:
- name: closed
  context:
    cluster: closed
    user: admin
current-context: closed
";

/// What kubectl says when it tried to reach the API server: the flags parsed.
const CONNECTION_ERRORS: &[&str] = &[
    "connection refused",
    "was refused - did you specify the right host or port",
    "Unable to connect to the server",
    "dial tcp",
];

/// What kubectl says when the command line itself is wrong. Quoted and
/// colon-ended forms, as pflag and cobra word them: a bare "invalid argument"
/// is also what connect(2) says of an address it cannot use.
const FLAG_ERRORS: &[&str] = &[
    "unknown flag: ",
    "unknown shorthand flag: ",
    "invalid argument \"",
    "flag needs an argument: ",
    "unknown command \"",
    "Usage:",
    "--help' for usage",
    "flags cannot be placed before plugin name",
];

/// A host root whose admin kubeconfig points at the closed port, and a PATH
/// whose `kubectl` is the real one bounded by `--request-timeout=2s` (a
/// global flag, given before the line's own words so as not to change them).
struct ClosedCluster {
    dir: tempfile::TempDir,
}

impl ClosedCluster {
    fn new(kubectl: &str) -> ClosedCluster {
        let dir = tempfile::tempdir().unwrap();
        let kube = dir.path().join("root/etc/kubernetes");
        std::fs::create_dir_all(&kube).unwrap();
        std::fs::write(kube.join("admin.conf"), CLOSED_KUBECONFIG).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let shim = bin.join("kubectl");
        std::fs::write(
            &shim,
            format!("#!/bin/sh\nexec '{kubectl}' --request-timeout=2s \"$@\"\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        ClosedCluster { dir }
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).display().to_string()
    }

    /// Runs one line through `sh -c`, as gt's transports do, with the host
    /// root in `GT_HOST_ROOT`, `stdin` if any, and nothing of this environment
    /// (no proxy, no KUBECONFIG) leaking in.
    fn run(&self, command: &str, stdin: Option<&str>) -> (Option<i32>, String) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.path("bin")))
            .env("HOME", self.path("home"))
            .env("GT_HOST_ROOT", self.path("root"))
            .current_dir(self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(text.as_bytes()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// `None` when kubectl parsed the line and failed only to connect; else
    /// why the line is wrong.
    fn rejection(&self, command: &str, stdin: Option<&str>) -> Option<String> {
        let (code, said) = self.run(command, stdin);
        let flag_error = FLAG_ERRORS.iter().find(|m| said.contains(*m));
        let connected = CONNECTION_ERRORS.iter().any(|m| said.contains(m));
        match (flag_error, connected, code) {
            (None, true, Some(c)) if c != 0 => None,
            (Some(m), _, _) => Some(format!("kubectl's flag parser refused it ({m:?}):\n{said}")),
            (None, _, None) => Some(format!("kubectl did not finish in 60 s:\n{said}")),
            (None, _, Some(c)) => Some(format!(
                "kubectl (exit {c}) did not get as far as connecting to the API server:\n{said}"
            )),
        }
    }
}

#[test]
#[cfg_attr(
    not(any(has_kubectl, ci)),
    ignore = "needs a real kubectl 1.32: bash scripts/test.sh installs one, or set GT_TEST_KUBECTL"
)]
fn every_kubectl_line_gt_builds_passes_real_kubectls_flag_parser() {
    let kubectl = require_kubectl_1_32();
    let cluster = ClosedCluster::new(kubectl);
    let examples = kubectl_examples();
    let refused: Vec<String> = examples
        .iter()
        .filter_map(|e| {
            cluster
                .rejection(&e.command, e.stdin)
                .map(|why| format!("kube::{} ({}): {}\n  {why}", e.builder, e.case, e.command))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {} kubectl lines gt builds are refused by kubectl 1.32:\n\n{}",
        refused.len(),
        examples.len(),
        refused.join("\n\n")
    );
}

/// The check above can fail: lines kubectl refuses, each in one of the ways
/// a builder could go wrong, are told apart from a connection error.
#[test]
#[cfg_attr(
    not(any(has_kubectl, ci)),
    ignore = "needs a real kubectl 1.32: bash scripts/test.sh installs one, or set GT_TEST_KUBECTL"
)]
fn lines_kubectl_refuses_are_caught_and_named() {
    let cluster = ClosedCluster::new(require_kubectl_1_32());
    let admin = r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf""#;
    for (wrong, says) in [
        ("drain fenn --no-such-flag", "unknown flag"),
        ("drain fenn -Z", "unknown shorthand"),
        (
            "drain fenn --timeout 5124095576030431h0m15s",
            "invalid argument",
        ),
        ("drain fenn --timeout", "flag needs an argument"),
        (
            "get --raw /readyz --request-timeout=18446744073709551615s",
            "did not get as far",
        ),
        ("label node fenn --overwrite", "did not get as far"),
        ("lable node fenn a=b", "refused"),
    ] {
        let line = format!("{admin} {wrong}");
        let why = cluster.rejection(&line, None);
        assert!(
            why.as_deref().is_some_and(|w| w.contains(says)),
            "{line}: expected a rejection saying {says:?}, got {why:?}"
        );
    }
    assert_eq!(
        cluster.rejection(&format!("{admin} delete node fenn"), None),
        None,
        "a valid line against the closed port must count as parsed"
    );
}
