//! Drop-in compatibility: sigward as Docker's and Podman's init (run as `docker-init` /
//! `podman-init`, configured from the environment alone), and tini's and dumb-init's environment
//! variables, each with the precedence the README documents (flags, then SIGWARD_*, then theirs).
mod common;
use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A scratch dir holding a symlink named `name` to the sigward under test, as an engine runs it
/// (/sbin/docker-init is a bind mount of the host's docker-init; only the name matters).
fn as_named(name: &str) -> (Scratch, String) {
    let dir = Scratch::new();
    let link = dir.path(name);
    std::os::unix::fs::symlink(sigward_bin(), &link).unwrap();
    (dir, link)
}

/// How moby parses `<init> --version` for `docker info` / `docker version`: trimmed, split on
/// " - "; the first part must start with `tini version `, the second be `git.<commit>` (split on
/// '.', exactly two parts). Returns (version, commit); Docker shows N/A when neither is there.
fn docker_parse(stdout: &str) -> (Option<String>, Option<String>) {
    let parts: Vec<&str> = stdout.trim().split(" - ").collect();
    let version = parts[0]
        .trim()
        .strip_prefix("tini version ")
        .map(String::from);
    let commit = parts.get(1).and_then(|p| {
        let git: Vec<&str> = p.trim().split('.').collect();
        (git.len() == 2 && git[0] == "git").then(|| git[1].to_string())
    });
    (version, commit)
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// `sigward ARGS` (not in a namespace) with `env` set and every SIGWARD_*, TINI_* and DUMB_INIT_*
/// variable of the test's own environment removed.
fn sigward_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(sigward_bin());
    without_config_env(&mut cmd);
    output(cmd.args(args).envs(env.iter().copied()))
}

/// The commit the tested binary should name: HEAD of this checkout, when the binary is the one
/// cargo built from it and git can say.
fn expected_commit() -> Option<String> {
    if std::env::var_os("SIGWARD_BIN").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    if !std::path::Path::new(root).join(".git").exists() {
        return None;
    }
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .output()
        .ok()?;
    let hash = String::from_utf8(out.stdout).ok()?;
    Some(hash.trim().get(..7)?.to_string())
}

#[test]
fn as_docker_init_or_podman_init_version_is_what_docker_info_parses() {
    let (_, own, _) = sigward_env(&["--version"], &[]);
    for name in ["docker-init", "podman-init"] {
        let (_dir, init) = as_named(name);
        let (code, stdout, stderr) = output(Command::new(&init).arg("--version"));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(stderr, "", "{name}");
        assert_eq!(stdout.lines().count(), 1, "{name}: {stdout:?}");
        let (version, commit) = docker_parse(&stdout);
        let version = version.unwrap_or_else(|| panic!("{name}: no tini version in {stdout:?}"));
        let commit = commit.unwrap_or_else(|| panic!("{name}: no git.<commit> in {stdout:?}"));
        assert_eq!(version, format!("{}_sigward", env!("CARGO_PKG_VERSION")));
        // Older daemons slice their expected commit id (7 characters) to this length.
        assert_eq!(commit.len(), 7, "{commit}");
        assert!(
            commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{commit}"
        );
        assert_eq!(
            stdout,
            format!(
                "tini version {}_sigward - git.{commit}\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(
            own.contains(&format!("(git {commit}")),
            "same commit as sigward's own line: {own}"
        );
        if let Some(head) = expected_commit() {
            assert_eq!(commit, head);
        }
    }
}

#[test]
fn plain_sigward_version_names_the_commit() {
    let (code, stdout, _) = sigward_env(&["--version"], &[]);
    assert_eq!(code, 0);
    let rest = stdout
        .strip_prefix(&format!("sigward {} (git ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{stdout:?}"));
    let (commit, tail) = rest.split_at(7.min(rest.len()));
    assert!(
        tail == ")\n" || tail == ", dirty)\n",
        "{stdout:?}: after the commit"
    );
    assert!(
        commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{stdout:?}"
    );
    if let Some(head) = expected_commit() {
        assert_eq!(commit, head, "{stdout:?}");
    }
    assert_eq!(
        docker_parse(&stdout),
        (None, None),
        "not tini's format under its own name"
    );
}

#[test]
fn as_an_engines_init_the_grace_period_defaults_to_8s() {
    for name in ["docker-init", "podman-init"] {
        let (_dir, init) = as_named(name);
        // As the engine runs it: `/sbin/docker-init -- CMD`, no other flags.
        let done = stopped_when_ready(Ns::pid1(&[&init, "--", "{probe}", "log={log}"], |_| {}));
        done.assert_said("stopping, grace period 8s\n");
        assert_eq!(done.code, 143, "{name}: {}", done.stderr);
    }
    // Under its own name, sigward's default stays.
    stopped_when_ready(Ns::start(&["--", "{probe}", "log={log}"]))
        .assert_said("stopping, grace period 25s\n");
}

/// The probe under `ns`, stopped with SIGTERM once it is ready.
fn stopped_when_ready(ns: Ns) -> Done {
    ns.wait_record("ready", T);
    ns.stop(T)
}

#[test]
fn as_an_engines_init_configuration_comes_from_the_environment() {
    // `docker run --init -e SIGWARD_GRACE_PERIOD=1s`: the engine passes no flags, the variable
    // reaches the init; an app that ignores SIGTERM is killed at 1 s, not at the mode's 8 s.
    let (_dir, init) = as_named("docker-init");
    let ns = Ns::pid1(
        &[&init, "--", "{probe}", "log={log}", "on-term=ignore"],
        |cmd| {
            cmd.env("SIGWARD_GRACE_PERIOD", "1s");
        },
    );
    ns.wait_record("ready", T);
    let start = Instant::now();
    ns.signal(libc::SIGTERM);
    let done = ns.wait(T);
    let took = start.elapsed();
    assert_eq!(done.code, 137, "{}", done.stderr);
    assert!(
        done.stderr.contains("stopping, grace period 1s\n")
            && done.stderr.contains("grace period of 1s is over"),
        "{}",
        done.stderr
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "killed after {took:?}"
    );
    // And a bad value there is a usage error, as under sigward's own name.
    let (code, _, stderr) = output(
        Command::new(&init)
            .env("SIGWARD_GRACE_PERIOD", "soon")
            .args(["--", "true"]),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("sigward: SIGWARD_GRACE_PERIOD=soon: "),
        "{stderr}"
    );
}

#[test]
fn tini_verbosity_sets_the_log_level() {
    // 0 errors, 1 warnings, 2 info, 3 debug. A clean run logs its exit at info and its start at
    // debug.
    for (value, started, exited) in [
        ("0", false, false),
        ("1", false, false),
        ("2", false, true),
        ("3", true, true),
    ] {
        let (code, _, stderr) = sigward_env(&["true"], &[("TINI_VERBOSITY", value)]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            stderr.contains("started true"),
            started,
            "{value}: {stderr}"
        );
        assert_eq!(
            stderr.contains("exited with status 0"),
            exited,
            "{value}: {stderr}"
        );
    }
    // SIGWARD_LOG and --log-level win over it; -v moves from it.
    let (_, _, stderr) = sigward_env(
        &["true"],
        &[("TINI_VERBOSITY", "1"), ("SIGWARD_LOG", "debug")],
    );
    assert!(stderr.contains("started true"), "{stderr}");
    let (_, _, stderr) = sigward_env(&["--log-level", "warn", "true"], &[("TINI_VERBOSITY", "3")]);
    assert!(!stderr.contains("exited with"), "{stderr}");
    let (_, _, stderr) = sigward_env(&["-v", "true"], &[("TINI_VERBOSITY", "1")]);
    assert!(
        stderr.contains("exited with status 0") && !stderr.contains("started true"),
        "{stderr}"
    );
}

#[test]
fn dumb_init_debug_is_verbose() {
    let (code, _, stderr) = sigward_env(&["true"], &[("DUMB_INIT_DEBUG", "1")]);
    assert_eq!(code, 0);
    assert!(stderr.contains("started true"), "{stderr}");
    let (_, _, stderr) = sigward_env(&["true"], &[("DUMB_INIT_DEBUG", "0")]);
    assert!(
        !stderr.contains("started true") && stderr.contains("exited with status 0"),
        "{stderr}"
    );
    let (_, _, stderr) = sigward_env(
        &["true"],
        &[("DUMB_INIT_DEBUG", "1"), ("SIGWARD_LOG", "info")],
    );
    assert!(
        !stderr.contains("started true"),
        "SIGWARD_LOG wins: {stderr}"
    );
}

/// Runs the app `sh -c 'probe log=worker & exec probe log=main'` under sigward as PID 1 with
/// `env`: both in the app's process group, the worker a child of the main process. Sends SIGTERM
/// and asserts whether the worker got it too (`expected`), while the main process (which records
/// and stays) was still running.
fn worker_gets_term(args: &[&str], env: &[(&str, &str)], expected: bool) {
    let script = "{probe} log={dir}worker on-term=stay & exec {probe} log={log} on-term=stay";
    let argv: Vec<&str> = args.iter().copied().chain(["sh", "-c", script]).collect();
    let ns = Ns::start_with(&argv, |cmd| {
        cmd.envs(env.iter().copied());
    });
    let worker = ns.dir.path("worker");
    ns.wait_record("ready", T);
    wait_line(&worker, "ready", T);
    ns.signal(libc::SIGTERM);
    ns.wait_record(&format!("sig {} ", libc::SIGTERM), T);
    // The group is signalled in one kill(2), so the worker has the signal by the time the main
    // process recorded it; it may take a moment to record it too. Absence is judged after 500 ms.
    let wait = if expected {
        T
    } else {
        Duration::from_millis(500)
    };
    let got = eventually(
        wait,
        || {
            std::fs::read_to_string(&worker)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&format!("sig {} ", libc::SIGTERM)))
        },
        |&got| got,
    );
    assert_eq!(got, expected, "{args:?} {env:?}: worker got SIGTERM");
}

#[test]
fn dumb_init_setsid_0_signals_only_the_child() {
    // By default the whole process group; DUMB_INIT_SETSID=0 is -c; SIGWARD_SINGLE_CHILD wins.
    worker_gets_term(&[], &[], true);
    worker_gets_term(&[], &[("DUMB_INIT_SETSID", "0")], false);
    worker_gets_term(&[], &[("DUMB_INIT_SETSID", "1")], true);
    worker_gets_term(
        &[],
        &[("DUMB_INIT_SETSID", "0"), ("SIGWARD_SINGLE_CHILD", "false")],
        true,
    );
    worker_gets_term(&["-c"], &[("DUMB_INIT_SETSID", "1")], false);
}

#[test]
fn tini_kill_process_group_is_accepted_and_the_group_is_signalled() {
    worker_gets_term(&[], &[("TINI_KILL_PROCESS_GROUP", "1")], true);
    // tini only checks that it is set; any value is accepted.
    let (code, _, stderr) = sigward_env(&["true"], &[("TINI_KILL_PROCESS_GROUP", "whatever")]);
    let stderr = without_qemu_subreaper_warning(&stderr);
    assert_eq!((code, stderr.contains("warning")), (0, false), "{stderr}");
}

#[test]
fn tini_subreaper_is_accepted_and_orphans_come_to_sigward() {
    if skip_without_subreaper() {
        return;
    }
    // Not as PID 1: the app's shell leaves an orphan (that ignores SIGTERM); with TINI_SUBREAPER
    // set, as always, it is re-parented to sigward, not to the host's init.
    let scratch = Scratch::new();
    let orphan_log = scratch.path("orphan");
    // The shell waits for the orphan to be ready: sigward sends leftovers SIGTERM as soon as the
    // shell exits, which would kill a probe that has not yet set SIGTERM to ignored.
    let script = format!(
        "{} log={orphan_log} on-term=ignore & until grep -q ^ready {orphan_log} 2>/dev/null; do sleep 0.02; done",
        probe()
    );
    let mut sigward = Command::new(sigward_bin())
        .args(["-t", "2s", "--", "sh", "-c", &script])
        .env("TINI_SUBREAPER", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = wait_line(&orphan_log, "start", T);
    wait_line(&orphan_log, "ready", T);
    let orphan: i32 = field(&start, "pid").parse().unwrap();
    let ppid = eventually(
        Duration::from_secs(5),
        || {
            std::fs::read_to_string(format!("/proc/{orphan}/stat"))
                .ok()
                .and_then(|s| {
                    s[s.rfind(')')? + 2..]
                        .split(' ')
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
        },
        |p| *p == Some(sigward.id()),
    );
    assert_eq!(ppid, Some(sigward.id()), "{start}");
    // sigward kills the orphan at its grace period and exits with the shell's status.
    let status = sigward.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        !std::path::Path::new(&format!("/proc/{orphan}")).exists(),
        "the orphan was killed and reaped"
    );
}

#[test]
fn bad_values_of_the_peers_variables_are_usage_errors_naming_them() {
    let scratch = Scratch::new();
    let marker = scratch.path("started");
    for (name, value) in [
        ("TINI_VERBOSITY", "loud"),
        ("TINI_VERBOSITY", "-1"),
        ("DUMB_INIT_DEBUG", "yes"),
        ("DUMB_INIT_SETSID", "2"),
        ("DUMB_INIT_SETSID", "0\nx"),
    ] {
        let (code, stdout, stderr) = sigward_env(&["touch", &marker], &[(name, value)]);
        assert_eq!(code, 2, "{name}={value:?}: {stderr}");
        assert_eq!(stdout, "");
        assert_eq!(stderr.lines().count(), 1, "{name}={value:?}: {stderr}");
        let shown = value.replace('\n', "\\n");
        assert!(
            stderr.starts_with(&format!("sigward: {name}={shown}: ")),
            "{stderr}"
        );
        assert!(
            !std::path::Path::new(&marker).exists(),
            "{name}={value:?} started the command"
        );
    }
    // Empty means unset (`docker run -e VAR=`).
    for name in ["TINI_VERBOSITY", "DUMB_INIT_DEBUG", "DUMB_INIT_SETSID"] {
        let (code, _, stderr) = sigward_env(&["true"], &[(name, "")]);
        assert_eq!(code, 0, "{name}: {stderr}");
    }
}
