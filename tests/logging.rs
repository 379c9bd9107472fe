//! Logs: one line per stop-sequence event on stderr, as text or as JSON objects.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn stop_ignoring_app(extra: &[&str]) -> Done {
    let options = [extra, &["-d", "200ms", "-t", "1s"]].concat();
    let ns = probe_under(&options, &["on-term=ignore"]);
    ns.wait_record("ready", T);
    ns.stop(T)
}

#[test]
fn json_log_lines_parse_and_carry_ts_level_event() {
    let done = stop_ignoring_app(&["--log-format", "json", "-v"]);
    let mut events = Vec::new();
    for line in done.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["ts", "level", "event", "msg"] {
            assert!(v[key].is_string(), "no {key} in {line}");
        }
        assert!(v["ts"].as_str().unwrap().ends_with('Z'), "{line}");
        events.push(v["event"].as_str().unwrap().to_string());
        if v["event"] == "stragglers_killed" {
            assert_eq!(v["count"], 1, "{line}");
            assert!(
                v["stragglers"].as_str().unwrap().contains("(probe)"),
                "{line}"
            );
        }
        if v["event"] == "stop_signal" {
            assert_eq!(v["signal"], "SIGTERM");
            assert_eq!(v["from_pid"], 0);
        }
    }
    for e in [
        "started",
        "stop_signal",
        "pre_stop_delay",
        "delay_over",
        "forwarded",
        "stragglers_killed",
        "child_exited",
        "exit",
    ] {
        assert!(events.iter().any(|x| x == e), "no {e} event in {events:?}");
    }
}

#[test]
fn text_log_tells_the_stop_sequence_one_line_per_event() {
    let done = stop_ignoring_app(&[]);
    let lines: Vec<&str> = done.stderr.lines().collect();
    // The app is pid 2 natively, 3 under QEMU (whose own thread takes 2).
    let app = field(
        done.records
            .lines()
            .find(|l| l.starts_with("start"))
            .unwrap_or_default(),
        "pid",
    );
    let expected = [
        "sigward: received SIGTERM from outside the PID namespace (pid 0): stopping, grace period 1s".to_string(),
        "sigward: holding SIGTERM for the pre-stop delay of 200ms; the app keeps serving".into(),
        "sigward: pre-stop delay over".into(),
        format!("sigward: forwarded SIGTERM to process group {app}"),
        format!("sigward: warning: grace period of 1s is over: killing 1 straggler: {app} (probe)"),
    ];
    assert_eq!(lines[..expected.len()], expected, "{}", done.stderr);
    assert!(
        lines[expected.len()].starts_with("sigward: "),
        "{}",
        done.stderr
    );
    assert!(
        lines[expected.len()].contains(&format!(
            "(pid {app}) exited with signal SIGKILL (status 137) after"
        )),
        "{}",
        done.stderr
    );
    assert_eq!(lines.len(), expected.len() + 1, "{}", done.stderr);
}

#[test]
fn quiet_keeps_only_warnings() {
    let done = stop_ignoring_app(&["-q"]);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("warning: grace period of 1s is over"));
    let done = stop_ignoring_app(&["-qq"]);
    assert_eq!(done.stderr, "");
}

#[test]
fn debug_level_logs_forwarded_signals_and_reaped_pids() {
    let ns = Ns::start(&[
        "-v",
        "--",
        "sh",
        "-c",
        "sh -c 'sleep 0.1 &' ; {probe} log={log}",
    ]);
    ns.wait_record("ready", T);
    // The app's group: 2 natively, 3 under QEMU (whose own thread takes 2).
    let group = field(&ns.wait_record("start", T), "pgid").to_string();
    // WINCH: the wrapping shell ignores it by default, the probe records it.
    ns.signal(libc::SIGWINCH);
    ns.wait_record(&format!("sig {} ", libc::SIGWINCH), T);
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    done.assert_said(&format!(
        "sigward: forwarded SIGWINCH to process group {group}"
    ));
    done.assert_said("sigward: reaped ");
}

#[test]
fn a_log_reader_that_never_reads_does_not_stall_the_stop_sequence() {
    // stderr is a pipe the test reads only once sigward has exited: 5000 reaped orphans at debug
    // level are ~160 KB of log, far more than the pipe holds. A blocking write would stop sigward
    // there (no more reaping, no deadline); the lines that do not fit must be dropped instead.
    let ns = Ns::start(&[
        "-v",
        "-t",
        "1s",
        "--",
        "{probe}",
        "log={log}",
        "orphans=5000",
        "on-term=ignore",
    ]);
    let made = ns.wait_record("orphans made=", T);
    assert!(
        made.contains("zombies=0"),
        "sigward stopped reaping: {made}"
    );
    ns.wait_record("ready", T);
    let stopped = std::time::Instant::now();
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "1s of grace took {:?}",
        stopped.elapsed()
    );
    assert_eq!(done.code, 128 + libc::SIGKILL, "{}", done.stderr);
    assert!(done.stderr.len() <= 1 << 20);
}

/// With a terminal on stderr (`docker run -it`, a shell), a clean run says nothing; a failing one
/// still reports its status. Outside a terminal the clean exit is logged as always.
#[test]
fn a_clean_exit_is_quiet_on_a_terminal_and_a_failure_is_not() {
    let run_on_tty = |cmd: &str| {
        let inner = format!("{} -- sh -c '{cmd}'", sigward_bin());
        let out = std::process::Command::new("script")
            .args(["-qfec", &inner, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script (util-linux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let clean = without_qemu_subreaper_warning(&run_on_tty("exit 0"));
    assert!(!clean.contains("sigward:"), "a clean run spoke: {clean:?}");
    let failed = run_on_tty("exit 3");
    assert!(
        failed.contains("exited with status 3"),
        "a failing run must still say so: {failed:?}"
    );
    let piped = run(&["--", "sh", "-c", "exit 0"]);
    piped.assert_said("exited with status 0");
}
