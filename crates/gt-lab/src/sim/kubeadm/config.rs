//! `kubeadm init|join --config FILE`: the documents the simulator reads
//! (JSON; see the module docs of `sim`) and the flags that may go with them.

use super::{EXIT_ERROR, EXIT_VALIDATION};
use crate::sim::flags::Parsed;
use crate::sim::host;
use crate::sim::state::Taint;
use serde_json::Value;
use std::collections::BTreeMap;

/// Reads `--config FILE` (JSON documents; see the module docs).
pub(super) fn read_config(path: &str) -> Result<Vec<Value>, String> {
    let text = if path == "/dev/stdin" || path == "-" {
        host::read_stdin_to_end()
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => e.to_string(),
            };
            format!("unable to read config from \"{path}\" : open {path}: {why}")
        })?
    };
    let mut docs = Vec::new();
    let mut chunk = String::new();
    let mut chunks = Vec::new();
    for line in text.lines() {
        if line.trim_end() == "---" {
            chunks.push(std::mem::take(&mut chunk));
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    chunks.push(chunk);
    for c in chunks.iter().filter(|c| !c.trim().is_empty()) {
        let v: Value = serde_json::from_str(c).map_err(|e| {
            format!(
                "couldn't parse config file {path:?}: {e} (the lab's simulated kubeadm reads JSON documents only: \
                 one object, an array of objects, or objects separated by \"---\" lines)"
            )
        })?;
        match v {
            Value::Array(items) => docs.extend(items),
            Value::Object(_) => docs.push(v),
            _ => {
                return Err(format!(
                    "couldn't parse config file {path:?}: a document must be a JSON object"
                ))
            }
        }
    }
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or("");
        let api = d["apiVersion"].as_str().unwrap_or("");
        if kind.is_empty() || api.is_empty() {
            return Err(format!(
                "couldn't parse config file {path:?}: every document needs \"apiVersion\" and \"kind\""
            ));
        }
        let kubeadm_kind = matches!(
            kind,
            "InitConfiguration"
                | "ClusterConfiguration"
                | "JoinConfiguration"
                | "ResetConfiguration"
        );
        if kubeadm_kind && api != "kubeadm.k8s.io/v1beta4" && api != "kubeadm.k8s.io/v1beta3" {
            return Err(format!(
                "no kind \"{kind}\" is registered for version \"{api}\" in scheme \"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31\""
            ));
        }
    }
    Ok(docs)
}

pub(super) fn doc<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind)
}

pub(super) fn str_at<'a>(v: Option<&'a Value>, path: &[&str]) -> Option<&'a str> {
    let mut cur = v?;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

pub(super) fn strings_at(v: Option<&Value>, path: &[&str]) -> Vec<String> {
    let mut cur = match v {
        Some(v) => v,
        None => return vec![],
    };
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return vec![],
        }
    }
    cur.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `nodeRegistration.taints` when given (even empty), as `Taint`s.
pub(super) fn config_taints(node_reg: Option<&Value>) -> Option<Vec<Taint>> {
    let arr = node_reg?.get("taints")?;
    if arr.is_null() {
        return None;
    }
    Some(
        arr.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| {
                        Some(Taint {
                            key: t.get("key")?.as_str()?.to_string(),
                            value: t.get("value").and_then(Value::as_str).map(str::to_string),
                            effect: t.get("effect")?.as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// `--node-labels` from `kubeletExtraArgs` (v1beta4 list of {name, value} or v1beta3 map).
pub(super) fn config_node_labels(node_reg: Option<&Value>) -> BTreeMap<String, String> {
    let args = node_reg.and_then(|n| n.get("kubeletExtraArgs"));
    let value = match args {
        Some(Value::Array(a)) => a
            .iter()
            .find(|x| x["name"] == "node-labels")
            .and_then(|x| x["value"].as_str()),
        Some(Value::Object(m)) => m.get("node-labels").and_then(Value::as_str),
        _ => None,
    };
    value
        .unwrap_or("")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Flags that may go with `--config` (kubeadm's AllowedMixedArgs plus the always-allowed ones).
const CONFIG_MIXABLE: &[&str] = &[
    "config",
    "ignore-preflight-errors",
    "upload-certs",
    "certificate-key",
    "skip-certificate-key-print",
    "skip-token-print",
    "dry-run",
    "patches",
    "skip-phases",
    "control-plane",
    "v",
    "rootfs",
    "kubeconfig",
];

fn check_config_mix(p: &Parsed) -> Result<(), String> {
    if !p.has("config") {
        return Ok(());
    }
    let bad: Vec<&str> = p
        .given()
        .into_iter()
        .filter(|f| !CONFIG_MIXABLE.contains(f))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("can not mix '--config' with arguments {bad:?}").replace('"', ""))
    }
}

/// The documents of `--config FILE` (none without it), once the flags given
/// with it are known to mix; the error and kubeadm's exit code otherwise.
pub(super) fn config_documents(p: &Parsed) -> Result<Vec<Value>, (String, u8)> {
    check_config_mix(p).map_err(|m| (m, EXIT_VALIDATION))?;
    Ok(p.get("config")
        .map(read_config)
        .transpose()
        .map_err(|e| (e, EXIT_ERROR))?
        .unwrap_or_default())
}
