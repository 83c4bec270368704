//! On a terminal: an indicatif spinner per running step (its label, its
//! latest progress message, its elapsed time) above an overall `[3/27] steps`
//! bar; each finished step leaves one permanent line above the bars.
//!
//! indicatif draws through `WriterTerm`, a terminal over any `Write`, so the
//! bytes a user's terminal receives are the bytes tests can read.

use super::{duration, first_line, interruption, printable, recap_text, whole, Terminal};
use crate::apply::{Event, Recap, StepStatus};
use crate::plan::StepId;
use crate::render::Style;
use indicatif::{
    MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike,
};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

/// Often enough that spinners spin and elapsed times move every second.
const TICK: Duration = Duration::from_millis(120);

pub(crate) struct Bars {
    style: Style,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    running: HashMap<StepId, ProgressBar>,
    failed: usize,
    /// Skipped or cancelled.
    not_run: usize,
}

impl Bars {
    pub(crate) fn new(style: Style, out: Box<dyn Write + Send>, terminal: Terminal) -> Bars {
        let term = Box::new(WriterTerm {
            out: Mutex::new(out),
            size: terminal.size,
        });
        let target = match terminal.max_redraws_per_sec {
            Some(hz) => ProgressDrawTarget::term_like_with_hz(term, hz),
            None => ProgressDrawTarget::term_like(term),
        };
        let multi = MultiProgress::with_draw_target(target);
        Bars {
            style,
            multi,
            overall: None,
            running: HashMap::new(),
            failed: 0,
            not_run: 0,
        }
    }

    pub(crate) fn handle(&mut self, event: &Event) {
        match event {
            Event::Plan { .. } => {}
            Event::Started { steps, .. } => {
                let bar = ProgressBar::new(*steps as u64)
                    .with_style(self.overall_style())
                    .with_message(self.overall_message());
                let bar = self.multi.add(bar);
                // Drawn now, not at the first steady tick.
                bar.tick();
                bar.enable_steady_tick(TICK);
                self.overall = Some(bar);
            }
            Event::StepStarted { step, label, .. } => {
                let spinner = ProgressBar::new_spinner()
                    .with_style(self.spinner_style())
                    .with_prefix(printable(first_line(label)));
                // Running steps above the overall count, which stays last.
                let spinner = match &self.overall {
                    Some(o) => self.multi.insert_before(o, spinner),
                    None => self.multi.add(spinner),
                };
                spinner.tick();
                spinner.enable_steady_tick(TICK);
                self.running.insert(step.clone(), spinner);
            }
            Event::StepProgress { step, message } => {
                if let Some(s) = self.running.get(step) {
                    s.set_message(printable(first_line(message)));
                }
            }
            Event::StepFinished {
                step,
                label,
                status,
                elapsed,
                reason,
                ..
            } => {
                if let Some(s) = self.running.remove(step) {
                    s.finish_and_clear();
                    self.multi.remove(&s);
                }
                match status {
                    StepStatus::Failed => self.failed += 1,
                    StepStatus::Skipped | StepStatus::Cancelled => self.not_run += 1,
                    StepStatus::Succeeded => {}
                }
                if let Some(o) = &self.overall {
                    o.inc(1);
                    // A new message redraws at once (`inc` waits for the
                    // next tick), and says how many went wrong so far.
                    o.set_message(self.overall_message());
                }
                let line = self.finished_line(label, *status, *elapsed, reason.as_deref());
                let _ = self.multi.println(line);
            }
            Event::Interrupted { message } => {
                let head = self.style.bold(&self.style.yellow("Interrupted:"));
                let _ = self.multi.println(format!(
                    "{head} {}",
                    printable(first_line(interruption(message)))
                ));
            }
            Event::Recap(r) => self.recap(r),
        }
    }

    fn finished_line(
        &self,
        label: &str,
        status: StepStatus,
        elapsed: Duration,
        reason: Option<&str>,
    ) -> String {
        let s = self.style;
        let label = printable(first_line(label));
        let reason = reason.map(|r| printable(first_line(r)));
        match status {
            StepStatus::Succeeded => format!("{} {label} ({})", s.green("✓"), duration(elapsed)),
            StepStatus::Failed => format!(
                "{} {label} ({}): {}",
                s.red("✗"),
                duration(elapsed),
                reason.as_deref().unwrap_or("failed")
            ),
            StepStatus::Skipped => s.dim(&format!(
                "- {label} skipped: {}",
                reason.as_deref().unwrap_or("upstream failed")
            )),
            StepStatus::Cancelled => s.dim(&format!(
                "- {label} cancelled: {}",
                reason.as_deref().unwrap_or("apply interrupted")
            )),
        }
    }

    /// `steps`, or `steps, 1 failed, 2 not run` once something went wrong.
    fn overall_message(&self) -> String {
        let mut m = "steps".to_string();
        if self.failed > 0 {
            m += &format!(", {} failed", self.failed);
        }
        if self.not_run > 0 {
            m += &format!(", {} not run", self.not_run);
        }
        m
    }

    fn recap(&mut self, r: &Recap) {
        self.clear_bars();
        let _ = self
            .multi
            .println(format!("\n{}", recap_text(r, self.style)));
    }

    /// Bars that are still drawn when the walk ends (it stopped without a
    /// recap) are cleared, so that what gt prints next starts on a clean line.
    pub(crate) fn finish(mut self) {
        self.clear_bars();
        let _ = self.multi.clear();
    }

    fn clear_bars(&mut self) {
        for (_, s) in self.running.drain() {
            s.finish_and_clear();
            self.multi.remove(&s);
        }
        if let Some(o) = self.overall.take() {
            o.finish_and_clear();
            self.multi.remove(&o);
        }
    }

    fn spinner_style(&self) -> ProgressStyle {
        let template = if self.style.color {
            "  {spinner:.cyan} {prefix:.bold}  {elapsed_whole:.dim}  {wide_msg}"
        } else {
            "  {spinner} {prefix}  {elapsed_whole}  {wide_msg}"
        };
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key("elapsed_whole", elapsed_whole)
    }

    fn overall_style(&self) -> ProgressStyle {
        let template = if self.style.color {
            "[{pos}/{len}] {msg}  {elapsed_whole:.dim}  {bar:30.cyan/blue}"
        } else {
            "[{pos}/{len}] {msg}  {elapsed_whole}  {bar:30}"
        };
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key("elapsed_whole", elapsed_whole)
            .progress_chars("=> ")
    }
}

/// indicatif's `{elapsed}` says "20 seconds"; the permanent lines say `20.1s`.
fn elapsed_whole(state: &ProgressState, w: &mut dyn fmt::Write) {
    let _ = w.write_str(&whole(state.elapsed()));
}

/// A terminal over any writer: the cursor moves and line clears are the ANSI
/// sequences every terminal gt supports understands.
struct WriterTerm {
    out: Mutex<Box<dyn Write + Send>>,
    size: fn() -> (u16, u16),
}

impl WriterTerm {
    fn write(&self, s: &str) -> io::Result<()> {
        // A poisoned lock only means another draw panicked mid-line.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(s.as_bytes())
    }

    fn csi(&self, n: usize, code: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}{code}"))
    }
}

impl fmt::Debug for WriterTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterTerm").finish_non_exhaustive()
    }
}

impl TermLike for WriterTerm {
    fn width(&self) -> u16 {
        (self.size)().0
    }
    fn height(&self) -> u16 {
        (self.size)().1
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'D')
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(s)?;
        self.write("\n")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.flush()
    }
}

/// Columns and rows of the terminal on stdout; 80×24 when it has none (then
/// bars are not drawn there anyway, see `ui::mode`).
pub(crate) fn terminal_size() -> (u16, u16) {
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the struct we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        (ws.ws_col, ws.ws_row)
    } else {
        (80, 24)
    }
}
