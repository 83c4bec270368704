//! etcd's serving and peer certificates as kubeadm makes them: signed by the
//! etcd CA, `CN=<node>`, for the node's name, localhost, its address,
//! 127.0.0.1 and ::1, usable as server and client (peers dial each other).

use crate::sim::pki::{ca_params, time_now, CertKey};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// `etcd/server` or `etcd/peer` for `node` at `address`.
pub(crate) fn serving_cert(etcd_ca: &CertKey, node: &str, address: &str) -> CertKey {
    let ca_key = KeyPair::from_pem(&etcd_ca.key_pem).expect("etcd CA key parses");
    let issuer = Issuer::new(ca_params("etcd-ca"), ca_key);
    let key = KeyPair::generate().expect("ECDSA key generation");
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node);
    p.distinguished_name = dn;
    let mut sans = vec![
        SanType::DnsName(node.try_into().expect("node names are DNS labels")),
        SanType::DnsName("localhost".try_into().expect("a DNS name")),
    ];
    for ip in [address, "127.0.0.1", "::1"] {
        if let Ok(ip) = ip.parse() {
            sans.push(SanType::IpAddress(ip));
        }
    }
    p.subject_alt_names = sans;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = time_now();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(365);
    let cert = p
        .signed_by(&key, &issuer)
        .expect("sign an etcd serving certificate");
    CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
