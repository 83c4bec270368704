//! One node's upgrade step against a scripted cluster that keeps each
//! host's packages, repository, API server version and Node as the real
//! tools would change them: the phases run in the docs' order, a node
//! interrupted halfway resumes without repeating what it did, and cordons
//! are gt's to lift only when gt made them.

use super::test_fixture;
use crate::apply::steps::StepError;
use crate::kube::kubeadm::Release;
use crate::plan::{RungRelease, StepId, UpgradeRole};
use crate::spec::NodeName;
use crate::transport::{BoxFuture, Cmd, Host, LineSink, Output, TransportError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const OLD: Release = Release(1, 32, 4);
const NEW: Release = Release(1, 33, 3);

#[derive(Debug, Clone)]
struct NodeSim {
    control_plane: bool,
    repo_minor: u32,
    kubeadm: Release,
    kubelet_pkg: Release,
    kubectl_pkg: Release,
    apiserver: Option<Release>,
    running_kubelet: Release,
    unschedulable: bool,
    marked: bool,
}

impl NodeSim {
    fn at(release: Release, control_plane: bool) -> NodeSim {
        NodeSim {
            control_plane,
            repo_minor: release.1,
            kubeadm: release,
            kubelet_pkg: release,
            kubectl_pkg: release,
            apiserver: control_plane.then_some(release),
            running_kubelet: release,
            unschedulable: false,
            marked: false,
        }
    }
}

#[derive(Default)]
struct Cluster {
    nodes: BTreeMap<String, NodeSim>,
    cluster_version: Option<Release>,
    /// `(host, command)` of every command that changes something.
    log: Vec<(String, String)>,
    /// kubectl drain's stderr while a budget blocks it.
    drain_blocked: Option<String>,
    /// `kubeadm upgrade plan`'s refusal.
    plan_refuses: Option<String>,
    /// The repository lists no kubeadm at the release.
    kubeadm_missing: bool,
}

struct SimHost {
    name: String,
    cluster: Arc<Mutex<Cluster>>,
}

fn pkg(r: Release) -> String {
    format!("{}.{}.{}-1.1", r.0, r.1, r.2)
}

fn release_in(script: &str, package: &str) -> Release {
    let at = script.find(&format!("{package}=")).unwrap() + package.len() + 1;
    let v: Vec<u32> = script[at..]
        .split('-')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    Release(v[0], v[1], v[2])
}

impl SimHost {
    /// A folded script (`kube::script::in_order`) part by part, as a
    /// shell would run it: stopping at the first failure, which it names.
    fn answer_phases(&self, script: &str) -> Output {
        const CLOSE: &str = "\n} || { rc=$?; echo 'gt-failed-part=";
        if !script.contains(CLOSE) {
            return self.answer(script);
        }
        let mut all = Output::default();
        let mut rest = script;
        while let Some(open) = rest.strip_prefix("{ ") {
            let (inner, tail) = open.split_once(CLOSE).unwrap();
            let (index, tail) = tail.split_once('\'').unwrap();
            rest = tail
                .split_once("exit $rc; }")
                .unwrap()
                .1
                .trim_start_matches('\n');
            let out = self.answer(inner);
            all.stdout.push_str(&out.stdout);
            all.stderr.push_str(&out.stderr);
            if out.code != 0 {
                all.code = out.code;
                all.stderr.push_str(&format!("gt-failed-part={index}\n"));
                return all;
            }
        }
        assert!(rest.is_empty(), "not a folded script: {script}");
        all
    }

    fn answer(&self, script: &str) -> Output {
        let ok = |stdout: String| Output {
            code: 0,
            stdout,
            stderr: String::new(),
        };
        let mut c = self.cluster.lock().unwrap();
        if script.contains("dpkg-query") {
            let n = &c.nodes[&self.name];
            let mut out = format!(
                "package=kubeadm {} hi \npackage=kubelet {} hi \npackage=kubectl {} hi \nsource=deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.{}/deb/ /\n",
                pkg(n.kubeadm),
                pkg(n.kubelet_pkg),
                pkg(n.kubectl_pkg),
                n.repo_minor
            );
            if let Some(a) = n.apiserver {
                out.push_str(&format!("apiserver=registry.k8s.io/kube-apiserver:{a}\n"));
            }
            return ok(out);
        }
        if script.contains("get nodes -o json") {
            let items: Vec<String> = c
                .nodes
                .iter()
                .map(|(name, n)| {
                    let notes = if n.marked {
                        r#","annotations":{"gt.goldentooth/cordoned":"true"}"#
                    } else {
                        ""
                    };
                    format!(
                        r#"{{"metadata":{{"name":"{name}"{notes}}},"spec":{{"unschedulable":{}}},"status":{{"nodeInfo":{{"kubeletVersion":"{}"}},"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#,
                        n.unschedulable, n.running_kubelet
                    )
                })
                .collect();
            return ok(format!(r#"{{"items":[{}]}}"#, items.join(",")));
        }
        if script.contains("apt-cache madison kubeadm") {
            let minor = c.nodes[&self.name].repo_minor;
            let out: String = [5, 0]
                .iter()
                .map(|p| format!("   kubeadm | 1.{minor}.{p}-1.1 | https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb  Packages\n"))
                .collect();
            return ok(out);
        }
        if script.contains("readyz") {
            return super::test_fixture::answer_with_kubectl(
                script,
                "[+]ping ok\n[+]etcd ok\nreadyz check passed\n",
            );
        }
        if script.contains("kubeadm-config") {
            let v = c.cluster_version.unwrap();
            return ok(format!(
                "data:\n  ClusterConfiguration: |\n    kubernetesVersion: {v}\n"
            ));
        }
        let host = self.name.clone();
        c.log.push((host.clone(), script.to_string()));
        let target = |script: &str, verb: &str| -> String {
            let rest = &script[script.find(verb).unwrap() + verb.len()..];
            rest.split_whitespace().next().unwrap().to_string()
        };
        if script.contains("kubernetes.list") {
            let at = script.find("/v1.").unwrap() + 4;
            let minor = script[at..].split('/').next().unwrap().parse().unwrap();
            c.nodes.get_mut(&host).unwrap().repo_minor = minor;
        } else if script.contains("kubeadm=") {
            let r = release_in(script, "kubeadm");
            if c.kubeadm_missing {
                return Output {
                    code: 100,
                    stdout: String::new(),
                    stderr: format!(
                        "E: Version '{}.{}.{}-*' for 'kubeadm' was not found\n",
                        r.0, r.1, r.2
                    ),
                };
            }
            let n = c.nodes.get_mut(&host).unwrap();
            assert_eq!(
                n.repo_minor, r.1,
                "kubeadm {r} from another minor's repository"
            );
            n.kubeadm = r;
        } else if script.contains("kubeadm upgrade plan") {
            if let Some(why) = c.plan_refuses.clone() {
                return Output {
                    code: 1,
                    stdout: String::new(),
                    stderr: why,
                };
            }
        } else if script.contains("kubeadm upgrade apply") {
            let n = c.nodes.get_mut(&host).unwrap();
            n.apiserver = Some(n.kubeadm);
            let v = n.kubeadm;
            c.cluster_version = Some(v);
        } else if script.contains("kubeadm upgrade node") {
            let n = c.nodes.get_mut(&host).unwrap();
            if n.control_plane {
                n.apiserver = Some(n.kubeadm);
            }
        } else if script.contains("gt.goldentooth/cordoned=true") {
            let node = target(script, "annotate node ");
            c.nodes.get_mut(&node).unwrap().marked = true;
        } else if script.contains("gt.goldentooth/cordoned-") {
            let node = target(script, "annotate node ");
            c.nodes.get_mut(&node).unwrap().marked = false;
        } else if script.contains(" drain ") {
            let node = target(script, " drain ");
            c.nodes.get_mut(&node).unwrap().unschedulable = true;
            if let Some(stderr) = c.drain_blocked.clone() {
                return Output {
                    code: 1,
                    stdout: String::new(),
                    stderr,
                };
            }
        } else if script.contains(" uncordon ") {
            let node = target(script, " uncordon ");
            c.nodes.get_mut(&node).unwrap().unschedulable = false;
        } else if script.contains("kubelet=") {
            let n = c.nodes.get_mut(&host).unwrap();
            n.kubelet_pkg = release_in(script, "kubelet");
            n.kubectl_pkg = release_in(script, "kubectl");
        } else if script.contains("restart kubelet") {
            let n = c.nodes.get_mut(&host).unwrap();
            n.running_kubelet = n.kubelet_pkg;
        } else if script.contains("get pdb") {
            return ok(r#"{"items":[
                {"metadata":{"name":"hr-pdb","namespace":"web"},"spec":{"selector":{"matchLabels":{"app":"hr"}}},"status":{"disruptionsAllowed":0}},
                {"metadata":{"name":"roomy","namespace":"web"},"spec":{"selector":{}},"status":{"disruptionsAllowed":2}},
                {"metadata":{"name":"elsewhere","namespace":"other"},"spec":{"selector":{}},"status":{"disruptionsAllowed":0}}
            ]}"#.into());
        } else if script.contains("get pods") {
            return ok(r#"{"items":[{"metadata":{"name":"hr-app","namespace":"web","labels":{"app":"hr"}},"spec":{"nodeName":"fenn"},"status":{}}]}"#.into());
        } else {
            panic!("unexpected command on {host}: {script}");
        }
        ok(String::new())
    }
}

impl Host for SimHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        _lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(async move { Ok(self.answer_phases(&cmd.script)) })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// goldentooth at 1.32, bettley the admin host, and the cluster each of
/// its hosts answers for.
struct Fixture {
    runner: test_fixture::Fixture,
    cluster: Arc<Mutex<Cluster>>,
}

impl Fixture {
    fn new() -> Fixture {
        let cluster = Arc::new(Mutex::new(Cluster {
            cluster_version: Some(OLD),
            ..Default::default()
        }));
        let shared = cluster.clone();
        let runner = test_fixture::Fixture::new(move |name| {
            Arc::new(SimHost {
                name: name.to_string(),
                cluster: shared.clone(),
            }) as Arc<dyn Host>
        });
        for n in &runner.spec.nodes {
            cluster
                .lock()
                .unwrap()
                .nodes
                .insert(n.name.to_string(), NodeSim::at(OLD, n.is_control_plane()));
        }
        Fixture { runner, cluster }
    }

    async fn upgrade(&self, node: &str, role: UpgradeRole) -> Result<(), StepError> {
        let node: NodeName = node.parse().unwrap();
        let id = StepId::UpgradeNode(node.clone(), NEW.into());
        self.runner
            .runner()
            .upgrade_node(&id, &node, &NEW.into(), role)
            .await
    }

    async fn upgrade_rung(
        &self,
        node: &str,
        rung: RungRelease,
        role: UpgradeRole,
    ) -> Result<(), StepError> {
        let node: NodeName = node.parse().unwrap();
        let id = StepId::UpgradeNode(node.clone(), rung);
        self.runner
            .runner()
            .upgrade_node(&id, &node, &rung, role)
            .await
    }

    fn node(&self, n: &str) -> NodeSim {
        self.cluster.lock().unwrap().nodes[n].clone()
    }

    /// The changing commands run so far, each shortened to what it does
    /// and the node it does it to (kubectl's run on the admin host).
    fn did(&self) -> Vec<String> {
        let c = self.cluster.lock().unwrap();
        c.log
            .iter()
            .map(|(h, s)| {
                let node = ["annotate node ", " drain ", " uncordon "]
                    .iter()
                    .find_map(|verb| {
                        let rest = &s[s.find(verb)? + verb.len()..];
                        rest.split_whitespace().next()
                    })
                    .unwrap_or(h);
                format!("{node}: {}", what(s))
            })
            .collect()
    }

    fn forget(&self) {
        self.cluster.lock().unwrap().log.clear();
    }
}

fn what(script: &str) -> &'static str {
    [
        ("kubernetes.list", "repository"),
        ("kubeadm=", "kubeadm package"),
        ("upgrade plan", "upgrade plan"),
        ("upgrade apply", "upgrade apply"),
        ("upgrade node", "upgrade node"),
        ("cordoned=true", "mark"),
        ("cordoned-", "unmark"),
        (" drain ", "drain"),
        (" uncordon ", "uncordon"),
        ("kubelet=", "kubelet package"),
        ("restart kubelet", "restart kubelet"),
        ("get pdb", "get pdb"),
        ("get pods", "get pods"),
    ]
    .iter()
    .find(|(k, _)| script.contains(k))
    .map(|(_, v)| *v)
    .unwrap_or("?")
}

#[tokio::test]
async fn the_first_control_plane_goes_through_every_phase_in_the_docs_order() {
    let f = Fixture::new();
    f.upgrade("bettley", UpgradeRole::First).await.unwrap();
    assert_eq!(
        f.did(),
        [
            "bettley: repository",
            "bettley: kubeadm package",
            "bettley: upgrade plan",
            "bettley: upgrade apply",
            "bettley: mark",
            "bettley: drain",
            "bettley: kubelet package",
            "bettley: restart kubelet",
            "bettley: uncordon",
            "bettley: unmark",
        ]
    );
    let n = f.node("bettley");
    assert_eq!(
        (
            n.kubeadm,
            n.running_kubelet,
            n.apiserver,
            n.unschedulable,
            n.marked
        ),
        (NEW, NEW, Some(NEW), false, false)
    );
    assert_eq!(f.cluster.lock().unwrap().cluster_version, Some(NEW));
    // Run again: everything is done, nothing changes.
    f.forget();
    f.upgrade("bettley", UpgradeRole::First).await.unwrap();
    assert_eq!(f.did(), Vec::<String>::new());
}

#[tokio::test]
async fn a_worker_interrupted_after_its_drain_resumes_with_the_kubelet_and_is_uncordoned() {
    let f = Fixture::new();
    {
        // Where a kill -9 after the drain leaves it: kubeadm done,
        // cordoned with gt's mark, the kubelet still old.
        let mut c = f.cluster.lock().unwrap();
        let n = c.nodes.get_mut("fenn").unwrap();
        n.repo_minor = 33;
        n.kubeadm = NEW;
        n.unschedulable = true;
        n.marked = true;
    }
    f.upgrade("fenn", UpgradeRole::Worker).await.unwrap();
    // kubeadm's step is run again (its kubelet package is still old: the
    // configuration it wrote cannot be told apart), the mark is not.
    assert_eq!(
        f.did(),
        [
            "fenn: upgrade node",
            "fenn: drain",
            "fenn: kubelet package",
            "fenn: restart kubelet",
            "fenn: uncordon",
            "fenn: unmark",
        ]
    );
    let n = f.node("fenn");
    assert_eq!(
        (n.running_kubelet, n.unschedulable, n.marked),
        (NEW, false, false)
    );
}

#[tokio::test]
async fn a_node_whose_kubelet_was_upgraded_but_not_restarted_only_restarts_and_uncordons() {
    let f = Fixture::new();
    {
        let mut c = f.cluster.lock().unwrap();
        let n = c.nodes.get_mut("cargyll").unwrap();
        n.repo_minor = 33;
        n.kubeadm = NEW;
        n.apiserver = Some(NEW);
        n.kubelet_pkg = NEW;
        n.kubectl_pkg = NEW;
        n.unschedulable = true;
        n.marked = true;
    }
    f.upgrade("cargyll", UpgradeRole::ControlPlane)
        .await
        .unwrap();
    assert_eq!(
        f.did(),
        [
            "cargyll: drain",
            "cargyll: restart kubelet",
            "cargyll: uncordon",
            "cargyll: unmark",
        ]
    );
}

#[tokio::test]
async fn an_operators_cordon_is_drained_through_and_kept() {
    let f = Fixture::new();
    f.cluster
        .lock()
        .unwrap()
        .nodes
        .get_mut("gardener")
        .unwrap()
        .unschedulable = true;
    f.upgrade("gardener", UpgradeRole::Worker).await.unwrap();
    let did = f.did();
    assert!(did.contains(&"gardener: drain".to_string()), "{did:?}");
    assert!(
        !did.iter()
            .any(|d| d.ends_with("mark") || d.ends_with("uncordon")),
        "{did:?}"
    );
    let n = f.node("gardener");
    assert_eq!(
        (n.running_kubelet, n.unschedulable, n.marked),
        (NEW, true, false)
    );
}

#[tokio::test]
async fn a_node_left_cordoned_by_gt_after_its_upgrade_is_only_uncordoned() {
    let f = Fixture::new();
    {
        let mut c = f.cluster.lock().unwrap();
        let mut done = NodeSim::at(NEW, false);
        done.unschedulable = true;
        done.marked = true;
        c.nodes.insert("harlton".into(), done);
    }
    f.upgrade("harlton", UpgradeRole::Worker).await.unwrap();
    assert_eq!(f.did(), ["harlton: uncordon", "harlton: unmark"]);
}

#[tokio::test]
async fn a_refusing_upgrade_plan_stops_before_anything_changes_on_the_cluster() {
    let f = Fixture::new();
    f.cluster.lock().unwrap().plan_refuses = Some(
        "error execution phase preflight: the version argument is invalid due to these fatal errors:\n\n\t- Specified version to upgrade to \"v1.33.3\" is higher than the kubeadm version \"v1.33.2\". Upgrade kubeadm first using the tool you used to install kubeadm\n\nPlease fix the misalignments highlighted above and try upgrading again\nTo see the stack trace of this error execute with --v=5 or higher\n".into(),
    );
    let e = f.upgrade("bettley", UpgradeRole::First).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "kubeadm upgrade plan on bettley refused v1.33.3: Specified version to upgrade to \"v1.33.3\" is higher than the kubeadm version \"v1.33.2\". Upgrade kubeadm first using the tool you used to install kubeadm"
    );
    assert_eq!(
        f.did().last().map(String::as_str),
        Some("bettley: upgrade plan")
    );
    assert_eq!(f.cluster.lock().unwrap().cluster_version, Some(OLD));
}

#[tokio::test]
async fn a_drain_a_budget_blocks_fails_naming_the_budget_and_the_pod() {
    let f = Fixture::new();
    f.cluster.lock().unwrap().drain_blocked = Some(
        "There are pending pods in node \"fenn\" when an error occurred: error when evicting pods/\"hr-app\" -n \"web\": global timeout reached: 1m0s\nerror: unable to drain node \"fenn\" due to error: error when evicting pods/\"hr-app\" -n \"web\": global timeout reached: 1m0s, continuing command...\nThere are pending nodes to be drained:\n fenn\nerror when evicting pods/\"hr-app\" -n \"web\": global timeout reached: 1m0s\n".into(),
    );
    let e = f.upgrade("fenn", UpgradeRole::Worker).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("PodDisruptionBudget web/hr-pdb (pod web/hr-app) allows no disruption"),
        "{text}"
    );
    assert!(text.contains("drain_timeout in [apply]"), "{text}");
    // The kubelet was left alone, and the node stays cordoned with gt's
    // mark: the next apply drains it again and lifts the cordon.
    let n = f.node("fenn");
    assert_eq!(
        (n.kubelet_pkg, n.unschedulable, n.marked),
        (OLD, true, true)
    );
}

#[tokio::test]
async fn the_drain_forces_only_when_the_file_says_so() {
    for force in [false, true] {
        let mut f = Fixture::new();
        f.runner.spec.drain.force = force;
        f.upgrade("fenn", UpgradeRole::Worker).await.unwrap();
        let c = f.cluster.lock().unwrap();
        let drain = c.log.iter().find(|(_, s)| s.contains(" drain ")).unwrap();
        assert_eq!(drain.1.ends_with(" --force"), force, "{}", drain.1);
    }
}

#[tokio::test]
async fn a_phase_of_a_folded_command_that_fails_is_named_with_its_tools_words() {
    let f = Fixture::new();
    f.cluster.lock().unwrap().kubeadm_missing = true;
    let e = f.upgrade("fenn", UpgradeRole::Worker).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "apt-get install kubeadm=1.33.3-* on fenn exited 100: E: Version '1.33.3-*' for 'kubeadm' was not found"
    );
    // The repository switch before it (same round trip) stays done: the
    // next apply only installs kubeadm.
    assert_eq!(f.did(), ["fenn: repository", "fenn: kubeadm package"]);
    assert_eq!(f.node("fenn").repo_minor, 33);
}

#[tokio::test]
async fn a_rung_at_its_minors_newest_patch_takes_what_the_switched_repository_lists() {
    let f = Fixture::new();
    let rung = RungRelease::NewestPatch(1, 33);
    f.upgrade_rung("bettley", rung, UpgradeRole::First)
        .await
        .unwrap();
    let newest = Release(1, 33, 5);
    assert_eq!(
        f.did()[..2],
        ["bettley: repository", "bettley: kubeadm package"]
    );
    let n = f.node("bettley");
    assert_eq!((n.kubeadm, n.running_kubelet), (newest, newest));
    assert_eq!(f.cluster.lock().unwrap().cluster_version, Some(newest));
    // Another node of the rung (here in a later run) takes the cluster's
    // patch, whatever its own repository would list then.
    f.upgrade_rung("fenn", rung, UpgradeRole::Worker)
        .await
        .unwrap();
    let n = f.node("fenn");
    assert_eq!((n.kubeadm, n.running_kubelet), (newest, newest));
}
