//! gt: a declarative reconciler for kubeadm Kubernetes clusters.
//!
//! Layers (dependencies point down only; see DESIGN.md):
//! `cli` → `plan`/`render`/`apply` → `kube` → `facts` → `transport` → `spec`.
//! The lab (the `gt-lab` crate, a simulated cluster) is not part of this
//! library's API: only `cli` uses it, for `gt lab` and the simulated tools.

pub mod apply;
pub mod backup;
pub mod cli;
pub mod cni;
pub mod duration;
pub mod facts;
pub mod fsutil;
pub mod kube;
pub mod parallelism;
pub mod plan;
pub mod render;
pub mod spec;
pub mod transport;
pub mod ui;
