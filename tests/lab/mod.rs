//! `gt lab` itself: bringing simulated clusters up and down over both
//! transports, and installing gt elsewhere.

mod hosts;
mod install;
mod lifecycle;
mod ssh;
mod teardown;
