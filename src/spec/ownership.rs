//! Which label and taint keys gt owns: every key whose prefix
//! (`goldentooth.io`) some label or taint in cluster.toml uses, and the
//! unprefixed keys the file names. Labels of other owners (the kubelet,
//! kubeadm, operators) are never touched.
//!
//! Gathered while the walk reads each node's labels and taints, when they
//! are at hand: gathered by the plan, it was a pass over every node of the
//! file, which at thousands of nodes is out of the cache.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOwnership {
    prefixes: BTreeSet<String>,
    bare_keys: BTreeSet<String>,
}

impl KeyOwnership {
    /// A label's or taint's key the file names.
    pub(crate) fn note(&mut self, key: &str) {
        let (set, owned) = match key.split_once('/') {
            Some((prefix, _)) => (&mut self.prefixes, prefix),
            None => (&mut self.bare_keys, key),
        };
        // Most keys share a few prefixes: a key is copied only when new.
        if !set.contains(owned) {
            set.insert(owned.to_string());
        }
    }

    pub fn owns(&self, key: &str) -> bool {
        match key.split_once('/') {
            Some((prefix, _)) => self.prefixes.contains(prefix),
            None => self.bare_keys.contains(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_owns_every_key_under_it_and_a_bare_key_only_itself() {
        let mut o = KeyOwnership::default();
        o.note("goldentooth.io/rack");
        o.note("goldentooth.io/pool");
        o.note("gpu");
        assert!(o.owns("goldentooth.io/anything"));
        assert!(o.owns("gpu"));
        assert!(!o.owns("gpu/x"));
        assert!(!o.owns("gpus"));
        assert!(!o.owns("kubernetes.io/hostname"));
        assert!(!o.owns("goldentooth.io"));
        assert_eq!(o.prefixes.len(), 1);
    }
}
