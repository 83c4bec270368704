//! The CNI manifest around a plan: `gt plan` shows what it would apply,
//! `gt apply` reads it before anything changes and hands it to the walk.

use super::{warn, CliError};
use crate::cni::{CniManifest, ManifestError};
use crate::plan::Plan;
use crate::spec::Spec;

/// For `gt plan`: shows the manifest's source and sha256 on the plan when
/// the plan installs the CNI. An unreadable file is an error; a URL that
/// cannot be fetched now only warns (planning from recorded facts works
/// offline), and apply fetches it again before changing anything.
pub fn show_in_plan(spec: &Spec, plan: &mut Plan) -> Result<(), CliError> {
    if !plan.installs_cni() {
        return Ok(());
    }
    match crate::cni::read(spec) {
        Ok(m) => plan.show_cni_manifest(&m.source, Some(&m.sha256)),
        Err(e @ ManifestError::Fetch { .. }) => {
            warn(format!(
                "{e}. The plan shows no sha256 for it; gt apply fetches it again and stops before changing anything if it still cannot"
            ));
            plan.show_cni_manifest(&spec.cluster.cni.manifest.to_string(), None);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// For `gt apply`: the manifest its walk applies (shown on the plan), or
/// `None` when the plan does not install the CNI. Any failure is an error
/// before a step runs.
pub async fn read_for_apply(spec: &Spec, plan: &mut Plan) -> Result<Option<CniManifest>, CliError> {
    if !plan.installs_cni() {
        return Ok(None);
    }
    let owned = spec.clone();
    let m = tokio::task::spawn_blocking(move || crate::cni::read(&owned))
        .await
        .map_err(|e| CliError::Message(format!("reading the CNI manifest: {e}")))??;
    plan.show_cni_manifest(&m.source, Some(&m.sha256));
    Ok(Some(m))
}
