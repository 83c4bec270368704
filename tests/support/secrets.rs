//! What a bootstrap token or a certificate key looks like, for tests that
//! check none reached an output, a plan file or a process list.
//!
//! ```ignore
//! #[path = "support/secrets.rs"]
//! mod secrets;
//! assert_eq!(secrets::secrets_in(&stdout), Vec::<String>::new());
//! ```

/// Words shaped like a bootstrap token (`abcdef.0123456789abcdef`) or a
/// certificate key (64 hex digits that are not a `sha256:` digest or pin).
pub fn secrets_in(text: &str) -> Vec<String> {
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let mut found = vec![];
    // A digest's hex becomes a 65-character word: never a key.
    let text = text.replace("sha256:", "sha256:z");
    for w in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
        let parts: Vec<&str> = w.split('.').collect();
        for pair in parts.windows(2) {
            if ok(pair[0], 6) && ok(pair[1], 16) {
                found.push(format!("{}.{}", pair[0], pair[1]));
            }
        }
        for piece in parts {
            if piece.len() == 64 && piece.bytes().all(|b| b.is_ascii_hexdigit()) {
                found.push(piece.to_string());
            }
        }
    }
    found
}

pub fn has_secret(text: &str) -> bool {
    !secrets_in(text).is_empty()
}

#[test]
fn the_shapes_are_seen_and_digests_are_not() {
    assert!(has_secret("token abcdef.0123456789abcdef"));
    assert!(has_secret(&format!("key {}", "ab".repeat(32))));
    assert!(!has_secret(&format!("pin sha256:{}", "ab".repeat(32))));
    assert!(!has_secret("goldentooth.io/storage=ceph node/fenn labeled"));
}
