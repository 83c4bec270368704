//! Reading cluster.toml into a validated `Spec`. Every problem is collected
//! (not only the first) and carries file:line:column and what to do.
//!
//! The `Loader` here only records problems; `walk` builds the Spec from the
//! document table by table and `checks` compares what the tables say to
//! each other.

use super::diagnostic::SourceText;
use super::suggest::did_you_mean;
use super::walk::TableLike;
use super::{Diagnostic, Diagnostics, Spec};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml_edit::Document;

pub fn load_file(path: &Path) -> Result<Spec, Diagnostics> {
    match crate::fsutil::read_regular_string(path, crate::fsutil::MAX_CONFIG_BYTES) {
        Ok(src) => load_str(&src, path),
        Err(e) => Err(Diagnostics(vec![Diagnostic::about_file(
            path,
            format!("cannot read {}: {e}", path.display()),
            None,
        )])),
    }
}

/// Parses and validates `src` as if read from `path` (relative paths in the
/// file resolve against `path`'s directory).
pub fn load_str(src: &str, path: &Path) -> Result<Spec, Diagnostics> {
    let mut cx = Loader::new(src, path);
    let doc = match Document::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            let help = if msg.contains("duplicate key") {
                let name = cx.source.slice(span.clone());
                Some(format!(
                    "`{name}` is defined twice: each key and each [table] (each node) may appear once; merge or rename one"
                ))
            } else {
                None
            };
            cx.error(span, format!("invalid TOML: {msg}"), help);
            return Err(cx.finish());
        }
    };
    let spec = cx.spec(doc.as_table());
    let diags = cx.finish();
    match spec {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(diags),
    }
}

/// Collects the problems of one file while it is walked.
pub(super) struct Loader<'s> {
    pub(super) source: SourceText<'s>,
    /// Where relative paths in the file start.
    base_dir: PathBuf,
    /// Each problem with its byte position, sorted by it at the end.
    diags: Vec<(usize, Diagnostic)>,
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
        }
    }

    pub(super) fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let d = self.source.diagnostic(span.clone(), message, help);
        self.diags.push((span.start.min(self.source.len()), d));
    }

    /// An error about the file as a whole (a missing table).
    pub(super) fn error_at_start(&mut self, message: String, help: Option<String>) {
        let d = Diagnostic::about_file(&self.source.file, message, help);
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
