//! A hand-built lab directory for driving the simulated tools as processes:
//! `SimLab::goldentooth().on("fenn").run("kubeadm join ...").succeeds().stdout_contains(..)`.
#![allow(dead_code)]

use gt_lab::sim::log::LogEntry;
use gt_lab::topology::{Faults, LabNode, LabTopology};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const ENDPOINT: &str = "127.4.0.10:6443";
/// Latencies at a thousandth: init 60 ms, discovery timeout 300 ms.
pub const SPEED: f64 = 0.001;

pub const CONTROL_PLANES: &[&str] = &["bettley", "cargyll", "dalt"];
pub const WORKERS: &[&str] = &[
    "erenford",
    "fenn",
    "gardener",
    "harlton",
    "inchfield",
    "jast",
    "karstark",
    "lipps",
    "velaryon",
];

pub struct SimLab {
    dir: tempfile::TempDir,
}

impl SimLab {
    /// goldentooth on loopback: bettley/cargyll/dalt control planes
    /// (127.4.0.11-13), eight arm64 workers (127.4.0.14-21), velaryon amd64 (127.4.1.10).
    pub fn goldentooth() -> SimLab {
        let mut nodes = Vec::new();
        for (i, n) in CONTROL_PLANES.iter().chain(WORKERS).enumerate() {
            let (address, arch) = if *n == "velaryon" {
                ("127.4.1.10".to_string(), "amd64")
            } else {
                (format!("127.4.0.{}", 11 + i), "arm64")
            };
            nodes.push(LabNode {
                name: n.to_string(),
                address,
                role: if CONTROL_PLANES.contains(n) {
                    "control-plane"
                } else {
                    "worker"
                }
                .into(),
                arch: arch.into(),
                kubernetes_version: "v1.32.4".into(),
            });
        }
        SimLab::with_topology(LabTopology {
            cluster_name: "goldentooth".into(),
            endpoint: ENDPOINT.into(),
            transport: "local".into(),
            speed: SPEED,
            api_listeners: false,
            nodes,
        })
    }

    pub fn with_topology(topology: LabTopology) -> SimLab {
        let dir = tempfile::tempdir().expect("tempdir");
        topology.save(dir.path()).expect("write lab.json");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in gt_lab::sim::TOOLS {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gt"), bin.join(tool)).unwrap();
        }
        for n in &topology.nodes {
            std::fs::create_dir_all(dir.path().join("hosts").join(&n.name)).unwrap();
        }
        SimLab { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self, node: &str) -> PathBuf {
        self.dir().join("hosts").join(node)
    }

    /// A file on a host, by its host path (`/etc/kubernetes/kubelet.conf`).
    pub fn host_file(&self, node: &str, path: &str) -> PathBuf {
        self.root(node).join(path.trim_start_matches('/'))
    }

    pub fn on(&self, node: &str) -> OnHost<'_> {
        OnHost {
            lab: self,
            node: node.to_string(),
            env: Vec::new(),
            stdin: None,
        }
    }

    pub fn set_fault(&self, node: &str, f: impl FnOnce(&mut Faults)) {
        let mut faults = Faults::load(self.dir(), node);
        f(&mut faults);
        faults.save(self.dir(), node).unwrap();
    }

    pub fn faults(&self, node: &str) -> Faults {
        Faults::load(self.dir(), node)
    }

    pub fn log(&self, node: &str) -> Vec<LogEntry> {
        gt_lab::sim::log::read(self.dir(), node)
    }

    /// `kubectl get nodes -o json` through bettley's admin.conf, parsed.
    pub fn nodes_json(&self) -> serde_json::Value {
        let out = self
            .on("bettley")
            .run("kubectl --kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf get nodes -o json")
            .succeeds();
        serde_json::from_str(out.stdout()).expect("kubectl printed JSON")
    }

    /// The node object named `name` from `nodes_json`.
    pub fn node_json(&self, name: &str) -> serde_json::Value {
        self.nodes_json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"))
            .clone()
    }

    /// Polls `cond` (at most ~10 s); the simulated delays are milliseconds at test speed.
    pub fn eventually(&self, what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("never happened: {what}");
    }

    /// `kubeadm init` with goldentooth's flags on bettley, then waits for its API server.
    pub fn init(&self) -> Outcome {
        let out = self
            .on("bettley")
            .run(&format!(
                "kubeadm init --control-plane-endpoint={ENDPOINT} --kubernetes-version=stable-1.32 \
                 --service-cidr=172.16.0.0/20 --pod-network-cidr=192.168.0.0/16 --upload-certs"
            ))
            .succeeds();
        self.wait_api_ready();
        out
    }

    pub fn wait_api_ready(&self) {
        self.eventually("the API server is ready through the endpoint", || {
            self.on("bettley")
                .run("kubectl --kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf get --raw /readyz")
                .status
                == Some(0)
        });
    }

    /// A worker join command line from a fresh token.
    pub fn join_command(&self) -> String {
        self.on("bettley")
            .run("kubeadm token create --ttl 15m --print-join-command")
            .succeeds()
            .stdout()
            .trim_end()
            .to_string()
    }

    /// A control-plane join command line with a freshly uploaded certificate key.
    pub fn control_plane_join_command(&self) -> String {
        let up = self
            .on("bettley")
            .run("kubeadm init phase upload-certs --upload-certs")
            .succeeds();
        let key = up.stdout().lines().nth(2).unwrap().to_string();
        self.on("bettley")
            .run(&format!(
                "kubeadm token create --print-join-command --certificate-key {key}"
            ))
            .succeeds()
            .stdout()
            .trim_end()
            .to_string()
    }

    pub fn apply_cni(&self) {
        self.on("bettley")
            .run("kubectl --kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf apply -f https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml")
            .succeeds();
    }

    /// The Node's Ready condition, as `kubectl get nodes -o json` shows it.
    pub fn ready_condition(&self, name: &str) -> serde_json::Value {
        self.node_json(name)["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone()
    }

    pub fn ready_status(&self, name: &str) -> String {
        self.ready_condition(name)["status"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

pub struct OnHost<'a> {
    lab: &'a SimLab,
    node: String,
    env: Vec<(String, String)>,
    stdin: Option<String>,
}

impl OnHost<'_> {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn stdin(mut self, s: &str) -> Self {
        self.stdin = Some(s.into());
        self
    }

    /// Runs `cmd` through `sh -c` as the lab runs a host's commands.
    pub fn run(self, cmd: &str) -> Outcome {
        let path = format!(
            "{}:{}",
            self.lab.dir().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .env("GT_HOST_ROOT", self.lab.root(&self.node))
            .env("PATH", path)
            .env_remove("GT_LAB_SPEED")
            .env_remove("GT_LAB_NOW_OFFSET")
            .env_remove("KUBECONFIG")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn sh");
        if let Some(input) = &self.stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().expect("wait");
        Outcome {
            cmd: format!("[{}] {cmd}", self.node),
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub cmd: String,
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn show(&self) -> String {
        format!(
            "{}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }

    pub fn succeeds(self) -> Self {
        assert_eq!(self.status, Some(0), "expected success:\n{}", self.show());
        self
    }

    pub fn fails(self) -> Self {
        assert!(
            self.status.is_some_and(|s| s != 0),
            "expected failure:\n{}",
            self.show()
        );
        self
    }

    pub fn exit(self, code: i32) -> Self {
        assert_eq!(self.status, Some(code), "exit status:\n{}", self.show());
        self
    }

    pub fn stdout_contains(self, s: &str) -> Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}:\n{}",
            self.show()
        );
        self
    }

    pub fn stdout_lacks(self, s: &str) -> Self {
        assert!(
            !self.stdout.contains(s),
            "stdout has {s:?}:\n{}",
            self.show()
        );
        self
    }

    pub fn stderr_contains(self, s: &str) -> Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}:\n{}",
            self.show()
        );
        self
    }

    pub fn stdout_is(self, s: &str) -> Self {
        assert_eq!(self.stdout, s, "stdout:\n{}", self.show());
        self
    }

    pub fn stderr_is(self, s: &str) -> Self {
        assert_eq!(self.stderr, s, "stderr:\n{}", self.show());
        self
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }
}
