//! Saved plans: `gt plan --out FILE` writes one, `gt apply FILE` reads it back,
//! re-observes and refuses it when anything it was made from has moved.
//!
//! What "moved" means is pinned by three things in the file: the sha256 of
//! cluster.toml's bytes, the observation reduced to deterministic lines (and
//! their fingerprint), and the plan's document as `gt plan --json` prints it.
//! The observation lines hold only what the planner reads, and nothing that
//! varies between two looks at an unchanged cluster (timings, condition
//! messages, which control plane answered, why a host did not answer), so
//! a plan goes stale because the cluster changed, never because time passed.
//! Plans hold no secrets, so neither does the file.

use super::{Plan, PlanDocument, PlanOptions};
use crate::facts::{HostFacts, NodeFacts, Observed, ReadyStatus};
use crate::spec::Spec;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `"format"` of every plan file: tells a gt plan from any other JSON.
pub const PLAN_FILE_FORMAT: &str = "gt-plan";
/// Bumped on incompatible changes of the plan file.
pub const PLAN_FILE_FORMAT_VERSION: u32 = 1;
/// Changed lines shown per section of a refusal; the rest are counted.
const MAX_DIFF_LINES: usize = 20;

/// A plan as `gt plan --out FILE` saves it (README "Saved plans").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub format_version: u32,
    /// The gt that made the plan.
    pub gt_version: String,
    /// When the plan was made, RFC 3339 UTC.
    pub created: String,
    pub cluster: String,
    pub config: ConfigRef,
    pub options: SavedOptions,
    /// `sha256:<hex>` of `observation`, one line after another, each ending in `\n`.
    pub fingerprint: String,
    /// What the plan depends on, as `observation_lines` writes it.
    pub observation: Vec<String>,
    /// Exactly what `gt plan --json` prints for this plan.
    #[serde(serialize_with = "sorted_keys")]
    pub plan: PlanDocument,
    /// The file it was read from (for messages); not part of the format.
    #[serde(skip)]
    source: Option<PathBuf>,
}

/// The cluster.toml a plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRef {
    /// Absolute.
    pub path: PathBuf,
    /// `sha256:<hex>` of its bytes.
    pub sha256: String,
}

/// The consent flags the plan was made with; `gt apply FILE` re-plans with these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    pub prune: bool,
    /// Sorted.
    pub replace: Vec<String>,
    /// Planned without the etcd backup before risky steps (absent in older files: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_backup: bool,
}

/// A plan file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot write the plan file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: crate::fsutil::WriteError,
    },
    #[error("cannot read the plan file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}, the config the saved plan {} was made from: {source}", config.display(), plan.display())]
    ReadConfig {
        plan: PathBuf,
        config: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not a gt plan file: {message}; make one with `gt plan --out {}`", path.display(), path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: not a gt plan file (it lacks \"format\": \"{PLAN_FILE_FORMAT}\"); make one with `gt plan --out {}`", path.display(), path.display())]
    NotAPlan { path: PathBuf },
    #[error("{}: plan file format_version {found} is not the {PLAN_FILE_FORMAT_VERSION} this gt reads; make the plan again with this gt: `gt plan --out {}`", path.display(), path.display())]
    Version { path: PathBuf, found: String },
    #[error("{}: damaged plan file: {why}; make the plan again with `gt plan --out {}`", path.display(), path.display())]
    Damaged { path: PathBuf, why: String },
}

/// Why a saved plan may not be applied. Display is the whole message a user reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Stale {
    /// The plan file, when the plan was read from one.
    pub plan_file: Option<PathBuf>,
    /// cluster.toml's path when its bytes differ from those planned.
    pub config_changed: Option<PathBuf>,
    /// Observation lines that changed: `-` planned, `+` now, in order.
    pub observation: Vec<DiffLine>,
    /// Lines of the plan's changes and steps that differ: `-` saved, `+` fresh.
    pub plan: Vec<DiffLine>,
}

/// One changed line of a refusal's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    /// Only in the saved plan.
    Removed(String),
    /// Only now.
    Added(String),
}

impl std::fmt::Display for DiffLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffLine::Removed(l) => write!(f, "- {l}"),
            DiffLine::Added(l) => write!(f, "+ {l}"),
        }
    }
}

impl Stale {
    fn message(&self) -> String {
        let mut out = match &self.plan_file {
            Some(p) => format!("the saved plan {} is stale:\n", p.display()),
            None => "the saved plan is stale:\n".to_string(),
        };
        if let Some(p) = &self.config_changed {
            let _ = writeln!(
                out,
                "  cluster.toml changed since the plan was made ({})",
                p.display()
            );
        }
        if !self.observation.is_empty() {
            out.push_str("  the observation changed since the plan was made:\n");
            diff_block(&mut out, &self.observation);
        }
        if !self.plan.is_empty() {
            out.push_str("  a fresh plan's changes differ from the saved plan's:\n");
            diff_block(&mut out, &self.plan);
        }
        let file = self
            .plan_file
            .as_deref()
            .map(|p| crate::transport::shell_quote(&p.display().to_string()))
            .unwrap_or_else(|| "FILE".into());
        let _ = write!(
            out,
            "run gt plan --out {file} again, review it, then gt apply {file}"
        );
        out
    }
}

fn diff_block(out: &mut String, lines: &[DiffLine]) {
    for l in lines.iter().take(MAX_DIFF_LINES) {
        let _ = writeln!(out, "    {l}");
    }
    if lines.len() > MAX_DIFF_LINES {
        let _ = writeln!(out, "    … and {} more", lines.len() - MAX_DIFF_LINES);
    }
}

impl SavedPlan {
    /// `config_bytes`: cluster.toml's bytes as read for this plan.
    pub fn new(
        spec: &Spec,
        config_bytes: &[u8],
        observed: &Observed,
        opts: &PlanOptions,
        plan: &Plan,
    ) -> SavedPlan {
        let observation = observation_lines(observed);
        SavedPlan {
            format: PLAN_FILE_FORMAT.into(),
            format_version: PLAN_FILE_FORMAT_VERSION,
            gt_version: env!("CARGO_PKG_VERSION").into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            cluster: spec.cluster.name.clone(),
            config: ConfigRef {
                path: absolute(&spec.source),
                sha256: sha256(config_bytes),
            },
            options: SavedOptions {
                prune: opts.prune,
                replace: opts.replace.iter().cloned().collect(),
                no_backup: opts.no_backup,
            },
            fingerprint: fingerprint(&observation),
            observation,
            plan: plan.document(),
            source: None,
        }
    }

    /// Writes the file atomically (a temporary file beside it, then a
    /// rename), readable by its owner only from the first byte on; never
    /// over one of `inputs` (the config the plan was made from, ...).
    pub fn write(
        &self,
        path: &Path,
        inputs: &[crate::fsutil::Input<'_>],
    ) -> Result<(), SavedPlanError> {
        let err = |source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).expect("a plan file serialises");
        text.push('\n');
        crate::fsutil::write_atomic(path, text.as_bytes(), 0o600, ".gt-plan-", inputs).map_err(err)
    }

    pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let p = || path.to_path_buf();
        let text = crate::fsutil::read_regular_string(path, crate::fsutil::MAX_PLAN_BYTES)
            .map_err(|source| SavedPlanError::Read { path: p(), source })?;
        let syntax = |e: serde_json::Error| SavedPlanError::Syntax {
            path: p(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        // Look at the header first: "not a plan" and "another version" are
        // better news than whichever field happens to mismatch first.
        let head: Value = serde_json::from_str(&text).map_err(syntax)?;
        if head.get("format").and_then(Value::as_str) != Some(PLAN_FILE_FORMAT) {
            return Err(SavedPlanError::NotAPlan { path: p() });
        }
        match head.get("format_version") {
            Some(v) if v.as_u64() == Some(u64::from(PLAN_FILE_FORMAT_VERSION)) => {}
            Some(v) => {
                return Err(SavedPlanError::Version {
                    path: p(),
                    found: v.to_string(),
                })
            }
            None => {
                return Err(SavedPlanError::Version {
                    path: p(),
                    found: "(none)".into(),
                })
            }
        }
        let mut saved: SavedPlan = serde_json::from_str(&text).map_err(syntax)?;
        if fingerprint(&saved.observation) != saved.fingerprint {
            return Err(SavedPlanError::Damaged {
                path: p(),
                why: "its fingerprint does not match its observation (was it edited?)".into(),
            });
        }
        saved.source = Some(p());
        Ok(saved)
    }

    /// prune/replace as planned.
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.options.prune,
            replace: self.options.replace.iter().cloned().collect(),
            no_backup: self.options.no_backup,
        }
    }

    /// The cluster.toml it was made from (absolute).
    pub fn config_path(&self) -> &Path {
        &self.config.path
    }

    /// The file it was read from, if it was.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Refuses the plan when `config_bytes`, read from `config_path()`, are
    /// not those it was made from. Called before anything else looks at
    /// them: a plan file is easily edited to name another file, and nothing
    /// of that file may be parsed or shown.
    pub fn check_config(&self, config_bytes: &[u8]) -> Result<(), Stale> {
        if sha256(config_bytes) == self.config.sha256 {
            return Ok(());
        }
        Err(Stale {
            plan_file: self.source.clone(),
            config_changed: Some(self.config.path.clone()),
            observation: vec![],
            plan: vec![],
        })
    }

    /// Refuses a plan whose cluster.toml, observation or resulting plan
    /// differ from now. `fresh` is the plan of `observed` with `options()`.
    pub fn check_fresh(
        &self,
        config_bytes: &[u8],
        observed: &Observed,
        fresh: &Plan,
    ) -> Result<(), Stale> {
        let config_changed =
            (sha256(config_bytes) != self.config.sha256).then(|| self.config.path.clone());
        let now = observation_lines(observed);
        let observation = if fingerprint(&now) == self.fingerprint {
            vec![]
        } else {
            changed_lines(&self.observation, &now)
        };
        let plan = plan_difference(&self.plan, &fresh.document());
        if config_changed.is_none() && observation.is_empty() && plan.is_empty() {
            return Ok(());
        }
        Err(Stale {
            plan_file: self.source.clone(),
            config_changed,
            observation,
            plan,
        })
    }
}

fn absolute(p: &Path) -> PathBuf {
    p.canonicalize()
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The fingerprint of observation lines.
pub fn fingerprint(lines: &[String]) -> String {
    let mut all = String::new();
    for l in lines {
        all.push_str(l);
        all.push('\n');
    }
    sha256(all.as_bytes())
}

/// The observation reduced to what the planner reads, one fact group a
/// line, sorted by host and node name. Deterministic: two observations of an
/// unchanged cluster give the same lines.
pub fn observation_lines(observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    for (name, h) in &observed.hosts {
        host_lines(&mut out, name, h);
    }
    let c = &observed.cluster;
    let api = if c.api.ready {
        "ready".to_string()
    } else if c.api.failed_checks.is_empty() {
        "not-ready".to_string()
    } else {
        let mut checks = c.api.failed_checks.clone();
        checks.sort();
        format!("not-ready({})", checks.join(","))
    };
    out.push(format!(
        "cluster: exists={} ca={} api={api}",
        c.exists(),
        opt(c.ca_pin.as_deref())
    ));
    // Lines that only exist where an upgrade reads them keep the
    // fingerprints of older observations as they were.
    if let Some(v) = &c.kubernetes_version {
        out.push(format!("cluster: kubernetes_version={v}"));
    }
    for (name, n) in &c.nodes {
        node_lines(&mut out, name, n);
    }
    out
}

fn opt(v: Option<&str>) -> &str {
    v.unwrap_or("none")
}

fn host_lines(out: &mut Vec<String>, name: &str, h: &HostFacts) {
    if !h.is_reachable() {
        // Why it did not answer (and after how long) varies from look to look.
        out.push(format!("host {name}: unreachable"));
        return;
    }
    out.push(format!(
        "host {name}: reachable arch={} kubeadm={} kubelet={} kubelet_active={}",
        opt(h.arch.as_deref()),
        opt(h.kubeadm_version.as_deref()),
        opt(h.kubelet_version.as_deref()),
        h.kubelet_active
    ));
    let mut files: Vec<String> = Vec::new();
    if h.admin_conf {
        files.push("admin.conf".into());
    }
    if h.kubelet_conf {
        files.push("kubelet.conf".into());
    }
    files.extend(h.manifests.iter().map(|m| format!("manifests/{m}")));
    out.push(format!(
        "host {name}: files={} kubelet_server={} ca={}",
        if files.is_empty() {
            "none".to_string()
        } else {
            files.join(",")
        },
        opt(h.kubelet_server.as_deref()),
        opt(h.ca_pin.as_deref())
    ));
    if !h.static_pods.is_empty() {
        let pods: Vec<String> = h
            .static_pods
            .iter()
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        out.push(format!("host {name}: static_pods {}", pods.join(",")));
    }
    if let Some(software) = &h.software {
        out.extend(software.observation_lines(name));
    }
}

fn node_lines(out: &mut Vec<String>, name: &str, n: &NodeFacts) {
    let ready = match n.ready {
        ReadyStatus::True => "True",
        ReadyStatus::False => "False",
        ReadyStatus::Unknown => "Unknown",
    };
    // The condition's message carries timestamps; the planner only asks
    // whether it says "no CNI yet".
    let cni = if n.waits_for_cni() {
        " (waiting for CNI)"
    } else {
        ""
    };
    let roles: Vec<&str> = n
        .labels
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    out.push(format!(
        "node {name}: Ready={ready}{cni} roles={} kubelet={} arch={} unschedulable={}",
        if roles.is_empty() {
            "none".to_string()
        } else {
            roles.join(",")
        },
        opt(n.kubelet_version.as_deref()),
        opt(n.arch.as_deref()),
        n.unschedulable
    ));
    let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.push(format!("node {name}: labels {}", list(&labels)));
    let mut taints: Vec<String> = n.taints.iter().map(ToString::to_string).collect();
    taints.sort();
    out.push(format!("node {name}: taints {}", list(&taints)));
    if n.cordoned_by_gt {
        out.push(format!("node {name}: cordoned by gt"));
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(" ")
    }
}

/// The lines only in `before` (`Removed`) or only in `after` (`Added`), in diff order.
fn changed_lines(before: &[String], after: &[String]) -> Vec<DiffLine> {
    use similar::{ChangeTag, TextDiff};
    let b: Vec<&str> = before.iter().map(String::as_str).collect();
    let a: Vec<&str> = after.iter().map(String::as_str).collect();
    TextDiff::from_slices(&b, &a)
        .iter_all_changes()
        .filter_map(|c| match c.tag() {
            ChangeTag::Equal => None,
            ChangeTag::Delete => Some(DiffLine::Removed(c.value().to_string())),
            ChangeTag::Insert => Some(DiffLine::Added(c.value().to_string())),
        })
        .collect()
}

/// The plan as `gt plan --json` lists it: keys sorted.
fn sorted_keys<S: serde::Serializer>(plan: &PlanDocument, s: S) -> Result<S::Ok, S::Error> {
    plan.to_sorted_value().serialize(s)
}

/// What apply would do differently: the changes and steps of two plans.
fn plan_difference(saved: &PlanDocument, fresh: &PlanDocument) -> Vec<DiffLine> {
    if saved.same_work(fresh) {
        return vec![];
    }
    let lines = changed_lines(&saved.work_lines(), &fresh.work_lines());
    if lines.is_empty() {
        // They differ in a detail the summary lines leave out.
        return vec![DiffLine::Added(
            "the changes differ in detail: compare `gt plan --json` with the file's \"plan\""
                .into(),
        )];
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ObservedTaint;
    use std::os::unix::fs::PermissionsExt;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn config_bytes() -> Vec<u8> {
        std::fs::read(root().join("cluster.toml")).unwrap()
    }

    fn goldentooth() -> Spec {
        crate::spec::load_file(&root().join("cluster.toml")).unwrap()
    }

    fn facts(name: &str) -> Observed {
        let p = root()
            .join("tests/fixtures/facts")
            .join(format!("{name}.json"));
        Observed::from_json(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn saved(facts_name: &str, opts: &PlanOptions) -> SavedPlan {
        let spec = goldentooth();
        let obs = facts(facts_name);
        let p = super::super::plan(&spec, &obs, opts).unwrap();
        SavedPlan::new(&spec, &config_bytes(), &obs, opts, &p)
    }

    /// Checks `observed` against `s` as `gt apply FILE` does: re-plan with the file's options.
    fn check(s: &SavedPlan, config: &[u8], observed: &Observed) -> Result<(), Stale> {
        let fresh = super::super::plan(&goldentooth(), observed, &s.options()).unwrap();
        s.check_fresh(config, observed, &fresh)
    }

    fn removed(l: &str) -> DiffLine {
        DiffLine::Removed(l.into())
    }

    #[test]
    fn a_host_fact_that_changed_since_the_plan_refuses_it() {
        let s = saved("host-converged", &PlanOptions::default());
        assert_eq!(check(&s, &config_bytes(), &facts("host-converged")), Ok(()));
        let stale = check(&s, &config_bytes(), &facts("host-drift")).unwrap_err();
        let fenn =
            "host fenn: swap=/var/swap fstab_swap=none dphys=true modules=none persisted=none";
        assert!(stale.observation.contains(&added(fenn)), "{stale:?}");
        assert!(stale
            .observation
            .iter()
            .any(|l| matches!(l, DiffLine::Added(t) if t.starts_with("host fenn: packages=") && t.ends_with("kubelet=1.32.4-1.1"))));
    }
    fn added(l: &str) -> DiffLine {
        DiffLine::Added(l.into())
    }

    #[test]
    fn a_node_that_moved_on_in_an_upgrade_since_the_plan_refuses_it() {
        let spec =
            crate::spec::load_file(&root().join("tests/fixtures/goldentooth-1.33.3.toml")).unwrap();
        let bytes = std::fs::read(root().join("tests/fixtures/goldentooth-1.33.3.toml")).unwrap();
        let opts = PlanOptions::default();
        let obs = facts("upgrade-at-1.32");
        let s = SavedPlan::new(
            &spec,
            &bytes,
            &obs,
            &opts,
            &super::super::plan(&spec, &obs, &opts).unwrap(),
        );
        let check = |o: &Observed| {
            let fresh = super::super::plan(&spec, o, &opts).unwrap();
            s.check_fresh(&bytes, o, &fresh)
        };
        assert_eq!(check(&obs), Ok(()));
        // bettley's control plane went to 1.33.3 behind the plan's back.
        let mut moved = obs.clone();
        moved.cluster.kubernetes_version = Some("v1.33.3".into());
        let pods = &mut moved.hosts.get_mut("bettley").unwrap().static_pods;
        for v in pods.values_mut() {
            *v = "v1.33.3".into();
        }
        let stale = check(&moved).unwrap_err();
        assert!(
            stale
                .observation
                .contains(&added("cluster: kubernetes_version=v1.33.3")),
            "{stale:?}"
        );
        assert!(stale.observation.iter().any(
            |l| matches!(l, DiffLine::Added(t) if t.starts_with("host bettley: static_pods"))
        ));
        assert!(
            stale.plan.iter().any(
                |l| matches!(l, DiffLine::Removed(t) if t.starts_with("node.bettley: update") && t.contains("upgrade apply"))
            ),
            "{stale:?}"
        );
        // A cordon mark is a fact the plan reads too.
        let mut marked = obs.clone();
        marked.cluster.nodes.get_mut("fenn").unwrap().cordoned_by_gt = true;
        let stale = check(&marked).unwrap_err();
        assert!(stale
            .observation
            .contains(&added("node fenn: cordoned by gt")));
    }

    #[test]
    fn a_written_plan_reads_back_identical_and_remembers_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.gtplan");
        let opts = PlanOptions {
            prune: true,
            replace: ["fenn".to_string()].into(),
            no_backup: true,
        };
        let s = saved("control-planes-joined", &opts);
        s.write(&path, &[]).unwrap();
        let back = SavedPlan::read(&path).unwrap();
        assert_eq!(back.source(), Some(path.as_path()));
        assert_eq!(
            SavedPlan {
                source: None,
                ..back.clone()
            },
            s
        );
        assert!(back.options().prune);
        assert_eq!(back.options().replace, opts.replace);
        assert!(back.options().no_backup);
        assert_eq!(
            back.config_path(),
            root().join("cluster.toml").canonicalize().unwrap()
        );
        assert!(back.config_path().is_absolute());
        assert_eq!(
            back.plan,
            super::super::plan(&goldentooth(), &facts("control-planes-joined"), &opts)
                .unwrap()
                .document()
        );
    }

    #[test]
    fn the_file_has_the_documented_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.gtplan");
        saved("empty", &PlanOptions::default())
            .write(&path, &[])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "format",
            "format_version",
            "gt_version",
            "created",
            "cluster",
            "config",
            "options",
            "fingerprint",
            "observation",
            "plan",
        ];
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["format"], "gt-plan");
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["cluster"], "goldentooth");
        assert!(v["config"]["sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        assert!(v["fingerprint"].as_str().unwrap().starts_with("sha256:"));
        // RFC 3339 UTC, to the second.
        let created = v["created"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(created).is_ok(), "{created}");
        assert!(created.ends_with('Z'), "{created}");
    }

    #[test]
    fn the_file_is_mode_0600_even_with_a_permissive_umask_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.gtplan");
        // SAFETY: umask is process-wide; restored at once. Other tests'
        // files created meanwhile are at worst more permissive.
        let old = unsafe { libc::umask(0) };
        let written = saved("empty", &PlanOptions::default()).write(&path, &[]);
        unsafe { libc::umask(old) };
        written.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plan.gtplan"]);
    }

    #[test]
    fn overwriting_a_world_readable_file_leaves_it_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.gtplan");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        saved("empty", &PlanOptions::default())
            .write(&path, &[])
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        assert!(SavedPlan::read(&path).is_ok());
    }

    #[test]
    fn writing_into_a_missing_directory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/plan.gtplan");
        let e = saved("empty", &PlanOptions::default())
            .write(&path, &[])
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot write the plan file {}: ", path.display())),
            "{msg}"
        );
    }

    #[test]
    fn an_unchanged_observation_and_config_is_fresh() {
        let s = saved("converged", &PlanOptions::default());
        assert_eq!(check(&s, &config_bytes(), &facts("converged")), Ok(()));
    }

    #[test]
    fn what_varies_between_two_looks_at_an_unchanged_cluster_keeps_the_plan_fresh() {
        let s = saved("unreachable", &PlanOptions::default());
        let mut again = facts("unreachable");
        for h in again.hosts.values_mut() {
            if h.unreachable.is_some() {
                h.unreachable = Some("connection timed out after 5.2 s".into());
            }
        }
        again.cluster.observed_via = Some("dalt".into());
        for n in again.cluster.nodes.values_mut() {
            if n.ready != ReadyStatus::True {
                n.ready_message = Some("Kubelet stopped posting node status at 12:03:04.".into());
            }
        }
        assert_ne!(again, facts("unreachable"));
        assert_eq!(check(&s, &config_bytes(), &again), Ok(()));
    }

    #[test]
    fn a_changed_cluster_toml_is_stale_and_says_so() {
        let s = saved("converged", &PlanOptions::default());
        let mut edited = config_bytes();
        edited.extend_from_slice(b"\n# a comment\n");
        let e = check(&s, &edited, &facts("converged")).unwrap_err();
        assert_eq!(e.config_changed.as_deref(), Some(s.config_path()));
        assert!(e.observation.is_empty() && e.plan.is_empty(), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "the saved plan is stale:\n  cluster.toml changed since the plan was made ({})\n\
                 run gt plan --out FILE again, review it, then gt apply FILE",
                s.config_path().display()
            )
        );
    }

    #[test]
    fn a_changed_observation_is_stale_with_exactly_the_changed_lines() {
        let s = saved("converged", &PlanOptions::default());
        let e = check(&s, &config_bytes(), &facts("not-ready")).unwrap_err();
        assert_eq!(e.config_changed, None);
        assert_eq!(
            e.observation,
            [
                removed("host inchfield: reachable arch=arm64 kubeadm=v1.32.4 kubelet=v1.32.4 kubelet_active=true"),
                added("host inchfield: reachable arch=arm64 kubeadm=v1.32.4 kubelet=v1.32.4 kubelet_active=false"),
                removed("node inchfield: Ready=True roles=none kubelet=v1.32.4 arch=arm64 unschedulable=false"),
                added("node inchfield: Ready=Unknown roles=none kubelet=v1.32.4 arch=arm64 unschedulable=false"),
            ]
        );
        // The stopped kubelet is now a change (apply starts it): the plan moved too.
        assert!(
            e.plan.iter().any(|l| l.to_string().contains("inchfield")),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains(
            "  the observation changed since the plan was made:\n    - host inchfield: reachable"
        ), "{msg}");
        assert!(
            msg.contains("\n    + node inchfield: Ready=Unknown roles=none"),
            "{msg}"
        );
        assert!(
            msg.ends_with("run gt plan --out FILE again, review it, then gt apply FILE"),
            "{msg}"
        );
    }

    #[test]
    fn a_read_plan_names_its_file_in_the_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my plan");
        saved("converged", &PlanOptions::default())
            .write(&path, &[])
            .unwrap();
        let s = SavedPlan::read(&path).unwrap();
        let msg = check(&s, &config_bytes(), &facts("not-ready"))
            .unwrap_err()
            .to_string();
        let quoted = format!("'{}'", path.display());
        assert!(
            msg.starts_with(&format!("the saved plan {} is stale:\n", path.display())),
            "{msg}"
        );
        assert!(
            msg.ends_with(&format!(
                "run gt plan --out {quoted} again, review it, then gt apply {quoted}"
            )),
            "{msg}"
        );
    }

    #[test]
    fn a_long_observation_diff_shows_twenty_lines_then_counts_the_rest() {
        let s = saved("converged", &PlanOptions::default());
        let mut now = facts("converged");
        for n in now.cluster.nodes.values_mut() {
            n.taints.push(ObservedTaint {
                key: "example.com/maintenance".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
            });
        }
        let e = check(&s, &config_bytes(), &now).unwrap_err();
        let shown = 2 * now.cluster.nodes.len();
        assert_eq!(e.observation.len(), shown);
        let msg = e.to_string();
        let diff_lines = msg
            .lines()
            .filter(|l| l.starts_with("    - ") || l.starts_with("    + "))
            .count();
        assert_eq!(diff_lines, MAX_DIFF_LINES, "{msg}");
        assert!(
            msg.contains(&format!("    … and {} more\n", shown - MAX_DIFF_LINES)),
            "{msg}"
        );
    }

    #[test]
    fn a_fresh_plan_whose_changes_differ_is_stale_and_shows_them() {
        // Same file, same observation, but the plan in the file was made
        // without --prune and the fresh one with it (as a gt whose planner
        // changed between plan and apply would make a different plan).
        let s = saved("node-not-in-file", &PlanOptions::default());
        let obs = facts("node-not-in-file");
        let pruned = PlanOptions {
            prune: true,
            ..Default::default()
        };
        let fresh = super::super::plan(&goldentooth(), &obs, &pruned).unwrap();
        let e = s.check_fresh(&config_bytes(), &obs, &fresh).unwrap_err();
        assert_eq!(e.config_changed, None);
        assert!(e.observation.is_empty());
        assert_eq!(
            e.plan,
            [
                added("node.zed: delete (not in cluster.toml (--prune): drain and delete; gt cannot reach its host to reset it)"),
                added("step drain/zed"),
                added("step delete-node/zed"),
                added("step delete-node/zed after drain/zed"),
            ]
        );
        assert!(
            e.to_string()
                .contains("  a fresh plan's changes differ from the saved plan's:\n    + "),
            "{e}"
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong_where_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let err = |p: &Path| SavedPlan::read(p).unwrap_err().to_string();

        let missing = dir.path().join("missing.gtplan");
        assert!(err(&missing).starts_with(&format!(
            "cannot read the plan file {}: ",
            missing.display()
        )));

        let broken = file("broken", "{\n  \"format\": \"gt-plan\",\n  oops\n}\n");
        let e = err(&broken);
        assert!(
            e.starts_with(&format!("{}:3:3: not a gt plan file: ", broken.display())),
            "{e}"
        );
        assert!(
            e.ends_with(&format!(
                "make one with `gt plan --out {}`",
                broken.display()
            )),
            "{e}"
        );

        let facts_file = file("facts.json", &facts("empty").to_json());
        assert_eq!(
            err(&facts_file),
            format!(
                "{p}: not a gt plan file (it lacks \"format\": \"gt-plan\"); make one with `gt plan --out {p}`",
                p = facts_file.display()
            )
        );

        let good = dir.path().join("good");
        saved("empty", &PlanOptions::default())
            .write(&good, &[])
            .unwrap();
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
        v["format_version"] = 2.into();
        let future = file("future", &v.to_string());
        assert_eq!(
            err(&future),
            format!(
                "{p}: plan file format_version 2 is not the 1 this gt reads; make the plan again with this gt: `gt plan --out {p}`",
                p = future.display()
            )
        );

        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
        v["observation"][0] = "host allyrion: unreachable".into();
        let edited = file("edited", &serde_json::to_string_pretty(&v).unwrap());
        let e = err(&edited);
        assert!(
            e.starts_with(&format!(
                "{}: damaged plan file: its fingerprint does not match",
                edited.display()
            )),
            "{e}"
        );

        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
        v["options"]["prune"] = "yes".into();
        let wrong_type = file("wrong-type", &serde_json::to_string_pretty(&v).unwrap());
        let e = err(&wrong_type);
        assert!(
            e.starts_with(&format!("{}:", wrong_type.display()))
                && e.contains("not a gt plan file: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn an_unready_api_shows_its_failing_checks_but_not_its_error_text() {
        let mut obs = facts("converged");
        obs.cluster.api.ready = false;
        obs.cluster.api.failed_checks = vec!["etcd".into(), "etcd-readiness".into()];
        obs.cluster.api.error = Some("GET /readyz timed out after 3.1 s".into());
        let lines = observation_lines(&obs);
        let cluster = lines.iter().find(|l| l.starts_with("cluster: ")).unwrap();
        assert!(
            cluster.ends_with(" api=not-ready(etcd,etcd-readiness)"),
            "{cluster}"
        );
        assert!(!lines.iter().any(|l| l.contains("timed out")), "{lines:#?}");
    }

    #[test]
    fn observation_lines_hold_what_the_plan_reads() {
        let lines = observation_lines(&facts("converged"));
        assert!(lines.contains(&"cluster: exists=true ca=sha256:7c1f5e0a9d3b2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4 api=ready".to_string()), "{lines:#?}");
        assert!(lines.contains(&"host fenn: files=kubelet.conf kubelet_server=https://10.4.0.10:6443 ca=sha256:7c1f5e0a9d3b2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4".to_string()), "{lines:#?}");
        assert!(lines.contains(&"node fenn: labels beta.kubernetes.io/arch=arm64 beta.kubernetes.io/os=linux goldentooth.io/hardware=raspberry-pi-4b goldentooth.io/storage=ceph kubernetes.io/arch=arm64 kubernetes.io/hostname=fenn kubernetes.io/os=linux".to_string()), "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("node bettley: Ready=True roles=control-plane ")),
            "{lines:#?}"
        );
        let unreachable = observation_lines(&facts("unreachable"));
        assert!(
            unreachable
                .iter()
                .any(|l| l.ends_with(": unreachable") && l.starts_with("host ")),
            "{unreachable:#?}"
        );
        assert_eq!(
            fingerprint(&lines),
            fingerprint(&observation_lines(&facts("converged")))
        );
        assert_ne!(fingerprint(&lines), fingerprint(&unreachable));
    }
}
