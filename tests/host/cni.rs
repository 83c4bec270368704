//! The CNI manifest is read on the operator's machine: a file, or a URL gt
//! fetches itself (here from a loopback HTTP server the test runs); the
//! plan shows its source and sha256, and an unreadable file is an error
//! naming cluster.toml's line. (Its trip to `kubectl apply -f -` on stdin
//! is checked on the lab by tests/host/lab.rs.)

use crate::support::gt::{fixture, goldentooth, Test};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

const CALICO_LINE: &str =
    "manifest = \"https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml\"";

/// goldentooth's cluster.toml in `dir` with `manifest` as its CNI manifest;
/// returns its path and the manifest's line.
fn config_with_manifest(dir: &Path, manifest: &str) -> (String, usize) {
    let text = std::fs::read_to_string(goldentooth()).unwrap();
    let line = text
        .lines()
        .position(|l| l == CALICO_LINE)
        .expect("goldentooth's manifest line")
        + 1;
    let path = dir.join("cluster.toml");
    std::fs::write(
        &path,
        text.replace(CALICO_LINE, &format!("manifest = \"{manifest}\"")),
    )
    .unwrap();
    (path.display().to_string(), line)
}

/// `gt plan` of an empty cluster: the plan installs the CNI.
fn plan_empty(config: &str) -> Test {
    Test::new()
        .args(["--config", config, "plan", "--facts", &fixture("empty")])
        // curl must reach the test's loopback server directly.
        .env("no_proxy", "*")
        .env("NO_PROXY", "*")
}

/// The plan of `config` shows MANIFEST read from `source`, with its digest.
fn shows_manifest(config: &str, source: &str) {
    let out = plan_empty(config).success();
    assert!(
        out.stdout
            .contains(&format!("+ manifest           = \"{source}\"")),
        "{out}"
    );
    let digest = gt::plan::saved::sha256(MANIFEST.as_bytes());
    assert!(
        out.stdout
            .contains(&format!("+ manifest_sha256    = \"{digest}\"")),
        "{out}"
    );
}

/// Serves `responses` (status line and body), one per connection, on a
/// loopback port; returns the URL of `/cni.yaml` there.
fn serve(responses: Vec<(&'static str, &'static str)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/cni.yaml")
}

const MANIFEST: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: calico-node\n";

#[test]
fn a_manifest_file_is_read_on_the_operators_machine_and_the_plan_shows_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calico.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    // A relative path is relative to cluster.toml's directory.
    let (config, _) = config_with_manifest(dir.path(), "calico.yaml");
    shows_manifest(&config, &file.display().to_string());
}

#[test]
fn an_unreadable_manifest_file_is_an_error_naming_it_and_cluster_toml_s_line() {
    let dir = tempfile::tempdir().unwrap();
    let (config, line) = config_with_manifest(dir.path(), "manifests/calico.yaml");
    let out = plan_empty(&config).status(1);
    let missing = dir.path().join("manifests/calico.yaml");
    assert!(
        out.stderr.contains(&format!(
            "error: {config}:{line}: cannot read the CNI manifest {}: No such file or directory",
            missing.display()
        )),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "no plan is shown: {out}");
}

#[test]
fn a_manifest_url_is_fetched_by_gt_and_one_it_cannot_fetch_only_warns_in_a_plan() {
    let url = serve(vec![
        ("200 OK", MANIFEST),
        ("404 Not Found", "no such file\n"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (config, line) = config_with_manifest(dir.path(), &url);
    shows_manifest(&config, &url);
    // The second answer is a 404: the plan is still shown, without a
    // digest, and says apply will fetch again.
    let out = plan_empty(&config).success();
    assert!(
        out.stderr.contains(&format!(
            "warning: {config}:{line}: cannot fetch the CNI manifest {url}: curl: (22) The requested URL returned error: 404"
        )),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("gt apply fetches it again and stops before changing anything"),
        "{out}"
    );
    assert!(out
        .stdout
        .contains(&format!("+ manifest           = \"{url}\"")));
    assert!(!out.stdout.contains("manifest_sha256"), "{out}");
}
