//! Observed state: the model (`model`), the probe each host runs and the
//! parsing of what comes back (`probe`), observing every host (`observe`).
//! An unreachable host is a fact. kubectl's answers are parsed by `kube`
//! into its own types; `from_kube` records them as facts.

mod etcd;
mod from_kube;
mod host;
mod model;
mod node_labels;
pub mod observe;
pub mod probe;
mod versions;
mod workloads;

pub use etcd::*;
pub use host::*;
pub use model::*;
pub use node_labels::NodeLabels;
pub use versions::*;
pub use workloads::*;
