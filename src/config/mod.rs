//! Command line and environment, validated into a [`Config`] before anything is started.
//!
//! Short flags mirror tini (`-s -g -e N -p SIG -w -v`) and dumb-init (`-c -r 15:3 -v`) so that
//! switching inits means changing only the binary name, and their environment variables
//! (`TINI_*`, `DUMB_INIT_*`) are honoured below sigward's own: flags first, then `SIGWARD_*`, then
//! the peers' variables. Run as `docker-init` or `podman-init` sigward is a container engine's
//! init: it answers `--version` in tini's format, which `docker info` parses, and its defaults
//! fit the engine's 10 s stop timeout. Every bad value is a one-line usage error (exit 2) that
//! names it; no child is ever started from a command line that did not validate. What cannot
//! mean anything is refused too (a negative duration, two rewrites of one signal, an option
//! without the one it belongs to), never silently ignored.
//!
//! The rooms: `flags` (the clap definition, shared with `--help` and the manual page), `env`
//! (every variable under one rule), `values` (what each value means); here, the [`Config`] and
//! the checks across settings.

mod env;
mod flags;
mod values;

pub use flags::escaped;
pub use values::{MAX_DURATION, fmt_duration, parse_duration};

use crate::log::{Format, Level};
use crate::os::signals::{self, SigMask};
use crate::termination;
use clap::FromArgMatches;
use clap::parser::ValueSource;
use env::{Env, Given, Peers, settle};
use flags::{Args, usage_error};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::time::Duration;

pub const USAGE_EXIT: i32 = 2;

/// `sigward --version`: the package version and the commit it was built from (see build.rs),
/// e.g. `0.1.0 (git 1a2b3c4)`, `0.1.0 (git 1a2b3c4, dirty)`, `0.1.0 (git unknown)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("SIGWARD_BUILD_GIT"),
    ")"
);

/// `--version` as a container engine's init, in tini's format, because that is what `docker info`
/// and `docker version` parse: trimmed, split on " - ", the first part must start with
/// `tini version ` and the second be `git.<commit>`; anything else shows `N/A`. The `_sigward`
/// suffix says whose init it is (catatonit does the same). The commit is always 7 characters and
/// never marked dirty: older daemons slice their own expected commit id to its length, and a
/// longer one makes `docker info` fail.
pub const ENGINE_INIT_VERSION: &str = concat!(
    "tini version ",
    env!("CARGO_PKG_VERSION"),
    "_sigward - git.",
    env!("SIGWARD_BUILD_COMMIT")
);

/// The grace period's default as an engine's init. Docker's and Podman's stop timeout defaults
/// to 10 s, after which the engine SIGKILLs the whole container without a word: with sigward's
/// usual 25 s the grace period could never fire. 8 s leaves the app most of the 10 s and sigward
/// 2 s to kill the stragglers itself, name them and exit with a meaningful status.
pub const ENGINE_INIT_GRACE_PERIOD: &str = "8s";

/// How sigward was started, from the name it was run under (`argv[0]`'s last component).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Under its own (or any other) name: sigward's defaults and version.
    Sigward,
    /// As a container engine's init: `docker-init` (Docker bind-mounts its init at
    /// /sbin/docker-init and runs `/sbin/docker-init -- CMD ARGS...`, and `docker info` runs the
    /// host's copy with `--version`) or `podman-init` (Podman's `/run/podman-init -- CMD`). The
    /// engine passes no flags, so configuration comes from the environment
    /// (`docker run -e SIGWARD_GRACE_PERIOD=...`); flags still parse if given.
    EngineInit,
}

impl Invocation {
    pub fn of(argv0: Option<&OsStr>) -> Invocation {
        let name = argv0.and_then(|a| std::path::Path::new(a).file_name());
        match name.and_then(OsStr::to_str) {
            Some("docker-init" | "podman-init") => Invocation::EngineInit,
            _ => Invocation::Sigward,
        }
    }
}

/// What sigward was asked to do, fully validated.
#[derive(Debug)]
pub struct Config {
    pub grace_period: Duration,
    pub pre_stop_delay: Duration,
    pub stop_signals: SigMask,
    /// The first of them: what a retiring generation, and leftovers when the main child exits by
    /// itself, get as their stop signal.
    pub stop_signal: i32,
    /// `rewrite[n]` is what signal n is forwarded as; 0 drops it.
    pub rewrite: [u8; signals::MAX as usize + 1],
    pub single_child: bool,
    pub success_exits: Vec<u8>,
    pub parent_death_signal: Option<i32>,
    pub warn_on_reap: bool,
    pub log_level: Level,
    pub log_format: Format,
    pub command: Vec<OsString>,
    pub listen: Vec<Listen>,
    /// Set when generations are enabled (--listen, or asked for): starts a new generation, beside
    /// the old one with sockets to hand over, else in its place.
    pub restart_signal: Option<i32>,
    pub ready: Ready,
    pub ready_timeout: Duration,
    pub termination_log: termination::Dest,
    /// Absolute paths to watch (--watch), without `.`, `..`, `//` or a trailing `/`; empty: no
    /// watching.
    pub watch: Vec<Vec<u8>>,
    pub on_change: OnChange,
    pub watch_debounce: Duration,
}

/// What a change of a watched path does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChange {
    /// Send this signal to the app, as a forwarded one (to every live generation).
    Signal(i32),
    /// Start a new generation, as the restart signal does.
    Restart,
}

/// A socket to bind and hand to every generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Its LISTEN_FDNAMES name.
    pub name: String,
    pub addr: ListenAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

pub use crate::engine::generations::Ready;

impl Config {
    /// The app may be restarted: by the restart signal, or by `--on-change restart`.
    pub fn restartable(&self) -> bool {
        self.restart_signal.is_some()
            || (!self.watch.is_empty() && self.on_change == OnChange::Restart)
    }

    /// What `sig` is forwarded as, or None when it is dropped.
    pub fn rewritten(&self, sig: i32) -> Option<i32> {
        let to = *self.rewrite.get(usize::try_from(sig).ok()?)?;
        (to != 0).then_some(i32::from(to))
    }
}

/// The clap definition the parser uses (with its `SIGWARD_*` variables), for tools such as the
/// manual page generator; [`manual`] adds the detail a reference needs.
pub fn command() -> clap::Command {
    flags::command_for(Invocation::Sigward)
}

pub use flags::manual;

/// The outcome of parsing: run with a config, or exit now with a code (help, version, bad input).
pub enum Parsed {
    Run(Box<Config>),
    Exit(i32),
}

/// Parses argv (`argv[0]` included: the name decides the [`Invocation`]) and the environment.
/// Writes help, the version or the usage error itself; a failed write changes nothing (stdio may
/// be closed, and SIGPIPE is blocked here), so this never panics.
pub fn parse(args: Vec<OsString>) -> Parsed {
    match try_parse(args) {
        Ok(cfg) => Parsed::Run(Box::new(cfg)),
        Err(Rejected::Print(e)) => {
            let _ = e.print();
            Parsed::Exit(0)
        }
        Err(Rejected::Version(line)) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            Parsed::Exit(0)
        }
        Err(Rejected::Usage(msg)) => {
            let _ = writeln!(std::io::stderr(), "sigward: {msg}");
            Parsed::Exit(USAGE_EXIT)
        }
    }
}

/// Why no config came out: help or the version line to print, or a usage error (one line, no
/// prefix).
pub enum Rejected {
    Print(clap::Error),
    Version(String),
    Usage(String),
}

/// Parses argv and the process's environment.
pub fn try_parse(args: Vec<OsString>) -> Result<Config, Rejected> {
    try_parse_with(args, &|name| std::env::var_os(name))
}

/// [`try_parse`] with the environment (sigward's variables and the peers') read through `env`.
pub(super) fn try_parse_with(args: Vec<OsString>, env: Env) -> Result<Config, Rejected> {
    use clap::error::ErrorKind;
    let invocation = Invocation::of(args.first().map(OsString::as_os_str));
    let full = flags::command_for(invocation);
    let settings = env::settings(&full, env);
    let mut command = env::without_env(full);
    let rejected = |e: clap::Error| match e.kind() {
        ErrorKind::DisplayVersion => Rejected::Version(match invocation {
            Invocation::EngineInit => ENGINE_INIT_VERSION.to_string(),
            Invocation::Sigward => format!("sigward {VERSION}"),
        }),
        // Help from the definition with its variables (`[env: SIGWARD_...]`): clap answers help
        // before it reads any variable, so this parse stops there too.
        ErrorKind::DisplayHelp => Rejected::Print(
            flags::command_for(invocation)
                .try_get_matches_from(args.iter())
                .err()
                .filter(|h| h.kind() == ErrorKind::DisplayHelp)
                .unwrap_or(e),
        ),
        ErrorKind::InvalidUtf8 => Rejected::Usage(flags::not_utf8(&args)),
        _ => Rejected::Usage(usage_error(&e)),
    };
    let mut matches = command
        .try_get_matches_from_mut(args.iter())
        .map_err(rejected)?;
    // Every variable that is set is checked, flag or not; one whose flag was not given stands in
    // for it, as its argument before the user's (a second parse, only when a variable is set).
    let mut by_variable = Vec::new();
    let mut stand_ins = Vec::new();
    for setting in &settings {
        let arg = setting.as_argument(&mut command).map_err(Rejected::Usage)?;
        if matches.value_source(setting.id.as_str()) != Some(ValueSource::CommandLine) {
            stand_ins.extend(arg);
            by_variable.push(setting);
        }
    }
    if !stand_ins.is_empty() {
        let mut argv = Vec::with_capacity(args.len() + stand_ins.len());
        argv.extend(args.first().cloned());
        argv.append(&mut stand_ins);
        argv.extend(args.iter().skip(1).cloned());
        matches = command
            .try_get_matches_from_mut(argv.iter())
            .map_err(rejected)?;
    }
    // Who gave a setting: the variable's name, the flag, or nobody (its default).
    let who = |id: &str, flag: &'static str| match by_variable.iter().find(|s| s.id == id) {
        Some(s) => Some(s.name().to_string()),
        None => {
            (matches.value_source(id) == Some(ValueSource::CommandLine)).then(|| flag.to_string())
        }
    };
    let own = Given {
        log_level: who("log_level", "--log-level").is_some(),
        single_child: who("single_child", "--single-child").is_some(),
        termination_log: who("termination_log", "--termination-log").is_some(),
        ready: who("ready", "--ready"),
        ready_timeout: who("ready_timeout", "--ready-timeout"),
        on_change: who("on_change", "--on-change"),
        watch_debounce: who("watch_debounce", "--watch-debounce"),
    };
    // `_mut` takes the values out instead of cloning every match first (a fifth of start-up's
    // parsing work).
    let args =
        Args::from_arg_matches_mut(&mut matches).map_err(|e| Rejected::Usage(usage_error(&e)))?;
    let peers = Peers::read(env).map_err(Rejected::Usage)?;
    validate(args, own, &peers).map_err(Rejected::Usage)
}

/// The checks a setting's value must pass on its own, whatever else is set: run on what is in
/// effect, and on every set variable alone (so that one a flag overrides cannot hide them).
fn check_alone(a: &Args) -> Result<(), String> {
    if a.grace_period.is_zero() {
        return Err(
            "the grace period must be more than 0 (it is the time the app gets to stop)".into(),
        );
    }
    for (i, &(from, to)) in a.rewrite.iter().enumerate() {
        // Two rewrites of one signal: which one was meant cannot be known.
        if let Some(&(_, first)) = a.rewrite[..i].iter().find(|(f, _)| *f == from) {
            let as_ = |to| match to {
                0 => "dropped".to_string(),
                to => format!("as {}", signals::Name(to)),
            };
            return Err(format!(
                "{} is rewritten twice ({}, then {}): give each signal one FROM:TO",
                signals::Name(from),
                as_(first),
                as_(to)
            ));
        }
    }
    Ok(())
}

fn validate(a: Args, own: Given, peers: &Peers) -> Result<Config, String> {
    check_alone(&a)?;
    if a.pre_stop_delay >= a.grace_period {
        return Err(format!(
            "pre-stop delay {} must be shorter than the grace period {} (the delay is spent inside it)",
            fmt_duration(a.pre_stop_delay),
            fmt_duration(a.grace_period)
        ));
    }
    // Without --listen a restart is a restart in place (the old generation stops, then the
    // command starts again): only when asked for, since HUP means "reload" to many apps.
    let restart_signal = match (a.restart_signal, a.listen.is_empty()) {
        (Some(sig), _) => Some(sig),
        (None, false) => Some(libc::SIGHUP),
        (None, true) => None,
    };
    if let Some(sig) = restart_signal.filter(|&s| a.stop_signal.contains(&s)) {
        return Err(format!(
            "{} cannot both stop sigward and restart the app",
            signals::Name(sig)
        ));
    }
    // Options that only mean something beside another are refused without it: a setting that
    // silently does nothing is a misunderstanding that would surface only in production.
    if a.watch.is_empty()
        && let Some(who) = own.on_change.as_ref().or(own.watch_debounce.as_ref())
    {
        return Err(format!(
            "{who} needs --watch: it says what a change of a watched path does"
        ));
    }
    let restartable = restart_signal.is_some() || a.on_change == OnChange::Restart;
    if !restartable && let Some(who) = own.ready.as_ref().or(own.ready_timeout.as_ref()) {
        return Err(format!(
            "{who} needs a restart (--listen, --restart-signal or --on-change restart): it says when a new generation takes over"
        ));
    }
    if let Ready::After(after) = a.ready
        && after >= a.ready_timeout
    {
        return Err(format!(
            "--ready after:{} must be shorter than --ready-timeout {} (a generation not ready by then is given up, so every restart would fail)",
            fmt_duration(after),
            fmt_duration(a.ready_timeout)
        ));
    }
    let termination_log = match a.termination_log {
        off if off == "off" => termination::Dest::Off,
        p if own.termination_log => termination::Dest::Given(p),
        p => termination::Dest::Default(p),
    };
    let mut rewrite = [0u8; signals::MAX as usize + 1];
    for (n, slot) in rewrite.iter_mut().enumerate() {
        *slot = n as u8;
    }
    for &(from, to) in &a.rewrite {
        rewrite[from as usize] = to as u8;
    }
    // -v and -q move from the base level, wherever it came from.
    let base = settle(a.log_level, own.log_level, peers.log_level);
    let level = match (a.verbose, a.quiet) {
        (0, 0) => base,
        (v, 0) => [Level::Error, Level::Warn, Level::Info, Level::Debug]
            [(base as usize + v as usize).min(3)],
        (_, q) => [Level::Error, Level::Warn, Level::Info, Level::Debug]
            [(base as usize).saturating_sub(q as usize)],
    };
    Ok(Config {
        grace_period: a.grace_period,
        pre_stop_delay: a.pre_stop_delay,
        stop_signals: SigMask::of(&a.stop_signal),
        stop_signal: a.stop_signal.first().copied().unwrap_or(libc::SIGTERM),
        rewrite,
        single_child: settle(a.single_child, own.single_child, peers.single_child),
        success_exits: a.success_exit,
        parent_death_signal: a.parent_death_signal,
        warn_on_reap: a.warn_on_reap,
        log_level: level,
        log_format: a.log_format,
        command: a.command,
        listen: a.listen,
        restart_signal,
        ready: a.ready,
        ready_timeout: a.ready_timeout,
        termination_log,
        watch: a.watch,
        on_change: a.on_change,
        watch_debounce: a.watch_debounce,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use clap::CommandFactory;
    use values::watch_path;

    pub(super) fn argv(s: &[&str]) -> Vec<OsString> {
        std::iter::once("sigward")
            .chain(s.iter().copied())
            .map(OsString::from)
            .collect()
    }

    pub(super) fn config(s: &[&str]) -> Config {
        match parse(argv(s)) {
            Parsed::Run(c) => *c,
            Parsed::Exit(code) => panic!("exit {code} for {s:?}"),
        }
    }

    #[test]
    fn termination_log_default_given_and_off() {
        // The environment may carry SIGWARD_TERMINATION_LOG where the tests run: only flags here.
        let dest = |a: &[&str]| {
            let m = Args::command().try_get_matches_from(argv(a)).unwrap();
            let given = m.value_source("termination_log") == Some(ValueSource::CommandLine);
            let own = Given {
                termination_log: given,
                ..Given::default()
            };
            let args = Args::from_arg_matches(&m).unwrap();
            validate(args, own, &Peers::default())
                .unwrap()
                .termination_log
        };
        if std::env::var_os("SIGWARD_TERMINATION_LOG").is_none() {
            assert_eq!(
                dest(&["app"]),
                termination::Dest::Default("/dev/termination-log".into())
            );
        }
        assert_eq!(
            dest(&["--termination-log", "/tmp/t", "app"]),
            termination::Dest::Given("/tmp/t".into())
        );
        assert_eq!(
            dest(&["--termination-log", "off", "app"]),
            termination::Dest::Off
        );
        assert!(matches!(
            try_parse(argv(&["--termination-log", "rel/path", "app"])),
            Err(Rejected::Usage(m)) if m.contains("'rel/path'") && m.contains("absolute path or off")
        ));
    }

    #[test]
    fn a_grace_period_above_the_maximum_is_a_usage_error_naming_it() {
        // Once a panic in PID 1 (`Instant + Duration` overflowed at the first stop signal).
        let msg = rejected(&["-t", "18446744073709551615", "app"]).unwrap();
        assert_eq!(
            msg,
            "invalid value '18446744073709551615' for '--grace-period <DURATION>': more than the maximum of 100 years (876000h) (see --help)"
        );
        for flag in ["-d", "--ready-timeout"] {
            let msg = rejected(&[flag, "876001h", "app"]).unwrap();
            assert!(
                msg.contains("'876001h'") && msg.contains("100 years"),
                "{msg}"
            );
        }
        let msg = rejected(&["--ready", "after:876001h", "app"]).unwrap();
        assert!(
            msg.contains("'after:876001h'") && msg.contains("100 years"),
            "{msg}"
        );
        let c = config(&[
            "-t",
            "876000h",
            "-d",
            "875999h",
            "--ready-timeout",
            "876000h",
            "--restart-signal",
            "USR2",
            "app",
        ]);
        assert_eq!(c.grace_period, MAX_DURATION);
        assert_eq!(c.ready_timeout, MAX_DURATION);
    }

    #[test]
    fn ready_after_must_be_shorter_than_the_ready_timeout() {
        for (args, both) in [
            (
                &["--ready", "after:60s"][..],
                ("after:1m", "--ready-timeout 1m"),
            ),
            (
                &["--ready", "after:5s", "--ready-timeout", "2s"],
                ("after:5s", "--ready-timeout 2s"),
            ),
        ] {
            let args: Vec<&str> = (args.iter().copied())
                .chain(["--restart-signal", "USR2", "app"])
                .collect();
            let msg = rejected(&args).unwrap();
            assert!(msg.contains(both.0) && msg.contains(both.1), "{msg}");
            assert!(matches!(parse(argv(&args)), Parsed::Exit(USAGE_EXIT)));
        }
        let c = config(&[
            "--ready",
            "after:59s",
            "--listen",
            "tcp://127.0.0.1:0",
            "app",
        ]);
        assert_eq!(c.ready, Ready::After(Duration::from_secs(59)));
    }

    #[test]
    fn restart_signal_without_listen_means_a_restart_in_place_and_is_never_a_default() {
        let c = config(&["--restart-signal", "USR2", "app"]);
        assert_eq!(c.restart_signal, Some(libc::SIGUSR2));
        assert!(c.listen.is_empty());
        assert_eq!(config(&["app"]).restart_signal, None, "HUP is the app's");
        let msg = rejected(&["--restart-signal", "INT", "app"]).unwrap();
        assert!(
            msg.contains("SIGINT cannot both stop sigward and restart"),
            "{msg}"
        );
    }

    #[test]
    fn tini_command_line_is_accepted() {
        let c = config(&[
            "-s", "-g", "-e", "143", "-p", "SIGKILL", "-w", "-v", "--", "app", "-x",
        ]);
        assert_eq!(c.success_exits, vec![143]);
        assert_eq!(c.parent_death_signal, Some(libc::SIGKILL));
        assert!(c.warn_on_reap);
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(c.command, argv(&["app", "-x"])[1..]);
    }

    #[test]
    fn dumb_init_command_line_is_accepted() {
        let c = config(&["-c", "-r", "15:3", "-r", "USR1:0", "sh", "-c", "x"]);
        assert!(c.single_child);
        assert_eq!(c.rewritten(15), Some(3));
        assert_eq!(c.rewritten(libc::SIGUSR1), None);
        assert_eq!(c.rewritten(libc::SIGHUP), Some(libc::SIGHUP));
        assert_eq!(c.command, argv(&["sh", "-c", "x"])[1..]);
    }

    #[test]
    fn defaults() {
        let c = config(&["app"]);
        assert_eq!(c.grace_period, Duration::from_secs(25));
        assert_eq!(c.pre_stop_delay, Duration::ZERO);
        assert_eq!(c.stop_signals, SigMask::of(&[libc::SIGTERM, libc::SIGINT]));
        assert!(!c.single_child);
    }

    #[test]
    fn watch_paths_are_absolute_split_on_colons_and_act_with_sighup_after_1s_by_default() {
        let c = config(&["app"]);
        assert!(c.watch.is_empty());
        assert_eq!(c.on_change, OnChange::Signal(libc::SIGHUP));
        assert_eq!(c.watch_debounce, Duration::from_secs(1));
        let c = config(&[
            "--watch",
            "/etc/a:/etc/b/",
            "--watch",
            "rel/c",
            "--on-change",
            "signal:USR1",
            "--watch-debounce",
            "250ms",
            "app",
        ]);
        let cwd = std::env::current_dir().unwrap();
        let rel = cwd.join("rel/c");
        assert_eq!(
            c.watch,
            vec![
                b"/etc/a".to_vec(),
                b"/etc/b".to_vec(),
                rel.as_os_str().as_encoded_bytes().to_vec()
            ]
        );
        assert_eq!(watch_path(b"//etc/./a//b/"), Ok(b"/etc/a/b".to_vec()));
        assert_eq!(watch_path(b"/"), Ok(b"/".to_vec()));
        assert_eq!(watch_path(b"/./"), Ok(b"/".to_vec()));
        assert_eq!(c.on_change, OnChange::Signal(libc::SIGUSR1));
        assert_eq!(c.watch_debounce, Duration::from_millis(250));
        let c = config(&[
            "--listen",
            "tcp://127.0.0.1:0",
            "--watch",
            "/x",
            "--on-change",
            "restart",
            "app",
        ]);
        assert_eq!(c.on_change, OnChange::Restart);
    }

    #[test]
    fn bad_watch_settings_are_one_line_usage_errors_naming_the_value() {
        let e = rejected(&["--watch", "/etc/../x", "app"]).unwrap();
        assert!(e.contains("'/etc/../x'") && e.contains("'..'"), "{e}");
        let e = rejected(&["--watch", "/a::/b", "app"]).unwrap();
        assert!(e.contains("empty path"), "{e}");
        let e = rejected(&["--watch", "/x", "--on-change", "reload", "app"]).unwrap();
        assert!(e.contains("'reload'") && e.contains("signal:SIG"), "{e}");
        let e = rejected(&["--watch", "/x", "--on-change", "signal:NOPE", "app"]).unwrap();
        assert!(e.contains("'signal:NOPE'"), "{e}");
        let e = rejected(&["--watch", "/x", "--watch-debounce", "1x", "app"]).unwrap();
        assert!(e.contains("'1x'") && e.contains("unknown unit"), "{e}");
        let e = rejected(&["--watch", "/x", "--watch-debounce", "876000h1ms", "app"]).unwrap();
        assert!(e.contains("maximum of 100 years"), "{e}");
    }

    pub(super) fn rejected(args: &[&str]) -> Option<String> {
        match try_parse(argv(args)) {
            Err(Rejected::Usage(msg)) => Some(msg),
            _ => None,
        }
    }

    /// Parses `argv0 ARGS...` with the peers' variables taken from `vars` only.
    pub(super) fn parse_as(
        argv0: &str,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> Result<Config, String> {
        let argv = std::iter::once(argv0)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        match try_parse_with(argv, &env) {
            Ok(c) => Ok(c),
            Err(Rejected::Usage(msg)) => Err(msg),
            Err(Rejected::Version(line)) => Err(format!("version: {line}")),
            Err(Rejected::Print(e)) => Err(format!("printed: {e}")),
        }
    }

    pub(super) fn with_env(args: &[&str], vars: &[(&str, &str)]) -> Config {
        parse_as("sigward", args, vars).unwrap_or_else(|e| panic!("{args:?} {vars:?}: {e}"))
    }

    /// Docker's parse of `<init> --version` (moby's parseInitVersion): the version and the commit,
    /// either of which may be missing; both missing is `N/A`.
    fn docker_parse(out: &str) -> (Option<&str>, Option<&str>) {
        let parts: Vec<&str> = out.trim().split(" - ").collect();
        let commit = parts
            .get(1)
            .map(|p| p.split('.').collect::<Vec<_>>())
            .filter(|g| g.len() == 2 && g[0] == "git")
            .map(|g| g[1]);
        let version = parts[0].strip_prefix("tini version ");
        (version, commit)
    }

    #[test]
    fn the_name_decides_whether_sigward_is_an_engines_init() {
        for name in [
            "docker-init",
            "/sbin/docker-init",
            "/usr/libexec/docker/docker-init",
            "./docker-init",
            "podman-init",
            "/run/podman-init",
            "/usr/libexec/podman/podman-init",
        ] {
            let argv0 = OsString::from(name);
            assert_eq!(
                Invocation::of(Some(&argv0)),
                Invocation::EngineInit,
                "{name}"
            );
        }
        for name in [
            "sigward",
            "/usr/local/bin/sigward",
            "tini",
            "docker-init.bak",
            "/sbin/docker-init-real",
            "docker",
            "/docker-init/sigward",
            "",
        ] {
            let argv0 = OsString::from(name);
            assert_eq!(Invocation::of(Some(&argv0)), Invocation::Sigward, "{name}");
        }
        assert_eq!(Invocation::of(None), Invocation::Sigward);
    }

    #[test]
    fn version_lines() {
        let commit = env!("SIGWARD_BUILD_COMMIT");
        assert_eq!(commit.len(), 7, "{commit}");
        assert!(
            commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{commit}"
        );
        for engine in ["/sbin/docker-init", "/run/podman-init"] {
            for flag in ["--version", "-V"] {
                let line = parse_as(engine, &[flag], &[]).unwrap_err();
                assert_eq!(line, format!("version: {ENGINE_INIT_VERSION}"));
            }
        }
        assert_eq!(
            ENGINE_INIT_VERSION,
            format!(
                "tini version {}_sigward - git.{commit}",
                env!("CARGO_PKG_VERSION")
            )
        );
        let version = format!("{}_sigward", env!("CARGO_PKG_VERSION"));
        assert_eq!(
            docker_parse(&format!("{ENGINE_INIT_VERSION}\n")),
            (Some(version.as_str()), Some(commit))
        );
        let own = parse_as("sigward", &["--version"], &[]).unwrap_err();
        assert_eq!(own, format!("version: sigward {VERSION}"));
        assert!(
            own.starts_with(&format!(
                "version: sigward {} (git {commit}",
                env!("CARGO_PKG_VERSION")
            )),
            "{own}"
        );
        assert_eq!(
            docker_parse(&own).1,
            None,
            "sigward's own line is not tini's"
        );
    }

    #[test]
    fn docker_parse_is_moby_s() {
        assert_eq!(
            docker_parse("tini version 0.19.0 - git.de40ad0\n"),
            (Some("0.19.0"), Some("de40ad0"))
        );
        assert_eq!(
            docker_parse("tini version 0.1.7_catatonit\n"),
            (Some("0.1.7_catatonit"), None)
        );
        assert_eq!(docker_parse("sigward 0.1.0 (git 1a2b3c4)"), (None, None));
    }

    #[test]
    fn as_an_engines_init_the_grace_period_defaults_to_8s_and_flags_still_apply() {
        for engine in ["/sbin/docker-init", "/run/podman-init", "podman-init"] {
            let c = parse_as(engine, &["--", "app"], &[]).unwrap();
            assert_eq!(c.grace_period, Duration::from_secs(8), "{engine}");
            assert_eq!(c.pre_stop_delay, Duration::ZERO);
            assert_eq!(c.stop_signals, SigMask::of(&[libc::SIGTERM, libc::SIGINT]));
            assert!(!c.single_child);
            assert_eq!(c.log_level, Level::Info);
            assert_eq!(c.command, [OsString::from("app")]);
            let c = parse_as(engine, &["-t", "3s", "app"], &[]).unwrap();
            assert_eq!(c.grace_period, Duration::from_secs(3));
        }
        assert_eq!(
            with_env(&["app"], &[]).grace_period,
            Duration::from_secs(25),
            "sigward's own default is unchanged"
        );
        // The delay is checked against the mode's default.
        let msg = parse_as("/sbin/docker-init", &["-d", "9s", "app"], &[]).unwrap_err();
        assert_eq!(
            msg,
            "pre-stop delay 9s must be shorter than the grace period 8s (the delay is spent inside it)"
        );
    }

    mod hostile_input {
        use super::*;
        use proptest::prelude::*;

        const VALUED: [&str; 11] = [
            "--listen",
            "--ready",
            "--ready-timeout",
            "--grace-period",
            "--pre-stop-delay",
            "--stop-signal",
            "--rewrite",
            "--success-exit",
            "--parent-death-signal",
            "--log-format",
            "--log-level",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]


            #[test]
            fn a_rejected_value_gives_one_line_that_names_it(flag in prop::sample::select(VALUED.to_vec()), value in "[^,]*") {
                let arg = format!("{flag}={value}");
                if let Some(msg) = rejected(&[&arg, "app"]) {
                    prop_assert!(!msg.contains('\n') && !msg.contains('\r'), "not one line: {msg:?}");
                    if msg.starts_with("invalid value") {
                        prop_assert!(msg.contains(&format!("'{}'", escaped(&value))), "{msg} does not name {value:?}");
                    }
                }
            }

            #[test]
            fn any_command_line_parses_or_is_rejected_on_one_line(args in prop::collection::vec(".*", 0..6)) {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                if let Some(msg) = rejected(&args) {
                    prop_assert!(!msg.contains('\n'), "not one line: {msg:?}");
                }
            }
        }
    }

    #[test]
    fn two_rewrites_of_one_signal_are_refused_naming_it() {
        let msg = rejected(&["-r", "TERM:QUIT", "-r", "TERM:INT", "app"]).unwrap();
        assert_eq!(
            msg,
            "SIGTERM is rewritten twice (as SIGQUIT, then as SIGINT): give each signal one FROM:TO"
        );
        let msg = rejected(&["-r", "15:0", "-r", "TERM:TERM", "app"]).unwrap();
        assert!(msg.contains("(dropped, then as SIGTERM)"), "{msg}");
        let c = config(&["-r", "TERM:QUIT", "-r", "INT:QUIT", "-r", "QUIT:0", "app"]);
        assert_eq!(c.rewritten(libc::SIGTERM), Some(libc::SIGQUIT));
        assert_eq!(c.rewritten(libc::SIGQUIT), None);
    }

    #[test]
    fn options_without_the_option_they_belong_to_are_refused_naming_who_gave_them() {
        for (args, msg) in [
            (&["--ready", "notify"][..], "--ready needs a restart"),
            (
                &["--ready-timeout", "5s"],
                "--ready-timeout needs a restart",
            ),
            (&["--on-change", "signal:HUP"], "--on-change needs --watch"),
            (
                &["--watch-debounce", "1s"],
                "--watch-debounce needs --watch",
            ),
            (
                &["--ready", "notify", "--on-change", "restart"],
                "--on-change needs --watch",
            ),
        ] {
            let args: Vec<&str> = args.iter().copied().chain(["app"]).collect();
            let got = rejected(&args).unwrap_or_default();
            assert!(got.starts_with(msg), "{args:?}: {got}");
        }
        let got = parse_as("sigward", &["app"], &[("SIGWARD_WATCH_DEBOUNCE", "2s")]).unwrap_err();
        assert!(
            got.starts_with("SIGWARD_WATCH_DEBOUNCE needs --watch"),
            "{got}"
        );
        // With what they belong to: a restart signal, --listen, or --on-change restart.
        for args in [
            &["--restart-signal", "USR2", "--ready", "after:1s"][..],
            &["--listen", "tcp://127.0.0.1:0", "--ready-timeout", "5s"],
            &[
                "--watch",
                "/x",
                "--on-change",
                "restart",
                "--ready",
                "after:1s",
            ],
            &["--watch", "/x", "--watch-debounce", "5s"],
        ] {
            let args: Vec<&str> = args.iter().copied().chain(["app"]).collect();
            assert!(rejected(&args).is_none(), "{args:?}");
        }
    }

    #[test]
    fn negative_durations_and_kill_or_stop_on_change_are_refused() {
        for args in [
            &["-t", "-1s"][..],
            &["-d", "-1"],
            &["--restart-signal", "USR2", "--ready-timeout", "-5s"],
            &["--restart-signal", "USR2", "--ready", "after:-1s"],
            &["--watch", "/x", "--watch-debounce", "-1ms"],
        ] {
            let args: Vec<&str> = args.iter().copied().chain(["app"]).collect();
            let msg = rejected(&args).unwrap_or_default();
            assert!(
                msg.contains("a duration cannot be negative"),
                "{args:?}: {msg}"
            );
        }
        for sig in ["KILL", "STOP", "SIGKILL", "19"] {
            let value = format!("signal:{sig}");
            let msg = rejected(&["--watch", "/x", "--on-change", &value, "app"]).unwrap();
            assert!(msg.contains("can never ask the app to reload"), "{msg}");
        }
    }

    #[test]
    fn a_value_that_is_not_utf8_is_named() {
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        let refused = |args: Vec<OsString>| match try_parse_with(args, &|_| None) {
            Err(Rejected::Usage(msg)) => msg,
            _ => panic!("not refused"),
        };
        let mut args = argv(&["-t"]);
        args.extend([bytes(b"5\xffs"), "app".into()]);
        assert_eq!(
            refused(args),
            "invalid value '5\\xffs' for '-t': not UTF-8 (only --watch and the command take any bytes) (see --help)"
        );
        let mut args = argv(&[]);
        args.extend([bytes(b"--grace-period=\xff"), "app".into()]);
        let msg = refused(args);
        assert!(
            msg.starts_with("invalid argument '--grace-period=\\xff': not UTF-8"),
            "{msg}"
        );
        // A --watch path may be any bytes: the bad value is the one after it.
        let mut args = argv(&["--watch"]);
        args.extend([
            bytes(b"/a\xff"),
            bytes(b"--grace-period=\xfe"),
            "app".into(),
        ]);
        let msg = refused(args);
        assert!(
            msg.starts_with("invalid argument '--grace-period=\\xfe': not UTF-8"),
            "{msg}"
        );
        let msg = match try_parse_with(argv(&["app"]), &|n| {
            (n == "SIGWARD_GRACE_PERIOD").then(|| bytes(b"5\xffs"))
        }) {
            Err(Rejected::Usage(msg)) => msg,
            _ => panic!("not refused"),
        };
        assert!(
            msg.starts_with("SIGWARD_GRACE_PERIOD=5\u{fffd}s: not UTF-8"),
            "{msg}"
        );
    }

    #[test]
    fn values_with_newlines_are_named_on_one_line() {
        let msg = rejected(&["--grace-period=5\nx", "app"]).unwrap();
        assert_eq!(
            msg,
            "invalid value '5\\nx' for '--grace-period <DURATION>': unknown unit '\\nx' (use ms, s, m or h) (see --help)"
        );
        let msg = rejected(&["--no\nsuch", "app"]).unwrap();
        assert!(
            msg.starts_with("unexpected argument '--no\\nsuch'"),
            "{msg}"
        );
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for bad in [
            &["-t", "5x", "app"][..],
            &["-S", "KILL", "app"],
            &["-r", "STOP:TERM", "app"],
            &["-r", "TERM", "app"],
            &["-d", "30s", "-t", "30s", "app"],
            &["-t", "18446744073709551615", "app"],
            &["--ready", "after:1m", "app"],
            &["--listen", "tcp://no-such-host.invalid:80", "app"],
            &["-e", "300", "app"],
            &["--log-format", "xml", "app"],
            &[],
            &["--nope", "app"],
        ] {
            assert!(
                matches!(parse(argv(bad)), Parsed::Exit(USAGE_EXIT)),
                "{bad:?}"
            );
        }
    }
}
