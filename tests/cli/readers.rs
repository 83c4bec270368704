//! Property tests of the readers of files a user hands gt: a facts file
//! (`gt plan --facts`, `gt drift --facts`) and a saved plan (`gt apply
//! FILE`). Arbitrary bytes and mutated valid documents never panic: each is
//! refused with an error naming the file, or read and then planned, drifted
//! and rendered as gt would. Bounded (a few hundred cases each, no saved
//! failures), so that it runs in CI in seconds.

use crate::support::gt::{fixture, goldentooth};
use gt::cli::planning::read_facts;
use gt::facts::Observed;
use gt::plan::saved::SavedPlan;
use gt::plan::PlanOptions;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: std::env::var("GT_PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..Default::default()
    }
}

fn spec() -> &'static gt::spec::Spec {
    static SPEC: OnceLock<gt::spec::Spec> = OnceLock::new();
    SPEC.get_or_init(|| gt::spec::load_file(&goldentooth()).unwrap())
}

/// Every facts fixture, as bytes.
fn facts_fixtures() -> &'static [Vec<u8>] {
    static F: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    F.get_or_init(|| {
        [
            "empty",
            "converged",
            "label-taint-drift",
            "node-not-in-file",
            "not-ready",
            "other-cluster",
            "unreachable",
            "kubelet-behind",
            "bootstrap-initialised",
            "control-planes-joined",
        ]
        .iter()
        .map(|n| std::fs::read(fixture(n)).unwrap())
        .collect()
    })
}

/// A saved plan of each of a few situations, as bytes.
fn plan_fixtures() -> &'static [Vec<u8>] {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| {
        let bytes = std::fs::read(goldentooth()).unwrap();
        ["empty", "label-taint-drift", "node-not-in-file"]
            .iter()
            .map(|n| {
                let obs =
                    Observed::from_json(&std::fs::read_to_string(fixture(n)).unwrap()).unwrap();
                let opts = PlanOptions {
                    prune: true,
                    ..Default::default()
                };
                let plan = gt::plan::plan(spec(), &obs, &opts).unwrap();
                let dir = tempfile::tempdir().unwrap();
                let p = dir.path().join("p");
                SavedPlan::new(spec(), &bytes, &obs, &opts, &plan)
                    .write(&p, &[])
                    .unwrap();
                std::fs::read(&p).unwrap()
            })
            .collect()
    })
}

/// Values a hand-edited or hostile file might hold where gt expects another.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-0.5)),
        any::<String>().prop_map(Value::from),
        Just(json!("")),
        Just(json!("\u{1b}[2J\u{1b}]0;owned\u{7}\r\n\0")),
        Just(json!("v1.32.4-rc.1+build")),
        Just(json!("v")),
        Just(json!("sha256:")),
        Just(json!("a/b=c:NoSchedule")),
        Just(json!("é".repeat(300))),
        Just(json!([])),
        Just(json!({})),
        Just(json!([[[[[[[[]]]]]]]])),
        Just(json!({"": ""})),
    ]
}

/// One edit of a JSON document's tree: the `at`-th node (preorder, modulo
/// their number) replaced, removed, or its key renamed.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, Value),
    Remove(usize),
    RenameKey(usize, String),
    Duplicate(usize),
    /// The node replaced by another of its type (a string by an odd
    /// string, a number by an extreme one, a map given one more entry), so
    /// that the document still reads and the odd value reaches the planner.
    Retype(usize, String, i64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), odd_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => (any::<usize>(), any::<String>()).prop_map(|(i, k)| Edit::RenameKey(i, k)),
        1 => any::<usize>().prop_map(Edit::Duplicate),
        6 => (any::<usize>(), odd_string(), any::<i64>()).prop_map(|(i, s, n)| Edit::Retype(i, s, n)),
    ]
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        Just("\u{1b}[2J\u{1b}]0;owned\u{7}\r\n\0".to_string()),
        Just("v1.32.4-rc.1+build".to_string()),
        Just("v99999999999999999999.1.2".to_string()),
        Just("v1".to_string()),
        Just("v".to_string()),
        Just("sha256:".to_string()),
        Just("a/b=c:NoSchedule".to_string()),
        Just("node-role.kubernetes.io/control-plane".to_string()),
        Just("kube-apiserver.yaml".to_string()),
        Just("https://[::1]:6443".to_string()),
        Just("é".repeat(300)),
        Just("-".to_string()),
        Just("True".to_string()),
    ]
}

/// `x` as `Retype` changes it.
fn retyped(x: &Value, s: &str, n: i64) -> Value {
    match x {
        Value::String(_) => Value::from(s),
        Value::Number(_) => match n % 4 {
            0 => Value::from(n),
            1 => Value::from(u64::MAX),
            2 => Value::from(-1),
            _ => Value::from(0),
        },
        Value::Bool(b) => Value::from(!b),
        Value::Array(a) => {
            let mut a = a.clone();
            match (n % 3, a.first().cloned()) {
                (0, _) => a.clear(),
                (_, Some(first)) => a.push(retyped(&first, s, n / 3)),
                _ => a.push(Value::from(s)),
            }
            Value::Array(a)
        }
        Value::Object(o) => {
            let mut o = o.clone();
            if let Some((_, v)) = o.iter().next() {
                let v = v.clone();
                o.insert(s.to_string(), v);
            }
            Value::Object(o)
        }
        Value::Null => Value::from(s),
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// Applies `e` to the `n`-th node under `v` (0 is `v` itself, which only
/// `Replace` touches). Returns how many nodes were passed.
fn apply_at(v: &mut Value, n: usize, e: &Edit) -> usize {
    let mut seen = 1;
    match v {
        Value::Array(a) => {
            let mut i = 0;
            while i < a.len() {
                if seen == n {
                    match e {
                        Edit::Replace(_, x) => a[i] = x.clone(),
                        Edit::Remove(_) => {
                            a.remove(i);
                        }
                        Edit::Duplicate(_) => {
                            let x = a[i].clone();
                            a.insert(i, x);
                        }
                        Edit::Retype(_, s, n) => a[i] = retyped(&a[i], s, *n),
                        Edit::RenameKey(..) => {}
                    }
                    return usize::MAX;
                }
                let passed = apply_at(&mut a[i], n - seen, e);
                if passed == usize::MAX {
                    return passed;
                }
                seen += passed;
                i += 1;
            }
        }
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if seen == n {
                    match e {
                        Edit::Replace(_, x) => {
                            o.insert(k, x.clone());
                        }
                        Edit::Remove(_) => {
                            o.remove(&k);
                        }
                        Edit::RenameKey(_, new) => {
                            let x = o.remove(&k).unwrap();
                            o.insert(new.clone(), x);
                        }
                        Edit::Duplicate(_) => {
                            let x = o[&k].clone();
                            o.insert(k, json!([x.clone(), x]));
                        }
                        Edit::Retype(_, s, n) => {
                            let x = retyped(&o[&k], s, *n);
                            o.insert(k, x);
                        }
                    }
                    return usize::MAX;
                }
                let passed = apply_at(o.get_mut(&k).unwrap(), n - seen, e);
                if passed == usize::MAX {
                    return passed;
                }
                seen += passed;
            }
        }
        _ => {}
    }
    seen
}

fn mutate(doc: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(doc).unwrap();
    for e in edits {
        let at = match e {
            Edit::Replace(i, _)
            | Edit::Remove(i)
            | Edit::RenameKey(i, _)
            | Edit::Duplicate(i)
            | Edit::Retype(i, ..) => *i,
        };
        let n = at % count(&v);
        if n == 0 {
            if let Edit::Replace(_, x) = e {
                v = x.clone();
            }
            continue;
        }
        apply_at(&mut v, n, e);
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

/// Byte edits: (position, byte, kind) overwrite, insert or delete.
fn flip(doc: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for &(at, byte, kind) in edits {
        if d.is_empty() {
            d.push(byte);
            continue;
        }
        let i = at % d.len();
        match kind % 3 {
            0 => d[i] = byte,
            1 => d.insert(i, byte),
            _ => {
                d.remove(i);
            }
        }
    }
    d
}

/// What gt does with a facts file: read it, then plan, drift and render.
fn through_facts(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("facts.json");
    std::fs::write(&path, bytes).unwrap();
    match read_facts(&path) {
        Err(e) => prop_assert!(e.contains(&path.display().to_string()), "{e}"),
        Ok(obs) => {
            for prune in [false, true] {
                let opts = PlanOptions {
                    prune,
                    ..Default::default()
                };
                if let Ok(plan) = gt::plan::plan(spec(), &obs, &opts) {
                    let _ = gt::render::plan_text(&plan, gt::render::Style { color: true });
                    let _ = gt::render::plan_json(&plan);
                    let _ = gt::render::dot(&plan);
                }
            }
            if let Ok(r) = gt::plan::drift::drift(spec(), &obs) {
                let _ = gt::render::drift::drift_text(&r, true);
                let c = gt::render::drift::DriftCheck {
                    cluster: Some(r.cluster.clone()),
                    checked_at: std::time::SystemTime::now(),
                    duration: std::time::Duration::ZERO,
                    outcome: Ok(r),
                };
                let _ = gt::render::drift::drift_json(&c);
                let _ = gt::render::drift::drift_prometheus(&c);
            }
        }
    }
    Ok(())
}

/// What `gt apply FILE` does with a plan file before touching a host: read
/// it, check its config, and compare it with a fresh plan.
fn through_plan_file(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.gtplan");
    std::fs::write(&path, bytes).unwrap();
    match SavedPlan::read(&path) {
        Err(e) => {
            let e = e.to_string();
            prop_assert!(e.contains(&path.display().to_string()), "{e}");
        }
        Ok(saved) => {
            let config = std::fs::read(goldentooth()).unwrap();
            let _ = saved.check_config(&config).map_err(|e| e.to_string());
            let obs = Observed::from_json(&std::fs::read_to_string(fixture("converged")).unwrap())
                .unwrap();
            // A file's options may name a node the config lacks: an error of
            // planning, as `gt apply FILE` reports it.
            let Ok(fresh) = gt::plan::plan(spec(), &obs, &saved.options()) else {
                return Ok(());
            };
            if let Err(stale) = saved.check_fresh(&config, &obs, &fresh) {
                let msg = stale.to_string();
                prop_assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
        }
    }
    Ok(())
}

fn fixture_index() -> impl Strategy<Value = usize> {
    any::<usize>()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_facts_reader_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        through_facts(&bytes)?;
    }

    #[test]
    fn the_facts_reader_survives_edited_facts(
        which in fixture_index(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let f = facts_fixtures();
        through_facts(&mutate(&f[which % f.len()], &edits))?;
    }

    #[test]
    fn the_facts_reader_survives_damaged_bytes(
        which in fixture_index(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let f = facts_fixtures();
        through_facts(&flip(&f[which % f.len()], &edits))?;
    }

    #[test]
    fn the_plan_file_reader_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        through_plan_file(&bytes)?;
    }

    #[test]
    fn the_plan_file_reader_survives_edited_plans(
        which in fixture_index(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let p = plan_fixtures();
        through_plan_file(&mutate(&p[which % p.len()], &edits))?;
    }

    #[test]
    fn the_plan_file_reader_survives_damaged_bytes(
        which in fixture_index(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let p = plan_fixtures();
        through_plan_file(&flip(&p[which % p.len()], &edits))?;
    }
}

/// Mutation must reach the leaves, or the properties above test little.
#[test]
fn edits_reach_every_node() {
    let doc = br#"{"a": {"b": [1, {"c": 2}]}, "d": 3}"#;
    let v: Value = serde_json::from_slice(doc).unwrap();
    let n = count(&v);
    assert_eq!(n, 7);
    let mut changed = std::collections::BTreeSet::new();
    for i in 1..n {
        let out = mutate(doc, &[Edit::Replace(i, json!("X"))]);
        assert_ne!(out, serde_json::to_vec_pretty(&v).unwrap(), "node {i}");
        changed.insert(out);
    }
    assert_eq!(changed.len(), n - 1);
}

/// Found by the properties above: a CA pin cut inside a character.
#[test]
fn a_facts_file_whose_ca_pins_are_not_hex_is_planned_without_panicking() {
    for name in ["other-cluster", "converged"] {
        let mut v: Value = serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap();
        for h in v["hosts"].as_object_mut().unwrap().values_mut() {
            h["ca_pin"] = json!("sha256:Do:xꢼ𐺤0,𐺤𐺤𐺤𐺤𐺤𐺤𐺤𐺤");
        }
        through_facts(&serde_json::to_vec(&v).unwrap()).unwrap();
    }
}
