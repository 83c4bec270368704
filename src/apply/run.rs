//! Who runs an apply: named in the join token's description and the lock.

/// Who runs this apply, for the token's description and the lock.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `20261123T100001Z-4f2a`: unique enough to tell runs apart.
    pub id: String,
    /// `root@laptop`.
    pub operator: String,
}

impl RunInfo {
    pub fn new() -> RunInfo {
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let suffix: u16 = rand::random();
        RunInfo {
            id: format!("{stamp}-{suffix:04x}"),
            operator: format!("{}@{}", user_name(), host_name()),
        }
    }

    /// The bootstrap token's description: names the run.
    pub fn token_description(&self) -> String {
        format!("gt apply {} by {}", self.id, self.operator)
    }
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo::new()
    }
}

pub fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid{}", unsafe { libc::getuid() }))
}

pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
