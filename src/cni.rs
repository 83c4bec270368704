//! The CNI manifest, read on the operator's machine: a file, or an
//! `http(s)://` URL that gt fetches itself, so that no host needs the
//! internet for it. Its bytes go to `kubectl apply -f -` on a control plane
//! (`kube::cni`) and its sha256 into the plan.
//!
//! A URL is fetched by running curl rather than through an HTTP crate: curl
//! is on every machine an operator runs gt from, and it already honours
//! what an operator sets up for it (`https_proxy`/`no_proxy`, the system's
//! CA store, `~/.curlrc`), which an offline site's mirror often needs;
//! linking a TLS stack into gt would duplicate that for one download per
//! new cluster. The command line is built by `fetch_args`, a pure function.

use crate::spec::{ManifestSource, Spec};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The most gt reads of a manifest (Calico's is about 0.3 MB).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// How long fetching a manifest URL may take in all (curl `--max-time`).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// How long curl may take to connect (curl `--connect-timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A manifest as read: where from, its digest, its bytes.
#[derive(Debug, Clone)]
pub struct CniManifest {
    /// The URL or the file's path.
    pub source: String,
    /// `sha256:<hex>` of `bytes`.
    pub sha256: String,
    pub bytes: Arc<[u8]>,
}

/// Why the manifest could not be had; each names cluster.toml's line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{at}: cannot read the CNI manifest {}: {source}; fix `manifest` under [cluster.cni], or put the manifest there", path.display())]
    Read {
        at: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{at}: cannot fetch the CNI manifest {url}: {why}; check the URL, or download the manifest and give its path in `manifest` under [cluster.cni]")]
    Fetch {
        at: String,
        url: String,
        why: String,
    },
    #[error("{at}: the CNI manifest {source_} is empty; kubectl would apply nothing. Give the manifest of your CNI in `manifest` under [cluster.cni]")]
    Empty { at: String, source_: String },
}

/// curl's arguments to fetch `url` to stdout: failing on an HTTP error,
/// following redirects to http(s) only, bounded in time and size.
pub fn fetch_args(url: &str) -> Vec<String> {
    [
        "--silent",
        "--show-error",
        "--fail",
        "--location",
        "--proto",
        "=http,https",
        "--proto-redir",
        "=http,https",
        "--connect-timeout",
        &CONNECT_TIMEOUT.as_secs().to_string(),
        "--max-time",
        &FETCH_TIMEOUT.as_secs().to_string(),
        "--max-filesize",
        &MAX_MANIFEST_BYTES.to_string(),
        "--url",
        url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Where `manifest` is set: `cluster.toml:16`, or the file and the key
/// when the default is used.
fn location(spec: &Spec) -> String {
    match spec.cluster.cni.line {
        0 => format!(
            "{} ([cluster.cni] manifest, by default)",
            spec.source.display()
        ),
        n => format!("{}:{n}", spec.source.display()),
    }
}

/// Reads the file or fetches the URL of cluster.toml's CNI manifest.
pub fn read(spec: &Spec) -> Result<CniManifest, ManifestError> {
    let at = location(spec);
    let source = &spec.cluster.cni.manifest;
    let bytes = match source {
        ManifestSource::File(path) => read_file(path).map_err(|e| ManifestError::Read {
            at: at.clone(),
            path: path.clone(),
            source: e,
        })?,
        ManifestSource::Url(url) => fetch(url).map_err(|why| ManifestError::Fetch {
            at: at.clone(),
            url: url.clone(),
            why,
        })?,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ManifestError::Empty {
            at,
            source_: source.to_string(),
        });
    }
    Ok(CniManifest {
        source: source.to_string(),
        sha256: crate::plan::saved::sha256(&bytes),
        bytes: bytes.into(),
    })
}

fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::fsutil::read_regular(path, MAX_MANIFEST_BYTES)
}

/// The body of `url`, or curl's own words for why not.
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let mut child = Command::new("curl")
        .args(fetch_args(url))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run curl ({e}); install curl"))?;
    let mut body = Vec::new();
    let read = child
        .stdout
        .take()
        .expect("piped")
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut body);
    if read.is_err() || body.len() as u64 > MAX_MANIFEST_BYTES {
        let _ = child.kill();
    }
    let mut said = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut said);
    }
    let status = child.wait().map_err(|e| format!("curl: {e}"))?;
    if body.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "it is larger than {} MiB",
            MAX_MANIFEST_BYTES >> 20
        ));
    }
    if let Err(e) = read {
        return Err(format!("reading curl's output: {e}"));
    }
    if !status.success() {
        let said = said.trim().to_string();
        return Err(if said.is_empty() {
            format!("curl exited with {status}")
        } else {
            said
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_fails_on_http_errors_and_stays_on_http_within_its_bounds() {
        assert_eq!(
            fetch_args("https://mirror.lan/calico.yaml").join(" "),
            "--silent --show-error --fail --location --proto =http,https --proto-redir =http,https \
             --connect-timeout 15 --max-time 120 --max-filesize 16777216 --url https://mirror.lan/calico.yaml"
        );
    }

    fn spec_with(manifest: &str) -> Spec {
        let toml = format!(
            "[cluster]\nname = \"t\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.4.0.10:6443\"\n\
             pod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\n\
             [cluster.cni]\nmanifest = \"{manifest}\"\n[defaults]\narch = \"arm64\"\n\
             [nodes.a]\nrole = \"control-plane\"\naddress = \"10.4.0.11\"\n"
        );
        crate::spec::load_str(&toml, Path::new("/etc/gt/cluster.toml")).unwrap()
    }

    #[test]
    fn a_file_is_read_with_its_digest_and_a_missing_one_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cni.yaml");
        std::fs::write(&file, "kind: DaemonSet\n").unwrap();
        let m = read(&spec_with(&file.display().to_string())).unwrap();
        assert_eq!(&*m.bytes, b"kind: DaemonSet\n");
        assert_eq!(m.sha256, crate::plan::saved::sha256(b"kind: DaemonSet\n"));
        let missing = dir.path().join("gone.yaml");
        let e = read(&spec_with(&missing.display().to_string())).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "/etc/gt/cluster.toml:8: cannot read the CNI manifest {}: No such file or directory (os error 2); \
                 fix `manifest` under [cluster.cni], or put the manifest there",
                missing.display()
            )
        );
        std::fs::write(&file, "\n  \n").unwrap();
        let e = read(&spec_with(&file.display().to_string())).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
    }
}
