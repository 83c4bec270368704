//! `DIR/logs/NODE.log`: every simulated command, one JSON object per line, so
//! that tests can check what gt ran (and that no secret reached a process list).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the command finished, RFC 3339.
    pub time: String,
    /// `kubeadm`, `kubectl`, ...
    pub tool: String,
    /// Arguments after the tool name, exactly as received.
    pub argv: Vec<String>,
    /// Bytes the tool read from its standard input.
    pub stdin_bytes: u64,
    pub exit: i32,
    /// Wall-clock milliseconds, including the simulated latency.
    pub ms: u64,
}

pub(crate) fn path(lab_dir: &Path, node: &str) -> PathBuf {
    lab_dir.join("logs").join(format!("{node}.log"))
}

/// Appends one line with a single write, so concurrent tools never interleave.
pub(crate) fn append(lab_dir: &Path, node: &str, entry: &LogEntry) -> std::io::Result<()> {
    let p = path(lab_dir, node);
    std::fs::create_dir_all(p.parent().expect("has parent"))?;
    let mut line = serde_json::to_string(entry).expect("log entry serialises");
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)?;
    f.write_all(line.as_bytes())
}

/// Every command logged for `node`, oldest first; no log means no commands.
/// Lines that do not parse (a torn write after a crash) are skipped.
pub fn read(lab_dir: &Path, node: &str) -> Vec<LogEntry> {
    std::fs::read_to_string(path(lab_dir, node))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
