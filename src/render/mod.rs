//! Human plan text, JSON, DOT/Mermaid. Knows nothing of what steps mean.
use std::io::IsTerminal;

/// Color only on a TTY, never with NO_COLOR (any value) or --no-color.
pub fn color_wanted(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}
