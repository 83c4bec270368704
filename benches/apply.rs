//! `gt apply` from an empty cluster on the lab, timed against the critical
//! path of the plan's DAG computed from the lab's latency table.
//!
//!     cargo bench --bench apply                       # goldentooth and 100 workers, speed 1
//!     GT_BENCH_SPEED=0.1 cargo bench --bench apply    # ten times faster, same ratios
//!     GT_BENCH_CASES=goldentooth cargo bench --bench apply
//!
//! The goal: wall time ≤ 1.15 × the critical path. The critical path
//! gives each step what the simulated tools spend on it (`Op` latencies
//! × speed) and takes the longest chain through the DAG, with unbounded
//! parallelism; the 100-worker case is therefore applied with
//! `--parallelism 100` (with the default 10, workers join in waves, and
//! that bound is reported as its own figure).

use gt::plan::{bootstrap_plan, GateBefore, Step, StepGraph, StepId};
use gt_lab::sim::latency::Op;
use std::collections::BTreeMap;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const GT: &str = env!("CARGO_BIN_EXE_gt");

/// Seconds (at speed 1) the lab spends on a step, and why.
fn step_seconds(step: &Step, graph: &StepGraph) -> f64 {
    let s = Op::default_seconds;
    match step {
        // The lab's API server answers admin commands as init returns (its
        // ApiReady delay only shows in its own /readyz, which the first gate
        // reads while it waits the longer CniReady anyway).
        // bootstrap_plan observes no host software, so it prepares no host.
        Step::PrepareHost { .. } => 0.0,
        Step::Init { .. } => s(Op::Init),
        Step::InstallCni => s(Op::Apply),
        Step::UploadCerts => s(Op::UploadCerts),
        Step::MintToken
            if graph
                .ordered()
                .iter()
                .any(|x| matches!(x, Step::Init { .. })) =>
        {
            0.0
        }
        Step::MintToken => s(Op::Token),
        // The first gate waits for the bootstrap node's pod network (CniReady
        // after the CNI is applied); later ones find joined nodes Ready.
        Step::GateControlPlaneReady {
            before,
            control_planes,
        } => {
            let first =
                matches!(before, GateBefore::ControlPlaneJoin(_)) && control_planes.len() == 1;
            s(Op::Kubectl) + if first { s(Op::CniReady) } else { 0.0 }
        }
        // A join is done when its Node is Ready: CniReady after it registers.
        Step::JoinControlPlane { .. } => s(Op::JoinControlPlane) + s(Op::CniReady) + s(Op::Kubectl),
        Step::JoinWorker { .. } => s(Op::JoinWorker) + s(Op::CniReady) + s(Op::Kubectl),
        Step::StartKubelet { .. } => s(Op::SystemctlChange) + s(Op::Kubectl),
        Step::UpdateNode { labels, taints, .. } => {
            s(Op::Kubectl)
                * (usize::from(!labels.is_empty()) + usize::from(!taints.is_empty())) as f64
        }
        Step::RevokeToken => s(Op::Token),
        Step::Drain { .. } => s(Op::Drain),
        Step::DeleteNode { .. } | Step::RemoveEtcdMember { .. } => s(Op::Kubectl),
        Step::Reset { .. } => s(Op::Reset),
        // Two etcdctl calls through kubectl exec, then two reads on the host.
        Step::BackupEtcd => 4.0 * s(Op::Kubectl),
        // A restore is not part of an apply's plan; its host commands are quick.
        Step::RestorePrepare { .. }
        | Step::StopControlPlane { .. }
        | Step::RestoreEtcd { .. }
        | Step::StartEtcd { .. }
        | Step::StartApiServer { .. }
        | Step::CleanRestore { .. } => 0.0,
    }
}

/// Longest chain of step durations through the DAG (unbounded parallelism).
fn critical_path(graph: &StepGraph) -> f64 {
    let mut finish: BTreeMap<StepId, f64> = BTreeMap::new();
    for step in graph.ordered() {
        let id = step.id();
        let start = graph
            .dependencies(&id)
            .iter()
            .map(|d| finish[d])
            .fold(0.0, f64::max);
        finish.insert(id, start + step_seconds(step, graph));
    }
    finish.values().cloned().fold(0.0, f64::max)
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

fn gt(args: &[&str]) -> std::process::Output {
    let out = Command::new(GT).args(args).output().expect("run gt");
    if !out.status.success() && args.first() != Some(&"apply") {
        panic!(
            "gt {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

struct Case {
    name: String,
    topology: PathBuf,
    parallelism: usize,
}

fn main() {
    // cargo bench passes --bench; cargo test --benches runs us with no filter: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let speed: f64 = std::env::var("GT_BENCH_SPEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let transport = std::env::var("GT_BENCH_TRANSPORT").unwrap_or_else(|_| "local".into());
    let cases = std::env::var("GT_BENCH_CASES").unwrap_or_else(|_| "goldentooth,100".into());
    let work = tempfile::tempdir().expect("temp dir");
    // Labs bind fixed loopback addresses: one at a time, as the lab tests do.
    let lock = std::fs::File::create(std::env::temp_dir().join("gt-lab-tests.lock")).unwrap();
    // SAFETY: flock on a file we own; released when it is closed.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    println!(
        "gt apply from empty vs the DAG's critical path (lab speed {speed}, {transport} transport)"
    );
    for case in cases.split(',') {
        let c = match case.trim() {
            "goldentooth" => Case {
                name: "goldentooth (3 + 9)".into(),
                topology: Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
                parallelism: 10,
            },
            n => {
                let workers: usize = n.parse().expect("a case is goldentooth or a worker count");
                let p = work.path().join(format!("bench-{workers}.toml"));
                std::fs::write(&p, topology(workers)).unwrap();
                Case {
                    name: format!("3 + {workers} workers"),
                    topology: p,
                    parallelism: workers + 3,
                }
            }
        };
        let spec = gt::spec::load_file(&c.topology).expect("topology loads");
        let plan = bootstrap_plan(&spec).expect("plans");
        let cp = critical_path(&plan.graph) * speed;
        let dir = work.path().join("lab");
        let dir_s = dir.to_str().unwrap();
        gt(&[
            "lab",
            "up",
            "--dir",
            dir_s,
            "--from",
            c.topology.to_str().unwrap(),
            "--speed",
            &speed.to_string(),
            "--transport",
            &transport,
            "--hosts",
            "prepared",
        ]);
        let config = dir.join("cluster.toml");
        let started = Instant::now();
        let out = gt(&[
            "--config",
            config.to_str().unwrap(),
            "apply",
            "--auto-approve",
            "--parallelism",
            &c.parallelism.to_string(),
        ]);
        let wall = started.elapsed().as_secs_f64();
        let ok = out.status.success();
        let recap = String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find(|l| l.starts_with("Apply "))
            .unwrap_or("(no recap line)")
            .to_string();
        gt(&["lab", "down", "--dir", dir_s]);
        println!(
            "{:<22} {} steps  critical path {:>7.1} s  apply {:>7.1} s  ratio {:.3}{}\n    {recap}",
            c.name,
            plan.graph.len(),
            cp,
            wall,
            wall / cp,
            if ok { "" } else { "  (APPLY FAILED)" },
        );
    }
    drop(lock);
}
