//! How a restart with held sockets ends when the app ends under it: generation 1 exits by itself
//! while generation 2 is starting. The app ended — sigward must not say the restart was
//! abandoned with generation 1 "keeping serving", nor send READY=1 upstream after it.
mod common;
use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A process's state letter and parent pid, from /proc/PID/stat.
fn state_and_ppid(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| state_and_ppid(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

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
    let ns = Ns::start_with(
        &[
            "--listen",
            "api=tcp://127.0.0.1:0",
            "--",
            "sh",
            "-c",
            "if [ \"$SIGWARD_GENERATION\" = 1 ]; then exec {probe} log={dir}gen1 notify on-term=exit:0; \
             else exec {probe} log={dir}gen2 on-term=exit:0; fi",
        ],
        |cmd| parent.env(cmd),
    );
    parent.expect("READY=1", T);
    ns.signal(libc::SIGHUP);
    parent.expect("RELOADING=1", T);
    wait_line(&ns.dir.path("gen2"), "ready", T);

    ns.signal(libc::SIGSTOP);
    wait_for("sigward to stop", || {
        state_and_ppid(ns.pid1).is_some_and(|(s, _)| s == 'T')
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
            .all(|&pid| state_and_ppid(pid).is_none_or(|(s, _)| s == 'Z'))
    });
    ns.signal(libc::SIGCONT);

    let done = ns.wait(T);
    let upstream = notify_lines(&parent.pending());
    assert!(
        !upstream.contains(&"READY=1".to_string()),
        "READY=1 after the app ended: {upstream:?}\n{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("keeps serving") && !done.stderr.contains("abandoned"),
        "{}",
        done.stderr
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
}
