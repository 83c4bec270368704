//! What the simulated kubeadm does with a real etcd: start the first member
//! (init), add a member as a learner and promote it (join, as kubeadm 1.32
//! does), remove the host's member (reset, when it has its configuration).

use super::ctl::{Client, Member};
use super::manifest::{render, EtcdManifest};
use super::{member, CLIENT_PORT, PEER_PORT};
use crate::sim::files;
use crate::sim::host::Host;
use std::time::{Duration, Instant};

/// How long a member may take to start or to catch up: real time, not
/// scaled by the lab's speed (etcd's own timers are real).
const MEMBER_TIMEOUT: Duration = Duration::from_secs(40);

/// Starts this host's member from its manifest, as the kubelet would, and
/// waits until it is healthy (the API server needs it before it is ready).
pub(crate) fn start_member(host: &Host) -> Result<(), String> {
    let address = &host.node().address;
    member::sync(&host.lab_dir, &host.name, address).map_err(|e| e.to_string())?;
    member::wait_healthy(&host.lab_dir, &host.name, address, MEMBER_TIMEOUT)
}

/// `--initial-cluster` from a member list; the new member has no name yet
/// and takes `name`.
fn initial_cluster(members: &[Member], name: &str, peer_url: &str) -> String {
    members
        .iter()
        .filter_map(|m| {
            let url = m.peer_urls.first()?;
            let n = if m.name.is_empty() && url == peer_url {
                name
            } else {
                &m.name
            };
            Some(format!("{n}={url}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The control-plane-join etcd phase: member add as a learner, the manifest,
/// the member started, promoted once in sync, the cluster available.
/// Prints kubeadm's `[etcd]` lines; the error is kubeadm's.
pub(crate) fn join_member(host: &Host, name: &str, advertise: &str) -> Result<(), String> {
    let phase = |e: String| format!("error execution phase control-plane-join/etcd: {e}");
    let client = Client::on(host);
    let peer_url = format!("https://{advertise}:{PEER_PORT}");
    // etcd adds a member only once every voting member has been connected
    // for a while (5 s): kubeadm retries, as here.
    let deadline = Instant::now() + MEMBER_TIMEOUT;
    let members = loop {
        match client.add_learner(name, &peer_url) {
            Ok(m) => break m,
            Err(e) if e.contains("Peer URLs already exists") => {
                break client.members().map_err(|e| phase(e.to_string()))?
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(phase(format!(
                    "error creating local etcd static pod manifest file: {e}"
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    println!("[etcd] Announced new etcd member joining to the existing etcd cluster");
    println!("[etcd] Creating static Pod manifest for \"etcd\"");
    let manifest = render(&EtcdManifest {
        node_name: name,
        advertise_address: advertise,
        initial_cluster: &initial_cluster(&members, name, &peer_url),
        existing: true,
    });
    host.write(&files::manifest_path("etcd"), &manifest)
        .map_err(|e| phase(e.to_string()))?;
    let address = &host.node().address;
    member::sync(&host.lab_dir, &host.name, address).map_err(|e| phase(e.to_string()))?;
    member::wait_listening(&host.lab_dir, &host.name, address, MEMBER_TIMEOUT).map_err(phase)?;
    let id = members
        .iter()
        .find(|m| m.peer_urls.contains(&peer_url))
        .map(|m| m.id)
        .ok_or_else(|| phase(format!("could not find member with peer URL {peer_url}")))?;
    // etcd refuses to promote a learner that has not caught up with the
    // leader; kubeadm retries until it has.
    let deadline = Instant::now() + MEMBER_TIMEOUT;
    loop {
        match client.promote(id) {
            Ok(()) => break,
            Err(e) if Instant::now() >= deadline => return Err(phase(e)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    println!("[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s");
    member::wait_healthy(&host.lab_dir, &host.name, address, MEMBER_TIMEOUT).map_err(phase)
}

/// What reset's removal of the host's member came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removal {
    Removed,
    /// The last member: kubeadm leaves it (the cluster goes with the data).
    LastMember,
    /// No member has this host's peer URL (already removed).
    NotAMember,
    /// etcd's error.
    Failed(String),
}

/// kubeadm's RemoveStackedEtcdMemberFromCluster for this host's advertise address.
pub(crate) fn remove_member(host: &Host, advertise: &str) -> Removal {
    let client = Client::on(host);
    let members = match client.members() {
        Ok(m) => m,
        Err(e) => return Removal::Failed(e),
    };
    let peer_url = format!("https://{advertise}:{PEER_PORT}");
    let own_client = format!("https://{advertise}:{CLIENT_PORT}");
    if members.len() == 1 && client.endpoints().contains(&own_client) {
        return Removal::LastMember;
    }
    let Some(m) = members.iter().find(|m| m.peer_urls.contains(&peer_url)) else {
        return Removal::NotAMember;
    };
    // kubeadm retries for EtcdAPICallTimeout (2 minutes), scaled here like
    // every simulated wait.
    let deadline = Instant::now() + Duration::from_secs_f64(120.0 * host.speed());
    loop {
        match client.remove(m.id) {
            Ok(()) => return Removal::Removed,
            Err(e) if e.contains("member not found") => return Removal::NotAMember,
            Err(e) if Instant::now() >= deadline => return Removal::Failed(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_learner_takes_its_name_in_the_initial_cluster() {
        let members = [
            Member {
                id: 1,
                name: "bettley".into(),
                peer_urls: vec!["https://127.4.0.11:2380".into()],
                is_learner: false,
            },
            Member {
                id: 2,
                name: String::new(),
                peer_urls: vec!["https://127.4.0.12:2380".into()],
                is_learner: true,
            },
        ];
        assert_eq!(
            initial_cluster(&members, "cargyll", "https://127.4.0.12:2380"),
            "bettley=https://127.4.0.11:2380,cargyll=https://127.4.0.12:2380"
        );
    }
}
