//! A facts file (or a host) whose node names, labels and architectures carry
//! terminal escape sequences: `gt plan` and `gt drift` show them escaped,
//! never raw; JSON output escapes them as JSON does.

use crate::support::gt::{fixture, Output, Test};
use serde_json::{json, Value};

const HOSTILE: &str = "\x1b[31mred\x1b]0;pwned\x07\u{9b}2J";

/// converged.json with hostile text wherever a host or the cluster speaks:
/// a Node not in the file, a label value, an architecture, a NotReady reason.
fn hostile_facts(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(fixture("converged")).unwrap();
    let mut facts: Value = serde_json::from_str(&text).unwrap();
    let nodes = &mut facts["cluster"]["nodes"];
    let mut stranger = nodes["fenn"].clone();
    stranger["internal_ip"] = json!("10.4.9.9");
    nodes[format!("stranger{HOSTILE}")] = stranger;
    nodes["fenn"]["labels"]["goldentooth.io/storage"] = json!(format!("ceph{HOSTILE}"));
    nodes["jast"]["ready"] = json!("False");
    nodes["jast"]["ready_reason"] = json!(format!("KubeletNotReady{HOSTILE}"));
    facts["hosts"]["velaryon"]["arch"] = json!(format!("amd64{HOSTILE}"));
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_string(&facts).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[track_caller]
fn no_raw_controls(run: &Output) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let raw: Vec<char> = text
            .chars()
            .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
            .collect();
        assert!(raw.is_empty(), "raw {raw:?} on {stream}: {run}");
    }
}

#[test]
fn plan_shows_what_hosts_said_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let facts = hostile_facts(dir.path());
    let run = Test::new().args(["plan", "--facts", &facts]).run();
    run.status(0);
    no_raw_controls(&run);
    assert!(
        run.stdout
            .contains("ceph\\x1b[31mred\\x1b]0;pwned\\x07\\u{9b}2J"),
        "{run}"
    );
    assert!(run.stdout.contains("KubeletNotReady\\x1b[31mred"), "{run}");
}

#[test]
fn drift_shows_what_hosts_said_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let facts = hostile_facts(dir.path());
    let run = Test::new()
        .args(["drift", "--verbose", "--facts", &facts])
        .run();
    run.status(2);
    no_raw_controls(&run);
    assert!(run.stdout.contains("\\x1b[31mred"), "{run}");
}

#[test]
fn json_output_escapes_every_control_character() {
    let dir = tempfile::tempdir().unwrap();
    let facts = hostile_facts(dir.path());
    for args in [
        ["plan", "--json", "--facts", &facts],
        ["drift", "--json", "--facts", &facts],
    ] {
        let run = Test::new().args(args).run();
        no_raw_controls(&run);
        // And it still reads back as what the host said.
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        assert!(doc.to_string().contains("pwned"), "{run}");
    }
}
