//! Observed state: the model (`model`), the probe each host runs and the
//! parsing of what comes back (`probe`). An unreachable host is a fact.

mod from_kube;
mod model;
pub mod observe;
pub mod probe;

pub use model::*;
