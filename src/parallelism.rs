//! How many hosts gt works on at once when `--parallelism` is not given:
//! one bound for reading (observation) and one for changing (apply's steps),
//! because the two cost very different things.

/// Hosts observed at once. A probe is one read-only shell script per host
/// over one SSH connection: each host pays one login and a few reads, the
/// machine running gt one handshake per host. A homelab (goldentooth's 13
/// hosts, a rack of 40) is observed in one wave; beyond, waves of 64 keep
/// the operator's machine from opening hundreds of handshakes at once.
pub const OBSERVE: usize = 64;

/// Steps `gt apply` runs at once. Joins are what run side by side, and each
/// one loads the control plane (TLS bootstrap and CSR signing, an etcd
/// member for a control plane): ten at a time is what a Raspberry Pi control
/// plane takes without its API server timing out.
pub const STEPS: usize = 10;

/// The two bounds of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    pub observe: usize,
    pub steps: usize,
}

impl Parallelism {
    /// `--parallelism N` bounds both; without it each has its default.
    pub fn from_flag(flag: Option<u16>) -> Parallelism {
        match flag {
            Some(n) => Parallelism {
                observe: usize::from(n).max(1),
                steps: usize::from(n).max(1),
            },
            None => Parallelism::default(),
        }
    }
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism {
            observe: OBSERVE,
            steps: STEPS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_bounds_observation_and_steps_alike() {
        assert_eq!(
            Parallelism::from_flag(Some(3)),
            Parallelism {
                observe: 3,
                steps: 3
            }
        );
    }

    #[test]
    fn without_the_flag_a_homelab_is_observed_in_one_wave_and_steps_stay_bounded() {
        let p = Parallelism::from_flag(None);
        assert_eq!(p.observe, OBSERVE);
        assert_eq!(p.steps, STEPS);
        // goldentooth: 12 nodes and the load balancer.
        assert!(p.observe >= 13);
        assert!(p.steps < p.observe);
    }
}
