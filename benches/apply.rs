//! gt against the lab, each figure printed with its goal and its ratio to
//! it, in one run (run through scripts/bench.sh: loopback only):
//!
//! - observe: a converged `gt plan` over ssh, default parallelism, for 13
//!   (goldentooth), 100 and 300 hosts, with SSH logins per host per run.
//!   Goal: 13 hosts ≤ 0.3 s; more hosts cost no more than the waves of
//!   observation (hosts ÷ parallelism, rounded up) say. The 13 hosts also
//!   at lab speed 1 (each kubectl and dpkg-query 0.3 s, as on a Pi), where
//!   what runs in series on the hosts shows.
//! - noop: a no-op `gt apply` against `gt plan` on converged goldentooth over
//!   ssh. Goal: ≤ 50 ms more.
//! - apply: `gt apply` against the critical path of the DAG it carries out:
//!   bootstrap of goldentooth, admission of its 9 workers to a ready control
//!   plane, 3 control planes + 100 workers (`--parallelism 103`), and the
//!   upgrade of converged goldentooth from 1.32 to 1.33 (one rung: the
//!   first control plane, the two others one at a time, the nine workers
//!   one batch each), over ssh. Goal: ≤ 1.05 × the critical path.
//! - bare: goldentooth from bare hosts (fresh Debian / Raspberry Pi OS,
//!   reboots allowed) to converged in one `gt apply`; each host's
//!   preparation is priced from the latency table (apt update, each
//!   package apt unpacked, the reboot). Goal: ≤ 1.05 × the critical path.
//!
//! - etcd: three control planes and two workers with real etcd, over ssh:
//!   `gt drift` with one control plane down (its etcd member dead) against
//!   all up, and `gt lab down` of that lab. Goals: the dead member costs
//!   one etcdctl command timeout (3 s), ≤ 3.3 s more; `lab down` ≤ 2 s.
//!
//! The critical path is computed from the plan gt makes of the same lab
//! (observed through the library, just before the timed apply) and the
//! lab's latency table: each step costs what the simulated tools spend on
//! it, the longest chain through the DAG wins.
//!
//! With `GT_BENCH_BASELINE=/path/to/an/older/gt` every figure is measured
//! for both binaries, runs alternating, and printed side by side with the
//! ratio after/before (scripts/bench.sh --baseline REF builds one).
//!
//!     cargo bench --bench apply
//!     GT_BENCH_SECTIONS=noop,apply GT_BENCH_CASES=admission cargo bench --bench apply
//!     GT_BENCH_SPEED=0.1 GT_BENCH_RUNS=7 (the defaults)
//!     GT_BENCH_SETUP_SPEED: the speed a case's starting cluster is made at
//!       (default the lower of GT_BENCH_SPEED and 0.01), so that realistic
//!       latencies (GT_BENCH_SPEED=1) cost only the measured apply
//!     GT_BENCH_LAB=/path/to/another/gt: its lab instead of this build's
//!     GT_BENCH_RANGE=N: the labs on 127.N.x.y instead of 127.4.x.y

use gt::facts::observe::ObserveOptions;
use gt::plan::host::PackageVersion;
use gt::plan::{HostWork, PlanOptions, Step, StepGraph, StepId, UpgradeRole};
use gt_lab::sim::latency::Op;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What the lab's apt unpacked on each host during the measured apply
/// (read from its dpkg database): a package costs one `PackageInstall`,
/// and a bare host's install pulls in dependencies its plan does not list.
#[derive(Default)]
struct Unpacked(BTreeMap<String, usize>);

/// Seconds (at speed 1) the lab spends on a step of `graph`.
fn step_seconds(step: &Step, graph: &StepGraph, unpacked: &Unpacked) -> f64 {
    let s = Op::default_seconds;
    // The gate's wait ends with the query that sees the change: one
    // kubectl. A wait for a Node to be Ready (at a release) ends on the
    // line of the watch of Nodes that says so: nothing more (a real API
    // server sends it at once; the lab's watch looks every 20 ms).
    let seen = s(Op::Kubectl);
    let watched = 0.0;
    match step {
        // The lab's API server answers admin commands as init returns (its
        // ApiReady delay only shows in its own /readyz, which the first gate
        // reads while it waits the longer CniReady anyway).
        Step::Init { .. } => s(Op::Init),
        Step::InstallCni => s(Op::Apply),
        Step::UploadCerts => s(Op::UploadCerts),
        // kubeadm init made the run's token.
        Step::MintToken
            if graph
                .ordered()
                .iter()
                .any(|x| matches!(x, Step::Init { .. })) =>
        {
            0.0
        }
        Step::MintToken => s(Op::Token),
        // A gate behind the CNI also waits for the pod network, CniReady
        // after the CNI's apply: `critical_path` starts it no earlier.
        Step::GateControlPlaneReady { .. } => seen,
        // A join is done when its Node is Ready: CniReady after it registers.
        Step::JoinControlPlane { .. } => s(Op::JoinControlPlane) + s(Op::CniReady) + watched,
        Step::JoinWorker { .. } => s(Op::JoinWorker) + s(Op::CniReady) + watched,
        Step::StartKubelet { .. } => s(Op::SystemctlChange) + watched,
        // The label and the taint patch run at once.
        Step::UpdateNode { labels, taints, .. } => {
            if labels.is_empty() && taints.is_empty() {
                0.0
            } else {
                s(Op::Kubectl)
            }
        }
        Step::RevokeToken => s(Op::Token),
        Step::Drain { .. } => s(Op::Drain),
        Step::DeleteNode { .. } | Step::RemoveEtcdMember { .. } => s(Op::Kubectl),
        Step::Reset { .. } => s(Op::Reset),
        Step::PrepareHost { node, work } => {
            prepare_host_seconds(work, unpacked.0.get(node.as_str()).copied())
        }
        // Two etcdctl calls through kubectl exec, then two reads on the host.
        Step::BackupEtcd => 4.0 * s(Op::Kubectl),
        // A restore is not part of an apply's plan.
        Step::RestorePrepare { .. }
        | Step::StopControlPlane { .. }
        | Step::RestoreEtcd { .. }
        | Step::StartEtcd { .. }
        | Step::StartApiServer { .. }
        | Step::CleanRestore { .. } => 0.0,
        Step::UpgradeNode { role, .. } => upgrade_seconds(*role),
        Step::Uncordon { .. } => 2.0 * s(Op::Kubectl),
    }
}

/// What the lab spends on one host's preparation, command by command as
/// `apply/steps/host.rs` runs them; `unpacked` packages when known, else
/// the ones the plan names.
fn prepare_host_seconds(work: &HostWork, unpacked: Option<usize>) -> f64 {
    let s = Op::default_seconds;
    let mut t = 0.0;
    if work.repository.is_some() {
        // curl of the signing key; gpg and the source line are instant.
        t += s(Op::Download) + s(Op::Instant);
    }
    if work.repository.is_some() || !work.install.is_empty() {
        t += s(Op::AptUpdate);
    }
    if !work.install.is_empty() {
        // "The newest patch" is asked of the repository once per apply,
        // and every host's install waits for that answer.
        if work
            .install
            .iter()
            .any(|p| matches!(p.version, PackageVersion::NewestPatch(_)))
        {
            t += s(Op::AptQuery);
        }
        let holds = if work.hold.is_empty() { 0.0 } else { 2.0 };
        let packages = unpacked.unwrap_or(work.install.len());
        t += holds * s(Op::AptQuery) + packages as f64 * s(Op::PackageInstall);
    } else if !work.hold.is_empty() {
        t += s(Op::AptQuery);
    }
    if work.containerd {
        t += s(Op::Instant) + s(Op::SystemctlChange);
    }
    if let Some(swap) = work.swap_off {
        t += s(Op::Instant);
        if swap.dphys_swapfile {
            t += s(Op::SystemctlChange);
        }
    }
    if !work.modules.is_empty() {
        t += s(Op::Instant);
    }
    if !work.sysctls.is_empty() {
        t += s(Op::Instant);
    }
    if work.reboot {
        // `reboot`, then the boot process: down for the boot time.
        t += 2.0 * s(Op::Instant) + s(Op::Reboot);
    }
    t
}

/// One node's rung from its old release, phase by phase as the upgrade
/// step runs it (apply/steps/upgrade.rs) and the lab charges it.
fn upgrade_seconds(role: UpgradeRole) -> f64 {
    let s = Op::default_seconds;
    let seen = s(Op::Kubectl);
    // Its packages and manifests read (dpkg-query) while its Node is read.
    let read = s(Op::Instant).max(s(Op::Kubectl));
    let repository = s(Op::AptUpdate);
    // apt-mark unhold, one package, apt-mark hold.
    let kubeadm = 2.0 * s(Op::AptQuery) + s(Op::PackageInstall);
    let kubeadm_step = match role {
        // `upgrade plan` and `upgrade apply` each check the cluster's health first.
        UpgradeRole::First => 2.0 * s(Op::UpgradeHealthCheck) + s(Op::UpgradeApply),
        UpgradeRole::ControlPlane => s(Op::UpgradeNodeControlPlane),
        UpgradeRole::Worker => s(Op::UpgradeNodeWorker),
    };
    let mark = s(Op::Kubectl);
    let drain = s(Op::Drain);
    let kubelet = 2.0 * s(Op::AptQuery) + 2.0 * s(Op::PackageInstall);
    // daemon-reload, restart, then Ready again at the release, said by the
    // watch of Nodes (no query).
    let restart = s(Op::SystemctlQuery) + s(Op::SystemctlChange) + s(Op::KubeletRestartReady);
    // A control plane's readiness gate: one more look.
    let gate = if role == UpgradeRole::Worker {
        0.0
    } else {
        seen
    };
    let uncordon = 2.0 * s(Op::Kubectl);
    read + repository + kubeadm + kubeadm_step + mark + drain + kubelet + restart + gate + uncordon
}

/// Longest chain of step durations through the DAG (unbounded
/// parallelism). A gate behind the CNI's apply cannot pass before the pod
/// network is up, CniReady after that apply (the first gate of a bootstrap,
/// the workers' with one control plane); behind a control-plane join it
/// already is.
fn critical_path(graph: &StepGraph) -> f64 {
    critical_path_priced(graph, &Unpacked::default())
}

fn critical_path_priced(graph: &StepGraph, unpacked: &Unpacked) -> f64 {
    schedule(graph, unpacked)
        .values()
        .map(|(_, finish)| *finish)
        .fold(0.0, f64::max)
}

/// Each step's place in the model (seconds at speed 1): when its last
/// dependency finishes, and when it finishes itself.
fn schedule(graph: &StepGraph, unpacked: &Unpacked) -> BTreeMap<StepId, (f64, f64)> {
    let mut at: BTreeMap<StepId, (f64, f64)> = BTreeMap::new();
    for step in graph.ordered() {
        let id = step.id();
        let deps = graph.dependencies(&id);
        let ready = deps.iter().map(|d| at[d].1).fold(0.0, f64::max);
        let mut start = ready;
        if matches!(step, Step::GateControlPlaneReady { .. }) && deps.contains(&StepId::InstallCni)
        {
            start = start.max(at[&StepId::InstallCni].1 + Op::default_seconds(Op::CniReady));
        }
        at.insert(id, (ready, start + step_seconds(step, graph, unpacked)));
    }
    at
}

/// The steps that took longest past what the model gives them (from their
/// last dependency's end to their own), largest first: `name +0.12 s`.
fn overruns(graph: &StepGraph, speed: f64, took: &BTreeMap<String, f64>) -> String {
    let mut over: Vec<(f64, String)> = schedule(graph, &Unpacked::default())
        .into_iter()
        .filter_map(|(id, (ready, finish))| {
            let name = id.to_string();
            took.get(&name)
                .map(|t| (t - (finish - ready) * speed, name))
        })
        .collect();
    over.sort_by(|a, b| b.0.total_cmp(&a.0));
    over.iter()
        .take(4)
        .map(|(o, name)| format!("{name} {o:+.3} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan gt makes of the lab at `config` now (the library, as `gt plan`).
fn plan_of(config: &Path) -> gt::plan::Plan {
    let spec = gt::spec::load_file(config).expect("the lab's cluster.toml loads");
    let observed = gt::facts::observe::observe(&spec, &ObserveOptions::default()).expect("observe");
    gt::plan::plan(&spec, &observed, &PlanOptions::default()).expect("plans")
}

/// 3 control planes and `workers` workers on 10.4.x.y (the lab maps them to 127.4.x.y).
fn topology(workers: usize) -> String {
    let mut t = format!(
        "[cluster]\nname = \"bench{workers}\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.4.0.10:6443\"\n\
         pod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\n\n[cluster.cni]\nname = \"calico\"\n\
         manifest = \"https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml\"\n\n\
         [load_balancer]\nname = \"allyrion\"\naddress = \"10.4.0.10\"\n\n[defaults]\narch = \"arm64\"\n"
    );
    for i in 1..=workers + 3 {
        let role = if i <= 3 { "control-plane" } else { "worker" };
        let k = i + 10;
        t.push_str(&format!(
            "\n[nodes.n{i:03}]\nrole = \"{role}\"\naddress = \"10.4.{}.{}\"\n",
            k / 250,
            k % 250 + 1
        ));
    }
    t
}

/// A gt binary under measure.
struct Gt {
    name: &'static str,
    path: PathBuf,
}

impl Gt {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.path)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.path.display()))
    }

    /// Runs and panics unless it exits 0.
    fn must(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        if !out.status.success() {
            panic!(
                "{} {args:?} failed: {}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    /// Wall time of one run (its exit status must be 0).
    fn time(&self, args: &[&str]) -> f64 {
        let t = Instant::now();
        self.must(args);
        t.elapsed().as_secs_f64()
    }

    /// Wall time of one `apply --json` run and the walk's own share of it
    /// (the recap's `elapsed`: first step started to last step ended); the
    /// rest is observing, locking, planning and exiting.
    fn time_apply(&self, args: &[&str]) -> Applied {
        let mut args = args.to_vec();
        args.push("--json");
        let t = Instant::now();
        let out = self.must(&args);
        let total = t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let events: Vec<serde_json::Value> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let walk = events
            .iter()
            .find(|v| v["event"] == "recap")
            .and_then(|v| v["elapsed"].as_f64())
            .unwrap_or_else(|| panic!("{}: no recap with its elapsed time in {stdout}", self.name));
        let steps = events
            .iter()
            .filter(|v| v["event"] == "step_finished")
            .filter_map(|v| Some((v["step"].as_str()?.to_string(), v["elapsed"].as_f64()?)))
            .collect();
        Applied { total, walk, steps }
    }
}

/// One apply's wall time and its walk's.
struct Applied {
    total: f64,
    walk: f64,
    /// Each step's own time (its `step_finished` event's `elapsed`).
    steps: BTreeMap<String, f64>,
}

/// This build's gt, then the baseline's when one is given (after first so
/// that it names the labs: both binaries share the lab's code).
fn binaries() -> Vec<Gt> {
    let mut v = vec![Gt {
        name: "after",
        path: PathBuf::from(env!("CARGO_BIN_EXE_gt")),
    }];
    if let Some(p) = std::env::var_os("GT_BENCH_BASELINE").filter(|p| !p.is_empty()) {
        v.push(Gt {
            name: "before",
            path: PathBuf::from(p),
        });
    }
    v
}

/// The gt whose lab (its simulated tools, sshd wrapper and servers) every
/// measurement runs against: this build's, or `GT_BENCH_LAB`'s, to tell a
/// change in the lab from a change in gt (one gt against two labs).
fn lab_binary() -> Gt {
    match std::env::var_os("GT_BENCH_LAB").filter(|p| !p.is_empty()) {
        Some(p) => Gt {
            name: "lab",
            path: PathBuf::from(p),
        },
        None => binaries().swap_remove(0),
    }
}

/// `from` with its 10.4.x.y addresses moved to 10.N.x.y (the lab maps them
/// to 127.N.x.y) when `GT_BENCH_RANGE=N` is set, written to `to`: two
/// benchmarks on one machine, each on its own loopback range.
fn on_bench_range(from: &Path, to: &Path) -> PathBuf {
    match std::env::var("GT_BENCH_RANGE") {
        Ok(n) if !n.is_empty() && n != "4" => {
            let n: u8 = n.parse().expect("GT_BENCH_RANGE is a number, 1 to 254");
            let text = std::fs::read_to_string(from).unwrap();
            std::fs::write(to, text.replace("10.4.", &format!("10.{n}."))).unwrap();
            to.to_path_buf()
        }
        _ => from.to_path_buf(),
    }
}

/// A lab for the length of one measurement, taken down when dropped.
struct Lab {
    dir: PathBuf,
    gt: PathBuf,
}

impl Lab {
    fn up(work: &Path, name: &str, from: &Path, transport: &str, speed: f64) -> Lab {
        Lab::up_hosts(work, name, from, transport, speed, "prepared")
    }

    /// `hosts`: `bare` or `prepared`, as `gt lab up --hosts`.
    fn up_hosts(
        work: &Path,
        name: &str,
        from: &Path,
        transport: &str,
        speed: f64,
        hosts: &str,
    ) -> Lab {
        let dir = work.join(name);
        let moved = work.join(format!("{name}-from.toml"));
        let from = &on_bench_range(from, &moved);
        let builder = lab_binary();
        let lab = Lab {
            dir,
            gt: builder.path.clone(),
        };
        builder.must(&[
            "lab",
            "up",
            "--dir",
            lab.dir_str(),
            "--from",
            from.to_str().unwrap(),
            "--speed",
            &speed.to_string(),
            "--transport",
            transport,
            // Most figures below are gt's own work on prepared hosts; host
            // preparation (package installs, reboots) is the lab's latency.
            "--hosts",
            hosts,
        ]);
        lab
    }

    /// Packages installed on each host, from its dpkg database.
    fn installed_packages(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(self.dir.join("hosts")).unwrap().flatten() {
            let status = e.path().join("var/lib/dpkg/status");
            let text = std::fs::read_to_string(status).unwrap_or_default();
            let n = text
                .lines()
                .filter(|l| {
                    *l == "Status: install ok installed" || *l == "Status: hold ok installed"
                })
                .count();
            out.insert(e.file_name().to_string_lossy().into_owned(), n);
        }
        out
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn config(&self) -> PathBuf {
        self.dir.join("cluster.toml")
    }

    /// The lab's cluster.toml without its workers: applying it readies the
    /// control plane alone.
    fn control_plane_only(&self) -> PathBuf {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
        let nodes = doc["nodes"].as_table_mut().expect("[nodes]");
        let workers: Vec<String> = nodes
            .iter()
            .filter(|(_, n)| n.get("role").and_then(|r| r.as_str()) == Some("worker"))
            .map(|(k, _)| k.to_string())
            .collect();
        for w in workers {
            nodes.remove(&w);
        }
        let p = self.dir.join("control-plane-only.toml");
        std::fs::write(&p, doc.to_string()).unwrap();
        p
    }

    /// Every simulated tool started from now on takes `speed` × its
    /// latency (each reads `lab.json` as it starts). What is under way keeps
    /// its times: a Node's readiness is an instant fixed when it registered.
    fn set_speed(&self, speed: f64) {
        let path = self.dir.join("lab.json");
        let mut lab: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        lab["speed"] = serde_json::json!(speed);
        std::fs::write(&path, serde_json::to_string_pretty(&lab).unwrap()).unwrap();
    }

    /// The lab's cluster.toml asking for another Kubernetes version.
    fn want_version(&self, version: &str) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
        doc["cluster"]["kubernetes_version"] = toml_edit::value(version);
        std::fs::write(self.config(), doc.to_string()).unwrap();
    }

    /// Empties the lab's sshd logs, so that `logins_per_host` counts what follows.
    fn forget_logins(&self) {
        for f in self.sshd_logs() {
            std::fs::write(f, "").unwrap();
        }
    }

    fn sshd_logs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.join("logs"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("sshd") && n.ends_with(".log"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// SSH logins (`Accepted publickey` in the sshd logs) and the addresses
    /// connected to (`Connection from C port P on ADDR`). Not per address:
    /// the kernel gives connections to different addresses the same source
    /// port, so an `Accepted` line cannot be told apart by its port.
    fn logins(&self) -> (usize, usize) {
        let mut logins = 0;
        let mut addresses = HashSet::new();
        for log in self.sshd_logs() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            for line in text.lines() {
                if line.contains("Connection from ") {
                    if let Some(addr) = line
                        .split(" on ")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                    {
                        addresses.insert(addr.to_string());
                    }
                } else if line.contains("Accepted publickey") {
                    logins += 1;
                }
            }
        }
        (logins, addresses.len())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(&self.gt)
            .args(["lab", "down", "--dir", self.dir_str()])
            .output();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `0.251 s (before 0.512 s, ×0.49)`, or the figure alone without a baseline.
fn side_by_side(figures: &[(&str, f64)], unit: &str, scale: f64) -> String {
    let after = figures[0].1;
    match figures.get(1) {
        Some((_, before)) => format!(
            "{:.3} {unit} (before {:.3} {unit}, after/before {:.2})",
            after * scale,
            before * scale,
            after / before
        ),
        None => format!("{:.3} {unit}", after * scale),
    }
}

struct Settings {
    speed: f64,
    /// The speed a case's starting cluster is made at (`GT_BENCH_SETUP_SPEED`,
    /// default the measured speed or 0.01, whichever is lower).
    setup_speed: f64,
    runs: usize,
    work: PathBuf,
}

/// Converged `gt plan` over ssh at 13, 100 and 300 hosts, and the no-op
/// apply against the plan on goldentooth.
fn observe_and_noop(s: &Settings, sections: &[String]) {
    let bins = binaries();
    let goldentooth = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml");
    let sizes: Vec<usize> = std::env::var("GT_BENCH_HOSTS")
        .unwrap_or_else(|_| "13,100,300".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let want_observe = sections.iter().any(|x| x == "observe");
    let want_noop = sections.iter().any(|x| x == "noop");
    let parallelism = gt::parallelism::OBSERVE;
    let waves = |hosts: usize| hosts.div_ceil(parallelism) as f64;
    println!(
        "\nobserve: converged `gt plan` over ssh, default parallelism ({parallelism} here), median of {} runs, binaries alternating",
        s.runs
    );
    let mut first: Option<(usize, f64)> = None;
    for &hosts in &sizes {
        let measured = want_observe || (want_noop && hosts == 13);
        if !measured {
            continue;
        }
        let from = if hosts == 13 {
            goldentooth.clone()
        } else {
            let p = s.work.join(format!("observe-{hosts}.toml"));
            std::fs::write(&p, topology(hosts - 3)).unwrap();
            p
        };
        // Converged fast: the latencies do not matter to what is measured.
        let lab = Lab::up(&s.work, &format!("observe-{hosts}"), &from, "ssh", 0.001);
        let config = lab.config();
        let cfg = config.to_str().unwrap();
        // gt's own step bounds (10 joins at a time): the setup is not what
        // is measured, and 300 joins at once on a loaded 2-core machine can
        // outlast the lab's discovery window (0.3 s at this speed).
        bins[0].must(&["--config", cfg, "apply", "--auto-approve"]);
        let check = bins[0].run(&["--config", cfg, "plan", "--detailed-exitcode"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "not converged: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        if want_observe {
            lab.forget_logins();
            let mut times: Vec<Vec<f64>> = bins.iter().map(|_| vec![]).collect();
            // CPU seconds of each run: gt with its ssh clients, and the lab's
            // sshds (the logins and the sessions' commands), which a real
            // host would pay on its own CPU.
            let mut cpu: Vec<(Vec<f64>, Vec<f64>)> =
                bins.iter().map(|_| (vec![], vec![])).collect();
            for _ in 0..s.runs {
                for ((b, t), (client, server)) in
                    bins.iter().zip(times.iter_mut()).zip(cpu.iter_mut())
                {
                    let before = (children_cpu(), lab_sshd_cpu(&lab.dir));
                    t.push(b.time(&["--config", cfg, "plan"]));
                    client.push(children_cpu() - before.0);
                    server.push(lab_sshd_cpu(&lab.dir) - before.1);
                }
            }
            let (logins, addresses) = lab.logins();
            let figures: Vec<(&str, f64)> = bins
                .iter()
                .zip(times)
                .map(|(b, t)| (b.name, median(t)))
                .collect();
            let after = figures[0].1;
            let goal = match first {
                None => 0.3,
                // Linear in the waves of observation from the smallest size.
                Some((n, t)) => t * waves(hosts) / waves(n),
            };
            first.get_or_insert((hosts, after));
            println!(
                "  {hosts:>4} hosts: {}  goal ≤ {goal:.3} s  ratio to goal {:.2}  ssh logins per host per run {:.2} ({logins} over {addresses} addresses)",
                side_by_side(&figures, "s", 1.0),
                after / goal,
                logins as f64 / (s.runs * bins.len() * addresses.max(1)) as f64,
            );
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let (client, server) = (median(cpu[0].0.clone()), median(cpu[0].1.clone()));
            println!(
                "         CPU per run: gt and its ssh clients {client:.3} s, the lab's sshds {server:.3} s \
                 ({:.1} ms a host); on {cores} cores these alone need {:.3} s of wall",
                1000.0 * server / hosts as f64,
                (client + server) / cores as f64,
            );
        }
        if want_observe && hosts == 13 {
            at_a_pis_pace(s, &bins, &lab, cfg);
        }
        if want_noop && hosts == 13 {
            noop(s, &bins, cfg);
        }
    }
}

/// The converged plan again with the lab at speed 1: each kubectl and
/// dpkg-query takes what it takes on a Raspberry Pi (0.3 s), so the
/// plan's wall shows which of its remote commands run in series.
fn at_a_pis_pace(s: &Settings, bins: &[Gt], lab: &Lab, cfg: &str) {
    lab.set_speed(1.0);
    let mut times: Vec<Vec<f64>> = bins.iter().map(|_| vec![]).collect();
    for _ in 0..s.runs {
        for (b, t) in bins.iter().zip(times.iter_mut()) {
            t.push(b.time(&["--config", cfg, "plan"]));
        }
    }
    lab.set_speed(0.001);
    let figures: Vec<(&str, f64)> = bins
        .iter()
        .zip(times)
        .map(|(b, t)| (b.name, median(t)))
        .collect();
    println!(
        "         at lab speed 1 (each kubectl and dpkg-query 0.3 s, as on a Pi): {}",
        side_by_side(&figures, "s", 1.0)
    );
}

/// CPU seconds used so far by this process's finished children (each `gt`
/// run, with the ssh clients it waited for).
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// CPU seconds used so far by the lab's sshds and every process they waited
/// for (each login's sshd, its session and the commands it ran).
fn lab_sshd_cpu(dir: &Path) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Ok(pids) = std::fs::read_dir(dir.join("pids")) else {
        return 0.0;
    };
    pids.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("sshd-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok())
        .map(|stat| {
            // utime stime cutime cstime: fields 14-17, counted after the
            // command name's closing parenthesis (field 2 may hold spaces).
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|f| f.parse::<f64>().ok())
                .sum::<f64>()
                / ticks
        })
        .sum()
}

/// A no-op `gt apply` against `gt plan`, alternating, on a converged lab.
fn noop(s: &Settings, bins: &[Gt], cfg: &str) {
    let mut extra = vec![];
    let mut plans = vec![];
    let mut applies = vec![];
    for b in bins {
        let (mut p, mut a) = (vec![], vec![]);
        for _ in 0..s.runs {
            p.push(b.time(&["--config", cfg, "plan"]));
            a.push(b.time(&["--config", cfg, "apply", "--auto-approve"]));
        }
        let (p, a) = (median(p), median(a));
        plans.push((b.name, p));
        applies.push((b.name, a));
        extra.push((b.name, a - p));
    }
    println!(
        "\nnoop: a no-op `gt apply` against `gt plan` on converged goldentooth over ssh, median of {} runs each\n  plan {}\n  apply {}\n  apply − plan {}  goal ≤ 50 ms  ratio to goal {:.2}",
        s.runs,
        side_by_side(&plans, "s", 1.0),
        side_by_side(&applies, "s", 1.0),
        side_by_side(&extra, "ms", 1000.0),
        extra[0].1 / 0.050,
    );
}

/// `gt apply` against the critical path of its own plan.
fn apply_cases(s: &Settings) {
    let bins = binaries();
    let cases = std::env::var("GT_BENCH_CASES")
        .unwrap_or_else(|_| "bootstrap,admission,100,bare,upgrade".into());
    println!(
        "\napply: `gt apply` over ssh at lab speed {} against the critical path of the DAG it carries out; goal ≤ 1.05 ×",
        s.speed
    );
    for case in cases.split(',').map(str::trim) {
        if case == "bare" {
            bare_case(s, &bins);
            continue;
        }
        let (name, from, parallelism) = match case {
            "bootstrap" => (
                "bootstrap goldentooth (3 + 9)".to_string(),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
                None,
            ),
            "admission" => (
                "9 workers join a ready control plane".to_string(),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
                None,
            ),
            "upgrade" => (
                "upgrade goldentooth 1.32 → 1.33".to_string(),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
                None,
            ),
            n => {
                let workers: usize = n
                    .parse()
                    .expect("a case is bootstrap, admission, bare or a worker count");
                let p = s.work.join(format!("apply-{workers}.toml"));
                std::fs::write(&p, topology(workers)).unwrap();
                (format!("3 + {workers} workers"), p, Some(workers + 3))
            }
        };
        let mut figures = vec![];
        let mut walks = vec![];
        let mut past = vec![];
        let mut critical = 0.0;
        let mut steps = 0;
        for b in &bins {
            // The cluster the measured apply starts from is made at the
            // setup speed; the lab then runs at the measured one.
            let lab = Lab::up(
                &s.work,
                &format!("apply-{case}-{}", b.name),
                &from,
                "ssh",
                s.setup_speed,
            );
            let config = lab.config();
            let cfg = config.to_str().unwrap();
            if case == "admission" {
                let cps = lab.control_plane_only();
                bins[0].must(&["--config", cps.to_str().unwrap(), "apply", "--auto-approve"]);
            }
            if case == "upgrade" {
                bins[0].must(&["--config", cfg, "apply", "--auto-approve"]);
                lab.want_version("1.33");
            }
            lab.set_speed(s.speed);
            let plan = plan_of(&config);
            critical = critical_path(&plan.graph) * s.speed;
            steps = plan.graph.len();
            let mut args = vec!["--config", cfg, "apply", "--auto-approve"];
            let p = parallelism.map(|p| p.to_string());
            if let Some(p) = &p {
                args.extend(["--parallelism", p]);
            }
            let a = b.time_apply(&args);
            figures.push((b.name, a.total));
            walks.push((b.name, a.walk));
            past.push((b.name, overruns(&plan.graph, s.speed, &a.steps)));
        }
        print_apply_case(&name, steps, critical, &figures, &walks);
        // Where a walk's excess goes: the steps furthest past their model.
        for (who, steps) in past {
            println!(
                "  {:<38}           past the model, most first ({who}): {steps}",
                ""
            );
        }
    }
}

/// A dead etcd member's cost to `gt drift`, and `gt lab down` with real etcd.
fn etcd_case(s: &Settings) {
    let bins = binaries();
    let goldentooth =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"))
            .unwrap();
    let cut = goldentooth
        .find("[nodes.gardener]")
        .expect("goldentooth lists gardener");
    let from = s.work.join("etcd.toml");
    std::fs::write(&from, &goldentooth[..cut]).unwrap();
    println!(
        "\netcd: 3 control planes + 2 workers with real etcd over ssh, median of {} runs, binaries alternating",
        s.runs
    );
    let timed = |b: &Gt, args: &[&str]| {
        let t = Instant::now();
        b.run(args);
        t.elapsed().as_secs_f64()
    };
    let (mut up, mut dead, mut downs) = (vec![], vec![], vec![]);
    for (i, b) in bins.iter().enumerate() {
        let lab = Lab::up(&s.work, &format!("etcd-{}", b.name), &from, "ssh", 0.001);
        if !lab.dir.join("etcd/bin/etcd").exists() {
            println!(
                "  skipped: the lab found no etcd 3.5 (GT_LAB_ETCD_DIR, scripts/install-etcd.sh)"
            );
            return;
        }
        let config = lab.config();
        let cfg = config.to_str().unwrap();
        bins[0].must(&["--config", cfg, "apply", "--auto-approve"]);
        // Drift is measured on the first lab, every binary in turn.
        if i == 0 {
            up = bins.iter().map(|_| vec![]).collect();
            dead = bins.iter().map(|_| vec![]).collect();
            for _ in 0..s.runs {
                for (b, t) in bins.iter().zip(up.iter_mut()) {
                    t.push(timed(b, &["--config", cfg, "drift"]));
                }
            }
            bins[0].must(&["lab", "fault", "dalt", "down", "--dir", lab.dir_str()]);
            for _ in 0..s.runs {
                for (b, t) in bins.iter().zip(dead.iter_mut()) {
                    t.push(timed(b, &["--config", cfg, "drift"]));
                }
            }
        }
        downs.push((b.name, timed(b, &["lab", "down", "--dir", lab.dir_str()])));
    }
    let figures = |v: Vec<Vec<f64>>| -> Vec<(&str, f64)> {
        bins.iter()
            .zip(v)
            .map(|(b, t)| (b.name, median(t)))
            .collect()
    };
    let (up, dead) = (figures(up), figures(dead));
    let extra: Vec<(&str, f64)> = up
        .iter()
        .zip(&dead)
        .map(|((n, u), (_, d))| (*n, d - u))
        .collect();
    println!(
        "  drift, all up {}\n  drift, dalt down {}\n  a dead member costs {}  goal ≤ 3.3 s (one 3 s etcdctl timeout)  ratio to goal {:.2}\n  lab down {}  goal ≤ 2 s  ratio to goal {:.2}",
        side_by_side(&up, "s", 1.0),
        side_by_side(&dead, "s", 1.0),
        side_by_side(&extra, "s", 1.0),
        extra[0].1 / 3.3,
        side_by_side(&downs, "s", 1.0),
        downs[0].1 / 2.0,
    );
}

/// Bare goldentooth (fresh Debian / Raspberry Pi OS, reboots allowed) to
/// a converged cluster in one `gt apply`, against the critical path of its
/// plan with each host's preparation priced by what its apt unpacked.
fn bare_case(s: &Settings, bins: &[Gt]) {
    let from = s.work.join("bare.toml");
    let goldentooth =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"))
            .unwrap();
    std::fs::write(
        &from,
        format!("{goldentooth}\n[defaults.host]\nallow_reboot = true\n"),
    )
    .unwrap();
    let mut figures = vec![];
    let mut walks = vec![];
    let mut critical = 0.0;
    let mut steps = 0;
    for b in bins {
        let lab = Lab::up_hosts(
            &s.work,
            &format!("apply-bare-{}", b.name),
            &from,
            "ssh",
            s.speed,
            "bare",
        );
        let config = lab.config();
        let cfg = config.to_str().unwrap();
        let plan = plan_of(&config);
        steps = plan.graph.len();
        let before = lab.installed_packages();
        let applied = b.time_apply(&["--config", cfg, "apply", "--auto-approve"]);
        let unpacked = Unpacked(
            lab.installed_packages()
                .into_iter()
                .map(|(n, after)| {
                    let was = before.get(&n).copied().unwrap_or(0);
                    (n, after.saturating_sub(was))
                })
                .collect(),
        );
        critical = critical_path_priced(&plan.graph, &unpacked) * s.speed;
        figures.push((b.name, applied.total));
        walks.push((b.name, applied.walk));
        let check = b.run(&["--config", cfg, "plan", "--detailed-exitcode"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "bare goldentooth did not converge in one apply: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    print_apply_case(
        "bare goldentooth to converged (reboots)",
        steps,
        critical,
        &figures,
        &walks,
    );
}

/// One case's line: each binary's apply and walk against the critical path.
fn print_apply_case(
    name: &str,
    steps: usize,
    critical: f64,
    figures: &[(&str, f64)],
    walks: &[(&str, f64)],
) {
    let ratios: Vec<(&str, f64)> = figures.iter().map(|(n, t)| (*n, t / critical)).collect();
    let walk_ratios: Vec<(&str, f64)> = walks.iter().map(|(n, t)| (*n, t / critical)).collect();
    let preludes: Vec<(&str, f64)> = figures
        .iter()
        .zip(walks)
        .map(|((n, t), (_, w))| (*n, t - w))
        .collect();
    println!(
        "  {name:<38} {steps:>3} steps  critical path {critical:.2} s  apply {}  ratio {}  goal ≤ 1.05\n  {:<38}           the walk alone {}  ratio {}; before it (observe, lock, plan) and after (exit) {}",
        side_by_side(figures, "s", 1.0),
        side_by_side(&ratios, "×", 1.0),
        "",
        side_by_side(walks, "s", 1.0),
        side_by_side(&walk_ratios, "×", 1.0),
        side_by_side(&preludes, "s", 1.0),
    );
}

/// The model against sums worked out by hand from the latency table
/// (crates/gt-lab/src/sim/latency.rs), at speed 1.
fn check_the_model() {
    let kubectl = Op::default_seconds(Op::Kubectl);
    let goldentooth =
        gt::spec::load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"))
            .expect("goldentooth loads");
    let bootstrap = gt::plan::bootstrap_plan(&goldentooth).expect("plans");
    // init 60, CNI 2, the first gate waits CniReady 15, two control-plane
    // joins of 40 + 15, workers 20 + 15, each gate's wait seen by one
    // kubectl, each join's by the watch of Nodes, the token revoked last (1).
    let by_hand = 60.0 + 2.0 + 15.0 + kubectl + 2.0 * (40.0 + 15.0 + kubectl) + 20.0 + 15.0 + 1.0;
    let model = critical_path(&bootstrap.graph);
    assert!(
        (model - by_hand).abs() < 1e-9,
        "goldentooth bootstrap: model {model} s, by hand {by_hand} s"
    );
    // One control plane: the workers' gate waits for the pod network.
    let mut single = topology(2);
    for cp in ["n002", "n003"] {
        single = single.replace(
            &format!("[nodes.{cp}]\nrole = \"control-plane\""),
            &format!("[nodes.{cp}]\nrole = \"worker\""),
        );
    }
    let spec = gt::spec::load_str(&single, Path::new("single.toml")).expect("one control plane");
    let plan = gt::plan::bootstrap_plan(&spec).expect("plans");
    let by_hand = 60.0 + 2.0 + 15.0 + kubectl + 20.0 + 15.0 + 1.0;
    let model = critical_path(&plan.graph);
    assert!(
        (model - by_hand).abs() < 1e-9,
        "one control plane: model {model} s, by hand {by_hand} s"
    );
    // A bare Pi: key 0.5 (+ gpg), update 3, madison 0.3, unhold and hold
    // 0.3 each, 12 packages of 4, containerd config + restart, swapoff and
    // dphys-swapfile disabled, modprobe, sysctl, reboot and boot 45.
    let pin = |name: &str, version: PackageVersion| gt::plan::host::PackagePin {
        name: name.into(),
        version,
    };
    let bare_pi = HostWork {
        repository: Some("https://pkgs.k8s.io/core:/stable:/v1.32/deb/".into()),
        install: vec![
            pin("kubeadm", PackageVersion::NewestPatch("1.32".into())),
            pin("containerd", PackageVersion::Distribution),
        ],
        hold: vec!["kubeadm".into()],
        containerd: true,
        swap_off: Some(gt::plan::host::SwapOff {
            fstab: false,
            dphys_swapfile: true,
        }),
        modules: ["br_netfilter".to_string()].into(),
        sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
        boot_cmdline: None,
        reboot: true,
    };
    let instant = Op::default_seconds(Op::Instant);
    let by_hand = 0.5
        + instant
        + 3.0
        + 0.3
        + 0.6
        + 12.0 * 4.0
        + instant
        + 0.5
        + instant
        + 0.5
        + instant
        + instant
        + 2.0 * instant
        + 45.0;
    let model = prepare_host_seconds(&bare_pi, Some(12));
    assert!(
        (model - by_hand).abs() < 1e-9,
        "bare Pi preparation: model {model} s, by hand {by_hand} s"
    );
}

/// A rung's node costs, worked out by hand from the latency table: read
/// 0.3 (dpkg-query's 0.01 alongside), repository 3, kubeadm 0.3 + 4 + 0.3, the kubeadm step, mark
/// 0.3, drain 5, kubelet and kubectl 0.3 + 4 + 4 + 0.3, daemon-reload 0.02,
/// restart 0.5, Ready 15 (said by the watch of Nodes), a control plane's
/// gate 0.3, uncordon and unmark 0.3 + 0.3.
fn check_the_upgrade_model() {
    let around = 0.3 + 3.0 + 4.6 + 0.3 + 5.0 + 8.6 + 0.02 + 0.5 + 15.0 + 0.6;
    for (role, kubeadm_step, gate) in [
        (UpgradeRole::First, 5.0 + 5.0 + 75.0, 0.3),
        (UpgradeRole::ControlPlane, 45.0, 0.3),
        (UpgradeRole::Worker, 5.0, 0.0),
    ] {
        let by_hand = around + kubeadm_step + gate;
        let model = upgrade_seconds(role);
        assert!(
            (model - by_hand).abs() < 1e-9,
            "{role:?}: model {model} s, by hand {by_hand} s"
        );
    }
}

fn main() {
    check_the_model();
    check_the_upgrade_model();
    // cargo bench passes --bench; cargo test --benches runs us with no filter: stop there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let speed = env_or("GT_BENCH_SPEED", 0.1);
    let s = Settings {
        speed,
        setup_speed: env_or("GT_BENCH_SETUP_SPEED", speed.min(0.01)),
        runs: env_or("GT_BENCH_RUNS", 7),
        work: work.path().to_path_buf(),
    };
    let sections: Vec<String> = std::env::var("GT_BENCH_SECTIONS")
        .unwrap_or_else(|_| "observe,noop,apply,etcd".into())
        .split(',')
        .map(|x| x.trim().to_string())
        .collect();
    // Labs bind fixed loopback addresses: one at a time, as the lab tests do.
    let lock = std::fs::File::create(std::env::temp_dir().join("gt-lab-tests.lock")).unwrap();
    // SAFETY: flock on a file we own; released when it is closed.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let started = Instant::now();
    if sections.iter().any(|x| x == "observe" || x == "noop") {
        observe_and_noop(&s, &sections);
    }
    if sections.iter().any(|x| x == "apply") {
        apply_cases(&s);
    }
    if sections.iter().any(|x| x == "etcd") {
        etcd_case(&s);
    }
    println!(
        "\n(bench apply took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    drop(lock);
}
