//! The simulated API servers' etcd client: etcd's v3 JSON gateway
//! (`POST /v3/kv/range`, `/v3/kv/txn`, keys and values in base64) on a
//! member's client port, over TLS with the control plane's
//! `apiserver-etcd-client` certificate, as kube-apiserver reaches its
//! `--etcd-servers`. HTTP/1.1 on a connection kept alive for the process's
//! life, as kube-apiserver's client keeps its own: a simulated tool's
//! request costs about a millisecond where spawning etcdctl costs twenty,
//! and a state update under the lab's lock sends requests, not handshakes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one request may take before the API server gives up: shorter
/// than etcd's own request timeout (5 s plus two election timeouts), so a
/// member without a leader fails the request the way an API server's
/// client gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The files under /etc/kubernetes/pki kube-apiserver reaches etcd with.
const CA: &str = "etcd/ca.crt";
const CLIENT_CERT: &str = "apiserver-etcd-client.crt";
const CLIENT_KEY: &str = "apiserver-etcd-client.key";

/// Why a request did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GatewayError {
    /// Nothing answered at the member's address (connection refused, TLS
    /// failed): another member may.
    Unreachable(String),
    /// The member answered with an error, or not in time: etcd's own words
    /// (`etcdserver: request timed out`).
    Failed(String),
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayError::Unreachable(m) | GatewayError::Failed(m) => f.write_str(m),
        }
    }
}

/// One member's client URL with the credentials of the control plane
/// whose files hold them, and the connection kept alive between requests.
pub(crate) struct Gateway {
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    /// Kept alive between requests, as kube-apiserver keeps its etcd
    /// client's connections: a simulated tool's state update pays one
    /// handshake, before the state lock, not one per request inside it.
    kept: Mutex<Option<Connection>>,
}

type Connection = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// The gateways this process made, by member address and credentials: a
/// tool that reads and then updates the state reuses the connection its
/// read opened. New credentials (a cluster made again, a restore) make a
/// new one.
static MADE: Mutex<Vec<(String, Arc<Gateway>)>> = Mutex::new(Vec::new());

impl Gateway {
    /// A client of the member at `address` (its loopback IP) with the PKI
    /// under `host_root` (kubeadm's paths: the etcd CA, apiserver-etcd-client):
    /// the one this process already made for the same member and files, if any.
    pub(crate) fn new(host_root: &Path, address: &str) -> Result<Arc<Gateway>, GatewayError> {
        let ip: IpAddr = address
            .parse()
            .map_err(|_| GatewayError::Unreachable(format!("{address} is not an IP address")))?;
        if !ip.is_loopback() {
            return Err(GatewayError::Unreachable(format!(
                "refusing to contact {ip}: the lab only uses loopback addresses"
            )));
        }
        let pki = host_root.join("etc/kubernetes/pki");
        let mut identity = format!("{address}\n");
        for file in [CA, CLIENT_CERT, CLIENT_KEY] {
            let path = pki.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| GatewayError::Unreachable(format!("{}: {e}", path.display())))?;
            identity.push_str(&text);
        }
        let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, g)) = made.iter().find(|(id, _)| *id == identity) {
            return Ok(g.clone());
        }
        let gateway = Arc::new(Gateway::with_files(
            SocketAddr::new(ip, super::CLIENT_PORT),
            &pki,
        )?);
        // The member's old credentials are gone for good: so is their connection.
        made.retain(|(id, _)| !id.starts_with(&format!("{address}\n")));
        made.push((identity, gateway.clone()));
        Ok(gateway)
    }

    /// A client of `address` with the etcd CA and apiserver-etcd-client
    /// files under `pki`, with no connection yet.
    fn with_files(address: SocketAddr, pki: &Path) -> Result<Gateway, GatewayError> {
        let unreadable = |what: &Path, e: &dyn std::fmt::Display| {
            GatewayError::Unreachable(format!("{}: {e}", what.display()))
        };
        let ca_path = pki.join(CA);
        let cert_path = pki.join(CLIENT_CERT);
        let key_path = pki.join(CLIENT_KEY);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&ca_path).map_err(|e| unreadable(&ca_path, &e))? {
            let cert = cert.map_err(|e| unreadable(&ca_path, &e))?;
            roots.add(cert).map_err(|e| unreadable(&ca_path, &e))?;
        }
        let chain = CertificateDer::pem_file_iter(&cert_path)
            .map_err(|e| unreadable(&cert_path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(&cert_path, &e))?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| unreadable(&key_path, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| GatewayError::Unreachable(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| unreadable(&cert_path, &e))?;
        Ok(Gateway {
            address,
            config: Arc::new(config),
            kept: Mutex::new(None),
        })
    }

    /// A new connection, its TLS handshake done.
    fn dial(&self) -> Result<Connection, GatewayError> {
        let unreachable = |e: std::io::Error| {
            GatewayError::Unreachable(format!("dial tcp {}: {e}", self.address))
        };
        let tcp =
            TcpStream::connect_timeout(&self.address, REQUEST_TIMEOUT).map_err(unreachable)?;
        tcp.set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(unreachable)?;
        tcp.set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(unreachable)?;
        // As Go's clients (kube-apiserver's included) do: TLS writes its
        // handshake's last flight and the request apart, and with Nagle the
        // request waited out etcd's delayed ACK, 40 ms a request.
        tcp.set_nodelay(true).map_err(unreachable)?;
        let name = ServerName::IpAddress(self.address.ip().into());
        let conn = rustls::ClientConnection::new(self.config.clone(), name)
            .map_err(|e| GatewayError::Unreachable(e.to_string()))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            // A member that takes the connection but does not answer in
            // time fails the request, as one that answers nothing after
            // the handshake does: the next member is not asked.
            tls.conn.complete_io(&mut tls.sock).map_err(|e| {
                if timed_out(&e) {
                    GatewayError::Failed("etcdserver: request timed out".into())
                } else {
                    GatewayError::Unreachable(format!("{}: {e}", self.address))
                }
            })?;
        }
        Ok(BufReader::new(tls))
    }

    /// Opens the kept-alive connection now unless one is open: for a caller
    /// about to take a lock, so that the handshake happens outside it.
    pub(crate) fn connect(&self) -> Result<(), GatewayError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_none() {
            *kept = Some(self.dial()?);
        }
        Ok(())
    }

    /// `POST path` with a JSON body; the JSON answer of a 200. A kept
    /// connection that turns out closed (etcd restarted, or it dropped an
    /// idle client) is replaced once; every request the lab sends may be
    /// repeated (reads, and transactions of puts and deletes without
    /// compares).
    fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, GatewayError> {
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let (status, answer) = match kept.take() {
            Some(mut conn) => match exchange(&mut conn, &request) {
                Ok(r) => Self::keep(&mut kept, conn, r),
                Err(Exchange::Closed(_)) => {
                    let mut conn = self.dial()?;
                    let r = exchange(&mut conn, &request).map_err(|e| self.error(e))?;
                    Self::keep(&mut kept, conn, r)
                }
                Err(e) => return Err(self.error(e)),
            },
            None => {
                let mut conn = self.dial()?;
                let r = exchange(&mut conn, &request).map_err(|e| self.error(e))?;
                Self::keep(&mut kept, conn, r)
            }
        };
        let text = String::from_utf8_lossy(&answer);
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| GatewayError::Failed(format!("etcd answered no JSON ({e}): {text}")))?;
        if status != 200 {
            let message = json["message"]
                .as_str()
                .or_else(|| json["error"].as_str())
                .unwrap_or(&text);
            return Err(GatewayError::Failed(message.to_string()));
        }
        Ok(json)
    }

    /// Puts `conn` back for the next request unless etcd closes it.
    fn keep(kept: &mut Option<Connection>, conn: Connection, r: Response) -> (u16, Vec<u8>) {
        if !r.close {
            *kept = Some(conn);
        }
        (r.status, r.body)
    }

    fn error(&self, e: Exchange) -> GatewayError {
        match e {
            Exchange::TimedOut => GatewayError::Failed("etcdserver: request timed out".into()),
            Exchange::Closed(e) => GatewayError::Unreachable(format!("{}: {e}", self.address)),
            Exchange::Malformed(m) => {
                GatewayError::Failed(format!("malformed HTTP response from etcd: {m}"))
            }
        }
    }

    /// Every key under `prefix` with its value, in key order, read through
    /// the quorum (a linearizable range).
    pub(crate) fn range_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, GatewayError> {
        let body = serde_json::json!({
            "key": B64.encode(prefix),
            "range_end": B64.encode(prefix_end(prefix)),
        });
        let answer = self.post("/v3/kv/range", &body)?;
        let kvs = answer["kvs"].as_array().cloned().unwrap_or_default();
        kvs.iter()
            .map(|kv| {
                let decode = |field: &str| {
                    B64.decode(kv[field].as_str().unwrap_or(""))
                        .map_err(|e| GatewayError::Failed(format!("etcd sent a bad {field}: {e}")))
                };
                let key = String::from_utf8_lossy(&decode("key")?).into_owned();
                Ok((key, decode("value")?))
            })
            .collect()
    }

    /// Puts and deletes in one transaction: all of them or none.
    pub(crate) fn write(
        &self,
        puts: &[(String, String)],
        deletes: &[String],
    ) -> Result<(), GatewayError> {
        if puts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let mut ops: Vec<serde_json::Value> = puts
            .iter()
            .map(|(k, v)| {
                serde_json::json!({"request_put": {"key": B64.encode(k), "value": B64.encode(v)}})
            })
            .collect();
        ops.extend(
            deletes
                .iter()
                .map(|k| serde_json::json!({"request_delete_range": {"key": B64.encode(k)}})),
        );
        self.post("/v3/kv/txn", &serde_json::json!({ "success": ops }))
            .map(|_| ())
    }
}

/// One HTTP/1.1 answer.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    body: Vec<u8>,
    /// etcd closes the connection after it (or the body ran to the close).
    close: bool,
}

/// Why a request on a connection got no answer.
#[derive(Debug)]
enum Exchange {
    /// The connection was closed or reset before any of an answer came:
    /// etcd did not take the request from it (or is gone).
    Closed(std::io::Error),
    /// No answer within the request timeout.
    TimedOut,
    /// An answer came but not as HTTP/1.1 frames it.
    Malformed(String),
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Sends `request` on `conn` and reads its answer.
fn exchange<S: Read + Write>(conn: &mut BufReader<S>, request: &str) -> Result<Response, Exchange> {
    let sent = conn
        .get_mut()
        .write_all(request.as_bytes())
        .and_then(|()| conn.get_mut().flush());
    match sent {
        Err(e) if timed_out(&e) => Err(Exchange::TimedOut),
        Err(e) => Err(Exchange::Closed(e)),
        Ok(()) => read_response(conn),
    }
}

/// One HTTP/1.1 response: its status line and headers, then a body framed
/// by `Content-Length`, by chunks (what Go's server sends for an answer
/// past 2 KiB), or by the close.
fn read_response(r: &mut impl BufRead) -> Result<Response, Exchange> {
    let io = |e: std::io::Error| {
        if timed_out(&e) {
            Exchange::TimedOut
        } else {
            Exchange::Malformed(e.to_string())
        }
    };
    let mut status_line = String::new();
    match r.read_line(&mut status_line) {
        Ok(0) => {
            return Err(Exchange::Closed(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            )))
        }
        Ok(_) => {}
        Err(e) if timed_out(&e) => return Err(Exchange::TimedOut),
        Err(e) => return Err(Exchange::Closed(e)),
    }
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or("");
    let status: u16 = words
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| Exchange::Malformed(format!("status line {:?}", status_line.trim_end())))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(io)? == 0 {
            return Err(Exchange::Malformed("the headers end at the close".into()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Exchange::Malformed(format!("header {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| Exchange::Malformed(format!("Content-Length {value:?}")))?,
                )
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            r.read_line(&mut size_line).map_err(io)?;
            let hex = size_line.trim_end().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| Exchange::Malformed(format!("chunk size {hex:?}")))?;
            if size == 0 {
                // Trailers, if any, up to the empty line.
                loop {
                    let mut trailer = String::new();
                    if r.read_line(&mut trailer).map_err(io)? == 0 || trailer.trim_end().is_empty()
                    {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).map_err(io)?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).map_err(io)?;
            if &crlf != b"\r\n" {
                return Err(Exchange::Malformed("a chunk runs past its size".into()));
            }
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io)?;
    } else {
        // Delimited by the close. Go closes without close_notify at times;
        // what came is whole.
        if let Err(e) = r.read_to_end(&mut body) {
            if timed_out(&e) {
                return Err(Exchange::TimedOut);
            }
        }
        close = true;
    }
    Ok(Response {
        status,
        body,
        close,
    })
}

/// The end of the range of keys that start with `prefix` (its last byte
/// plus one, as etcdctl's `--prefix`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::pki::{leaf_cert, new_named_ca, CertKey};
    use std::io::Cursor;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn response(text: &str) -> Result<Response, Exchange> {
        read_response(&mut BufReader::new(Cursor::new(text.as_bytes().to_vec())))
    }

    #[test]
    fn an_answer_is_framed_by_its_length_its_chunks_or_the_close() {
        let sized = response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!(
            (sized.status, sized.body, sized.close),
            (200, b"{}".to_vec(), false)
        );
        // Go's server chunks an answer past 2 KiB.
        let chunked = response(
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (chunked.status, chunked.body),
            (503, br#"{"a":1}"#.to_vec())
        );
        let closing =
            response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
        assert!(closing.close);
        let to_the_close = response("HTTP/1.0 200 OK\r\n\r\n{\"kvs\":[]}").unwrap();
        assert_eq!(
            (to_the_close.body, to_the_close.close),
            (br#"{"kvs":[]}"#.to_vec(), true)
        );
        assert!(matches!(response(""), Err(Exchange::Closed(_))));
        assert!(matches!(
            response("SSH-2.0-OpenSSH\r\n"),
            Err(Exchange::Malformed(_))
        ));
        assert!(matches!(
            response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}"),
            Err(Exchange::Malformed(_))
        ));
    }

    /// A stream whose reads come from `input` and whose writes are kept.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn answers_follow_each_other_on_one_connection() {
        let mut conn = BufReader::new(Duplex {
            input: Cursor::new(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1]HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[2]\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            sent: Vec::new(),
        });
        let first = exchange(&mut conn, "POST /a HTTP/1.1\r\n\r\n").unwrap();
        let second = exchange(&mut conn, "POST /b HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (first.body, second.body),
            (b"[1]".to_vec(), b"[2]".to_vec())
        );
        assert!(matches!(
            exchange(&mut conn, "POST /c HTTP/1.1\r\n\r\n"),
            Err(Exchange::Closed(_))
        ));
        assert_eq!(
            String::from_utf8(conn.get_ref().sent.clone()).unwrap(),
            "POST /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\n\r\n"
        );
    }

    /// kube-apiserver's etcd files under `root/etc/kubernetes/pki`, and the
    /// member's serving certificate for 127.0.0.1.
    fn credentials(root: &Path) -> CertKey {
        let ca = new_named_ca("etcd-ca");
        let client = leaf_cert(&ca, "etcd-ca", "kube-apiserver-etcd-client", None);
        let pki = root.join("etc/kubernetes/pki");
        std::fs::create_dir_all(pki.join("etcd")).unwrap();
        std::fs::write(pki.join(CA), &ca.cert_pem).unwrap();
        std::fs::write(pki.join(CLIENT_CERT), &client.cert_pem).unwrap();
        std::fs::write(pki.join(CLIENT_KEY), &client.key_pem).unwrap();
        super::super::pki::serving_cert(&ca, "bettley", "127.0.0.1")
    }

    /// A TLS server on a free loopback port answering every request with
    /// an empty range; `close_after` answers per connection before it drops
    /// the connection unannounced (as a restarted member does). Counts the
    /// connections it accepts.
    fn serve(serving: &CertKey, close_after: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        );
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                for _ in 0..close_after {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if tls.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if let Some(v) = line.strip_prefix("Content-Length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if tls.read_exact(&mut body).is_err() {
                        break;
                    }
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"kvs\": []}";
                    let _ = tls.get_mut().write_all(answer.as_bytes());
                    let _ = tls.get_mut().flush();
                }
            }
        });
        (address, accepted)
    }

    #[test]
    fn a_read_and_a_write_share_one_connection_and_a_dropped_one_is_dialed_again() {
        let root = std::env::temp_dir().join(format!("gt-lab-gateway-{}", std::process::id()));
        let serving = credentials(&root);
        let pki = root.join("etc/kubernetes/pki");
        let (address, accepted) = serve(&serving, usize::MAX);
        let gateway = Gateway::with_files(address, &pki).unwrap();
        gateway.connect().unwrap();
        assert_eq!(gateway.range_prefix("/registry/").unwrap(), vec![]);
        gateway
            .write(&[("/registry/minions/fenn".into(), "{}".into())], &[])
            .unwrap();
        assert_eq!(gateway.range_prefix("/registry/").unwrap(), vec![]);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one handshake for all three"
        );

        let (address, accepted) = serve(&serving, 1);
        let gateway = Gateway::with_files(address, &pki).unwrap();
        assert_eq!(gateway.range_prefix("/registry/").unwrap(), vec![]);
        assert_eq!(gateway.range_prefix("/registry/").unwrap(), vec![]);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the closed one dialed again"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_member_keeps_its_gateway_until_its_credentials_change() {
        let root = std::env::temp_dir().join(format!("gt-lab-gateway-made-{}", std::process::id()));
        credentials(&root);
        let first = Gateway::new(&root, "127.81.250.1").unwrap();
        let again = Gateway::new(&root, "127.81.250.1").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other_member = Gateway::new(&root, "127.81.250.2").unwrap();
        assert!(!Arc::ptr_eq(&first, &other_member));
        // A new cluster: a new etcd CA and client certificate.
        credentials(&root);
        let renewed = Gateway::new(&root, "127.81.250.1").unwrap();
        assert!(!Arc::ptr_eq(&first, &renewed));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_prefix_ends_where_its_last_byte_is_one_more() {
        assert_eq!(prefix_end("/registry/"), b"/registry0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
