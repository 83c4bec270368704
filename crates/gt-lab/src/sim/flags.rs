//! A small cobra/pflag-style command-line parser: `--name=value`, `--name value`,
//! `-n value`, `-nvalue`, boolean flags (`--flag`, `--flag=false`), flags mixed
//! with positional arguments, `--` ending flags. Errors carry pflag's wording.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag {
    pub(crate) long: &'static str,
    pub(crate) short: Option<char>,
    /// Takes a value (string flag) rather than being a boolean switch.
    pub(crate) value: bool,
}

pub(crate) const fn string(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        value: true,
    }
}

pub(crate) const fn boolean(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        value: false,
    }
}

impl Flag {
    pub(crate) const fn short(mut self, c: char) -> Flag {
        self.short = Some(c);
        self
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    /// Every occurrence of each flag given, by long name, in order.
    pub(crate) values: BTreeMap<&'static str, Vec<String>>,
    pub(crate) positional: Vec<String>,
}

impl Parsed {
    pub(crate) fn has(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
    /// The last value given (pflag semantics for scalar flags).
    pub(crate) fn get(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    /// A boolean switch: present and not `=false`.
    pub(crate) fn on(&self, long: &str) -> bool {
        self.get(long).is_some_and(|v| v != "false")
    }
    /// Every value, comma-separated lists split (pflag's StringSlice).
    pub(crate) fn list(&self, long: &str) -> Vec<String> {
        self.values
            .get(long)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
    /// Names of the flags that were given, sorted.
    pub(crate) fn given(&self) -> Vec<&'static str> {
        self.values.keys().copied().collect()
    }
}

/// Parses `args` against `flags`; the error is pflag's message
/// (`unknown flag: --foo`, `flag needs an argument: --token`).
pub(crate) fn parse(args: &[String], flags: &[Flag]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let flag = flags
                .iter()
                .find(|f| f.long == name)
                .ok_or_else(|| format!("unknown flag: --{name}"))?;
            let v = if flag.value {
                match inline {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => return Err(format!("flag needs an argument: --{name}")),
                }
            } else {
                match inline.as_deref() {
                    None => "true".to_string(),
                    Some("true") | Some("1") => "true".to_string(),
                    Some("false") | Some("0") => "false".to_string(),
                    Some(other) => {
                        return Err(format!(
                            "invalid argument {other:?} for \"--{name}\" flag: strconv.ParseBool: parsing {other:?}: invalid syntax"
                        ))
                    }
                }
            };
            out.values.entry(flag.long).or_default().push(v);
        } else if a.len() > 1 && a.starts_with('-') {
            let c = a[1..].chars().next().expect("non-empty");
            let flag = flags
                .iter()
                .find(|f| f.short == Some(c))
                .ok_or_else(|| format!("unknown shorthand flag: '{c}' in {a}"))?;
            let rest = &a[1 + c.len_utf8()..];
            let v = if flag.value {
                if let Some(v) = rest.strip_prefix('=') {
                    v.to_string()
                } else if !rest.is_empty() {
                    rest.to_string()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(format!("flag needs an argument: '{c}' in -{c}"));
                }
            } else if rest.is_empty() {
                "true".to_string()
            } else {
                return Err(format!("unknown shorthand flag: '{}' in {a}", &rest[..1]));
            };
            out.values.entry(flag.long).or_default().push(v);
        } else {
            out.positional.push(a.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        string("token"),
        boolean("control-plane"),
        string("output").short('o'),
        boolean("force").short('f'),
        string("ignore-preflight-errors"),
    ];

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn long_short_and_positional_mix_like_pflag() {
        let p = parse(
            &args("10.4.0.10:6443 --token=abc --control-plane -ojson -f --ignore-preflight-errors a,b --ignore-preflight-errors C"),
            FLAGS,
        )
        .unwrap();
        assert_eq!(p.positional, vec!["10.4.0.10:6443"]);
        assert_eq!(p.get("token"), Some("abc"));
        assert!(p.on("control-plane"));
        assert_eq!(p.get("output"), Some("json"));
        assert!(p.on("force"));
        assert_eq!(p.list("ignore-preflight-errors"), vec!["a", "b", "C"]);
    }

    #[test]
    fn unknown_and_valueless_flags_fail_with_pflag_wording() {
        assert_eq!(
            parse(&args("--foo"), FLAGS).unwrap_err(),
            "unknown flag: --foo"
        );
        assert_eq!(
            parse(&args("--token"), FLAGS).unwrap_err(),
            "flag needs an argument: --token"
        );
        assert_eq!(
            parse(&args("-x"), FLAGS).unwrap_err(),
            "unknown shorthand flag: 'x' in -x"
        );
    }
}
