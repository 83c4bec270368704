//! The simulated kubeadm, kubectl and cluster, driven as processes.

mod cluster;
mod kubeadm;
mod kubectl;
