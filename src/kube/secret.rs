//! The two secrets an apply handles: the bootstrap token and the
//! certificate key. Their `Debug`/`Display` never show the value; the value
//! leaves gt only on a remote command's stdin (never in its argv), and any
//! tool output gt keeps is passed through `redact` first.

use std::fmt;

/// A bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}` (docs/kubeadm.md).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken(String);

impl BootstrapToken {
    /// Parses kubeadm's pattern `\A([a-z0-9]{6})\.([a-z0-9]{16})\z`.
    pub fn parse(s: &str) -> Option<BootstrapToken> {
        let (id, secret) = s.split_once('.')?;
        let ok = |p: &str, n: usize| {
            p.len() == n
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        (ok(id, 6) && ok(secret, 16)).then(|| BootstrapToken(s.to_string()))
    }

    /// A fresh random token, as `kubeadm token generate` makes them.
    pub fn generate() -> BootstrapToken {
        BootstrapToken(format!("{}.{}", random_alnum(6), random_alnum(16)))
    }

    /// The public half: the Secret is `bootstrap-token-<id>`; safe to show.
    pub fn id(&self) -> &str {
        &self.0[..6]
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id())
    }
}

/// The key that encrypts the uploaded control-plane certificates (64 hex).
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateKey(String);

impl CertificateKey {
    pub fn parse(s: &str) -> Option<CertificateKey> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| CertificateKey(s.to_ascii_lowercase()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertificateKey(<redacted>)")
    }
}

fn random_alnum(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Replaces anything shaped like a token's secret half or a certificate key
/// with `<redacted>`: tool output can echo them (a join command, a config
/// error quoting its input), and gt keeps output only after this.
pub fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let word = |b: u8| b.is_ascii_alphanumeric();
    while i < bytes.len() {
        // A run of alphanumerics (plus one '.' for tokens), at a word boundary.
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let mut j = i;
            while j < bytes.len() && word(bytes[j]) {
                j += 1;
            }
            let first = &text[i..j];
            if j < bytes.len() && bytes[j] == b'.' {
                let mut k = j + 1;
                while k < bytes.len() && word(bytes[k]) {
                    k += 1;
                }
                if BootstrapToken::parse(&text[i..k]).is_some() {
                    out.push_str(&text[i..j]);
                    out.push_str(".<redacted>");
                    i = k;
                    continue;
                }
            }
            if CertificateKey::parse(first).is_some() {
                out.push_str("<redacted>");
            } else {
                out.push_str(first);
            }
            i = j;
            continue;
        }
        let c = text[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_kubeadms_pattern() {
        assert!(BootstrapToken::parse("abcdef.0123456789abcdef").is_some());
        assert!(BootstrapToken::parse("ABCDEF.0123456789abcdef").is_none());
        assert!(BootstrapToken::parse("abcdef.0123456789abcde").is_none());
        assert!(BootstrapToken::parse("abcdef0123456789abcdef").is_none());
        let t = BootstrapToken::generate();
        assert!(
            BootstrapToken::parse(t.expose()).is_some(),
            "{}",
            t.expose()
        );
        assert_ne!(t, BootstrapToken::generate());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(format!("{t:?}"), "BootstrapToken(abcdef.<redacted>)");
        let k = CertificateKey::parse(&"ab".repeat(32)).unwrap();
        assert!(!format!("{k:?}").contains("abab"));
    }

    #[test]
    fn redact_hides_token_secrets_and_certificate_keys_only() {
        let key = "0f".repeat(32);
        let text = format!(
            "kubeadm join 10.4.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:{} --certificate-key {key}\nnode/fenn labeled",
            "9".repeat(64)
        );
        let r = redact(&text);
        assert_eq!(
            r,
            format!(
                "kubeadm join 10.4.0.10:6443 --token abcdef.<redacted> --discovery-token-ca-cert-hash sha256:<redacted> --certificate-key <redacted>\nnode/fenn labeled"
            )
        );
        assert_eq!(
            redact("bootstrap token \"abcdef\" deleted"),
            "bootstrap token \"abcdef\" deleted"
        );
        assert_eq!(redact("10.4.0.11 ünïcode ok"), "10.4.0.11 ünïcode ok");
    }
}
