//! The log's details as a reader sees them: durations in the units a person writes, names whose
//! backslashes cannot pass for escapes.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

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
    assert!(
        done.stderr.contains(
            "1 process left after the main child exited: sent SIGTERM, waiting up to 876000h for them"
        ),
        "{}",
        done.stderr
    );
}

/// What is left of a grace period is rarely whole: it was written `3153599999.696s`.
#[test]
fn the_time_left_of_a_long_grace_period_is_written_in_hours_minutes_and_seconds() {
    // On SIGTERM the shell exits at once; the probe, drain:3000:0, stays 3 s, a leftover.
    let ns = Ns::start(&[
        "-t",
        "876000h",
        "--",
        "sh",
        "-c",
        "trap 'exit 0' TERM; {probe} log={log} on-term=drain:3000:0 & wait",
    ]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    assert!(
        done.stderr.contains("grace period 876000h"),
        "{}",
        done.stderr
    );
    let left = done
        .stderr
        .lines()
        .find(|l| l.contains("left after the main child exited"))
        .unwrap_or_else(|| panic!("no leftovers line: {}", done.stderr));
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
        let ns = Ns::start(&[
            "-t",
            "1s",
            "--",
            "{probe}",
            "log={log}",
            "on-term=ignore",
            &format!("comm={hex}"),
        ]);
        ns.wait_record("ready", T);
        ns.signal(libc::SIGTERM);
        let done = ns.wait(T);
        let killed = done
            .stderr
            .lines()
            .find(|l| l.contains("killing 1 straggler: "))
            .unwrap_or_else(|| panic!("no stragglers line: {}", done.stderr));
        assert!(killed.ends_with(shown), "{killed}");
    }
}
