//! Simulated `apt-get` (update, install, remove), `apt-mark` (hold, unhold,
//! showhold) and `apt-cache` (madison, policy), over the repositories of
//! [`super::repos`] and the database of [`super::dpkg`], with apt's messages
//! and exit status 100 for its errors.

use super::debver;
use super::dpkg::{self, Entry};
use super::host::Host;
use super::latency::Op;
use super::repos::{self, Available, Fetch, Source, LISTS_DIR};
use std::os::unix::io::AsRawFd;

const APT_ERROR: u8 = 100;
const LOCK: &str = "/var/lib/dpkg/lock-frontend";

fn print_errors(lines: &[String]) -> u8 {
    for l in lines {
        eprintln!("{l}");
    }
    APT_ERROR
}

/// Options every apt tool takes.
#[derive(Default)]
struct Options {
    yes: bool,
    allow_held: bool,
    allow_downgrades: bool,
    quiet: bool,
    words: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-y" | "--yes" | "--assume-yes" => o.yes = true,
            "--allow-change-held-packages" => o.allow_held = true,
            "--allow-downgrades" => o.allow_downgrades = true,
            "-q" | "-qq" | "--quiet" => o.quiet = true,
            "--no-install-recommends"
            | "--install-recommends"
            | "--no-upgrade"
            | "--reinstall"
            | "--fix-missing"
            | "-f"
            | "--fix-broken"
            | "--all-versions" => {}
            "-o" | "--option" => {
                let v = it.next().ok_or_else(|| {
                    format!("E: Option {a}: Configuration item specification must have an =<val>.")
                })?;
                if !v.contains('=') {
                    return Err(format!(
                        "E: Option {a}: Configuration item specification must have an =<val>."
                    ));
                }
            }
            s if s.starts_with("-o") && s.len() > 2 => {
                if !s.contains('=') {
                    return Err(
                        "E: Option -o: Configuration item specification must have an =<val>."
                            .into(),
                    );
                }
            }
            s if s.starts_with("--option=") => {}
            s if s.starts_with('-') => {
                return Err(format!(
                    "E: Command line option '{}' [from {s}] is not understood in combination with the other options.",
                    s.trim_start_matches('-')
                ));
            }
            s => o.words.push(s.to_string()),
        }
    }
    Ok(o)
}

/// The dpkg frontend lock, held for one apt-get or apt-mark run.
struct FrontendLock {
    _file: std::fs::File,
}

fn lock(host: &Host) -> Result<FrontendLock, Vec<String>> {
    let path = host.path(LOCK);
    let _ = std::fs::create_dir_all(path.parent().expect("has parent"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| vec![format!("E: Could not open lock file {LOCK} - open ({e})")])?;
    // SAFETY: flock on an fd we own; released when the file closes.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(vec![
            format!("E: Could not get lock {LOCK}. It is held by process {} (apt-get)", holder.trim()),
            format!("E: Unable to acquire the dpkg frontend lock ({LOCK}), is another process using it?"),
        ]);
    }
    let _ = std::fs::write(&path, std::process::id().to_string());
    Ok(FrontendLock { _file: f })
}

fn sources(host: &Host) -> Result<Vec<Source>, u8> {
    repos::read_sources(host).map_err(|e| print_errors(&e))
}

/// `apt-get update|install|remove|purge`.
pub(crate) fn apt_get(host: &Host, args: &[String]) -> u8 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return print_errors(&[e]),
    };
    let Some((verb, names)) = o.words.split_first() else {
        eprintln!("E: No command given; apt-get needs update, install or remove");
        return APT_ERROR;
    };
    let _lock = match verb.as_str() {
        "update" | "install" | "remove" | "purge" => match lock(host) {
            Ok(l) => l,
            Err(e) => return print_errors(&e),
        },
        _ => {
            eprintln!("E: Invalid operation {verb}");
            return APT_ERROR;
        }
    };
    let Ok(srcs) = sources(host) else {
        return APT_ERROR;
    };
    match verb.as_str() {
        "update" => update(host, &srcs),
        "install" => install(host, &srcs, names, &o),
        _ => remove(host, names, &o),
    }
}

fn keyring_has(host: &Host, path: &str, key: &str) -> bool {
    let Ok(bytes) = std::fs::read(host.path(path)) else {
        return false;
    };
    super::fetch::key_material_contains(&bytes, key)
}

fn trusted(host: &Host, s: &Source, key: &str) -> bool {
    match &s.signed_by {
        Some(path) => keyring_has(host, path, key),
        None => std::fs::read_dir(host.path("/etc/apt/trusted.gpg.d"))
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read(e.path())
                        .is_ok_and(|b| super::fetch::key_material_contains(&b, key))
                })
            })
            .unwrap_or(false),
    }
}

fn update(host: &Host, srcs: &[Source]) -> u8 {
    host.pause(Op::AptUpdate);
    let arch = host.node().arch.clone();
    // What apt reports while it fetches, then the items that failed for a
    // reason it counts as transient (`apt-pkg/update.cc` AcquireUpdate).
    let mut during: Vec<String> = Vec::new();
    let mut transient: Vec<String> = Vec::new();
    let mut errors = false;
    for (i, s) in srcs.iter().enumerate() {
        let n = i + 1;
        let comps: Vec<Option<String>> = s.indexes(&arch).into_iter().map(|(c, _, _)| c).collect();
        let first = serve_first(host, s, &comps);
        match first {
            Fetch::Unresolved(name) => {
                println!("Err:{n} {}", s.release_name("InRelease"));
                println!("  Could not resolve '{name}'");
                transient.push(format!(
                    "W: Failed to fetch {}  Could not resolve '{name}'",
                    s.release_url()
                ));
            }
            Fetch::NoRelease => {
                println!("Ign:{n} {}", s.release_name("InRelease"));
                println!("Err:{n} {}", s.release_name("Release"));
                println!("  404  Not Found");
                during.push(format!(
                    "E: The repository '{}' does not have a Release file.",
                    s.release_name("Release")
                ));
                during.push("N: Updating from such a repository can't be done securely, and is therefore disabled by default.".into());
                during.push("N: See apt-secure(8) manpage for repository creation and user configuration details.".into());
                errors = true;
            }
            Fetch::Served { key: Some(key), .. } if !trusted(host, s, key) => {
                // The lists of a source come only from a verified update: while
                // they are there, so is the InRelease apt keeps beside them.
                let earlier = s
                    .indexes(&arch)
                    .iter()
                    .any(|(_, file, _)| host.exists(&format!("{LISTS_DIR}/{file}")));
                let word = if earlier && !lists_changed(host, s, &arch) {
                    "Hit"
                } else {
                    "Get"
                };
                let size = if word == "Get" { " [1,186 B]" } else { "" };
                println!("{word}:{n} {}{size}", s.release_name("InRelease"));
                println!("Err:{n} {}", s.release_name("InRelease"));
                let refusal = unverified(s, key, earlier);
                println!("  {}", refusal.why);
                during.extend(refusal.during);
                transient.extend(refusal.transient);
                if !earlier {
                    errors = true;
                }
            }
            Fetch::Served { .. } => {
                let mut fresh = false;
                for (comp, file, _) in s.indexes(&arch) {
                    if let Fetch::Served { packages, .. } =
                        repos::serve(host, &s.uri, &s.suite, comp.as_deref())
                    {
                        let path = format!("{LISTS_DIR}/{file}");
                        let text = repos::packages_file(&packages, &arch);
                        if host.read(&path).as_deref() != Some(text.as_str()) {
                            fresh = true;
                            if let Err(e) = host.write(&path, &text) {
                                eprintln!("E: Could not open file {path} - open ({e})");
                                return APT_ERROR;
                            }
                        }
                    }
                }
                let word = if fresh { "Get" } else { "Hit" };
                println!("{word}:{n} {}", s.release_name("InRelease"));
            }
        }
    }
    println!("Reading package lists...");
    for l in update_messages(during, transient, errors) {
        eprintln!("{l}");
    }
    if errors {
        APT_ERROR
    } else {
        0
    }
}

/// What `apt-get update` prints on stderr at its end: the messages of the
/// fetch, then each transiently failed item and a summary, unless the fetch
/// raised an error (`pkgAcquire::Run` then returns `Failed`, and
/// `AcquireUpdate` reports no item).
fn update_messages(during: Vec<String>, transient: Vec<String>, errors: bool) -> Vec<String> {
    let mut all = during;
    if !errors && !transient.is_empty() {
        all.extend(transient);
        all.push("W: Some index files failed to download. They have been ignored, or old ones used instead.".into());
    }
    all
}

/// Whether the source now serves other package lists than the ones kept.
fn lists_changed(host: &Host, s: &Source, arch: &str) -> bool {
    s.indexes(arch).into_iter().any(|(comp, file, _)| {
        match repos::serve(host, &s.uri, &s.suite, comp.as_deref()) {
            Fetch::Served { packages, .. } => {
                host.read(&format!("{LISTS_DIR}/{file}")).as_deref()
                    != Some(repos::packages_file(&packages, arch).as_str())
            }
            _ => true,
        }
    })
}

/// What apt-get update says of a source whose InRelease no keyring it may
/// use can verify: `signed-by` names a file that lacks the key or is not
/// there at all (apt-key then hands gpgv an empty keyring).
struct Unverified {
    /// The line under `Err:N`.
    why: String,
    /// Its messages while fetching.
    during: Vec<String>,
    /// Its `Failed to fetch` line, when apt counts the failure as transient.
    transient: Option<String>,
}

/// `earlier`: a verified InRelease of the source is kept from an update
/// before. Then apt warns, keeps the old lists and exits 0
/// (`pkgAcqMetaBase::CheckStopAuthentication`); without one the source is
/// refused as unsigned, an error (exit 100), and its lists go.
fn unverified(s: &Source, key: &str, earlier: bool) -> Unverified {
    let release = s.release_name("InRelease");
    let why = format!("The following signatures couldn't be verified because the public key is not available: NO_PUBKEY {key}");
    if earlier {
        return Unverified {
            during: vec![format!("W: An error occurred during the signature verification. The repository is not updated and the previous index files will be used. GPG error: {release}: {why}")],
            transient: Some(format!("W: Failed to fetch {}  {why}", s.release_url())),
            why,
        };
    }
    Unverified {
        during: vec![
            format!("W: GPG error: {release}: {why}"),
            format!("E: The repository '{release}' is not signed."),
            "N: Updating from such a repository can't be done securely, and is therefore disabled by default.".into(),
            "N: See apt-secure(8) manpage for repository creation and user configuration details.".into(),
        ],
        transient: None,
        why,
    }
}

fn serve_first(host: &Host, s: &Source, comps: &[Option<String>]) -> Fetch {
    let comp = comps.first().cloned().flatten();
    repos::serve(host, &s.uri, &s.suite, comp.as_deref())
}

/// One package the command line asks for.
struct Request {
    name: String,
    version: Option<String>,
}

fn requests(names: &[String]) -> Vec<Request> {
    names
        .iter()
        .map(|n| match n.split_once('=') {
            Some((p, v)) => Request {
                name: p.into(),
                version: Some(v.into()),
            },
            None => Request {
                name: n.clone(),
                version: None,
            },
        })
        .collect()
}

fn reading() {
    println!("Reading package lists...");
    println!("Building dependency tree...");
    println!("Reading state information...");
}

fn install(host: &Host, srcs: &[Source], names: &[String], o: &Options) -> u8 {
    reading();
    let avail = repos::available(host, srcs);
    let mut db = dpkg::load(host);
    let mut plan: Vec<(String, String)> = Vec::new();
    let mut errors = Vec::new();
    let candidates =
        |name: &str| -> Vec<&Available> { avail.iter().filter(|a| a.pkg.name == name).collect() };
    for r in requests(names) {
        let c = candidates(&r.name);
        if c.is_empty() {
            errors.push(format!("E: Unable to locate package {}", r.name));
            continue;
        }
        let chosen = match &r.version {
            Some(v) => match c.iter().find(|a| debver::matches(v, &a.pkg.version)) {
                Some(a) => a.pkg.version.clone(),
                None => {
                    errors.push(format!("E: Version '{v}' for '{}' was not found", r.name));
                    continue;
                }
            },
            None => c[0].pkg.version.clone(),
        };
        if let Some(e) = db.get(&r.name).filter(|e| e.installed()) {
            if e.version == chosen {
                println!("{} is already the newest version ({chosen}).", r.name);
                continue;
            }
        }
        plan.push((r.name.clone(), chosen));
    }
    if !errors.is_empty() {
        return print_errors(&errors);
    }
    // Dependencies not installed yet, at their newest version.
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut unmet = Vec::new();
    let mut queue: Vec<String> = plan.iter().map(|(n, _)| n.clone()).collect();
    while let Some(name) = queue.pop() {
        let Some(a) = avail.iter().find(|a| a.pkg.name == name) else {
            continue;
        };
        for dep in &a.pkg.depends {
            let have = db.get(dep).is_some_and(Entry::installed)
                || plan.iter().chain(&extra).any(|(n, _)| n == dep);
            if have {
                continue;
            }
            match candidates(dep).first() {
                Some(d) => {
                    extra.push((dep.clone(), d.pkg.version.clone()));
                    queue.push(dep.clone());
                }
                None => unmet.push(format!(
                    " {name} : Depends: {dep} but it is not installable"
                )),
            }
        }
    }
    if !unmet.is_empty() {
        println!("Some packages could not be installed. This may mean that you have");
        println!("requested an impossible situation or if you are using the unstable");
        println!("distribution that some required packages have not yet been created");
        println!("or been moved out of Incoming.");
        println!("The following information may help to resolve the situation:\n");
        println!("The following packages have unmet dependencies:");
        for u in &unmet {
            println!("{u}");
        }
        return print_errors(&[
            "E: Unable to correct problems, you have held broken packages.".into(),
        ]);
    }
    extra.sort();
    plan.extend(extra.iter().cloned());
    plan.sort();
    if plan.is_empty() {
        println!("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.");
        return 0;
    }
    let is_new = |n: &str| !db.get(n).is_some_and(Entry::installed);
    let held: Vec<&str> = plan
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| db.get(*n).is_some_and(Entry::held))
        .collect();
    let downgraded: Vec<&str> = plan
        .iter()
        .filter(|(n, v)| {
            db.get(n)
                .filter(|e| e.installed())
                .is_some_and(|e| debver::compare(v, &e.version).is_lt())
        })
        .map(|(n, _)| n.as_str())
        .collect();
    let upgraded: Vec<&str> = plan
        .iter()
        .filter(|(n, v)| {
            db.get(n)
                .filter(|e| e.installed())
                .is_some_and(|e| debver::compare(v, &e.version).is_gt())
        })
        .map(|(n, _)| n.as_str())
        .collect();
    if !extra.is_empty() {
        list(
            "The following additional packages will be installed:",
            extra.iter().map(|(n, _)| n.as_str()),
        );
    }
    if !held.is_empty() {
        list(
            "The following held packages will be changed:",
            held.iter().copied(),
        );
    }
    let new: Vec<&str> = plan
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| is_new(n))
        .collect();
    if !new.is_empty() {
        list(
            "The following NEW packages will be installed:",
            new.iter().copied(),
        );
    }
    if !upgraded.is_empty() {
        list(
            "The following packages will be upgraded:",
            upgraded.iter().copied(),
        );
    }
    if !downgraded.is_empty() {
        list(
            "The following packages will be DOWNGRADED:",
            downgraded.iter().copied(),
        );
    }
    let downgrades = match downgraded.len() {
        0 => String::new(),
        n => format!("{n} downgraded, "),
    };
    println!(
        "{} upgraded, {} newly installed, {downgrades}0 to remove and 0 not upgraded.",
        upgraded.len(),
        new.len(),
    );
    if !held.is_empty() && !o.allow_held {
        return print_errors(&[
            "E: Held packages were changed and -y was used without --allow-change-held-packages."
                .into(),
        ]);
    }
    if !downgraded.is_empty() && !o.allow_downgrades {
        return print_errors(&[
            "E: Packages were downgraded and -y was used without --allow-downgrades.".into(),
        ]);
    }
    if !o.yes {
        println!("Do you want to continue? [Y/n] Abort.");
        return 1;
    }
    for (n, v) in &plan {
        host.pause(Op::PackageInstall);
        let want = db
            .get(n)
            .map(|e| e.want.clone())
            .unwrap_or_else(|| "install".into());
        match db.get(n).filter(|e| e.installed()) {
            Some(e) => println!(
                "Preparing to unpack .../{n}_{v}_{}.deb ...\nUnpacking {n} ({v}) over ({}) ...",
                host.node().arch,
                e.version
            ),
            None => {
                println!("Selecting previously unselected package {n}.\nUnpacking {n} ({v}) ...")
            }
        }
        db.insert(
            n.clone(),
            Entry {
                version: v.clone(),
                want,
                status: "installed".into(),
            },
        );
    }
    if let Err(e) = dpkg::save(host, &db) {
        return print_errors(&[format!(
            "E: Sub-process /usr/bin/dpkg returned an error code (1): {e}"
        )]);
    }
    for (n, v) in &plan {
        println!("Setting up {n} ({v}) ...");
        if let Err(e) = installed_effects(host, n) {
            return print_errors(&[format!(
                "E: Sub-process /usr/bin/dpkg returned an error code (1): setting up {n}: {e}"
            )]);
        }
    }
    0
}

fn list<'a>(title: &str, names: impl Iterator<Item = &'a str>) {
    println!("{title}");
    println!("  {}", names.collect::<Vec<_>>().join(" "));
}

/// What a package's maintainer scripts do once it is unpacked.
fn installed_effects(host: &Host, package: &str) -> std::io::Result<()> {
    dpkg::link_programs(host, package, true)?;
    match package {
        "kubelet" => super::services::kubelet_installed(host),
        "containerd" | "containerd.io" => super::containerd::installed(host, package),
        _ => Ok(()),
    }
}

fn remove(host: &Host, names: &[String], o: &Options) -> u8 {
    reading();
    let mut db = dpkg::load(host);
    let mut gone = Vec::new();
    for n in names {
        match db.get(n) {
            Some(e) if e.installed() => gone.push(n.clone()),
            Some(_) => println!("Package '{n}' is not installed, so not removed"),
            None => return print_errors(&[format!("E: Unable to locate package {n}")]),
        }
    }
    if gone.is_empty() {
        println!("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.");
        return 0;
    }
    let held: Vec<&str> = gone
        .iter()
        .map(String::as_str)
        .filter(|n| db.get(*n).is_some_and(Entry::held))
        .collect();
    if !held.is_empty() {
        list(
            "The following held packages will be changed:",
            held.iter().copied(),
        );
    }
    list(
        "The following packages will be REMOVED:",
        gone.iter().map(String::as_str),
    );
    println!(
        "0 upgraded, 0 newly installed, {} to remove and 0 not upgraded.",
        gone.len()
    );
    if !held.is_empty() && !o.allow_held {
        return print_errors(&[
            "E: Held packages were changed and -y was used without --allow-change-held-packages."
                .into(),
        ]);
    }
    if !o.yes {
        println!("Do you want to continue? [Y/n] Abort.");
        return 1;
    }
    for n in &gone {
        host.pause(Op::PackageInstall);
        let e = db.remove(n).expect("listed");
        println!("Removing {n} ({}) ...", e.version);
        if e.held() {
            db.insert(
                n.clone(),
                Entry {
                    version: String::new(),
                    want: "hold".into(),
                    status: "not-installed".into(),
                },
            );
        }
        let _ = dpkg::link_programs(host, n, false);
        super::services::package_removed(host, n);
    }
    if let Err(e) = dpkg::save(host, &db) {
        return print_errors(&[format!(
            "E: Sub-process /usr/bin/dpkg returned an error code (1): {e}"
        )]);
    }
    0
}

/// `apt-mark hold|unhold|showhold`.
pub(crate) fn apt_mark(host: &Host, args: &[String]) -> u8 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return print_errors(&[e]),
    };
    let Some((verb, names)) = o.words.split_first() else {
        eprintln!("E: No command given; apt-mark needs hold, unhold or showhold");
        return APT_ERROR;
    };
    match verb.as_str() {
        "showhold" => {
            host.pause(Op::Instant);
            let db = dpkg::load(host);
            for (n, e) in &db {
                if e.held() && (names.is_empty() || names.contains(n)) {
                    println!("{n}");
                }
            }
            0
        }
        "hold" | "unhold" => {
            host.pause(Op::AptQuery);
            if names.is_empty() {
                eprintln!("E: No packages found");
                return APT_ERROR;
            }
            let _lock = match lock(host) {
                Ok(l) => l,
                Err(e) => return print_errors(&e),
            };
            let mut db = dpkg::load(host);
            let known = repos::read_sources(host)
                .map(|s| repos::available(host, &s))
                .unwrap_or_default();
            for n in names {
                if !db.contains_key(n) && !known.iter().any(|a| &a.pkg.name == n) {
                    return print_errors(&[format!("E: Unable to locate package {n}")]);
                }
            }
            for n in names {
                let e = db.entry(n.clone()).or_insert_with(|| Entry {
                    version: String::new(),
                    want: "install".into(),
                    status: "not-installed".into(),
                });
                match (verb.as_str(), e.held()) {
                    ("hold", true) => println!("{n} was already set on hold."),
                    ("hold", false) => {
                        e.want = "hold".into();
                        println!("{n} set on hold.");
                    }
                    ("unhold", true) => {
                        e.want = "install".into();
                        println!("Canceled hold on {n}.");
                    }
                    _ => println!("{n} was already not on hold."),
                }
            }
            db.retain(|_, e| e.installed() || e.held());
            if let Err(e) = dpkg::save(host, &db) {
                return print_errors(&[format!("E: Executing dpkg failed. Are you root? ({e})")]);
            }
            0
        }
        other => {
            eprintln!("E: Invalid operation {other}");
            APT_ERROR
        }
    }
}

/// `apt-cache madison|policy PACKAGE...`.
pub(crate) fn apt_cache(host: &Host, args: &[String]) -> u8 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return print_errors(&[e]),
    };
    host.pause(Op::AptQuery);
    let Some((verb, names)) = o.words.split_first() else {
        eprintln!("E: No command given; apt-cache needs madison or policy");
        return APT_ERROR;
    };
    let Ok(srcs) = sources(host) else {
        return APT_ERROR;
    };
    let avail = repos::available(host, &srcs);
    let db = dpkg::load(host);
    let known = |n: &str| in_cache(&avail, &db, n);
    match verb.as_str() {
        "madison" => {
            let (out, notices) = madison(&avail, &known, names, o.quiet);
            print!("{out}");
            eprint!("{notices}");
            0
        }
        "policy" => {
            for n in names {
                let rows: Vec<&Available> = avail.iter().filter(|a| &a.pkg.name == n).collect();
                let installed = db
                    .get(n)
                    .filter(|e| e.installed())
                    .map(|e| e.version.clone());
                if !known(n) {
                    if !o.quiet {
                        eprintln!("{}", unable_to_locate(n));
                    }
                    continue;
                }
                println!("{n}:");
                println!("  Installed: {}", installed.as_deref().unwrap_or("(none)"));
                println!(
                    "  Candidate: {}",
                    rows.first()
                        .map(|a| a.pkg.version.as_str())
                        .unwrap_or("(none)")
                );
                println!("  Version table:");
                let mut shown_installed = false;
                for a in &rows {
                    let mark = if installed.as_deref() == Some(a.pkg.version.as_str()) {
                        shown_installed = true;
                        " *** "
                    } else {
                        "     "
                    };
                    println!("{mark}{} 500", a.pkg.version);
                    for index in a.index.lines() {
                        println!("        500 {index}");
                    }
                    if mark == " *** " {
                        println!("        100 /var/lib/dpkg/status");
                    }
                }
                if let (Some(v), false) = (&installed, shown_installed) {
                    println!(" *** {v} 100");
                    println!("        100 /var/lib/dpkg/status");
                }
            }
            0
        }
        other => {
            eprintln!("E: Invalid operation {other}");
            APT_ERROR
        }
    }
}

/// A name apt's cache holds a package for: a version in some list, an entry
/// in dpkg's database, or the target of a dependency.
fn in_cache(avail: &[Available], db: &dpkg::Db, name: &str) -> bool {
    db.contains_key(name)
        || avail
            .iter()
            .any(|a| a.pkg.name == name || a.pkg.depends.iter().any(|d| d == name))
}

fn unable_to_locate(name: &str) -> String {
    format!("N: Unable to locate package {name}")
}

/// `apt-cache madison NAME...` (`cmdline/apt-cache.cc` Madison): every
/// version of each name in the configured sources, and the notices apt
/// prints as it exits. A name the cache lacks is a notice, not an error
/// (exit 0), and `-q` hides notices; a name the cache has without a version
/// in any source prints nothing.
fn madison(
    avail: &[Available],
    known: &dyn Fn(&str) -> bool,
    names: &[String],
    quiet: bool,
) -> (String, String) {
    let mut out = String::new();
    let mut notices = String::new();
    for n in names {
        if !known(n) {
            if !quiet {
                notices.push_str(&unable_to_locate(n));
                notices.push('\n');
            }
            continue;
        }
        for a in avail.iter().filter(|a| &a.pkg.name == n) {
            for index in a.index.lines() {
                out.push_str(&format!(
                    "{:>10} | {:>10} | {index}\n",
                    a.pkg.name, a.pkg.version
                ));
            }
        }
    }
    (out, notices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::repos::Pkg;

    fn k8s_source() -> Source {
        Source {
            uri: "https://pkgs.k8s.io/core:/stable:/v1.32/deb/".into(),
            suite: "/".into(),
            components: Vec::new(),
            signed_by: Some("/etc/apt/keyrings/kubernetes-apt-keyring.gpg".into()),
        }
    }

    #[test]
    fn a_key_missing_before_any_update_refuses_the_source_as_unsigned() {
        let u = unverified(&k8s_source(), "234654DA9A296436", false);
        assert_eq!(u.why, "The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436");
        assert_eq!(
            u.during,
            [
                "W: GPG error: https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436",
                "E: The repository 'https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease' is not signed.",
                "N: Updating from such a repository can't be done securely, and is therefore disabled by default.",
                "N: See apt-secure(8) manpage for repository creation and user configuration details.",
            ]
        );
        assert_eq!(u.transient, None);
    }

    #[test]
    fn a_key_missing_after_an_update_keeps_the_old_lists_with_warnings() {
        let u = unverified(&k8s_source(), "234654DA9A296436", true);
        assert_eq!(
            u.during,
            ["W: An error occurred during the signature verification. The repository is not updated and the previous index files will be used. GPG error: https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436"]
        );
        assert_eq!(
            u.transient.as_deref(),
            Some("W: Failed to fetch https://pkgs.k8s.io/core:/stable:/v1.32/deb/InRelease  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436")
        );
    }

    #[test]
    fn an_error_while_fetching_hides_the_failed_items() {
        let during =
            vec!["E: The repository 'x  Release' does not have a Release file.".to_string()];
        let transient =
            vec!["W: Failed to fetch http://m/InRelease  Could not resolve 'm'".to_string()];
        assert_eq!(
            update_messages(during.clone(), transient.clone(), true),
            during
        );
        assert_eq!(
            update_messages(Vec::new(), transient, false),
            [
                "W: Failed to fetch http://m/InRelease  Could not resolve 'm'",
                "W: Some index files failed to download. They have been ignored, or old ones used instead.",
            ]
        );
    }

    #[test]
    fn madison_notices_an_unknown_name_unless_quiet_and_is_silent_on_a_known_one() {
        let avail = vec![Available {
            pkg: Pkg {
                name: "kubeadm".into(),
                version: "1.32.4-1.1".into(),
                depends: vec!["cri-tools".into()],
            },
            index: "https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages".into(),
        }];
        let mut db = dpkg::Db::new();
        db.insert(
            "kubelet".into(),
            Entry {
                version: "1.31.8-1.1".into(),
                want: "hold".into(),
                status: "installed".into(),
            },
        );
        let known = |n: &str| in_cache(&avail, &db, n);
        let names: Vec<String> = ["kubeadm", "kubelet", "cri-tools", "nosuch"]
            .map(String::from)
            .to_vec();
        let (out, notices) = madison(&avail, &known, &names, false);
        assert_eq!(
            out,
            "   kubeadm | 1.32.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n"
        );
        assert_eq!(notices, "N: Unable to locate package nosuch\n");
        let (_, quiet) = madison(&avail, &known, &names, true);
        assert_eq!(quiet, "");
    }
}
