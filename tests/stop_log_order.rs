//! The order of what sigward says when a stop signal arrives: the signal's own line first, then
//! what it caused (a configuration change it drops, the stop actions).
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn a_change_dropped_by_a_stop_signal_is_said_after_the_stop_signals_own_line() {
    let dir = Scratch::new();
    let file = dir.path("app.conf");
    std::fs::write(&file, "v0").unwrap();
    let ns = Ns::start_with(
        &[
            "--watch",
            &file,
            "--watch-debounce",
            "5s",
            "--",
            "{probe}",
            "log={log}",
        ],
        only_stdio,
    );
    ns.wait_record("ready", T);
    // The change waits in its quiet window (5s) when SIGTERM comes: the stop drops it.
    std::fs::write(&file, "v1").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    assert_eq!(done.code, 143, "{}", done.stderr);
    let at = |needle: &str| {
        done.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{}", done.stderr))
    };
    assert!(
        at("received SIGTERM") < at("during the stop sequence"),
        "the stop signal's line must come first:\n{}",
        done.stderr
    );
}
