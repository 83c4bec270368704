//! No input may panic the loader: arbitrary bytes, TOML-shaped token soup
//! and mutated copies of the repo's own configs all come back as a `Spec`
//! or as diagnostics, and every diagnostic names a line and column inside
//! the input and says what to do. And whatever the plain parser reads,
//! toml_edit reads the same.

use super::{load_bytes, Diagnostics};
use proptest::prelude::*;
use std::path::Path;

const SEEDS: &[&str] = &[
    include_str!("../../cluster.toml"),
    include_str!("../../examples/minimal-ha.toml"),
    include_str!("../../examples/single-node.toml"),
    include_str!("../../examples/goldentooth-remove-lipps.toml"),
    include_str!("../../examples/large-500.toml"),
];

/// Pieces of cluster.toml's language, good and bad, for the mutations to insert.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "\n",
    " ",
    "#",
    "\\",
    "\\u001b",
    "\u{1b}[31m",
    "\r",
    "\0",
    "\u{feff}",
    "é",
    "…",
    "[nodes.",
    "[cluster]",
    "[tokens]",
    "[apply]",
    "[defaults.ssh]",
    "ttl = ",
    "\"0\"",
    "\"500ms\"",
    "\"99999999999999h\"",
    "\"1e400s\"",
    "\"9999999999999999999999s\"",
    "address = ",
    "\"0.0.0.0\"",
    "\"::ffff:10.4.0.11\"",
    "\"255.255.255.255\"",
    "\"ff02::1\"",
    "host = ",
    "user = ",
    "\"-oProxyCommand=x\"",
    "jump_hosts = ",
    "[\"a@b,-c\"]",
    "kubernetes_version = ",
    "1.32",
    "\"1.32.0-rc.1\"",
    "groups = ",
    "[\"all\"]",
    "role = ",
    "\"control-plane\"",
    "\"worker\"",
    "labels = ",
    "taints = ",
    "state = \"absent\"",
    "pod_cidr = ",
    "\"fd00::/8\"",
    "\"10.0.0.0/33\"",
    "port = ",
    "65536",
    "-1",
    "true",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x7f",
    "[nodes.Fenn]",
    "[nodes.all]",
    "connect_timeout = ",
    "gate_timeout = ",
    "drain_timeout = ",
    "env = { \"1X\" = \"a\" }",
    "bootstrap = ",
    "name = \"\"",
    "manifest = \"\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete {
        at: usize,
        len: usize,
    },
    Insert {
        at: usize,
        token: usize,
    },
    Byte {
        at: usize,
        byte: u8,
    },
    DuplicateLine {
        at: usize,
    },
    /// Replaces the value of the `at`-th `key = value` line: where most
    /// bad values would be written.
    Value {
        at: usize,
        token: usize,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Byte { at, byte }),
        any::<usize>().prop_map(|at| Edit::DuplicateLine { at }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Value { at, token }),
    ]
}

fn apply_edit(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len();
    match *e {
        Edit::Delete { at, len } if n > 0 => {
            let at = at % n;
            bytes.drain(at..(at + len).min(n));
        }
        Edit::Insert { at, token } => {
            let at = at % (n + 1);
            bytes.splice(at..at, TOKENS[token].bytes());
        }
        Edit::Byte { at, byte } if n > 0 => bytes[at % n] = byte,
        Edit::DuplicateLine { at } if n > 0 => {
            let at = at % n;
            let start = bytes[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = bytes[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(n, |i| at + i + 1);
            let line = bytes[start..end].to_vec();
            bytes.splice(end..end, line);
        }
        Edit::Value { at, token } => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let values: Vec<usize> = text.match_indices(" = ").map(|(i, _)| i + 3).collect();
            if values.is_empty() {
                return;
            }
            let start = values[at % values.len()];
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let mut out = text.into_bytes();
            out.splice(start..end, TOKENS[token].bytes());
            *bytes = out;
        }
        _ => {}
    }
}

/// Loads `bytes` and checks every diagnostic's place and help; text the
/// plain parser reads must read the same with toml_edit.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Some(plain) = std::str::from_utf8(bytes)
        .ok()
        .and_then(super::plain::parse)
    {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let doc = toml_edit::Document::parse(text);
        prop_assert!(doc.is_ok(), "plain TOML that toml_edit refuses: {text:?}");
        if let Ok(doc) = doc {
            prop_assert_eq!(
                plain,
                super::tree::from_toml_edit(doc.as_table()),
                "{:?}",
                text
            );
        }
    }
    let Err(Diagnostics(diags)) = load_bytes(bytes, Path::new("cluster.toml")) else {
        return Ok(());
    };
    prop_assert!(!diags.is_empty());
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    for d in &diags {
        prop_assert!(
            d.line >= 1 && d.line <= lines.len(),
            "line {} outside 1..={}: {d}",
            d.line,
            lines.len()
        );
        let width = lines[d.line - 1].trim_end_matches('\r').chars().count();
        prop_assert!(
            d.column >= 1 && d.column <= width + 1,
            "column {} outside 1..={}: {d}",
            d.column,
            width + 1
        );
        prop_assert!(d.help.is_some(), "no help line: {d}");
        // What reaches the terminal carries no raw control character.
        let shown = d.to_string();
        prop_assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "control character in {shown:?}"
        );
    }
    Ok(())
}

proptest! {
    // No regression files in the tree: a failure found here becomes a named
    // test in tests.rs.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic_the_loader(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    #[test]
    fn token_soup_never_panics_the_loader(tokens in proptest::collection::vec(0..TOKENS.len(), 0..120)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        check(text.as_bytes())?;
    }

    #[test]
    fn mutated_configs_never_panic_the_loader(
        seed in 0..SEEDS.len(),
        edits in proptest::collection::vec(edit(), 1..8),
    ) {
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        for e in &edits {
            apply_edit(&mut bytes, e);
        }
        check(&bytes)?;
    }
}
