//! The simulated API servers' etcd client: etcd's v3 JSON gateway
//! (`POST /v3/kv/range`, `/v3/kv/txn`, keys and values in base64) on a
//! member's client port, over TLS with the control plane's
//! `apiserver-etcd-client` certificate, as kube-apiserver reaches its
//! `--etcd-servers`. One HTTPS request per read or write, so a simulated
//! tool pays about a millisecond where spawning etcdctl costs twenty.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long one request may take before the API server gives up: shorter
/// than etcd's own request timeout (5 s plus two election timeouts), so a
/// member without a leader fails the request the way an API server's
/// client gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

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
/// whose files hold them.
pub(crate) struct Gateway {
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Gateway {
    /// A client of the member at `address` (its loopback IP) with the PKI
    /// under `host_root` (kubeadm's paths: the etcd CA, apiserver-etcd-client).
    pub(crate) fn new(host_root: &Path, address: &str) -> Result<Gateway, GatewayError> {
        let ip: IpAddr = address
            .parse()
            .map_err(|_| GatewayError::Unreachable(format!("{address} is not an IP address")))?;
        if !ip.is_loopback() {
            return Err(GatewayError::Unreachable(format!(
                "refusing to contact {ip}: the lab only uses loopback addresses"
            )));
        }
        let pki = host_root.join("etc/kubernetes/pki");
        let unreadable = |what: &Path, e: &dyn std::fmt::Display| {
            GatewayError::Unreachable(format!("{}: {e}", what.display()))
        };
        let ca_path = pki.join("etcd/ca.crt");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&ca_path).map_err(|e| unreadable(&ca_path, &e))? {
            let cert = cert.map_err(|e| unreadable(&ca_path, &e))?;
            roots.add(cert).map_err(|e| unreadable(&ca_path, &e))?;
        }
        let cert_path = pki.join("apiserver-etcd-client.crt");
        let key_path = pki.join("apiserver-etcd-client.key");
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
            address: SocketAddr::new(ip, super::CLIENT_PORT),
            config: Arc::new(config),
        })
    }

    /// `POST path` with a JSON body; the JSON answer of a 200.
    fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, GatewayError> {
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
        let body = body.to_string();
        // HTTP/1.0: the answer is delimited by the close, never chunked.
        let request = format!(
            "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        let timed_out = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        };
        if let Err(e) = tls.write_all(request.as_bytes()).and_then(|()| tls.flush()) {
            return Err(if timed_out(&e) {
                GatewayError::Failed("etcdserver: request timed out".into())
            } else {
                GatewayError::Unreachable(format!("{}: {e}", self.address))
            });
        }
        let mut raw = Vec::new();
        if let Err(e) = tls.read_to_end(&mut raw) {
            // Go closes without close_notify at times; what came is whole.
            if timed_out(&e) {
                return Err(GatewayError::Failed("etcdserver: request timed out".into()));
            }
            if raw.is_empty() {
                return Err(GatewayError::Unreachable(format!("{}: {e}", self.address)));
            }
        }
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| GatewayError::Failed("malformed HTTP response from etcd".into()))?;
        let status: u16 = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let json: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| GatewayError::Failed(format!("etcd answered no JSON ({e}): {body}")))?;
        if status != 200 {
            let message = json["message"]
                .as_str()
                .or_else(|| json["error"].as_str())
                .unwrap_or(body);
            return Err(GatewayError::Failed(message.to_string()));
        }
        Ok(json)
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

    #[test]
    fn a_prefix_ends_where_its_last_byte_is_one_more() {
        assert_eq!(prefix_end("/registry/"), b"/registry0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
