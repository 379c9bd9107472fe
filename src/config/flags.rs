//! The command line as clap defines it: every flag, its variable, its help. One definition serves
//! the parser, `--help` and the manual page (`examples/manpage.rs`), so they cannot disagree.

use super::values::{
    parse_catchable, parse_duration, parse_listen, parse_on_change, parse_ready, parse_rewrite,
    parse_signal, parse_termination_log, watch_path,
};
use super::{ENGINE_INIT_GRACE_PERIOD, Invocation, Listen, OnChange, Ready, VERSION};
use crate::log::{Format, Level};
use crate::termination;
use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Command, CommandFactory, Parser};
use std::ffi::OsString;
use std::time::Duration;

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
  One rule for every variable: an empty value counts as unset (docker run -e VAR=); a set one
  is always checked, even where a flag wins, and a bad one is a usage error naming it.

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
pub(super) struct Args {
    /// Stop budget, counted from the first stop signal; then every remaining process is SIGKILLed
    #[arg(short = 't', long, env = "SIGWARD_GRACE_PERIOD", value_name = "DURATION", default_value = "25s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub(super) grace_period: Duration,

    /// Hold the first stop signal this long before forwarding it (spent inside the grace period)
    #[arg(short = 'd', long, env = "SIGWARD_PRE_STOP_DELAY", value_name = "DURATION", default_value = "0s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub(super) pre_stop_delay: Duration,

    /// Signals that start the stop sequence (repeatable), e.g. the image's STOPSIGNAL
    #[arg(short = 'S', long, env = "SIGWARD_STOP_SIGNAL", value_name = "SIG", value_delimiter = ',', default_value = "TERM,INT", value_parser = parse_catchable)]
    pub(super) stop_signal: Vec<i32>,

    /// Forward FROM as TO, e.g. TERM:QUIT; TO=0 drops FROM (repeatable)
    #[arg(short = 'r', long, env = "SIGWARD_REWRITE", value_name = "FROM:TO", value_delimiter = ',', value_parser = parse_rewrite)]
    pub(super) rewrite: Vec<(i32, i32)>,

    /// Signal only the direct child, not its process group
    #[arg(short = 'c', long, env = "SIGWARD_SINGLE_CHILD")]
    pub(super) single_child: bool,

    /// Exit 0 when the command exits with CODE, e.g. 143 (repeatable)
    #[arg(
        short = 'e',
        long,
        env = "SIGWARD_SUCCESS_EXIT",
        value_name = "CODE",
        value_delimiter = ','
    )]
    pub(super) success_exit: Vec<u8>,

    /// Signal to receive when sigward's parent dies (when not PID 1)
    #[arg(short = 'p', long, value_name = "SIG", value_parser = parse_signal)]
    pub(super) parent_death_signal: Option<i32>,

    /// Log every orphan reaped (a sign the app leaks children)
    #[arg(short = 'w', long)]
    pub(super) warn_on_reap: bool,

    /// Accepted and ignored: process-group forwarding is always on (tini compatibility)
    #[arg(short = 'g', hide_long_help = false)]
    pub(super) _group: bool,

    /// Accepted and ignored: sigward always subreaps when it is not PID 1 (tini compatibility)
    #[arg(short = 's')]
    pub(super) _subreaper: bool,

    /// More logging (-v: debug, every forwarded signal and reaped pid)
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,

    /// Less logging (-q: warnings only, -qq: errors only)
    #[arg(short = 'q', long, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub(super) quiet: u8,

    /// Base log level; -v and -q move from it
    #[arg(
        long,
        env = "SIGWARD_LOG",
        value_name = "LEVEL",
        default_value = "info",
        ignore_case = true
    )]
    pub(super) log_level: Level,

    /// Bind and hold a listening socket: tcp://HOST:PORT, tcp6://[HOST]:PORT, unix:/path (repeatable;
    /// NAME=ADDR sets its LISTEN_FDNAMES name). Each generation gets them as fds 3... (LISTEN_FDS)
    ///
    /// HOST is an IP address (IPv4 for tcp://, IPv6 in brackets for tcp6://, e.g. 0.0.0.0:8080,
    /// [::]:8080) or a host name looked up in /etc/hosts only, never in DNS: the first line with
    /// an address of the scheme's family that lists the name (case-insensitive, aliases too).
    /// localhost not in /etc/hosts is 127.0.0.1 (tcp://) or ::1 (tcp6://). Sockets that sigward
    /// itself was handed by socket activation come first, then these, in LISTEN_FDNAMES order.
    #[arg(long, env = "SIGWARD_LISTEN", value_name = "ADDR", value_delimiter = ',', value_parser = parse_listen)]
    pub(super) listen: Vec<Listen>,

    /// Signal that restarts the app: a new generation beside the old with --listen, else in place (stop, then start again) [default: HUP with --listen]
    #[arg(long, value_name = "SIG", value_parser = parse_catchable)]
    pub(super) restart_signal: Option<i32>,

    /// When a new generation counts as ready (with a restart): notify (READY=1 on its NOTIFY_SOCKET) or after:DURATION
    #[arg(long, value_name = "MODE", default_value = "notify", value_parser = parse_ready)]
    pub(super) ready: Ready,

    /// Give up on a new generation that is not ready after this long (longer than --ready after:)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub(super) ready_timeout: Duration,

    /// At exit, write how the app ended (exit, OOM kills, stragglers, stop timeline) to this file
    /// if it exists and is empty (Kubernetes' terminationMessagePath), or off. A path given
    /// here is created if missing; the default one never is
    #[arg(long, env = "SIGWARD_TERMINATION_LOG", value_name = "PATH|off", default_value = termination::DEFAULT_PATH, value_parser = parse_termination_log)]
    pub(super) termination_log: String,
    /// Act when this file or directory changes (repeatable, ':'-separated; waited for if missing)
    #[arg(
        long,
        env = "SIGWARD_WATCH",
        value_name = "PATH",
        value_delimiter = ':',
        value_parser = OsStringValueParser::new().try_map(|p| watch_path(p.as_encoded_bytes()))
    )]
    pub(super) watch: Vec<Vec<u8>>,

    /// On a --watch change: signal:SIG (to the app, as forwarded) or restart (a new generation)
    #[arg(
        long,
        env = "SIGWARD_ON_CHANGE",
        value_name = "ACTION",
        default_value = "signal:HUP",
        value_parser = parse_on_change
    )]
    pub(super) on_change: OnChange,

    /// Quiet time after the last change before acting (at most 10 times this after the first)
    #[arg(long, env = "SIGWARD_WATCH_DEBOUNCE", value_name = "DURATION", default_value = "1s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub(super) watch_debounce: Duration,

    /// One line per event on stderr
    #[arg(
        long,
        env = "SIGWARD_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text",
        ignore_case = true
    )]
    pub(super) log_format: Format,

    /// The command to run, and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    pub(super) command: Vec<OsString>,
}

/// The command line as the parser sees it under `invocation` (an engine's init has its own
/// default grace period).
pub(super) fn command_for(invocation: Invocation) -> Command {
    let command = Args::command();
    match invocation {
        Invocation::EngineInit => command.mut_arg("grace_period", |a| {
            a.default_value(ENGINE_INIT_GRACE_PERIOD)
        }),
        Invocation::Sigward => command,
    }
}

/// The definition for the manual page (`examples/manpage.rs`): the parser's, with the detail a
/// reference needs and `--help` does not (the binary never calls this, so none of it ships).
pub fn manual() -> Command {
    let detail = [
        (
            "grace_period",
            "The stop budget, counted from the first stop signal. Inside it sigward holds the signal for the pre-stop delay, forwards it, and waits for every process to exit; when it is over, every process left (the stragglers) is SIGKILLed and named in the log. Keep it below the orchestrator's own kill timeout (Kubernetes: terminationGracePeriodSeconds; Docker: docker stop -t), so that sigward, not the orchestrator, delivers the last SIGKILL. As an engine's init (docker-init, podman-init) the default is 8s.",
        ),
        (
            "pre_stop_delay",
            "Hold the first stop signal this long before forwarding it, so the app keeps serving while load balancers forget the pod. Spent inside the grace period, so it must be shorter than it.",
        ),
        (
            "stop_signal",
            "Signals that start the stop sequence (repeatable, or comma-separated), e.g. the image's STOPSIGNAL. The first is what a retiring generation and leftovers get. Not KILL, STOP or CHLD.",
        ),
        (
            "rewrite",
            "Forward signal FROM as TO (names or numbers, e.g. TERM:QUIT or 15:3); TO=0 drops FROM. Repeatable, or comma-separated; each signal at most once.",
        ),
        (
            "restart_signal",
            "The signal that restarts the app. With --listen (default HUP) a new generation starts beside the old one on the same sockets and takes over once ready; without, the app is restarted in place: stopped with the stop sequence, then started again. Never a stop signal.",
        ),
        (
            "ready",
            "When a new generation counts as ready and the old one is retired: notify (it sends READY=1 on its NOTIFY_SOCKET) or after:DURATION (shorter than --ready-timeout). Needs a restart: --listen, --restart-signal or --on-change restart.",
        ),
        (
            "ready_timeout",
            "Give up on a new generation that is not ready after this long: it is killed and the old one keeps serving. Needs a restart, as --ready does.",
        ),
        (
            "termination_log",
            "At exit, write how the app ended (its exit, OOM kills, the stragglers, the stop timeline) to this file, if it exists and is empty, as Kubernetes' terminationMessagePath expects; off writes nothing. A path given here (or in the variable) is created if missing; the default one never is.",
        ),
        (
            "watch",
            "Act when this file or directory changes (repeatable; in the variable, ':' separates paths). A missing path is waited for. Relative paths are made absolute at start; '..' is refused.",
        ),
        (
            "on_change",
            "What a change of a watched path does: signal:SIG sends SIG to the app as a forwarded signal (not KILL or STOP: neither can ask for a reload), restart starts a new generation as the restart signal does. Needs --watch.",
        ),
        (
            "watch_debounce",
            "Quiet time after the last change before acting, and at most ten times this after the first change of a burst. Needs --watch.",
        ),
    ];
    let command = command_for(Invocation::Sigward).long_about(
        "sigward runs COMMAND as its child and stays as PID 1 of the container: it forwards signals to the command's process group, reaps orphaned zombies, owns the stop sequence (pre-stop delay, grace period, stragglers SIGKILLed and named), restarts the app without downtime on held sockets (LISTEN_FDS, NOTIFY_SOCKET), reloads on --watch changes, and says why the app died. Its exit status is the command's. Configure it with flags, SIGWARD_* variables, or tini's and dumb-init's variables and flags.",
    );
    // In place (`mut_arg` would move each to the end, and the manual lists them in this order).
    command.mut_args(
        |arg| match detail.iter().find(|(id, _)| arg.get_id() == id) {
            Some(&(_, text)) => arg.long_help(text),
            None => arg,
        },
    )
}

/// Why a value was refused, as its parser said.
pub(super) enum Why {
    /// The parser's own reason.
    Because(String),
    /// It is none of these.
    OneOf(String),
}

pub(super) fn why(e: &clap::Error) -> Option<Why> {
    use clap::error::ContextKind;
    match (std::error::Error::source(e), e.get(ContextKind::ValidValue)) {
        (Some(reason), _) => Some(Why::Because(reason.to_string())),
        (None, Some(valid)) => Some(Why::OneOf(valid.to_string())),
        (None, None) => None,
    }
}

/// One line naming the bad value, whatever it holds (a newline in a value is shown as `\n`).
pub(super) fn usage_error(e: &clap::Error) -> String {
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
            let why = match why(e) {
                Some(Why::Because(reason)) => format!(": {reason}"),
                Some(Why::OneOf(valid)) => format!(" (possible values: {valid})"),
                None => String::new(),
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

/// clap's error for an argument that is not UTF-8 names nothing. Only `--watch` paths and the
/// command take any bytes, and clap stops before the command, so the bad one is the first other
/// argument that is not UTF-8: named with its flag when it is a flag's value.
pub(super) fn not_utf8(args: &[OsString]) -> String {
    let bad = args.windows(2).find(|w| {
        let (prev, arg) = (w[0].as_encoded_bytes(), w[1].as_encoded_bytes());
        w[1].to_str().is_none() && prev != b"--watch" && !arg.starts_with(b"--watch=")
    });
    let (flag, value) = match bad {
        Some(w) => (
            w[0].to_string_lossy(),
            w[1].as_encoded_bytes().escape_ascii().to_string(),
        ),
        None => ("".into(), String::new()),
    };
    let msg = if flag.starts_with('-') && !value.starts_with('-') {
        format!("invalid value '{value}' for '{flag}'")
    } else {
        format!("invalid argument '{value}'")
    };
    escaped(&format!(
        "{msg}: not UTF-8 (only --watch and the command take any bytes) (see --help)"
    ))
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
