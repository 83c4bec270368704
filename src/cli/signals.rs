//! SIGINT, SIGTERM and SIGHUP for the whole process, and SIGPIPE.
//!
//! By default a stop signal ends gt at once with exit 128 + N (what a shell
//! reports for a process the signal killed), after stopping the local
//! commands still running and removing the SSH control directories
//! (`transport::abandon`): no destructor runs on that path, and a local
//! command in its own process group, or a control socket left in /tmp, would
//! outlive the run. A command that stops gracefully (`gt apply`
//! while it holds the lock) claims the signals: the first one of the three
//! goes to it; a second one of any of the three ends gt at once as above,
//! after the claim's `on_second` has told the user what that leaves behind.
//!
//! One thread of its own waits for the signals, so that they are handled
//! whatever the command's runtime is doing.

use crate::apply::session::StopSignal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

struct Claim {
    first: mpsc::UnboundedSender<StopSignal>,
    on_second: fn(StopSignal),
    delivered: bool,
}

static CLAIM: Mutex<Option<Claim>> = Mutex::new(None);

fn claim_slot() -> MutexGuard<'static, Option<Claim>> {
    CLAIM.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts handling the stop signals; returns once they are handled.
pub fn install() -> std::io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gt-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let streams = StopSignal::ALL.map(|s| signal(SignalKind::from_raw(s.number())));
                let [int, term, hup] = streams;
                let (mut int, mut term, mut hup) = match (int, term, hup) {
                    (Ok(i), Ok(t), Ok(h)) => (i, t, h),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let got = tokio::select! {
                        Some(()) = int.recv() => StopSignal::Interrupt,
                        Some(()) = term.recv() => StopSignal::Terminate,
                        Some(()) = hup.recv() => StopSignal::Hangup,
                        else => return,
                    };
                    dispatch(got);
                }
            });
        })?;
    ready_rx
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended")))
}

fn dispatch(got: StopSignal) {
    let mut slot = claim_slot();
    if let Some(claim) = slot.as_mut() {
        if !claim.delivered {
            claim.delivered = true;
            if claim.first.send(got).is_ok() {
                return;
            }
        }
        (claim.on_second)(got);
    }
    exit_now(got);
}

/// The exit code of a stop signal ending gt (0: none is).
static ENDING: AtomicU8 = AtomicU8::new(0);

/// Ends the process at once, its local commands stopped and its control
/// directories removed.
fn exit_now(got: StopSignal) -> ! {
    // Set before the commands are stopped: the main thread, seeing one die,
    // could otherwise end gt first with the command's failure as its code.
    ENDING.store(got.exit_code(), Ordering::SeqCst);
    crate::transport::abandon();
    std::process::exit(got.exit_code().into())
}

/// The code a stop signal is ending gt with, if one is: the main thread
/// ends with it too, so that whichever thread exits first, gt's exit
/// status is the signal's.
pub fn exit_code_if_ending() -> Option<u8> {
    match ENDING.load(Ordering::SeqCst) {
        0 => None,
        code => Some(code),
    }
}

/// The stop signals, claimed until dropped.
pub struct Claimed(());

impl Claimed {
    /// Takes over the stop signals (a claim already held is replaced); the
    /// first one arrives on the receiver.
    pub fn new(on_second: fn(StopSignal)) -> (Claimed, mpsc::UnboundedReceiver<StopSignal>) {
        let (first, signals) = mpsc::unbounded_channel();
        *claim_slot() = Some(Claim {
            first,
            on_second,
            delivered: false,
        });
        (Claimed(()), signals)
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        *claim_slot() = None;
    }
}

/// `gt plan | head` must end quietly, not panic in println!: filters take
/// the default SIGPIPE action, as every Unix filter does. `gt apply` and
/// `gt exec` must not die of a closed stdout while commands run on hosts
/// (nor leave their control directory behind): they ignore SIGPIPE and
/// stop writing to stdout instead (see `ui::Stdout`). Children get the
/// default action back either way (std resets it before exec).
pub fn set_sigpipe(ignore: bool) {
    let action = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: setting a signal disposition; called before any thread but
    // the signal thread (which never writes to a pipe) is started.
    unsafe {
        libc::signal(libc::SIGPIPE, action);
    }
}
