//! sigward exits with the main child's status, 128+N for a signal death, 126/127 for exec failures,
//! and 0 for codes listed with --success-exit.
mod common;
use common::*;
use std::time::Duration;

#[test]
fn exit_code_of_the_command_passes_through() {
    let done = run(&["--", "sh", "-c", "exit 3"]);
    assert_eq!(done.code, 3, "{}", done.stderr);
    done.assert_said("exited with status 3");
}

#[test]
fn death_by_signal_exits_128_plus_the_signal_number() {
    let done = run(&["--", "sh", "-c", "kill -USR1 $$"]);
    assert_eq!(done.code, 128 + libc::SIGUSR1, "{}", done.stderr);
    done.assert_said("signal SIGUSR1");
}

#[test]
fn missing_command_exits_127_and_names_it() {
    let done = run(&["--", "/no/such/app", "arg"]);
    assert_eq!(done.code, 127);
    assert_eq!(
        done.stderr.trim(),
        "sigward: cannot run '/no/such/app': No such file or directory"
    );
}

#[test]
fn command_not_found_on_path_exits_127() {
    let done = run(&["--", "no-such-app-anywhere"]);
    assert_eq!(done.code, 127);
    done.assert_said("cannot run 'no-such-app-anywhere'");
}

#[test]
fn non_executable_command_exits_126_and_names_it() {
    let dir = Scratch::new();
    let script = dir.path("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let done = run(&["--", &script]);
    assert_eq!(done.code, 126);
    assert_eq!(
        done.stderr.trim(),
        format!("sigward: cannot run '{script}': Permission denied")
    );
}

#[test]
fn listed_success_exit_code_becomes_zero() {
    let ns = probe_under(&["-e", "143"], &[]);
    ns.wait_record("ready", Duration::from_secs(10));
    ns.signal(libc::SIGTERM);
    let done = ns.wait(Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
}

#[test]
fn unlisted_exit_code_is_kept_with_success_exit_set() {
    let done = run(&["-e", "143", "-e", "1", "--", "sh", "-c", "exit 2"]);
    assert_eq!(done.code, 2);
}
