//! `/readyz?verbose` as `kubectl get --raw` returns it: `[+]etcd ok` lines and
//! `readyz check passed` on HTTP 200; `[-]etcd failed: reason withheld` lines
//! on HTTP 500, which kubectl reports on stderr, inside its error message.

/// What one `/readyz?verbose` request said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readyz {
    pub ready: bool,
    /// Failing checks (`etcd`), empty when ready.
    pub failed_checks: Vec<String>,
    /// Why readiness could not be read at all (kubectl's own words).
    pub error: Option<String>,
}

/// Readiness from kubectl's exit code and outputs.
pub fn parse(code: i32, stdout: &str, stderr: &str) -> Readyz {
    let mut failed: Vec<String> = Vec::new();
    for text in [stdout, stderr] {
        for (i, _) in text.match_indices("[-]") {
            let name: String = text[i + 3..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '\\' && *c != '"')
                .collect();
            if !name.is_empty() && !failed.contains(&name) {
                failed.push(name);
            }
        }
    }
    let passed = stdout.contains("readyz check passed") || stdout.trim() == "ok";
    if code == 0 && passed && failed.is_empty() {
        return Readyz {
            ready: true,
            ..Default::default()
        };
    }
    let error = if failed.is_empty() {
        let why = stderr.trim();
        Some(if why.is_empty() {
            format!("kubectl get --raw /readyz exited {code} without a reason")
        } else {
            why.to_string()
        })
    } else {
        None
    };
    Readyz {
        ready: false,
        failed_checks: failed,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSED: &str = "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]informer-sync ok\n\
        [+]poststarthook/start-apiextensions-controllers ok\nreadyz check passed";

    #[test]
    fn a_passing_verbose_body_is_ready() {
        assert_eq!(
            parse(0, PASSED, ""),
            Readyz {
                ready: true,
                failed_checks: vec![],
                error: None
            }
        );
    }

    #[test]
    fn a_failing_body_names_its_failed_checks() {
        let body = "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed";
        let r = parse(1, body, "");
        assert!(!r.ready);
        assert_eq!(r.failed_checks, vec!["etcd"]);
        assert_eq!(r.error, None);
    }

    #[test]
    fn kubectls_error_message_on_http_500_is_read_too() {
        let stderr = "Error from server (InternalError): an error on the server (\"[+]ping ok\\n[+]log ok\\n\
            [-]etcd failed: reason withheld\\n[-]poststarthook/start-apiextensions-controllers failed: reason withheld\\n\
            readyz check failed\") has prevented the request from succeeding\n";
        let r = parse(1, "", stderr);
        assert_eq!(
            r.failed_checks,
            vec!["etcd", "poststarthook/start-apiextensions-controllers"]
        );
        assert!(!r.ready);
    }

    #[test]
    fn an_unreachable_api_server_is_an_error_with_kubectls_reason() {
        let r = parse(
            1,
            "",
            "The connection to the server 10.4.0.10:6443 was refused - did you specify the right host or port?\n",
        );
        assert!(!r.ready);
        assert!(r.error.unwrap().contains("was refused"));
    }
}
