//! How a restart with held sockets ends when the app ends under it: generation 1 exits by itself
//! while generation 2 is starting. The app ended — sigward must not say the restart was
//! abandoned with generation 1 "keeping serving", nor send READY=1 upstream after it.
mod common;
use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The race made deterministic: sigward is stopped (SIGSTOP from the host, which reaches PID 1
/// of a namespace) while both generations exit, so it reaps them in one pass, generation 1 first.
#[test]
fn the_app_ending_while_a_generation_starts_is_not_an_abandoned_restart_and_sends_no_ready() {
    let parent = NotifyParent::new();
    let ns = sh_under_with(
        &["--listen", "api=tcp://127.0.0.1:0"],
        "if [ \"$SIGWARD_GENERATION\" = 1 ]; then exec {probe} log={dir}gen1 notify on-term=exit:0; \
         else exec {probe} log={dir}gen2 on-term=exit:0; fi",
        |cmd| parent.env(cmd),
    );
    parent.expect("READY=1", T);
    ns.signal(libc::SIGHUP);
    parent.expect("RELOADING=1", T);
    wait_line(&ns.dir.path("gen2"), "ready", T);

    ns.signal(libc::SIGSTOP);
    wait_for("sigward to stop", || {
        stat(ns.pid1).is_some_and(|s| s.0 == 'T')
    });
    let generations = children_of(ns.pid1);
    assert_eq!(generations.len(), 2, "two generations: {generations:?}");
    for &pid in &generations {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    wait_for("both generations to exit", || {
        generations
            .iter()
            .all(|&pid| stat(pid).is_none_or(|s| s.0 == 'Z'))
    });
    ns.signal(libc::SIGCONT);

    let done = ns.wait(T);
    done.assert_not_told(&parent.pending(), "READY=1", "READY=1 after the app ended");
    assert!(
        !done.stderr.contains("keeps serving") && !done.stderr.contains("abandoned"),
        "{}",
        done.stderr
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
}
