//! What `gt apply` and `gt restore` share once they hold the lock and have
//! a plan: the UI task (text or JSON events), the question, and the walk.

use super::CliError;
use crate::apply::session::{Session, StopSignal, Stops, Ui};
use crate::apply::Event;
use crate::facts::Observed;
use crate::plan::Plan;
use crate::render::Style;
use crate::ui::Stdout;
use std::io::{BufRead, IsTerminal, Write};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

/// The UI task of a walk: plain lines or bars, or one JSON event a line
/// with `json`; the recap goes to stderr when whoever read stdout left.
pub(super) fn ui(json: bool, style: Style) -> Ui {
    Box::new(move |rx| {
        Box::pin(async move {
            let recap = crate::ui::render(crate::ui::stdout_mode(json), style, rx, Stdout).await;
            if let Some(r) = recap.filter(|_| crate::ui::stdout_closed()) {
                say(&format!(
                    "\n{}",
                    crate::ui::recap_text(&r, Style { color: false })
                ));
            }
        })
    })
}

/// The plan as the first JSON event, for a walk whose UI speaks JSON.
pub(super) fn send_plan(session: &Session<'_>, plan: &Plan) {
    session.events().send(Event::Plan {
        plan: Box::new(plan.document()),
    });
}

/// How to ask before a walk.
pub(super) struct Ask {
    /// The error when stdin is no terminal to ask on.
    pub(super) not_a_terminal: CliError,
    /// Printed when the answer is not `yes`.
    pub(super) cancelled: &'static str,
}

/// How a walk ended: its exit code, and whether it walked the plan (and so
/// may have changed the cluster).
pub(super) struct Walked {
    pub(super) code: u8,
    pub(super) walked: bool,
}

impl Walked {
    pub(super) fn unchanged(code: u8) -> Walked {
        Walked {
            code,
            walked: false,
        }
    }
}

/// Asks (unless `ask` is `None`: approved already), then walks the plan.
/// The answer is read on a thread of its own, so that a stop signal at the
/// prompt cancels at once.
pub(super) async fn approve_and_walk(
    session: Session<'_>,
    observed: &Observed,
    plan: &Plan,
    ask: Option<Ask>,
    mut signals: UnboundedReceiver<StopSignal>,
    lock_lost: watch::Receiver<Option<String>>,
) -> Result<Walked, CliError> {
    if let Some(ask) = ask {
        if !std::io::stdin().is_terminal() {
            return Err(ask.not_a_terminal);
        }
        let approved = tokio::select! {
            yes = tokio::task::spawn_blocking(confirm) => yes.unwrap_or(false),
            Some(_) = signals.recv() => false,
        };
        if !approved {
            let _ = Stdout.write_all(format!("\n{}\n", ask.cancelled).as_bytes());
            return Ok(Walked::unchanged(super::exit::ERROR));
        }
    }
    // A failed step was told in the recap.
    let stops = Stops { lock_lost, signals };
    let code = if session.walk(observed, plan, stops).await {
        super::exit::OK
    } else {
        super::exit::ERROR
    };
    Ok(Walked { code, walked: true })
}

/// A line on stderr. Never fails: a closed stderr must not end the walk.
pub(super) fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Terraform's question; only `yes` goes on.
fn confirm() -> bool {
    let mut out = Stdout;
    let _ = write!(
        out,
        "\nDo you want to perform these actions?\n  gt will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = out.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}
