//! What the integration tests share: the harness that runs programs, the
//! lab and simulated-tool drivers, and readers of gt's outputs.

pub mod components;
pub mod config;
pub mod events;
pub mod gt;
pub mod kube;
pub mod lab;
pub mod promtext;
pub mod secrets;
pub mod sim;
pub mod wait;
pub mod workloads;
