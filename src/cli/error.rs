//! The one error type of the commands, and the one place that prints it.
//!
//! Each layer keeps its own error enum; commands turn them into a `CliError`
//! with `?` and return it to `cli::run`, which prints it once and exits with
//! its `code()`. Outcomes a command has already told the user about (a failed
//! step in the recap, a host failing under `gt exec`, an answer other than
//! `yes`) are not errors: the command returns their exit status.

use super::exit;
use crate::apply::lock::LockError;
use crate::facts::observe::ObserveError;
use crate::plan::saved::{SavedPlanError, Stale};
use crate::plan::PlanError;
use crate::spec::Diagnostics;
use crate::transport::TransportError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Every problem of cluster.toml, each line already `error: FILE:LINE:COL: ...`.
    #[error("{0}")]
    Config(Diagnostics),
    /// A layer that words its errors as plain text (finding the config, a
    /// facts file, an exec target).
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
    #[error(transparent)]
    StalePlan(#[from] Stale),
    #[error(transparent)]
    Lab(#[from] gt_lab::LabError),
    #[error(transparent)]
    CniManifest(#[from] crate::cni::ManifestError),
    #[error(
        "{} carries the cluster.toml and the --prune/--replace/--no-backup it was planned with; \
         drop --config/--prune/--replace/--no-backup, or plan again with them (`gt plan --out FILE`)",
        .0.display()
    )]
    PlanFileWithFlags(PathBuf),
    #[error(
        "gt apply needs your approval, and stdin is not a terminal; \
         review the plan, then run `gt apply --auto-approve`"
    )]
    ApprovalNeedsTerminal,
    #[error(
        "gt unlock removes the lock only when confirmed, and stdin is not a \
         terminal: run `gt unlock --yes` to remove the lock shown above"
    )]
    UnlockNeedsTerminal,
    #[error(
        "the lock changed hands since it was shown: {holder} holds it now (run {run_id}); \
         nothing was removed. Run gt unlock again to see it"
    )]
    LockChangedHands { holder: String, run_id: String },
    #[error("cannot handle Ctrl-C, SIGTERM and SIGHUP: {0}")]
    Signal(std::io::Error),
    #[error("cannot write the facts to {}: {source}", path.display())]
    WriteFacts {
        path: PathBuf,
        source: crate::fsutil::WriteError,
    },
    #[error("cannot write the metrics to {}: {source}", path.display())]
    WriteMetrics {
        path: PathBuf,
        source: crate::fsutil::WriteError,
    },
    #[error("cannot write the man page {}: {source}", file.display())]
    WriteManPage {
        file: PathBuf,
        source: crate::fsutil::WriteError,
    },
    #[error("cannot write to stdout: {0}")]
    WriteStdout(std::io::Error),
}

impl CliError {
    /// The exit status (README "Exit status"): every error is "gt could not
    /// do what was asked".
    pub fn code(&self) -> u8 {
        exit::ERROR
    }
}

impl From<Diagnostics> for CliError {
    fn from(d: Diagnostics) -> Self {
        CliError::Config(d)
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Message(message)
    }
}

impl From<TransportError> for CliError {
    fn from(e: TransportError) -> Self {
        CliError::Transport(Box::new(e))
    }
}

/// Prints an error the way every gt error reads: `error: ` and the message.
/// Messages quote hosts and files (a source line, a host's stderr): shown
/// through `render::sanitize`. A closed stderr loses them, nothing more.
pub fn report(e: &CliError) {
    use crate::render::sanitize::lines;
    let text = match e {
        // Each diagnostic carries its own `error: `.
        CliError::Config(diags) => diags.to_string(),
        e => format!("error: {e}\n"),
    };
    let _ = std::io::Write::write_all(&mut std::io::stderr(), lines(&text).as_bytes());
}

/// Prints something the user should know that does not stop the command.
pub fn warn(message: impl std::fmt::Display) {
    let text = format!("warning: {message}\n");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        crate::render::sanitize::lines(&text).as_bytes(),
    );
}
