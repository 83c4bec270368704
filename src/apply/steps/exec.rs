//! Running one command on one host: kubeadm's phase lines become progress,
//! a non-zero exit becomes an error quoting the tool's last words.

use super::{StepError, StepRunner};
use crate::kube::secret::redact;
use crate::plan::StepId;
use crate::spec::NodeName;
use crate::transport::{Cmd, Output};
use tokio::sync::mpsc;

impl StepRunner<'_> {
    /// A command with the step timeout of `[apply]`.
    pub(super) fn step_cmd(&self, script: String) -> Cmd {
        Cmd::new(script).timeout(self.settings().step_timeout)
    }

    /// Runs `cmd` on `node`; kubeadm's `[phase] ...` lines become progress of `id`.
    pub(super) async fn exec(
        &self,
        id: &StepId,
        node: &NodeName,
        cmd: &Cmd,
    ) -> Result<Output, StepError> {
        let host = self.hosts.get(node.as_str()).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let run = async move {
            let r = host.run(cmd, Some(&tx)).await;
            drop(tx);
            r
        };
        let forward = async {
            while let Some(line) = rx.recv().await {
                let text = line.line.trim();
                if text.starts_with('[') {
                    self.events.progress(id, redact(text));
                }
            }
        };
        let (result, ()) = tokio::join!(run, forward);
        Ok(result?)
    }

    /// Runs `cmd` on `node`; a non-zero exit is an error quoting the tool.
    pub(super) async fn must(
        &self,
        id: &StepId,
        node: &NodeName,
        cmd: &Cmd,
    ) -> Result<String, StepError> {
        let out = self.exec(id, node, cmd).await?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(exited(cmd, node, &out))
        }
    }
}

/// `kubeadm join on fenn exited 1: <the tool's last words, redacted>`.
pub(super) fn exited(cmd: &Cmd, node: &NodeName, out: &Output) -> StepError {
    let text = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("To see the stack trace"))
        .collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("\n");
    StepError::Exited {
        program: cmd.program().to_string(),
        node: node.clone(),
        code: out.code,
        output: redact(&tail),
    }
}

/// The first line, also cut at an escaped `\n` (kubectl quotes server
/// bodies with Go's %q) and at 160 characters.
pub(super) fn first_line(s: &str) -> &str {
    let line = s.trim().lines().next().unwrap_or("");
    let line = line.split("\\n").next().unwrap_or(line);
    match line.char_indices().nth(160) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
