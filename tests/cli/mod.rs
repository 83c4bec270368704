//! gt as a user runs it without a cluster: help and completions, validate,
//! plan from recorded facts, saved plans, the examples, and every kubectl
//! line gt builds checked by a real kubectl, and what real kubectl's watch
//! of Nodes prints read by gt.

mod commands;
mod config_errors;
mod examples_drift;
mod files;
mod help;
pub(crate) mod hostile_hosts;
mod kubectl_flags;
mod kubectl_watch;
mod plan_snapshots;
mod readers;
mod saved_plan;
