//! Each process gets the stop signal once per stop sequence: across a restart's retirement, with
//! -c during a restart, and when the orchestrator's stop signal comes after the app has exited.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Asserts that the probe recording to `log` got SIGTERM once; `who` names it when it did not.
fn assert_sigterm_once(log: &str, who: &str, done: &Done) {
    assert_eq!(
        count_lines(log, &sig_record(libc::SIGTERM)),
        1,
        "{who} got SIGTERM twice:\n{}\nstderr:\n{}",
        read(log),
        done.stderr
    );
}

/// Generation 1 is retired (SIGTERM at promotion) and keeps draining; the new generation's main
/// process then exits by itself while generation 1 is still there. The leftover signal of the
/// stop sequence must not reach generation 1 a second time.
#[test]
fn retiring_generation_gets_the_stop_signal_once_when_the_new_generation_exits() {
    let script = "[ \"$SIGWARD_GENERATION\" = 1 ] && exec {probe} log={dir}gen1 notify on-term=stay; \
                  {probe} log={dir}gen2 notify on-term=stay & sleep 1; exit 5";
    let ns = sh_under(&["--listen", "tcp://127.0.0.1:0", "-t", "4s"], script);
    let gen1 = ns.gen_log(1);
    wait_line(&gen1, "notified ok=true", T);
    ns.signal(libc::SIGHUP);
    // Promotion: generation 1 gets its one SIGTERM.
    wait_line(&gen1, &sig_record(libc::SIGTERM), T);
    let done = ns.wait(T);
    assert_sigterm_once(&gen1, "the retiring generation", &done);
}

/// Same, with an external stop during the retirement: the stop signal goes to the current
/// generation only, then the current one exits while the retiring one drains.
#[test]
fn retiring_generation_gets_the_stop_signal_once_when_stopped_and_the_current_one_exits_first() {
    let script = "[ \"$SIGWARD_GENERATION\" = 1 ] && exec {probe} log={dir}gen1 notify on-term=stay; \
                  exec {probe} log={dir}gen2 notify";
    let ns = sh_under(&["--listen", "tcp://127.0.0.1:0", "-t", "3s"], script);
    let (gen1, gen2) = (ns.gen_log(1), ns.gen_log(2));
    wait_line(&gen1, "notified ok=true", T);
    ns.signal(libc::SIGHUP);
    wait_line(&gen1, &sig_record(libc::SIGTERM), T);
    wait_line(&gen2, "notified ok=true", T);
    ns.signal(libc::SIGTERM); // generation 2 exits on it; generation 1 still drains
    let done = ns.wait(T);
    assert_sigterm_once(&gen1, "the retiring generation", &done);
}

/// With -c (signal the main process only) and --listen: a stop while generation 2 starts tells
/// both main processes; generation 1 exits; generation 2's main process must not get the
/// leftover signal on top.
#[test]
fn single_child_stop_during_a_restart_signals_the_starting_generation_once() {
    let script = "[ \"$SIGWARD_GENERATION\" = 1 ] && exec {probe} log={dir}gen1 notify; \
                  exec {probe} log={dir}gen2 on-term=stay";
    let ns = sh_under(
        &[
            "-c",
            "--listen",
            "tcp://127.0.0.1:0",
            "--ready-timeout",
            "60s",
            "-t",
            "3s",
        ],
        script,
    );
    let (gen1, gen2) = (ns.gen_log(1), ns.gen_log(2));
    wait_line(&gen1, "notified ok=true", T);
    ns.signal(libc::SIGHUP);
    wait_line(&gen2, "ready", T);
    let done = ns.stop(T);
    assert_sigterm_once(&gen2, "generation 2", &done);
}

/// The app exits by itself and leaves a process behind; sigward gives it the stop signal. Then the
/// orchestrator's SIGTERM arrives: the leftover is already stopping and must not get it again.
#[test]
fn first_stop_signal_after_the_app_exited_does_not_reach_leftovers_twice() {
    let ns = sh_under(
        &["-t", "10s"],
        "{probe} log={log} on-term=drain:1500:0 & sleep 0.5; exit 3",
    );
    ns.wait_record(&sig_record(libc::SIGTERM), T);
    let done = ns.stop(T);
    done.assert_signals(&[libc::SIGTERM], "the leftover got the stop signal twice");
    assert!(
        done.stderr.contains("already stopping"),
        "the orchestrator's signal was not reported: {}",
        done.stderr
    );
    assert_eq!(done.code, 3, "{}", done.stderr);
}
