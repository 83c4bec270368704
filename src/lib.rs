//! gt: a declarative reconciler for kubeadm Kubernetes clusters.
//!
//! Layers (dependencies point down only; see DESIGN.md):
//! `cli` → `plan`/`render`/`apply` → `kube` → `facts` → `transport` → `spec`.
//! `lab` is a simulated cluster driven only through gt's public behaviour.

pub mod apply;
pub mod cli;
pub mod facts;
pub mod fsutil;
pub mod kube;
pub mod lab;
pub mod plan;
pub mod render;
pub mod spec;
pub mod transport;
pub mod ui;
