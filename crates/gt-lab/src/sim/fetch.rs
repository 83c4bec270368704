//! Simulated `curl` (the repositories' signing keys, nothing else resolves)
//! and `gpg --dearmor`, as the kubeadm install docs use them:
//! `curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key | gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg`.

use super::host::Host;
use super::latency::Op;
use super::repos::{self, DOCKER_KEY_ID, K8S_KEY_ID};
use base64::Engine;
use std::io::Write;

const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// A public key packet standing in for the real key: its long id is inside,
/// which is what the simulated apt checks a keyring for.
fn key_packet(id: &str, owner: &str) -> Vec<u8> {
    let mut v = vec![0x99, 0x01, 0x0d, 0x04];
    v.extend_from_slice(format!("gt-lab simulated OpenPGP public key {id} <{owner}>").as_bytes());
    v
}

fn armored(id: &str, owner: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(key_packet(id, owner));
    let mut s = format!("{ARMOR_BEGIN}\nVersion: GnuPG v2.0.15 (GNU/Linux)\n\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        s.push('\n');
    }
    s.push_str(&format!("={}\n{ARMOR_END}\n", &b64[..4]));
    s
}

/// The body of an ASCII-armored block, decoded.
fn dearmor(text: &str) -> Option<Vec<u8>> {
    let start = text.find(ARMOR_BEGIN)?;
    let body = &text[start + ARMOR_BEGIN.len()..];
    let body = body.split_once("\n\n").map(|(_, b)| b).unwrap_or(body);
    let b64: String = body
        .lines()
        .take_while(|l| !l.starts_with('=') && !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
}

/// Whether a keyring (binary, or ASCII-armored as apt also accepts) holds the key `id`.
pub(crate) fn key_material_contains(bytes: &[u8], id: &str) -> bool {
    let has = |b: &[u8]| b.windows(id.len()).any(|w| w == id.as_bytes());
    if has(bytes) {
        return true;
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(dearmor)
        .is_some_and(|b| has(&b))
}

/// What a URL answers: `Ok(body)`, `Err((exit, message))` as curl fails.
fn get(host: &Host, url: &str) -> Result<Result<Vec<u8>, u16>, (u8, String)> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read(host.path(path))
            .map(Ok)
            .map_err(|_| (37, format!("Couldn't open file {path}")));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err((
            3,
            "URL rejected: Malformed input to a URL function".to_string(),
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err((1, format!("Protocol \"{scheme}\" not supported")));
    }
    let (name, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let bare = name.split(':').next().unwrap_or(name);
    let mirror = bare == "localhost" || bare.starts_with("127.");
    if mirror || bare == "pkgs.k8s.io" {
        if let Some(dir) = path.strip_suffix("/Release.key") {
            if repos::k8s_minor_of(dir)
                .and_then(repos::newest_patch)
                .is_some()
            {
                return Ok(Ok(
                    armored(K8S_KEY_ID, "isv:kubernetes OBS Project").into_bytes()
                ));
            }
        }
        return Ok(Err(404));
    }
    if bare == "download.docker.com" {
        if path == "/linux/debian/gpg" {
            return Ok(Ok(
                armored(DOCKER_KEY_ID, "Docker Release (CE deb)").into_bytes()
            ));
        }
        return Ok(Err(404));
    }
    if bare == "deb.debian.org" || bare == "archive.raspberrypi.com" {
        return Ok(Err(404));
    }
    Err((6, format!("Could not resolve host: {bare}")))
}

/// `curl [-fsSL] [-o FILE] URL`.
pub(crate) fn curl(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Download);
    let (mut fail, mut silent, mut show_error, mut output, mut url) =
        (false, false, false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fail" => fail = true,
            "--silent" => silent = true,
            "--show-error" => show_error = true,
            "--location" | "--retry" => {}
            "-o" | "--output" => output = it.next().cloned(),
            s if s.starts_with("--") => {
                eprintln!("curl: option {s}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information");
                return 2;
            }
            s if s.starts_with('-') && s.len() > 1 => {
                for c in s[1..].chars() {
                    match c {
                        'f' => fail = true,
                        's' => silent = true,
                        'S' => show_error = true,
                        'L' => {}
                        'o' => output = it.next().cloned(),
                        other => {
                            eprintln!("curl: option -{other}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information");
                            return 2;
                        }
                    }
                }
            }
            s => url = Some(s.to_string()),
        }
    }
    let say = |code: u8, msg: &str| {
        if !silent || show_error {
            eprintln!("curl: ({code}) {msg}");
        }
        code
    };
    let Some(url) = url else {
        eprintln!("curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information");
        return 2;
    };
    let body = match get(host, &url) {
        Err((code, msg)) => return say(code, &msg),
        Ok(Err(status)) if fail => {
            return say(22, &format!("The requested URL returned error: {status}"));
        }
        Ok(Err(_)) => b"404 page not found\n".to_vec(),
        Ok(Ok(b)) => b,
    };
    match output {
        Some(path) => match std::fs::write(&path, &body) {
            Ok(()) => 0,
            Err(e) => say(
                23,
                &format!("Failure writing output to destination: {path}: {e}"),
            ),
        },
        None => {
            let _ = std::io::stdout().write_all(&body);
            0
        }
    }
}

/// `gpg --dearmor [-o FILE] [--yes] [FILE]`.
pub(crate) fn gpg(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let (mut dearmor_mode, mut yes, mut batch, mut output, mut input) =
        (false, false, false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dearmor" | "--dearmour" => dearmor_mode = true,
            "--yes" => yes = true,
            "--batch" | "--no-tty" => batch = true,
            "--quiet" | "-q" => {}
            "-o" | "--output" => output = it.next().cloned(),
            s if s.starts_with("--output=") => output = Some(s["--output=".len()..].to_string()),
            s if s.starts_with('-') && s != "-" => {
                eprintln!("gpg: invalid option \"{s}\"");
                return 2;
            }
            s => input = Some(s.to_string()),
        }
    }
    if !dearmor_mode {
        eprintln!("gpg (gt lab simulator): only --dearmor is simulated");
        return 2;
    }
    let text = match input.as_deref() {
        None | Some("-") => super::host::read_stdin_to_end(),
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("gpg: can't open '{f}': {e}");
                eprintln!("gpg: dearmoring failed: {e}");
                return 2;
            }
        },
    };
    let Some(bytes) = dearmor(&text) else {
        eprintln!("gpg: no valid OpenPGP data found.");
        eprintln!("gpg: dearmoring failed: Unknown system error");
        return 2;
    };
    match output.as_deref() {
        None | Some("-") => {
            let _ = std::io::stdout().write_all(&bytes);
            0
        }
        Some(path) => {
            if std::path::Path::new(path).exists() && !yes {
                if batch {
                    eprintln!("gpg: Sorry, no terminal at all requested - can't get input");
                } else {
                    eprintln!("gpg: cannot open '/dev/tty': No such device or address");
                }
                return 2;
            }
            match std::fs::write(path, &bytes) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("gpg: can't create '{path}': {e}");
                    eprintln!("gpg: dearmoring failed: {e}");
                    2
                }
            }
        }
    }
}

/// The keyring `gpg --dearmor` makes of pkgs.k8s.io's Release.key (for prepared hosts).
pub(crate) fn k8s_keyring() -> Vec<u8> {
    key_packet(K8S_KEY_ID, "isv:kubernetes OBS Project")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dearmoring_the_release_key_gives_a_keyring_apt_accepts() {
        let armor = armored(K8S_KEY_ID, "x");
        assert!(armor.starts_with(ARMOR_BEGIN));
        let bin = dearmor(&armor).unwrap();
        assert!(key_material_contains(&bin, K8S_KEY_ID));
        assert!(key_material_contains(armor.as_bytes(), K8S_KEY_ID));
        assert!(!key_material_contains(&bin, DOCKER_KEY_ID));
        assert!(!key_material_contains(b"junk", K8S_KEY_ID));
    }
}
