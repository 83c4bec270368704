//! `gt drift`'s three outputs: lines for people and cron mail, a versioned
//! JSON document, and a node_exporter textfile in the Prometheus text format.

use crate::plan::drift::{DriftItem, DriftReport};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Version of `gt drift --json`'s schema (README "Drift JSON").
pub const DRIFT_FORMAT_VERSION: u32 = 1;

/// One check: when it ran, how long it took, and what it found (or why it
/// could not run).
#[derive(Debug, Clone)]
pub struct DriftCheck {
    /// The cluster's name, when the config could be read.
    pub cluster: Option<String>,
    pub checked_at: SystemTime,
    pub duration: Duration,
    pub outcome: Result<DriftReport, String>,
}

fn who(item: &DriftItem, cluster: &str) -> String {
    match &item.node {
        Some(n) => n.to_string(),
        None => format!("cluster {cluster}"),
    }
}

/// `drift: fenn: label goldentooth.io/storage missing (want ceph)` per item,
/// then a summary line; with `verbose`, each item's whole story under it.
pub fn drift_text(r: &DriftReport, verbose: bool) -> String {
    let mut s = String::new();
    for i in &r.items {
        let _ = writeln!(s, "drift: {}: {}", who(i, &r.cluster), i.message);
        if verbose && i.detail != i.message {
            let _ = writeln!(s, "       {}", i.detail);
        }
    }
    let file_nodes = r.nodes.iter().filter(|n| n.in_config).count();
    if r.in_sync() {
        let _ = writeln!(
            s,
            "No drift: {} matches cluster.toml ({} nodes, all Ready).",
            r.cluster, file_nodes
        );
    } else {
        let nodes = r.drifted_nodes();
        let on = match nodes.len() {
            0 => String::new(),
            1 => format!(" on 1 node ({})", nodes[0]),
            n => format!(" on {n} nodes ({})", nodes.join(", ")),
        };
        let items = if r.items.len() == 1 { "item" } else { "items" };
        let _ = writeln!(
            s,
            "Drift: {} {items}{on}. `gt plan` shows what `gt apply` would change.",
            r.items.len()
        );
    }
    // Items quote what hosts and the cluster said.
    super::sanitize::lines(&s).into_owned()
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    format_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    checked_at: String,
    duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_sync: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_kind: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<&'a [DriftItem]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<&'a [crate::plan::drift::NodeHealth]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newest_backup: Option<&'a crate::plan::drift::NewestBackup>,
}

/// The `--json` document (one line); `error` and nothing of the report when
/// the check could not run.
pub fn drift_json(c: &DriftCheck) -> String {
    let report = c.outcome.as_ref().ok();
    let doc = JsonDoc {
        format_version: DRIFT_FORMAT_VERSION,
        cluster: c.cluster.as_deref(),
        checked_at: humantime::format_rfc3339_seconds(c.checked_at).to_string(),
        duration_seconds: round3(c.duration.as_secs_f64()),
        error: c.outcome.as_ref().err().map(String::as_str),
        in_sync: report.map(DriftReport::in_sync),
        by_kind: report.map(|r| {
            r.by_kind()
                .into_iter()
                .map(|(k, n)| (k.as_str().to_string(), n.into()))
                .collect()
        }),
        items: report.map(|r| r.items.as_slice()),
        nodes: report.map(|r| r.nodes.as_slice()),
        newest_backup: report.and_then(|r| r.newest_backup.as_ref()),
    };
    let mut s = super::json::to_string(&doc);
    s.push('\n');
    s
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A node_exporter textfile (Prometheus text format 0.0.4): every family
/// with its HELP and TYPE, all samples of a family together, no
/// timestamps (the collector stamps them). When the check could not run,
/// only `gt_check_success 0` and the time: stale drift figures would lie.
pub fn drift_prometheus(c: &DriftCheck) -> String {
    let mut s = String::new();
    let cluster = c
        .cluster
        .as_deref()
        .map(|n| format!("cluster=\"{}\"", label_value(n)));
    let labels = |extra: &[(&str, &str)]| -> String {
        let mut parts: Vec<String> = cluster.iter().cloned().collect();
        parts.extend(
            extra
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label_value(v))),
        );
        if parts.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", parts.join(","))
        }
    };
    let mut family = |name: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} gauge");
        for (l, v) in samples {
            let _ = writeln!(s, "{name}{l} {v}");
        }
    };
    let now = c
        .checked_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    family(
        "gt_check_success",
        "Whether gt drift could observe the cluster and compare it with cluster.toml (1) or not (0).",
        vec![(labels(&[]), u8::from(c.outcome.is_ok()).to_string())],
    );
    family(
        "gt_last_check_timestamp_seconds",
        "When gt drift last ran, in seconds since the Unix epoch.",
        vec![(labels(&[]), format!("{:.3}", round3(now)))],
    );
    family(
        "gt_check_duration_seconds",
        "How long the last gt drift took to observe and compare.",
        vec![(
            labels(&[]),
            format!("{:.3}", round3(c.duration.as_secs_f64())),
        )],
    );
    let Ok(r) = &c.outcome else {
        return s;
    };
    family(
        "gt_in_sync",
        "Whether the cluster matches cluster.toml (1) or has drifted (0).",
        vec![(labels(&[]), u8::from(r.in_sync()).to_string())],
    );
    family(
        "gt_drift_items",
        "Drift items found by the last check, by kind (README: gt drift).",
        r.by_kind()
            .into_iter()
            .map(|(k, n)| (labels(&[("kind", k.as_str())]), n.to_string()))
            .collect(),
    );
    family(
        "gt_node_ready",
        "Whether the node's Node object is Ready (1) or not, or absent (0).",
        r.nodes
            .iter()
            .map(|n| (labels(&[("node", &n.name)]), u8::from(n.ready).to_string()))
            .collect(),
    );
    family(
        "gt_node_reachable",
        "Whether gt reached the node's host over SSH (1) or not (0; always 0 for nodes not in cluster.toml).",
        r.nodes
            .iter()
            .map(|n| {
                (
                    labels(&[("node", &n.name)]),
                    u8::from(n.reachable).to_string(),
                )
            })
            .collect(),
    );
    family(
        "gt_node_drift_items",
        "Drift items naming the node.",
        r.nodes
            .iter()
            .map(|n| (labels(&[("node", &n.name)]), n.drift_items.to_string()))
            .collect(),
    );
    if !r.versions.is_empty() {
        family(
            "gt_version_drift",
            "The cluster (node=\"\") or a node's kubelet behind cluster.toml's kubernetes_version: the observed and the wanted release as labels.",
            r.versions
                .iter()
                .map(|v| {
                    let node = v.node.as_ref().map(|n| n.as_str()).unwrap_or("");
                    (
                        labels(&[("node", node), ("observed", &v.observed), ("wanted", &v.wanted)]),
                        "1".to_string(),
                    )
                })
                .collect(),
        );
    }
    if let Some(b) = &r.newest_backup {
        family(
            "gt_backup_age_seconds",
            "Age of the newest etcd backup in [backup] dir (absent when there is none).",
            vec![(labels(&[]), b.age_seconds.to_string())],
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Observed;
    use crate::plan::drift::{drift, DriftKind};
    use std::path::Path;
    use std::time::UNIX_EPOCH;

    fn facts(name: &str) -> Observed {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/facts")
            .join(format!("{name}.json"));
        Observed::from_json(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn a_cluster_behind_the_file_and_nodes_between_rungs_are_version_drift_with_a_metric() {
        let spec = crate::spec::load_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/goldentooth-1.33.3.toml"),
        )
        .unwrap();
        let r = drift(&spec, &facts("upgrade-at-1.32")).unwrap();
        let versions: Vec<_> = r
            .items
            .iter()
            .filter(|i| i.kind == DriftKind::Version)
            .collect();
        assert_eq!(versions.len(), 13, "the cluster and its 12 nodes");
        assert_eq!(versions[0].node, None);
        assert_eq!(
            versions[0].message,
            "kubernetes version v1.32.4 -> v1.33.3 (cluster.toml wants the newer)"
        );
        // Interrupted mid-rung: the record is at 1.33.3, the nodes behind it
        // are stuck between rungs, and gt's leftover cordon is drift too.
        let r = drift(&spec, &facts("upgrade-interrupted")).unwrap();
        let lines: Vec<(String, String)> = r
            .items
            .iter()
            .filter(|i| i.kind == DriftKind::Version)
            .map(|i| {
                (
                    i.node.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    i.message.clone(),
                )
            })
            .collect();
        assert!(lines.iter().all(|(n, _)| !n.is_empty()), "{lines:?}");
        assert!(lines.contains(&(
            "dalt".into(),
            "kubelet v1.32.4 -> v1.33.3 (between rungs of an upgrade, or behind cluster.toml)"
                .into()
        )));
        assert!(lines.contains(&(
            "erenford".into(),
            "cordoned by gt (an interrupted upgrade left it so; apply uncordons it)".into()
        )));
        let check = DriftCheck {
            cluster: Some("goldentooth".into()),
            checked_at: UNIX_EPOCH,
            duration: Duration::ZERO,
            outcome: Ok(r),
        };
        let text = drift_prometheus(&check);
        assert!(text.contains("# TYPE gt_version_drift gauge\n"), "{text}");
        assert!(
            text.contains("gt_version_drift{cluster=\"goldentooth\",node=\"dalt\",observed=\"v1.32.4\",wanted=\"v1.33.3\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("node=\"erenford\",observed"), "{text}");
    }
}
