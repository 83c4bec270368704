//! What a user sees while `gt apply` walks: apply's events rendered as
//! indicatif bars on a terminal, timestamped plain lines anywhere else (cron,
//! CI, pipes), or one JSON object per line with `--json`; then the recap.
//!
//! One task owns the output (`render`); steps only send events. Writing never
//! fails the walk: a closed pipe loses the output, not the apply.

mod bars;
mod json;
mod plain;
mod recap;

pub use recap::{node_detail, outcome_text, recap_text};

use crate::apply::{Event, Recap};
use crate::render::Style;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::UnboundedReceiver;

/// Set once a write to gt's stdout failed: see `Stdout`.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// gt's stdout for `gt apply`: once a write fails (the reader of a pipe went
/// away, a terminal hung up) every later write is dropped, so that the
/// output is lost, never the apply. `stdout_closed` then says so, and the
/// recap goes to stderr instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Stdout {
    /// A failed write closes stdout for good and reads as done (`done`).
    fn closing_on_error<T>(result: std::io::Result<T>, done: T) -> std::io::Result<T> {
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(_) => {
                STDOUT_CLOSED.store(true, Ordering::SeqCst);
                Ok(done)
            }
            ok => ok,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if stdout_closed() {
            return Ok(buf.len());
        }
        Stdout::closing_on_error(std::io::stdout().write(buf), buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if stdout_closed() {
            return Ok(());
        }
        Stdout::closing_on_error(std::io::stdout().flush(), ())
    }
}

/// Whether a write to gt's stdout through `Stdout` failed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

/// How often `render` lets held-back progress lines out (plain mode).
const TICK: Duration = Duration::from_millis(500);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif: a spinner per running step and an overall count.
    Bars,
    /// One timestamped line per event, no ANSI, no carriage returns.
    Plain,
    /// One JSON object per event and line (`--json`).
    Json,
}

/// `--json` wins; otherwise bars only when stdout is a terminal, since
/// redrawn bars in a log file or a pipe are noise.
pub fn mode(json: bool, stdout_is_tty: bool) -> Mode {
    match (json, stdout_is_tty) {
        (true, _) => Mode::Json,
        (false, true) => Mode::Bars,
        (false, false) => Mode::Plain,
    }
}

/// The mode for gt's own stdout: `mode` with "a terminal" meaning one that
/// can redraw lines (not `TERM=dumb`, as in an Emacs shell buffer).
pub fn stdout_mode(json: bool) -> Mode {
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    mode(json, std::io::stdout().is_terminal() && !dumb)
}

/// Renders events until the channel closes (every sender dropped) and
/// returns the recap the walk ended with, if it got that far. In `Bars` and
/// `Plain` modes the recap text is written too; in `Json` mode the recap is
/// the last JSON line. Bars are sized to the terminal on stdout. Needs a
/// runtime with time enabled: it wakes twice a second (see `Ui::tick`).
pub async fn render(
    mode: Mode,
    style: Style,
    mut rx: UnboundedReceiver<Event>,
    out: impl Write + Send + 'static,
) -> Option<Recap> {
    let mut ui = Ui::new(mode, style, Box::new(out), Terminal::stdout());
    let mut clock = tokio::time::interval(TICK);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(event) => ui.handle(&event),
                None => break,
            },
            _ = clock.tick() => ui.tick(SystemTime::now()),
        }
    }
    ui.finish()
}

/// The terminal that bars are drawn for.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    /// Columns and rows, asked again at every redraw so that bars follow a
    /// resized terminal.
    pub size: fn() -> (u16, u16),
    /// At most this many redraws a second (more is flicker, not
    /// information); `None` draws every change, which tests rely on.
    pub max_redraws_per_sec: Option<u8>,
}

impl Terminal {
    /// The terminal on stdout, redrawn at most 15 times a second.
    pub fn stdout() -> Terminal {
        Terminal {
            size: bars::terminal_size,
            max_redraws_per_sec: Some(15),
        }
    }
}

/// The renderer behind `render`, driven one event at a time. Tests feed it
/// scripted events at chosen times; `render` feeds it the channel.
pub struct Ui {
    sink: Sink,
    recap: Option<Recap>,
}

enum Sink {
    Bars(bars::Bars),
    Plain(plain::Plain),
    Json(json::Json),
}

impl Ui {
    pub fn new(mode: Mode, style: Style, out: Box<dyn Write + Send>, terminal: Terminal) -> Ui {
        let sink = match mode {
            Mode::Bars => Sink::Bars(bars::Bars::new(style, out, terminal)),
            // Plain lines go to logs and CI: never ANSI, whatever the style.
            Mode::Plain => Sink::Plain(plain::Plain::new(out)),
            Mode::Json => Sink::Json(json::Json::new(out)),
        };
        Ui { sink, recap: None }
    }

    pub fn handle(&mut self, event: &Event) {
        self.handle_at(event, SystemTime::now());
    }

    /// Handles `event` as if it arrived at `now` (timestamps, throttling).
    pub fn handle_at(&mut self, event: &Event, now: SystemTime) {
        if let Event::Recap(r) = event {
            self.recap = Some(r.clone());
        }
        match &mut self.sink {
            Sink::Bars(b) => b.handle(event),
            Sink::Plain(p) => p.handle(event, now),
            Sink::Json(j) => j.handle(event, now),
        }
    }

    /// Time passes without events: plain mode prints the progress messages
    /// it held back (see `plain::PROGRESS_GAP`). `render` calls it twice a
    /// second.
    pub fn tick(&mut self, now: SystemTime) {
        if let Sink::Plain(p) = &mut self.sink {
            p.tick(now);
        }
    }

    /// Clears whatever bars are still drawn and hands back the recap.
    pub fn finish(self) -> Option<Recap> {
        match self.sink {
            Sink::Bars(b) => b.finish(),
            Sink::Plain(mut p) => p.flush(),
            Sink::Json(mut j) => j.flush(),
        }
        self.recap
    }
}

/// Durations as people read them in a log: `0.4s`, `20.1s`, `1m05s`, `1h02m`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        // Round first so that 59.96s reads 60.0s rather than a wrong minute.
        let tenths = (secs * 10.0).round() / 10.0;
        if tenths < 60.0 {
            return format!("{tenths:.1}s");
        }
    }
    whole(d)
}

/// Whole seconds, for counters that move every second: `7s`, `1m05s`.
pub(crate) fn whole(d: Duration) -> String {
    crate::duration::compact_rounded(d)
}

/// The first line of a possibly multi-line error, for one-line displays.
pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The walker's message after Ctrl-C, without its own `interrupted: `: the
/// line it goes on already says so.
pub(crate) fn interruption(message: &str) -> &str {
    let prefix = "interrupted: ";
    match message.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &message[prefix.len()..],
        _ => message,
    }
}

/// Tool output can carry carriage returns and color codes; a log line or a
/// recap must not (a `\r` would overwrite the line it is part of): they are
/// dropped, and any other control character is shown escaped
/// (`render::sanitize`). Newlines stay: callers decide what a line is.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // A CSI sequence (`ESC [ params final`) goes whole.
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            '\t' => out.push(' '),
            '\r' => {}
            c => out.push(c),
        }
    }
    crate::render::sanitize::lines(&out).into_owned()
}

#[cfg(test)]
mod tests;
