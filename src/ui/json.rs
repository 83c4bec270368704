//! `--json`: each event as one JSON object on its own line, with the time it
//! was rendered, flushed at once so a reader sees steps as they happen.

use crate::apply::Event;
use std::io::Write;
use std::time::SystemTime;

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

/// `{"time":"…",` spliced before the event's own fields: events are always
/// tagged objects, and splicing keeps `time` first and the event's field
/// order as `Event` declares it (a serde_json map would sort the keys).
pub(crate) fn line(event: &Event, now: SystemTime) -> String {
    let body = serde_json::to_string(event).expect("events serialize");
    let fields = body
        .strip_prefix('{')
        .expect("an event serializes as a JSON object");
    format!(
        "{{\"time\":\"{}\",{fields}",
        humantime::format_rfc3339_seconds(now)
    )
}
