//! `gt backup`: an etcd snapshot, the PKI and the kubeadm configuration,
//! taken through the first healthy control plane, checked and written to
//! the backup directory; older backups beyond the retention count removed.

use super::{exit, CliError, Context};
use crate::backup::{self, take};
use crate::facts::observe::runtime;
use crate::render::sanitize::lines;
use crate::spec::{NodeName, Spec};
use crate::transport::Hosts;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gt backup                   # into [backup] dir (default: backups/)
  gt backup --out /srv/backups --keep 30
  sha256sum -c SHA256SUMS     # in a backup's directory: every file as written")]
pub struct BackupArgs {
    /// Write the backup under this directory (created 0700) instead of [backup] dir.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep this many of the cluster's backups there, the newest (default: [backup] keep, 7).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub keep: Option<u32>,
}

pub fn backup(ctx: &Context, a: BackupArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let dir = a.out.clone().unwrap_or_else(|| spec.backup.dir.clone());
    let keep = a.keep.map_or(spec.backup.keep, |k| k as usize);
    let control_planes: Vec<NodeName> = spec.control_planes().map(|n| n.name.clone()).collect();
    let rt = runtime()?;
    let hosts = Hosts::new(spec.control_planes(), &super::transport_options())?;
    let collected = rt.block_on(async {
        let c = take::collect(&hosts, &control_planes, spec.apply.step_timeout, |node| {
            say(&format!("taking an etcd snapshot through {node}..."));
        })
        .await;
        hosts.close().await;
        c
    });
    let collected = collected.map_err(|e| CliError::Message(e.to_string()))?;
    let saved = backup::save(
        &dir,
        &spec.cluster.name,
        SystemTime::now(),
        &collected,
        keep,
    )
    .map_err(|e| CliError::Message(e.to_string()))?;
    print!("{}", lines(&summary(&spec, &collected.node, &saved, keep)));
    let _ = std::io::stdout().flush();
    Ok(exit::OK)
}

/// A progress line on stderr (stdout is the summary).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{}", lines(line).trim_end());
}

/// What was written, in words: where, how big, which revision, from whom.
/// Never a byte of what the files hold.
pub fn summary(spec: &Spec, node: &NodeName, saved: &backup::Saved, keep: usize) -> String {
    let mut out = format!(
        "Backup of {} written to {}\n  etcd snapshot: {} ({} bytes), revision {}, from the etcd member of {node}\n  \
         with {} (the PKI a control plane is rebuilt from), {} and {}\n",
        spec.cluster.name,
        saved.path.display(),
        human_bytes(saved.info.bytes),
        saved.info.bytes,
        saved.info.revision,
        backup::PKI_FILE,
        backup::KUBEADM_CONFIG_FILE,
        backup::SUMS_FILE,
    );
    for r in &saved.removed {
        out.push_str(&format!(
            "  removed {} (keeping the newest {keep})\n",
            r.display()
        ));
    }
    out
}

/// `1.5 MiB`, `20.0 KiB`, `512 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(20512), "20.0 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
