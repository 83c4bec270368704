//! `gt unlock`: show the apply lock, then remove it when the user confirms.

use super::{exit, warn, CliError, Context};
use crate::apply::lock::{self, FoundLock, LockError};
use crate::facts::observe::runtime;
use crate::spec::Spec;
use crate::transport::Hosts;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gt unlock          show the lock, then remove it if you type yes
  gt unlock --yes    remove it without asking (scripts, or no terminal)

Exit status: 0 when the lock was removed or there was none; 1 on an error or
when removal was refused.")]
pub struct UnlockArgs {
    /// Remove the lock without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// What is on the lock host: a lock gt can read, or a file it cannot.
enum Shown {
    Lock(Box<FoundLock>),
    Unreadable { lock_host: String },
}

pub fn unlock(ctx: &Context, a: UnlockArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let rt = runtime()?;
    let hosts = Hosts::new(lock::lock_hosts(&spec), &super::transport_options())?;
    rt.block_on(async {
        let unlocked = unlock_with(&spec, &hosts, a.yes).await;
        hosts.close().await;
        unlocked
    })
}

async fn unlock_with(spec: &Spec, hosts: &Hosts, yes: bool) -> Result<u8, CliError> {
    let cluster = &spec.cluster.name;
    let shown = match lock::current(spec, hosts).await {
        Ok(lookup) => {
            for (host, why) in &lookup.unreachable {
                warn(format_args!("could not look for the lock on {host}: {why}"));
            }
            match lookup.found {
                Some(found) => Shown::Lock(Box::new(found)),
                None => {
                    println!(
                        "No apply lock is held for cluster {cluster} (looked on {}).",
                        lookup.looked_on.join(", ")
                    );
                    return Ok(exit::OK);
                }
            }
        }
        Err(LockError::Corrupt {
            lock_host,
            path,
            why,
            content,
        }) => {
            println!(
                "The apply lock file of cluster {cluster} on {lock_host} ({path}) is not a lock \
                 gt can read ({why}). It holds:"
            );
            // The file is the lock host's to write: shown, never obeyed.
            for line in content.lines() {
                println!("  {}", crate::render::sanitize(line));
            }
            Shown::Unreadable { lock_host }
        }
        Err(e) => return Err(e.into()),
    };
    if let Shown::Lock(found) = &shown {
        print!(
            "{}",
            crate::render::sanitize::lines(&describe(cluster, found))
        );
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::UnlockNeedsTerminal);
        }
        if !confirmed() {
            println!("Unlock cancelled: the lock stays.");
            return Ok(exit::ERROR);
        }
    }
    let (lock_host, run_id) = match &shown {
        Shown::Lock(f) => (f.lock_host.as_str(), Some(f.info.run_id.as_str())),
        Shown::Unreadable { lock_host } => (lock_host.as_str(), None),
    };
    // Only the lock shown: if it changed hands meanwhile, the new one stays.
    match lock::remove(spec, hosts, lock_host, run_id).await {
        Ok(true) => {
            println!("Removed the apply lock of cluster {cluster} from {lock_host}.");
            Ok(exit::OK)
        }
        Ok(false) => {
            println!("The lock was released in the meantime; nothing to remove.");
            Ok(exit::OK)
        }
        Err(LockError::Held { info, .. }) => Err(CliError::LockChangedHands {
            holder: info.who(),
            run_id: info.run_id.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The lock as `gt unlock` shows it.
pub fn describe(cluster: &str, f: &FoundLock) -> String {
    let i = &f.info;
    let expiry = if f.expired() {
        format!(
            "expired {} ago",
            crate::duration::compact(std::time::Duration::from_secs(
                (f.host_now - i.expires_unix).max(0) as u64
            ))
        )
    } else {
        format!("in {}", crate::duration::compact(f.expires_in()))
    };
    format!(
        "The {}apply lock of cluster {cluster} is on {} ({}):\n  \
         holder:   {}\n  \
         host:     {}\n  \
         pid:      {}\n  \
         started:  {} ({} ago)\n  \
         expires:  {} ({expiry})\n  \
         run:      {}\n  \
         gt:       {}\n",
        if f.expired() { "expired " } else { "" },
        f.lock_host,
        f.path,
        i.holder,
        i.host,
        i.pid,
        i.started,
        crate::duration::compact(f.age()),
        i.expires,
        i.run_id,
        i.gt_version,
    )
}

/// Terraform's prompt: only the exact word `yes` confirms.
fn confirmed() -> bool {
    print!(
        "\nRemove it? If that apply is still running, another one could then start beside it.\n  \
         Only 'yes' will be accepted to remove it.\n\n  Enter a value: "
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    println!();
    matches!(read, Ok(n) if n > 0) && answer.trim_end_matches(['\n', '\r']) == "yes"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::lock::LockInfo;

    #[test]
    fn the_lock_is_shown_with_its_age_and_expiry_on_the_lock_hosts_clock() {
        let found = FoundLock {
            lock_host: "bettley".into(),
            path: "/var/lib/gt/apply.lock".into(),
            info: LockInfo {
                holder: "root@laptop".into(),
                host: "laptop".into(),
                pid: 4242,
                started: "2026-11-23T10:00:01Z".into(),
                started_unix: 1_000,
                expires: "2026-11-23T10:05:13Z".into(),
                expires_unix: 1_300,
                run_id: "r-1".into(),
                cluster: "goldentooth".into(),
                gt_version: "0.1.0".into(),
            },
            host_now: 1_192,
        };
        assert_eq!(
            describe("goldentooth", &found),
            "The apply lock of cluster goldentooth is on bettley (/var/lib/gt/apply.lock):\n  \
             holder:   root@laptop\n  \
             host:     laptop\n  \
             pid:      4242\n  \
             started:  2026-11-23T10:00:01Z (3m12s ago)\n  \
             expires:  2026-11-23T10:05:13Z (in 1m48s)\n  \
             run:      r-1\n  \
             gt:       0.1.0\n"
        );
        let later = FoundLock {
            host_now: 1_320,
            ..found
        };
        let shown = describe("goldentooth", &later);
        assert!(shown.starts_with("The expired apply lock of cluster goldentooth is on bettley"));
        assert!(shown.contains("(expired 20s ago)"), "{shown}");
    }
}
