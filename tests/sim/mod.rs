//! The simulated kubeadm, kubectl and cluster (and the lab's real etcd),
//! driven as processes.

mod cluster;
mod etcd;
mod host;
mod kubeadm;
mod kubectl;
mod upgrade;
