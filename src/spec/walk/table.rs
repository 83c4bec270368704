//! Reading cluster.toml's tree: tables and inline tables alike, and typed
//! values whose type errors are reported with their place.

use crate::spec::load::Loader;
use crate::spec::tree::{Item, Table, Value};
use std::ops::Range;

impl Loader<'_> {
    pub(in crate::spec) fn type_error(&mut self, item: &Item, what: &str, expected: &str) {
        let span = value_span(Some(item));
        let help = self.type_help(item, span.clone(), what, expected);
        // `what` may already quote its own name ("label `x`").
        let shown = if what.contains('`') {
            what.to_string()
        } else {
            format!("`{what}`")
        };
        self.error(
            span,
            format!("{shown} must be {expected}, not {}", item.type_name()),
            Some(help),
        );
    }

    /// What to write instead of a value of the wrong type: the value as
    /// written, turned into the type wanted where that is plain.
    fn type_help(&self, item: &Item, span: Range<usize>, what: &str, expected: &str) -> String {
        let written = match item {
            _ if item.is_value() && span.end <= self.source.len() && span.start < span.end => {
                Some(self.source.slice(span).trim())
            }
            _ => None,
        }
        .filter(|w| !w.contains('\n') && w.chars().count() <= 80);
        // A plain key can be shown as `key = value`; `label `x`` and such cannot.
        let assign = |v: &str| {
            if what.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                format!("{what} = {v}")
            } else {
                v.to_string()
            }
        };
        let scalar = item.is_scalar();
        let one_string = item
            .as_array()
            .filter(|a| a.len() == 1)
            .and_then(|a| a.first())
            .and_then(|v| v.as_str());
        match (expected, written, item.as_str()) {
            ("a string", Some(w), None)
                if DURATION_KEYS.contains(&what)
                    && (item.as_integer().is_some() || item.as_float().is_some()) =>
            {
                format!(
                    "write it as a duration in quotes, with its unit: {} or {}",
                    assign(&format!("\"{w}s\"")),
                    assign(&format!("\"{w}m\""))
                )
            }
            ("a string", _, None) if DURATION_KEYS.contains(&what) => {
                format!("write a duration in quotes: {}", assign("\"15m\""))
            }
            ("a string", Some(w), None) if scalar => {
                let quoted = toml_edit::Value::from(w).to_string();
                format!("write it as a string: {}", assign(quoted.trim()))
            }
            ("a string", _, None) if one_string.is_some() => {
                let quoted = toml_edit::Value::from(one_string.unwrap_or_default()).to_string();
                format!("write one string, not an array: {}", assign(quoted.trim()))
            }
            ("a string", _, None) => format!("write one string in quotes: {}", assign("\"...\"")),
            ("true or false", _, Some(s)) if matches!(s, "true" | "false") => {
                format!("write it without quotes: {}", assign(s))
            }
            ("true or false", _, _) => format!("write {} or {}", assign("true"), assign("false")),
            ("an array of strings", _, Some(s)) => {
                let quoted = toml_edit::Value::from(s).to_string();
                format!(
                    "write it as an array: {}",
                    assign(&format!("[{}]", quoted.trim()))
                )
            }
            (e, _, _) if e.starts_with("a table") => {
                let name = what.trim_start_matches('[').trim_end_matches(']');
                format!(
                    "write it as a table: [{name}] on a line of its own, then its keys below it"
                )
            }
            _ => format!("write `{what}` as {expected} (see \"Every key\" in the README)"),
        }
    }

    /// The value of `key` if present and of the type `read` accepts; a
    /// value of another type is reported as not being `expected`.
    fn opt_typed<T>(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        expected: &str,
        read: impl FnOnce(&Item<'_>) -> Option<T>,
    ) -> Option<T> {
        let item = t.get(key)?;
        let value = read(item);
        if value.is_none() {
            self.type_error(item, key, expected);
        }
        value
    }

    /// A string value; an empty one or one with a control character is
    /// reported (no key of cluster.toml means anything by them).
    pub(in crate::spec) fn opt_str(&mut self, t: &dyn TableLike, key: &str) -> Option<String> {
        self.opt_text(t, key).map(str::to_string)
    }

    /// `opt_str` without a copy, for values that are parsed.
    fn opt_text<'t>(&mut self, t: &'t dyn TableLike, key: &str) -> Option<&'t str> {
        let item = t.get(key)?;
        let Some(s) = item.as_str() else {
            self.type_error(item, key, "a string");
            return None;
        };
        if s.is_empty() {
            self.error(
                value_span(Some(item)),
                format!("`{key}` is empty"),
                Some(format!(
                    "write a value between the quotes, or remove `{key}` where it has a default"
                )),
            );
            return None;
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            self.error(
                value_span(Some(item)),
                format!(
                    "`{key}` contains the control character U+{:04X}",
                    u32::from(c)
                ),
                Some("remove it: values in cluster.toml are plain text on one line".into()),
            );
            return None;
        }
        Some(s)
    }

    pub(in crate::spec) fn opt_bool(&mut self, t: &dyn TableLike, key: &str) -> Option<bool> {
        self.opt_typed(t, key, "true or false", |i| i.as_bool())
    }

    pub(in crate::spec) fn req_str(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        what: &str,
    ) -> Option<String> {
        if t.get(key).is_none() {
            let span = t.span().unwrap_or(0..0);
            self.error(
                span.start..span.start,
                format!("missing `{key}` in {what}"),
                Some(format!("add {key} = ... to {what}")),
            );
            return None;
        }
        self.opt_str(t, key)
    }

    pub(in crate::spec) fn opt_parsed<T>(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.opt_text(t, key)?;
        match parse(s) {
            Ok(v) => Some(v),
            Err(e) => {
                // Parsers say "what is wrong; what to write".
                let (problem, fix) = match e.split_once("; ") {
                    Some((p, f)) => (p.to_string(), f.to_string()),
                    None => (
                        e.clone(),
                        format!("see `{key}` under \"Every key\" in the README"),
                    ),
                };
                let span = value_span(t.get(key));
                self.error(span, format!("{key} in {what}: {problem}"), Some(fix));
                None
            }
        }
    }

    pub(in crate::spec) fn req_parsed<T>(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if t.get(key).is_none() {
            // Reports the missing key.
            return self.req_str(t, key, what).and(None);
        }
        self.opt_parsed(t, key, what, parse)
    }

    pub(in crate::spec) fn str_array(
        &mut self,
        item: &Item,
        what: &str,
    ) -> Vec<(String, Range<usize>)> {
        let Some(arr) = item.as_array() else {
            self.type_error(item, what, "an array of strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in arr.iter() {
            let span = v.span().unwrap_or(0..0);
            match v.as_str() {
                Some(s) => out.push((s.to_string(), span)),
                None => {
                    let written = self.source.slice(span.clone()).trim();
                    let quoted = toml_edit::Value::from(written).to_string();
                    self.error(
                        span,
                        format!("`{what}` must contain only strings, not {}", v.toml_type()),
                        Some(format!("quote it: {}", quoted.trim())),
                    )
                }
            }
        }
        out
    }
}

/// Keys whose string is a duration: a bare number there needs a unit too.
const DURATION_KEYS: &[&str] = &[
    "ttl",
    "gate_timeout",
    "step_timeout",
    "drain_timeout",
    "reboot_timeout",
    "connect_timeout",
];

/// Tables and inline tables alike.
pub(in crate::spec) trait TableLike {
    fn get(&self, key: &str) -> Option<&Item<'_>>;
    fn span(&self) -> Option<Range<usize>>;
    fn key_span(&self, key: &str) -> Option<Range<usize>>;
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)>;
    /// Whether every key is one of `allowed` (what is checked on every
    /// table, so it allocates nothing).
    fn all_keys_in(&self, allowed: &[&str]) -> bool;
    /// (key, key span, value) in file order.
    fn entries(&self) -> Vec<(&str, Option<Range<usize>>, &Item<'_>)>;
}

/// A table or an inline table, read alike.
pub(in crate::spec) struct AnyTable<'a, 's> {
    table: &'a Table<'s>,
    span: Option<Range<usize>>,
    inline: bool,
}

impl TableLike for AnyTable<'_, '_> {
    fn get(&self, key: &str) -> Option<&Item<'_>> {
        self.table.get(key)
    }
    fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }
    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.entry(key).and_then(|e| e.key_span.range())
    }
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)> {
        self.table
            .entries
            .iter()
            .map(|e| (e.key.to_string(), e.key_span.range()))
            .collect()
    }
    fn all_keys_in(&self, allowed: &[&str]) -> bool {
        self.table.entries.iter().all(|e| allowed.contains(&e.key))
    }
    fn entries(&self) -> Vec<(&str, Option<Range<usize>>, &Item<'_>)> {
        file_order(self.table, self.inline)
            .into_iter()
            .map(|i| {
                let e = &self.table.entries[i];
                (e.key, e.key_span.range(), &e.item)
            })
            .collect()
    }
}

/// The places of `table`'s entries in file order (what
/// [`TableLike::entries`] walks). A table's own entries and its
/// subtables' may be written in any order; an inline table's are in the
/// order written.
pub(super) fn file_order(table: &Table<'_>, inline: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..table.entries.len()).collect();
    if !inline {
        order.sort_by_key(|&i| {
            let e = &table.entries[i];
            item_pos(&e.key_span.range(), &e.item)
        });
    }
    order
}

/// Position of a table in the file: dotted/implicit tables have no span of their own.
pub(super) fn item_pos(key_span: &Option<Range<usize>>, item: &Item) -> usize {
    item.as_table()
        .and_then(|_| item.span())
        .map(|s| s.start)
        .or_else(|| key_span.as_ref().map(|s| s.start))
        .unwrap_or(usize::MAX)
}

pub(in crate::spec) fn as_table_like<'a, 's>(item: &'a Item<'s>) -> Option<AnyTable<'a, 's>> {
    let (table, inline) = match &item.value {
        Value::Table(t) => (t, false),
        Value::InlineTable(t) => (t, true),
        _ => return None,
    };
    Some(AnyTable {
        table,
        span: item.span(),
        inline,
    })
}

pub(in crate::spec) fn value_span(item: Option<&Item>) -> Range<usize> {
    item.and_then(|i| i.span()).unwrap_or(0..0)
}
