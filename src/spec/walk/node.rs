//! One `[nodes.NAME]` table: role, address, arch, labels, taints, groups,
//! state and connection.

use super::connection::Defaults;
use super::table::{as_table_like, value_span, TableLike};
use super::{parse_arch, parse_ip};
use crate::spec::load::Loader;
use crate::spec::tree::Item;
use crate::spec::{
    check_label_value, Arch, LabelKey, Node, NodeName, NodeState, Role, Taint, GROUP_ALL_NODES,
    GROUP_CONTROL_PLANE, GROUP_WORKER,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// What `gt exec` resolves before node and group names (`Spec::select`):
/// no node or group of the file may take these names.
const BUILTIN_TARGETS: &[&str] = &["all", GROUP_ALL_NODES, GROUP_CONTROL_PLANE, GROUP_WORKER];

const NODE_KEYS: &[&str] = &[
    "role",
    "address",
    "arch",
    "labels",
    "taints",
    "groups",
    "state",
    "connection",
    "ssh",
    "local",
    "host",
];

impl Loader<'_> {
    /// The node, or `None` when something in its table is wrong (reported).
    pub(super) fn node(
        &mut self,
        name: &str,
        key_span: Option<Range<usize>>,
        item: &Item,
        defaults: &Defaults,
        all_names: &[&str],
    ) -> Option<Node> {
        let key_span = key_span.unwrap_or(0..0);
        let what = format!("[nodes.{name}]");
        let node_name = self.node_name(name, key_span.clone(), all_names);
        let Some(t) = as_table_like(item) else {
            self.type_error(item, &format!("nodes.{name}"), "a table");
            return None;
        };
        self.check_keys(&t, NODE_KEYS, &what);
        let role = self.req_parsed(&t, "role", &what, parse_role);
        let address = self.req_parsed(&t, "address", &what, parse_ip);
        let arch = self.node_arch(&t, name, &what, key_span.clone(), defaults);
        let state = self
            .opt_parsed(&t, "state", &what, |s| match s {
                "present" => Ok(NodeState::Present),
                "absent" => Ok(NodeState::Absent),
                _ => Err(format!(
                    "state `{s}` is not valid; write \"present\" or \"absent\""
                )),
            })
            .unwrap_or(NodeState::Present);
        let labels = self.labels(&t, name);
        let taints = self.taints(&t, name);
        for key in labels
            .keys()
            .map(LabelKey::as_str)
            .chain(taints.iter().map(|t| t.key.as_str()))
        {
            self.owned_keys.note(key);
        }
        let groups = self.groups(&t, name, role);
        let connection = self.node_connection(&t, name, &what, defaults);
        let host = match t.get("host") {
            Some(h) => Arc::new(
                self.host_table(h, &format!("[nodes.{name}.host]"))
                    .over(&defaults.host),
            ),
            None => Arc::clone(&defaults.shared_host),
        };
        let table_pos = item
            .as_table()
            .and_then(|_| item.span())
            .map(|s| s.start)
            .unwrap_or(key_span.start);
        let address = address?;
        Some(Node {
            name: node_name?,
            role: role?,
            address,
            arch: arch?,
            labels,
            taints,
            groups,
            state,
            connection: connection.resolve(&address),
            host,
            line: self.source.line_of(table_pos),
        })
    }

    /// The table's name as a node name, with the fix when it is not one:
    /// a free name, never one another table already has.
    fn node_name(
        &mut self,
        name: &str,
        key_span: Range<usize>,
        all_names: &[&str],
    ) -> Option<NodeName> {
        if BUILTIN_TARGETS.contains(&name) {
            self.error(
                key_span,
                format!("node name `{name}` is a built-in target of `gt exec`"),
                Some(format!(
                    "rename the node: `gt exec {name}` must mean one thing (built-in targets: {})",
                    BUILTIN_TARGETS.join(", ")
                )),
            );
            return None;
        }
        match NodeName::try_from(name.to_string()) {
            // The kubelet labels its Node kubernetes.io/hostname=NAME, and a
            // label value is at most 63 characters: a longer name never registers.
            Ok(_) if name.len() > 63 => {
                self.error(
                    key_span,
                    format!(
                        "node name `{name}` is {} characters long; Kubernetes puts it in the kubernetes.io/hostname label, which holds at most 63",
                        name.len()
                    ),
                    Some("give the node a name of at most 63 characters".into()),
                );
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                let shown = name.escape_debug().to_string();
                let help = match NodeName::try_from(name.to_ascii_lowercase()) {
                    Ok(lower) if all_names.contains(&lower.as_str()) => format!(
                        "`{lower}` is already a node in this file, and node names are lowercase: merge [nodes.{shown}] into [nodes.{lower}], or give this node another name"
                    ),
                    Ok(lower) => format!("rename the table: [nodes.{lower}]"),
                    Err(_) => "rename the table, e.g. [nodes.fenn]".into(),
                };
                self.error(key_span, e, Some(help));
                None
            }
        }
    }

    /// The node's own arch, else `[defaults]`'s; one of them is required.
    fn node_arch(
        &mut self,
        t: &dyn TableLike,
        name: &str,
        what: &str,
        key_span: Range<usize>,
        defaults: &Defaults,
    ) -> Option<Arch> {
        let arch = self
            .opt_parsed(t, "arch", what, parse_arch)
            .or(defaults.arch);
        // An arch that is there but invalid has been reported already.
        if arch.is_none() && t.get("arch").is_none() {
            self.error(
                key_span,
                format!("node `{name}` has no arch"),
                Some("set arch = \"arm64\" (or amd64, ...) on the node or in [defaults]".into()),
            );
        }
        arch
    }

    /// The implicit groups of the node's role, then its own, without repeats.
    fn groups(
        &mut self,
        t: &dyn TableLike,
        name: &str,
        role: Option<Role>,
    ) -> Vec<Cow<'static, str>> {
        let mut groups = vec![
            Cow::Borrowed(GROUP_ALL_NODES),
            Cow::Borrowed(match role {
                Some(Role::ControlPlane) => GROUP_CONTROL_PLANE,
                _ => GROUP_WORKER,
            }),
        ];
        let Some(item) = t.get("groups") else {
            return groups;
        };
        for (g, span) in self.str_array(item, &format!("nodes.{name}.groups")) {
            if g.is_empty()
                || !g
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                self.error(
                    span,
                    format!(
                        "group name `{}` may contain only letters, digits, '_' and '-'",
                        g.escape_debug()
                    ),
                    Some("rename the group, e.g. \"ceph\" or \"gpu-nodes\"".into()),
                );
            } else if BUILTIN_TARGETS.contains(&g.as_str()) {
                self.error(
                    span,
                    format!("group name `{g}` is a built-in target of `gt exec`"),
                    Some(format!(
                        "remove it or choose another name: {} are given by gt ({} and the role's group to every node)",
                        BUILTIN_TARGETS.join(", "),
                        GROUP_ALL_NODES
                    )),
                );
            } else if !groups.iter().any(|x| *x == g) {
                groups.push(Cow::Owned(g));
            }
        }
        groups
    }

    fn labels(&mut self, t: &dyn TableLike, node: &str) -> BTreeMap<LabelKey, String> {
        let mut out = BTreeMap::new();
        let Some(item) = t.get("labels") else {
            return out;
        };
        let Some(lt) = as_table_like(item) else {
            self.type_error(
                item,
                &format!("nodes.{node}.labels"),
                "a table of \"key\" = \"value\"",
            );
            return out;
        };
        for (k, kspan, v) in lt.entries() {
            let kspan = kspan.unwrap_or(0..0);
            let value = match v.as_str() {
                Some(s) => s.to_string(),
                None => {
                    self.type_error(v, &format!("label `{k}`"), "a string");
                    continue;
                }
            };
            let key = match self.label_keys.get(k) {
                // Checked when it was first read: it passed.
                Some(key) => key.clone(),
                None => match self.label_key(k, kspan.clone(), node) {
                    Some(key) => key,
                    None => continue,
                },
            };
            if let Err(e) = check_label_value(&value) {
                self.error(
                    value_span(Some(v)),
                    format!("label `{k}` on node `{node}`: {e}"),
                    Some(
                        "write a value Kubernetes accepts, e.g. \"raspberry-pi-4b\", or \"\""
                            .into(),
                    ),
                );
                continue;
            }
            out.insert(key, value);
        }
        out
    }

    /// A label key read for the first time: checked, then kept for the
    /// nodes that name it again; `None` when it is wrong (reported).
    fn label_key(&mut self, k: &str, kspan: Range<usize>, node: &str) -> Option<LabelKey> {
        let key = match LabelKey::try_from(k.to_string()) {
            Ok(key) => key,
            Err(e) => {
                self.error(
                    kspan,
                    format!("label key `{k}` on node `{node}`: {e}"),
                    Some("label keys are [prefix/]name, e.g. goldentooth.io/role".into()),
                );
                return None;
            }
        };
        if key.is_system_managed() {
            self.error(
                kspan,
                format!("label `{k}` on node `{node}` is managed by Kubernetes itself (kubelet or kubeadm)"),
                Some("use your own prefix, e.g. goldentooth.io/...".into()),
            );
            return None;
        }
        self.label_keys.insert(k.to_string(), key.clone());
        Some(key)
    }

    fn taints(&mut self, t: &dyn TableLike, node: &str) -> Vec<Taint> {
        let mut out: Vec<Taint> = Vec::new();
        let Some(item) = t.get("taints") else {
            return out;
        };
        for (s, span) in self.str_array(item, &format!("nodes.{node}.taints")) {
            match s.parse::<Taint>() {
                Err(e) => self.error(span, format!("taint on node `{node}`: {e}"), Some("write key[=value]:Effect, e.g. \"goldentooth.io/gpu=true:NoSchedule\"".into())),
                Ok(taint) if taint.is_system_managed() => self.error(
                    span,
                    format!("taint `{s}` on node `{node}` is managed by Kubernetes itself (kubeadm or the node controller)"),
                    Some("use your own key prefix, e.g. goldentooth.io/...".into()),
                ),
                Ok(taint) => {
                    if out.iter().any(|o| o.key == taint.key && o.effect == taint.effect) {
                        self.error(span, format!("taint `{}:{}` is given twice on node `{node}`", taint.key, taint.effect.as_str()), Some("keep one".into()));
                    } else {
                        out.push(taint);
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// The role, with the spelling kubeadm uses when the user wrote another
/// common name for a control plane, or the right one in other capitals.
fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "control-plane" => Ok(Role::ControlPlane),
        "worker" => Ok(Role::Worker),
        _ if s.eq_ignore_ascii_case("worker") => {
            Err(format!("role `{s}` is not valid; did you mean \"worker\"?"))
        }
        _ if matches!(
            s.to_ascii_lowercase().as_str(),
            "control-plane" | "controlplane" | "control_plane" | "master" | "controller"
        ) =>
        {
            Err(format!(
                "role `{s}` is not valid; did you mean \"control-plane\"?"
            ))
        }
        _ => Err(format!(
            "role `{s}` is not valid; write \"control-plane\" or \"worker\""
        )),
    }
}
