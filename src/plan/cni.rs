//! Which CNI manifest a plan applies, shown on the change that installs
//! it. The manifest is read on the operator's machine after planning (only
//! a plan that installs the CNI needs it), so this is added to a made plan.

use super::{Plan, StepId};

impl Plan {
    /// Whether carrying the plan out applies the CNI manifest.
    pub fn installs_cni(&self) -> bool {
        self.graph.contains(&StepId::InstallCni)
    }

    /// Shows the manifest's source and, once read, its sha256 on each change
    /// whose steps install the CNI.
    pub fn show_cni_manifest(&mut self, source: &str, sha256: Option<&str>) {
        for c in self
            .changes
            .iter_mut()
            .filter(|c| c.steps.contains(&StepId::InstallCni))
        {
            c.attributes.push(("manifest".into(), source.into()));
            if let Some(digest) = sha256 {
                c.attributes.push(("manifest_sha256".into(), digest.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::facts::Observed;
    use crate::plan::{plan, PlanOptions};

    #[test]
    fn the_change_that_installs_the_cni_shows_the_manifest() {
        let spec = crate::spec::load_str(
            "[cluster]\nname = \"t\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.4.0.10:6443\"\n\
             pod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\n[defaults]\narch = \"arm64\"\n\
             [nodes.a]\nrole = \"control-plane\"\naddress = \"10.4.0.11\"\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let mut empty = Observed::empty();
        empty.hosts.insert("a".into(), Default::default());
        let mut p = plan(&spec, &empty, &PlanOptions::default()).unwrap();
        assert!(p.installs_cni());
        p.show_cni_manifest("/srv/calico.yaml", Some("sha256:ab"));
        let cluster = &p.changes[0];
        assert_eq!(cluster.resource.kind(), "cluster");
        assert!(cluster.attributes.ends_with(&[
            ("manifest".into(), "/srv/calico.yaml".into()),
            ("manifest_sha256".into(), "sha256:ab".into()),
        ]));
        assert!(p.changes[1..]
            .iter()
            .all(|c| !c.attributes.iter().any(|(k, _)| k == "manifest")));
    }
}
