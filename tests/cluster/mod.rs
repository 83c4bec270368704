//! Reading a lab cluster: `gt observe`, `status`, `exec`, `plan`, `drift`.

mod drift;
mod observe;
mod plan;
