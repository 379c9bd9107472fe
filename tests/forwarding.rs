//! Signals that are not stop signals reach the app at once (rewritten if asked); the app's whole
//! process group gets them unless --single-child.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn shell_wrapped_app_receives_sigterm() {
    // The shell neither execs nor forwards: only process-group delivery reaches the app.
    let ns = sh_under(&[], "{probe} log={log}; true");
    ns.wait_record("ready", T);
    let done = ns.stop(T);
    assert_eq!(signals_seen(&done.records), vec![libc::SIGTERM]);
    assert_eq!(
        done.code, 143,
        "the shell dies of the forwarded SIGTERM too: {}",
        done.stderr
    );
}

#[test]
fn hup_usr1_and_rtmin3_are_forwarded_while_the_app_keeps_running() {
    let mut ns = probe_under(&[], &[]);
    ns.wait_record("ready", T);
    let rtmin3 = 34 + 3;
    for (i, sig) in [libc::SIGHUP, libc::SIGUSR1, rtmin3]
        .into_iter()
        .enumerate()
    {
        ns.signal(sig);
        ns.wait_record(&format!("sig {sig} "), T);
        assert_eq!(ns.count_records("sig "), i + 1);
    }
    assert!(ns.alive(), "sigward must not stop on a non-stop signal");
    assert_eq!(ns.count_records("exit"), 0, "the app must keep running");
    let done = ns.stop(T);
    assert_eq!(done.code, 143);
}

#[test]
fn custom_stop_signal_quit_starts_the_stop_sequence() {
    let ns = probe_under(&["--stop-signal", "QUIT", "-t", "1s"], &["on-term=stay"]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGQUIT);
    let done = ns.wait(T);
    assert_eq!(signals_seen(&done.records), vec![libc::SIGQUIT]);
    done.assert_said("received SIGQUIT from outside the PID namespace (pid 0): stopping");
    assert_eq!(
        done.code, 137,
        "the app ignored QUIT, so the grace deadline killed it"
    );
}

#[test]
fn sigterm_is_only_forwarded_when_it_is_not_a_stop_signal() {
    let ns = probe_under(&["-S", "QUIT"], &[]);
    ns.wait_record("ready", T);
    let done = ns.stop(T);
    assert_eq!(done.code, 143);
    done.assert_not_said_because("stopping", "SIGTERM must not start the stop sequence");
}

#[test]
fn rewrite_term_to_quit_delivers_quit() {
    let ns = probe_under(&["-r", "TERM:QUIT", "-t", "1s"], &[]);
    ns.wait_record("ready", T);
    let done = ns.stop(T);
    assert_eq!(signals_seen(&done.records), vec![libc::SIGQUIT]);
    done.assert_said("forwarded SIGTERM as SIGQUIT");
}

#[test]
fn rewrite_to_zero_drops_the_signal() {
    let ns = probe_under(&["-r", "USR1:0"], &[]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGUSR1);
    // sigward handles pending signals lowest number first, so USR1 (10) is dealt with before USR2 (12).
    ns.signal(libc::SIGUSR2);
    ns.wait_record(&sig_record(libc::SIGUSR2), T);
    assert_eq!(signals_seen(&ns.records()), vec![libc::SIGUSR2]);
    assert_eq!(ns.stop(T).code, 143);
}

/// sigward with `options` running a shell that starts a sibling probe (records: the returned
/// path) in the app's process group, then execs the main probe; once both are ready, sigward gets
/// SIGHUP, and the main probe has recorded it.
fn hup_beside_a_sibling(options: &[&str]) -> (Ns, String) {
    let ns = sh_under(options, "{probe} log={dir}sibling & exec {probe} log={log}");
    ns.wait_record("ready", T);
    let sibling = ns.dir.path("sibling");
    wait_line(&sibling, "ready", T);
    ns.signal(libc::SIGHUP);
    ns.wait_record(&sig_record(libc::SIGHUP), T);
    (ns, sibling)
}

#[test]
fn single_child_mode_signals_only_the_direct_child() {
    // `exec` makes the second probe the main child; the first stays in its process group.
    let (ns, sibling) = hup_beside_a_sibling(&["-c"]);
    ns.signal(libc::SIGTERM);
    // The sibling gets SIGTERM only as a leftover once the child has exited; a HUP sent to it
    // earlier would have been recorded first.
    wait_line(&sibling, "exit", T);
    let sib = std::fs::read_to_string(&sibling).unwrap();
    assert_eq!(
        signals_seen(&sib),
        vec![libc::SIGTERM],
        "sibling got more than the leftover SIGTERM in -c mode"
    );
    assert_eq!(ns.wait(T).code, 143);
}

#[test]
fn group_mode_signals_every_process_in_the_group() {
    let (ns, sibling) = hup_beside_a_sibling(&[]);
    wait_line(&sibling, &sig_record(libc::SIGHUP), T);
    assert_eq!(ns.stop(T).code, 143);
}
