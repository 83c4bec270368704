//! The watch of Nodes gt runs while an apply waits (`kube::watch_node_readiness`),
//! run through a real kubectl 1.32 exactly as a control plane's shell runs
//! it, against a small API server on loopback that lists two Nodes and then
//! streams watch events: what kubectl prints is what gt's parser reads
//! (`kube::nodes::parse_watch_line`), and how kubectl ends when the server
//! ends the watch or cuts its connection is what gt's watch expects.

use crate::support::components::require_kubectl_1_32;
use gt::kube::nodes::{parse_watch_line, WatchedNode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn node(name: &str, ready: Option<&str>, rv: u32) -> Value {
    node_at(name, ready, rv, ready.map(|_| "v1.32.4"))
}

fn node_at(name: &str, ready: Option<&str>, rv: u32, version: Option<&str>) -> Value {
    let conditions: Vec<Value> = ready
        .map(|r| {
            vec![
                json!({"type": "MemoryPressure", "status": "False"}),
                json!({"type": "Ready", "status": r, "reason": "KubeletReady"}),
            ]
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "resourceVersion": rv.to_string(),
                     "creationTimestamp": "2026-12-01T00:00:00Z"},
        "status": {"conditions": conditions,
                   "nodeInfo": version.map(|v| json!({"kubeletVersion": v})).unwrap_or(json!({}))},
    })
}

/// How the server ends the watch stream.
#[derive(Clone, Copy)]
enum End {
    /// The last chunk, as an API server ends a watch at its timeout.
    Clean,
    /// The connection closed mid-stream, as when the API server stops.
    Cut,
}

/// The events streamed after the list (bettley Ready, fenn not).
fn events() -> Vec<Value> {
    vec![
        json!({"type": "MODIFIED", "object": node_at("fenn", Some("True"), 11, Some("v1.33.1"))}),
        json!({"type": "ADDED", "object": node("jast", Some("Unknown"), 12)}),
        json!({"type": "DELETED", "object": node("jast", Some("True"), 13)}),
        json!({"type": "ADDED", "object": node("karstark", None, 14)}),
        // What an API server sends when the watch's resourceVersion is too old.
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
               "status": "Failure", "message": "too old resource version: 10 (20)",
               "reason": "Expired", "code": 410}}),
        json!({"type": "MODIFIED", "object": node("fenn", Some("False"), 21)}),
    ]
}

fn respond_json(stream: &mut TcpStream, body: &Value) {
    let body = body.to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
}

/// Serves one connection's requests until it closes or the watch ends.
fn serve(mut stream: TcpStream, end: End) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
        let bare = path.split('?').next().unwrap_or("");
        match bare {
            "/api" => respond_json(
                &mut stream,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:1"}]}),
            ),
            "/apis" => respond_json(
                &mut stream,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ),
            "/api/v1" => respond_json(
                &mut stream,
                &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
                     "verbs": ["get", "list", "watch"], "shortNames": ["no"]}]}),
            ),
            "/api/v1/nodes" if !path.contains("watch=true") => respond_json(
                &mut stream,
                &json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "10"},
                        "items": [node("bettley", Some("True"), 5), node("fenn", Some("False"), 6)]}),
            ),
            "/api/v1/nodes" => {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .unwrap();
                for e in events() {
                    let line = format!("{e}\n");
                    write!(stream, "{:x}\r\n{line}\r\n", line.len()).unwrap();
                    stream.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(50));
                }
                match end {
                    End::Clean => {
                        let _ = stream.write_all(b"0\r\n\r\n");
                        let _ = stream.flush();
                    }
                    End::Cut => {
                        let _ = stream.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
            _ => {
                let body = json!({"kind": "Status", "status": "Failure", "code": 404}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    }
}

/// A server on a loopback port, one thread per connection.
fn server(end: End) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, end));
        }
    });
    port
}

/// gt's watch line through `sh -c`, its admin kubeconfig pointing at
/// `port`: (exit status, stdout, stderr), killed after 60 s.
fn run_watch(kubectl: &str, port: u16) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let kube = dir.path().join("root/etc/kubernetes");
    std::fs::create_dir_all(&kube).unwrap();
    std::fs::write(
        kube.join("admin.conf"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             users:\n- name: admin\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: admin\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(kubectl, bin.join("kubectl")).unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(gt::kube::watch_node_readiness())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", dir.path().join("home"))
        .env("GT_HOST_ROOT", dir.path().join("root"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn watched(name: &str, ready: bool, version: Option<&str>) -> WatchedNode {
    WatchedNode {
        name: name.into(),
        ready,
        kubelet_version: version.map(str::to_string),
    }
}

#[test]
#[cfg_attr(
    not(any(has_kubectl, ci)),
    ignore = "needs a real kubectl 1.32: bash scripts/test.sh installs one, or set GT_TEST_KUBECTL"
)]
fn real_kubectls_watch_lines_are_read_and_it_ends_with_exit_0_however_the_stream_ends() {
    let kubectl = require_kubectl_1_32();
    for end in [End::Clean, End::Cut] {
        let port = server(end);
        let (code, stdout, stderr) = run_watch(kubectl, port);
        let read: Vec<Option<WatchedNode>> = stdout.lines().map(parse_watch_line).collect();
        assert_eq!(
            read,
            [
                Some(watched("bettley", true, Some("v1.32.4"))),
                Some(watched("fenn", false, Some("v1.32.4"))),
                Some(watched("fenn", true, Some("v1.33.1"))),
                Some(watched("jast", false, Some("v1.32.4"))),
                // Deleted: its last state said Ready, the Node is gone.
                Some(watched("jast", false, Some("v1.32.4"))),
                // No Ready condition, no version: `<none>`.
                Some(watched("karstark", false, None)),
                // An ERROR event: `ERROR <none> <none> <none>`, and the
                // watch goes on.
                None,
                Some(watched("fenn", false, Some("v1.32.4"))),
            ],
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(stdout.contains("DELETED"), "{stdout}");
        assert!(stdout.contains("<none>"), "{stdout}");
        assert!(stdout.contains("ERROR"), "{stdout}");
        // However the stream ends, kubectl ends as if all were well: gt's
        // watch takes any end alike and starts another.
        assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(stderr, "", "stdout:\n{stdout}");
    }
}
