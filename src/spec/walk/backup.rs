//! `[backup]`: where `gt backup` keeps etcd backups, how many, whether
//! `gt apply` takes one before a step that risks etcd, and how old the
//! newest may grow before `gt drift` reports it.

use super::{as_table_like, value_span, Loader, TableLike};
use crate::spec::tree::Item;
use crate::spec::{format_duration, parse_go_duration, BackupSettings};

const BACKUP_KEYS: &[&str] = &["dir", "keep", "before_risky_steps", "max_age"];

impl Loader<'_> {
    pub(super) fn backup_settings(&mut self, item: Option<&Item>) -> BackupSettings {
        let mut b = BackupSettings::default_beside(&self.path(BackupSettings::DEFAULT_DIR));
        let Some(item) = item else {
            return b;
        };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "backup", "a table");
            return b;
        };
        self.check_keys(&t, BACKUP_KEYS, "[backup]");
        if let Some(dir) = self.opt_str(&t, "dir") {
            b.dir = self.path(&dir);
        }
        if let Some(keep) = self.keep(&t) {
            b.keep = keep;
        }
        if let Some(before) = self.opt_bool(&t, "before_risky_steps") {
            b.before_risky_steps = before;
        }
        b.max_age = self.opt_parsed(&t, "max_age", "[backup]", |s| {
            let d = parse_go_duration(s)
                .map_err(|e| format!("{e}; write a Go duration, e.g. \"26h\""))?;
            if d < BackupSettings::MIN_MAX_AGE {
                return Err(format!(
                    "{} is shorter than a backup takes; write at least {}, e.g. \"26h\" for a daily backup",
                    format_duration(d),
                    format_duration(BackupSettings::MIN_MAX_AGE)
                ));
            }
            Ok(d)
        });
        b
    }

    fn keep(&mut self, t: &dyn TableLike) -> Option<usize> {
        let item = t.get("keep")?;
        let Some(n) = item.as_integer() else {
            self.type_error(item, "keep", "a whole number");
            return None;
        };
        match usize::try_from(n) {
            Ok(n) if (1..=BackupSettings::MAX_KEEP).contains(&n) => Some(n),
            _ => {
                self.error(
                    value_span(Some(item)),
                    format!("keep in [backup]: {n} is not a number of backups to keep"),
                    Some(format!(
                        "keep from 1 to {} backups (the default is {})",
                        BackupSettings::MAX_KEEP,
                        BackupSettings::DEFAULT_KEEP
                    )),
                );
                None
            }
        }
    }
}
