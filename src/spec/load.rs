//! Reading cluster.toml into a validated `Spec`. Every problem is collected
//! (not only the first) and carries file:line:column and what to do.
//!
//! `plain` parses the plain TOML cluster files are written in, and
//! toml_edit everything else (and explains syntax errors). The `Loader`
//! here only records problems; `walk` builds the Spec from the
//! document table by table and `checks` compares what the tables say to
//! each other.

use super::diagnostic::SourceText;
use super::suggest::did_you_mean;
use super::walk::TableLike;
use super::{plain, tree};
use super::{Diagnostic, Diagnostics, Spec};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml_edit::Document;

pub fn load_file(path: &Path) -> Result<Spec, Diagnostics> {
    match crate::fsutil::read_regular(path, crate::fsutil::MAX_CONFIG_BYTES) {
        Ok(bytes) => load_bytes(&bytes, path),
        Err(e) => Err(Diagnostics(vec![Diagnostic::about_file(
            path,
            format!("cannot read {}: {e}", path.display()),
            Some("check the path and its permissions, or pass another with --config".into()),
        )])),
    }
}

/// Parses and validates a file's bytes: text that is not UTF-8 is refused
/// at the first byte that is not, with its line and column.
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Spec, Diagnostics> {
    match std::str::from_utf8(bytes) {
        Ok(src) => load_str(src, path),
        Err(e) => {
            let good = e.valid_up_to();
            // The text up to the bad byte is valid, so the bad byte is at
            // the same offset in the lossy text, as one U+FFFD.
            let lossy = String::from_utf8_lossy(bytes);
            let source = SourceText::new(&lossy, path);
            let bad = e.error_len().unwrap_or(bytes.len() - good);
            let shown: Vec<String> = bytes[good..good + bad]
                .iter()
                .map(|b| format!("0x{b:02X}"))
                .collect();
            Err(Diagnostics(vec![source.diagnostic(
                good..good + '\u{fffd}'.len_utf8(),
                format!(
                    "{} is not UTF-8 text: byte {} cannot start or continue a character",
                    path.display(),
                    shown.join(" ")
                ),
                Some("save the file as UTF-8 (and retype the character shown as �)".into()),
            )]))
        }
    }
}

/// Parses and validates `src` as if read from `path` (relative paths in the
/// file resolve against `path`'s directory).
pub fn load_str(src: &str, path: &Path) -> Result<Spec, Diagnostics> {
    let mut cx = Loader::new(src, path);
    let spec = match plain::parse(src) {
        Some(mut tree) => cx.spec(&mut tree),
        // Not plain TOML, or not TOML: toml_edit reads any TOML and says
        // what is wrong with the rest.
        None => match Document::parse(src) {
            Ok(doc) => cx.spec(&mut tree::from_toml_edit(doc.as_table())),
            Err(e) => {
                let msg = e.message().trim().to_string();
                let (span, help) = syntax_error_place(src, e.span().unwrap_or(0..0), &msg);
                cx.error(span, format!("invalid TOML: {msg}"), Some(help));
                return Err(cx.finish());
            }
        },
    };
    let diags = cx.finish();
    match spec {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(diags),
    }
}

/// The parse alone, without validation, for benches/plan.rs (which times
/// each part of loading): whether the fast plain parser read `src`.
#[doc(hidden)]
pub fn parse_only(src: &str) -> bool {
    match plain::parse(src) {
        Some(tree) => {
            std::hint::black_box(&tree);
            true
        }
        None => {
            if let Ok(doc) = Document::parse(src) {
                std::hint::black_box(tree::from_toml_edit(doc.as_table()));
            }
            false
        }
    }
}

/// Where a TOML syntax error is and what to do about it. The parser
/// reports where it noticed the problem, which for a few errors is far
/// from where it was made: a missing `]` or `,` is noticed on the next
/// line, an unterminated multi-line string at the end of the file, a too
/// deeply nested table at the start of the file.
fn syntax_error_place(src: &str, span: Range<usize>, msg: &str) -> (Range<usize>, String) {
    let start = span.start.min(src.len());
    if msg.contains("multi-line basic string") || msg.contains("multi-line literal string") {
        let quotes = if msg.contains("basic") {
            "\"\"\""
        } else {
            "'''"
        };
        if let Some(open) = src[..start].rfind(quotes) {
            return (
                open..open + 3,
                format!("this multi-line string is never closed: end it with {quotes}"),
            );
        }
    }
    if msg.contains("basic string") || msg.contains("literal string") {
        return (
            span,
            "close the string on the same line; a string over several lines is written between \"\"\" and \"\"\"".into(),
        );
    }
    if msg.contains("recursion") {
        let line_start = deepest_line(src);
        let line_end = src[line_start..]
            .find('\n')
            .map_or(src.len(), |i| line_start + i);
        return (
            line_start..line_end,
            "nest less deeply: no table or value in cluster.toml is more than a few levels deep (e.g. [nodes.NAME.ssh])".into(),
        );
    }
    let array = msg.contains("array");
    let inline_table = msg.contains("inline table");
    if array || inline_table {
        let help = if array {
            "close the array with `]`, or put a `,` between its elements"
        } else {
            "close the inline table with `}` on the same line it starts on"
        };
        // Noticed at the first thing on a line: the `]` or `,` was missing
        // at the end of the last line before it that holds anything.
        if src[..start]
            .rfind('\n')
            .is_some_and(|nl| src[nl + 1..start].trim().is_empty())
        {
            if let Some(end) = end_of_previous_content(&src[..start]) {
                return (end..end, help.into());
            }
        }
        return (span, help.into());
    }
    if msg.contains("duplicate key") {
        let name = &src[start..span.end.clamp(start, src.len())];
        return (
            span,
            format!("`{name}` is defined twice: each key and each [table] (each node) may appear once; merge or rename one"),
        );
    }
    (
        span,
        "fix the TOML syntax here (toml.io describes it); values are written key = \"value\""
            .into(),
    )
}

/// The end of the last line of `before` that holds something other than
/// blanks and a comment.
fn end_of_previous_content(before: &str) -> Option<usize> {
    let mut end = before.len();
    while let Some(nl) = before[..end].rfind('\n') {
        let line_start = before[..nl].rfind('\n').map_or(0, |i| i + 1);
        let line = &before[line_start..nl];
        let content = line.split('#').next().unwrap_or("").trim_end();
        if !content.trim().is_empty() {
            return Some(line_start + content.len());
        }
        end = nl;
    }
    None
}

/// The start of the line with the most nesting (dots, brackets, braces):
/// where a recursion limit was hit.
fn deepest_line(src: &str) -> usize {
    let mut best = (0, 0);
    let mut pos = 0;
    for line in src.split_inclusive('\n') {
        let depth = line
            .bytes()
            .filter(|b| matches!(b, b'.' | b'[' | b'{'))
            .count();
        if depth > best.0 {
            best = (depth, pos);
        }
        pos += line.len();
    }
    best.1
}

/// Collects the problems of one file while it is walked.
pub(super) struct Loader<'s> {
    pub(super) source: SourceText<'s>,
    /// Where relative paths in the file start.
    base_dir: PathBuf,
    /// Each problem with its byte position, sorted by it at the end.
    diags: Vec<(usize, Diagnostic)>,
    /// The label and taint keys of the nodes read so far.
    pub(super) owned_keys: super::KeyOwnership,
    /// Each label key read so far that was valid, once: thousands of nodes
    /// name the same few keys, which they then share rather than copy,
    /// and which are checked once.
    pub(super) label_keys: std::collections::HashMap<String, super::LabelKey>,
}

impl<'s> Loader<'s> {
    fn new(src: &'s str, file: &Path) -> Self {
        let base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Loader {
            source: SourceText::new(src, file),
            base_dir,
            diags: Vec::new(),
            owned_keys: super::KeyOwnership::default(),
            label_keys: std::collections::HashMap::new(),
        }
    }

    pub(super) fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let d = self.source.diagnostic(span.clone(), message, help);
        self.diags.push((span.start.min(self.source.len()), d));
    }

    /// An error about the file as a whole (a missing table), shown at its
    /// start.
    pub(super) fn error_at_start(&mut self, message: String, help: Option<String>) {
        let d = self.source.diagnostic(0..0, message, help);
        self.diags.push((0, d));
    }

    /// How many problems so far (to tell whether a part added any).
    pub(super) fn error_count(&self) -> usize {
        self.diags.len()
    }

    fn finish(mut self) -> Diagnostics {
        // Stable: problems at one place keep the order they were found in.
        self.diags.sort_by_key(|(pos, _)| *pos);
        Diagnostics(self.diags.into_iter().map(|(_, d)| d).collect())
    }

    /// Reports keys of `table` that are not in `allowed`, with a suggestion.
    pub(super) fn check_keys(&mut self, table: &dyn TableLike, allowed: &[&str], what: &str) {
        if table.all_keys_in(allowed) {
            return;
        }
        for (key, span) in table.keys_with_spans() {
            if !allowed.contains(&key.as_str()) {
                let help = did_you_mean(&key, allowed.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("valid keys in {what}: {}", allowed.join(", ")));
                self.error(
                    span.unwrap_or(0..0),
                    format!("unknown key `{key}` in {what}"),
                    Some(help),
                );
            }
        }
    }

    /// `~` is the home directory; a relative path is relative to the config file.
    pub(super) fn path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            if let Some(home) = std::env::var_os("HOME") {
                return PathBuf::from(home).join(rest);
            }
        }
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }
}
