use super::plain::without_durations;
use super::*;
use crate::apply::{Events, Failure, NodeOutcome, NodeRecap, StepStatus};
use crate::plan::StepId;
use crate::spec::NodeName;
use std::sync::{Arc, Mutex};

/// An in-memory stdout that the test keeps a handle on.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// What a terminal shows after receiving `bytes`, scrollback included: a
/// minimal VT100 (auto-wrap with a pending wrap at the right margin, CR, LF
/// as the tty's onlcr turns it into CR LF, cursor up/down, erase line; colors
/// dropped), enough to read indicatif's drawing the way a user sees it.
fn terminal(bytes: &str, width: usize) -> String {
    let mut lines: Vec<Vec<char>> = vec![vec![]];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = bytes.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\x1b' => {
                assert_eq!(chars.next(), Some('['), "only CSI sequences");
                let mut param = String::new();
                let code = loop {
                    let c = chars.next().expect("a complete sequence");
                    if c.is_ascii_digit() || c == ';' {
                        param.push(c);
                    } else {
                        break c;
                    }
                };
                let n: usize = param.parse().unwrap_or(1);
                match code {
                    // Moving the cursor ends a pending wrap; colors do not.
                    'A' => {
                        row = row.saturating_sub(n);
                        col = col.min(width - 1);
                    }
                    'B' => {
                        row += n;
                        col = col.min(width - 1);
                    }
                    'K' => lines[row].clear(),
                    'm' => {}
                    other => panic!("unexpected CSI {param}{other}"),
                }
            }
            c => {
                if col == width {
                    row += 1;
                    col = 0;
                }
                while lines.len() <= row {
                    lines.push(vec![]);
                }
                let line = &mut lines[row];
                if line.len() <= col {
                    line.resize(col + 1, ' ');
                }
                line[col] = c;
                col += 1;
            }
        }
        while lines.len() <= row {
            lines.push(vec![]);
        }
    }
    let text: Vec<String> = lines
        .iter()
        .map(|l| l.iter().collect::<String>().trim_end().to_string())
        .collect();
    text.join("\n").trim_end().to_string() + "\n"
}

const NO_COLOR: Style = Style { color: false };

fn at(offset_secs: u64) -> SystemTime {
    humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap() + Duration::from_secs(offset_secs)
}

fn id(s: &str) -> StepId {
    s.parse().unwrap()
}

fn name(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn started(step: &str, label: &str, node: Option<&str>) -> Event {
    Event::StepStarted {
        step: id(step),
        label: label.into(),
        node: node.map(name),
    }
}

fn progress(step: &str, message: &str) -> Event {
    Event::StepProgress {
        step: id(step),
        message: message.into(),
    }
}

fn finished(
    step: &str,
    label: &str,
    status: StepStatus,
    millis: u64,
    reason: Option<&str>,
) -> Event {
    Event::StepFinished {
        step: id(step),
        label: label.into(),
        node: step.split_once('/').map(|(_, n)| name(n)),
        status,
        elapsed: Duration::from_millis(millis),
        reason: reason.map(Into::into),
    }
}

fn node(node: &str, outcome: NodeOutcome) -> NodeRecap {
    NodeRecap {
        node: name(node),
        outcome,
        version: None,
    }
}

const JAST_ERROR: &str = "kubeadm join on jast exited 1: [preflight] Running pre-flight checks\n\
error execution phase preflight: couldn't validate the identity of the API Server\n\
To see the stack trace of this error execute with --v=5 or higher";

fn failed_recap() -> Recap {
    Recap {
        run_id: "r-7f3a".into(),
        cluster: "goldentooth".into(),
        nodes: vec![
            node("bettley", NodeOutcome::Initialised),
            node("cargyll", NodeOutcome::JoinedControlPlane),
            node("fenn", NodeOutcome::JoinedWorker),
            node(
                "jast",
                NodeOutcome::Failed {
                    step: id("join-worker/jast"),
                    error: JAST_ERROR.into(),
                },
            ),
            node("velaryon", NodeOutcome::InSync),
            node(
                "lipps",
                NodeOutcome::Unreachable {
                    why: "unreachable: ssh: connect to host 10.4.0.21 port 22: No route to host"
                        .into(),
                },
            ),
        ],
        joined: 3,
        changed: 0,
        removed: 0,
        succeeded_steps: 5,
        failed_steps: 1,
        skipped_steps: 1,
        cancelled_steps: 0,
        failures: vec![Failure {
            step: id("join-worker/jast"),
            label: "join worker jast".into(),
            node: Some(name("jast")),
            error: JAST_ERROR.into(),
        }],
        interrupted: false,
        elapsed: Duration::from_millis(61_250),
    }
}

fn success_recap() -> Recap {
    Recap {
        nodes: vec![
            node("bettley", NodeOutcome::Initialised),
            node("cargyll", NodeOutcome::JoinedControlPlane),
            node("velaryon", NodeOutcome::InSync),
        ],
        joined: 2,
        succeeded_steps: 7,
        failed_steps: 0,
        skipped_steps: 0,
        failures: vec![],
        ..failed_recap()
    }
}

fn interrupted_recap() -> Recap {
    Recap {
        nodes: vec![
            node("bettley", NodeOutcome::Initialised),
            node(
                "cargyll",
                NodeOutcome::NotRun {
                    step: id("join-control-plane/cargyll"),
                    reason: "cancelled: apply interrupted".into(),
                    done: vec![],
                },
            ),
        ],
        joined: 1,
        succeeded_steps: 3,
        failed_steps: 0,
        skipped_steps: 0,
        cancelled_steps: 4,
        failures: vec![],
        interrupted: true,
        ..failed_recap()
    }
}

/// A small walk: a gate that waits, a worker that joins, one whose join
/// fails and the update that depended on it.
fn walk() -> Vec<(u64, Event)> {
    vec![
        (
            0,
            Event::Plan {
                plan: Box::new(crate::plan::PlanDocument {
                    format_version: "1.0".into(),
                    cluster: "goldentooth".into(),
                    has_changes: false,
                    summary: Default::default(),
                    changes: vec![],
                    steps: vec![],
                    warnings: vec![],
                }),
            },
        ),
        (
            0,
            Event::Started {
                run_id: "r-7f3a".into(),
                cluster: "goldentooth".into(),
                steps: 4,
            },
        ),
        (
            1,
            started(
                "gate/before-worker-joins",
                "gate: control plane ready (bettley)",
                None,
            ),
        ),
        (
            2,
            progress(
                "gate/before-worker-joins",
                "API server on bettley not ready (1s)",
            ),
        ),
        (
            5,
            progress(
                "gate/before-worker-joins",
                "API server on bettley not ready (4s)",
            ),
        ),
        (
            9,
            finished(
                "gate/before-worker-joins",
                "gate: control plane ready (bettley)",
                StepStatus::Succeeded,
                8_040,
                None,
            ),
        ),
        (
            9,
            started("join-worker/fenn", "join worker fenn", Some("fenn")),
        ),
        (
            9,
            started("join-worker/jast", "join worker jast", Some("jast")),
        ),
        (
            29,
            finished(
                "join-worker/jast",
                "join worker jast",
                StepStatus::Failed,
                20_000,
                Some(JAST_ERROR),
            ),
        ),
        (
            29,
            finished(
                "update/jast",
                "update labels/taints of jast",
                StepStatus::Skipped,
                0,
                Some("upstream failed (join-worker/jast)"),
            ),
        ),
        (
            30,
            finished(
                "join-worker/fenn",
                "join worker fenn",
                StepStatus::Succeeded,
                20_130,
                None,
            ),
        ),
        (30, Event::Recap(failed_recap())),
    ]
}

/// Bars are drawn for a terminal this wide: long enough for every line.
const COLUMNS: u16 = 140;

fn test_terminal() -> Terminal {
    Terminal {
        size: || (COLUMNS, 30),
        max_redraws_per_sec: None,
    }
}

/// A renderer drawing on an in-memory screen.
fn ui_on(mode: Mode, style: Style) -> (Ui, Screen) {
    let screen = Screen::default();
    let ui = Ui::new(mode, style, Box::new(screen.clone()), test_terminal());
    (ui, screen)
}

fn rendered(mode: Mode, style: Style, events: &[(u64, Event)]) -> (String, Option<Recap>) {
    let (mut ui, screen) = ui_on(mode, style);
    for (t, e) in events {
        ui.handle_at(e, at(*t));
    }
    let recap = ui.finish();
    (screen.text(), recap)
}

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name.to_string(), text));
}

#[test]
fn mode_is_json_with_the_flag_bars_on_a_terminal_and_plain_lines_otherwise() {
    assert_eq!(mode(true, true), Mode::Json);
    assert_eq!(mode(true, false), Mode::Json);
    assert_eq!(mode(false, true), Mode::Bars);
    assert_eq!(mode(false, false), Mode::Plain);
}

#[test]
fn plain_mode_writes_one_timestamped_line_per_event_then_the_recap() {
    let (out, recap) = rendered(Mode::Plain, NO_COLOR, &walk());
    assert_eq!(recap, Some(failed_recap()));
    let (lines, recap_block) = out
        .split_once("\n\n")
        .expect("a blank line before the recap");
    assert_eq!(
        lines,
        "2026-11-23T10:00:00Z apply  goldentooth: 4 steps (run r-7f3a)\n\
         2026-11-23T10:00:01Z start  gate/before-worker-joins: gate: control plane ready (bettley)\n\
         2026-11-23T10:00:02Z wait   gate/before-worker-joins: API server on bettley not ready (1s)\n\
         2026-11-23T10:00:09Z done   gate/before-worker-joins (8.0s)\n\
         2026-11-23T10:00:09Z start  join-worker/fenn: join worker fenn\n\
         2026-11-23T10:00:09Z start  join-worker/jast: join worker jast\n\
         2026-11-23T10:00:29Z FAILED join-worker/jast (20.0s): kubeadm join on jast exited 1: [preflight] Running pre-flight checks\n\
         2026-11-23T10:00:29Z skip   update/jast: upstream failed (join-worker/jast)\n\
         2026-11-23T10:00:30Z done   join-worker/fenn (20.1s)\n\
         2026-11-23T10:00:30Z end    goldentooth: 5 succeeded, 1 failed, 1 skipped, 0 cancelled in 1m01s",
        "the same wait message 3s later (elapsed aside) is not repeated"
    );
    assert_eq!(recap_block, recap_text(&failed_recap(), NO_COLOR));
    assert!(!out.contains('\r') && !out.contains('\x1b'));
}

#[test]
fn plain_lines_carry_the_real_time_in_rfc3339_utc() {
    let (tx, rx) = Events::channel();
    let screen = Screen::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let recap = rt.block_on(async {
        let ui = tokio::spawn(render(Mode::Plain, NO_COLOR, rx, screen.clone()));
        for (_, e) in walk() {
            tx.send(e);
        }
        drop(tx);
        ui.await.unwrap()
    });
    assert_eq!(
        recap,
        Some(failed_recap()),
        "render returns the walk's recap"
    );
    let text = screen.text();
    let (lines, _) = text.split_once("\n\n").unwrap();
    assert_eq!(lines.lines().count(), 10);
    for line in lines.lines() {
        let (stamp, rest) = line.split_once(' ').unwrap();
        let t = humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(t.duration_since(at(0)).is_ok(), "{stamp} is now, not 2026");
        assert!(
            stamp.len() == 20 && stamp.ends_with('Z'),
            "seconds, UTC: {stamp}"
        );
        assert!(rest.chars().next().unwrap().is_ascii_alphabetic(), "{line}");
    }
}

/// The `wait` lines' times (`mm:ss`) and messages.
fn waits(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(" wait   "))
        .map(|(t, m)| {
            (
                t[14..19].to_string(),
                m.split_once(": ").unwrap().1.to_string(),
            )
        })
        .collect()
}

#[test]
fn plain_mode_prints_a_changed_progress_message_and_repeats_an_unchanged_one_every_ten_seconds() {
    let gate = "gate/before-worker-joins";
    let events = vec![
        (0, started(gate, "gate", None)),
        (1, progress(gate, "API server on cargyll not ready (1s)")),
        (2, progress(gate, "API server on cargyll not ready (2s)")),
        (4, progress(gate, "etcd failed (4s)")),
        (5, progress(gate, "etcd failed (5s)")),
        (13, progress(gate, "etcd failed (13s)")),
        (14, progress(gate, "etcd failed (14s)")),
        (16, progress(gate, "API server on cargyll not ready (16s)")),
    ];
    let (out, _) = rendered(Mode::Plain, NO_COLOR, &events);
    let w = |t: &str, m: &str| (t.to_string(), m.to_string());
    assert_eq!(
        waits(&out),
        [
            w("00:01", "API server on cargyll not ready (1s)"),
            w("00:04", "etcd failed (4s)"),
            w("00:14", "etcd failed (14s)"),
            w("00:16", "API server on cargyll not ready (16s)"),
        ]
    );
}

#[test]
fn plain_mode_shows_a_chatty_step_every_two_seconds_with_its_latest_line() {
    let init = "init/bettley";
    let (mut ui, screen) = ui_on(Mode::Plain, NO_COLOR);
    ui.handle_at(&started(init, "kubeadm init on bettley", None), at(0));
    for (i, line) in [
        "[init] Using Kubernetes version",
        "[preflight] Running pre-flight checks",
        "[certs] Generating \"ca\" certificate and key",
    ]
    .iter()
    .enumerate()
    {
        ui.handle_at(
            &progress(init, line),
            at(0) + Duration::from_millis(100 * i as u64),
        );
    }
    ui.tick(at(1));
    ui.tick(at(2));
    ui.tick(at(3));
    ui.handle_at(
        &progress(init, "[kubelet-start] Starting the kubelet"),
        at(3),
    );
    ui.handle_at(
        &progress(init, "[api-check] Waiting for a healthy API server"),
        at(4),
    );
    ui.handle_at(
        &progress(init, "[addons] Applied essential addon: CoreDNS"),
        at(5),
    );
    ui.handle_at(
        &finished(
            init,
            "kubeadm init on bettley",
            StepStatus::Succeeded,
            5_500,
            None,
        ),
        at(5),
    );
    ui.tick(at(8));
    ui.finish();
    let w = |t: &str, m: &str| (t.to_string(), m.to_string());
    assert_eq!(
        waits(&screen.text()),
        [
            w("00:00", "[init] Using Kubernetes version"),
            w("00:02", "[certs] Generating \"ca\" certificate and key"),
            w("00:04", "[api-check] Waiting for a healthy API server"),
        ],
        "the first line at once; then the latest, 2s after the last one shown; \
         one held back when the step ends is dropped"
    );
}

#[test]
fn durations_in_progress_messages_do_not_make_them_news() {
    assert_eq!(
        without_durations("API server on cargyll not ready (4s)"),
        "API server on cargyll not ready (#)"
    );
    assert_eq!(
        without_durations("waited 1m05s, 2.5s left, retry in 300ms."),
        "waited #, # left, retry in #."
    );
    assert_eq!(
        without_durations("/readyz through 10.4.0.10:6443: 3 of 5 checks"),
        "/readyz through 10.4.0.10:6443: 3 of 5 checks",
        "addresses and counts are part of what it says"
    );
    assert_eq!(without_durations("step s2 of 10m"), "step s2 of #");
}

#[test]
fn json_mode_writes_each_event_as_one_line_with_its_time_first() {
    let (out, recap) = rendered(Mode::Json, NO_COLOR, &walk());
    assert_eq!(recap, Some(failed_recap()));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), walk().len(), "every event, nothing else");
    for (line, (t, event)) in lines.iter().zip(walk()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["time"],
            humantime::format_rfc3339_seconds(at(t)).to_string()
        );
        assert!(line.starts_with("{\"time\":\"2026-11-23T10:00:"), "{line}");
        if matches!(event, Event::Recap(_)) {
            // The UI words the recap's outcomes: checked below.
            continue;
        }
        let mut fields = v.as_object().unwrap().clone();
        fields.remove("time");
        assert_eq!(
            serde_json::Value::Object(fields),
            serde_json::to_value(&event).unwrap()
        );
    }
    let events: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events.first().unwrap(), "\"plan\"");
    assert_eq!(events.last().unwrap(), "\"recap\"");
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["failures"][0]["step"], "join-worker/jast");
    assert_eq!(last["nodes"][3]["result"], "failed");
    assert_eq!(
        last["nodes"][3]["detail"],
        "join-worker/jast: kubeadm join on jast exited 1: [preflight] Running pre-flight checks"
    );
    let recap_fields = lines.last().unwrap().split_once(",\"event\"").unwrap().1;
    assert!(
        recap_fields.starts_with(
            ":\"recap\",\"run_id\":\"r-7f3a\",\"cluster\":\"goldentooth\",\"nodes\":[{\"node\":\"bettley\",\"result\":\"changed\",\"detail\":\"initialised the cluster\"}"
        ),
        "{recap_fields}"
    );
    assert!(
        recap_fields.ends_with(",\"interrupted\":false,\"elapsed\":61.25}"),
        "{recap_fields}"
    );
    assert!(!out.contains('\x1b') && !out.contains('\r'));
}

#[test]
fn bars_leave_one_permanent_line_per_finished_step_and_end_with_the_recap() {
    let (out, recap) = rendered(Mode::Bars, NO_COLOR, &walk());
    assert_eq!(recap, Some(failed_recap()));
    let screen = terminal(&out, COLUMNS.into());
    let (steps, recap_block) = screen
        .split_once("\n\n")
        .expect("a blank line before the recap");
    assert_eq!(
        steps,
        "✓ gate: control plane ready (bettley) (8.0s)\n\
         ✗ join worker jast (20.0s): kubeadm join on jast exited 1: [preflight] Running pre-flight checks\n\
         - update labels/taints of jast skipped: upstream failed (join-worker/jast)\n\
         ✓ join worker fenn (20.1s)",
        "no bar is left on screen: {screen}"
    );
    assert_eq!(recap_block, recap_text(&failed_recap(), NO_COLOR));
    assert!(!out.contains("\x1b[3"), "no color with color off");
}

#[test]
fn bars_show_running_steps_with_their_progress_above_the_overall_count() {
    let events = vec![
        (
            0,
            Event::Started {
                run_id: "r".into(),
                cluster: "goldentooth".into(),
                steps: 27,
            },
        ),
        (
            0,
            started(
                "gate/before-worker-joins",
                "gate: control plane ready (bettley)",
                None,
            ),
        ),
        (
            0,
            started("init/bettley", "kubeadm init on bettley", Some("bettley")),
        ),
        (
            1,
            progress(
                "gate/before-worker-joins",
                "API server on cargyll not ready (1s)",
            ),
        ),
        (
            1,
            finished(
                "init/bettley",
                "kubeadm init on bettley",
                StepStatus::Succeeded,
                900,
                None,
            ),
        ),
    ];
    let (mut ui, screen) = ui_on(Mode::Bars, Style { color: true });
    for (t, e) in &events {
        ui.handle_at(e, at(*t));
    }
    let shown = terminal(&screen.text(), COLUMNS.into());
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], "✓ kubeadm init on bettley (0.9s)", "{shown}");
    // Spinner frames and elapsed seconds move with the clock: not pinned.
    let (spinner, rest) = lines[1].trim_start().split_once(' ').unwrap();
    assert_eq!(spinner.chars().count(), 1, "{shown}");
    assert!(
        rest.starts_with("gate: control plane ready (bettley)  "),
        "{shown}"
    );
    assert!(
        rest.ends_with("s  API server on cargyll not ready (1s)"),
        "{shown}"
    );
    assert!(lines[2].starts_with("[1/27] steps  "), "{shown}");
    assert!(lines[2].ends_with("s  =>"), "{shown}");
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(
        screen
            .text()
            .contains("\x1b[32m✓\x1b[0m kubeadm init on bettley"),
        "colored"
    );
    assert_eq!(ui.finish(), None, "no recap: the walk stopped early");
    assert_eq!(
        terminal(&screen.text(), COLUMNS.into()),
        "✓ kubeadm init on bettley (0.9s)\n",
        "bars are cleared when the walk ends"
    );
}

#[test]
fn bars_redraw_as_steady_ticks_move_elapsed_times() {
    let (mut ui, screen) = ui_on(Mode::Bars, NO_COLOR);
    ui.handle(&started("join-worker/fenn", "join worker fenn", None));
    let drawn = screen.text().len();
    // Ticks come from indicatif's own thread; wait for one, boundedly.
    let redrawn = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        screen.text().len() > drawn
    });
    assert!(redrawn, "the spinner redrew without any event");
    ui.finish();
}

#[test]
fn the_recap_after_a_failure_names_each_root_cause_once() {
    let text = recap_text(&failed_recap(), NO_COLOR);
    snapshot("recap-failed.txt", &text);
    assert_eq!(text.matches("Error:").count(), 1);
    assert!(text.ends_with(
        "\nApply failed: 1 step failed, 1 skipped. Nodes: 3 joined, 0 changed, 0 removed.\n"
    ));
}

#[test]
fn the_recap_after_success_says_apply_complete() {
    let text = recap_text(&success_recap(), NO_COLOR);
    snapshot("recap-complete.txt", &text);
    assert!(text.ends_with("\nApply complete! Nodes: 2 joined, 0 changed, 0 removed.\n"));
}

#[test]
fn the_recap_after_ctrl_c_counts_what_was_cancelled() {
    let text = recap_text(&interrupted_recap(), NO_COLOR);
    snapshot("recap-interrupted.txt", &text);
    assert!(text.ends_with(
        "\nApply interrupted: 4 steps cancelled. Nodes: 1 joined, 0 changed, 0 removed.\n"
    ));
    let nothing_left = Recap {
        cancelled_steps: 0,
        ..interrupted_recap()
    };
    assert!(recap_text(&nothing_left, NO_COLOR).contains("Apply interrupted: 0 steps cancelled."));
    let with_failure = Recap {
        failed_steps: 2,
        ..interrupted_recap()
    };
    assert!(recap_text(&with_failure, NO_COLOR)
        .contains("Apply interrupted: 2 steps failed, 4 cancelled."));
}

#[test]
fn the_recap_of_an_upgrade_says_which_node_is_at_which_version() {
    let v = |s: &str| s.parse::<crate::kube::kubeadm::Release>().unwrap();
    let at = |n: &str, outcome: NodeOutcome, version: &str| NodeRecap {
        version: Some(v(version)),
        ..node(n, outcome)
    };
    let error = "kubeadm upgrade node on fenn exited 1: boom";
    let r = Recap {
        nodes: vec![
            at(
                "bettley",
                NodeOutcome::Upgraded { to: v("v1.33.3") },
                "v1.33.3",
            ),
            at(
                "fenn",
                NodeOutcome::Failed {
                    step: id("upgrade/fenn@v1.33.3"),
                    error: error.into(),
                },
                "v1.32.4",
            ),
            at(
                "gardener",
                NodeOutcome::NotRun {
                    step: id("upgrade/gardener@v1.33.3"),
                    reason: "upstream failed".into(),
                    done: vec![],
                },
                "v1.32.4",
            ),
            node("harlton", NodeOutcome::Uncordoned),
        ],
        joined: 0,
        changed: 2,
        failures: vec![Failure {
            step: id("upgrade/fenn@v1.33.3"),
            label: "upgrade fenn to v1.33.3".into(),
            node: Some(name("fenn")),
            error: error.into(),
        }],
        ..failed_recap()
    };
    let text = recap_text(&r, NO_COLOR);
    let rows: Vec<&str> = text.lines().skip(1).take(4).collect();
    assert_eq!(
        rows,
        [
            "  bettley    changed      upgraded to v1.33.3",
            "  fenn       failed       at v1.32.4; upgrade/fenn@v1.33.3: kubeadm upgrade node on fenn e …",
            "  gardener   skipped      at v1.32.4; upstream failed",
            "  harlton    changed      uncordoned (gt's cordon from an interrupted upgrade)",
        ]
    );
}

/// Ctrl-C while two workers join: they finish, what had not started is
/// cancelled, and the recap says so.
fn interrupted_walk() -> Vec<(u64, Event)> {
    vec![
        (
            0,
            Event::Started {
                run_id: "r".into(),
                cluster: "goldentooth".into(),
                steps: 7,
            },
        ),
        (
            0,
            started("join-worker/fenn", "join worker fenn", Some("fenn")),
        ),
        (
            0,
            started("join-worker/jast", "join worker jast", Some("jast")),
        ),
        (
            3,
            Event::Interrupted {
                message: "interrupted: no new step starts; waiting for 2 running step(s) to finish"
                    .into(),
            },
        ),
        (
            3,
            finished(
                "join-worker/lipps",
                "join worker lipps",
                StepStatus::Cancelled,
                0,
                Some("interrupted before it started"),
            ),
        ),
        (
            20,
            finished(
                "join-worker/fenn",
                "join worker fenn",
                StepStatus::Succeeded,
                20_000,
                None,
            ),
        ),
        (
            20,
            finished(
                "join-worker/jast",
                "join worker jast",
                StepStatus::Succeeded,
                20_000,
                None,
            ),
        ),
        (21, Event::Recap(interrupted_recap())),
    ]
}

#[test]
fn an_interrupted_walk_says_what_was_cancelled_in_plain_lines() {
    let (out, _) = rendered(Mode::Plain, NO_COLOR, &interrupted_walk());
    assert!(out.contains(
        "\n2026-11-23T10:00:03Z INTERRUPTED no new step starts; waiting for 2 running step(s) to finish\n\
         2026-11-23T10:00:03Z cancel join-worker/lipps: interrupted before it started\n"
    ), "{out}");
    assert!(out.ends_with(
        "Apply interrupted: 4 steps cancelled. Nodes: 1 joined, 0 changed, 0 removed.\n"
    ));
}

#[test]
fn an_interrupted_walk_says_what_was_cancelled_in_bars() {
    let (out, _) = rendered(Mode::Bars, NO_COLOR, &interrupted_walk());
    let screen = terminal(&out, COLUMNS.into());
    let (steps, _) = screen.split_once("\n\n").unwrap();
    assert_eq!(
        steps,
        "Interrupted: no new step starts; waiting for 2 running step(s) to finish\n\
         - join worker lipps cancelled: interrupted before it started\n\
         ✓ join worker fenn (20.0s)\n\
         ✓ join worker jast (20.0s)"
    );
}

/// A stdout that is gone: `gt apply | head -1` after head exited.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn a_closed_stdout_does_not_stop_the_renderer_or_lose_the_recap() {
    for mode in [Mode::Plain, Mode::Json, Mode::Bars] {
        let mut ui = Ui::new(mode, NO_COLOR, Box::new(ClosedPipe), test_terminal());
        for (t, e) in walk() {
            ui.handle_at(&e, at(t));
        }
        assert_eq!(ui.finish(), Some(failed_recap()), "{mode:?}");
    }
}

#[test]
fn a_walk_that_never_started_leaves_stdout_untouched() {
    // `gt apply` with nothing to do closes the channel at once.
    for mode in [Mode::Plain, Mode::Json, Mode::Bars] {
        let (ui, screen) = ui_on(mode, NO_COLOR);
        assert_eq!(ui.finish(), None);
        assert_eq!(screen.text(), "", "{mode:?}");
    }
}

#[test]
fn the_recap_is_colored_only_when_asked() {
    let plain = recap_text(&failed_recap(), NO_COLOR);
    assert!(!plain.contains('\x1b'));
    let colored = recap_text(&failed_recap(), Style { color: true });
    assert!(colored.contains("\x1b[31mfailed\x1b[0m"));
    assert!(colored.contains("\x1b[33mchanged\x1b[0m"));
    // Color codes do not shift the columns.
    let strip = printable(&colored);
    assert_eq!(strip, plain);
}

#[test]
fn tool_output_cannot_rewrite_lines_or_inject_colors() {
    assert_eq!(
        printable("50%\r100%\x1b[31m done\x1b[0m\tok\nnext"),
        "50%100% done ok\nnext"
    );
    let events = [
        (0, started("install-cni", "s", None)),
        (0, progress("install-cni", "downloading 10%\r20%\x1b[2K")),
    ];
    let (out, _) = rendered(Mode::Plain, NO_COLOR, &events);
    assert!(out.contains("wait   install-cni: downloading 10%20%\n"));
}

#[test]
fn durations_read_as_in_a_log() {
    assert_eq!(duration(Duration::from_millis(400)), "0.4s");
    assert_eq!(duration(Duration::from_millis(20_130)), "20.1s");
    assert_eq!(duration(Duration::from_millis(59_960)), "1m00s");
    assert_eq!(duration(Duration::from_secs(65)), "1m05s");
    assert_eq!(duration(Duration::from_secs(3720)), "1h02m");
    assert_eq!(whole(Duration::from_millis(7_400)), "7s");
}

/// goldentooth from empty through the real walker, with steps that take
/// realistic (virtual) times and talk like kubeadm, and one worker whose join
/// fails: the whole plain log, as cron or CI would keep it.
mod goldentooth {
    use super::*;
    use crate::apply::recap::recap;
    use crate::apply::walker::{walk, Runner};
    use crate::apply::StepError;
    use crate::facts::Observed;
    use crate::plan::{bootstrap_plan, Step, StepId};
    use crate::transport::BoxFuture;
    use std::collections::HashMap;
    use tokio::time::{sleep, Instant};

    /// What each step says and how long it takes; `join-worker/jast` fails.
    struct Bootstrap {
        events: Events,
    }

    impl Runner for Bootstrap {
        fn run<'a>(
            &'a self,
            step: &'a StepId,
            _: &'a Step,
        ) -> BoxFuture<'a, Result<(), StepError>> {
            Box::pin(async move {
                let id = step.to_string();
                let id = id.as_str();
                let node = id.rsplit('/').next().unwrap_or(id);
                let (script, secs): (Vec<String>, u64) = match id.split('/').next().unwrap() {
                    "init" => (
                        vec![
                            format!("{node}: [init] Using Kubernetes version: v1.32.3"),
                            format!("{node}: [preflight] Running pre-flight checks"),
                            format!("{node}: [control-plane] Creating static Pod manifest for \"kube-apiserver\""),
                            format!("{node}: Your Kubernetes control-plane has initialized successfully!"),
                        ],
                        44,
                    ),
                    "gate" => (
                        vec![
                            "waiting: API server on cargyll not ready".into(),
                            "waiting: API server on cargyll not ready".into(),
                            "waiting: /readyz through 10.4.0.10:6443: [-]etcd failed".into(),
                        ],
                        9,
                    ),
                    "join-control-plane" => (
                        vec![
                            format!("{node}: [preflight] Running pre-flight checks"),
                            format!("{node}: [etcd] Announced new etcd member joining to the existing etcd cluster"),
                            format!("{node}: This node has joined the cluster and a new control plane instance was created:"),
                        ],
                        38,
                    ),
                    "join-worker" => (
                        vec![
                            format!("{node}: [preflight] Running pre-flight checks"),
                            format!("{node}: [kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap"),
                        ],
                        20,
                    ),
                    "install-cni" => (vec![], 4),
                    "upload-certs" => (vec![], 3),
                    _ => (vec![], 1),
                };
                let pause = Duration::from_secs(secs) / (script.len() as u32 + 1);
                for line in script {
                    self.events.progress(step, line);
                    sleep(pause).await;
                }
                sleep(pause).await;
                if id == "join-worker/jast" {
                    return Err(StepError::Exited {
                        program: "kubeadm join".into(),
                        node: "jast".parse().unwrap(),
                        code: 1,
                        output: "error execution phase kubelet-start: \
                                timed out waiting for the condition\n\
                                To see the stack trace of this error execute with --v=5 or higher"
                            .into(),
                    });
                }
                Ok(())
            })
        }
    }

    /// The walk's events, each with the virtual time it was sent at.
    fn walk_goldentooth() -> Vec<(Duration, Event)> {
        // jast's failed join skips the kubectl label after it.
        let spec = crate::spec::goldentooth_labelled_after_join("jast");
        let plan = bootstrap_plan(&spec).expect("plans");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (events, mut rx) = Events::channel();
            let start = Instant::now();
            let recorder = tokio::spawn(async move {
                let mut seen = vec![];
                while let Some(e) = rx.recv().await {
                    seen.push((start.elapsed(), e));
                }
                seen
            });
            events.send(Event::Plan {
                plan: Box::new(plan.document()),
            });
            events.send(Event::Started {
                run_id: "20261123-100000-7f3a".into(),
                cluster: plan.cluster.clone(),
                steps: plan.graph.len(),
            });
            let (_ctrl_c, idle) = tokio::sync::watch::channel(false);
            let runner = Bootstrap {
                events: events.clone(),
            };
            let walked = walk(&plan.graph, &runner, 10, &events, idle).await;
            let r = recap(
                &spec,
                &Observed::empty(),
                &plan,
                &walked,
                &Default::default(),
                "20261123-100000-7f3a",
                start.elapsed(),
            );
            events.send(Event::Recap(r));
            drop((events, runner));
            recorder.await.unwrap()
        })
    }

    /// The walker times steps on the wall clock, which a paused runtime
    /// does not move: the virtual times stand in, so the log is stable.
    fn with_virtual_elapsed(events: Vec<(Duration, Event)>) -> Vec<(Duration, Event)> {
        let mut started_at = HashMap::new();
        events
            .into_iter()
            .map(|(t, mut e)| {
                match &mut e {
                    Event::StepStarted { step, .. } => {
                        started_at.insert(step.clone(), t);
                    }
                    Event::StepFinished { step, elapsed, .. } => {
                        *elapsed = started_at.get(step).map_or(Duration::ZERO, |s| t - *s);
                    }
                    Event::Recap(r) => r.elapsed = t,
                    _ => {}
                }
                (t, e)
            })
            .collect()
    }

    #[test]
    fn a_bootstrap_with_one_failing_worker_reads_well_as_plain_lines() {
        let events = with_virtual_elapsed(walk_goldentooth());
        let (mut ui, screen) = ui_on(Mode::Plain, NO_COLOR);
        for (t, e) in &events {
            ui.handle_at(e, at(0) + *t);
        }
        let recap = ui.finish().expect("the walk ended with a recap");
        let log = screen.text();
        snapshot("apply-goldentooth-plain.txt", &log);

        // The root cause once as a step line and once in the recap's errors.
        assert_eq!(log.matches(" FAILED ").count(), 1);
        assert_eq!(log.matches("\nError: ").count(), 1);
        assert!(log.contains(" skip   update/jast: upstream failed"));
        assert_eq!(recap.failed_steps, 1);
        assert_eq!(recap.joined, 11, "every node but jast");
        assert!(log.ends_with(
            "Apply failed: 1 step failed, 1 skipped. Nodes: 11 joined, 0 changed, 0 removed.\n"
        ));
        // The gate said the same thing twice in a row: one line for it.
        assert_eq!(
            log.matches("API server on cargyll not ready").count(),
            3,
            "{log}"
        );
    }

    #[test]
    fn the_same_walk_as_json_is_one_event_per_line_plan_first_recap_last() {
        let events = with_virtual_elapsed(walk_goldentooth());
        let (mut ui, screen) = ui_on(Mode::Json, NO_COLOR);
        for (t, e) in &events {
            ui.handle_at(e, at(0) + *t);
        }
        ui.finish();
        let kinds: Vec<String> = screen
            .text()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["time"].as_str().unwrap().starts_with("2026-11-23T10:0"));
                v["event"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(kinds.len(), events.len());
        assert_eq!(kinds[..2], ["plan", "started"]);
        assert_eq!(kinds.last().unwrap(), "recap");
    }
}

/// Run by `on_a_real_terminal_*` under script(1), so that stdout is a
/// pseudo-terminal: renders the walk in the mode gt would pick there.
#[test]
#[ignore = "run under script(1) by the on_a_real_terminal tests"]
fn render_the_walk_on_this_stdout() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // Start on a fresh line, as gt does after its prompt: libtest has just
    // written "test NAME ... " without a newline.
    println!();
    let (tx, rx) = Events::channel();
    for (_, e) in walk() {
        tx.send(e);
    }
    drop(tx);
    let recap = rt.block_on(render(
        stdout_mode(false),
        Style { color: true },
        rx,
        std::io::stdout(),
    ));
    assert!(recap.is_some());
}

/// What a 120-column terminal shows, and the bytes it received.
fn on_a_real_terminal(term: &str) -> (String, String) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!(
                "stty cols 120 rows 40; {} --exact ui::tests::render_the_walk_on_this_stdout \
                 --ignored --nocapture --test-threads=1",
                exe.display()
            ),
            "/dev/null",
        ])
        .env("TERM", term)
        .output()
        .expect("script(1) from util-linux runs");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{raw}");
    (terminal(&raw, 120), raw)
}

#[test]
fn on_a_real_terminal_gt_draws_bars_sized_to_it() {
    let (screen, raw) = on_a_real_terminal("xterm-256color");
    // Sized from the terminal: this line is wider than 80 columns, unwrapped.
    assert!(
        screen.contains(
            "\n✗ join worker jast (20.0s): kubeadm join on jast exited 1: [preflight] Running pre-flight checks\n"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("\n✓ join worker fenn (20.1s)\n"),
        "{screen}"
    );
    assert!(
        screen.contains(&recap_text(&failed_recap(), NO_COLOR)),
        "{screen}"
    );
    assert!(raw.contains("\x1b[31m✗\x1b[0m"), "colored on a terminal");
    assert!(!screen.contains("/4] steps"), "bars cleared: {screen}");
}

#[test]
fn on_a_dumb_terminal_gt_writes_plain_lines() {
    let (screen, raw) = on_a_real_terminal("dumb");
    assert!(
        screen.contains(" FAILED join-worker/jast (20.0s): "),
        "{screen}"
    );
    assert!(!raw.contains("\x1b["), "no cursor moves, no color: {raw:?}");
}
