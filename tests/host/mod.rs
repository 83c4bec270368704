//! Host software as desired state: host plans from recorded facts (insta
//! snapshots, text and JSON), drift of hosts, and the Raspberry Pi reboot
//! refusal; the CNI manifest read on the operator's machine.

mod cni;
mod lab;
mod plans;
