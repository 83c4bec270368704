//! Every kubeadm/kubectl command line gt sends and every output it parses
//! (one place for their syntax; KUBEADM.md is the reference).
