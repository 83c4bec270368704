//! The simulated kubeadm, kubectl and cluster, driven as processes.

mod cluster;
mod host;
mod kubeadm;
mod kubectl;
