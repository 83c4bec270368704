//! How many logins gt has authenticating through one jump host at a time.
//!
//! Every host behind a jump host is one more SSH login to it (ProxyJump runs
//! `ssh -W` per connection), and sshd bounds the connections it has not yet
//! authenticated: `MaxStartups 10:30:100` by default, which drops 30 % of new
//! connections once 10 are pending, rising to all of them at 100. Observing
//! 64 hosts at once through a stock bastion would lose logins at random, so
//! gt keeps the logins still starting through one first hop to that 10. A
//! login counts only until its master connection is up: authenticated
//! connections are not sshd's startups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

/// sshd's default `MaxStartups` start: below it, nothing is dropped.
pub const LOGINS_STARTING_PER_JUMP_HOST: usize = 10;

/// The first hop's server, as `host:port` (`[user@]host[:port]` in).
fn server_of(hop: &str) -> String {
    let host_port = hop.rsplit_once('@').map_or(hop, |(_, h)| h);
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && !h.contains(':') && p.parse::<u16>().is_ok());
    if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:22")
    }
}

/// The bound shared by every login whose first hop is `first_hop`.
pub fn gate(first_hop: &str) -> Arc<Semaphore> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    let mut gates = GATES
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    gates
        .entry(server_of(first_hop))
        .or_insert_with(|| Arc::new(Semaphore::new(LOGINS_STARTING_PER_JUMP_HOST)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_jump_host_admits_ten_logins_starting_at_once() {
        let g = gate("admin@bastion-a.example:22");
        let held: Vec<_> = (0..LOGINS_STARTING_PER_JUMP_HOST)
            .map(|_| g.clone().try_acquire_owned().expect("within the bound"))
            .collect();
        // The same server, however the hop is written, shares the bound.
        assert!(gate("bastion-a.example").try_acquire_owned().is_err());
        assert!(gate("pi@bastion-a.example:22").try_acquire_owned().is_err());
        // Another server, or another port, has its own.
        assert!(gate("bastion-a.example:2222").try_acquire_owned().is_ok());
        assert!(gate("bastion-b.example").try_acquire_owned().is_ok());
        drop(held);
        assert!(gate("bastion-a.example").try_acquire_owned().is_ok());
    }

    #[test]
    fn hops_name_their_server_with_the_default_port() {
        assert_eq!(server_of("bastion"), "bastion:22");
        assert_eq!(server_of("admin@10.4.0.1:2222"), "10.4.0.1:2222");
        assert_eq!(server_of("admin@bastion"), "bastion:22");
    }
}
