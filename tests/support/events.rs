//! `gt apply --json` as the tests read it: one JSON event a line, the plan
//! first and the recap last.

use super::gt::{Output, Test};
use super::lab::Lab;
use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout};

/// `gt --config CONFIG apply --auto-approve --json EXTRA...`; its events.
pub fn apply_json(config: &Path, extra: &[&str]) -> (Output, Vec<Value>) {
    let run = Test::new()
        .config(config)
        .args(["apply", "--auto-approve", "--json"])
        .args(extra)
        .run();
    let events = run.json_lines();
    (run, events)
}

/// `gt apply --auto-approve --json` running in the background, and its
/// event lines. Keep reading them to the end: a closed pipe ends gt with SIGPIPE.
pub fn spawn_apply_json(lab: &Lab, extra: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = lab
        .test()
        .args(["apply", "--auto-approve", "--json"])
        .args(extra)
        .spawn();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads events until one satisfies `stop` (returned, with those before it).
#[track_caller]
pub fn read_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    mut stop: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = vec![];
    for line in lines.by_ref() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let done = stop(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
    panic!("the event stream ended before the awaited event: {seen:?}");
}

/// The whole error of a failed step, as the recap event lists it.
#[track_caller]
pub fn failure_of(events: &[Value], step: &str) -> String {
    recap(events)["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["step"] == step)
        .unwrap_or_else(|| panic!("no failure of {step}: {}", recap(events)))["error"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn recap(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "recap", "the recap is the last event");
    last
}

#[track_caller]
fn recap_node<'a>(events: &'a [Value], node: &str) -> &'a Value {
    let r = recap(events);
    r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("{node} not in the recap: {r}"))
}

/// A node's result in the recap (`changed`, `ok`, `failed`, `skipped`).
#[track_caller]
pub fn node_result<'a>(events: &'a [Value], node: &str) -> &'a str {
    recap_node(events, node)["result"].as_str().unwrap()
}

/// A node's row of the recap: (result, detail).
#[track_caller]
pub fn recap_row(events: &[Value], node: &str) -> (String, String) {
    let row = recap_node(events, node);
    (
        row["result"].as_str().unwrap().to_string(),
        row["detail"].as_str().unwrap_or_default().to_string(),
    )
}

/// Steps that started, in the order they started.
pub fn started(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

/// The event of `step` finishing.
#[track_caller]
pub fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    &events[finished_index(events, step)]
}

/// Index of the event where `step` finished with `status`.
#[track_caller]
pub fn finished_at(events: &[Value], step: &str, status: &str) -> usize {
    let i = finished_index(events, step);
    assert_eq!(events[i]["status"], status, "{step}: {}", events[i]);
    i
}

#[track_caller]
fn finished_index(events: &[Value], step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("{step} never finished"))
}

/// Index of the event where `step` started.
#[track_caller]
pub fn started_at(events: &[Value], step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == "step_started" && e["step"] == step)
        .unwrap_or_else(|| panic!("{step} never started"))
}

/// `kubeadm SUB ...` runs on `node` (`init` does not count `init phase ...`).
pub fn kubeadm_calls(lab: &Lab, node: &str, sub: &str) -> usize {
    lab.log(node)
        .iter()
        .filter(|e| e["tool"] == "kubeadm" && e["argv"][0] == sub && e["argv"][1] != "phase")
        .count()
}
