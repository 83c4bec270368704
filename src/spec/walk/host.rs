//! `[defaults.host]` and `[nodes.NAME.host]`: a node's own keys over the
//! defaults; modules and sysctls add up (a node's sysctl value wins).

use super::table::{as_table_like, value_span, TableLike};
use crate::spec::load::Loader;
use crate::spec::tree::Item;
use crate::spec::{
    check_mirror_url, check_module_name, check_sysctl_name, check_sysctl_value, HostSettings,
    PackageSource,
};
use std::collections::{BTreeMap, BTreeSet};

const HOST_KEYS: &[&str] = &[
    "manage",
    "mirror",
    "container_runtime",
    "modules",
    "sysctls",
    "allow_reboot",
];

/// The one container runtime gt installs (the distribution's containerd).
const CONTAINERD: &str = "containerd";

/// A host table as written, before it is merged over the defaults.
#[derive(Default, Clone)]
pub(super) struct RawHost {
    manage: Option<bool>,
    mirror: Option<String>,
    modules: BTreeSet<String>,
    sysctls: BTreeMap<String, String>,
    allow_reboot: Option<bool>,
}

impl RawHost {
    pub(super) fn over(self, base: &RawHost) -> HostSettings {
        let mut h = HostSettings::default();
        h.manage = self.manage.or(base.manage).unwrap_or(h.manage);
        if let Some(url) = self.mirror.or_else(|| base.mirror.clone()) {
            h.source = PackageSource::Mirror(url);
        }
        h.modules.extend(base.modules.iter().cloned());
        h.modules.extend(self.modules);
        h.sysctls.extend(base.sysctls.clone());
        h.sysctls.extend(self.sysctls);
        h.allow_reboot = self.allow_reboot.or(base.allow_reboot).unwrap_or(false);
        h
    }
}

impl Loader<'_> {
    pub(super) fn host_table(&mut self, item: &Item, what: &str) -> RawHost {
        let mut raw = RawHost::default();
        let Some(t) = as_table_like(item) else {
            self.type_error(item, what, "a table");
            return raw;
        };
        self.check_keys(&t, HOST_KEYS, what);
        raw.manage = self.opt_bool(&t, "manage");
        raw.allow_reboot = self.opt_bool(&t, "allow_reboot");
        raw.mirror = self.opt_parsed(&t, "mirror", what, check_mirror_url);
        self.opt_parsed(&t, "container_runtime", what, |s| {
            if s == CONTAINERD {
                Ok(())
            } else {
                Err(format!(
                    "container runtime `{s}` is not one gt installs; write \"{CONTAINERD}\" (the distribution's, configured with SystemdCgroup = true), or manage = false to prepare the host yourself"
                ))
            }
        });
        if let Some(item) = t.get("modules") {
            for (m, span) in self.str_array(item, &format!("{what} modules")) {
                match check_module_name(&m) {
                    Ok(()) => {
                        raw.modules.insert(m);
                    }
                    Err(e) => self.split_error(span, what, "modules", &e),
                }
            }
        }
        if let Some(item) = t.get("sysctls") {
            match as_table_like(item) {
                None => self.type_error(
                    item,
                    &format!("{what} sysctls"),
                    "a table of \"name\" = value",
                ),
                Some(st) => {
                    for (k, kspan, v) in st.entries() {
                        let value = match v
                            .as_integer()
                            .map(|i| i.to_string())
                            .or_else(|| v.as_str().map(str::to_string))
                        {
                            Some(value) => value,
                            None => {
                                self.type_error(
                                    v,
                                    &format!("sysctl `{k}`"),
                                    "a string or an integer",
                                );
                                continue;
                            }
                        };
                        if let Err(e) = check_sysctl_name(k) {
                            self.split_error(kspan.unwrap_or(0..0), what, "sysctls", &e);
                        } else if let Err(e) = check_sysctl_value(&value) {
                            self.split_error(
                                value_span(Some(v)),
                                what,
                                &format!("sysctl `{k}`"),
                                &e,
                            );
                        } else {
                            raw.sysctls.insert(k.to_string(), value);
                        }
                    }
                }
            }
        }
        raw
    }

    /// A checker's "what is wrong; what to write" as an error with its help line.
    fn split_error(&mut self, span: std::ops::Range<usize>, what: &str, key: &str, e: &str) {
        let (problem, fix) = e.split_once("; ").unwrap_or((e, ""));
        self.error(
            span,
            format!("{key} in {what}: {problem}"),
            (!fix.is_empty()).then(|| fix.to_string()),
        );
    }
}
