//! A fast parser for the plain TOML cluster files are written in: bare
//! and quoted keys, strings without escapes, decimal integers, booleans,
//! arrays, one-line inline tables, `[table]` headers and comments.
//! Anything else, and any mistake, gives `None`: toml_edit then reads the
//! file, and explains a mistake in its words. So this parser only has to
//! agree with toml_edit on what it accepts, and it builds tables as
//! toml_edit does (the same order, places and implied tables), refusing
//! every case toml_edit reports as an error.

use super::tree::{Entry, Item, Place, Table, Value};
use std::ops::Range;

/// The tree of `src`, or `None` when it is not plain TOML (or not TOML),
/// or too long for the tree's places.
pub(in crate::spec) fn parse(src: &str) -> Option<Item<'_>> {
    u32::try_from(src.len()).ok()?;
    Parser {
        text: src,
        bytes: src.as_bytes(),
        pos: 0,
        depth: 0,
    }
    .document()
}

/// A key as written: its name and its place (quotes included).
type Key<'s> = (&'s str, Range<usize>);

struct Parser<'s> {
    text: &'s str,
    bytes: &'s [u8],
    pos: usize,
    /// Arrays and inline tables open around `pos`.
    depth: usize,
}

/// toml_edit refuses nesting beyond a limit; cluster files nest a few
/// levels, so anything deeper than this is left to it.
const MAX_DEPTH: usize = 8;

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.bytes[self.pos..].starts_with(s)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A line break, if one is here.
    fn newline(&mut self) -> bool {
        if self.peek() == Some(b'\n') {
            self.pos += 1;
            true
        } else if self.starts_with(b"\r\n") {
            self.pos += 2;
            true
        } else {
            false
        }
    }

    /// From `#` to the end of the line.
    fn comment(&mut self) -> Option<()> {
        self.pos += 1;
        while let Some(c) = self.peek() {
            if c == b'\n' || c == b'\r' {
                break;
            }
            if is_control(c) && c != b'\t' {
                return None;
            }
            self.pos += 1;
        }
        Some(())
    }

    /// Blanks, a comment, then the end of the line or of the file.
    fn end_of_line(&mut self) -> Option<()> {
        self.ws();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        (self.peek().is_none() || self.newline()).then_some(())
    }

    /// Blanks, line breaks and comments, as between an array's elements.
    fn array_space(&mut self) -> Option<()> {
        loop {
            self.ws();
            match self.peek() {
                Some(b'#') => self.comment()?,
                Some(b'\n' | b'\r') => {
                    if !self.newline() {
                        return None;
                    }
                }
                _ => return Some(()),
            }
        }
    }

    fn document(mut self) -> Option<Item<'s>> {
        let mut state = State::default();
        loop {
            self.ws();
            match self.peek() {
                None => break,
                Some(b'#' | b'\n' | b'\r') => self.end_of_line()?,
                Some(b'[') => {
                    let header = self.header()?;
                    self.end_of_line()?;
                    state.finish_table()?;
                    state.start_table(header)?;
                }
                Some(_) => {
                    let (path, key) = self.key_path()?;
                    self.ws();
                    self.expect(b'=')?;
                    self.ws();
                    let item = self.value()?;
                    self.end_of_line()?;
                    state.key_value(&path, key, item)?;
                }
            }
        }
        state.finish_table()?;
        Some(Item {
            span: Place::of(Some(0..0)),
            value: Value::Table(state.root),
        })
    }

    /// `[a.b]`; `[[a]]` is not plain.
    fn header(&mut self) -> Option<Header<'s>> {
        let start = self.pos;
        self.pos += 1;
        if self.peek() == Some(b'[') {
            return None;
        }
        self.ws();
        let (path, key) = self.key_path()?;
        self.ws();
        self.expect(b']')?;
        Some(Header {
            path,
            key,
            span: start..self.pos,
        })
    }

    /// `a.b.c`: the path (`a`, `b`) and the key (`c`).
    fn key_path(&mut self) -> Option<(Vec<Key<'s>>, Key<'s>)> {
        let mut path = Vec::new();
        let mut key = self.key()?;
        loop {
            let before = self.pos;
            self.ws();
            if self.peek() != Some(b'.') {
                self.pos = before;
                return Some((path, key));
            }
            self.pos += 1;
            self.ws();
            path.push(key);
            if path.len() == MAX_DEPTH {
                return None;
            }
            key = self.key()?;
        }
    }

    fn key(&mut self) -> Option<Key<'s>> {
        let start = self.pos;
        let name = match self.peek()? {
            q @ (b'"' | b'\'') => self.quoted(q)?,
            _ => {
                while matches!(
                    self.peek(),
                    Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
                ) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
                &self.text[start..self.pos]
            }
        };
        Some((name, start..self.pos))
    }

    /// A one-line string between `quote`s with no escape in it: its text
    /// is the file's.
    fn quoted(&mut self, quote: u8) -> Option<&'s str> {
        self.pos += 1;
        let start = self.pos;
        loop {
            let c = self.peek()?;
            if c == quote {
                break;
            }
            if is_control(c) || (c == b'\\' && quote == b'"') {
                return None;
            }
            self.pos += 1;
        }
        self.pos += 1;
        Some(&self.text[start..self.pos - 1])
    }

    fn value(&mut self) -> Option<Item<'s>> {
        let start = self.pos;
        let value = match self.peek()? {
            q @ (b'"' | b'\'') => {
                if self.starts_with(&[q, q, q]) {
                    return None;
                }
                Value::String(self.quoted(q)?)
            }
            b't' if self.starts_with(b"true") => {
                self.pos += 4;
                Value::Boolean(true)
            }
            b'f' if self.starts_with(b"false") => {
                self.pos += 5;
                Value::Boolean(false)
            }
            b'-' | b'0'..=b'9' => Value::Integer(self.integer()?),
            b'[' | b'{' if self.depth == MAX_DEPTH => return None,
            b'[' => {
                self.depth += 1;
                let items = self.array()?;
                self.depth -= 1;
                Value::Array(items)
            }
            b'{' => {
                self.depth += 1;
                let table = self.inline_table()?;
                self.depth -= 1;
                Value::InlineTable(table)
            }
            _ => return None,
        };
        Some(Item {
            value,
            span: Place::of(Some(start..self.pos)),
        })
    }

    /// A decimal integer: `0`, `42`, `-7` (no `+`, `_`, leading zero or
    /// radix prefix; whatever follows the digits is the caller's to judge,
    /// so `1.5` and `1979-05-27` end up refused).
    fn integer(&mut self) -> Option<i64> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let n = self.pos - digits;
        if n == 0 || (n > 1 && self.bytes[digits] == b'0') {
            return None;
        }
        self.text[start..self.pos].parse().ok()
    }

    fn array(&mut self) -> Option<Vec<Item<'s>>> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.array_space()?;
            if self.peek()? == b']' {
                self.pos += 1;
                return Some(items);
            }
            items.push(self.value()?);
            self.array_space()?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    /// `{ k = v, ... }` on one line, without dotted keys or a trailing comma.
    fn inline_table(&mut self) -> Option<Table<'s>> {
        self.pos += 1;
        let mut entries: Vec<Entry<'s>> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                let (name, span) = self.key()?;
                self.ws();
                self.expect(b'=')?;
                self.ws();
                let item = self.value()?;
                if entries.iter().any(|e| e.key == name) {
                    return None;
                }
                entries.push(Entry {
                    key: name,
                    key_span: Place::of(Some(span)),
                    item,
                });
                self.ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(Table::of(entries, false, false))
    }
}

/// TOML allows no control character but tab in a comment or a string
/// (and this parser takes none but in comments).
fn is_control(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

struct Header<'s> {
    path: Vec<Key<'s>>,
    key: Key<'s>,
    span: Range<usize>,
}

/// An entry for `key`.
fn entry<'s>(key: Key<'s>, item: Item<'s>) -> Entry<'s> {
    Entry {
        key: key.0,
        key_span: Place::of(Some(key.1)),
        item,
    }
}

/// toml_edit's way of putting a document's tables together, with `None`
/// wherever it reports an error.
#[derive(Default)]
struct State<'s> {
    root: Table<'s>,
    /// The table the last header started (the root's own keys before one).
    current: Table<'s>,
    header: Option<Header<'s>>,
}

impl<'s> State<'s> {
    fn key_value(&mut self, path: &[Key<'s>], key: Key<'s>, item: Item<'s>) -> Option<()> {
        let dotted = !path.is_empty();
        let parent = descend(&mut self.current, path, dotted)?;
        if (dotted && !parent.implicit) || parent.position(key.0).is_some() {
            return None;
        }
        parent.push(entry(key, item));
        Some(())
    }

    /// The table a header started goes into its parent.
    fn finish_table(&mut self) -> Option<()> {
        let done = std::mem::take(&mut self.current);
        match self.header.take() {
            Some(header) => {
                let parent = descend(&mut self.root, &header.path, false)?;
                if parent.position(header.key.0).is_some() {
                    return None;
                }
                let table = Item {
                    span: Place::of(Some(header.span)),
                    value: Value::Table(done),
                };
                parent.push(entry(header.key, table));
            }
            None => self.root = done,
        }
        Some(())
    }

    /// A header may name a table only implied so far (its subtables kept).
    fn start_table(&mut self, header: Header<'s>) -> Option<()> {
        let parent = descend(&mut self.root, &header.path, false)?;
        match parent.remove(header.key.0).map(|e| e.item.value) {
            None => {}
            Some(Value::Table(t)) if t.implicit && !t.dotted => self.current = t,
            Some(_) => return None,
        }
        self.current.implicit = false;
        self.current.dotted = false;
        self.header = Some(header);
        Some(())
    }
}

/// The table at `path` under `table`, implying the missing ones.
fn descend<'t, 's>(
    mut table: &'t mut Table<'s>,
    path: &[Key<'s>],
    dotted: bool,
) -> Option<&'t mut Table<'s>> {
    for key in path {
        let i = match table.position(key.0) {
            Some(i) => i,
            None => table.push(entry(
                key.clone(),
                Item {
                    span: Place::of(Some(key.1.clone())),
                    value: Value::Table(Table::implied(dotted)),
                },
            )),
        };
        table = match &mut table.entry_mut(i).item.value {
            Value::Table(t) => {
                if dotted && t.implicit {
                    t.dotted = true;
                }
                if dotted && !t.implicit {
                    return None;
                }
                t
            }
            _ => return None,
        };
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::super::tree::from_toml_edit;
    use super::*;

    /// toml_edit's document of `src`, which must be TOML.
    fn toml_edit_doc(src: &str) -> toml_edit::Document<&str> {
        toml_edit::Document::parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"))
    }

    /// `src` is plain, and reads as toml_edit reads it, places included.
    fn agrees(src: &str) {
        let plain = parse(src).unwrap_or_else(|| panic!("not read as plain TOML:\n{src}"));
        assert_eq!(
            plain,
            from_toml_edit(toml_edit_doc(src).as_table()),
            "{src}"
        );
    }

    const CONFIGS: &[(&str, &str)] = &[
        ("cluster.toml", include_str!("../../cluster.toml")),
        (
            "examples/minimal-ha.toml",
            include_str!("../../examples/minimal-ha.toml"),
        ),
        (
            "examples/single-node.toml",
            include_str!("../../examples/single-node.toml"),
        ),
        (
            "examples/goldentooth-remove-lipps.toml",
            include_str!("../../examples/goldentooth-remove-lipps.toml"),
        ),
        (
            "examples/large-500.toml",
            include_str!("../../examples/large-500.toml"),
        ),
        (
            "tests/fixtures/goldentooth-1.33.3.toml",
            include_str!("../../tests/fixtures/goldentooth-1.33.3.toml"),
        ),
        (
            "tests/fixtures/goldentooth-1.34.2.toml",
            include_str!("../../tests/fixtures/goldentooth-1.34.2.toml"),
        ),
        (
            "tests/fixtures/goldentooth-dalt-absent.toml",
            include_str!("../../tests/fixtures/goldentooth-dalt-absent.toml"),
        ),
    ];

    #[test]
    fn every_config_in_the_repository_is_plain_and_reads_as_toml_edit_reads_it() {
        for (name, src) in CONFIGS {
            let plain = parse(src).unwrap_or_else(|| panic!("{name} is not read as plain TOML"));
            assert_eq!(
                plain,
                from_toml_edit(toml_edit_doc(src).as_table()),
                "{name}"
            );
        }
    }

    #[test]
    fn tables_keys_and_values_have_toml_edits_order_and_places() {
        agrees("a = 1\n[x]\n");
        agrees("[a.b]\nx = 1\n[a]\ny = 2\n[a.c]\n");
        agrees("[nodes.n1]\nrole = \"worker\"\n[nodes.n1.ssh]\nport = 22\n[nodes.n0]\n");
        agrees("[t]\na.b.c = 1\na.b.d = 'x'\ne = { \"k.j\" = \"v\", 'l' = true }\n");
        agrees("[ a . \"b c\" ]  # comment\n k = [ 1 , -2,\n  # between\n 0, ]\r\nz = []\n");
        agrees("\"quoted key\" = \"\"\n'lit' = 'C:\\path'\nu = \"é…\"\n");
        agrees("[x.y]\n[x]\n[x.z]\n");
        agrees("a.b = 1\n[a.c]\n");
        agrees("[a]\n[b]\n[a.d]\n");
        agrees("arr = [[1, 2], [\"a\"], [{ k = 1 }], {}]\n");
        agrees("a = [[[[[[[[1]]]]]]]]\n[b.c.d.e.f.g.h.i]\n");
        // Enough entries that lookups are by hash, then a table implied
        // earlier is defined (moved to the end, as toml_edit moves it).
        let mut many: String = (0..40).map(|i| format!("[n.t{i}.s]\n")).collect();
        many += "[n.t3]\nk = 1\n[n.t39]\n[n.u]\n";
        agrees(&many);
    }

    #[test]
    fn toml_that_is_not_plain_is_left_to_toml_edit() {
        for src in [
            "a = \"tab\\there\"",
            "a = \"\"\"\nmulti\n\"\"\"",
            "a = '''x'''",
            "a = 1.5",
            "a = 1e3",
            "a = +1",
            "a = 1_000",
            "a = 0x1F",
            "a = inf",
            "a = 1979-05-27",
            "a = 07:32:00",
            "a = \"x\ty\"",
            "[[a]]\nk = 1",
            "a = { b.c = 1 }",
            "a = { b = 1, }",
            "a = {\n b = 1 }",
            "\u{feff}a = 1",
            "a = 1 \r b = 2",
            "ключ = 1",
            "a = [[[[[[[[[1]]]]]]]]]",
            "[b.c.d.e.f.g.h.i.j]",
        ] {
            assert!(parse(src).is_none(), "read as plain: {src:?}");
            if !src.contains("ключ") && !src.contains("\r b") {
                toml_edit_doc(src);
            }
        }
    }

    #[test]
    fn whatever_toml_edit_refuses_is_not_plain() {
        for src in [
            "a = 1\na = 2",
            "[a]\n[a]",
            "[a]\nb = 1\n[a.b]",
            "a.b = 1\n[a]",
            "[a]\nb.c = 1\n[a.b]",
            "[a.b]\n[a]\nb = 2",
            "a = 1\na.b = 2",
            "a = { b = 1 }\na.c = 2",
            "a = { b = 1 }\n[a.c]",
            "a = { b = 1, b = 2 }",
            "[a]\nx = 1\n[b]\n[a]",
            "a = 1 b = 2",
            "a = 01",
            "a = -",
            "a = 99999999999999999999",
            "a = [1 2]",
            "a = [1,,2]",
            "a = \"unclosed",
            "a = \"bad \u{7f}\"",
            "a = 1 # bell \u{7}",
            "[a",
            "[]",
            "= 1",
            "a =",
            "a = truex",
            "a = 1\r",
        ] {
            assert!(parse(src).is_none(), "read as plain: {src:?}");
            assert!(
                toml_edit::Document::parse(src).is_err(),
                "toml_edit accepts {src:?}"
            );
        }
    }
}
