//! Human plan text, JSON, DOT/Mermaid. Knows nothing of what steps mean:
//! it shows what the plan says. Plans hold no secrets, so neither does this.
//! Text that came from a host or a file goes through `sanitize` before it
//! is part of anything printed.

pub mod drift;
mod graph;
pub mod json;
pub mod sanitize;
pub mod status;
mod text;

pub use graph::{dot, mermaid};
pub use json::{plan_json, PLAN_FORMAT_VERSION};
pub use sanitize::{sanitize, Clean};
pub use text::plan_text;

use std::io::IsTerminal;

/// Color only on a TTY, never with NO_COLOR (set and not empty, as
/// no-color.org defines it) or --no-color.
pub fn color_wanted(no_color_flag: bool) -> bool {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color_flag && !no_color_env && std::io::stdout().is_terminal()
}

/// ANSI styling that collapses to nothing when color is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}
