//! The lab daemon (`gt lab serve --dir DIR`, started by `gt lab up`): the
//! simulated API servers' HTTP side. It listens on every control plane's
//! `ADDRESS:6443` and, when no HAProxy stands on the endpoint, on the
//! endpoint too, and answers `GET /readyz`, `/readyz?verbose` and `/livez`
//! with what [`crate::sim::api::answer`] computes. Plain HTTP: the lab
//! has no TLS. A control plane that runs no API server (not initialised yet,
//! kubelet stopped) resets every connection instead of answering.

use crate::sim::api::Answer;
use crate::state::{EndpointServer, LabState};
use crate::topology::{LabTopology, LAB_FILE};
use crate::LabError;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The port every simulated API server binds (kubeadm's default bindPort).
pub(crate) const API_PORT: u16 = 6443;

/// Every address the daemon listens on, with the node it answers for
/// (`None`: the endpoint, answered for the whole cluster).
pub(crate) fn listen_addresses(
    topo: &LabTopology,
    state: &LabState,
) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = topo
        .nodes
        .iter()
        .filter(|n| n.role == "control-plane")
        .map(|n| (format!("{}:{API_PORT}", n.address), Some(n.name.clone())))
        .collect();
    if state.endpoint_server == EndpointServer::Daemon {
        v.push((topo.endpoint.clone(), None));
    }
    v
}

/// Written once the daemon listens on every address.
pub(crate) fn ready_file(dir: &Path) -> PathBuf {
    dir.join("pids").join("serve.ready")
}

/// Runs until the lab is gone (its lab.json removed) or the process is killed.
pub fn serve(dir: &Path) -> Result<(), LabError> {
    let topo = LabTopology::load(dir).map_err(|_| LabError::NoLab(dir.to_path_buf()))?;
    let state = LabState::load(dir)?;
    for (addr, node) in listen_addresses(&topo, &state) {
        let listener = listen(&addr).map_err(|e| {
            LabError::Process(format!(
                "cannot listen on {addr}: {e}; is another lab up on these addresses? (`gt lab status`)"
            ))
        })?;
        let dir = dir.to_path_buf();
        std::thread::spawn(move || accept_loop(listener, dir, node));
    }
    // Every address is bound: tell `gt lab up`, which cannot tell our
    // listeners from someone else's by connecting.
    let ready = ready_file(dir);
    std::fs::write(&ready, "").map_err(LabError::io(format!("writing {}", ready.display())))?;
    let marker = dir.join(LAB_FILE);
    if crate::sim::etcd::real(dir) {
        // The kubelets' part for the etcd static Pods: follow manifests,
        // hosts going down and coming back.
        while marker.exists() {
            crate::sim::etcd::member::sync_all(dir);
            reap_children();
            std::thread::sleep(Duration::from_millis(200));
        }
        return Ok(());
    }
    while marker.exists() {
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// A listener with the kernel's largest accept queue (`net.core.somaxconn`),
/// as kube-apiserver's (Go's net.Listen asks for somaxconn): Rust's default
/// of 128 overflowed when hundreds of joins reached one API server through
/// HAProxy at once, and each overflowed connection failed its discovery.
fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // Linux caps a larger backlog at somaxconn, and listen() on a listening
    // socket only resizes its queue.
    // SAFETY: listen on a socket we own.
    if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), i32::MAX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(listener)
}

/// Collects the exit status of members this daemon started, which would
/// otherwise stay zombies until it exits.
fn reap_children() {
    // SAFETY: waitpid with WNOHANG on any child; no memory is shared.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

fn accept_loop(listener: TcpListener, dir: PathBuf, node: Option<String>) {
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        let node = node.clone();
        std::thread::spawn(move || {
            let _ = answer(stream, &dir, node.as_deref());
        });
    }
}

fn read_request_head(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// What one request line (`GET /readyz?verbose HTTP/1.1`) gets: `None` when
/// the host runs no API server, which a real client sees as a dead connection.
pub(crate) fn respond(dir: &Path, node: Option<&str>, request_line: &str) -> Option<(u16, String)> {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" && method != "HEAD" {
        return Some((405, "method not allowed\n".into()));
    }
    let kind = match path {
        "/readyz" => "readyz",
        "/livez" | "/healthz" => "livez",
        // What the Go API server answers for a path it does not serve.
        _ => return Some((404, "404 page not found\n".into())),
    };
    let verbose = query
        .split('&')
        .any(|q| q == "verbose" || q == "verbose=true" || q == "verbose=1");
    match crate::sim::api::answer(dir, node, kind, verbose) {
        Answer::Http(code, body) => Some((code, body)),
        Answer::Refused => None,
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn answer(mut stream: TcpStream, dir: &Path, node: Option<&str>) -> std::io::Result<()> {
    let head = read_request_head(&mut stream)?;
    let line = head.lines().next().unwrap_or("");
    let Some((code, body)) = respond(dir, node, line) else {
        // The daemon listens for every control plane from the start, but one
        // without a running API server must not answer: reset the connection
        // (SO_LINGER 0), which HAProxy's health check and clients take as down.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a correctly sized value.
        unsafe {
            libc::setsockopt(
                std::os::unix::io::AsRawFd::as_raw_fd(&stream),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        return Ok(());
    };
    let head_only = line.starts_with("HEAD ");
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(code),
        body.len()
    );
    if !head_only {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_listener_queues_hundreds_of_connections_nobody_accepted_yet() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let clients = 300;
        if somaxconn < clients {
            eprintln!("net.core.somaxconn is {somaxconn}: this kernel queues fewer than {clients}");
            return;
        }
        let l = listen("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // Nothing accepts: every connection waits in the queue. A full
        // queue drops the SYN, and the connect times out.
        let connected: Vec<TcpStream> = (0..clients)
            .map_while(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok())
            .collect();
        assert_eq!(connected.len(), clients);
    }

    #[test]
    fn unknown_paths_get_the_api_servers_404() {
        let (code, body) =
            respond(Path::new("/nonexistent"), None, "GET /metrics HTTP/1.1").unwrap();
        assert_eq!((code, body.as_str()), (404, "404 page not found\n"));
    }

    #[test]
    fn other_methods_are_refused() {
        let (code, _) = respond(Path::new("/nonexistent"), None, "POST /readyz HTTP/1.1").unwrap();
        assert_eq!(code, 405);
    }
}
