//! How many hosts gt works on at once when `--parallelism` is not given:
//! one bound for reading (observation) and two for changing (apply's steps:
//! all of them, and those that load the control plane), because these cost
//! very different things.

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

/// Steps `gt apply` runs at once in all. Preparing a host (packages, its
/// container runtime, kernel settings, a reboot) loads only that host and
/// the package mirror, never the control plane, so a homelab's hosts are
/// prepared in one wave, as they are observed; only `STEPS` of the running
/// steps may be ones that load the control plane.
pub const ALL_STEPS: usize = OBSERVE;

/// How many of apply's steps run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepBounds {
    /// Running steps of every kind.
    pub all: usize,
    /// Running steps that load the control plane: all but host preparation.
    pub loading: usize,
}

impl StepBounds {
    /// Whether one more step may start, given what runs now.
    pub fn admits(
        &self,
        loads_control_plane: bool,
        running: usize,
        running_loading: usize,
    ) -> bool {
        running < self.all.max(1) && (!loads_control_plane || running_loading < self.loading.max(1))
    }
}

/// One bound for every step (`--parallelism N`).
impl From<usize> for StepBounds {
    fn from(n: usize) -> Self {
        StepBounds {
            all: n.max(1),
            loading: n.max(1),
        }
    }
}

/// The bounds of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    pub observe: usize,
    pub steps: StepBounds,
}

impl Parallelism {
    /// `--parallelism N` bounds both; without it each has its default.
    pub fn from_flag(flag: Option<u16>) -> Parallelism {
        match flag {
            Some(n) => Parallelism {
                observe: usize::from(n).max(1),
                steps: StepBounds::from(usize::from(n)),
            },
            None => Parallelism::default(),
        }
    }
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism {
            observe: OBSERVE,
            steps: StepBounds {
                all: ALL_STEPS,
                loading: STEPS,
            },
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
                steps: StepBounds { all: 3, loading: 3 }
            }
        );
    }

    #[test]
    fn without_the_flag_a_homelab_is_observed_in_one_wave_and_steps_stay_bounded() {
        let p = Parallelism::from_flag(None);
        assert_eq!(p.observe, OBSERVE);
        assert_eq!(p.steps.loading, STEPS);
        // goldentooth: 12 nodes and the load balancer.
        assert!(p.observe >= 13);
        assert!(p.steps.loading < p.observe);
        // Its twelve hosts are prepared at once.
        assert!(p.steps.all >= 12);
    }

    #[test]
    fn host_preparation_fills_the_bound_joins_cannot() {
        let b = Parallelism::default().steps;
        // Ten joins running: no eleventh, but host preparation still starts.
        assert!(!b.admits(true, 10, 10));
        assert!(b.admits(false, 10, 10));
        // Every slot taken: nothing starts.
        assert!(!b.admits(false, b.all, 0));
        // The flag bounds every kind alike.
        let flag = Parallelism::from_flag(Some(2)).steps;
        assert!(!flag.admits(false, 2, 0));
        assert!(flag.admits(true, 1, 1));
        assert!(!flag.admits(true, 1, 2));
    }
}
