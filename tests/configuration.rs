//! One configuration surface, tried as a new user would: every variable follows one rule (empty
//! is unset; a set one is always checked, flag or not; an error names the variable, never a flag
//! the user did not pass), what cannot mean anything is refused on one line (exit 2) before
//! anything starts, and the manual page is generated from the same definition as the parser.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Every variable sigward reads, its own and its peers'.
const VARIABLES: [&str; 18] = [
    "SIGWARD_GRACE_PERIOD",
    "SIGWARD_PRE_STOP_DELAY",
    "SIGWARD_STOP_SIGNAL",
    "SIGWARD_REWRITE",
    "SIGWARD_SINGLE_CHILD",
    "SIGWARD_SUCCESS_EXIT",
    "SIGWARD_LOG",
    "SIGWARD_LISTEN",
    "SIGWARD_TERMINATION_LOG",
    "SIGWARD_WATCH",
    "SIGWARD_ON_CHANGE",
    "SIGWARD_WATCH_DEBOUNCE",
    "SIGWARD_LOG_FORMAT",
    "TINI_VERBOSITY",
    "TINI_SUBREAPER",
    "TINI_KILL_PROCESS_GROUP",
    "DUMB_INIT_DEBUG",
    "DUMB_INIT_SETSID",
];

/// How sigward ended when run (not in a namespace) under `argv0` with `args`, then `touch MARKER`
/// as the command, with `env` set and the test's own SIGWARD_*, TINI_* and DUMB_INIT_* removed:
/// (exit code, stderr, whether the command ran).
fn attempt(argv0: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> (i32, String, bool) {
    let scratch = Scratch::new();
    let marker = scratch.path("started");
    let mut cmd = Command::new(argv0.unwrap_or(sigward_bin()));
    without_config_env(&mut cmd);
    let out = cmd
        .args(args)
        .args(["--", "touch", &marker])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        Path::new(&marker).exists(),
    )
}

/// A symlink named `name` to the sigward under test (only the name matters to the mode).
fn as_named(name: &str) -> (Scratch, String) {
    let dir = Scratch::new();
    let link = dir.path(name);
    std::os::unix::fs::symlink(sigward_bin(), &link).unwrap();
    (dir, link)
}

/// Exit 2, one line starting `sigward: ` and holding `needle`, and the command never ran.
fn assert_refused(what: &str, (code, stderr, ran): (i32, String, bool), needle: &str) {
    assert_eq!(code, 2, "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: not one line:\n{stderr}");
    assert!(
        stderr.starts_with("sigward: ") && stderr.contains(needle),
        "{what}: expected {needle:?} in: {stderr}"
    );
    assert!(!ran, "{what}: the command ran");
}

#[test]
fn an_empty_variable_counts_as_unset() {
    // `docker run -e VAR=` passes VAR with an empty value: as if it were not there.
    let (_dir, engine) = as_named("docker-init");
    for argv0 in [None, Some(engine.as_str())] {
        for name in VARIABLES {
            let (code, stderr, ran) = attempt(argv0, &[], &[(name, "")]);
            assert_eq!(code, 0, "{argv0:?} {name}=: {stderr}");
            assert!(ran, "{argv0:?} {name}=: the command did not run");
        }
        let all: Vec<(&str, &str)> = VARIABLES.iter().map(|&n| (n, "")).collect();
        let (code, stderr, ran) = attempt(argv0, &[], &all);
        assert!(code == 0 && ran, "{argv0:?} all empty: {stderr}");
    }
}

#[test]
fn a_bad_variable_is_named_as_the_variable_never_as_a_flag() {
    let (_dir, engine) = as_named("docker-init");
    for argv0 in [None, Some(engine.as_str())] {
        for (name, value, reason) in [
            ("SIGWARD_GRACE_PERIOD", "abc", "expected a number"),
            ("SIGWARD_PRE_STOP_DELAY", "5x", "unknown unit 'x'"),
            (
                "SIGWARD_STOP_SIGNAL",
                "TERM,KILL",
                "SIGKILL cannot be caught",
            ),
            ("SIGWARD_REWRITE", "TERM", "expected FROM:TO"),
            ("SIGWARD_SUCCESS_EXIT", "256", "256"),
            ("SIGWARD_LOG", "loud", "possible values"),
            ("SIGWARD_LOG_FORMAT", "xml", "possible values"),
            ("SIGWARD_LISTEN", "bogus", "expected tcp://"),
            (
                "SIGWARD_SINGLE_CHILD",
                "maybe",
                "possible values: true, false",
            ),
            (
                "SIGWARD_TERMINATION_LOG",
                "rel/path",
                "expected an absolute path or off",
            ),
            (
                "SIGWARD_WATCH",
                "/etc/../x",
                "a watched path cannot contain '..'",
            ),
            ("SIGWARD_WATCH_DEBOUNCE", "soon", "expected a number"),
            ("TINI_VERBOSITY", "loud", "expected a number"),
            ("DUMB_INIT_SETSID", "2", "expected 0"),
        ] {
            let what = format!("{argv0:?} {name}={value}");
            let got = attempt(argv0, &[], &[(name, value)]);
            assert_refused(
                &what,
                got.clone(),
                &format!("sigward: {name}={value}: {reason}"),
            );
            assert!(!got.1.contains("'--"), "{what} names a flag: {}", got.1);
        }
    }
}

#[test]
fn a_set_variable_is_checked_even_when_its_flag_is_given() {
    // A typo never hides behind a flag: the variable's own and the peers' alike.
    for (args, name, value) in [
        (&["-t", "5s"][..], "SIGWARD_GRACE_PERIOD", "abc"),
        (&["-d", "1s"], "SIGWARD_PRE_STOP_DELAY", "later"),
        (&["-S", "TERM"], "SIGWARD_STOP_SIGNAL", "BOGUS"),
        (&["--log-level", "warn"], "SIGWARD_LOG", "loud"),
        (&["-v"], "TINI_VERBOSITY", "loud"),
        (&["-c"], "DUMB_INIT_SETSID", "2"),
        // What the value cannot be on its own, as the flag's could not.
        (&["-t", "5s"], "SIGWARD_GRACE_PERIOD", "0"),
        (&["-r", "USR1:0"], "SIGWARD_REWRITE", "TERM:QUIT,TERM:INT"),
    ] {
        let what = format!("{args:?} {name}={value}");
        assert_refused(
            &what,
            attempt(None, args, &[(name, value)]),
            &format!("{name}={value}: "),
        );
    }
    // And the flag still wins over a good one.
    let (code, stderr, ran) = attempt(
        None,
        &["-t", "5s", "-d", "4s"],
        &[("SIGWARD_GRACE_PERIOD", "1s")],
    );
    assert!(
        code == 0 && ran,
        "the flag's 5s wins over the variable's 1s: {stderr}"
    );
}

#[test]
fn negative_durations_are_refused_naming_the_value() {
    for (args, env, needle) in [
        (&["-t", "-1s"][..], &[][..], "'-1s' for '--grace-period"),
        (&["--grace-period=-1s"], &[], "'-1s'"),
        (&["-d", "-500ms"], &[], "'-500ms' for '--pre-stop-delay"),
        (
            &["--restart-signal", "USR2", "--ready-timeout", "-5s"],
            &[],
            "'-5s' for '--ready-timeout",
        ),
        (
            &["--restart-signal", "USR2", "--ready", "after:-1s"],
            &[],
            "'after:-1s'",
        ),
        (
            &["--watch", "/tmp", "--watch-debounce", "-1s"],
            &[],
            "'-1s' for '--watch-debounce",
        ),
        (
            &[],
            &[("SIGWARD_GRACE_PERIOD", "-1s")],
            "SIGWARD_GRACE_PERIOD=-1s",
        ),
    ] {
        let what = format!("{args:?} {env:?}");
        let got = attempt(None, args, env);
        assert_refused(&what, got.clone(), needle);
        assert!(got.1.contains("negative"), "{what}: {}", got.1);
    }
}

#[test]
fn two_rewrites_of_one_signal_are_refused() {
    for (args, env) in [
        (&["-r", "TERM:QUIT", "-r", "TERM:INT"][..], &[][..]),
        (&["-r", "15:3", "-r", "SIGTERM:0"], &[]),
        (&[], &[("SIGWARD_REWRITE", "TERM:QUIT,TERM:INT")]),
    ] {
        assert_refused(
            &format!("{args:?} {env:?}"),
            attempt(None, args, env),
            "SIGTERM is rewritten twice",
        );
    }
    let (code, stderr, ran) = attempt(None, &["-r", "TERM:QUIT", "-r", "INT:QUIT"], &[]);
    assert!(code == 0 && ran, "two signals rewritten to one: {stderr}");
}

#[test]
fn options_without_the_option_they_belong_to_are_refused() {
    // --ready and --ready-timeout gate restarts; --on-change and --watch-debounce act on --watch.
    for (args, needle) in [
        (&["--ready", "after:1s"][..], "--ready needs a restart"),
        (
            &["--ready-timeout", "5s"],
            "--ready-timeout needs a restart",
        ),
        (&["--on-change", "restart"], "--on-change needs --watch"),
        (
            &["--watch-debounce", "2s"],
            "--watch-debounce needs --watch",
        ),
    ] {
        assert_refused(&format!("{args:?}"), attempt(None, args, &[]), needle);
    }
    let (code, stderr, _) = attempt(None, &[], &[("SIGWARD_ON_CHANGE", "restart")]);
    assert_eq!(code, 2, "the variable as the flag: {stderr}");
    assert!(
        stderr.contains("SIGWARD_ON_CHANGE needs --watch"),
        "{stderr}"
    );
    // With what they belong to, they run.
    for args in [
        &[
            "--restart-signal",
            "USR2",
            "--ready",
            "after:1s",
            "--ready-timeout",
            "5s",
        ][..],
        &[
            "--watch",
            "/tmp",
            "--on-change",
            "signal:USR1",
            "--watch-debounce",
            "2s",
        ],
        &["--watch", "/tmp", "--on-change", "restart"],
    ] {
        let (code, stderr, ran) = attempt(None, args, &[]);
        assert!(code == 0 && ran, "{args:?}: {stderr}");
    }
}

#[test]
fn kill_and_stop_cannot_be_what_a_change_sends() {
    for sig in ["KILL", "SIGSTOP", "9"] {
        let value = format!("signal:{sig}");
        assert_refused(
            &value,
            attempt(None, &["--watch", "/tmp", "--on-change", &value], &[]),
            &format!("'{value}' for '--on-change"),
        );
    }
}

/// The manual page, generated by `examples/manpage.rs` (built by `cargo test` as the probe is).
fn manpage() -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let debug = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = debug.join("examples").join("manpage");
    let out = Command::new(&bin).output().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `cargo test` to build the examples)",
            bin.display()
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the page is UTF-8")
}

#[test]
fn the_manual_page_is_valid_roff_naming_every_flag_and_variable() {
    let page = manpage();
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..80]
    );
    assert!(page.contains(".TH sigward 1"), "no title header");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "ENVIRONMENT",
        "EXIT STATUS",
    ] {
        assert!(
            page.contains(&format!(".SH {section}\n"))
                || page.contains(&format!(".SH \"{section}\"\n")),
            "no {section} section"
        );
    }
    let help = Command::new(sigward_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    // Every flag --help defines (its lines start with the flags: `  -t, --grace-period <DURATION>`,
    // `      --listen <ADDR>`), and every variable.
    let flags: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| l.split_whitespace().take_while(|w| w.starts_with('-')))
        .map(|w| w.trim_end_matches([',', '.']))
        .collect();
    assert!(flags.len() > 30, "{flags:?}");
    for flag in &flags {
        let roff = flag.replace('-', "\\-");
        assert!(page.contains(&roff), "the page does not name {flag}");
    }
    for name in VARIABLES {
        assert!(page.contains(name), "the page does not name {name}");
    }
    // Every request line is one roff knows; man(1) formats it without a warning where present.
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let req = line[1..].split_whitespace().next().unwrap_or("");
        assert!(
            [
                "TH", "SH", "SS", "TP", "PP", "LP", "P", "IP", "RS", "RE", "B", "I", "BR", "IR",
                "RB", "RI", "BI", "IB", "ie", "el", "nf", "fi", "br", "sp", "in", "EX", "EE", "UR",
                "UE", "\\\""
            ]
            .contains(&req),
            "unknown request: {line}"
        );
    }
    if Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let scratch = Scratch::new();
        let file = scratch.path("sigward.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", &file])
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l failed: {warnings}");
        assert!(warnings.trim().is_empty(), "man warns: {warnings}");
        assert!(
            text.contains("grace-period") && text.contains("SIGWARD_GRACE_PERIOD"),
            "{text}"
        );
    }
}
