//! Reading cluster.toml (placeholder; replaced by the real loader).
use super::Spec;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
}
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {}", d.message)?;
        }
        Ok(())
    }
}
pub fn find_config(flag: Option<&Path>) -> Result<PathBuf, String> {
    Ok(flag
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("cluster.toml")))
}
pub fn load_file(_p: &Path) -> Result<Spec, Diagnostics> {
    Err(Diagnostics(vec![Diagnostic {
        message: "todo".into(),
    }]))
}
pub fn load_str(_s: &str, _p: &Path) -> Result<Spec, Diagnostics> {
    Err(Diagnostics::default())
}
