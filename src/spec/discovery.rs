//! Finding the config file.

use std::path::{Path, PathBuf};

/// The config file: `--config`, then `$GT_CONFIG`, then `./cluster.toml`.
pub fn find_config(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "config file {} (from --config) does not exist",
                p.display()
            ))
        };
    }
    if let Some(p) = std::env::var_os("GT_CONFIG").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "config file {} (from $GT_CONFIG) does not exist",
                p.display()
            ))
        };
    }
    let p = PathBuf::from("cluster.toml");
    if p.exists() {
        Ok(p)
    } else {
        Err("no cluster.toml in the current directory; pass --config FILE or set GT_CONFIG".into())
    }
}
