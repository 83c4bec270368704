//! parse + validate + plan, for the 500-worker example and a 5,000-node
//! cluster generated in memory. Goal: 5,000 nodes in ≤ 50 ms and
//! ≤ 100 MB. Then `gt drift`'s report and its three renderings for a
//! cluster with 5,000 and 50,000 Nodes not in the file: linear (50,000 took
//! 70 s when drift counted each node's items by scanning them all).
//! And the plan of an upgrade of every node of 500 and 5,000: linear too.
//! Run: `cargo bench --bench plan`. Prints medians of repeated runs, each
//! part of `gt plan --facts` on its own (parse, validate, facts JSON, diff,
//! render), and the peak resident memory of a child process that plans
//! 5,000 nodes; compare figures from one run.

use gt::facts::{HostFacts, NodeFacts, Observed, ReadyStatus};
use gt::plan::{plan, PlanOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// The same shape as examples/generate-large.py.
fn generate(workers: usize) -> String {
    let mut s = format!(
        "[cluster]\nname = \"large-{workers}\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.8.0.10:6443\"\n\
         pod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\n\n[load_balancer]\nname = \"lb\"\n\
         address = \"10.8.0.10\"\n\n[defaults]\narch = \"amd64\"\n\n"
    );
    for i in 1..=3 {
        s += &format!(
            "[nodes.cp{i}]\nrole = \"control-plane\"\naddress = \"10.8.0.{}\"\nlabels = {{ \"example.org/rack\" = \"r{i}\" }}\n\n",
            10 + i
        );
    }
    for i in 0..workers {
        let a = 256 + i;
        s += &format!(
            "[nodes.w{i:05}]\nrole = \"worker\"\naddress = \"10.8.{}.{}\"\narch = \"{}\"\nlabels = {{ \"example.org/rack\" = \"r{}\", \"example.org/pool\" = \"{}\" }}\n",
            a / 256,
            a % 256,
            if i % 2 == 1 { "arm64" } else { "amd64" },
            i % 40,
            if i % 10 == 0 { "gpu" } else { "general" }
        );
        if i % 10 == 0 {
            s += "taints = [\"example.org/gpu=true:NoSchedule\"]\n";
        }
        s += "\n";
    }
    s
}

/// A converged observation with 1% of the nodes drifted, so the plan has work.
fn observed(spec: &gt::spec::Spec) -> Observed {
    let mut o = Observed::empty();
    o.cluster.observed_via = Some("cp1".into());
    o.cluster.ca_pin = Some(format!("sha256:{}", "ab".repeat(32)));
    o.cluster.api.ready = true;
    // kubeadm-config's record, which every observation since upgrades reads
    // (without it the plan falls back to looking into every Node's labels).
    o.cluster.kubernetes_version = Some("v1.32.4".into());
    for (i, n) in spec.nodes.iter().enumerate() {
        o.hosts.insert(
            n.name.to_string(),
            HostFacts {
                arch: Some(n.arch.to_string()),
                kubelet_conf: true,
                kubelet_active: true,
                ca_pin: o.cluster.ca_pin.clone(),
                ..Default::default()
            },
        );
        let mut labels: std::collections::BTreeMap<String, String> = n
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if i % 100 == 7 {
            labels.insert("example.org/rack".into(), "moved".into());
        }
        if n.is_control_plane() {
            labels.insert(
                "node-role.kubernetes.io/control-plane".into(),
                String::new(),
            );
        }
        o.cluster.nodes.insert(
            n.name.to_string(),
            NodeFacts {
                labels: labels.into(),
                taints: n
                    .taints
                    .iter()
                    .map(|t| gt::facts::ObservedTaint {
                        key: t.key.clone(),
                        value: t.value.clone(),
                        effect: t.effect.as_str().into(),
                    })
                    .collect(),
                ready: ReadyStatus::True,
                kubelet_version: Some("v1.32.4".into()),
                arch: Some(n.arch.to_string()),
                ..Default::default()
            },
        );
    }
    o
}

/// What parse + validate + plan of 5,000 nodes may take.
const GOAL_5000: Duration = Duration::from_millis(50);
/// The peak resident memory of a process that reads, plans and renders them.
const GOAL_RSS_MIB: f64 = 100.0;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The parts of `gt plan --facts FILE`, each timed on its own.
#[derive(Default)]
struct Parts {
    parse: Vec<Duration>,
    /// toml_edit's parse of the same text: what reads any TOML that is not
    /// plain (and what read every file before the plain parser).
    toml_edit: Vec<Duration>,
    load: Vec<Duration>,
    facts: Vec<Duration>,
    diff: Vec<Duration>,
    render: Vec<Duration>,
    converged: Vec<Duration>,
    bootstrap: Vec<Duration>,
}

/// Everything `gt plan --facts FILE` does with a file's text and the facts'
/// JSON: parse, validate, read the facts, plan, render text and JSON.
fn plan_once(src: &str, facts_json: &str, parts: &mut Parts) {
    let path = Path::new("bench.toml");
    let t = Instant::now();
    std::hint::black_box(gt::spec::parse_only(src));
    parts.parse.push(t.elapsed());
    let t = Instant::now();
    let spec = gt::spec::load_str(src, path).expect("valid");
    let t_load = t.elapsed();
    let t_facts = Instant::now();
    let obs = Observed::from_json(facts_json).expect("facts");
    parts.facts.push(t_facts.elapsed());
    let t_diff = Instant::now();
    let p = plan(&spec, &obs, &PlanOptions::default()).expect("plan");
    let t_plan = t_diff.elapsed();
    let t_render = Instant::now();
    std::hint::black_box(gt::render::plan_text(
        &p,
        gt::render::Style { color: false },
    ));
    std::hint::black_box(gt::render::plan_json(&p));
    parts.render.push(t_render.elapsed());
    parts.load.push(t_load);
    parts.diff.push(t_plan);
    parts.converged.push(t_load + t_plan);
}

/// One size's medians: parse + validate + plan (1% drift), and the parts
/// of it whose growth from 500 to 5,000 nodes the linear check shows.
#[derive(Clone, Copy)]
struct Figures {
    whole: Duration,
    parse: Duration,
    validate: Duration,
    diff: Duration,
}

/// Returns the medians of parse + validate + plan (1% drift) and of its
/// parts, and prints each part's median.
fn bench(name: &str, src: &str, runs: usize) -> Figures {
    let path = Path::new("bench.toml");
    let spec = gt::spec::load_str(src, path).expect("valid");
    let facts_json = observed(&spec).to_json();
    let empty = {
        let mut o = Observed::empty();
        for n in &spec.nodes {
            o.hosts.insert(n.name.to_string(), HostFacts::default());
        }
        o
    };
    let mut parts = Parts::default();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(toml_edit::Document::parse(src).expect("toml"));
        parts.toml_edit.push(t.elapsed());
        plan_once(src, &facts_json, &mut parts);
        let t = Instant::now();
        let spec = gt::spec::load_str(src, path).expect("valid");
        let p = plan(&spec, &empty, &PlanOptions::default()).expect("plan");
        std::hint::black_box(&p);
        parts.bootstrap.push(t.elapsed());
    }
    let converged = median(parts.converged);
    let diff = median(parts.diff.clone());
    let (parse, load) = (median(parts.parse.clone()), median(parts.load.clone()));
    let validate = median(
        parts
            .load
            .iter()
            .zip(&parts.parse)
            .map(|(l, p)| l.saturating_sub(*p))
            .collect(),
    );
    println!(
        "{name:>12}: parse+validate {load:>8.2?} | +plan (1% drift) {converged:>8.2?} | +plan (full bootstrap) {:>8.2?} | {} nodes, {} bytes, median of {runs}",
        median(parts.bootstrap),
        spec.nodes.len(),
        src.len()
    );
    println!(
        "{name:>12}: parts: parse {parse:>8.2?} (toml_edit's parse {:.2?}, ×{:.2}) | validate {:>8.2?} | facts JSON {:>8.2?} | diff {:>8.2?} | render text+JSON {:>8.2?}",
        median(parts.toml_edit.clone()),
        parse.as_secs_f64() / median(parts.toml_edit).as_secs_f64(),
        load.saturating_sub(parse),
        median(parts.facts),
        median(parts.diff),
        median(parts.render),
    );
    Figures {
        whole: converged,
        parse,
        validate,
        diff,
    }
}

/// In a child process (this bench run again with `GT_BENCH_PLAN_RSS=N`):
/// one `gt plan --facts` of N nodes, then its peak resident memory.
fn child_peak_rss(workers: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .env("GT_BENCH_PLAN_RSS", workers.to_string())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS MiB: ")?.trim().parse().ok())
}

/// The child's side of `child_peak_rss`.
fn plan_for_rss(workers: usize) {
    let src = generate(workers);
    let facts_json = {
        let spec = gt::spec::load_str(&src, Path::new("bench.toml")).expect("valid");
        observed(&spec).to_json()
    };
    // What `gt plan --facts` holds: the file's text and the facts' JSON,
    // not the bench's own copies of the spec.
    let before = peak_rss_mib();
    plan_once(&src, &facts_json, &mut Parts::default());
    println!("peak RSS MiB: {:.1}", peak_rss_mib().max(before));
}

/// `GT_BENCH_PLAN_PROFILE=N`: `gt plan --facts` of N workers and nothing
/// else, for a profiler (`perf record`, `valgrind --tool=cachegrind`) to
/// tell one size's parts apart. As many rounds as make 500,000 nodes in
/// all, whatever N: a part's total is then the same at 500 and at 5,000
/// nodes when its cost is linear, and ×2 when it grows ×20.
fn plan_for_profile(workers: usize) {
    let src = generate(workers);
    let facts_json = {
        let spec = gt::spec::load_str(&src, Path::new("bench.toml")).expect("valid");
        observed(&spec).to_json()
    };
    let mut parts = Parts::default();
    for _ in 0..profile_rounds(workers) {
        plan_once(&src, &facts_json, &mut parts);
    }
    println!(
        "{} rounds of {workers} workers: load {:.2?}, diff {:.2?} (medians)",
        parts.load.len(),
        median(parts.load),
        median(parts.diff)
    );
}

/// The file and facts of an upgrade of every node one patch up (the file
/// at 1.32.9, the cluster at 1.32.4), the facts as `gt plan --facts` reads
/// them (from their JSON, not the bench's own copies).
fn upgrade_inputs(workers: usize) -> (gt::spec::Spec, Observed) {
    let src = generate(workers).replace(
        "kubernetes_version = \"1.32\"",
        "kubernetes_version = \"1.32.9\"",
    );
    let spec = gt::spec::load_str(&src, Path::new("bench.toml")).expect("valid");
    let mut obs = observed(&spec);
    obs.cluster.kubernetes_version = Some("v1.32.4".into());
    for h in obs.hosts.values_mut() {
        h.kubeadm_version = Some("v1.32.4".into());
    }
    let obs = Observed::from_json(&obs.to_json()).expect("facts");
    (spec, obs)
}

/// As many rounds of `workers` as make 500,000 nodes in all, or
/// `GT_BENCH_PLAN_PROFILE_NODES` (fewer: a quicker profile).
fn profile_rounds(workers: usize) -> usize {
    let nodes = std::env::var("GT_BENCH_PLAN_PROFILE_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500_000);
    (nodes / (workers + 3)).max(1)
}

/// `GT_BENCH_PLAN_PROFILE_UPGRADE=N`: the plan of every node's upgrade of
/// N workers and nothing else, for a profiler, rounds as `profile_rounds`.
fn upgrade_for_profile(workers: usize) {
    let (spec, obs) = upgrade_inputs(workers);
    let mut times = vec![];
    for _ in 0..profile_rounds(workers) {
        let t = Instant::now();
        let p = plan(&spec, &obs, &PlanOptions::default()).expect("plan");
        times.push(t.elapsed());
        std::hint::black_box(p);
    }
    println!(
        "{} rounds of {workers} workers' upgrade: {:.2?} (median)",
        times.len(),
        median(times)
    );
}

/// The plan of an upgrade of every node one patch up: every node has a
/// step and a change, so what the planner does per node must not scan the
/// others. Returns the median.
fn bench_upgrade(workers: usize, runs: usize) -> Duration {
    let (spec, obs) = upgrade_inputs(workers);
    let mut times = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let p = plan(&spec, &obs, &PlanOptions::default()).expect("plan");
        times.push(t.elapsed());
        assert!(p.graph.len() > spec.nodes.len(), "every node upgrades");
    }
    median(times)
}

/// `gt drift --facts` against a cluster whose Nodes are mostly not in the
/// file: the 5,000-node spec's first `in_file` nodes, `foreign` Nodes more.
/// Drift, its text, JSON and textfile must stay linear in the Nodes.
fn bench_drift(name: &str, in_file: usize, foreign: usize, runs: usize) {
    let path = Path::new("bench.toml");
    let spec = gt::spec::load_str(&generate(in_file.saturating_sub(3)), path).expect("valid");
    let mut obs = observed(&spec);
    for i in 0..foreign {
        obs.cluster.nodes.insert(
            format!("foreign{i:06}"),
            NodeFacts {
                ready: if i % 3 == 0 {
                    ReadyStatus::False
                } else {
                    ReadyStatus::True
                },
                kubelet_version: Some("v1.32.4".into()),
                ..Default::default()
            },
        );
    }
    let mut times = vec![];
    let mut items = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let report = gt::plan::drift::drift(&spec, &obs).expect("drift");
        let check = gt::render::drift::DriftCheck {
            cluster: Some(report.cluster.clone()),
            checked_at: std::time::SystemTime::now(),
            duration: Duration::ZERO,
            outcome: Ok(report),
        };
        let r = check.outcome.as_ref().unwrap();
        std::hint::black_box(gt::render::drift::drift_text(r, true));
        std::hint::black_box(gt::render::drift::drift_json(&check));
        std::hint::black_box(gt::render::drift::drift_prometheus(&check));
        times.push(t.elapsed());
        items = r.items.len();
    }
    println!(
        "{name:>12}: drift + text + JSON + textfile {:>8.2?} | {} nodes in the file, {foreign} Nodes not in it, {items} items, median of {runs}",
        median(times),
        spec.nodes.len(),
    );
}

/// The figure `name`'s line of another build of this bench printed after
/// `what` (`+plan (1% drift)`), e.g. `71.23ms`.
fn figure_of(output: &str, name: &str, what: &str) -> Option<Duration> {
    let line = output.lines().find(|l| l.trim_start().starts_with(name))?;
    let after = line.split(what).nth(1)?.trim_start();
    let text = after.split_whitespace().next()?.trim_end_matches(',');
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" | "us" => n / 1e6,
        "ns" => n / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// With `GT_BENCH_PLAN_BASELINE` (this bench built from another ref, which
/// `scripts/bench.sh --baseline REF` builds): that build's 500- and
/// 5,000-node figures, one run of it between each of this build's, medians:
/// parse + validate + plan, then the upgrade's plan (`None` from a baseline
/// that printed no upgrade). `ours`: one round of this build's four.
fn baseline_rounds(
    runs: usize,
    mut ours: impl FnMut() -> [Duration; 4],
) -> Option<[(Duration, Duration); 2]> {
    let path = std::env::var_os("GT_BENCH_PLAN_BASELINE").filter(|p| !p.is_empty())?;
    let (mut before, mut after) = ((vec![], vec![]), (vec![], vec![]));
    let (mut up_before, mut up_after) = ((vec![], vec![]), (vec![], vec![]));
    for _ in 0..runs {
        // Without the variable: a baseline that reads it too would run
        // itself between its own rounds, and so on without end.
        let out = std::process::Command::new(&path)
            .arg("--bench")
            .env_remove("GT_BENCH_PLAN_BASELINE")
            .output()
            .unwrap_or_else(|e| panic!("run the baseline {}: {e}", path.to_string_lossy()));
        let text = String::from_utf8_lossy(&out.stdout);
        let figure = |name| {
            figure_of(&text, name, "+plan (1% drift)").unwrap_or_else(|| {
                panic!(
                    "no `{name}` figure in the baseline's output ({}): {text}\nits stderr: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        };
        before.0.push(figure("500 workers"));
        before.1.push(figure("5,000 nodes"));
        let upgrade = |nodes| figure_of(&text, "upgrade", nodes);
        if let (Some(u500), Some(u5000)) = (upgrade("500 nodes"), upgrade("5,000 nodes")) {
            up_before.0.push(u500);
            up_before.1.push(u5000);
        }
        let [t500, t5000, u500, u5000] = ours();
        after.0.push(t500);
        after.1.push(t5000);
        up_after.0.push(u500);
        up_after.1.push(u5000);
    }
    if up_before.0.len() == runs {
        let (small, big) = (median(up_after.0), median(up_after.1));
        let (small_before, big_before) = (median(up_before.0), median(up_before.1));
        println!(
            "{:>12}: plan of every node's upgrade: 500 nodes {small:.2?} (before {small_before:.2?}), 5,000 nodes {big:.2?} (before {big_before:.2?}, after/before {:.2}); 500 → 5,000 ×{:.1} the time (before ×{:.1}; linear: ≤ 10), medians of {runs} rounds alternating with the baseline",
            "upgrade",
            times(big, big_before),
            times(big, small),
            times(big_before, small_before),
        );
    }
    Some([
        (median(after.0), median(before.0)),
        (median(after.1), median(before.1)),
    ])
}

/// `big` ÷ `small`: how many times the time.
fn times(big: Duration, small: Duration) -> f64 {
    big.as_secs_f64() / small.as_secs_f64()
}

fn main() {
    if let Some(n) = std::env::var("GT_BENCH_PLAN_RSS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return plan_for_rss(n);
    }
    if let Some(n) = std::env::var("GT_BENCH_PLAN_PROFILE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return plan_for_profile(n);
    }
    if let Some(n) = std::env::var("GT_BENCH_PLAN_PROFILE_UPGRADE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return upgrade_for_profile(n);
    }
    // `cargo test --benches` runs this with --bench absent: keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 1 } else { 15 };
    let large500 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/large-500.toml"
    ))
    .expect("examples/large-500.toml");
    let large5000 = generate(4997);
    // Every round's figures: the goal and the linear check are their
    // medians, not one round's (a shared machine's load comes and goes).
    let (mut all500, mut all5000) = (vec![bench("500 workers", &large500, runs)], vec![]);
    all5000.push(bench("5,000 nodes", &large5000, runs));
    // Each round's upgrade plans of 500 and 5,000 nodes.
    let mut upgrades = vec![];
    if !quick {
        let rounds = baseline_rounds(3, || {
            let (t500, t5000) = (
                bench("500 workers", &large500, runs),
                bench("5,000 nodes", &large5000, runs),
            );
            all500.push(t500);
            all5000.push(t5000);
            let upgrade = (bench_upgrade(497, runs), bench_upgrade(4997, runs));
            upgrades.push(upgrade);
            [t500.whole, t5000.whole, upgrade.0, upgrade.1]
        });
        if let Some([small, big]) = rounds {
            for ((after, before), name) in
                [small, big].into_iter().zip(["500 workers", "5,000 nodes"])
            {
                println!(
                    "{name:>12}: parse + validate + plan (1% drift) {after:.2?} (before {before:.2?}, after/before {:.2}), medians of 3 rounds alternating with the baseline",
                    after.as_secs_f64() / before.as_secs_f64()
                );
            }
            println!(
                "{:>12}: 500 → 5,000 nodes ×{:.1} the time (before ×{:.1}; linear: ≤ 10), from the medians above",
                "linear",
                times(big.0, small.0),
                times(big.1, small.1),
            );
        }
    }
    let medians =
        |all: &[Figures], part: fn(&Figures) -> Duration| median(all.iter().map(part).collect());
    let growth =
        |part: fn(&Figures) -> Duration| times(medians(&all5000, part), medians(&all500, part));
    let t5000 = medians(&all5000, |f| f.whole);
    println!(
        "{:>12}: parse + validate + plan of 5,000 nodes {t5000:.2?}, goal ≤ {GOAL_5000:?}, ratio to goal {:.2}; \
         500 → 5,000 nodes ×{:.1} the time for ×10 the nodes (linear: ≤ 10); by part: parse ×{:.1}, validate ×{:.1}, diff ×{:.1}; medians of {} rounds",
        "goal",
        t5000.as_secs_f64() / GOAL_5000.as_secs_f64(),
        growth(|f| f.whole),
        growth(|f| f.parse),
        growth(|f| f.validate),
        growth(|f| f.diff),
        all5000.len(),
    );
    match child_peak_rss(4997) {
        Some(rss) => println!(
            "{:>12}: peak RSS of a process planning 5,000 nodes {rss:.1} MiB, goal ≤ {GOAL_RSS_MIB} MiB, ratio to goal {:.2}",
            "memory",
            rss / GOAL_RSS_MIB
        ),
        None => println!("{:>12}: the child measuring peak RSS printed nothing", "memory"),
    }
    upgrades.push((bench_upgrade(497, runs), bench_upgrade(4997, runs)));
    let u500 = median(upgrades.iter().map(|u| u.0).collect());
    let u5000 = median(upgrades.iter().map(|u| u.1).collect());
    println!(
        "{:>12}: plan of every node's upgrade: 500 nodes {u500:.2?}, 5,000 nodes {u5000:.2?}, ×{:.1} the time for ×10 the nodes (linear: ≤ 10), medians of {} rounds of {runs}",
        "upgrade",
        u5000.as_secs_f64() / u500.as_secs_f64(),
        upgrades.len(),
    );
    bench_drift("drift 5,000", 3, 5_000, runs);
    bench_drift("drift 50,000", 3, 50_000, runs.min(5));
}
