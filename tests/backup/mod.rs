//! etcd backups: `gt drift`'s backup age and `[backup]` in cluster.toml
//! without a cluster; the backup, its files and the restore drill against
//! the lab's real etcd.

mod config;
mod drill;
