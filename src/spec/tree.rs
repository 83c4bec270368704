//! cluster.toml as the walk reads it: tables, values, and the place of
//! each in the file. Two parsers build it: `plain` for the plain TOML that
//! cluster files are written in (most of the time of loading a large
//! file went into toml_edit's format-preserving document), and toml_edit
//! for everything else, including every syntax error, which it explains.
//! Both give the same tree for the same text, places included: the walk's
//! messages cannot tell which parser read the file.
//!
//! The tree is small and flat for its size, because a large file's tree
//! does not fit in the processor's cache: its keys and strings are borrowed
//! (from the file's text, or from toml_edit's document), places are two
//! `u32`s, and the plain parser builds these very tables (no second tree to
//! copy them from). Dropping it frees only its tables' and arrays' vectors.

use std::collections::HashMap;
use std::ops::Range;

/// A place in the file, or none (toml_edit knows no place for a few
/// items). Offsets are `u32`: a cluster file is far smaller than 4 GiB
/// (`fsutil::MAX_CONFIG_BYTES`), and the plain parser refuses longer text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::spec) struct Place {
    start: u32,
    end: u32,
}

impl Place {
    pub(in crate::spec) const NONE: Place = Place {
        start: u32::MAX,
        end: u32::MAX,
    };

    /// Offsets beyond `u32` (text toml_edit read, over 4 GiB) end at its
    /// limit rather than wrap.
    pub(in crate::spec) fn of(range: Option<Range<usize>>) -> Place {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX - 1);
        match range {
            Some(r) => Place {
                start: clamp(r.start),
                end: clamp(r.end),
            },
            None => Place::NONE,
        }
    }

    pub(in crate::spec) fn range(self) -> Option<Range<usize>> {
        (self != Place::NONE).then_some(self.start as usize..self.end as usize)
    }
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.range().fmt(f)
    }
}

/// A value with its place: a value's own text (quotes and brackets
/// included), a `[table]`'s header, or for a table only implied by a path
/// the key that implied it. The document itself is at 0..0.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::spec) struct Item<'s> {
    pub(in crate::spec) value: Value<'s>,
    pub(in crate::spec) span: Place,
}

#[derive(Debug, Clone, PartialEq)]
pub(in crate::spec) enum Value<'s> {
    String(&'s str),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// Never a valid value in cluster.toml: only its type is shown.
    Datetime,
    Array(Vec<Item<'s>>),
    /// A `[table]`, or a table implied by a header's or a dotted key's path.
    Table(Table<'s>),
    InlineTable(Table<'s>),
    /// `[[table]]`s, each an `Item` holding a `Value::Table`.
    ArrayOfTables(Vec<Item<'s>>),
}

/// A table's entries in the order toml_edit keeps them.
#[derive(Debug, Clone, Default)]
pub(in crate::spec) struct Table<'s> {
    pub(in crate::spec) entries: Vec<Entry<'s>>,
    /// Only implied by a path (`[a.b]` implies `a`; `a.b = 1` implies `a`).
    pub(in crate::spec) implicit: bool,
    /// Implied by a dotted key rather than a header.
    pub(in crate::spec) dotted: bool,
    /// Each key's position in `entries`, once the table is large (`[nodes]`
    /// holds thousands): kept by the plain parser, which looks a key up
    /// before each it adds. `None` below `Table::SCANNED` entries. Boxed:
    /// an empty map would take 48 bytes in each of thousands of tables.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<&'s str, usize>>>,
}

/// The same entries and kinds; the index is a means of building.
impl PartialEq for Table<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
            && self.implicit == other.implicit
            && self.dotted == other.dotted
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(in crate::spec) struct Entry<'s> {
    pub(in crate::spec) key: &'s str,
    /// The key as written (quotes included).
    pub(in crate::spec) key_span: Place,
    pub(in crate::spec) item: Item<'s>,
}

impl<'s> Item<'s> {
    pub(in crate::spec) fn span(&self) -> Option<Range<usize>> {
        self.span.range()
    }

    pub(in crate::spec) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub(in crate::spec) fn as_integer(&self) -> Option<i64> {
        match self.value {
            Value::Integer(i) => Some(i),
            _ => None,
        }
    }

    pub(in crate::spec) fn as_float(&self) -> Option<f64> {
        match self.value {
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    pub(in crate::spec) fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Boolean(b) => Some(b),
            _ => None,
        }
    }

    pub(in crate::spec) fn as_array(&self) -> Option<&[Item<'s>]> {
        match &self.value {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A `[table]` (or an implied one), not an inline table.
    pub(in crate::spec) fn as_table(&self) -> Option<&Table<'s>> {
        match &self.value {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }

    /// A value written after `=` that is neither an array nor a table.
    pub(in crate::spec) fn is_scalar(&self) -> bool {
        matches!(
            self.value,
            Value::String(_)
                | Value::Integer(_)
                | Value::Float(_)
                | Value::Boolean(_)
                | Value::Datetime
        )
    }

    /// Written after `=` (or in an array), not a `[table]` or `[[table]]`.
    pub(in crate::spec) fn is_value(&self) -> bool {
        !matches!(self.value, Value::Table(_) | Value::ArrayOfTables(_))
    }

    /// TOML's name of the type ("inline table").
    pub(in crate::spec) fn toml_type(&self) -> &'static str {
        match self.value {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Boolean(_) => "boolean",
            Value::Datetime => "datetime",
            Value::Array(_) => "array",
            Value::Table(_) => "table",
            Value::InlineTable(_) => "inline table",
            Value::ArrayOfTables(_) => "array of tables",
        }
    }

    /// The type in a message's words ("must be a string, not an integer").
    pub(in crate::spec) fn type_name(&self) -> &'static str {
        match self.value {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
            Value::InlineTable(_) => "an inline table",
            Value::ArrayOfTables(_) => "an array of tables",
        }
    }
}

impl<'s> Table<'s> {
    /// Tables with more entries than this are looked up by hash while the
    /// plain parser builds them.
    const SCANNED: usize = 16;

    /// A table of these entries (toml_edit's, in its order).
    pub(in crate::spec) fn of(entries: Vec<Entry<'s>>, implicit: bool, dotted: bool) -> Table<'s> {
        Table {
            entries,
            implicit,
            dotted,
            index: None,
        }
    }

    /// An empty table implied by a path (`dotted`: by a dotted key).
    pub(in crate::spec) fn implied(dotted: bool) -> Table<'s> {
        Table::of(Vec::new(), true, dotted)
    }

    pub(in crate::spec) fn get(&self, key: &str) -> Option<&Item<'s>> {
        self.entry(key).map(|e| &e.item)
    }

    pub(in crate::spec) fn entry(&self, key: &str) -> Option<&Entry<'s>> {
        self.position(key).map(|i| &self.entries[i])
    }

    pub(in crate::spec) fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|e| e.key == key),
        }
    }

    pub(in crate::spec) fn entry_mut(&mut self, i: usize) -> &mut Entry<'s> {
        &mut self.entries[i]
    }

    /// Adds an entry at the end (its key is not in the table yet).
    pub(in crate::spec) fn push(&mut self, entry: Entry<'s>) -> usize {
        let i = self.entries.len();
        let key = entry.key;
        self.entries.push(entry);
        match &mut self.index {
            Some(index) => {
                index.insert(key, i);
            }
            None if i == Self::SCANNED => self.reindex(),
            None => {}
        }
        i
    }

    /// Removes an entry, keeping the others' order (as toml_edit's
    /// `shift_remove`).
    pub(in crate::spec) fn remove(&mut self, key: &str) -> Option<Entry<'s>> {
        let i = self.position(key)?;
        let entry = self.entries.remove(i);
        self.reindex();
        Some(entry)
    }

    fn reindex(&mut self) {
        self.index = (self.entries.len() > Self::SCANNED).then(|| {
            Box::new(
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.key, i))
                    .collect(),
            )
        });
    }
}

/// The tree of a document toml_edit parsed (any valid TOML), borrowing its
/// keys and strings.
pub(in crate::spec) fn from_toml_edit(doc: &toml_edit::Table) -> Item<'_> {
    Item {
        span: Place::of(doc.span()),
        value: Value::Table(table(doc)),
    }
}

fn table(t: &toml_edit::Table) -> Table<'_> {
    Table::of(entries(t), t.is_implicit(), t.is_dotted())
}

fn entries(t: &dyn toml_edit::TableLike) -> Vec<Entry<'_>> {
    t.iter()
        .filter_map(|(k, item)| {
            Some(Entry {
                key: k,
                key_span: Place::of(t.key(k).and_then(|k| k.span())),
                item: from_item(item)?,
            })
        })
        .collect()
}

fn from_item(item: &toml_edit::Item) -> Option<Item<'_>> {
    Some(match item {
        toml_edit::Item::None => return None,
        toml_edit::Item::Value(v) => from_value(v),
        toml_edit::Item::Table(t) => Item {
            span: Place::of(t.span()),
            value: Value::Table(table(t)),
        },
        toml_edit::Item::ArrayOfTables(a) => Item {
            span: Place::of(a.span()),
            value: Value::ArrayOfTables(
                a.iter()
                    .map(|t| Item {
                        span: Place::of(t.span()),
                        value: Value::Table(table(t)),
                    })
                    .collect(),
            ),
        },
    })
}

fn from_value(v: &toml_edit::Value) -> Item<'_> {
    use toml_edit::Value as V;
    let value = match v {
        V::String(s) => Value::String(s.value()),
        V::Integer(i) => Value::Integer(*i.value()),
        V::Float(f) => Value::Float(*f.value()),
        V::Boolean(b) => Value::Boolean(*b.value()),
        V::Datetime(_) => Value::Datetime,
        V::Array(a) => Value::Array(a.iter().map(from_value).collect()),
        // An inline table is implied only by a dotted key inside another.
        V::InlineTable(t) => {
            Value::InlineTable(Table::of(entries(t), t.is_dotted(), t.is_dotted()))
        }
    };
    Item {
        span: Place::of(v.span()),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry<'_> {
        Entry {
            key,
            key_span: Place::NONE,
            item: Item {
                value: Value::Boolean(true),
                span: Place::NONE,
            },
        }
    }

    #[test]
    fn a_place_keeps_its_range_and_none_stays_none() {
        assert_eq!(Place::of(Some(3..17)).range(), Some(3..17));
        assert_eq!(Place::of(Some(0..0)).range(), Some(0..0));
        assert_eq!(Place::of(None).range(), None);
        assert_eq!(Place::of(None), Place::NONE);
        // Beyond u32: clamped, never taken for "no place".
        let far = Place::of(Some(1 << 40..(1 << 40) + 1)).range();
        assert_eq!(far, Some(u32::MAX as usize - 1..u32::MAX as usize - 1));
    }

    #[test]
    fn a_large_table_finds_each_key_by_hash_and_keeps_order_on_removal() {
        let names: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut t = Table::default();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.position(n), None);
            assert_eq!(t.push(entry(n)), i);
            assert_eq!(t.index.is_some(), i >= Table::SCANNED);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.position(n), Some(i), "{n}");
        }
        assert_eq!(t.remove("k3").map(|e| e.key), Some("k3"));
        assert_eq!(t.position("k3"), None);
        assert_eq!(t.position("k4"), Some(3));
        assert_eq!(t.position("k39"), Some(38));
        assert_eq!(t.get("k39"), Some(&entry("k39").item));
        // Back below the threshold: scanned again, and still found.
        for n in &names[5..30] {
            t.remove(n);
        }
        assert!(t.index.is_none());
        assert_eq!(t.position("k35"), Some(9));
        // The index is not part of what a table is.
        let scanned = Table::of(t.entries.clone(), false, false);
        assert_eq!(scanned, t);
    }
}
