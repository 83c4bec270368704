//! Plain lines for logs, cron and CI: one line per event, each starting with
//! an RFC 3339 UTC timestamp and a verb (`apply`, `start`, `wait`, `done`,
//! `FAILED`, `skip`, `cancel`, `INTERRUPTED`, `end`), never ANSI, never a
//! carriage return. The formats are documented in docs/readme/progress.md;
//! scripts grep them.

use super::{duration, first_line, interruption, printable, recap_text};
use crate::apply::{Event, StepStatus};
use crate::plan::StepId;
use crate::render::Style;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// A step that keeps saying the same thing is still reported this often, so
/// that a log shows it is alive without a line per poll.
pub(crate) const REPEAT_PROGRESS_AFTER: Duration = Duration::from_secs(10);

/// At most one progress line per step this often: tools stream dozens of
/// lines a second (kubeadm init prints ~70), and a log needs the gist.
pub(crate) const PROGRESS_GAP: Duration = Duration::from_secs(2);

pub(crate) struct Plain {
    out: Box<dyn Write + Send>,
    progress: HashMap<StepId, Shown>,
}

/// A running step's last progress line, and the latest message that came
/// too soon after it.
struct Shown {
    /// The message printed, durations blanked out.
    key: String,
    at: SystemTime,
    pending: Option<String>,
}

impl Plain {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Plain {
        Plain {
            out,
            progress: HashMap::new(),
        }
    }

    pub(crate) fn handle(&mut self, event: &Event, now: SystemTime) {
        match event {
            // `gt apply` showed the plan before asking; only --json repeats it.
            Event::Plan { .. } => {}
            Event::Started {
                run_id,
                cluster,
                steps,
            } => self.line(
                now,
                "apply",
                &format!("{cluster}: {steps} {} (run {run_id})", plural(*steps)),
            ),
            Event::StepStarted { step, label, .. } => {
                self.line(now, "start", &format!("{step}: {label}"))
            }
            Event::StepProgress { step, message } => self.progress(step, message, now),
            Event::StepFinished {
                step,
                status,
                elapsed,
                reason,
                ..
            } => {
                // What it said last but was not shown yet is moot now.
                self.progress.remove(step);
                let elapsed = duration(*elapsed);
                let reason = reason.as_deref().map(first_line);
                match status {
                    StepStatus::Succeeded => self.line(now, "done", &format!("{step} ({elapsed})")),
                    StepStatus::Failed => self.line(
                        now,
                        "FAILED",
                        &format!("{step} ({elapsed}): {}", reason.unwrap_or("failed")),
                    ),
                    StepStatus::Skipped => self.line(
                        now,
                        "skip",
                        &format!("{step}: {}", reason.unwrap_or("upstream failed")),
                    ),
                    StepStatus::Cancelled => self.line(
                        now,
                        "cancel",
                        &format!("{step}: {}", reason.unwrap_or("apply interrupted")),
                    ),
                }
            }
            Event::Interrupted { message } => self.line(now, "INTERRUPTED", interruption(message)),
            Event::Recap(r) => {
                self.line(
                    now,
                    "end",
                    &format!(
                        "{}: {} succeeded, {} failed, {} skipped, {} cancelled in {}",
                        r.cluster,
                        r.succeeded_steps,
                        r.failed_steps,
                        r.skipped_steps,
                        r.cancelled_steps,
                        duration(r.elapsed)
                    ),
                );
                let _ = write!(self.out, "\n{}", recap_text(r, Style { color: false }));
                self.flush();
            }
        }
    }

    /// A changed message is printed, an unchanged one (elapsed times aside)
    /// again after `REPEAT_PROGRESS_AFTER`; either at most once per
    /// `PROGRESS_GAP`, the latest one held back until `tick` if need be.
    fn progress(&mut self, step: &StepId, message: &str, now: SystemTime) {
        let key = without_durations(message);
        let Some(shown) = self.progress.get_mut(step) else {
            self.show_progress(step, message, now);
            return;
        };
        let since = now.duration_since(shown.at).unwrap_or(Duration::MAX);
        if key == shown.key && since < REPEAT_PROGRESS_AFTER {
            shown.pending = None;
        } else if since < PROGRESS_GAP {
            shown.pending = Some(message.to_string());
        } else {
            self.show_progress(step, message, now);
        }
    }

    /// Prints the messages held back whose step has been quiet long enough.
    pub(crate) fn tick(&mut self, now: SystemTime) {
        let mut due: Vec<(StepId, String)> = self
            .progress
            .iter_mut()
            .filter(|(_, s)| {
                s.pending.is_some() && now.duration_since(s.at).map_or(true, |d| d >= PROGRESS_GAP)
            })
            .map(|(step, s)| (step.clone(), s.pending.take().unwrap()))
            .collect();
        // Steps in a stable order, whatever the map's: as their ids read.
        due.sort_by_cached_key(|(step, message)| (step.to_string(), message.clone()));
        for (step, message) in due {
            self.show_progress(&step, &message, now);
        }
    }

    fn show_progress(&mut self, step: &StepId, message: &str, now: SystemTime) {
        self.line(now, "wait", &format!("{step}: {message}"));
        self.progress.insert(
            step.clone(),
            Shown {
                key: without_durations(message),
                at: now,
                pending: None,
            },
        );
    }

    fn line(&mut self, now: SystemTime, verb: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "{} {verb:<6} {}",
            humantime::format_rfc3339_seconds(now),
            printable(first_line(text))
        );
        // Line by line: `tail -f` and CI logs show each step as it happens.
        let _ = self.out.flush();
    }

    pub(crate) fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "step"
    } else {
        "steps"
    }
}

/// The message with every duration (`4s`, `1m05s`, `2.5s`, `300ms`) replaced
/// by `#`: "not ready (4s)" and "not ready (5s)" say the same thing.
pub(crate) fn without_durations(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    for c in message.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '.' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            // A trailing period ends a sentence; it is not part of `4s.`.
            let (body, dot) = match word.strip_suffix('.') {
                Some(b) => (b, "."),
                None => (word.as_str(), ""),
            };
            if is_duration(body) {
                out.push('#');
                out.push_str(dot);
            } else {
                out.push_str(&word);
            }
            word.clear();
        }
        out.push(c);
    }
    out.pop();
    out
}

/// `4s`, `1m05s`, `2.5s`, `300ms`, `2h`: digits (with an optional fraction)
/// then a unit, one or more times.
fn is_duration(word: &str) -> bool {
    let mut rest = word;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 || !rest[..digits].starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "min", "h", "m", "s"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}
