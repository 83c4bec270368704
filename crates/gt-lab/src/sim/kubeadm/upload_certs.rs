//! `kubeadm init phase upload-certs`: the shared certificates, encrypted
//! with a certificate key, for control planes that join within two hours.

use super::cluster::{admin_client, resolve_version};
use super::config::{config_documents, doc, str_at};
use super::token::{new_token, CERTS_PROXY_DESCRIPTION};
use super::upgrade::kubeadm_version;
use super::upgrade_plan::offline_fallback;
use super::{fail, with_global, CERTS_TTL, EXIT_ERROR};
use crate::sim::clock;
use crate::sim::files;
use crate::sim::flags::{self, boolean, string, Flag};
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::state::{self, State, UploadedCerts};

const UPLOAD_CERTS_FLAGS: &[Flag] = &[
    boolean("upload-certs"),
    string("certificate-key"),
    boolean("skip-certificate-key-print"),
    string("config"),
    string("kubeconfig"),
    boolean("dry-run"),
];

pub(super) fn init_phase(host: &Host, args: &[String]) -> u8 {
    let Some(pos) = args.iter().position(|a| !a.starts_with('-')) else {
        return fail(
            "missing subcommand; \"kubeadm init phase\" requires a phase name",
            EXIT_ERROR,
        );
    };
    if args[pos] != "upload-certs" {
        return fail(
            &format!(
                "unknown command \"{}\" for \"kubeadm init phase\"",
                args[pos]
            ),
            EXIT_ERROR,
        );
    }
    let mut rest = args[..pos].to_vec();
    rest.extend_from_slice(&args[pos + 1..]);
    let p = match flags::parse(&rest, &with_global(UPLOAD_CERTS_FLAGS)) {
        Ok(p) => p,
        Err(e) => return fail(&e, EXIT_ERROR),
    };
    // Every init phase loads the init configuration first: without
    // `--config` its kubernetesVersion is the default label `stable-1`,
    // which kubeadm looks up at dl.k8s.io (the lab has no internet: the
    // offline warning and the client's own version); with it, the file's.
    let docs = match config_documents(&p) {
        Ok(d) => d,
        Err((e, code)) => return fail(&e, code),
    };
    let requested =
        str_at(doc(&docs, "ClusterConfiguration"), &["kubernetesVersion"]).unwrap_or("stable-1");
    if !requested
        .trim_start_matches('v')
        .starts_with(|c: char| c.is_ascii_digit())
    {
        offline_fallback(kubeadm_version(host), requested);
    }
    if let Err(e) = resolve_version(Some(requested), &host.node().kubernetes_version) {
        return fail(&e, EXIT_ERROR);
    }
    if !p.on("upload-certs") {
        println!("[upload-certs] Skipping phase. Please see --upload-certs");
        return 0;
    }
    let key = match p.get("certificate-key") {
        Some(k) if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) => k.to_lowercase(),
        Some(k) => {
            return fail(
                &format!("error execution phase upload-certs: error uploading certs: error decoding certificate key: encoding/hex: invalid certificate key {k:?}: the key must be 64 hexadecimal characters"),
                EXIT_ERROR,
            )
        }
        None => state::random_hex(32),
    };
    if !host.exists(files::CA_CRT) {
        return fail(
            "error execution phase upload-certs: error uploading certs: failed to load certificate for CA: couldn't load the certificate file /etc/kubernetes/pki/ca.crt: open /etc/kubernetes/pki/ca.crt: no such file or directory",
            EXIT_ERROR,
        );
    }
    if let Err(e) = admin_client(
        host,
        p.get("kubeconfig"),
        "Post",
        "/api/v1/namespaces/kube-system/secrets",
    ) {
        return fail(
            &format!("error execution phase upload-certs: error uploading certs: {e}"),
            EXIT_ERROR,
        );
    }
    host.pause(Op::UploadCerts);
    let now = clock::now();
    if let Err(e) = state::update(&host.lab_dir, |s| {
        s.purge_expired(now);
        store_certs(s, &key, now);
    }) {
        return fail(&e.to_string(), EXIT_ERROR);
    }
    println!("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace");
    if !p.on("skip-certificate-key-print") {
        println!("[upload-certs] Using certificate key:\n{key}");
    }
    0
}

/// The `kubeadm-certs` Secret, encrypted with `key`, and the token whose
/// expiry deletes it two hours from `now` (replacing an earlier upload's).
pub(super) fn store_certs(s: &mut State, key: &str, now: f64) {
    s.tokens
        .retain(|t| t.description.as_deref() != Some(CERTS_PROXY_DESCRIPTION));
    s.tokens.push(new_token(
        Some(CERTS_PROXY_DESCRIPTION.into()),
        CERTS_TTL,
        now,
        &[],
        &[],
    ));
    s.uploaded_certs = Some(UploadedCerts {
        key: key.to_string(),
        expires: now + CERTS_TTL,
    });
}
