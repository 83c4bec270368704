//! `gt apply` against the lab: bootstrap, removal, the apply lock, and
//! signals.

mod bootstrap;
mod lock;
mod remove;
pub(crate) mod signals;
