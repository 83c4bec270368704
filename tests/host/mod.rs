//! Host software as desired state: host plans from recorded facts (insta
//! snapshots, text and JSON), drift of hosts, and the Raspberry Pi reboot
//! refusal.

mod lab;
mod plans;
