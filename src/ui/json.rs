//! `--json`: each event as one JSON object on its own line, with the time it
//! was rendered, flushed at once so a reader sees steps as they happen.

use super::recap::node_detail;
use crate::apply::events::seconds;
use crate::apply::{Event, Failure, NodeResult, Recap};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, SystemTime};

pub(crate) struct Json {
    out: Box<dyn Write + Send>,
}

impl Json {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Json {
        Json { out }
    }

    pub(crate) fn handle(&mut self, event: &Event, now: SystemTime) {
        let _ = writeln!(self.out, "{}", line(event, now));
        let _ = self.out.flush();
    }

    pub(crate) fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// The recap event as `--json` documents it: each node's outcome in words.
#[derive(Serialize)]
#[serde(tag = "event", rename = "recap")]
struct RecapLine<'a> {
    run_id: &'a str,
    cluster: &'a str,
    nodes: Vec<NodeLine<'a>>,
    joined: usize,
    changed: usize,
    removed: usize,
    succeeded_steps: usize,
    failed_steps: usize,
    skipped_steps: usize,
    cancelled_steps: usize,
    failures: &'a [Failure],
    interrupted: bool,
    #[serde(serialize_with = "seconds")]
    elapsed: Duration,
}

#[derive(Serialize)]
struct NodeLine<'a> {
    node: &'a str,
    result: NodeResult,
    detail: String,
    /// The release the node is at after an upgrade (or its attempt).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

impl<'a> RecapLine<'a> {
    fn of(r: &'a Recap) -> RecapLine<'a> {
        RecapLine {
            run_id: &r.run_id,
            cluster: &r.cluster,
            nodes: r
                .nodes
                .iter()
                .map(|n| NodeLine {
                    node: n.node.as_str(),
                    result: n.result(),
                    detail: node_detail(n),
                    version: n.version.map(|v| v.to_string()),
                })
                .collect(),
            joined: r.joined,
            changed: r.changed,
            removed: r.removed,
            succeeded_steps: r.succeeded_steps,
            failed_steps: r.failed_steps,
            skipped_steps: r.skipped_steps,
            cancelled_steps: r.cancelled_steps,
            failures: &r.failures,
            interrupted: r.interrupted,
            elapsed: r.elapsed,
        }
    }
}

/// `{"time":"…",` spliced before the event's own fields: events are always
/// tagged objects, and splicing keeps `time` first and the event's field
/// order as `Event` declares it (a serde_json map would sort the keys).
pub(crate) fn line(event: &Event, now: SystemTime) -> String {
    let body = match event {
        Event::Recap(r) => crate::render::json::to_string(&RecapLine::of(r)),
        e => crate::render::json::to_string(e),
    };
    let fields = body
        .strip_prefix('{')
        .expect("an event serializes as a JSON object");
    format!(
        "{{\"time\":\"{}\",{fields}",
        humantime::format_rfc3339_seconds(now)
    )
}
