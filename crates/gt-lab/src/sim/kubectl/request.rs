//! Where kubectl sends a request and as whom, and what every verb shares:
//! the node arguments it accepts and the connection errors it prints.

use super::{err, state_err, ADMIN_USERS};
use crate::sim::api::View;
use crate::sim::client::{self, ConnError};
use crate::sim::clock;
use crate::sim::files;
use crate::sim::flags::Parsed;
use crate::sim::host::Host;
use crate::sim::pki::{self, KubeconfigInfo};
use crate::sim::state::{self, State};
use std::time::Duration;

/// Where kubectl sends requests and as whom.
pub(super) struct Ctx<'a> {
    pub(super) host: &'a Host,
    /// Server URL (`--server` wins over the kubeconfig's).
    pub(super) server: Option<String>,
    pub(super) kubeconfig: Option<KubeconfigInfo>,
    pub(super) request_timeout: Duration,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(host: &'a Host, p: &Parsed) -> Ctx<'a> {
        let path = p
            .get("kubeconfig")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("KUBECONFIG")
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        std::path::PathBuf::from(
                            v.to_string_lossy()
                                .split(':')
                                .next()
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
            })
            .unwrap_or_else(|| host.path("/root/.kube/config"));
        let kubeconfig = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| pki::read_kubeconfig(&t));
        let server = p
            .get("server")
            .map(str::to_string)
            .or_else(|| kubeconfig.as_ref().map(|k| k.server.clone()));
        let request_timeout = p
            .get("request-timeout")
            .and_then(|t| clock::parse_go_duration(t).or_else(|| t.parse::<f64>().ok()))
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(30));
        Ctx {
            host,
            server,
            kubeconfig,
            request_timeout,
        }
    }

    /// The identity requests run as.
    pub(super) fn user(&self) -> String {
        let Some(k) = &self.kubeconfig else {
            return "system:anonymous".into();
        };
        if k.user == "default-auth" {
            // kubelet.conf: the identity is in the rotating client certificate.
            if let Some(cn) = self
                .host
                .read(files::KUBELET_CLIENT_PEM)
                .and_then(|pem| pki::common_name(&pem))
            {
                return cn;
            }
        }
        k.user.clone()
    }

    pub(super) fn is_admin(&self) -> bool {
        ADMIN_USERS.contains(&self.user().as_str())
    }

    pub(super) fn address(&self) -> Option<String> {
        self.server.as_deref().map(client::address_of)
    }

    /// Connects and returns the state the serving API server sees, or prints
    /// kubectl's connection error.
    pub(super) fn connect(&self) -> Result<State, u8> {
        self.connect_server().map(|(st, _)| st)
    }

    /// `connect`, also naming the API server the connection reached.
    pub(super) fn connect_server(&self) -> Result<(State, String), u8> {
        let Some(server) = &self.server else {
            eprintln!("The connection to the server localhost:8080 was refused - did you specify the right host or port?");
            return Err(1);
        };
        let hosts = state::read_hosts(&self.host.lab_dir).map_err(|e| err(&e.to_string()))?;
        let view = View {
            lab_dir: &self.host.lab_dir,
            state: &hosts,
            now: clock::now(),
        };
        let ca = self.kubeconfig.as_ref().and_then(|k| k.ca_pem.as_deref());
        let reached = client::connect(&view, &self.host.topology, server, ca)
            .map_err(|e| print_conn_error(&e))?;
        let st = state::read(&self.host.lab_dir).map_err(|e| state_err(&e))?;
        Ok((st, reached))
    }

    /// Whether `server`'s API server still runs: a connection to it (a
    /// watch's) holds only as long.
    pub(super) fn server_running(&self, server: &str) -> bool {
        state::read_hosts(&self.host.lab_dir).is_ok_and(|hosts| {
            View {
                lab_dir: &self.host.lab_dir,
                state: &hosts,
                now: clock::now(),
            }
            .running(server)
        })
    }

    /// Connects for a write: the user must be allowed to change nodes.
    pub(super) fn connect_admin(&self, verb: &str, node: &str) -> Result<State, u8> {
        let st = self.connect()?;
        if !self.is_admin() {
            let user = self.user();
            let scope = if user.starts_with("system:node:") {
                format!(
                    ": node \"{}\" is not allowed to modify node \"{node}\"",
                    user.trim_start_matches("system:node:")
                )
            } else {
                String::new()
            };
            eprintln!("Error from server (Forbidden): nodes \"{node}\" is forbidden: User \"{user}\" cannot {verb} resource \"nodes\" in API group \"\" at the cluster scope{scope}");
            return Err(1);
        }
        Ok(st)
    }
}

pub(super) fn print_conn_error(e: &ConnError) -> u8 {
    match e {
        ConnError::Refused { address } => eprintln!(
            "The connection to the server {address} was refused - did you specify the right host or port?"
        ),
        ConnError::UnknownAuthority { .. } => eprintln!(
            "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        ConnError::EtcdTimeout => eprintln!("Error from server: etcdserver: request timed out"),
    }
    1
}
/// Node names from `node N`, `nodes N M`, `node/N`.
pub(super) fn node_args(positional: &[String]) -> Result<Vec<String>, String> {
    let Some(first) = positional.first() else {
        return Err("You must provide one or more resources by argument or filename.".into());
    };
    if let Some((kind, name)) = first.split_once('/') {
        if !is_node_kind(kind) {
            return Err(unsupported_kind(kind));
        }
        let mut names = vec![name.to_string()];
        for more in &positional[1..] {
            match more.split_once('/') {
                Some((k, n)) if is_node_kind(k) => names.push(n.to_string()),
                _ => return Err("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'".into()),
            }
        }
        return Ok(names);
    }
    if !is_node_kind(first) {
        return Err(unsupported_kind(first));
    }
    Ok(positional[1..].to_vec())
}

/// `node N UPDATE...` or `node/N UPDATE...` (label, annotate): the node and the updates.
pub(super) fn node_and_updates(pos: &[String]) -> Result<(String, &[String]), String> {
    if pos.len() < 2 {
        return Err(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>"
                .into(),
        );
    }
    if let Some((kind, name)) = pos[0].split_once('/') {
        if !is_node_kind(kind) {
            return Err(unsupported_kind(kind));
        }
        return Ok((name.to_string(), &pos[1..]));
    }
    if !is_node_kind(&pos[0]) {
        return Err(unsupported_kind(&pos[0]));
    }
    Ok((pos[1].clone(), &pos[2..]))
}

pub(super) fn is_node_kind(k: &str) -> bool {
    matches!(k, "node" | "nodes" | "no")
}

pub(super) fn unsupported_kind(k: &str) -> String {
    format!("the lab's simulated kubectl serves only nodes (asked for {k:?})")
}
