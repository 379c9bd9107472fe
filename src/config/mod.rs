//! Command line and environment, validated into a [`Config`] before anything is started.
//!
//! Short flags mirror tini (`-s -g -e N -p SIG -w -v`) and dumb-init (`-c -r 15:3 -v`) so that
//! switching inits means changing only the binary name, and their environment variables
//! (`TINI_*`, `DUMB_INIT_*`) are honoured below sigward's own: flags first, then `SIGWARD_*`, then
//! the peers' variables. Run as `docker-init` or `podman-init` sigward is a container engine's
//! init: it answers `--version` in tini's format, which `docker info` parses, and its defaults
//! fit the engine's 10 s stop timeout. Every bad value is a one-line usage error (exit 2) that
//! names it; no child is ever started from a command line that did not validate.

use crate::log::{Format, Level};
use crate::os::signals::{self, SigMask};
use crate::termination;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// How sigward was started, from the name it was run under (argv[0]'s last component).
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

/// The longest duration sigward accepts, for every duration flag: 100 years (36500 days). Far
/// beyond any real grace period or timeout, and far below where deadline arithmetic on the
/// monotonic clock could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 24 * 3600);

/// Where `--listen` looks up host names: the file, never DNS (a static binary has no NSS).
const HOSTS: &str = "/etc/hosts";

const AFTER_HELP: &str = "\
Stop budget:
  The grace period counts from the first stop signal. Inside it sigward first holds the signal
  for the pre-stop delay (the app keeps serving while the load balancer forgets the pod), then
  forwards it and waits for every process to exit, then SIGKILLs whatever is left and exits.
  Choose:  pre-stop delay + the app's drain time + a margin  <=  --grace-period
           --grace-period  <  the orchestrator's kill timeout
  (Kubernetes: terminationGracePeriodSeconds, default 30s, which also covers any preStop hook;
   Docker: docker stop -t / --stop-timeout, default 10s.)
  So sigward, not the orchestrator, delivers the final SIGKILL: it names the stragglers and
  exits with a meaningful status.

Durations:
  25s, 500ms, 1m30s, 2m, 1h; a bare number is seconds. At most 100 years (876000h, 36500 days).

Exit status:
  the command's exit code; 128+N if it died of signal N; 0 for codes listed with -e;
  2 usage error; 125 sigward could not start the command; 126 command not executable;
  127 command not found.

Environment:
  Each SIGWARD_* variable shown above configures like its flag; the flag wins. tini's and
  dumb-init's variables are honoured where neither says anything:
    TINI_VERBOSITY=N       base log level: 0 error, 1 warn (tini's default), 2 info, 3 debug
    DUMB_INIT_DEBUG=1      base log level debug (as -v); 0 changes nothing
    DUMB_INIT_SETSID=0     signal only the child (as -c); 1 is the default, the process group
    TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP
                           accepted, any value: sigward always subreaps when not PID 1 and
                           signals the process group unless told -c
  Empty values count as unset; values other than these are a usage error.

As a container engine's init (run as docker-init or podman-init, e.g. /sbin/docker-init):
  --version prints tini's format, which docker info parses, and --grace-period defaults to 8s
  (Docker's and Podman's stop timeout is 10s). The engine passes no flags: configure with
  SIGWARD_* variables (docker run -e SIGWARD_GRACE_PERIOD=20s --stop-timeout 25 ...).

Examples:
  sigward -- nginx -g 'daemon off;'
  sigward -d 5s -t 25s -- ./start-server.sh
  sigward -S QUIT -r QUIT:TERM -- php-fpm -F";

#[derive(Parser, Debug)]
#[command(
    name = "sigward",
    version = VERSION,
    about = "Init for containers: forwards signals, reaps zombies, and owns the stop sequence.",
    override_usage = "sigward [OPTIONS] [--] COMMAND [ARG]...",
    after_help = AFTER_HELP
)]
struct Args {
    /// Stop budget, counted from the first stop signal; then every remaining process is SIGKILLed
    #[arg(short = 't', long, env = "SIGWARD_GRACE_PERIOD", value_name = "DURATION", default_value = "25s", value_parser = parse_duration)]
    grace_period: Duration,

    /// Hold the first stop signal this long before forwarding it (spent inside the grace period)
    #[arg(short = 'd', long, env = "SIGWARD_PRE_STOP_DELAY", value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pre_stop_delay: Duration,

    /// Signals that start the stop sequence (repeatable), e.g. the image's STOPSIGNAL
    #[arg(short = 'S', long, env = "SIGWARD_STOP_SIGNAL", value_name = "SIG", value_delimiter = ',', default_value = "TERM,INT", value_parser = parse_catchable)]
    stop_signal: Vec<i32>,

    /// Forward FROM as TO, e.g. TERM:QUIT; TO=0 drops FROM (repeatable)
    #[arg(short = 'r', long, env = "SIGWARD_REWRITE", value_name = "FROM:TO", value_delimiter = ',', value_parser = parse_rewrite)]
    rewrite: Vec<(i32, i32)>,

    /// Signal only the direct child, not its process group
    #[arg(short = 'c', long, env = "SIGWARD_SINGLE_CHILD")]
    single_child: bool,

    /// Exit 0 when the command exits with CODE, e.g. 143 (repeatable)
    #[arg(
        short = 'e',
        long,
        env = "SIGWARD_SUCCESS_EXIT",
        value_name = "CODE",
        value_delimiter = ','
    )]
    success_exit: Vec<u8>,

    /// Signal to receive when sigward's parent dies (when not PID 1)
    #[arg(short = 'p', long, value_name = "SIG", value_parser = parse_signal)]
    parent_death_signal: Option<i32>,

    /// Log every orphan reaped (a sign the app leaks children)
    #[arg(short = 'w', long)]
    warn_on_reap: bool,

    /// Accepted and ignored: process-group forwarding is always on (tini compatibility)
    #[arg(short = 'g', hide_long_help = false)]
    _group: bool,

    /// Accepted and ignored: sigward always subreaps when it is not PID 1 (tini compatibility)
    #[arg(short = 's')]
    _subreaper: bool,

    /// More logging (-v: debug, every forwarded signal and reaped pid)
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Less logging (-q: warnings only, -qq: errors only)
    #[arg(short = 'q', long, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,

    /// Base log level; -v and -q move from it
    #[arg(
        long,
        env = "SIGWARD_LOG",
        value_name = "LEVEL",
        default_value = "info",
        ignore_case = true
    )]
    log_level: Level,

    /// Bind and hold a listening socket: tcp://HOST:PORT, tcp6://HOST:PORT, unix:/path (repeatable;
    /// NAME=ADDR sets its LISTEN_FDNAMES name). Each generation gets them as fds 3... (LISTEN_FDS)
    ///
    /// HOST is an IP address (IPv4 for tcp://, IPv6 in brackets for tcp6://, e.g. 0.0.0.0:8080,
    /// [::]:8080) or a host name looked up in /etc/hosts only, never in DNS: the first line with
    /// an address of the scheme's family that lists the name (case-insensitive, aliases too).
    /// localhost not in /etc/hosts is 127.0.0.1 (tcp://) or ::1 (tcp6://). Sockets that sigward
    /// itself was handed by socket activation come first, then these, in LISTEN_FDNAMES order.
    #[arg(long, env = "SIGWARD_LISTEN", value_name = "ADDR", value_delimiter = ',', value_parser = parse_listen)]
    listen: Vec<Listen>,

    /// Signal that restarts the app: a new generation beside the old with --listen, else in place (stop, then start again) [default: HUP with --listen]
    #[arg(long, value_name = "SIG", value_parser = parse_catchable)]
    restart_signal: Option<i32>,

    /// When a new generation counts as ready: notify (READY=1 on its NOTIFY_SOCKET) or after:DURATION
    #[arg(long, value_name = "MODE", default_value = "notify", value_parser = parse_ready)]
    ready: Ready,

    /// Give up on a new generation that is not ready after this long (longer than --ready after:)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    ready_timeout: Duration,

    /// At exit, write how the app ended (exit, OOM kills, stragglers, stop timeline) to this file
    /// if it exists and is empty (Kubernetes' terminationMessagePath), or off. A path given
    /// here is created if missing; the default one never is
    #[arg(long, env = "SIGWARD_TERMINATION_LOG", value_name = "PATH|off", default_value = termination::DEFAULT_PATH)]
    termination_log: String,
    /// Act when this file or directory changes (repeatable, ':'-separated; waited for if missing)
    #[arg(
        long,
        env = "SIGWARD_WATCH",
        value_name = "PATH",
        value_delimiter = ':'
    )]
    watch: Vec<OsString>,

    /// On a --watch change: signal:SIG (to the app, as forwarded) or restart (a new generation)
    #[arg(
        long,
        env = "SIGWARD_ON_CHANGE",
        value_name = "ACTION",
        default_value = "signal:HUP"
    )]
    on_change: OsString,

    /// Quiet time after the last change before acting (at most 10 times this after the first)
    #[arg(long, env = "SIGWARD_WATCH_DEBOUNCE", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    watch_debounce: Duration,

    /// One line per event on stderr
    #[arg(
        long,
        env = "SIGWARD_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text",
        ignore_case = true
    )]
    log_format: Format,

    /// The command to run, and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    command: Vec<OsString>,
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

/// The outcome of parsing: run with a config, or exit now with a code (help, version, bad input).
pub enum Parsed {
    Run(Box<Config>),
    Exit(i32),
}

/// Parses argv (argv[0] included: the name decides the [`Invocation`]) and the environment.
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

pub fn try_parse(args: Vec<OsString>) -> Result<Config, Rejected> {
    try_parse_with(args, &|name| std::env::var_os(name))
}

/// [`try_parse`] with the peers' variables (`TINI_*`, `DUMB_INIT_*`) read through `env`; clap
/// reads the `SIGWARD_*` ones from the process's environment itself.
fn try_parse_with(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, Rejected> {
    let invocation = Invocation::of(args.first().map(OsString::as_os_str));
    let mut command = Args::command();
    if invocation == Invocation::EngineInit {
        command = command.mut_arg("grace_period", |a| {
            a.default_value(ENGINE_INIT_GRACE_PERIOD)
        });
    }
    let mut matches = command
        .try_get_matches_from(args)
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayVersion => Rejected::Version(match invocation {
                Invocation::EngineInit => ENGINE_INIT_VERSION.to_string(),
                Invocation::Sigward => format!("sigward {VERSION}"),
            }),
            clap::error::ErrorKind::DisplayHelp => Rejected::Print(e),
            _ => Rejected::Usage(usage_error(&e)),
        })?;
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let own = Given {
        log_level: given("log_level"),
        single_child: given("single_child"),
        termination_log: given("termination_log"),
    };
    // `_mut` takes the values out instead of cloning every match first (a fifth of start-up's
    // parsing work).
    let args =
        Args::from_arg_matches_mut(&mut matches).map_err(|e| Rejected::Usage(usage_error(&e)))?;
    let peers = Peers::read(env).map_err(Rejected::Usage)?;
    validate(args, own, &peers).map_err(Rejected::Usage)
}

/// Which settings sigward's own flags or `SIGWARD_*` variables gave (a default is not given):
/// those win over the peers' variables.
#[derive(Clone, Copy, Debug, Default)]
struct Given {
    log_level: bool,
    single_child: bool,
    termination_log: bool,
}

/// What tini's and dumb-init's environment variables ask for, so that images and pod specs
/// written for them keep their meaning. Every value is checked, even one that a flag or a
/// `SIGWARD_*` variable overrides: a setting sigward cannot read is an error, never a silent
/// default. Empty values count as unset (`docker run -e VAR=`).
///
/// `TINI_SUBREAPER` and `TINI_KILL_PROCESS_GROUP` are accepted with any value, as tini checks only
/// that they are set: sigward always subreaps when it is not PID 1 and signals the process group
/// unless told `-c`, so they are never read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Peers {
    /// The base log level: from `TINI_VERBOSITY` and `DUMB_INIT_DEBUG`, the more verbose.
    log_level: Option<Level>,
    /// From `DUMB_INIT_SETSID`: `0` is dumb-init's "no new session, signal only the child".
    single_child: Option<bool>,
}

impl Peers {
    fn read(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Peers, String> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let bad = |name: &str, value: &OsStr, expected: &str| {
            escaped(&format!(
                "invalid value '{}' for '{name}': expected {expected} (see --help)",
                value.to_string_lossy()
            ))
        };
        let tini = match var("TINI_VERBOSITY") {
            None => None,
            Some(v) => Some(tini_verbosity(&v).ok_or_else(|| {
                bad(
                    "TINI_VERBOSITY",
                    &v,
                    "a number: 0 (errors), 1 (warnings, tini's default), 2 (info) or 3 (debug)",
                )
            })?),
        };
        let dumb = match var("DUMB_INIT_DEBUG") {
            None => None,
            Some(v) => match v.as_encoded_bytes() {
                b"0" => None,
                b"1" => Some(Level::Debug),
                _ => return Err(bad("DUMB_INIT_DEBUG", &v, "1 (debug logging, as -v) or 0")),
            },
        };
        let single_child = match var("DUMB_INIT_SETSID") {
            None => None,
            Some(v) => match v.as_encoded_bytes() {
                b"0" => Some(true),
                b"1" => Some(false),
                _ => {
                    return Err(bad(
                        "DUMB_INIT_SETSID",
                        &v,
                        "0 (signal only the child, as -c) or 1 (its process group, the default)",
                    ));
                }
            },
        };
        Ok(Peers {
            log_level: tini.max(dumb),
            single_child,
        })
    }
}

/// tini's verbosity onto sigward's levels. tini logs fatal errors always, warnings from 1 (its
/// default), info from 2, debug from 3 and a trace from 4, so 3 and above are sigward's debug.
fn tini_verbosity(value: &OsStr) -> Option<Level> {
    let digits = value.to_str()?.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only, so a parse failure is a number too large for u64: the most verbose.
    Some(match digits.parse::<u64>().unwrap_or(u64::MAX) {
        0 => Level::Error,
        1 => Level::Warn,
        2 => Level::Info,
        _ => Level::Debug,
    })
}

/// Precedence for one setting: sigward's own flag or `SIGWARD_*` variable, then the peers'
/// variable, then sigward's default (which `own` holds when it was not given).
fn settle<T>(own: T, given: bool, peer: Option<T>) -> T {
    match (given, peer) {
        (false, Some(peer)) => peer,
        _ => own,
    }
}

/// One line naming the bad value, whatever it holds (a newline in a value is shown as `\n`).
fn usage_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ErrorKind};
    let ctx = |kind| e.get(kind).map(|v| v.to_string());
    let msg = match (
        e.kind(),
        ctx(ContextKind::InvalidArg),
        ctx(ContextKind::InvalidValue),
    ) {
        (ErrorKind::MissingRequiredArgument, ..) => {
            return "no COMMAND given (usage: sigward [OPTIONS] [--] COMMAND [ARG]...; see --help)"
                .into();
        }
        (_, Some(arg), Some(value)) => {
            let why = match (std::error::Error::source(e), ctx(ContextKind::ValidValue)) {
                (Some(reason), _) => format!(": {reason}"),
                (None, Some(valid)) => format!(" (possible values: {valid})"),
                (None, None) => String::new(),
            };
            format!("invalid value '{value}' for '{arg}'{why}")
        }
        (ErrorKind::UnknownArgument, Some(arg), None) => format!("unexpected argument '{arg}'"),
        _ => {
            // Clap's own sentence: the part before its blank line.
            let text = e.to_string();
            let first = text.split("\n\n").next().unwrap_or("invalid command line");
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    // Values and the parsers' reasons may hold control characters: escape the whole line once.
    escaped(&format!("{msg} (see --help)"))
}

/// Control characters escaped, so a message always stays on one line.
pub fn escaped(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn validate(a: Args, own: Given, peers: &Peers) -> Result<Config, String> {
    if a.grace_period.is_zero() {
        return Err(
            "the grace period must be more than 0 (it is the time the app gets to stop)".into(),
        );
    }
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
    let mut watch = Vec::with_capacity(a.watch.len());
    for p in &a.watch {
        watch.push(
            watch_path(p.as_encoded_bytes()).map_err(|why| bad_value("--watch <PATH>", p, &why))?,
        );
    }
    let on_change = parse_on_change(&a.on_change.to_string_lossy())
        .map_err(|why| bad_value("--on-change <ACTION>", &a.on_change, &why))?;
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
        p if !p.starts_with('/') => {
            return Err(escaped(&format!(
                "invalid value '{p}' for '--termination-log': expected an absolute path or off"
            )));
        }
        p if own.termination_log => termination::Dest::Given(p),
        p => termination::Dest::Default(p),
    };
    let mut rewrite = [0u8; signals::MAX as usize + 1];
    for (n, slot) in rewrite.iter_mut().enumerate() {
        *slot = n as u8;
    }
    for (from, to) in a.rewrite {
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
        watch,
        on_change,
        watch_debounce: a.watch_debounce,
    })
}

/// `25s`, `500ms`, `1m30s`, `2m`, `1h`; a bare number means seconds. At most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let too_long = || {
        format!(
            "more than the maximum of 100 years ({}h)",
            MAX_DURATION.as_secs() / 3600
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (try 25s, 500ms, 1m30s)".into());
    }
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    // A part in nanoseconds: `1.5` of a unit of `unit_ns`, as the log writes `1.5s`. Any number
    // too large for u64 is far above the maximum.
    let part = |num: &str, unit_ns: u128| -> Result<u128, String> {
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        let bad = || "expected a number like 25, 1.5 or 0.25 before each unit".to_string();
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 9 {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse::<u64>().map_err(|_| too_long())?.into()
        };
        let scale = 10u128.pow(frac.len() as u32);
        let frac: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        Ok(whole * unit_ns + frac * unit_ns / scale)
    };
    const SEC: u128 = 1_000_000_000;
    let nanos = if is_number(t) {
        part(t, SEC)?
    } else {
        let mut total: u128 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            let (num, after) = rest.split_at(digits);
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            if !is_number(num) {
                return Err(
                    "expected a number before each unit (try 25s, 500ms, 1m30s)".to_string()
                );
            }
            let unit_ns = match unit {
                "ms" => SEC / 1000,
                "s" => SEC,
                "m" => 60 * SEC,
                "h" => 3600 * SEC,
                _ => return Err(format!("unknown unit '{unit}' (use ms, s, m or h)")),
            };
            total = total.saturating_add(part(num, unit_ns)?);
            rest = next;
        }
        total
    };
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let secs = u64::try_from(nanos / SEC).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % SEC) as u32))
}

fn parse_signal(text: &str) -> Result<i32, String> {
    signals::parse(text)
}

/// A signal sigward can receive and act on: not KILL or STOP (uncatchable), not CHLD (reaping).
fn parse_catchable(text: &str) -> Result<i32, String> {
    let sig = signals::parse(text)?;
    match sig {
        libc::SIGKILL | libc::SIGSTOP => Err(format!(
            "{} cannot be caught, so it can never reach sigward",
            signals::Name(sig)
        )),
        libc::SIGCHLD => Err("SIGCHLD is sigward's own reaping signal".into()),
        _ => Ok(sig),
    }
}

fn parse_rewrite(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or("expected FROM:TO, e.g. TERM:QUIT or 15:3")?;
    let from = parse_catchable(from)?;
    let to = if to.trim() == "0" {
        0
    } else {
        signals::parse(to)?
    };
    Ok((from, to))
}

/// `tcp://127.0.0.1:8080`, `tcp6://[::]:8080`, `tcp://localhost:8080`, `unix:/run/app.sock`,
/// each optionally `NAME=` first. Host names are resolved here, so a bad one is a usage error.
fn parse_listen(text: &str) -> Result<Listen, String> {
    parse_listen_in(text, || std::fs::read(HOSTS))
}

/// [`parse_listen`] with the hosts file's contents from `hosts` (read only for a host name).
fn parse_listen_in(
    text: &str,
    hosts: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> Result<Listen, String> {
    let (name, addr) = match text.split_once('=') {
        Some((name, addr)) if !name.contains(['/', ':']) => (name, addr),
        _ => ("unknown", text),
    };
    if name.is_empty() || name.contains(|c: char| c == ':' || c.is_control()) || name.len() > 255 {
        return Err("a socket name must be 1-255 characters without ':'".into());
    }
    let addr = if let Some(path) = addr.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a path, e.g. unix:/run/app.sock".into());
        }
        ListenAddr::Unix(path.into())
    } else if let Some(hp) = addr.strip_prefix("tcp://") {
        ListenAddr::Tcp(tcp_addr(hp, false, hosts)?)
    } else if let Some(hp) = addr.strip_prefix("tcp6://") {
        ListenAddr::Tcp(tcp_addr(hp, true, hosts)?)
    } else {
        return Err("expected tcp://HOST:PORT, tcp6://[HOST]:PORT or unix:/path".into());
    };
    Ok(Listen {
        name: name.to_string(),
        addr,
    })
}

/// `HOST:PORT` of a tcp:// (`v6` false) or tcp6:// address: an IP literal of that family, or a
/// host name resolved through the hosts file.
fn tcp_addr(
    hp: &str,
    v6: bool,
    hosts: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> Result<SocketAddr, String> {
    let wrong_family =
        || "tcp:// takes an IPv4 address, tcp6:// an IPv6 one in brackets".to_string();
    if let Ok(sa) = hp.parse::<SocketAddr>() {
        return if sa.is_ipv6() == v6 {
            Ok(sa)
        } else {
            Err(wrong_family())
        };
    }
    let Some((host, port)) = hp.rsplit_once(':') else {
        return Err(format!(
            "'{hp}' is not HOST:PORT (e.g. 0.0.0.0:8080, [::]:8080, localhost:8080)"
        ));
    };
    if host.is_empty() {
        return Err(format!(
            "'{hp}' has no host (e.g. 0.0.0.0:8080, [::]:8080, localhost:8080)"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port number (0-65535)"))?;
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<Ipv4Addr>().is_ok() => return Err(wrong_family()),
        Some(inner) => return Err(format!("'{inner}' is not an IPv6 address")),
        None => {}
    }
    if host.contains(':') || host.parse::<IpAddr>().is_ok() {
        return Err(if host.parse::<Ipv6Addr>().is_ok() {
            format!("an IPv6 address takes brackets: [{host}]:{port}")
        } else {
            wrong_family()
        });
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("'{host}' is not an IPv4 address"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(format!("'{host}' is not an IP address or a host name"));
    }
    let family = if v6 { "IPv6" } else { "IPv4" };
    let hosts = hosts();
    let found = hosts
        .as_ref()
        .ok()
        .and_then(|text| hosts_lookup(&String::from_utf8_lossy(text), host, v6));
    let localhost = host.eq_ignore_ascii_case("localhost").then_some(if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    });
    match (found.or(localhost), hosts) {
        (Some(ip), _) => Ok(SocketAddr::new(ip, port)),
        (None, Ok(_)) => Err(format!(
            "host '{host}' has no {family} address in {HOSTS} (sigward never asks DNS: give an IP address or add the name there)"
        )),
        (None, Err(e)) => Err(format!(
            "cannot look up host '{host}': cannot read {HOSTS}: {e} (sigward never asks DNS: give an IP address)"
        )),
    }
}

/// The first address of the family (`v6`) listed for `host` in hosts-file `text`, as the C
/// library's "files" lookup finds it: a line is `ADDRESS NAME [ALIAS...]` separated by blanks,
/// `#` starts a comment, names match without regard to ASCII case, malformed lines are skipped.
fn hosts_lookup(text: &str, host: &str, v6: bool) -> Option<IpAddr> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_ascii_whitespace();
        let addr: IpAddr = fields.next()?.parse().ok()?;
        (addr.is_ipv6() == v6 && fields.any(|name| name.eq_ignore_ascii_case(host))).then_some(addr)
    })
}

/// A path to watch, made absolute now (sigward moves to `/` once the app runs) and plain: no
/// `.`, `//` or trailing `/`. `..` is refused: the watched directories are found from the path's
/// own names, never by resolving it.
fn watch_path(text: &[u8]) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Err("empty path (in SIGWARD_WATCH, ':' separates paths)".into());
    }
    let mut out = Vec::new();
    if text.first() != Some(&b'/') {
        let cwd = std::env::current_dir().map_err(|e| format!("cannot make it absolute: {e}"))?;
        out.extend_from_slice(cwd.as_os_str().as_encoded_bytes());
    }
    for part in text.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("a watched path cannot contain '..' (give it without)".into()),
            _ => {
                if out.last() != Some(&b'/') {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// A usage error for a value checked after clap, worded as clap's own.
#[inline(never)]
fn bad_value(arg: &str, value: &OsStr, why: &str) -> String {
    escaped(&format!(
        "invalid value '{}' for '{arg}': {why} (see --help)",
        value.to_string_lossy()
    ))
}

/// `signal:SIG` or `restart`.
fn parse_on_change(text: &str) -> Result<OnChange, String> {
    match text {
        "restart" => Ok(OnChange::Restart),
        _ => match text.strip_prefix("signal:") {
            Some(sig) => signals::parse(sig).map(OnChange::Signal),
            None => Err("expected signal:SIG (e.g. signal:HUP) or restart".into()),
        },
    }
}

fn parse_ready(text: &str) -> Result<Ready, String> {
    match text {
        "notify" => Ok(Ready::Notify),
        _ => match text.strip_prefix("after:") {
            Some(d) => parse_duration(d).map(Ready::After),
            None => Err("expected notify or after:DURATION".into()),
        },
    }
}

/// Compact human form: `25s`, `1.5s`, `500ms`, `2m30s` (as the log writes durations).
pub fn fmt_duration(d: Duration) -> String {
    crate::log::Dur(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<OsString> {
        std::iter::once("sigward")
            .chain(s.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn config(s: &[&str]) -> Config {
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
    fn durations() {
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration("1h1ms"),
            Ok(Duration::from_millis(3_600_001))
        );
        // What the log writes reads back: `1.5s`, `1.25s`, `0.5`.
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.25s"), Ok(Duration::from_millis(1250)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        for d in [1500, 1250, 1005, 90_000, 999, 3_601_000] {
            let d = Duration::from_millis(d);
            assert_eq!(
                parse_duration(&fmt_duration(d)),
                Ok(d),
                "{}",
                fmt_duration(d)
            );
        }
        for bad in [
            "",
            "s",
            "5x",
            "-1s",
            "1..5s",
            ".s",
            "1.0000000001s",
            "ms5",
            "99999999999999999999h",
            "5 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_capped_at_100_years_and_say_so() {
        assert_eq!(parse_duration("876000h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("3153600000"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("875999h59m59s1000ms"),
            Ok(MAX_DURATION),
            "parts add up to exactly the maximum"
        );
        for over in [
            "876000h1ms",
            "3153600001",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999h",
            "18446744073709551615ms",
            "307445734561825861m",
            "9999999999999999999999999999999s",
        ] {
            assert_eq!(
                parse_duration(over),
                Err("more than the maximum of 100 years (876000h)".to_string()),
                "{over}"
            );
        }
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
            let args: Vec<&str> = args.iter().copied().chain(["app"]).collect();
            let msg = rejected(&args).unwrap();
            assert!(msg.contains(both.0) && msg.contains(both.1), "{msg}");
            assert!(matches!(parse(argv(&args)), Parsed::Exit(USAGE_EXIT)));
        }
        let c = config(&["--ready", "after:59s", "app"]);
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

    const HOSTS_FILE: &str = "\
# The usual container file, with the odd shapes a hand-edited one has.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback   # loopback
fe00::0\tip6-localnet
10.0.0.7  web-0.web.default.svc.cluster.local\tweb-0   # pod IP
10.0.0.8 Cache cache.internal
#10.0.0.9 commented-out
   10.0.0.10   indented\t\tTabbed
not-an-address broken
fe80::1%eth0 scoped
2001:db8::5 only-v6
10.0.0.11 web-0
";

    fn fixture() -> std::io::Result<Vec<u8>> {
        Ok(HOSTS_FILE.as_bytes().to_vec())
    }

    #[test]
    fn hosts_file_lookup() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let v4 = |h| hosts_lookup(HOSTS_FILE, h, false);
        let v6 = |h| hosts_lookup(HOSTS_FILE, h, true);
        assert_eq!(v4("localhost"), ip("127.0.0.1"));
        assert_eq!(v6("localhost"), ip("::1"));
        assert_eq!(v6("ip6-loopback"), ip("::1"), "an alias");
        assert_eq!(v4("web-0"), ip("10.0.0.7"), "the first line wins");
        assert_eq!(v4("web-0.web.default.svc.cluster.local"), ip("10.0.0.7"));
        assert_eq!(v4("cache"), ip("10.0.0.8"), "names match in any case");
        assert_eq!(v4("CACHE.INTERNAL"), ip("10.0.0.8"));
        assert_eq!(v4("tabbed"), ip("10.0.0.10"), "blanks and tabs separate");
        assert_eq!(v4("indented"), ip("10.0.0.10"));
        assert_eq!(v6("only-v6"), ip("2001:db8::5"));
        for (host, fam6) in [
            ("commented-out", false),
            ("loopback", true),
            ("pod", false),
            ("broken", false),
            ("scoped", true),
            ("only-v6", false),
            ("web-0", true),
            ("web", false),
            ("", false),
        ] {
            assert_eq!(hosts_lookup(HOSTS_FILE, host, fam6), None, "{host}");
        }
    }

    #[test]
    fn listen_takes_ip_literals_and_host_names_from_the_hosts_file() {
        let tcp = |text: &str| match parse_listen_in(text, fixture).map(|l| l.addr) {
            Ok(ListenAddr::Tcp(sa)) => Ok(sa.to_string()),
            other => Err(format!("{other:?}")),
        };
        for (text, addr) in [
            ("tcp://0.0.0.0:8080", "0.0.0.0:8080"),
            ("tcp6://[::]:8080", "[::]:8080"),
            ("tcp://localhost:80", "127.0.0.1:80"),
            ("tcp6://localhost:80", "[::1]:80"),
            ("tcp://web-0:8080", "10.0.0.7:8080"),
            ("tcp://Cache:1", "10.0.0.8:1"),
            ("tcp6://only-v6:443", "[2001:db8::5]:443"),
        ] {
            assert_eq!(tcp(text).as_deref(), Ok(addr), "{text}");
        }
        let l = parse_listen_in("web=tcp://web-0:0", fixture).unwrap();
        assert_eq!(l.name, "web");
    }

    #[test]
    fn localhost_is_loopback_even_without_a_hosts_file_line() {
        let none = || Ok(b"10.0.0.1 other\n".to_vec());
        let missing = || Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        for hosts in [none as fn() -> _, missing] {
            let addr = |text| match parse_listen_in(text, hosts).unwrap().addr {
                ListenAddr::Tcp(sa) => sa,
                ListenAddr::Unix(_) => unreachable!(),
            };
            assert_eq!(addr("tcp://LOCALHOST:1"), "127.0.0.1:1".parse().unwrap());
            assert_eq!(addr("tcp6://localhost:1"), "[::1]:1".parse().unwrap());
        }
    }

    #[test]
    fn literal_addresses_never_read_the_hosts_file() {
        let never = || -> std::io::Result<Vec<u8>> { panic!("read the hosts file") };
        for text in [
            "tcp://127.0.0.1:1",
            "tcp6://[::1]:1",
            "unix:/x",
            "tcp://1.2.3.4",
        ] {
            let _ = parse_listen_in(text, never);
        }
    }

    #[test]
    fn listen_rejects_what_it_cannot_resolve_and_names_the_host() {
        let missing = || Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        for (text, needle) in [
            (
                "tcp://nowhere:80",
                "host 'nowhere' has no IPv4 address in /etc/hosts",
            ),
            (
                "tcp6://web-0:80",
                "host 'web-0' has no IPv6 address in /etc/hosts",
            ),
            ("tcp://only-v6:80", "host 'only-v6' has no IPv4 address"),
            ("tcp6://127.0.0.1:1", "tcp:// takes an IPv4 address"),
            ("tcp://[::1]:1", "tcp:// takes an IPv4 address"),
            ("tcp6://[127.0.0.1]:1", "tcp:// takes an IPv4 address"),
            ("tcp6://[localhost]:1", "'localhost' is not an IPv6 address"),
            ("tcp6://::1:80", "an IPv6 address takes brackets: [::1]:80"),
            ("tcp://localhost", "'localhost' is not HOST:PORT"),
            ("tcp://localhost:http", "'http' is not a port number"),
            ("tcp://localhost:65536", "'65536' is not a port number"),
            ("tcp://:80", "':80' has no host"),
            ("tcp://999.1.1.1:80", "'999.1.1.1' is not an IPv4 address"),
            ("tcp://a b:80", "'a b' is not an IP address or a host name"),
            ("tcp://bogus", "is not HOST:PORT"),
        ] {
            let err = parse_listen_in(text, fixture).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let err = parse_listen_in("tcp://web-0:80", missing).unwrap_err();
        assert!(
            err.starts_with("cannot look up host 'web-0': cannot read /etc/hosts"),
            "{err}"
        );
        let msg = rejected(&["--listen", "tcp://nowhere.invalid:80", "app"]).unwrap();
        assert!(
            msg.starts_with("invalid value 'tcp://nowhere.invalid:80' for '--listen <ADDR>': host 'nowhere.invalid'"),
            "{msg}"
        );
    }

    #[test]
    fn durations_display_compactly() {
        for (input, shown) in [
            ("0", "0ms"),
            ("500ms", "500ms"),
            ("1500ms", "1.5s"),
            ("1250ms", "1.25s"),
            ("25s", "25s"),
            ("120", "2m"),
            ("90s", "1m30s"),
        ] {
            assert_eq!(fmt_duration(parse_duration(input).unwrap()), shown);
        }
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

    fn rejected(args: &[&str]) -> Option<String> {
        match try_parse(argv(args)) {
            Err(Rejected::Usage(msg)) => Some(msg),
            _ => None,
        }
    }

    /// Parses `argv0 ARGS...` with the peers' variables taken from `vars` only.
    fn parse_as(argv0: &str, args: &[&str], vars: &[(&str, &str)]) -> Result<Config, String> {
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

    fn with_env(args: &[&str], vars: &[(&str, &str)]) -> Config {
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

    #[test]
    fn tini_verbosity_maps_onto_sigward_levels() {
        for (value, level) in [
            ("0", Level::Error),
            ("1", Level::Warn),
            ("2", Level::Info),
            ("3", Level::Debug),
            ("4", Level::Debug),
            (" 2 ", Level::Info),
            ("007", Level::Debug),
            ("99999999999999999999999", Level::Debug),
        ] {
            assert_eq!(tini_verbosity(OsStr::new(value)), Some(level), "{value}");
            assert_eq!(
                with_env(&["app"], &[("TINI_VERBOSITY", value)]).log_level,
                level,
                "{value}"
            );
        }
        for bad in ["x", "-1", "+1", "1.5", "one", " ", "3x"] {
            assert_eq!(tini_verbosity(OsStr::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn dumb_init_variables() {
        let c = with_env(&["app"], &[("DUMB_INIT_SETSID", "0")]);
        assert!(c.single_child, "DUMB_INIT_SETSID=0 is -c");
        let c = with_env(&["app"], &[("DUMB_INIT_SETSID", "1")]);
        assert!(!c.single_child);
        let c = with_env(&["app"], &[("DUMB_INIT_DEBUG", "1")]);
        assert_eq!(c.log_level, Level::Debug, "DUMB_INIT_DEBUG=1 is -v");
        let c = with_env(&["app"], &[("DUMB_INIT_DEBUG", "0")]);
        assert_eq!(c.log_level, Level::Info);
    }

    #[test]
    fn tini_subreaper_and_kill_process_group_are_accepted_with_any_value() {
        for value in ["1", "0", "", "yes", "anything at all"] {
            let c = with_env(
                &["app"],
                &[
                    ("TINI_SUBREAPER", value),
                    ("TINI_KILL_PROCESS_GROUP", value),
                ],
            );
            assert!(!c.single_child, "{value:?}");
            assert_eq!(c.log_level, Level::Info);
        }
    }

    #[test]
    fn empty_peer_variables_count_as_unset() {
        let c = with_env(
            &["app"],
            &[
                ("TINI_VERBOSITY", ""),
                ("DUMB_INIT_DEBUG", ""),
                ("DUMB_INIT_SETSID", ""),
            ],
        );
        assert_eq!(c.log_level, Level::Info);
        assert!(!c.single_child);
    }

    #[test]
    fn a_bad_peer_value_is_a_one_line_usage_error_naming_variable_and_value() {
        for (name, value, expected) in [
            ("TINI_VERBOSITY", "loud", "expected a number: 0 (errors)"),
            ("TINI_VERBOSITY", "-1", "expected a number"),
            (
                "DUMB_INIT_DEBUG",
                "true",
                "expected 1 (debug logging, as -v) or 0",
            ),
            (
                "DUMB_INIT_SETSID",
                "2",
                "expected 0 (signal only the child, as -c)",
            ),
            ("DUMB_INIT_SETSID", "0\n", "expected 0"),
        ] {
            let msg = parse_as("sigward", &["app"], &[(name, value)]).unwrap_err();
            assert!(
                msg.starts_with(&format!(
                    "invalid value '{}' for '{name}': {expected}",
                    escaped(value)
                )),
                "{msg}"
            );
            assert!(
                !msg.contains('\n') && msg.ends_with("(see --help)"),
                "{msg}"
            );
            // Checked even where a flag overrides the variable: never a silent default.
            let msg = parse_as(
                "sigward",
                &["-c", "--log-level", "warn", "app"],
                &[(name, value)],
            );
            assert!(msg.is_err(), "{name}={value}");
            assert!(matches!(
                try_parse_with(argv(&["app"]), &|n| (n == name).then(|| value.into())),
                Err(Rejected::Usage(_))
            ));
        }
        let odd = parse_as("sigward", &["app"], &[("TINI_VERBOSITY", "\u{1b}[31m")]).unwrap_err();
        assert!(odd.starts_with("invalid value '\\u{1b}[31m'"), "{odd}");
    }

    #[test]
    fn flags_win_over_the_peers_variables() {
        let c = with_env(
            &["--log-level", "warn", "app"],
            &[("TINI_VERBOSITY", "3"), ("DUMB_INIT_DEBUG", "1")],
        );
        assert_eq!(c.log_level, Level::Warn);
        let c = with_env(&["-c", "app"], &[("DUMB_INIT_SETSID", "1")]);
        assert!(c.single_child);
        // -v and -q move from the base level, which the peers' variable set.
        let c = with_env(&["-v", "app"], &[("TINI_VERBOSITY", "1")]);
        assert_eq!(c.log_level, Level::Info);
        let c = with_env(&["-q", "app"], &[("TINI_VERBOSITY", "3")]);
        assert_eq!(c.log_level, Level::Info);
        let c = with_env(&["-qq", "app"], &[("DUMB_INIT_DEBUG", "1")]);
        assert_eq!(c.log_level, Level::Warn);
    }

    #[test]
    fn sigward_variables_win_over_the_peers_variables() {
        // As when SIGWARD_LOG or SIGWARD_SINGLE_CHILD is set: clap reports the value's source as
        // the environment, which counts as given.
        let peers = Peers {
            log_level: Some(Level::Debug),
            single_child: Some(true),
        };
        let args = |a: &[&str]| Args::try_parse_from(argv(a)).unwrap();
        let given = Given {
            log_level: true,
            single_child: true,
            termination_log: false,
        };
        let c = validate(args(&["--log-level", "error", "app"]), given, &peers).unwrap();
        assert_eq!(c.log_level, Level::Error);
        assert!(
            !c.single_child,
            "SIGWARD_SINGLE_CHILD=false beats DUMB_INIT_SETSID=0"
        );
        let c = validate(args(&["app"]), Given::default(), &peers).unwrap();
        assert_eq!(c.log_level, Level::Debug);
        assert!(c.single_child);
        assert_eq!(settle(1, true, Some(2)), 1);
        assert_eq!(settle(1, false, Some(2)), 2);
        assert_eq!(settle(1, false, None), 1);
    }

    #[test]
    fn the_peers_are_combined_by_the_more_verbose() {
        for (tini, dumb, level) in [
            ("0", "1", Level::Debug),
            ("2", "0", Level::Info),
            ("3", "0", Level::Debug),
            ("1", "", Level::Warn),
        ] {
            let c = with_env(
                &["app"],
                &[("TINI_VERBOSITY", tini), ("DUMB_INIT_DEBUG", dumb)],
            );
            assert_eq!(
                c.log_level, level,
                "TINI_VERBOSITY={tini} DUMB_INIT_DEBUG={dumb}"
            );
        }
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
            fn value_parsers_never_panic(s in "\\PC*|.*") {
                let _ = parse_duration(&s);
                let _ = signals::parse(&s);
                let _ = parse_rewrite(&s);
                let _ = parse_ready(&s);
                let _ = parse_listen_in(&s, fixture);
                let _ = parse_listen_in(&format!("tcp://{s}"), fixture);
                let _ = parse_listen_in(&format!("tcp6://{s}"), fixture);
                let _ = hosts_lookup(&s, "localhost", false);
                let _ = hosts_lookup(HOSTS_FILE, &s, true);
            }

            #[test]
            fn a_duration_is_its_exact_sum_when_at_most_the_maximum_and_rejected_above(
                parts in prop::collection::vec(
                    (any::<u64>().prop_map(|n| n >> (n % 64)), prop::sample::select(vec!["ms", "s", "m", "h"])),
                    1..4,
                ),
            ) {
                let text: String = parts.iter().map(|(n, unit)| format!("{n}{unit}")).collect();
                let ms: u128 = parts
                    .iter()
                    .map(|&(n, unit)| u128::from(n) * match unit { "ms" => 1, "s" => 1000, "m" => 60_000, _ => 3_600_000 })
                    .sum();
                match parse_duration(&text) {
                    Ok(d) => {
                        prop_assert!(d <= MAX_DURATION);
                        prop_assert_eq!(d.as_millis(), ms);
                    }
                    Err(e) => {
                        prop_assert!(ms > MAX_DURATION.as_millis(), "{text}: {e}");
                        prop_assert!(e.contains("100 years"), "{e}");
                    }
                }
            }

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
