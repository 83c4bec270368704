//! The "Examples:" blocks of `--help`. Each example is one line: the command
//! line, then two or more spaces and what it does. Every one was run on the
//! lab (`gt lab up`, whose config is `.gt-lab/cluster.toml`), and
//! tests/cli/help.rs parses each command line with gt's own parser.

pub const GT: &str = "\
Examples:
  gt lab up --speed 0.01             a simulated goldentooth on loopback
  gt -c .gt-lab/cluster.toml plan    what apply would change
  gt -c .gt-lab/cluster.toml apply   plan, ask, then apply
  gt -c .gt-lab/cluster.toml status  the nodes and their drift
  gt lab down                        stop the lab, remove .gt-lab

Every command has examples of its own: gt help COMMAND.";

pub const VALIDATE: &str = "\
Examples:
  gt validate                        check ./cluster.toml (or $GT_CONFIG)
  gt -c examples/minimal-ha.toml validate
                                     check another file

Every problem is reported at once, as FILE:LINE:COLUMN with a fix; exit 1
when there is any.";

pub const PLAN: &str = "\
Examples:
  gt plan                            observe the hosts, show the changes
  gt plan --detailed-exitcode        exit 2 when there are changes (cron, CI)
  gt plan --json > plan.json         the plan as JSON (schema: README)
  gt plan --out goldentooth.gtplan   save it, for gt apply goldentooth.gtplan
  gt observe --out facts.json        record the hosts once, then
  gt plan --facts facts.json         plan against that, contacting no host
  gt plan --prune                    also remove Nodes cluster.toml lacks
  gt plan --replace fenn             reset and rejoin fenn (another cluster's)";

pub const APPLY: &str = "\
Examples:
  gt apply                           observe, plan, ask, apply
  gt apply --auto-approve            no question (cron, CI)
  gt apply --auto-approve --json > apply.jsonl
                                     one JSON event per line
  gt plan --out p.gtplan             review a plan, then
  gt apply p.gtplan                  apply exactly it (refused if stale)
  gt apply --prune                   also drain and delete Nodes not in the file
  gt apply --parallelism 4           4 hosts observed, 4 steps run at once";

pub const GRAPH: &str = "\
Examples:
  gt graph > bootstrap.dot           a bootstrap from empty; dot -Tsvg draws it
  gt graph --format mermaid          Mermaid, for Markdown
  gt graph --facts facts.json        the plan against recorded facts";

pub const OBSERVE: &str = "\
Examples:
  gt observe                         the facts JSON on stdout
  gt observe --out facts.json        to a file, for gt plan --facts facts.json
  gt observe --parallelism 20 --timeout 10s
                                     more hosts at once, shorter deadline

An unreachable host is a fact (exit 0); exit 1 only when gt cannot run.";

pub const STATUS: &str = "\
Examples:
  gt status                          one row per node, drift listed below
  gt status --json                   one object per node (schema: README)";

pub const EXEC: &str = "\
Examples:
  gt exec all -- uptime              every host; lines prefixed \"host | \"
  gt exec k8s_worker -- systemctl is-active kubelet
                                     a group
  gt exec fenn -- 'df -h / | tail -1'
                                     one word: a shell command line as it is
  gt exec k8s_control_plane --group-output -- kubeadm version -o short
                                     each host's output together

TARGET: a node, a group (k8s_cluster, k8s_control_plane, k8s_worker, a
node's own groups) or all. Exit 0 only when every host succeeded.";

pub const LAB: &str = "\
Examples:
  gt lab up --speed 0.01             goldentooth, 100 times faster than life
  gt -c .gt-lab/cluster.toml apply --auto-approve
                                     bootstrap it
  gt lab fault fenn kubelet-stopped  break something behind gt's back
  gt lab status                      hosts and their faults
  gt lab down                        stop it all, remove .gt-lab";

pub const LAB_UP: &str = "\
Examples:
  gt lab up                          ./cluster.toml in ./.gt-lab, real time
  gt lab up --speed 0.01             a hundred times faster
  gt lab up --from examples/minimal-ha.toml --dir /tmp/lab
                                     another topology, another directory
  gt lab up --transport ssh          a real sshd per host, the lab's keys

Then point gt at DIR/cluster.toml: gt -c .gt-lab/cluster.toml plan";

pub const LAB_DOWN: &str = "\
Examples:
  gt lab down                        the lab in ./.gt-lab
  gt lab down --dir /tmp/lab         another one (a second down is harmless)";

pub const LAB_STATUS: &str = "\
Examples:
  gt lab status                      transport, processes, hosts, faults
  gt lab status --dir /tmp/lab       another lab";

pub const LAB_FAULT: &str = "\
Examples:
  gt lab fault fenn down             fenn stops answering (unreachable)
  gt lab fault jast fail-join        the next kubeadm join on jast fails
  gt lab fault cargyll apiserver-down
                                     cargyll's API server is unready
  gt lab fault fenn kubelet-stopped  systemctl stop kubelet, behind gt's back
  gt lab fault bettley slow 20       bettley 20 times slower
  gt lab fault fenn heal             clear fenn's faults";

pub const COMPLETIONS: &str = "\
Examples:
  gt completions bash > ~/.local/share/bash-completion/completions/gt
  gt completions zsh > ~/.zfunc/_gt  with fpath+=(~/.zfunc) before compinit
  gt completions fish > ~/.config/fish/completions/gt.fish
  source <(gt completions bash)      this shell only";

pub const MAN: &str = "\
Examples:
  gt man | man -l -                  read it now
  gt man > /usr/local/share/man/man1/gt.1
                                     install gt(1): every command in one page
  gt man --out-dir /usr/local/share/man/man1
                                     gt.1, gt-plan.1, gt-lab-up.1, ...";
