//! `gt apply` against the lab: bootstrap, removal, and the apply lock.

mod bootstrap;
mod lock;
mod remove;
