//! gt as a user runs it without a cluster: help and completions, validate,
//! plan from recorded facts, saved plans, the examples.

mod commands;
mod examples_drift;
mod files;
mod help;
mod plan_snapshots;
mod readers;
mod saved_plan;
