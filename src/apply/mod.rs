//! `gt apply`: walk the plan's DAG with bounded parallelism, readiness gates,
//! one short-lived join token, failure propagation and a recap
//! (docs/architecture.md). Steps send events (`events`); they never print.

pub mod events;
pub mod lock;

pub use events::{
    Event, Events, Failure, NodeOutcome, NodeRecap, NodeResult, Recap, Removal, StepStatus,
};
pub use steps::StepError;
pub mod recap;
mod run;
pub mod session;
pub mod steps;
pub mod walker;

#[cfg(test)]
mod tests;
