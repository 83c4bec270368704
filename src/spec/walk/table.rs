//! Reading toml_edit's document: tables and inline tables alike, and typed
//! values whose type errors are reported with their place.

use crate::spec::load::Loader;
use std::ops::Range;
use toml_edit::Item;

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
            format!("{shown} must be {expected}, not {}", type_name(item)),
            Some(help),
        );
    }

    /// What to write instead of a value of the wrong type: the value as
    /// written, turned into the type wanted where that is plain.
    fn type_help(&self, item: &Item, span: Range<usize>, what: &str, expected: &str) -> String {
        let written = match item {
            Item::Value(_) if span.end <= self.source.len() && span.start < span.end => {
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
        let scalar = item
            .as_value()
            .is_some_and(|v| !v.is_array() && !v.is_inline_table());
        let one_string = item
            .as_array()
            .filter(|a| a.len() == 1)
            .and_then(|a| a.get(0))
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
        read: impl FnOnce(&Item) -> Option<T>,
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
        let s = self.opt_typed(t, key, "a string", |i| i.as_str().map(str::to_string))?;
        if s.is_empty() {
            self.error(
                value_span(t.get(key)),
                format!("`{key}` is empty"),
                Some(format!(
                    "write a value between the quotes, or remove `{key}` where it has a default"
                )),
            );
            return None;
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            self.error(
                value_span(t.get(key)),
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
        self.opt_typed(t, key, "true or false", Item::as_bool)
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
        let s = self.opt_str(t, key)?;
        match parse(&s) {
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
                    let quoted = toml_edit::Value::from(v.to_string().trim()).to_string();
                    self.error(
                        span,
                        format!("`{what}` must contain only strings, not {}", v.type_name()),
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
    fn get(&self, key: &str) -> Option<&Item>;
    fn span(&self) -> Option<Range<usize>>;
    fn key_span(&self, key: &str) -> Option<Range<usize>>;
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)>;
    /// Whether every key is one of `allowed` (what is checked on every
    /// table, so it allocates nothing).
    fn all_keys_in(&self, allowed: &[&str]) -> bool;
    /// (key, key span, value) in file order.
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)>;
}

impl TableLike for &toml_edit::Table {
    fn get(&self, key: &str) -> Option<&Item> {
        toml_edit::Table::get(self, key)
    }
    fn span(&self) -> Option<Range<usize>> {
        toml_edit::Table::span(self)
    }
    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.key(key).and_then(|k| k.span())
    }
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)> {
        self.iter()
            .map(|(k, _)| (k.to_string(), self.key_span(k)))
            .collect()
    }
    fn all_keys_in(&self, allowed: &[&str]) -> bool {
        self.iter().all(|(k, _)| allowed.contains(&k))
    }
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)> {
        table_entries(self)
    }
}

/// A table's entries in file order (a table's own entries and its
/// subtables' may be written in any order).
fn table_entries(t: &toml_edit::Table) -> Vec<(String, Option<Range<usize>>, &Item)> {
    let mut v: Vec<_> = t
        .iter()
        .map(|(k, i)| (k.to_string(), t.key(k).and_then(|k| k.span()), i))
        .collect();
    v.sort_by_key(|(_, span, item)| item_pos(span, item));
    v
}

/// Position of a table in the file: dotted/implicit tables have no span of their own.
fn item_pos(key_span: &Option<Range<usize>>, item: &Item) -> usize {
    item.as_table()
        .and_then(|t| t.span())
        .map(|s| s.start)
        .or_else(|| key_span.as_ref().map(|s| s.start))
        .unwrap_or(usize::MAX)
}

/// A table or an inline table, read alike, without copying its values.
pub(in crate::spec) struct AnyTable<'a> {
    kind: Kind<'a>,
    /// The entries of a small table in its order: a node's table has a
    /// handful of keys and is asked for each a few times, which a scan
    /// answers faster than hashing the key. `None` for a large table
    /// (`[nodes]`), which is hashed into.
    small: Option<Vec<(&'a str, &'a Item)>>,
}

enum Kind<'a> {
    Table(&'a toml_edit::Table),
    Inline(&'a toml_edit::InlineTable),
}

/// Tables with more entries than this are looked up by hash.
const SCANNED: usize = 16;

impl<'a> AnyTable<'a> {
    fn new(kind: Kind<'a>) -> Self {
        let mut entries: Vec<(&'a str, &'a Item)> = Vec::new();
        let mut all = match kind {
            Kind::Table(t) => t.iter(),
            Kind::Inline(t) => toml_edit::TableLike::iter(t),
        }
        .filter(|(_, item)| !item.is_none());
        let small = loop {
            match all.next() {
                None => break true,
                Some(_) if entries.len() == SCANNED => break false,
                Some(entry) => entries.push(entry),
            }
        };
        AnyTable {
            kind,
            small: small.then_some(entries),
        }
    }

    fn as_dyn(&self) -> &'a dyn toml_edit::TableLike {
        match self.kind {
            Kind::Table(t) => t,
            Kind::Inline(t) => t,
        }
    }
}

impl TableLike for AnyTable<'_> {
    fn get(&self, key: &str) -> Option<&Item> {
        match &self.small {
            Some(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, i)| *i),
            None => self.as_dyn().get(key).filter(|i| !i.is_none()),
        }
    }
    fn span(&self) -> Option<Range<usize>> {
        match self.kind {
            Kind::Table(t) => t.span(),
            Kind::Inline(t) => t.span(),
        }
    }
    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.as_dyn().key(key).and_then(|k| k.span())
    }
    fn keys_with_spans(&self) -> Vec<(String, Option<Range<usize>>)> {
        self.as_dyn()
            .iter()
            .filter(|(_, i)| !i.is_none())
            .map(|(k, _)| (k.to_string(), self.key_span(k)))
            .collect()
    }
    fn all_keys_in(&self, allowed: &[&str]) -> bool {
        match &self.small {
            Some(entries) => entries.iter().all(|(k, _)| allowed.contains(k)),
            None => self
                .as_dyn()
                .iter()
                .filter(|(_, i)| !i.is_none())
                .all(|(k, _)| allowed.contains(&k)),
        }
    }
    fn entries(&self) -> Vec<(String, Option<Range<usize>>, &Item)> {
        match self.kind {
            Kind::Table(t) => table_entries(t),
            Kind::Inline(_) => self
                .as_dyn()
                .iter()
                .filter(|(_, i)| !i.is_none())
                .map(|(k, i)| (k.to_string(), self.key_span(k), i))
                .collect(),
        }
    }
}

pub(in crate::spec) fn as_table_like(item: &Item) -> Option<AnyTable<'_>> {
    if let Some(t) = item.as_table() {
        return Some(AnyTable::new(Kind::Table(t)));
    }
    item.as_inline_table()
        .map(|t| AnyTable::new(Kind::Inline(t)))
}

pub(in crate::spec) fn value_span(item: Option<&Item>) -> Range<usize> {
    item.and_then(|i| i.span()).unwrap_or(0..0)
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => match v.type_name() {
            "string" => "a string",
            "integer" => "an integer",
            "float" => "a float",
            "boolean" => "a boolean",
            "datetime" => "a datetime",
            "array" => "an array",
            "inline table" => "an inline table",
            other => other,
        },
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}
