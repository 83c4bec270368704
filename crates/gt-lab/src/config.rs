//! `DIR/cluster.toml`: the topology rewritten for the lab. The source file is
//! edited, not regenerated, so labels, taints, groups, states and comments
//! survive as the user wrote them; only addresses and how gt reaches each
//! host change.

use std::collections::BTreeMap;
use std::path::Path;
use toml_edit::{value, DocumentMut, InlineTable, Item, Value};

/// How gt reaches the simulated hosts, as written into the lab's config.
pub(crate) enum Reach<'a> {
    Local {
        /// Per node: the host root (GT_HOST_ROOT).
        host_roots: &'a BTreeMap<String, String>,
        path: &'a str,
        shell: &'a str,
    },
    Ssh {
        user: &'a str,
        port: u16,
        identity_file: &'a str,
        known_hosts_file: &'a str,
    },
}

pub(crate) struct Rewrite<'a> {
    pub(crate) source_dir: &'a Path,
    /// Node name → loopback address.
    pub(crate) addresses: &'a BTreeMap<String, String>,
    pub(crate) endpoint: &'a str,
    pub(crate) load_balancer: Option<&'a str>,
    pub(crate) reach: Reach<'a>,
    /// The lab's copy of a CNI manifest the topology gives as a URL the lab
    /// cannot reach (gt fetches a URL itself, and the lab has no internet).
    pub(crate) cni_copy: &'a Path,
}

/// Whether `url` names a loopback host (a server a test runs), which the
/// lab's gt can reach.
fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// A stand-in for Calico v3.29.1's manifest: its objects, each with its
/// kind and name (what the simulated `kubectl apply` reads of a manifest).
pub(crate) fn calico_copy() -> String {
    let mut out =
        String::from("# The lab's stand-in for Calico v3.29.1's manifest (calico.yaml).\n");
    for object in crate::sim::kubectl::apply::CALICO_OBJECTS {
        let (kind_group, name) = object.split_once('/').expect("kind/name");
        let (kind, group) = kind_group.split_once('.').unwrap_or((kind_group, ""));
        let kind = match kind {
            "poddisruptionbudget" => "PodDisruptionBudget",
            "serviceaccount" => "ServiceAccount",
            "configmap" => "ConfigMap",
            "customresourcedefinition" => "CustomResourceDefinition",
            "clusterrole" => "ClusterRole",
            "clusterrolebinding" => "ClusterRoleBinding",
            "daemonset" => "DaemonSet",
            "deployment" => "Deployment",
            other => other,
        };
        let api_version = if group.is_empty() {
            "v1".to_string()
        } else {
            format!("{group}/v1")
        };
        out.push_str(&format!(
            "---\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n"
        ));
        // Calico's own objects live in kube-system; its budget guards only
        // its controllers' pod, as in the real manifest.
        if !matches!(
            kind,
            "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
        ) {
            out.push_str("  namespace: kube-system\n");
        }
        if kind == "PodDisruptionBudget" {
            out.push_str(
                "spec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      k8s-app: calico-kube-controllers\n",
            );
        }
    }
    out
}

fn table_mut<'d>(
    parent: &'d mut dyn toml_edit::TableLike,
    key: &str,
) -> &'d mut dyn toml_edit::TableLike {
    if parent.get(key).and_then(Item::as_table_like).is_none() {
        parent.insert(key, Item::Table(toml_edit::Table::new()));
    }
    parent
        .get_mut(key)
        .and_then(Item::as_table_like_mut)
        .expect("just inserted")
}

/// Replaces a string value, keeping the comment that follows it on its line.
fn set_str(t: &mut dyn toml_edit::TableLike, key: &str, v: &str) {
    let mut new = Value::from(v);
    if let Some(old) = t.get(key).and_then(Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    t.insert(key, Item::Value(new));
}

/// Rewrites `source` (a valid cluster.toml) for the lab. Errors are structural
/// surprises in a file the loader accepted, so they are plain messages.
pub(crate) fn rewrite(source: &str, r: &Rewrite<'_>) -> Result<String, String> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e| format!("cannot edit the topology: {e}"))?;
    let root = doc.as_table_mut();

    let cluster = table_mut(root, "cluster");
    set_str(cluster, "endpoint", r.endpoint);
    // A manifest given as a relative path was relative to the topology's
    // directory; one at a URL the lab cannot reach (the default one too)
    // is the lab's copy.
    let cni = table_mut(cluster, "cni");
    match cni.get("manifest").and_then(Item::as_str) {
        Some(m) if m.contains("://") => {
            if !is_loopback_url(m) {
                set_str(cni, "manifest", &r.cni_copy.display().to_string());
            }
        }
        Some(m) => {
            if Path::new(m).is_relative() && !m.starts_with("~/") {
                let abs = r.source_dir.join(m).display().to_string();
                cni.insert("manifest", value(abs));
            }
        }
        None => set_str(cni, "manifest", &r.cni_copy.display().to_string()),
    }

    if let Some(lb) = r.load_balancer {
        if let Some(t) = root
            .get_mut("load_balancer")
            .and_then(Item::as_table_like_mut)
        {
            set_str(t, "address", lb);
        }
    }

    let defaults = table_mut(root, "defaults");
    // The real hosts' ssh settings (jump hosts, identity files) must not leak into the lab.
    defaults.remove("ssh");
    defaults.remove("local");
    match &r.reach {
        Reach::Local { .. } => {
            defaults.insert("connection", value("local"));
        }
        Reach::Ssh {
            user,
            port,
            identity_file,
            known_hosts_file,
        } => {
            defaults.insert("connection", value("ssh"));
            let mut ssh = InlineTable::new();
            ssh.insert("user", (*user).into());
            ssh.insert("port", i64::from(*port).into());
            ssh.insert("identity_file", (*identity_file).into());
            ssh.insert("known_hosts_file", (*known_hosts_file).into());
            ssh.insert("known_hosts", "strict".into());
            defaults.insert("ssh", Item::Value(Value::InlineTable(ssh)));
        }
    }

    let nodes = root
        .get_mut("nodes")
        .and_then(Item::as_table_like_mut)
        .ok_or("the topology has no [nodes] table")?;
    for (name, address) in r.addresses {
        let node = nodes
            .get_mut(name)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| format!("node {name} is not a table in the topology"))?;
        set_str(node, "address", address);
        node.remove("connection");
        node.remove("ssh");
        node.remove("local");
        if let Reach::Local {
            host_roots,
            path,
            shell,
        } = &r.reach
        {
            let mut env = InlineTable::new();
            env.insert("GT_HOST_ROOT", host_roots[name].as_str().into());
            env.insert("PATH", (*path).into());
            let mut local = InlineTable::new();
            local.insert("env", Value::InlineTable(env));
            local.insert("shell", (*shell).into());
            node.insert("local", Item::Value(Value::InlineTable(local)));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"# goldentooth
[cluster]
name = "goldentooth"
kubernetes_version = "1.32"
endpoint = "10.4.0.10:6443" # the LB
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"

[cluster.cni]
name = "calico"
manifest = "manifests/calico.yaml"

[load_balancer]
name = "allyrion"
address = "10.4.0.10"

[defaults]
arch = "arm64"

[defaults.ssh]
jump_hosts = ["bastion@10.4.0.1"]

[nodes.bettley]
role = "control-plane"
address = "10.4.0.11"
labels = { "goldentooth.io/hardware" = "raspberry-pi-4b" } # keep me

[nodes.bettley.ssh]
host = "bettley.real"

[nodes.velaryon]
role = "worker"
address = "10.4.1.10"
arch = "amd64"
taints = ["goldentooth.io/gpu=true:NoSchedule"]
"#;

    fn addresses() -> BTreeMap<String, String> {
        [("bettley", "127.4.0.11"), ("velaryon", "127.4.1.10")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn parse(s: &str) -> toml_edit::DocumentMut {
        s.parse().unwrap()
    }

    #[test]
    fn local_reach_moves_addresses_to_loopback_and_gives_each_node_its_root() {
        let addrs = addresses();
        let roots: BTreeMap<String, String> = addrs
            .keys()
            .map(|n| (n.clone(), format!("/lab/hosts/{n}")))
            .collect();
        let out = rewrite(
            SOURCE,
            &Rewrite {
                source_dir: Path::new("/repo"),
                cni_copy: Path::new("/lab/calico.yaml"),
                addresses: &addrs,
                endpoint: "127.4.0.10:6443",
                load_balancer: Some("127.4.0.10"),
                reach: Reach::Local {
                    host_roots: &roots,
                    path: "/lab/bin:/usr/bin:/bin",
                    shell: "/lab/bin/gt-lab-sh",
                },
            },
        )
        .unwrap();
        let d = parse(&out);
        assert_eq!(d["cluster"]["endpoint"].as_str(), Some("127.4.0.10:6443"));
        assert_eq!(d["load_balancer"]["address"].as_str(), Some("127.4.0.10"));
        assert_eq!(
            d["cluster"]["cni"]["manifest"].as_str(),
            Some("/repo/manifests/calico.yaml")
        );
        assert_eq!(d["defaults"]["connection"].as_str(), Some("local"));
        assert!(
            d["defaults"].get("ssh").is_none(),
            "real ssh settings dropped"
        );
        assert_eq!(
            d["nodes"]["bettley"]["address"].as_str(),
            Some("127.4.0.11")
        );
        assert!(d["nodes"]["bettley"].get("ssh").is_none());
        assert_eq!(
            d["nodes"]["velaryon"]["local"]["env"]["GT_HOST_ROOT"].as_str(),
            Some("/lab/hosts/velaryon")
        );
        assert_eq!(
            d["nodes"]["velaryon"]["local"]["shell"].as_str(),
            Some("/lab/bin/gt-lab-sh")
        );
        assert!(out.contains("# keep me"), "comments survive:\n{out}");
        assert!(
            out.contains("endpoint = \"127.4.0.10:6443\" # the LB\n"),
            "a replaced value keeps its comment:\n{out}"
        );
        assert!(out.contains("goldentooth.io/gpu=true:NoSchedule"));
    }

    /// `source` rewritten for the ssh transport.
    fn over_ssh(source: &str) -> toml_edit::DocumentMut {
        let out = rewrite(
            source,
            &Rewrite {
                source_dir: Path::new("/repo"),
                cni_copy: Path::new("/lab/calico.yaml"),
                addresses: &addresses(),
                endpoint: "127.4.0.10:6443",
                load_balancer: None,
                reach: Reach::Ssh {
                    user: "root",
                    port: 2222,
                    identity_file: "/lab/ssh/id_ecdsa",
                    known_hosts_file: "/lab/ssh/known_hosts",
                },
            },
        )
        .unwrap();
        parse(&out)
    }

    #[test]
    fn ssh_reach_writes_the_labs_keys_into_defaults() {
        let d = over_ssh(SOURCE);
        let ssh = &d["defaults"]["ssh"];
        assert_eq!(ssh["port"].as_integer(), Some(2222));
        assert_eq!(ssh["known_hosts"].as_str(), Some("strict"));
        assert!(ssh.get("jump_hosts").is_none());
        assert_eq!(d["defaults"]["connection"].as_str(), Some("ssh"));
        assert!(d["nodes"]["bettley"].get("local").is_none());
    }

    #[test]
    fn a_manifest_url_the_lab_cannot_reach_becomes_the_labs_copy() {
        let manifest_after = |cni: &str| {
            let source = SOURCE.replace("manifest = \"manifests/calico.yaml\"", cni);
            over_ssh(&source)["cluster"]["cni"]["manifest"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let calico = "manifest = \"https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml\"";
        assert_eq!(manifest_after(calico), "/lab/calico.yaml");
        assert_eq!(manifest_after(""), "/lab/calico.yaml", "the default one");
        for kept in [
            "http://127.0.0.1:8080/cni.yaml",
            "http://localhost/cni.yaml",
            "https://[::1]:9/cni.yaml",
        ] {
            assert_eq!(manifest_after(&format!("manifest = \"{kept}\"")), kept);
        }
        assert_eq!(
            manifest_after("manifest = \"http://127.0.0.1.example.org/cni.yaml\""),
            "/lab/calico.yaml"
        );
    }

    #[test]
    fn the_labs_calico_copy_holds_every_object_of_calicos_manifest() {
        let copy = calico_copy();
        let docs = copy.matches("\nkind: ").count();
        assert_eq!(docs, crate::sim::kubectl::apply::CALICO_OBJECTS.len());
        assert!(copy.contains(
            "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: calico-node\n"
        ));
    }
}
