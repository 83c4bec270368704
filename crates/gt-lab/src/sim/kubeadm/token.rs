//! `kubeadm token create|list|delete|generate`, and the bootstrap tokens
//! init and `init phase upload-certs` mint.

use super::cluster::{admin_client, join_command};
use super::{fail, with_global, DEFAULT_TOKEN_TTL, EXIT_ERROR, TOKEN_ID_PATTERN, TOKEN_PATTERN};
use crate::sim::client;
use crate::sim::clock;
use crate::sim::flags::{self, boolean, string, Flag, Parsed};
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::pki;
use crate::sim::state::{self, Token};
use crate::sim::table::tabwrite;

pub(super) fn new_token(
    description: Option<String>,
    ttl: f64,
    now: f64,
    usages: &[&str],
    groups: &[&str],
) -> Token {
    Token {
        id: state::random_token_part(6),
        secret: state::random_token_part(16),
        description,
        expires: (ttl > 0.0).then_some(now + ttl),
        usages: usages.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    }
}

pub(super) fn parse_token(s: &str) -> Option<(String, String)> {
    let (id, secret) = s.split_once('.')?;
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then(|| (id.to_string(), secret.to_string()))
}

pub(super) const DEFAULT_TOKEN_USAGES: &[&str] = &["signing", "authentication"];
pub(super) const DEFAULT_TOKEN_GROUPS: &[&str] =
    &["system:bootstrappers:kubeadm:default-node-token"];
pub(super) const CERTS_PROXY_DESCRIPTION: &str =
    "Proxy for managing TTL for the kubeadm-certs secret";

const TOKEN_FLAGS: &[Flag] = &[
    string("kubeconfig"),
    boolean("dry-run"),
    string("ttl"),
    string("description"),
    boolean("print-join-command"),
    string("certificate-key"),
    string("usages"),
    string("groups"),
    string("config"),
    string("output").short('o'),
    boolean("show-managed-fields"),
    boolean("allow-missing-template-keys"),
];

pub(super) fn token(host: &Host, args: &[String]) -> u8 {
    let p = match flags::parse(args, &with_global(TOKEN_FLAGS)) {
        Ok(p) => p,
        Err(e) => return fail(&e, EXIT_ERROR),
    };
    let Some(sub) = p.positional.first().cloned() else {
        return fail(
            "missing subcommand; \"token\" is not meant to be run on its own",
            EXIT_ERROR,
        );
    };
    let rest = &p.positional[1..];
    match sub.as_str() {
        "create" => token_create(host, &p, rest),
        "list" => token_list(host, &p),
        "delete" => token_delete(host, &p, rest),
        "generate" => {
            println!(
                "{}.{}",
                state::random_token_part(6),
                state::random_token_part(16)
            );
            0
        }
        other => fail(
            &format!("unknown command \"{other}\" for \"kubeadm token\""),
            EXIT_ERROR,
        ),
    }
}

fn token_create(host: &Host, p: &Parsed, rest: &[String]) -> u8 {
    let ttl = match p.get("ttl") {
        Some(d) => match clock::parse_go_duration(d) {
            Some(s) => s,
            None => {
                return fail(
                    &format!(
                    "invalid argument \"{d}\" for \"--ttl\" flag: time: invalid duration \"{d}\""
                ),
                    EXIT_ERROR,
                )
            }
        },
        None => DEFAULT_TOKEN_TTL,
    };
    let given = match rest.first() {
        Some(t) => match parse_token(t) {
            Some(parts) => Some(parts),
            None => {
                return fail(
                    &format!("the token {t:?} was not of the form {TOKEN_PATTERN:?}"),
                    EXIT_ERROR,
                )
            }
        },
        None => None,
    };
    let info = match admin_client(
        host,
        p.get("kubeconfig"),
        "Post",
        "/api/v1/namespaces/kube-system/secrets",
    ) {
        Ok(i) => i,
        Err(e) => return fail(&e, EXIT_ERROR),
    };
    host.pause(Op::Token);
    let now = clock::now();
    let usages: Vec<String> = if p.has("usages") {
        p.list("usages")
    } else {
        DEFAULT_TOKEN_USAGES.iter().map(|s| s.to_string()).collect()
    };
    let groups: Vec<String> = if p.has("groups") {
        p.list("groups")
    } else {
        DEFAULT_TOKEN_GROUPS.iter().map(|s| s.to_string()).collect()
    };
    let mut t = new_token(p.get("description").map(str::to_string), ttl, now, &[], &[]);
    t.usages = usages;
    t.groups = groups;
    if let Some((id, secret)) = given {
        t.id = id;
        t.secret = secret;
    }
    let created = t.clone();
    let r = state::update(&host.lab_dir, |s| {
        s.purge_expired(now);
        s.tokens.retain(|x| x.id != created.id);
        s.tokens.push(created);
    });
    if let Err(e) = r {
        return fail(&e.to_string(), EXIT_ERROR);
    }
    let key = p.get("certificate-key");
    if p.on("print-join-command") {
        let endpoint = client::address_of(&info.server);
        let Some(pin) = info.ca_pem.as_deref().and_then(pki::pin) else {
            return fail(
                "failed to get join command: failed to load CA certificate from the kubeconfig",
                EXIT_ERROR,
            );
        };
        println!(
            "{}",
            join_command(&endpoint, &t.full(), &pin, key.map(Some), false)
        );
    } else {
        if key.is_some() {
            return fail(
                "cannot use --certificate-key without --print-join-command",
                EXIT_ERROR,
            );
        }
        println!("{}", t.full());
    }
    0
}

fn token_list(host: &Host, p: &Parsed) -> u8 {
    if let Err(e) = admin_client(
        host,
        p.get("kubeconfig"),
        "Get",
        "/api/v1/namespaces/kube-system/secrets",
    ) {
        return fail(&format!("failed to list bootstrap tokens: {e}"), EXIT_ERROR);
    }
    host.pause(Op::Token);
    let now = clock::now();
    let st = match state::update(&host.lab_dir, |s| {
        s.purge_expired(now);
        s.clone()
    }) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), EXIT_ERROR),
    };
    let mut tokens = st.tokens.clone();
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let mut rows = Vec::new();
        if i == 0 {
            rows.push(
                [
                    "TOKEN",
                    "TTL",
                    "EXPIRES",
                    "USAGES",
                    "DESCRIPTION",
                    "EXTRA GROUPS",
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        rows.push(token_row(t, now));
        // kubeadm flushes a fresh tabwriter per token: rows align with the header only for the first.
        out.push_str(&tabwrite(&rows, 10, 3));
    }
    print!("{out}");
    0
}

fn token_row(t: &Token, now: f64) -> Vec<String> {
    let (ttl, expires) = match t.expires {
        Some(e) => (clock::short_human_duration(e - now), clock::rfc3339(e)),
        None => ("<forever>".to_string(), "<never>".to_string()),
    };
    let or_none = |s: String| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s
        }
    };
    vec![
        t.full(),
        format!("{ttl:<9}"),
        expires,
        format!("{:<22}", or_none(t.usages.join(","))),
        format!("{:<56}", or_none(t.description.clone().unwrap_or_default())),
        or_none(t.groups.join(",")),
    ]
}

fn token_delete(host: &Host, p: &Parsed, rest: &[String]) -> u8 {
    if rest.is_empty() {
        return fail(
            &format!("missing argument; 'token delete' is missing token of form {TOKEN_PATTERN:?} or {TOKEN_ID_PATTERN:?}"),
            EXIT_ERROR,
        );
    }
    if let Err(e) = admin_client(
        host,
        p.get("kubeconfig"),
        "Delete",
        "/api/v1/namespaces/kube-system/secrets",
    ) {
        return fail(&e, EXIT_ERROR);
    }
    host.pause(Op::Token);
    let now = clock::now();
    for arg in rest {
        let id_ok = arg.len() == 6
            && arg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let id = if id_ok {
            arg.clone()
        } else if let Some((id, _)) = parse_token(arg) {
            id
        } else {
            return fail(
                &format!(
                    "given token didn't match pattern {TOKEN_PATTERN:?} or {TOKEN_ID_PATTERN:?}"
                ),
                EXIT_ERROR,
            );
        };
        let found = state::update(&host.lab_dir, |s| {
            s.purge_expired(now);
            let before = s.tokens.len();
            s.tokens.retain(|t| t.id != id);
            before != s.tokens.len()
        });
        match found {
            Ok(true) => println!("bootstrap token {id:?} deleted"),
            Ok(false) => {
                return fail(
                    &format!("failed to delete bootstrap token {id:?}: secrets \"bootstrap-token-{id}\" not found"),
                    EXIT_ERROR,
                )
            }
            Err(e) => return fail(&e.to_string(), EXIT_ERROR),
        }
    }
    0
}
