//! The lab: a simulated goldentooth on one machine, driven only through
//! gt's public behaviour (issue 3).

pub mod sim;
pub mod topology;
