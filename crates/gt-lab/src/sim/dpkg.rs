//! The host's package database (`/var/lib/dpkg/status`, in dpkg's own
//! format) and `dpkg-query`.
//!
//! A package's programs exist on the host only while it is installed: its
//! files are links to the gt binary in the host's `/usr/bin`, which is first on
//! the host's PATH, so `command -v kubeadm` fails on a host without kubeadm.

use super::host::Host;
use std::collections::BTreeMap;

pub(crate) const STATUS: &str = "/var/lib/dpkg/status";

/// One package in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) version: String,
    /// dpkg's selection: `install` or `hold`.
    pub(crate) want: String,
    /// `installed` or `not-installed`.
    pub(crate) status: String,
}

impl Entry {
    pub(crate) fn installed(&self) -> bool {
        self.status == "installed"
    }
    pub(crate) fn held(&self) -> bool {
        self.want == "hold"
    }
    fn status_field(&self) -> String {
        format!("{} ok {}", self.want, self.status)
    }
}

pub(crate) type Db = BTreeMap<String, Entry>;

pub(crate) fn load(host: &Host) -> Db {
    parse(&host.read(STATUS).unwrap_or_default())
}

pub(crate) fn parse(text: &str) -> Db {
    let mut db = Db::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut status) = (None, String::new(), String::new());
        for l in stanza.lines() {
            match l.split_once(": ") {
                Some(("Package", v)) => name = Some(v.to_string()),
                Some(("Version", v)) => version = v.into(),
                Some(("Status", v)) => status = v.into(),
                _ => {}
            }
        }
        let Some(name) = name else { continue };
        let mut words = status.split_whitespace();
        let want = words.next().unwrap_or("install").to_string();
        let state = words.nth(1).unwrap_or("installed").to_string();
        db.insert(
            name,
            Entry {
                version,
                want,
                status: state,
            },
        );
    }
    db
}

pub(crate) fn render(db: &Db, arch: &str) -> String {
    let mut s = String::new();
    for (name, e) in db {
        s.push_str(&format!("Package: {name}\nStatus: {}\n", e.status_field()));
        if e.installed() {
            s.push_str(&format!("Architecture: {arch}\nVersion: {}\n", e.version));
        }
        s.push('\n');
    }
    s
}

pub(crate) fn save(host: &Host, db: &Db) -> std::io::Result<()> {
    host.write(STATUS, &render(db, &host.node().arch))
}

/// The package that provides a simulated program.
pub(crate) fn package_of(tool: &str) -> Option<&'static str> {
    Some(match tool {
        "kubeadm" => "kubeadm",
        "kubelet" => "kubelet",
        "kubectl" => "kubectl",
        "crictl" => "cri-tools",
        "containerd" | "ctr" => "containerd",
        "dphys-swapfile" => "dphys-swapfile",
        _ => return None,
    })
}

/// The programs a package puts in /usr/bin.
pub(crate) fn programs_of(package: &str) -> &'static [&'static str] {
    match package {
        "kubeadm" => &["kubeadm"],
        "kubelet" => &["kubelet"],
        "kubectl" => &["kubectl"],
        "cri-tools" => &["crictl"],
        "containerd" | "containerd.io" => &["containerd"],
        "dphys-swapfile" => &["dphys-swapfile"],
        _ => &[],
    }
}

/// Whether the program's package (either containerd package for containerd) is installed.
pub(crate) fn program_installed(db: &Db, tool: &str) -> bool {
    match package_of(tool) {
        Some("containerd") => ["containerd", "containerd.io"]
            .iter()
            .any(|p| db.get(*p).is_some_and(Entry::installed)),
        Some(p) => db.get(p).is_some_and(Entry::installed),
        None => true,
    }
}

/// Puts (or takes away) a package's programs: links to the running binary in the host's /usr/bin.
pub(crate) fn link_programs(host: &Host, package: &str, present: bool) -> std::io::Result<()> {
    let bin = host.path("/usr/bin");
    std::fs::create_dir_all(&bin)?;
    // The binary the lab's own tools are (a test may run this code in another one).
    let exe = std::fs::read_link(host.lab_dir.join("bin").join("uname"))
        .or_else(|_| std::env::current_exe())?;
    for p in programs_of(package) {
        let link = bin.join(p);
        let _ = std::fs::remove_file(&link);
        if present {
            std::os::unix::fs::symlink(&exe, &link)?;
        }
    }
    Ok(())
}

/// `dpkg-query -W [-f=FORMAT] [PACKAGE...]` and `dpkg-query -s PACKAGE...`.
pub(crate) fn dpkg_query(host: &Host, args: &[String]) -> u8 {
    host.pause(super::latency::Op::Instant);
    let mut format = "${binary:Package}\t${Version}\n".to_string();
    let mut mode = None;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-W" | "--show" => mode = Some('W'),
            "-s" | "--status" => mode = Some('s'),
            "-l" | "--list" => mode = Some('l'),
            "-f" | "--showformat" => match it.next() {
                Some(f) => format = f.clone(),
                None => {
                    eprintln!("dpkg-query: error: --showformat needs a value\n\nUse --help for help about querying packages.");
                    return 2;
                }
            },
            s if s.starts_with("-f") => format = s[2..].trim_start_matches('=').to_string(),
            s if s.starts_with("--showformat=") => format = s["--showformat=".len()..].to_string(),
            s if s.starts_with('-') => {
                eprintln!("dpkg-query: error: unknown option {s}\n\nUse --help for help about querying packages.");
                return 2;
            }
            s => names.push(s.to_string()),
        }
    }
    let db = load(host);
    let arch = host.node().arch.clone();
    match mode {
        Some('W') => {
            let mut code = 0;
            let chosen: Vec<(String, Option<&Entry>)> = if names.is_empty() {
                db.iter()
                    .filter(|(_, e)| e.installed())
                    .map(|(n, e)| (n.clone(), Some(e)))
                    .collect()
            } else {
                names.iter().map(|n| (n.clone(), db.get(n))).collect()
            };
            let mut out = String::new();
            for (n, e) in chosen {
                match e {
                    Some(e) => out.push_str(&show(&format, &n, e, &arch)),
                    None => {
                        eprintln!("dpkg-query: no packages found matching {n}");
                        code = 1;
                    }
                }
            }
            print!("{out}");
            code
        }
        Some('s') => {
            if names.is_empty() {
                eprintln!("dpkg-query: error: --status needs at least one package name argument\n\nUse --help for help about querying packages.");
                return 2;
            }
            let mut code = 0;
            for n in &names {
                match db.get(n).filter(|e| e.installed() || e.held()) {
                    Some(e) => {
                        print!("Package: {n}\nStatus: {}\n", e.status_field());
                        if e.installed() {
                            print!("Architecture: {arch}\nVersion: {}\n", e.version);
                        }
                        println!();
                    }
                    None => {
                        eprintln!("dpkg-query: package '{n}' is not installed and no information is available");
                        code = 1;
                    }
                }
            }
            if code != 0 {
                eprintln!("Use dpkg --info (= dpkg-deb --info) to examine archive files.");
            }
            code
        }
        _ => {
            eprintln!("dpkg-query: error: need an action option\n\nUse --help for help about querying packages.");
            2
        }
    }
}

/// Expands a `--showformat` for one package (`\t`, `\n` escapes; `${Field}` and `${Field;width}`).
fn show(format: &str, name: &str, e: &Entry, arch: &str) -> String {
    let mut out = String::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("\\t") {
            out.push('\t');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("\\n") {
            out.push('\n');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("\\\\") {
            out.push('\\');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let Some(end) = r.find('}') else {
                out.push_str(rest);
                break;
            };
            let (field, width) = match r[..end].split_once(';') {
                Some((f, w)) => (f, w.parse::<i64>().ok()),
                None => (&r[..end], None),
            };
            let installed = e.installed();
            let value = match field {
                "Package" | "binary:Package" => name.to_string(),
                "Version" if installed => e.version.clone(),
                "Architecture" if installed => arch.to_string(),
                "Status" => e.status_field(),
                "db:Status-Want" => e.want.clone(),
                "db:Status-Eflag" => "ok".into(),
                "db:Status-Status" => e.status.clone(),
                "db:Status-Abbrev" => format!(
                    "{}{} ",
                    if e.held() { 'h' } else { 'i' },
                    if installed { 'i' } else { 'n' }
                ),
                _ => String::new(),
            };
            match width {
                Some(w) if w < 0 => {
                    out.push_str(&format!("{value:<width$}", width = (-w) as usize))
                }
                Some(w) => out.push_str(&format!("{value:>width$}", width = w as usize)),
                None => out.push_str(&value),
            }
            rest = &r[end + 1..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_file_round_trips_holds() {
        let mut db = Db::new();
        db.insert(
            "kubeadm".into(),
            Entry {
                version: "1.32.4-1.1".into(),
                want: "hold".into(),
                status: "installed".into(),
            },
        );
        let text = render(&db, "arm64");
        assert!(text.contains("Package: kubeadm\nStatus: hold ok installed\nArchitecture: arm64\nVersion: 1.32.4-1.1\n"));
        assert_eq!(parse(&text), db);
    }

    #[test]
    fn show_formats_fields_as_dpkg_query_does() {
        let e = Entry {
            version: "1.32.4-1.1".into(),
            want: "hold".into(),
            status: "installed".into(),
        };
        assert_eq!(
            show(
                "${Package}\\t${Version}\\t${Status}\\n",
                "kubelet",
                &e,
                "arm64"
            ),
            "kubelet\t1.32.4-1.1\thold ok installed\n"
        );
        assert_eq!(
            show("${db:Status-Abbrev}${Package;8}|", "kubelet", &e, "arm64"),
            "hi  kubelet|"
        );
        let gone = Entry {
            version: String::new(),
            want: "install".into(),
            status: "not-installed".into(),
        };
        assert_eq!(
            show("${Version}|${Status}", "x", &gone, "arm64"),
            "|install ok not-installed"
        );
    }
}
