//! The CA pin kubeadm uses for discovery (`--discovery-token-ca-cert-hash`):
//! `sha256:` + hex of SHA-256 over the DER SubjectPublicKeyInfo (pubkeypin.go).

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("not a PEM certificate: {0}")]
    Pem(String),
    #[error("the PEM block is not a valid X.509 certificate: {0}")]
    Certificate(String),
}

/// The pin of the first certificate in `pem` (a `ca.crt`).
pub fn ca_pin_from_pem(pem: &str) -> Result<String, PinError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| PinError::Pem(e.to_string()))?;
    let cert = block
        .parse_x509()
        .map_err(|e| PinError::Certificate(e.to_string()))?;
    Ok(pin_of_spki(cert.tbs_certificate.subject_pki.raw))
}

/// `sha256:<hex>` of a DER SubjectPublicKeyInfo.
pub fn pin_of_spki(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated with `openssl req -x509 -newkey rsa:2048 -subj /CN=kubernetes`.
    const CA_CRT: &str = "-----BEGIN CERTIFICATE-----
MIIDCzCCAfOgAwIBAgIUVOknqxNhTPVv7tH1B2u8C0o9Qv4wDQYJKoZIhvcNAQEL
BQAwFTETMBEGA1UEAwwKa3ViZXJuZXRlczAeFw0yNjExMjMyMTE1MTRaFw0zNjEx
MjAyMTE1MTRaMBUxEzARBgNVBAMMCmt1YmVybmV0ZXMwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQC6o7cc8pRuns4tzrHR9Cv8//Y4VGTMQapMvALTchkM
StSJVdVGlaABMTx3VS4JdljL1UPC3ZVHXAsBv6L57DfVMRYNJvoBP7UzuSiDxrFZ
k+mJCl23R7pDKetJgmyJcK8GeiQ2HN7rLGMwWB+OO1Te4e5jZq8NbBWozcc5TLy7
o4hoYcTINzN3Dq8H78fNb3UOJ8eIHoxT93qtD8eCXpI9oU2LMQLDSzFxktk2KNJA
zPka34HH++jayQDvEaB/zl6HXwXVjAjggft54nZtOboyYw4aQqLNwaT1n37HCAaw
CEZAz1ifppO0SRXDzZdLDrKD7mXSDY5yzvBA5BmAyu9bAgMBAAGjUzBRMB0GA1Ud
DgQWBBQ7VZnkjRg4WTv/97p8C0osM3hO4jAfBgNVHSMEGDAWgBQ7VZnkjRg4WTv/
97p8C0osM3hO4jAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQCu
rqrYF5zKuCKRX7g7UZNGoxCEG3vxAaLA0n4oGyhTC5dS6QcHqTcEIlp3jmggMwN6
xIfsnbZUoFa0T+q0smtXhKjmHYnz1zFwzp3phJKJqAEEJVP6KWq56VKUur7wNIBu
hWBdFn9RpqRyGBJpIUlZecvddYjU4Un8RXKkEiYggvkwLAhCzdE+2AvaywlvvUXK
UL3FtIv0U/+679PBQ5kCCldzXof3oJtnNZegtIVLL8cGZTXT3STceeR6oVaemLP5
cy/o0CGfiy3dVGZynrzuq1MBECyX9KmkFayRfKXNJ3cS+HlNEg4FwnmH3lAaQ+lJ
LBAbiD4tGaQhHYrB3rj4
-----END CERTIFICATE-----
";

    #[test]
    fn pin_matches_openssl() {
        // openssl x509 -pubkey -noout -in ca.crt | openssl pkey -pubin -outform der | sha256sum
        assert_eq!(
            ca_pin_from_pem(CA_CRT).unwrap(),
            "sha256:2db8e30f4df8257229792eba84f01ce1e00a7ada19af9698b11f8d6992faa9bc"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_pin() {
        assert!(matches!(
            ca_pin_from_pem("not a cert"),
            Err(PinError::Pem(_))
        ));
    }
}
