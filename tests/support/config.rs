//! Variants of a lab's cluster.toml, written beside it: a node's table cut
//! out, nodes' `state` set, text appended.
//!
//! ```ignore
//! let without = lab.variant("without-lipps.toml").without("lipps").write();
//! ```

use super::lab::Lab;
use std::path::PathBuf;

pub struct Variant {
    text: String,
    path: PathBuf,
}

impl Lab {
    /// Starts from the lab's cluster.toml; `write` saves it as `DIR/name`.
    pub fn variant(&self, name: &str) -> Variant {
        Variant {
            text: std::fs::read_to_string(self.config()).unwrap(),
            path: self.dir().join(name),
        }
    }
}

impl Variant {
    /// Without `[nodes.NODE]` and its keys.
    #[track_caller]
    pub fn without(mut self, node: &str) -> Self {
        let start = self
            .text
            .find(&format!("[nodes.{node}]"))
            .unwrap_or_else(|| panic!("no [nodes.{node}] table"));
        let end = self.text[start + 1..]
            .find("\n[")
            .map_or(self.text.len(), |i| start + 1 + i + 1);
        self.text.replace_range(start..end, "");
        self
    }

    /// `state = "STATE"` first in `[nodes.NODE]`, replacing any state it had.
    #[track_caller]
    pub fn state(mut self, node: &str, state: &str) -> Self {
        let header = format!("[nodes.{node}]\n");
        let body = self
            .text
            .find(&header)
            .unwrap_or_else(|| panic!("no [nodes.{node}] table"))
            + header.len();
        let end = self.text[body..]
            .find("\n[")
            .map_or(self.text.len(), |i| body + i);
        let kept: String = self.text[body..end]
            .lines()
            .filter(|l| !l.starts_with("state = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let kept = kept.trim_end_matches('\n');
        self.text
            .replace_range(body..end, &format!("state = \"{state}\"\n{kept}"));
        self
    }

    pub fn append(mut self, extra: &str) -> Self {
        self.text.push_str(extra);
        self
    }

    pub fn write(self) -> PathBuf {
        std::fs::write(&self.path, &self.text).unwrap();
        self.path
    }
}
