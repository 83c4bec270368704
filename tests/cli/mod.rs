//! gt as a user runs it without a cluster: help and completions, validate,
//! plan from recorded facts, saved plans, the examples.

mod commands;
mod examples_drift;
mod help;
pub(crate) mod hostile_hosts;
mod plan_snapshots;
mod saved_plan;
