//! The simulated kubeadm, kubectl and cluster (and the lab's real etcd),
//! driven as processes.

mod cluster;
mod etcd;
mod kubeadm;
mod kubectl;
