//! cluster.toml as the walk reads it: tables, values, and the place of
//! each in the file. Two parsers build it: `plain` for the plain TOML that
//! cluster files are written in (most of the time of loading a large
//! file went into toml_edit's format-preserving document), and toml_edit
//! for everything else, including every syntax error, which it explains.
//! Both give the same tree for the same text, places included: the walk's
//! messages cannot tell which parser read the file.

use std::borrow::Cow;
use std::ops::Range;

/// A value with its place: a value's own text (quotes and brackets
/// included), a `[table]`'s header, or for a table only implied by a path
/// the key that implied it. The document itself is at 0..0.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::spec) struct Item<'s> {
    pub(in crate::spec) value: Value<'s>,
    pub(in crate::spec) span: Option<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(in crate::spec) enum Value<'s> {
    String(Cow<'s, str>),
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
#[derive(Debug, Clone, PartialEq, Default)]
pub(in crate::spec) struct Table<'s> {
    pub(in crate::spec) entries: Vec<Entry<'s>>,
    /// Only implied by a path (`[a.b]` implies `a`; `a.b = 1` implies `a`).
    pub(in crate::spec) implicit: bool,
    /// Implied by a dotted key rather than a header.
    pub(in crate::spec) dotted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(in crate::spec) struct Entry<'s> {
    pub(in crate::spec) key: Cow<'s, str>,
    /// The key as written (quotes included).
    pub(in crate::spec) key_span: Option<Range<usize>>,
    pub(in crate::spec) item: Item<'s>,
}

impl<'s> Item<'s> {
    pub(in crate::spec) fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
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
    pub(in crate::spec) fn get(&self, key: &str) -> Option<&Item<'s>> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.item)
    }

    pub(in crate::spec) fn entry(&self, key: &str) -> Option<&Entry<'s>> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// The tree of a document toml_edit parsed (any valid TOML).
pub(in crate::spec) fn from_toml_edit(doc: &toml_edit::Table) -> Item<'static> {
    Item {
        span: doc.span(),
        value: Value::Table(table(doc)),
    }
}

fn table(t: &toml_edit::Table) -> Table<'static> {
    Table {
        entries: entries(t),
        implicit: t.is_implicit(),
        dotted: t.is_dotted(),
    }
}

fn entries(t: &dyn toml_edit::TableLike) -> Vec<Entry<'static>> {
    t.iter()
        .filter_map(|(k, item)| {
            Some(Entry {
                key: Cow::Owned(k.to_string()),
                key_span: t.key(k).and_then(|k| k.span()),
                item: from_item(item)?,
            })
        })
        .collect()
}

fn from_item(item: &toml_edit::Item) -> Option<Item<'static>> {
    Some(match item {
        toml_edit::Item::None => return None,
        toml_edit::Item::Value(v) => from_value(v),
        toml_edit::Item::Table(t) => Item {
            span: t.span(),
            value: Value::Table(table(t)),
        },
        toml_edit::Item::ArrayOfTables(a) => Item {
            span: a.span(),
            value: Value::ArrayOfTables(
                a.iter()
                    .map(|t| Item {
                        span: t.span(),
                        value: Value::Table(table(t)),
                    })
                    .collect(),
            ),
        },
    })
}

fn from_value(v: &toml_edit::Value) -> Item<'static> {
    use toml_edit::Value as V;
    let value = match v {
        V::String(s) => Value::String(Cow::Owned(s.value().clone())),
        V::Integer(i) => Value::Integer(*i.value()),
        V::Float(f) => Value::Float(*f.value()),
        V::Boolean(b) => Value::Boolean(*b.value()),
        V::Datetime(_) => Value::Datetime,
        V::Array(a) => Value::Array(a.iter().map(from_value).collect()),
        // An inline table is implied only by a dotted key inside another.
        V::InlineTable(t) => Value::InlineTable(Table {
            entries: entries(t),
            implicit: t.is_dotted(),
            dotted: t.is_dotted(),
        }),
    };
    Item {
        span: v.span(),
        value,
    }
}
