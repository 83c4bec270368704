//! Real X.509 for the simulated cluster: the cluster CA (its SPKI pin is what
//! `--discovery-token-ca-cert-hash` checks), client certificates for the
//! kubeconfigs, and the kubeconfig files themselves.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub(crate) struct CertKey {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

pub(crate) fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let now = time_now();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(3650);
    p
}

pub(crate) fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(super::clock::now() as i64)
        .expect("clock within range")
}

/// A fresh cluster CA (`CN=kubernetes`, ten years, as kubeadm makes it).
pub(crate) fn new_ca() -> CertKey {
    new_named_ca("kubernetes")
}

/// A fresh CA with this common name (`etcd-ca`, `front-proxy-ca`).
pub(crate) fn new_named_ca(cn: &str) -> CertKey {
    let key = KeyPair::generate().expect("ECDSA key generation");
    let cert = ca_params(cn).self_signed(&key).expect("self-sign the CA");
    CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A client certificate signed by the cluster CA (`CN=cn, O=org`, one year).
pub(crate) fn client_cert(ca: &CertKey, cn: &str, org: Option<&str>) -> CertKey {
    leaf_cert(ca, "kubernetes", cn, org)
}

/// A leaf certificate signed by the CA whose common name is `ca_cn`.
pub(crate) fn leaf_cert(ca: &CertKey, ca_cn: &str, cn: &str, org: Option<&str>) -> CertKey {
    let ca_key = KeyPair::from_pem(&ca.key_pem).expect("CA key parses");
    let issuer = Issuer::new(ca_params(ca_cn), ca_key);
    let key = KeyPair::generate().expect("ECDSA key generation");
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time_now();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(365);
    let cert = p
        .signed_by(&key, &issuer)
        .expect("sign a client certificate");
    CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A bare key pair, PEM (the service-account signing key).
pub(crate) fn key_pair_pem() -> String {
    KeyPair::generate()
        .expect("ECDSA key generation")
        .serialize_pem()
}

/// `sha256:<hex>` over the DER SubjectPublicKeyInfo of the first certificate in
/// `pem` (kubeadm's pubkeypin); `None` when it is not a certificate.
pub(crate) fn pin(pem: &str) -> Option<String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = p.parse_x509().ok()?;
    let digest = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
    Some(format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// The subject common name of the first certificate in `pem`.
pub(crate) fn common_name(pem: &str) -> Option<String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = p.parse_x509().ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_string())
}

pub(crate) fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// How a kubeconfig's user authenticates.
pub(crate) enum Credentials<'a> {
    /// Embedded client certificate (`admin.conf`, `controller-manager.conf`, ...).
    Embedded(&'a CertKey),
    /// Files on disk (`kubelet.conf` after TLS bootstrap points at the rotating pair).
    Files { cert: &'a str, key: &'a str },
}

/// A kubeconfig as kubeadm writes it (`clusters`/`contexts`/`users`, cluster `kubernetes`).
pub(crate) fn kubeconfig(ca_pem: &str, server: &str, user: &str, creds: Credentials) -> String {
    let user_block = match creds {
        Credentials::Embedded(ck) => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&ck.cert_pem),
            b64(&ck.key_pem)
        ),
        Credentials::Files { cert, key } => {
            format!("    client-certificate: {cert}\n    client-key: {key}\n")
        }
    };
    format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: kubernetes\n\
         contexts:\n\
         - context:\n    cluster: kubernetes\n    user: {user}\n  name: {user}@kubernetes\n\
         current-context: {user}@kubernetes\n\
         kind: Config\n\
         preferences: {{}}\n\
         users:\n\
         - name: {user}\n  user:\n{user_block}",
        ca = b64(ca_pem),
    )
}

/// What kubectl needs from a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KubeconfigInfo {
    /// `https://127.4.0.10:6443`.
    pub(crate) server: String,
    pub(crate) ca_pem: Option<String>,
    /// The user's name (`kubernetes-admin`, `system:node:fenn`).
    pub(crate) user: String,
}

/// Reads the fields kubectl needs from a kubeconfig written in kubeadm's layout.
/// `None` when there is no `server:`.
pub(crate) fn read_kubeconfig(text: &str) -> Option<KubeconfigInfo> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(name)
                .map(|v| v.trim().trim_matches('"').to_string())
        })
    };
    let server = field("server:")?;
    let ca_pem = field("certificate-authority-data:").and_then(|d| unb64(&d));
    let user = field("user:")
        .filter(|u| !u.is_empty())
        .or_else(|| field("- name:"))
        .unwrap_or_default();
    Some(KubeconfigInfo {
        server,
        ca_pem,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_round_trips_through_the_reader() {
        let ca = new_ca();
        let admin = client_cert(&ca, "kubernetes-admin", Some("kubeadm:cluster-admins"));
        let text = kubeconfig(
            &ca.cert_pem,
            "https://127.4.0.10:6443",
            "kubernetes-admin",
            Credentials::Embedded(&admin),
        );
        let info = read_kubeconfig(&text).unwrap();
        assert_eq!(info.server, "https://127.4.0.10:6443");
        assert_eq!(info.user, "kubernetes-admin");
        assert_eq!(pin(info.ca_pem.as_deref().unwrap()), pin(&ca.cert_pem));
    }

    #[test]
    fn pin_is_sha256_of_the_spki() {
        let ca = new_ca();
        let p = pin(&ca.cert_pem).unwrap();
        assert!(p.starts_with("sha256:"));
        assert_eq!(p.len(), 7 + 64);
        assert_ne!(Some(p), pin(&new_ca().cert_pem));
    }
}
