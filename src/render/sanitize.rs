//! Text that came from a host or a file (a node name from the cluster, a
//! label, `uname -m`, a facts file, a host's error) made safe for a
//! terminal: every character that a terminal would act on instead of
//! showing is shown as an escape (`\x1b`, `\x07`, `\u{9b}`), so that a host
//! cannot recolor, retitle or rewrite gt's output, nor make the terminal
//! answer with keystrokes of its own.
//!
//! Escaped: C0 controls (but `\n` and `\t` where a text's lines are
//! structural, see `lines`), DEL, C1 controls (U+0080 to U+009F: a
//! terminal may read U+009B as CSI), and the bidirectional overrides and
//! isolates, which reorder what is shown (U+202A to U+202E, U+2066 to
//! U+2069, U+200E, U+200F, U+061C).

use std::borrow::Cow;
use std::fmt;

/// A character a terminal acts on instead of showing.
pub(crate) fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(c: char, out: &mut String) {
    use std::fmt::Write;
    let n = c as u32;
    let _ = if n < 0x80 {
        write!(out, "\\x{n:02x}")
    } else {
        write!(out, "\\u{{{n:x}}}")
    };
}

fn sanitized(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) && !keep(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A one-line value (a name, a label, an architecture): every control
/// character escaped, newlines and tabs included.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    sanitized(s, |_| false)
}

/// A text whose lines and tabs are its own (an error with a tool's output
/// under it, a rendered table): as `sanitize`, but `\n` and `\t` stay.
pub fn lines(s: &str) -> Cow<'_, str> {
    sanitized(s, |c| c == '\n' || c == '\t')
}

/// `sanitize` as a `Display`, for `format!("{}", Clean(name))`.
#[derive(Debug, Clone, Copy)]
pub struct Clean<'a>(pub &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through `pad`, so that widths (`{:<8}`) still apply.
        f.pad(&sanitize(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_terminal_would_act_on_is_shown_escaped() {
        assert_eq!(sanitize("arm64\x1b[31m\x07"), "arm64\\x1b[31m\\x07");
        assert_eq!(sanitize("a\rb\nc\td\x7f"), "a\\x0db\\x0ac\\x09d\\x7f");
        assert_eq!(sanitize("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(sanitize("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(
            lines("one\n\ttwo\x1b]0;pwned\x07"),
            "one\n\ttwo\\x1b]0;pwned\\x07"
        );
    }

    #[test]
    fn clean_text_is_borrowed_as_it_is() {
        let s = "fenn: label goldentooth.io/storage missing (want ceph) ✓ é";
        assert!(matches!(sanitize(s), Cow::Borrowed(_)));
        assert_eq!(format!("[{:<6}]", Clean("arm\x1b")), "[arm\\x1b]");
        assert_eq!(format!("[{:<6}]", Clean("arm")), "[arm   ]");
    }
}
