//! A problem in the config with its place (file:line:column), the source
//! line and how to fix it, rendered the way rustc renders its errors.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in the config, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line, for the excerpt: cut around the column when the
    /// line is long (`…` marks a cut), control characters shown as `�`.
    pub source_line: Option<String>,
    /// 1-based column of the problem within `source_line` (differs from
    /// `column` when the line was cut).
    pub excerpt_column: usize,
    /// Width of the underline under the problem.
    pub width: usize,
    /// The line's length in characters when the excerpt shows only part of it.
    pub cut_from: Option<usize>,
}

/// An excerpt longer than this many characters is cut around the column.
const EXCERPT_MAX: usize = 120;
/// Characters of context kept before the column in a cut excerpt.
const EXCERPT_BEFORE: usize = 40;

impl Diagnostic {
    /// A problem with the file as a whole (unreadable, a missing table).
    pub fn about_file(file: &Path, message: String, help: Option<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message,
            help,
            source_line: None,
            excerpt_column: 0,
            width: 0,
            cut_from: None,
        }
    }
}

/// Text from a file made safe for a terminal: a control character (an
/// escape sequence's ESC, a carriage return) is written as its escape.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostic {
    /// rustc-style: message, `--> file:line:col`, the line with a caret, `= help:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", printable(&self.message))?;
        if self.line == 0 {
            writeln!(f, "  --> {}", printable(&self.file.display().to_string()))?;
        } else {
            writeln!(
                f,
                "  --> {}:{}:{}",
                printable(&self.file.display().to_string()),
                self.line,
                self.column
            )?;
            if let Some(src) = &self.source_line {
                let num = self.line.to_string();
                let pad = " ".repeat(num.len());
                writeln!(f, "{pad} |")?;
                writeln!(f, "{num} | {src}")?;
                let caret_pad: String = src
                    .chars()
                    .take(self.excerpt_column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{pad} | {caret_pad}{}", "^".repeat(self.width.max(1)))?;
                if let Some(n) = self.cut_from {
                    writeln!(
                        f,
                        "  = note: line {} is {n} characters long; shown cut (…) around column {}",
                        self.line, self.column
                    )?;
                }
            }
        }
        if let Some(h) = &self.help {
            writeln!(f, "  = help: {}", printable(h))?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        writeln!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.0
                .first()
                .map(|d| d.file.display().to_string())
                .unwrap_or_default()
        )
    }
}

/// The line to show under a diagnostic, the column and the underline's
/// width within it: a long line is cut to a window around the column (a
/// 100 KB line would otherwise be printed whole), each cut marked `…`.
fn excerpt(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let shown = |c: char| {
        if c.is_control() && c != '\t' {
            '\u{fffd}'
        } else {
            c
        }
    };
    let total = line.chars().count();
    if total <= EXCERPT_MAX {
        return (line.chars().map(shown).collect(), column, width);
    }
    let first = column.saturating_sub(1).saturating_sub(EXCERPT_BEFORE);
    let kept = EXCERPT_MAX - 2;
    let last = (first + kept).min(total);
    let mut out = String::new();
    if first > 0 {
        out.push('…');
    }
    out.extend(line.chars().skip(first).take(last - first).map(shown));
    if last < total {
        out.push('…');
    }
    let excerpt_column = column - first + usize::from(first > 0);
    let width = width.min(last.saturating_sub(column - 1).max(1));
    (out, excerpt_column, width)
}

/// A config file's text with its line starts: turns byte spans (what the
/// TOML parser gives) into lines and columns.
pub(super) struct SourceText<'s> {
    text: &'s str,
    pub(super) file: PathBuf,
    line_starts: Vec<usize>,
    /// The index in `line_starts` of the line `line_of` last answered: the
    /// walk asks in file order, so the next answer is a few lines on, found
    /// by stepping there rather than by a search through every line's start
    /// (at thousands of nodes, most of those are out of the cache).
    last_line: std::cell::Cell<usize>,
}

impl<'s> SourceText<'s> {
    pub(super) fn new(text: &'s str, file: &Path) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText {
            text,
            file: file.to_path_buf(),
            line_starts,
            last_line: std::cell::Cell::new(0),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.text.len()
    }

    /// The text a span covers.
    pub(super) fn slice(&self, span: Range<usize>) -> &'s str {
        &self.text[span]
    }

    /// 1-based line of a byte position.
    pub(super) fn line_of(&self, pos: usize) -> usize {
        /// Lines stepped over before a search is cheaper.
        const STEPS: usize = 64;
        let starts = &self.line_starts;
        let from = self.last_line.get();
        let ahead = starts.get(from).is_some_and(|&s| s <= pos);
        let stepped = (from..starts.len().min(from + STEPS))
            .take_while(|_| ahead)
            .find(|&i| starts.get(i + 1).is_none_or(|&next| next > pos));
        let line = match stepped {
            Some(i) => i + 1,
            None => starts.partition_point(|&s| s <= pos),
        };
        self.last_line.set(line - 1);
        line
    }

    /// A diagnostic pointing at `span` (clipped to its first line).
    pub(super) fn diagnostic(
        &self,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let start = span.start.min(self.text.len());
        let line_idx = self.line_starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.line_starts[line_idx];
        let line_end = self.text[line_start..]
            .find('\n')
            .map(|i| line_start + i)
            .unwrap_or(self.text.len());
        let line_text = self.text[line_start..line_end].trim_end_matches('\r');
        // A place within a line's trailing carriage returns is shown at their start.
        let start = start.min(line_start + line_text.len());
        let column = self.text[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_start + line_text.len());
        let width = self.text[start..end].chars().count();
        let (excerpt, excerpt_column, width) = excerpt(line_text, column, width);
        let length = line_text.chars().count();
        Diagnostic {
            file: self.file.clone(),
            line: line_idx + 1,
            column,
            message,
            help,
            source_line: Some(excerpt),
            excerpt_column,
            width,
            cut_from: (length > EXCERPT_MAX).then_some(length),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_answers_alike_in_file_order_backwards_and_far_ahead() {
        let text: String = (0..500).map(|i| "x".repeat(i % 7) + "\n").collect();
        let source = SourceText::new(&text, Path::new("cluster.toml"));
        let searched = |pos: usize| source.line_starts.partition_point(|&s| s <= pos);
        let mut positions: Vec<usize> = (0..=text.len() + 3).collect();
        // Backwards, and jumps of more lines than are stepped over.
        positions.extend((0..text.len()).rev().step_by(5));
        positions.extend([0, text.len() - 1, 3, text.len() / 2, 7, text.len() + 10]);
        for pos in positions {
            assert_eq!(source.line_of(pos), searched(pos), "at {pos}");
        }
        assert_eq!(source.line_of(0), 1);
        assert_eq!(source.line_of(text.len()), 501);
    }
}
