//! The log's details as a reader sees them: durations in the units a person writes, names whose
//! backslashes cannot pass for escapes.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// The log of sigward with `args`, sent SIGTERM once the probe is up.
fn log_after_sigterm(args: &[&str]) -> String {
    let ns = Ns::start(args);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGTERM);
    ns.wait(T).stderr
}

/// The line of `log` holding `needle`.
fn line<'a>(log: &'a str, needle: &str) -> &'a str {
    match log.lines().find(|l| l.contains(needle)) {
        Some(line) => line,
        None => panic!("no line with {needle:?}: {log}"),
    }
}

/// 100 years, sigward's longest duration, was written `52560000m`.
#[test]
fn a_grace_period_of_a_century_is_written_in_hours() {
    let done = run(&[
        "-t",
        "876000h",
        "--",
        "sh",
        "-c",
        "{probe} log={log} & exit 0",
    ]);
    done.assert_said(
        "1 process left after the main child exited: sent SIGTERM, waiting up to 876000h for them",
    );
}

/// What is left of a grace period is rarely whole: it was written `3153599999.696s`.
#[test]
fn the_time_left_of_a_long_grace_period_is_written_in_hours_minutes_and_seconds() {
    // On SIGTERM the shell exits at once; the probe, drain:3000:0, stays 3 s, a leftover.
    let args = [
        "-t",
        "876000h",
        "--",
        "sh",
        "-c",
        "trap 'exit 0' TERM; {probe} log={log} on-term=drain:3000:0 & wait",
    ];
    let log = log_after_sigterm(&args);
    let stop = line(&log, "received SIGTERM");
    assert!(stop.ends_with("grace period 876000h"), "{stop}");
    let left = line(&log, "left after the main child exited");
    // 875999h59m, then the seconds left: 59.xxxs or a little less.
    let waited = left
        .split("waiting up to ")
        .nth(1)
        .and_then(|w| w.strip_suffix(" for them"))
        .unwrap_or_else(|| panic!("{left}"));
    let secs = waited
        .strip_prefix("875999h59m")
        .and_then(|s| s.strip_suffix('s'))
        .unwrap_or_else(|| panic!("{left}"));
    assert!(
        secs.parse::<f64>().is_ok_and(|s| s < 60.0)
            && secs.split('.').nth(1).is_none_or(|f| f.len() <= 3),
        "{left}"
    );
}

/// A process named with the four characters `a\x0a` was logged as one named `a` and a newline.
#[test]
fn a_backslash_in_a_process_name_is_written_doubled() {
    // Hex of `a\x0a` (a real backslash), and of `b` and a real newline.
    for (hex, shown) in [("615c783061", "(a\\\\x0a)"), ("620a", "(b\\x0a)")] {
        let words = format!("-t 1s -- {{probe}} log={{log}} on-term=ignore comm={hex}");
        let args: Vec<&str> = words.split(' ').collect();
        let log = log_after_sigterm(&args);
        let killed = line(&log, "killing 1 straggler: ");
        assert!(killed.ends_with(shown), "{killed}");
    }
}
