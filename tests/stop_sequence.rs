//! The stop sequence: pre-stop delay, drain, SIGKILL of stragglers at the grace deadline, and the
//! leftovers of a main child that exits on its own. Time bounds are generous (shared, noisy
//! machines); the assertions are on what the app saw and in which order.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const MS: u128 = 1_000_000;

#[test]
fn pre_stop_delay_holds_sigterm_while_the_app_keeps_serving() {
    let mut ns = probe_under(&["-d", "1s", "-t", "20s"], &[]);
    ns.wait_record("ready", T);
    let sent = now_ns();
    ns.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        ns.alive() && ns.count_records("sig") == 0,
        "the app must keep running during the delay"
    );
    // The app still gets other signals during the delay.
    ns.signal(libc::SIGUSR1);
    ns.wait_record(&sig_record(libc::SIGUSR1), T);
    let done = ns.wait(T);
    let got = signal_time(&done.records, libc::SIGTERM).expect("the app got SIGTERM");
    assert!(
        got >= sent + 1000 * MS,
        "SIGTERM reached the app {} ms after it was sent, before the 1s delay",
        (got - sent) / MS
    );
    assert_eq!(done.code, 143);
    done.assert_said("holding SIGTERM for the pre-stop delay of 1s");
}

#[test]
fn second_stop_signal_cuts_the_pre_stop_delay() {
    let ns = probe_under(&["-d", "20s", "-t", "30s"], &[]);
    ns.wait_record("ready", T);
    let sent = now_ns();
    ns.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    ns.signal(libc::SIGINT);
    let done = ns.wait(T);
    let got = signal_time(&done.records, libc::SIGTERM).expect("the app got the held SIGTERM");
    assert!(
        got - sent < 10_000 * MS,
        "delay not cut: {} ms",
        (got - sent) / MS
    );
    done.assert_said("during the pre-stop delay: ending it now");
    assert_eq!(done.code, 143);
}

#[test]
fn main_child_exit_ends_the_pre_stop_delay() {
    let ns = sh_under(
        &["-d", "20s", "-t", "30s"],
        "{probe} log={log} on-term=ignore exit=0 & wait; sleep 1; exit 5",
    );
    ns.wait_record("exit", T);
    let done = ns.stop(T);
    assert_eq!(done.code, 5);
    assert!(
        done.elapsed < Duration::from_secs(15),
        "sigward sat out the 20s delay after its child exited"
    );
}

#[test]
fn stop_signal_while_draining_is_forwarded_again() {
    let ns = probe_under(&["-t", "1500ms"], &["on-term=stay"]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGTERM);
    ns.wait_record(&sig_record(libc::SIGTERM), T);
    ns.signal(libc::SIGINT);
    let done = ns.wait(T);
    assert_eq!(
        signals_seen(&done.records),
        vec![libc::SIGTERM, libc::SIGINT]
    );
    done.assert_said("received SIGINT from outside the PID namespace (pid 0) while draining");
}

#[test]
fn sigterm_ignoring_app_is_killed_at_the_grace_deadline_and_named() {
    let ns = probe_under(&["-t", "1s"], &["on-term=ignore"]);
    let ready = ns.wait_record("start", T);
    ns.wait_record("ready", T);
    let pid = field(&ready, "pid").to_string();
    let sent = std::time::Instant::now();
    let done = ns.stop(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    assert!(
        sent.elapsed() >= Duration::from_millis(950),
        "killed before the grace period ended"
    );
    assert!(done.elapsed < Duration::from_secs(15));
    done.assert_said(&format!(
        "grace period of 1s is over: killing 1 straggler: {pid} (probe)"
    ));
}

#[test]
fn leftovers_get_sigterm_and_may_finish_a_drain_before_sigward_exits() {
    // The main child (sh) exits with 7 and leaves a worker that needs 1s to drain on SIGTERM.
    let ns = sh_under(
        &[],
        "{probe} log={log} on-term=drain:1000:0 & while ! grep -q ready {log} 2>/dev/null; do sleep 0.02; done; exit 7",
    );
    let done = ns.wait(T);
    assert_eq!(done.code, 7, "{}", done.stderr);
    assert_eq!(signals_seen(&done.records), vec![libc::SIGTERM]);
    assert!(
        done.records.contains("drained"),
        "the worker was cut off mid-drain:\n{}",
        done.records
    );
    done.assert_said("1 process left after the main child exited: sent SIGTERM");
}

#[test]
fn exits_at_once_when_the_main_child_leaves_nothing_behind() {
    let done = run(&["-t", "20s", "--", "sh", "-c", "sleep 0.1; exit 4"]);
    assert_eq!(done.code, 4);
    done.assert_not_said("left after");
    assert!(done.elapsed < Duration::from_secs(10));
}

#[test]
fn setsid_daemon_is_swept_when_sigward_is_pid1() {
    // The daemon leaves the group with setsid and ignores SIGTERM; only PID 1's sweep reaches it.
    let ns = sh_under(
        &["-t", "1s"],
        "{probe} log={log} sid on-term=ignore & while ! grep -q ready {log} 2>/dev/null; do sleep 0.02; done; exit 3",
    );
    let done = ns.wait(T);
    assert_eq!(done.code, 3, "{}", done.stderr);
    let pid = field(done.records.lines().next().unwrap(), "pid");
    let sid = field(done.records.lines().next().unwrap(), "sid");
    assert_eq!(pid, sid, "the probe did not become a daemon");
    done.assert_said(&format!("killing 1 straggler: {pid} (probe)"));
}

#[test]
fn grace_deadline_runs_on_the_monotonic_clock_alone() {
    // In a time namespace sigward's monotonic and boot clocks read ten years ahead of the wall
    // clock. A deadline mixing clocks would fire at once or never; a monotonic one holds: the
    // TERM-ignoring app is killed 1s after the stop signal, not earlier, not much later.
    let ten_years = "315360000";
    let argv = [
        sigward_bin(),
        "-t",
        "1s",
        "--",
        "{probe}",
        "log={log}",
        "on-term=ignore",
    ];
    let ns = Ns::unshared(
        &["--time", "--monotonic", ten_years, "--boottime", ten_years],
        &argv,
        |_| {},
    );
    ns.wait_record("ready", T);
    // The namespace is really in effect for sigward: its clocks carry the ten-year offset.
    let offsets = std::fs::read_to_string(format!("/proc/{}/timens_offsets", ns.pid1)).unwrap();
    let monotonic = offsets
        .lines()
        .find_map(|l| l.strip_prefix("monotonic"))
        .map(|v| v.split_whitespace().next().unwrap_or(""));
    assert_eq!(monotonic, Some(ten_years), "no time namespace: {offsets}");
    let sent = std::time::Instant::now();
    let done = ns.stop(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(10),
        "deadline after {took:?}"
    );
    done.assert_said("grace period of 1s is over");
}
