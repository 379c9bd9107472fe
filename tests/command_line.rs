//! tini and dumb-init command lines keep working; bad input is a one-line usage error (exit 2)
//! that names the value and starts nothing; environment variables configure like flags.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn tini_style_command_line_works() {
    let ns = Ns::start(&[
        "-s",
        "-g",
        "-e",
        "143",
        "-p",
        "SIGKILL",
        "-w",
        "-v",
        "--",
        "{probe}",
        "log={log}",
    ]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    assert_eq!(
        done.code, 0,
        "-e 143 maps the app's SIGTERM exit to 0: {}",
        done.stderr
    );
    assert!(done.stderr.contains("forwarded SIGTERM"), "{}", done.stderr);
}

#[test]
fn dumb_init_style_command_line_works() {
    // dumb-init's numeric rewrite: USR1 (10) arrives as TERM (15), which the probe exits on.
    let ns = Ns::start(&["-c", "-r", "10:15", "-v", "{probe}", "log={log}"]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGUSR1);
    let done = ns.wait(T);
    assert_eq!(signals_seen(&done.records), vec![libc::SIGTERM]);
    assert_eq!(done.code, 143);
}

#[test]
fn command_options_after_the_command_belong_to_the_command() {
    let done = run(&["sh", "-c", "echo \"$@\"", "x", "-t", "-c", "--help"]);
    assert_eq!(done.stdout.trim(), "-t -c --help");
    assert_eq!(done.code, 0);
}

#[test]
fn bad_input_is_a_one_line_usage_error_naming_the_value_and_starts_nothing() {
    let scratch = Scratch::new();
    let marker = scratch.path("started");
    let cases: &[(&[&str], &str)] = &[
        (&["-t", "5x"], "'5x'"),
        (&["-t", ""], "'' for '--grace-period"),
        (
            &["-d", "30s"],
            "pre-stop delay 30s must be shorter than the grace period 25s",
        ),
        (&["-d", "2s", "-t", "2s"], "pre-stop delay 2s"),
        (&["-S", "KILL"], "'KILL'"),
        (&["-S", "BOGUS"], "'BOGUS'"),
        (&["-S", "RTMIN+99"], "'RTMIN+99'"),
        (&["-r", "TERM"], "'TERM'"),
        (&["-r", "STOP:TERM"], "'STOP:TERM'"),
        (&["-r", "TERM:NOPE"], "'TERM:NOPE'"),
        (&["-e", "256"], "'256'"),
        (&["-p", "SIGFOO"], "'SIGFOO'"),
        (&["--log-format", "xml"], "'xml'"),
        (&["--log-level", "loud"], "'loud'"),
        (&["--no-such-flag"], "'--no-such-flag'"),
        (&["--listen", "bogus"], "'bogus'"),
        (&["--listen", "tcp6://127.0.0.1:1"], "'tcp6://127.0.0.1:1'"),
        (&["--ready", "later"], "'later'"),
        // Once a panic in PID 1 at the first stop signal (`Instant + Duration` overflowed).
        (
            &["-t", "18446744073709551615"],
            "'18446744073709551615' for '--grace-period <DURATION>': more than the maximum of 100 years",
        ),
        (&["-d", "876001h"], "'876001h'"),
        (
            &["--restart-signal", "USR2", "--ready", "after:60s"],
            "--ready after:1m must be shorter than --ready-timeout 1m",
        ),
        (
            &["--listen", "tcp://no-such-host.invalid:80"],
            "host 'no-such-host.invalid' has no IPv4 address in /etc/hosts",
        ),
        (
            &["--restart-signal", "TERM"],
            "SIGTERM cannot both stop sigward and restart the app",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::new(sigward_bin())
            .args(*args)
            .args(["--", "touch", &marker])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
        assert!(
            err.starts_with("sigward: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(
            !std::path::Path::new(&marker).exists(),
            "{args:?} started the command"
        );
    }
    let out = Command::new(sigward_bin()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no COMMAND given"));
}

#[test]
fn environment_variables_configure_like_flags() {
    let ns = Ns::start_with(&["--", "{probe}", "log={log}"], |cmd| {
        cmd.env("SIGWARD_SUCCESS_EXIT", "143")
            .env("SIGWARD_STOP_SIGNAL", "USR2,TERM")
            .env("SIGWARD_LOG_FORMAT", "json");
    });
    ns.wait_record("ready", T);
    ns.signal(libc::SIGUSR2);
    ns.wait_record(&format!("sig {} ", libc::SIGUSR2), T);
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    assert_eq!(done.code, 0);
    assert!(
        done.stderr.contains(r#""event":"stop_signal""#) && done.stderr.contains("SIGUSR2"),
        "{}",
        done.stderr
    );
    let out = Command::new(sigward_bin())
        .env("SIGWARD_GRACE_PERIOD", "soon")
        .args(["true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("sigward: SIGWARD_GRACE_PERIOD=soon: ")
    );
}

#[test]
fn help_explains_the_stop_budget_and_version_prints() {
    let out = Command::new(sigward_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for needle in [
        "--grace-period",
        "SIGWARD_GRACE_PERIOD",
        "pre-stop delay + the app's drain time",
        "terminationGracePeriodSeconds",
        "docker stop -t",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    let out = Command::new(sigward_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sigward "));
}
