//! The etcd backup a plan takes before it changes etcd's membership: the
//! same backup as `gt backup`, through the control planes that have an
//! admin kubeconfig, into `[backup] dir`.

use super::{StepError, StepRunner};
use crate::backup::{self, take};
use crate::plan::StepId;
use std::time::SystemTime;

impl StepRunner<'_> {
    pub(super) async fn backup_etcd(&self, id: &StepId) -> Result<(), StepError> {
        let candidates = self.admins.lock().unwrap().clone();
        let events = &self.events;
        // Plain output shows one message per step in a while: the one that
        // counts is where the backup went; another control plane being
        // tried is worth one too.
        let first = candidates.first().cloned();
        let collected = take::collect(
            self.hosts,
            &candidates,
            self.settings().step_timeout,
            |node| {
                if Some(node) != first.as_ref() {
                    events.progress(
                        id,
                        format!("taking the etcd snapshot through {node} instead"),
                    )
                }
            },
        )
        .await
        .map_err(|e| {
            StepError::Backup(format!("{e}; to go on without one, plan with --no-backup"))
        })?;
        let dir = &self.spec.backup.dir;
        let saved = backup::save(
            dir,
            &self.spec.cluster.name,
            SystemTime::now(),
            &collected,
            self.spec.backup.keep,
        )
        .map_err(|e| StepError::Backup(e.to_string()))?;
        self.events.progress(
            id,
            format!(
                "etcd backup written to {} ({} bytes, revision {})",
                saved.path.display(),
                saved.info.bytes,
                saved.info.revision
            ),
        );
        Ok(())
    }
}
