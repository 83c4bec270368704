//! The simulated kubeadm, kubectl and cluster (and the lab's real etcd),
//! driven as processes.

mod cluster;
mod host;
mod etcd;
mod kubeadm;
mod kubectl;
