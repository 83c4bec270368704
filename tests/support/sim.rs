//! A hand-built lab directory for driving the simulated tools as processes:
//! `SimLab::goldentooth().on("fenn").run("kubeadm join ...").success().stdout_contains(..)`.

use super::gt::{Output, Test, GT};
use super::kube::{apply_cni, kubeadm_init, KUBECTL};
use super::wait::eventually;
use gt_lab::sim::log::LogEntry;
use gt_lab::topology::{Faults, LabNode, LabTopology};
use std::path::{Path, PathBuf};

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

/// The etcd members of the lab at `dir`, by name, sorted (what `etcdctl
/// member list` shows; a member that never started has no name yet): the
/// real cluster's when the lab runs real etcd, else the model's.
pub fn etcd_members(dir: &Path) -> Vec<String> {
    if dir.join("etcd/bin/etcdctl").is_file() {
        return real_etcd_members(dir);
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    let mut names: Vec<String> = state["etcd_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// `etcdctl member list` of the lab's real etcd, asked of the first control
/// plane whose member answers (a member answers it without a quorum), with
/// the etcd CA's client certificate of any control plane that still has one.
pub fn real_etcd_members(dir: &Path) -> Vec<String> {
    let topology = LabTopology::load(dir).expect("lab.json");
    let cps: Vec<&LabNode> = topology
        .nodes
        .iter()
        .filter(|n| n.role == "control-plane")
        .collect();
    let pki = cps
        .iter()
        .map(|n| {
            dir.join("hosts")
                .join(&n.name)
                .join("etc/kubernetes/pki/etcd")
        })
        .find(|p| p.join("healthcheck-client.crt").is_file())
        .expect("a control plane with etcd's client certificate");
    for n in &cps {
        let out = std::process::Command::new(dir.join("etcd/bin/etcdctl"))
            .arg(format!("--endpoints=https://{}:2379", n.address))
            .arg(format!("--cacert={}", pki.join("ca.crt").display()))
            .arg(format!(
                "--cert={}",
                pki.join("healthcheck-client.crt").display()
            ))
            .arg(format!(
                "--key={}",
                pki.join("healthcheck-client.key").display()
            ))
            .args(["--dial-timeout=1s", "--command-timeout=3s"])
            .args(["member", "list", "-w", "json"])
            .output()
            .expect("run etcdctl");
        if !out.status.success() {
            continue;
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcdctl JSON");
        let mut names: Vec<String> = json["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap_or("").to_string())
            .collect();
        names.sort();
        return names;
    }
    panic!("no etcd member of the lab in {} answers", dir.display());
}

pub struct SimLab {
    dir: tempfile::TempDir,
    // Shares the machine with the labs; out of the way of a lab that runs alone.
    _room: super::lab::Room,
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

    /// goldentooth on fresh OS installs (`gt lab up`'s bare hosts).
    pub fn goldentooth_bare() -> SimLab {
        let lab = SimLab::goldentooth();
        for n in CONTROL_PLANES.iter().chain(WORKERS) {
            let root = lab.root(n);
            std::fs::remove_dir_all(&root).unwrap();
            std::fs::create_dir_all(&root).unwrap();
            gt_lab::sim::image::build(&root, gt_lab::HostImage::Bare).unwrap();
        }
        lab
    }

    pub fn with_topology(topology: LabTopology) -> SimLab {
        let dir = tempfile::tempdir().expect("tempdir");
        topology.save(dir.path()).expect("write lab.json");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // Packages put the others into each host's /usr/bin.
        for tool in gt_lab::sim::os_tools() {
            std::os::unix::fs::symlink(GT, bin.join(tool)).unwrap();
        }
        for n in &topology.nodes {
            let root = dir.path().join("hosts").join(&n.name);
            std::fs::create_dir_all(&root).unwrap();
            gt_lab::sim::image::build(&root, gt_lab::HostImage::Prepared).unwrap();
        }
        SimLab {
            dir,
            _room: super::lab::Room::shared(),
        }
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
            .run(&format!("{KUBECTL} get nodes -o json"))
            .success();
        serde_json::from_str(&out.stdout).expect("kubectl printed JSON")
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

    /// `kubeadm init` with goldentooth's flags on bettley, then waits for its API server.
    pub fn init(&self) -> Output {
        let out = self.on("bettley").run(&kubeadm_init(ENDPOINT)).success();
        self.wait_api_ready();
        out
    }

    pub fn wait_api_ready(&self) {
        eventually("the API server is ready through the endpoint", || {
            self.on("bettley")
                .run(&format!("{KUBECTL} get --raw /readyz"))
                .succeeded()
        });
    }

    /// A worker join command line from a fresh token.
    pub fn join_command(&self) -> String {
        self.on("bettley")
            .run("kubeadm token create --ttl 15m --print-join-command")
            .success()
            .stdout
            .trim_end()
            .to_string()
    }

    /// A control-plane join command line with a freshly uploaded certificate key.
    pub fn control_plane_join_command(&self) -> String {
        let up = self
            .on("bettley")
            .run("kubeadm init phase upload-certs --upload-certs")
            .success();
        let key = up.stdout.lines().nth(2).unwrap().to_string();
        self.on("bettley")
            .run(&format!(
                "kubeadm token create --print-join-command --certificate-key {key}"
            ))
            .success()
            .stdout
            .trim_end()
            .to_string()
    }

    pub fn apply_cni(&self) {
        self.on("bettley").run(&apply_cni()).success();
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
    pub fn run(self, cmd: &str) -> Output {
        let node = self.node.clone();
        let mut out = self.command(cmd).run();
        out.what = format!("[{node}] {cmd}");
        out
    }

    /// Starts `cmd` as `run` does, without waiting for it.
    pub fn spawn(self, cmd: &str) -> std::process::Child {
        self.command(cmd).spawn()
    }

    fn command(self, cmd: &str) -> Test {
        let path = format!(
            "{}:{}:{}",
            self.lab.root(&self.node).join("usr/bin").display(),
            self.lab.dir().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut test = Test::program("sh")
            .arg("-c")
            .arg(cmd)
            .env("GT_HOST_ROOT", self.lab.root(&self.node))
            .env("PATH", path)
            .env_remove("GT_LAB_SPEED")
            .env_remove("GT_LAB_NOW_OFFSET")
            .env_remove("KUBECONFIG");
        for (k, v) in &self.env {
            test = test.env(k, v);
        }
        if let Some(input) = &self.stdin {
            test = test.stdin(input);
        }
        test
    }
}
