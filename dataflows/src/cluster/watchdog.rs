//! Turns a lost peer into a clear error and a prompt exit. timely's network threads
//! (`timely:send-N`, `timely:recv-N`) panic when a connection breaks and the workers
//! would then hang or panic in turn; a panic hook recognises those threads, reports
//! "lost connection to process N (address)", runs the command's failure action (for
//! example writing a `failed` manifest) and exits with code 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// What to run once before exiting on a fatal cluster error.
type FailureAction = Box<dyn Fn(&str) + Send + Sync>;

static ADDRESSES: OnceLock<Vec<String>> = OnceLock::new();
static ACTION: Mutex<Option<FailureAction>> = Mutex::new(None);
static FAILING: AtomicBool = AtomicBool::new(false);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// What the panic hook does with a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A network thread of peer `N` panicked while the job stops: expected, logged.
    PeerClosedWhileStopping(usize),
    /// A network thread of peer `N` panicked: the connection is lost, the run fails.
    PeerLost(usize),
    /// Another thread panicked after the run failed or ended: stay quiet.
    Quiet,
    /// Another thread panicked: the previous hook reports it.
    Report,
}

/// The decision of the panic hook for a panic on thread `thread`, given whether a stop
/// was requested and whether the run already failed or ended.
pub fn verdict(thread: Option<&str>, stopping: bool, failing: bool) -> Verdict {
    match thread.and_then(network_peer) {
        Some(peer) if stopping => Verdict::PeerClosedWhileStopping(peer),
        Some(peer) => Verdict::PeerLost(peer),
        None if failing => Verdict::Quiet,
        None => Verdict::Report,
    }
}

/// The message for a lost connection to `peer` (`process N (address)`), from the
/// network thread's panic text.
pub fn lost_message(peer: &str, cause: &str) -> String {
    let cause = cause
        .strip_prefix("timely communication error: ")
        .unwrap_or(cause);
    format!("lost connection to {peer}: {cause} (it crashed, was stopped or failed: see its log)")
}

/// Installs the panic hook for a cluster of `addresses` (index = process).
pub fn install(addresses: Vec<String>) {
    if ADDRESSES.set(addresses).is_err() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let stopping = STOPPING.load(Ordering::SeqCst);
        match verdict(thread.name(), stopping, FAILING.load(Ordering::SeqCst)) {
            Verdict::PeerClosedWhileStopping(peer) => {
                tracing::info!(peer = %describe(peer), "peer closed its connection while stopping");
            }
            Verdict::PeerLost(peer) => {
                fail(&lost_message(
                    &describe(peer),
                    &payload_text(info.payload()),
                ));
            }
            Verdict::Quiet => {}
            Verdict::Report => previous(info),
        }
    }));
}

/// Marks a requested stop (SIGINT/SIGTERM): peers closing their connections while
/// the job winds down are expected, not failures.
pub fn stopping() {
    STOPPING.store(true, Ordering::SeqCst);
}

/// Sets the action run by [`fail`] before exiting (replaces an earlier one).
pub fn on_failure(action: impl Fn(&str) + Send + Sync + 'static) {
    *ACTION.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(action));
}

/// Marks the run as over: the workers and network threads have finished and the
/// command reports its own outcome, so a later [`fail`] only waits for the exit.
pub fn disarm() {
    FAILING.store(true, Ordering::SeqCst);
}

/// Reports `message`, runs the failure action and exits with code 1. Only the first
/// caller does so; later callers (other threads failing in turn) wait for the exit.
pub fn fail(message: &str) -> ! {
    if FAILING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    tracing::error!(error = %message, "cluster failure");
    if let Some(action) = ACTION.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        action(message);
    }
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// "process N (address)" for peer `index`.
pub fn describe(index: usize) -> String {
    match ADDRESSES.get().and_then(|a| a.get(index)) {
        Some(address) => format!("process {index} ({address})"),
        None => format!("process {index}"),
    }
}

/// The peer index of a timely network thread name (`timely:send-3` → 3).
fn network_peer(name: &str) -> Option<usize> {
    name.strip_prefix("timely:send-")
        .or_else(|| name.strip_prefix("timely:recv-"))
        .and_then(|n| n.parse().ok())
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the connection failed".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_fails_only_on_a_lost_peer() {
        let send = Some("timely:send-2");
        assert_eq!(verdict(send, false, false), Verdict::PeerLost(2));
        assert_eq!(
            verdict(send, true, false),
            Verdict::PeerClosedWhileStopping(2)
        );
        assert_eq!(
            verdict(Some("timely:recv-1"), false, true),
            Verdict::PeerLost(1)
        );
        assert_eq!(verdict(Some("main"), false, false), Verdict::Report);
        assert_eq!(verdict(None, false, false), Verdict::Report);
        assert_eq!(verdict(Some("worker"), false, true), Verdict::Quiet);
    }

    #[test]
    fn lost_messages_name_the_peer_and_cause() {
        let m = lost_message("process 1 (h:2102)", "timely communication error: reset");
        assert_eq!(
            m,
            "lost connection to process 1 (h:2102): reset (it crashed, was stopped or failed: see its log)"
        );
        assert_eq!(describe(7), "process 7");
        assert_eq!(payload_text(&"boom"), "boom");
        assert_eq!(payload_text(&String::from("bang")), "bang");
        assert_eq!(payload_text(&5u8), "the connection failed");
    }

    #[test]
    fn network_threads_are_recognised() {
        assert_eq!(network_peer("timely:send-3"), Some(3));
        assert_eq!(network_peer("timely:recv-0"), Some(0));
        assert_eq!(network_peer("timely:work-0"), None);
        assert_eq!(network_peer("main"), None);
    }
}
