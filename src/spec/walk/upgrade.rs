//! `[upgrade]` (how many workers a rung takes out at once) and `[drain]`
//! (whether gt forces a drain past pods no controller owns).

use super::{as_table_like, value_span, Loader, TableLike};
use crate::spec::tree::Item;
use crate::spec::{DrainSettings, MaxUnavailable, UpgradeSettings};

const UPGRADE_KEYS: &[&str] = &["max_unavailable"];
const DRAIN_KEYS: &[&str] = &["force"];

impl Loader<'_> {
    pub(super) fn upgrade_settings(&mut self, item: Option<&Item>) -> UpgradeSettings {
        let mut u = UpgradeSettings::default();
        let Some(item) = item else { return u };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "upgrade", "a table");
            return u;
        };
        self.check_keys(&t, UPGRADE_KEYS, "[upgrade]");
        if let Some(m) = self.max_unavailable(&t) {
            u.max_unavailable = m;
        }
        u
    }

    pub(super) fn drain_settings(&mut self, item: Option<&Item>) -> DrainSettings {
        let mut d = DrainSettings::default();
        let Some(item) = item else { return d };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "drain", "a table");
            return d;
        };
        self.check_keys(&t, DRAIN_KEYS, "[drain]");
        if let Some(force) = self.opt_bool(&t, "force") {
            d.force = force;
        }
        d
    }

    /// A whole number of workers (at least 1) or a percentage of them (`"25%"`).
    fn max_unavailable(&mut self, t: &dyn TableLike) -> Option<MaxUnavailable> {
        let item = t.get("max_unavailable")?;
        let help = Some(
            "write a number of workers, at least 1 (`max_unavailable = 2`), or a percentage of them from 1% to 100% (`max_unavailable = \"25%\"`)"
                .to_string(),
        );
        let parsed = if let Some(n) = item.as_integer() {
            u32::try_from(n)
                .ok()
                .filter(|n| *n >= 1)
                .map(MaxUnavailable::Count)
                .ok_or_else(|| {
                    format!(
                        "max_unavailable in [upgrade]: {n} workers at a time would upgrade none"
                    )
                })
        } else if let Some(s) = item.as_str() {
            MaxUnavailable::parse(s).map_err(|e| format!("max_unavailable in [upgrade]: {e}"))
        } else {
            self.type_error(item, "max_unavailable", "a number or a percentage string");
            return None;
        };
        match parsed {
            Ok(m) => Some(m),
            Err(message) => {
                self.error(value_span(Some(item)), message, help);
                None
            }
        }
    }
}
