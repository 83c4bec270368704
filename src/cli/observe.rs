//! `gt observe`: probe every host, print the facts as JSON.

use super::flags::ObserveFlags;
use super::{exit, CliError, Context};
use crate::fsutil::{write_atomic, Input};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Write the facts JSON here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

pub fn observe(ctx: &Context, a: ObserveArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let opts = crate::facts::observe::ObserveOptions {
        etcd_status: true,
        ..a.observe.options()
    };
    let observed = crate::facts::observe::observe(&spec, &opts)?;
    // Facts carry strings from hosts: escape every control character, not
    // only those serde_json escapes, so a terminal never sees them raw.
    let json = crate::render::json::to_string_pretty(&observed);
    match &a.out {
        Some(path) => {
            let config = Input {
                role: "the config",
                path: &spec.source,
            };
            let text = format!("{json}\n");
            write_atomic(path, text.as_bytes(), 0o644, ".gt-facts-", &[config]).map_err(
                |source| CliError::WriteFacts {
                    path: path.clone(),
                    source,
                },
            )?
        }
        None => println!("{json}"),
    }
    let unreachable: Vec<&str> = observed
        .hosts
        .iter()
        .filter(|(_, h)| !h.is_reachable())
        .map(|(n, _)| n.as_str())
        .collect();
    eprintln!(
        "observed {} hosts: {} reachable, {} unreachable{}",
        observed.hosts.len(),
        observed.hosts.len() - unreachable.len(),
        unreachable.len(),
        if unreachable.is_empty() {
            String::new()
        } else {
            format!(" ({})", unreachable.join(", "))
        }
    );
    Ok(exit::OK)
}
