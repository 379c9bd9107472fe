//! Event log on stderr: `sigward: ...` text lines, or one JSON object per line.
//!
//! Every event is an [`Event`] variant, and [`Event::describe`] says everything about it in one
//! match arm: level, event name, sentence, fields. Text and JSON are two renderings of that one
//! description, so they cannot disagree, and an arm stops at its level check before anything is
//! formatted, so a disabled event (a forwarded signal at debug level) costs a comparison.
//!
//! Logging must never stop PID 1: a stalled log reader (a full pipe, `kubectl logs` stuck, a
//! terminal held by Ctrl-S) must not make sigward miss a deadline. So the sink never blocks: a
//! pipe or terminal is written through an open file description of sigward's own with
//! O_NONBLOCK (fd 2's description is shared with the app, which must keep blocking writes), a
//! socket with MSG_DONTWAIT. A line that cannot go out now is dropped and counted, and the count
//! is reported before the next line that can. Each line is one write of at most PIPE_BUF bytes,
//! so it is atomic on a pipe and never interleaves with the app's own output.

use crate::diagnose::{Cause, Limit};
use crate::os::procs::{Lossy, Proc};
use crate::os::reap::Exit;
use crate::os::signals::{Name, Sender};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use nix::sys::stat::{Mode, SFlag};
use std::fmt::{self, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The configured level, readable without the lock: the fast path of [`emit`].
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static LOG: Mutex<Logger> = Mutex::new(Logger::UNCONFIGURED);
/// [`hold`] is on, and lines are held: readable without the lock.
static HOLDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static HELD_ANY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets level and format, and looks at fd 2 once to choose how to write it without blocking.
/// The log may then hold an fd of its own: see [`held_fd`].
pub fn configure(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    *log = Logger::new(Sink::stderr(), level, format);
}

/// The fd the log writes through when it opened one of its own (a pipe or terminal on stderr).
/// Whoever closes inherited fds must keep it.
pub fn held_fd() -> Option<RawFd> {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).sink.held_fd()
}

/// Holds the lines emitted from now on until [`release`]. Right after a stop signal went out,
/// sigward steps aside: an app that shares its CPU (a one-CPU container, or a wake-up placed
/// there) runs its handler as soon as sigward sleeps, not after sigward has written about it.
/// The lines keep their order and their timestamps (rendered now, written later).
pub fn hold() {
    HOLDING.store(true, Ordering::Relaxed);
    LOG.lock().unwrap_or_else(|e| e.into_inner()).holding = true;
}

/// Whether lines are held (see [`hold`]): the dispatcher then sleeps at most [`HOLD_AT_MOST`].
/// A hold that caught no line (all filtered out, a closed sink) costs no wake-up.
pub fn holding() -> bool {
    HELD_ANY.load(Ordering::Relaxed)
}

/// How long lines may be held: they go out at sigward's next wake-up, this long at the latest.
pub const HOLD_AT_MOST: Duration = Duration::from_millis(1);

/// Writes the held lines, and writes each line as it comes again.
pub fn release() {
    if HOLDING.load(Ordering::Relaxed) {
        HOLDING.store(false, Ordering::Relaxed);
        HELD_ANY.store(false, Ordering::Relaxed);
        LOG.lock().unwrap_or_else(|e| e.into_inner()).release();
    }
}

/// At exit: one short, bounded try (at most `within`) to write what is still owed — the rest of
/// a line a terminal took only partly, and the "N log lines dropped" notice — since the last
/// lines (stragglers, the exit status) matter most.
pub fn finish(within: Duration) {
    release();
    LOG.lock().unwrap_or_else(|e| e.into_inner()).finish(within);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one event if its level is enabled; never blocks (see the module docs).
pub fn emit(e: &Event) {
    if !enabled(e.level()) {
        return;
    }
    LOG.lock().unwrap_or_else(|e| e.into_inner()).emit(e);
}

/// An event's sentence alone, without prefix or fields, whatever the level (for the termination
/// message, which repeats a few log lines).
pub fn sentence(e: &Event) -> String {
    let mut v = Sentence(String::new());
    let _ = e.describe(&mut v);
    v.0
}

/// Everything sigward logs. Signals are numbers (written by name), durations are [`Duration`]s,
/// names from /proc or argv are bytes (written lossily, control characters escaped).
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    // Start-up.
    NoSubreaper {
        err: Errno,
    },
    NoParentDeathSignal,
    ListenFailed {
        why: &'a str,
    },
    NoSignalfd {
        err: Errno,
    },
    NotifySocketFailed {
        err: Errno,
    },
    ExecFailed {
        command: &'a [u8],
        err: Errno,
    },
    StartFailed {
        what: &'a str,
        err: Errno,
    },
    Started {
        command: &'a [u8],
        pid: i32,
        /// The child's group took the terminal's foreground (else: a session of its own).
        foreground: bool,
        pid1: bool,
    },
    /// No process is left; sigward exits with `status`.
    Exiting {
        status: i32,
    },

    // The wait loop.
    SignalfdFailed {
        err: Errno,
    },
    PollFailed {
        err: Errno,
    },
    /// A signal sigward raised itself (SIGPIPE from a closed stderr): not for the app.
    IgnoredOwnSignal {
        sig: i32,
    },
    IgnoredWhileKilling {
        sig: i32,
    },

    // Forwarding. `target` is kill(2)'s: `-pgid` for a process group, a pid for one process.
    /// `received` was sent as `sent` (they differ when rewritten). Debug level, or info when it
    /// is part of the stop sequence.
    Forwarded {
        received: i32,
        sent: i32,
        target: i32,
        stopping: bool,
    },
    DroppedRewritten {
        sig: i32,
    },
    DroppedChildGone {
        sig: i32,
    },
    DroppedNobodyLeft {
        sig: i32,
        target: i32,
    },
    ForwardFailed {
        sig: i32,
        target: i32,
        err: Errno,
    },

    // The stop sequence. `from`: the sender, named as it was when the signal arrived.
    StopSignal {
        sig: i32,
        from: Sender,
        grace: Duration,
    },
    PreStopDelay {
        sig: i32,
        delay: Duration,
    },
    DelayCut {
        sig: i32,
        from: Sender,
    },
    StopSignalAgain {
        sig: i32,
        from: Sender,
    },
    /// The first stop signal from outside, after the main child exited and the leftovers had
    /// the stop signal from sigward: nobody gets it twice.
    StopSignalAfterExit {
        sig: i32,
        from: Sender,
    },
    DelayOver,
    /// `count` processes were left when the main child exited; `sent` of them were sent `sig`
    /// now, the others had it already (with their process group, or earlier).
    Leftovers {
        count: usize,
        sent: usize,
        sig: i32,
        wait: Duration,
    },
    /// As `Leftovers`, but `sig` is rewritten to 0: none is signalled.
    /// The processes left could not be listed (/proc unreadable: `err`), so `sig` went to the
    /// app's process group(s) instead; `exiting`: the grace period is over and sigward ends
    /// without waiting for what it cannot see.
    TreeUnseen {
        err: Errno,
        sig: i32,
        exiting: bool,
    },
    LeftoversUnsignalled {
        count: usize,
        sig: i32,
    },
    /// The first SIGKILL round; the first [`NAMED_STRAGGLERS`] are named.
    StragglersKilled {
        grace: Duration,
        stragglers: &'a [Proc],
    },
    /// The main child exited. `quiet`: a clean exit (status 0, no stop sequence) with a terminal
    /// on stderr, where the line would only be noise: written at debug level.
    ChildExited {
        command: &'a [u8],
        pid: i32,
        exit: Exit,
        after: Duration,
        quiet: bool,
    },

    // Job control, not as PID 1 (see `supervisor`): Ctrl-Z stops the whole job, `fg` resumes it.
    /// The job stopped on `sig`: the app (main process `pid`) stopped on it (`app_stopped`), or
    /// sigward received it and stopped the app with SIGSTOP. sigward now stops itself, so that
    /// the shell running it sees its job stopped.
    Suspending {
        sig: i32,
        app_stopped: bool,
        pid: i32,
    },
    /// SIGCONT from `from` (a shell's `fg` or `bg`); `foreground`: the terminal's foreground, which
    /// the shell gave sigward's group, was handed on to the app's group.
    Continued {
        from: Sender,
        foreground: Option<i32>,
    },
    /// The terminal's foreground could not be handed to the app's group `pgid`.
    ForegroundFailed {
        pgid: i32,
        err: Errno,
    },

    // Reaping.
    Reaped {
        pid: i32,
        exit: Exit,
    },
    /// As `Reaped`, at warning level (--warn-on-reap).
    ReapedOrphan {
        pid: i32,
        exit: Exit,
    },

    // Restarts. `generation`/`pid`: the one the event is about; `current`/`current_pid`: the one
    // serving.
    RestartIgnored {
        by: Trigger,
        busy: Busy,
    },
    Restarting {
        by: Trigger,
        generation: u32,
        pid: i32,
        current: u32,
        current_pid: i32,
        wait: ReadyWait,
    },
    /// The restart signal, without sockets to hand over: generation `generation` is stopped
    /// with the stop sequence (`stop`: its stop signal, None when rewritten to 0), then started
    /// again.
    RestartInPlace {
        by: Trigger,
        generation: u32,
        pid: i32,
        stop: Option<i32>,
        grace: Duration,
    },
    /// A restart in place started generation `generation`; `after`: since the restart began.
    RestartedInPlace {
        generation: u32,
        pid: i32,
        previous: u32,
        after: Duration,
    },
    /// A restart in place could not start generation `generation` (`what`: the step that
    /// failed, `run` when exec did): sigward exits with `status`.
    RestartInPlaceFailed {
        generation: u32,
        what: &'a str,
        err: Errno,
        status: i32,
    },
    /// A stop signal during a restart in place: it becomes the real stop, and no new generation
    /// starts. Whoever is left has had the stop signal already (`told`), unless it is rewritten
    /// to 0 (nobody had it, nobody gets it).
    RestartBecameStop {
        sig: i32,
        from: Sender,
        generation: u32,
        told: bool,
    },
    RestartNoNotifySocket {
        generation: u32,
        err: Errno,
    },
    RestartCannotRun {
        generation: u32,
        err: Errno,
        current: u32,
    },
    RestartCannotStart {
        generation: u32,
        what: &'a str,
        err: Errno,
        current: u32,
    },
    Ready {
        generation: u32,
        pid: i32,
    },
    /// `generation` is now serving; the old one was sent `sig` (None: rewritten to 0).
    Promoted {
        generation: u32,
        pid: i32,
        after: Duration,
        retiring: u32,
        retiring_pid: i32,
        sig: Option<i32>,
        grace: Duration,
    },
    Abandoned {
        generation: u32,
        pid: i32,
        why: Abandon,
        current: u32,
        current_pid: i32,
    },
    /// A replaced generation's main process exited.
    Retired {
        generation: u32,
        pid: i32,
        exit: Exit,
        after: Duration,
    },
    RetiredKilled {
        generation: u32,
        pid: i32,
        grace: Duration,
        count: usize,
    },
    /// A datagram on generation `generation`'s notify socket from a process outside it;
    /// `suppressed` more were refused silently since the last such warning (rate limit).
    NotifyRefused {
        sender: i32,
        generation: u32,
        suppressed: u64,
    },
    /// sigward's own NOTIFY_SOCKET cannot be used (vsock:, a path too long): its parent will
    /// hear nothing from it.
    UpstreamUnusable {
        err: Errno,
    },
    /// A notify datagram longer than sigward reads: not parsed, since its end is cut.
    NotifyTruncated {
        generation: u32,
        len: usize,
    },
    NotifyFailed {
        generation: u32,
        err: Errno,
    },
    /// A starting generation ended while sigward was stopping (it had the stop signal too).
    StartingExited {
        generation: u32,
        pid: i32,
        exit: Exit,
    },
    AppStatus {
        generation: u32,
        status: &'a [u8],
    },
    AppStopping {
        generation: u32,
    },
    AppReloading {
        generation: u32,
    },

    // Configuration reloads (--watch). Paths are bytes (not always UTF-8).
    /// A watched path does not exist yet: waiting for it, watching `dir`.
    WatchWaiting {
        path: &'a [u8],
        dir: &'a [u8],
    },
    /// A path cannot be watched (`start`: at start-up, which fails).
    WatchFailed {
        path: &'a [u8],
        err: Errno,
        start: bool,
    },
    WatchReadFailed {
        err: Errno,
    },
    /// What changed, and what sigward does about it.
    ConfigChanged {
        changed: Changed<'a>,
        then: Reload,
    },

    /// Lines that could not be written; said before the next line that can be.
    LogLinesDropped {
        count: u64,
    },

    // Why it died (see `diagnose`). `name`: the command's name for the main child or a
    // generation's main process; None for another process (reaped, so its name is gone).
    Died {
        name: Option<&'a [u8]>,
        pid: i32,
        cause: Cause,
    },
    /// The termination message (see `termination`): written, or why not.
    TerminationLog {
        path: &'a [u8],
        outcome: TermLog,
    },
}

/// What became of the termination message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermLog {
    Written(usize),
    /// The app wrote the file: left as it is.
    AppWrote,
    /// The default path does not exist (not on Kubernetes, or terminationMessagePath moved).
    Missing,
    /// Not a regular file (a symlink, a FIFO...): left alone.
    NotAFile,
    Failed(Errno),
}

/// Why a restart signal was ignored: the engine's one `Busy`, displayed here.
pub use crate::engine::Busy;

/// What a restart was asked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The restart signal, from `from`.
    Signal { sig: i32, from: Sender },
    /// A change of a watched path (`--on-change restart`).
    ConfigChange,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Trigger::Signal { sig, from } => {
                write!(f, "received {} from {}", Name(sig), from)
            }
            Trigger::ConfigChange => f.write_str("configuration changed"),
        }
    }
}

/// The watched paths that changed (at most a few named, `more` counted).
#[derive(Clone, Copy, Debug)]
pub struct Changed<'a> {
    pub paths: &'a [Vec<u8>],
    pub more: usize,
}

impl fmt::Display for Changed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.paths.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            Lossy(p).fmt(f)?;
        }
        if self.more > 0 {
            write!(f, " and {} more", self.more)?;
        }
        Ok(())
    }
}

/// What a configuration change led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// `sig` was sent to `target` (as [`Event::Forwarded`]'s target).
    Signalled {
        sig: i32,
        target: i32,
    },
    SignalFailed {
        sig: i32,
        target: i32,
        err: Errno,
    },
    /// A restart was asked for.
    Restart,
    /// A restart is under way: the action waits for it to be over.
    Deferred(Busy),
    /// The stop sequence is under way: no action.
    Dropped,
    /// Generation n, started in place after the change, reads it: no action.
    Covered(u32),
}

/// What a starting generation waits for before it takes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyWait {
    /// READY=1, up to this timeout.
    Notify(Duration),
    /// A fixed time (`--ready after:`).
    After(Duration),
}

/// Why a starting generation was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abandon {
    ExitedBeforeReady(Exit),
    NotReadyAfter(Duration),
}

/// At most this many stragglers are named in one log line.
const NAMED_STRAGGLERS: usize = 20;

impl Event<'_> {
    pub fn level(&self) -> Level {
        self.meta().0
    }

    fn meta(&self) -> (Level, &'static str) {
        let mut m = Meta(Level::Error, "");
        let _ = self.describe(&mut m);
        (m.0, m.1)
    }

    /// The one description of each event. Every arm calls `head` first and stops when it says
    /// no, so a disabled event formats nothing. To add an event: a variant and an arm here.
    fn describe(&self, v: &mut dyn Visit) -> Option<()> {
        use Level::{Debug, Error, Info, Warn};
        match *self {
            Event::NoSubreaper { err } => {
                v.head(Warn, "subreaper")?;
                v.msg(format_args!(
                    "cannot become a child subreaper: {err}; orphans escape to PID 1"
                ));
            }
            Event::NoParentDeathSignal => {
                v.head(Warn, "pdeathsig")?;
                v.msg(format_args!("cannot set the parent-death signal"));
            }
            Event::ListenFailed { why } => {
                v.head(Error, "listen_failed")?;
                v.msg(format_args!("{why}"));
            }
            Event::NoSignalfd { err } => {
                v.head(Error, "start_failed")?;
                v.msg(format_args!("cannot create a signalfd: {err}"));
            }
            Event::NotifySocketFailed { err } => {
                v.head(Error, "start_failed")?;
                v.msg(format_args!("cannot make a notify socket: {err}"));
            }
            Event::ExecFailed { command, err } => {
                v.head(Error, "exec_failed")?;
                v.msg(format_args!(
                    "cannot run '{}': {}",
                    Lossy(command),
                    err.desc()
                ));
                v.int("errno", err as i64);
            }
            Event::StartFailed { what, err } => {
                v.head(Error, "start_failed")?;
                v.msg(format_args!("cannot start the command: {what}: {err}"));
            }
            Event::Started {
                command,
                pid,
                foreground,
                pid1,
            } => {
                v.head(Debug, "started")?;
                let own = if foreground {
                    "process group, terminal foreground"
                } else {
                    "session"
                };
                v.msg(format_args!(
                    "started {} as pid {pid} (own {own}), pid1={pid1}",
                    Lossy(command)
                ));
                v.int("pid", pid.into());
            }
            Event::Exiting { status } => {
                v.head(Debug, "exit")?;
                v.msg(format_args!(
                    "no process left; exiting with the main child's status {status}"
                ));
                v.int("status", status.into());
            }
            Event::Suspending {
                sig,
                app_stopped,
                pid,
            } => {
                v.head(Debug, "suspending")?;
                if app_stopped {
                    v.msg(format_args!(
                        "the app (pid {pid}) stopped on {}: sigward and its own process group stop too until SIGCONT, so the shell sees the job stopped",
                        Name(sig)
                    ));
                } else {
                    v.msg(format_args!(
                        "received {}: the app (pid {pid}) was stopped with SIGSTOP, and sigward stops too until SIGCONT",
                        Name(sig)
                    ));
                }
                v.text("signal", &Name(sig));
                v.int("pid", pid.into());
            }
            Event::Continued { from, foreground } => {
                v.head(Debug, "continued")?;
                match foreground {
                    Some(pgid) => v.msg(format_args!(
                        "continued by SIGCONT from {}; the terminal's foreground goes on to the app (process group {pgid})",
                        from
                    )),
                    None => v.msg(format_args!("continued by SIGCONT from {}", from)),
                }
                v.int("from_pid", from.pid.into());
                if let Some(pgid) = foreground {
                    v.int("pgid", pgid.into());
                }
            }
            Event::ForegroundFailed { pgid, err } => {
                v.head(Warn, "foreground")?;
                v.msg(format_args!(
                    "cannot give the terminal's foreground to the app (process group {pgid}): {err}; Ctrl-C now reaches sigward, which passes it on"
                ));
                v.int("pgid", pgid.into());
            }
            Event::SignalfdFailed { err } => {
                v.head(Warn, "signalfd")?;
                v.msg(format_args!("reading signals failed: {err}"));
            }
            Event::PollFailed { err } => {
                v.head(Warn, "poll")?;
                v.msg(format_args!("waiting for signals failed: {err}"));
            }
            Event::IgnoredOwnSignal { sig } => {
                v.head(Debug, "ignored")?;
                v.msg(format_args!(
                    "ignored {} raised by sigward itself",
                    Name(sig)
                ));
            }
            Event::StopSignalAfterExit { sig, from } => {
                v.head(Info, "stop_signal")?;
                v.msg(format_args!(
                    "received {} from {}: already stopping (the main child has exited and every process left has had the stop signal)",
                    Name(sig),
                    from
                ));
                v.text("signal", &Name(sig));
                v.int("from_pid", from.pid.into());
            }
            Event::IgnoredWhileKilling { sig } => {
                v.head(Debug, "ignored")?;
                v.msg(format_args!("ignored {}: already killing", Name(sig)));
            }
            Event::Forwarded {
                received,
                sent,
                target,
                stopping,
            } => {
                v.head(if stopping { Info } else { Debug }, "forwarded")?;
                if received == sent {
                    v.msg(format_args!(
                        "forwarded {} to {}",
                        Name(sent),
                        Target(target)
                    ));
                } else {
                    v.msg(format_args!(
                        "forwarded {} as {} to {}",
                        Name(received),
                        Name(sent),
                        Target(target)
                    ));
                }
                v.text("signal", &Name(sent));
                v.int("pid", target.into());
                if received != sent {
                    v.text("received", &Name(received));
                }
            }
            Event::DroppedRewritten { sig } => {
                v.head(Debug, "dropped")?;
                v.msg(format_args!("dropped {} (rewritten to 0)", Name(sig)));
            }
            Event::DroppedChildGone { sig } => {
                v.head(Debug, "dropped")?;
                v.msg(format_args!("dropped {} (the child has exited)", Name(sig)));
            }
            Event::DroppedNobodyLeft { sig, target } => {
                v.head(Debug, "dropped")?;
                v.msg(format_args!(
                    "dropped {}: nobody left in {}",
                    Name(sig),
                    Target(target)
                ));
            }
            Event::ForwardFailed { sig, target, err } => {
                v.head(Warn, "forward")?;
                v.msg(format_args!(
                    "could not send {} to {}: {err}",
                    Name(sig),
                    Target(target)
                ));
            }
            Event::StopSignal { sig, from, grace } => {
                v.head(Info, "stop_signal")?;
                v.msg(format_args!(
                    "received {} from {}: stopping, grace period {}",
                    Name(sig),
                    from,
                    Dur(grace)
                ));
                v.text("signal", &Name(sig));
                v.int("from_pid", from.pid.into());
                v.int("grace_ms", ms(grace));
            }
            Event::PreStopDelay { sig, delay } => {
                v.head(Info, "pre_stop_delay")?;
                v.msg(format_args!(
                    "holding {} for the pre-stop delay of {}; the app keeps serving",
                    Name(sig),
                    Dur(delay)
                ));
                v.text("signal", &Name(sig));
                v.int("delay_ms", ms(delay));
            }
            Event::DelayCut { sig, from } => {
                v.head(Info, "delay_cut")?;
                v.msg(format_args!(
                    "received {} from {} during the pre-stop delay: ending it now",
                    Name(sig),
                    from
                ));
                v.text("signal", &Name(sig));
                v.int("from_pid", from.pid.into());
            }
            Event::StopSignalAgain { sig, from } => {
                v.head(Info, "stop_signal_again")?;
                v.msg(format_args!(
                    "received {} from {} while draining: forwarding it",
                    Name(sig),
                    from
                ));
                v.text("signal", &Name(sig));
                v.int("from_pid", from.pid.into());
            }
            Event::DelayOver => {
                v.head(Info, "delay_over")?;
                v.msg(format_args!("pre-stop delay over"));
            }
            Event::Leftovers {
                count,
                sent,
                sig,
                wait,
            } => {
                v.head(Info, "leftovers")?;
                let had = count.saturating_sub(sent);
                v.msg(format_args!(
                    "{} left after the main child exited: {}, waiting up to {} for them",
                    Count(count, "process", "processes"),
                    Told { sent, had, sig },
                    Dur(wait)
                ));
                v.int("count", int(count));
                v.int("sent", int(sent));
                v.text("signal", &Name(sig));
                v.int("wait_ms", ms(wait));
            }
            Event::TreeUnseen { err, sig, exiting } => {
                v.head(Warn, "tree_unseen")?;
                let (when, then) = if exiting {
                    (
                        "the grace period is over",
                        "; exiting: any process outside it is neither seen nor waited for",
                    )
                } else {
                    ("the main child exited", " instead")
                };
                v.msg(format_args!(
                    "{when}, but the processes left cannot be listed (/proc: {err}): sent {} to the app's process group{then}",
                    Name(sig)
                ));
                v.text("signal", &Name(sig));
            }
            Event::LeftoversUnsignalled { count, sig } => {
                v.head(Info, "leftovers")?;
                v.msg(format_args!(
                    "{} left after the main child exited; {} is rewritten to 0, so none is signalled",
                    Count(count, "process", "processes"),
                    Name(sig)
                ));
            }
            Event::StragglersKilled { grace, stragglers } => {
                v.head(Warn, "stragglers_killed")?;
                v.msg(format_args!(
                    "grace period of {} is over: killing {}: {}",
                    Dur(grace),
                    Count(stragglers.len(), "straggler", "stragglers"),
                    Stragglers(stragglers)
                ));
                v.int("count", int(stragglers.len()));
                v.text("stragglers", &Stragglers(stragglers));
            }
            Event::ChildExited {
                command,
                pid,
                exit,
                after,
                quiet,
            } => {
                v.head(if quiet { Debug } else { Info }, "child_exited")?;
                v.msg(format_args!(
                    "{} (pid {pid}) exited with {} after {} ms",
                    Lossy(command),
                    Status(exit),
                    after.as_millis()
                ));
                v.int("pid", pid.into());
                v.int("status", exit.status().into());
                v.int("after_ms", ms(after));
            }
            Event::Reaped { pid, exit } => {
                v.head(Debug, "reaped")?;
                v.msg(format_args!("reaped {pid} ({})", Status(exit)));
                v.int("pid", pid.into());
            }
            Event::ReapedOrphan { pid, exit } => {
                v.head(Warn, "reaped")?;
                v.msg(format_args!("reaped orphan {pid} ({})", Status(exit)));
            }
            Event::RestartIgnored { by, busy } => {
                v.head(Warn, "restart_ignored")?;
                v.msg(format_args!("{by}: restart ignored, {busy}"));
                if let Trigger::Signal { sig, .. } = by {
                    v.text("signal", &Name(sig));
                }
            }
            Event::Restarting {
                by,
                generation,
                pid,
                current,
                current_pid,
                wait,
            } => {
                v.head(Info, "restart")?;
                v.msg(format_args!(
                    "{by}: starting generation {generation} as pid {pid} beside generation {current} (pid {current_pid}); waiting for {wait}"
                ));
                v.int("generation", generation.into());
                v.int("pid", pid.into());
            }
            Event::RestartInPlace {
                by,
                generation,
                pid,
                stop,
                grace,
            } => {
                v.head(Info, "restart_in_place")?;
                v.msg(format_args!(
                    "{by}: restarting in place: stopping generation {generation} (pid {pid}) with {}, grace period {}",
                    MaybeSig(stop),
                    Dur(grace)
                ));
                if let Trigger::Signal { sig, from } = by {
                    v.text("signal", &Name(sig));
                    v.int("from_pid", from.pid.into());
                }
                v.int("generation", generation.into());
                v.int("pid", pid.into());
                v.int("grace_ms", ms(grace));
            }
            Event::RestartedInPlace {
                generation,
                pid,
                previous,
                after,
            } => {
                v.head(Info, "restarted")?;
                v.msg(format_args!(
                    "generation {generation} started as pid {pid}, {} ms after generation {previous} was told to stop",
                    after.as_millis()
                ));
                v.int("generation", generation.into());
                v.int("pid", pid.into());
                v.int("after_ms", ms(after));
            }
            Event::RestartInPlaceFailed {
                generation,
                what,
                err,
                status,
            } => {
                v.head(Error, "restart_failed")?;
                v.msg(format_args!(
                    "generation {generation} cannot {what}: {}; exiting with status {status}",
                    err.desc()
                ));
                v.int("generation", generation.into());
                v.int("errno", err as i64);
                v.int("status", status.into());
            }
            Event::RestartBecameStop {
                sig,
                from,
                generation,
                told,
            } => {
                v.head(Info, "stop_signal")?;
                v.msg(format_args!(
                    "received {} from {} during a restart: stopping instead, generation {} will not start ({})",
                    Name(sig),
                    from,
                    generation.saturating_add(1),
                    if told {
                        "everything left already had the stop signal"
                    } else {
                        "the stop signal is rewritten to 0: nobody is signalled"
                    }
                ));
                v.text("signal", &Name(sig));
                v.int("from_pid", from.pid.into());
            }
            Event::WatchWaiting { path, dir } => {
                v.head(Info, "watch_waiting")?;
                v.msg(format_args!(
                    "{} does not exist yet: waiting for it (watching {})",
                    Lossy(path),
                    Lossy(dir)
                ));
                v.text("path", &Lossy(path));
            }
            Event::WatchFailed { path, err, start } => {
                v.head(if start { Error } else { Warn }, "watch_failed")?;
                // The kernel's words for its inotify limits say nothing of inotify.
                let limit = match err {
                    Errno::ENOSPC => " (no inotify watches left: fs.inotify.max_user_watches)",
                    Errno::EMFILE => " (no inotify instances left: fs.inotify.max_user_instances)",
                    _ => "",
                };
                if start {
                    v.msg(format_args!("cannot watch {}: {err}{limit}", Lossy(path)));
                } else {
                    v.msg(format_args!(
                        "cannot watch {} any more: {err}{limit}; its changes go unseen",
                        Lossy(path)
                    ));
                }
                v.text("path", &Lossy(path));
                v.int("errno", err as i64);
            }
            Event::WatchReadFailed { err } => {
                v.head(Warn, "watch_failed")?;
                v.msg(format_args!("reading watch events failed: {err}"));
            }
            Event::ConfigChanged { changed, then } => {
                let level = match then {
                    Reload::SignalFailed { .. } => Warn,
                    _ => Info,
                };
                v.head(level, "config_changed")?;
                match then {
                    Reload::Signalled { sig, target } => v.msg(format_args!(
                        "config changed ({changed}): sent {} to {}",
                        Name(sig),
                        Target(target)
                    )),
                    Reload::SignalFailed { sig, target, err } => v.msg(format_args!(
                        "config changed ({changed}): could not send {} to {}: {err}",
                        Name(sig),
                        Target(target)
                    )),
                    Reload::Restart => v.msg(format_args!(
                        "config changed ({changed}): restarting the app"
                    )),
                    Reload::Deferred(busy) => v.msg(format_args!(
                        "config changed ({changed}): {busy}; acting once the restart is over"
                    )),
                    Reload::Dropped => v.msg(format_args!(
                        "config changed ({changed}) during the stop sequence: not acting on it"
                    )),
                    Reload::Covered(n) => v.msg(format_args!(
                        "config changed ({changed}): generation {n} started after it and reads it"
                    )),
                }
                v.text("paths", &changed);
                v.text(
                    "action",
                    &match then {
                        Reload::Signalled { .. } => "signal",
                        Reload::SignalFailed { .. } => "signal_failed",
                        Reload::Restart => "restart",
                        Reload::Deferred(_) => "deferred",
                        Reload::Dropped => "dropped",
                        Reload::Covered(_) => "covered",
                    },
                );
                if let Reload::Signalled { sig, target }
                | Reload::SignalFailed { sig, target, .. } = then
                {
                    v.text("signal", &Name(sig));
                    v.int("pid", target.into());
                }
            }
            Event::RestartNoNotifySocket { generation, err } => {
                v.head(Warn, "restart_failed")?;
                v.msg(format_args!(
                    "cannot make generation {generation}'s notify socket: {err}"
                ));
            }
            Event::RestartCannotRun {
                generation,
                err,
                current,
            } => {
                v.head(Warn, "restart_failed")?;
                v.msg(format_args!(
                    "generation {generation} cannot run: {}; generation {current} keeps serving",
                    err.desc()
                ));
            }
            Event::RestartCannotStart {
                generation,
                what,
                err,
                current,
            } => {
                v.head(Warn, "restart_failed")?;
                v.msg(format_args!(
                    "generation {generation} cannot start: {what}: {err}; generation {current} keeps serving"
                ));
            }
            Event::Ready { generation, pid } => {
                v.head(Info, "ready")?;
                v.msg(format_args!("generation {generation} (pid {pid}) is ready"));
                v.int("generation", generation.into());
            }
            Event::Promoted {
                generation,
                pid,
                after,
                retiring,
                retiring_pid,
                sig,
                grace,
            } => {
                v.head(Info, "promoted")?;
                v.msg(format_args!(
                    "generation {generation} (pid {pid}) ready after {} ms and now serving; stopping generation {retiring} (pid {retiring_pid}) with {}, grace period {}",
                    after.as_millis(),
                    MaybeSig(sig),
                    Dur(grace)
                ));
                v.int("generation", generation.into());
                v.int("pid", pid.into());
                v.int("retiring", retiring_pid.into());
            }
            Event::Abandoned {
                generation,
                pid,
                why,
                current,
                current_pid,
            } => {
                v.head(Warn, "restart_abandoned")?;
                v.msg(format_args!(
                    "generation {generation} (pid {pid}) abandoned: {why}; generation {current} (pid {current_pid}) keeps serving"
                ));
            }
            Event::Retired {
                generation,
                pid,
                exit,
                after,
            } => {
                v.head(Info, "retired")?;
                v.msg(format_args!(
                    "generation {generation} (pid {pid}) exited with {} after {} ms",
                    Status(exit),
                    after.as_millis()
                ));
                v.int("generation", generation.into());
                v.int("status", exit.status().into());
            }
            Event::RetiredKilled {
                generation,
                pid,
                grace,
                count,
            } => {
                v.head(Warn, "retired_killed")?;
                v.msg(format_args!(
                    "generation {generation} (pid {pid}) did not finish within the grace period of {}: killed {}",
                    Dur(grace),
                    Count(count, "process", "processes")
                ));
                v.int("generation", generation.into());
                v.int("count", int(count));
            }
            Event::NotifyRefused {
                sender,
                generation,
                suppressed,
            } => {
                v.head(Warn, "notify_refused")?;
                v.msg(format_args!(
                    "ignored a notify message from pid {sender}: not generation {generation}{}",
                    crate::notify::Suppressed(suppressed)
                ));
                v.int("from_pid", sender.into());
                v.int("suppressed", suppressed.min(i64::MAX as u64) as i64);
            }
            Event::UpstreamUnusable { err } => {
                v.head(Warn, "notify")?;
                v.msg(format_args!(
                    "cannot use NOTIFY_SOCKET: {err}; the parent will get no READY=1 from sigward"
                ));
            }
            Event::NotifyTruncated { generation, len } => {
                v.head(Warn, "notify_truncated")?;
                v.msg(format_args!(
                    "ignored a {len}-byte notify message from generation {generation}: longer than {} bytes",
                    crate::notify::MAX_DATAGRAM
                ));
            }
            Event::NotifyFailed { generation, err } => {
                v.head(Warn, "notify")?;
                v.msg(format_args!(
                    "reading generation {generation}'s notify socket failed: {err}"
                ));
            }
            Event::StartingExited {
                generation,
                pid,
                exit,
            } => {
                v.head(Info, "retired")?;
                v.msg(format_args!(
                    "generation {generation} (pid {pid}) exited with {} while stopping",
                    Status(exit)
                ));
                v.int("generation", generation.into());
                v.int("status", exit.status().into());
            }
            Event::AppStatus { generation, status } => {
                v.head(Info, "status")?;
                v.msg(format_args!(
                    "generation {generation} status: {}",
                    Lossy(status)
                ));
                v.int("generation", generation.into());
            }
            Event::AppStopping { generation } => {
                v.head(Info, "stopping")?;
                v.msg(format_args!("generation {generation} says it is stopping"));
            }
            Event::AppReloading { generation } => {
                v.head(Info, "reloading")?;
                v.msg(format_args!("generation {generation} says it is reloading"));
            }
            Event::LogLinesDropped { count } => {
                v.head(Warn, "log_dropped")?;
                v.msg(format_args!(
                    "{} dropped: stderr was not writable",
                    Count(
                        usize::try_from(count).unwrap_or(usize::MAX),
                        "log line",
                        "log lines"
                    )
                ));
                v.int("count", i64::try_from(count).unwrap_or(i64::MAX));
            }
            Event::Died { name, pid, cause } => {
                let who = Who(name, pid);
                match cause {
                    Cause::Oom(limit) => {
                        v.head(Warn, "oom_killed")?;
                        v.msg(format_args!(
                            "{who} was killed by the kernel's OOM killer ({})",
                            MemoryLimit(limit)
                        ));
                    }
                    Cause::MaybeOom {
                        kills,
                        deaths,
                        limit,
                    } => {
                        v.head(Warn, "killed")?;
                        v.msg(format_args!(
                            "{who} was killed by SIGKILL: the kernel's OOM killer killed {kills} of the {deaths} processes that just died of SIGKILL, which ones it does not say ({})",
                            MemoryLimit(limit)
                        ));
                    }
                    Cause::Outside => {
                        v.head(Warn, "killed")?;
                        v.msg(format_args!(
                            "{who} was killed by SIGKILL from outside sigward (not an OOM kill)"
                        ));
                    }
                    Cause::Unknown => {
                        v.head(Warn, "killed")?;
                        v.msg(format_args!(
                            "{who} was killed by SIGKILL from outside sigward (OOM kill unknown: no memory cgroup counter readable)"
                        ));
                    }
                    Cause::Core(sig) => {
                        v.head(Warn, "core_dumped")?;
                        v.msg(format_args!("{who} dumped core ({})", Name(sig)));
                    }
                }
                v.int("pid", pid.into());
                if let Some(name) = name {
                    v.text("name", &Lossy(name));
                }
                let sig = match cause {
                    Cause::Core(sig) => sig,
                    _ => libc::SIGKILL,
                };
                v.text("signal", &Name(sig));
                v.flag("core", matches!(cause, Cause::Core(_)));
                match cause {
                    Cause::Oom(limit) | Cause::MaybeOom { limit, .. } => {
                        // MaybeOom: the kernel does not say whose kill it was; no oom, no sender.
                        if let Cause::Oom(_) = cause {
                            v.flag("oom", true);
                            v.text("sender", &"kernel OOM killer");
                        }
                        if let Limit::Bytes(b) = limit {
                            v.int("memory_limit", i64::try_from(b).unwrap_or(i64::MAX));
                        }
                    }
                    Cause::Outside => {
                        v.flag("oom", false);
                        v.text("sender", &"outside sigward");
                    }
                    Cause::Unknown => v.text("sender", &"outside sigward"),
                    Cause::Core(_) => {}
                }
            }
            Event::TerminationLog { path, outcome } => {
                let path = Lossy(path);
                match outcome {
                    TermLog::Written(n) => {
                        v.head(Debug, "termination_log")?;
                        v.msg(format_args!(
                            "wrote the termination message to {path} ({n} bytes)"
                        ));
                        v.int("bytes", int(n));
                    }
                    TermLog::AppWrote => {
                        v.head(Debug, "termination_log")?;
                        v.msg(format_args!(
                            "{path} holds the app's own termination message: left as it is"
                        ));
                    }
                    TermLog::Missing => {
                        v.head(Debug, "termination_log")?;
                        v.msg(format_args!("no {path}: no termination message written"));
                    }
                    TermLog::NotAFile => {
                        v.head(Warn, "termination_log")?;
                        v.msg(format_args!(
                            "{path} is not a regular file (a symlink?): no termination message written"
                        ));
                    }
                    TermLog::Failed(err) => {
                        v.head(Warn, "termination_log")?;
                        v.msg(format_args!(
                            "cannot write the termination message to {path}: {err}"
                        ));
                    }
                }
                v.text("path", &path);
            }
        }
        Some(())
    }
}

/// What [`Event::describe`] tells, in order: head, sentence, then the fields.
trait Visit {
    /// None: the event is not to be written, and the describer stops here.
    fn head(&mut self, level: Level, event: &'static str) -> Option<()>;
    fn msg(&mut self, msg: fmt::Arguments<'_>);
    fn int(&mut self, key: &'static str, n: i64);
    /// A string field (JSON-escaped); its value is formatted only if it is written.
    fn text(&mut self, key: &'static str, value: &dyn fmt::Display);
    /// A true/false field.
    fn flag(&mut self, key: &'static str, b: bool);
}

/// Learns level and name, formats nothing.
struct Meta(Level, &'static str);

impl Visit for Meta {
    fn head(&mut self, level: Level, event: &'static str) -> Option<()> {
        (self.0, self.1) = (level, event);
        None
    }
    fn msg(&mut self, _: fmt::Arguments<'_>) {}
    fn int(&mut self, _: &'static str, _: i64) {}
    fn text(&mut self, _: &'static str, _: &dyn fmt::Display) {}
    fn flag(&mut self, _: &'static str, _: bool) {}
}

/// The sentence only.
struct Sentence(String);

impl Visit for Sentence {
    fn head(&mut self, _: Level, _: &'static str) -> Option<()> {
        Some(())
    }
    fn msg(&mut self, msg: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(msg);
    }
    fn int(&mut self, _: &'static str, _: i64) {}
    fn text(&mut self, _: &'static str, _: &dyn fmt::Display) {}
    fn flag(&mut self, _: &'static str, _: bool) {}
}

/// `sigward: <sentence>` or `sigward: warning: <sentence>`; fields are in the sentence.
struct Text<'l> {
    line: &'l mut Line,
    max: Level,
}

impl Visit for Text<'_> {
    fn head(&mut self, level: Level, _: &'static str) -> Option<()> {
        if level > self.max {
            return None;
        }
        let _ = self.line.write_str(match level {
            Level::Warn => "sigward: warning: ",
            _ => "sigward: ",
        });
        Some(())
    }
    fn msg(&mut self, msg: fmt::Arguments<'_>) {
        let _ = self.line.write_fmt(msg);
    }
    fn int(&mut self, _: &'static str, _: i64) {}
    fn text(&mut self, _: &'static str, _: &dyn fmt::Display) {}
    fn flag(&mut self, _: &'static str, _: bool) {}
}

/// `{"ts":...,"level":...,"event":...,"msg":...,<fields>}` (the closing brace is the caller's).
struct Json<'l> {
    line: &'l mut Line,
    max: Level,
    clock: fn() -> SystemTime,
}

/// The longest a JSON string value may be, escaped: with the fixed parts, three long strings
/// (msg and two fields) still fit in one PIPE_BUF write.
const JSON_MSG_MAX: usize = 2048;
const JSON_FIELD_MAX: usize = 1024;

impl Visit for Json<'_> {
    fn head(&mut self, level: Level, event: &'static str) -> Option<()> {
        if level > self.max {
            return None;
        }
        let _ = write!(
            self.line,
            "{{\"ts\":\"{}\",\"level\":\"{}\",\"event\":\"{event}\"",
            Timestamp((self.clock)()),
            level_name(level)
        );
        Some(())
    }
    fn msg(&mut self, msg: fmt::Arguments<'_>) {
        json_field(self.line, "msg", &msg, JSON_MSG_MAX);
    }
    fn int(&mut self, key: &'static str, n: i64) {
        let _ = write!(self.line, ",\"{key}\":{n}");
    }
    fn text(&mut self, key: &'static str, value: &dyn fmt::Display) {
        json_field(self.line, key, value, JSON_FIELD_MAX);
    }
    fn flag(&mut self, key: &'static str, b: bool) {
        let _ = write!(self.line, ",\"{key}\":{b}");
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
    }
}

/// `,"key":"value"`, the value escaped and cut after `max` bytes. Keys are plain ASCII literals.
fn json_field(line: &mut Line, key: &str, value: &dyn fmt::Display, max: usize) {
    let _ = write!(line, ",\"{key}\":\"");
    let mut s = JsonStr {
        line,
        left: max,
        cut: false,
    };
    let _ = write!(s, "{value}");
    if s.cut {
        let _ = s.line.write_str(CUT);
    }
    let _ = line.write_str("\"");
}

/// Escapes what it is given into a JSON string's inside, up to a budget of bytes.
struct JsonStr<'l> {
    line: &'l mut Line,
    left: usize,
    cut: bool,
}

impl fmt::Write for JsonStr<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut utf8 = [0u8; 4];
            // The escaped form, or None for a control character written as \u00XX.
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                c if u32::from(c) < 0x20 => None,
                c => Some(c.encode_utf8(&mut utf8)),
            };
            let len = esc.map_or(6, str::len);
            if len > self.left {
                self.cut = true;
                return Err(fmt::Error); // stops the formatting: the rest is not wanted
            }
            self.left -= len;
            match esc {
                Some(esc) => self.line.write_str(esc)?,
                None => write!(self.line, "\\u{:04x}", u32::from(c))?,
            }
        }
        Ok(())
    }
}

/// The marker a cut line or string ends with.
const CUT: &str = " [truncated]";
/// One write(2) of at most this many bytes to a pipe is atomic.
const PIPE_BUF: usize = libc::PIPE_BUF;
/// Room for a line's text: the marker and the newline always fit after it.
const LINE_ROOM: usize = PIPE_BUF - CUT.len() - 1;

/// One rendered line, never longer than PIPE_BUF with its newline. Reused: no allocation per
/// line once it has grown.
struct Line {
    buf: Vec<u8>,
    cut: bool,
}

impl Line {
    const fn new() -> Line {
        Line {
            buf: Vec::new(),
            cut: false,
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.cut = false;
    }

    /// Ends the line: the marker if it was cut, `close` (JSON's brace) if not, and the newline.
    fn finish(&mut self, close: &str) {
        let end = if self.cut { CUT } else { close };
        self.buf.extend_from_slice(end.as_bytes());
        self.buf.push(b'\n');
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_ROOM.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.extend_from_slice(s.as_bytes());
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        self.buf
            .extend_from_slice(s.get(..end).unwrap_or_default().as_bytes());
        self.cut = true;
        Err(fmt::Error)
    }
}

/// A duration as the command line takes it: `250ms`, `1.5s`, `30s`, `2m`, `1m30s`.
pub struct Dur(pub Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (s, frac) = (ms / 1000, ms % 1000);
        if ms < 1000 {
            write!(f, "{ms}ms")
        } else if frac != 0 {
            // Milliseconds without trailing zeros: 1.5s, 1.25s, 1.125s.
            if frac.is_multiple_of(100) {
                write!(f, "{s}.{}s", frac / 100)
            } else if frac.is_multiple_of(10) {
                write!(f, "{s}.{:02}s", frac / 10)
            } else {
                write!(f, "{s}.{frac:03}s")
            }
        } else if ms >= 60_000 && ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms > 60_000 {
            write!(f, "{}m{}s", ms / 60_000, s % 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `status 3` or `signal SIGKILL (status 137)`.
struct Status(Exit);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Exit::Code(c) => write!(f, "status {c}"),
            Exit::Signal { sig, core } => write!(
                f,
                "signal {} (status {}){}",
                Name(sig),
                self.0.status(),
                if core { ", core dumped" } else { "" }
            ),
        }
    }
}

/// `server (pid 7)`, or `pid 12` when the name is not known.
struct Who<'a>(Option<&'a [u8]>, i32);

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "{} (pid {})", Lossy(name), self.1),
            None => write!(f, "pid {}", self.1),
        }
    }
}

/// `memory limit 64 MiB`, `no memory limit`, `memory limit unknown`.
pub struct MemoryLimit(pub Limit);

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        match self.0 {
            Limit::None => f.write_str("no memory limit"),
            Limit::Unknown => f.write_str("memory limit unknown"),
            Limit::Bytes(b) => match UNITS.iter().find(|(u, _)| b >= *u && b % u == 0) {
                Some((u, name)) => write!(f, "memory limit {} {name}", b / u),
                None => write!(f, "memory limit {b} bytes"),
            },
        }
    }
}

/// A kill(2) target: `process group 5` for -5, `child 5` for 5.
struct Target(i32);

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.0 < 0 { "process group" } else { "child" };
        write!(f, "{what} {}", self.0.unsigned_abs())
    }
}

/// `SIGTERM`, or what happens when the signal is rewritten to 0.
struct MaybeSig(Option<i32>);

impl fmt::Display for MaybeSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => Name(s).fmt(f),
            // Not always SIGTERM: whichever stop signal `-S` names first.
            None => f.write_str("nothing (the stop signal is rewritten to 0)"),
        }
    }
}

/// `1 process`, `3 processes`: a count with its noun.
struct Count(usize, &'static str, &'static str);

/// Who of the leftovers was sent the stop signal now and who had it already: `sent SIGTERM`,
/// `sent SIGTERM to 1, 2 already had it`, `all had SIGTERM already`.
struct Told {
    sent: usize,
    had: usize,
    sig: i32,
}

impl fmt::Display for Told {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = Name(self.sig);
        match (self.sent, self.had) {
            (_, 0) => write!(f, "sent {sig}"),
            (0, 1) => write!(f, "it had {sig} already"),
            (0, _) => write!(f, "all had {sig} already"),
            (sent, had) => write!(f, "sent {sig} to {sent}, {had} already had it"),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.0 == 1 { self.1 } else { self.2 };
        write!(f, "{} {noun}", self.0)
    }
}

/// `12 (nginx), 13 (sh) and 4 more`.
pub struct Stragglers<'a>(pub &'a [Proc]);

impl fmt::Display for Stragglers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().take(NAMED_STRAGGLERS).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} ({})", p.pid, p.comm)?;
        }
        if let Some(more) = self
            .0
            .len()
            .checked_sub(NAMED_STRAGGLERS)
            .filter(|&n| n > 0)
        {
            write!(f, " and {more} more")?;
        }
        Ok(())
    }
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::Stopping => f.write_str("sigward is stopping"),
            Busy::Starting(n) => write!(f, "generation {n} is still starting"),
            Busy::Draining(n) => write!(f, "generation {n} is still draining"),
            Busy::Restarting(n) => write!(f, "generation {n} is being restarted"),
            Busy::Ended => f.write_str("the app has exited"),
        }
    }
}

impl fmt::Display for ReadyWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReadyWait::Notify(timeout) => write!(f, "READY=1, up to {}", Dur(timeout)),
            ReadyWait::After(d) => write!(f, "{} (after:)", Dur(d)),
        }
    }
}

impl fmt::Display for Abandon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Abandon::ExitedBeforeReady(exit) => {
                write!(f, "it exited with {} before it was ready", Status(exit))
            }
            Abandon::NotReadyAfter(d) => write!(f, "it was not ready after {}", Dur(d)),
        }
    }
}

/// RFC 3339 UTC timestamp with milliseconds, computed without a time-zone database.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        // Seconds past i64 are ~292 billion years away; clamp rather than wrap.
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// How lines reach the log's fd without ever blocking, chosen once from what the fd is.
enum Writing {
    /// A pipe or terminal, written through an open file description of our own that has
    /// O_NONBLOCK; the app's (fd 2's) keeps blocking writes.
    Own(OwnedFd),
    /// A pipe or terminal that could not be reopened (no /proc yet): write only when poll says
    /// there is room. On a pipe that means a whole page, so a write of at most PIPE_BUF fits; a
    /// terminal in this mode may still block a write longer than its free room.
    PollFirst,
    /// send(2) with MSG_DONTWAIT (and MSG_NOSIGNAL).
    Socket,
    /// A regular file or anything else that does not block for a reader.
    Plain,
    /// Closed or broken for good (EBADF, EPIPE): nothing is written any more.
    Closed,
}

/// Where the log writes.
struct Sink {
    /// The fd as given: None for fd 2, or a test's own.
    target: Option<OwnedFd>,
    mode: Writing,
}

impl Sink {
    /// fd 2.
    fn stderr() -> Sink {
        Sink::over(None)
    }

    /// An fd of the caller's (tests).
    #[cfg(test)]
    fn on(fd: OwnedFd) -> Sink {
        Sink::over(Some(fd))
    }

    fn over(target: Option<OwnedFd>) -> Sink {
        let mut sink = Sink {
            target,
            mode: Writing::Closed,
        };
        sink.mode = match nix::sys::stat::fstat(sink.fd()) {
            Err(_) => Writing::Closed,
            Ok(st) => match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
                SFlag::S_IFIFO | SFlag::S_IFCHR => {
                    sink.reopen().map_or(Writing::PollFirst, Writing::Own)
                }
                SFlag::S_IFSOCK => Writing::Socket,
                _ => Writing::Plain,
            },
        };
        sink
    }

    /// A new open file description of the same pipe or terminal, with O_NONBLOCK ours alone.
    /// Fails without /proc, for a FIFO with no reader (ENXIO), or a terminal that refuses.
    fn reopen(&self) -> Option<OwnedFd> {
        let path = format!("/proc/self/fd/{}", self.fd().as_raw_fd());
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        nix::fcntl::open(path.as_str(), flags, Mode::empty()).ok()
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.target {
            // SAFETY: sigward never closes fd 2 (it closes inherited fds from 3 up); were it
            // closed anyway, writes to it would fail with EBADF, touching no memory.
            None => unsafe { BorrowedFd::borrow_raw(libc::STDERR_FILENO) },
            Some(fd) => fd.as_fd(),
        }
    }

    fn held_fd(&self) -> Option<RawFd> {
        match &self.mode {
            Writing::Own(fd) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    fn closed(&self) -> bool {
        matches!(self.mode, Writing::Closed)
    }

    /// One write that does not block: how many bytes went out, or EAGAIN when none could.
    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        loop {
            let result = match &self.mode {
                Writing::Own(fd) => nix::unistd::write(fd, buf),
                Writing::PollFirst if !self.has_room() => Err(Errno::EAGAIN),
                Writing::PollFirst | Writing::Plain => nix::unistd::write(self.fd(), buf),
                Writing::Socket => nix::sys::socket::send(
                    self.fd().as_raw_fd(),
                    buf,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                ),
                Writing::Closed => Err(Errno::EBADF),
            };
            match result {
                Err(Errno::EINTR) => continue,
                Ok(0) if !buf.is_empty() => return Err(Errno::EAGAIN),
                r => return r,
            }
        }
    }

    /// Whether a write would not block (or would fail at once: POLLERR, POLLNVAL also count).
    fn has_room(&self) -> bool {
        loop {
            let mut fds = [PollFd::new(self.fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) => return n > 0,
                Err(Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// The log's state: where it writes, what it renders, what it could not write.
struct Logger {
    sink: Sink,
    max: Level,
    json: bool,
    clock: fn() -> SystemTime,
    line: Line,
    /// The rest of a line a terminal or socket took only partly: it goes out before anything
    /// else, or the next line would be glued into it.
    pending: Vec<u8>,
    /// Lines dropped since the last one written.
    dropped: u64,
    /// See [`hold`]: lines rendered and not yet written, back to back, and where each ends.
    holding: bool,
    held: Vec<u8>,
    held_ends: Vec<usize>,
}

/// Held bytes at most: beyond, the held lines are written at once (a flood of events while
/// holding must not grow memory).
const HELD_MAX: usize = 8 * PIPE_BUF;

impl Logger {
    /// Before `configure`: stderr, written only when poll says there is room.
    const UNCONFIGURED: Logger = Logger {
        sink: Sink {
            target: None,
            mode: Writing::PollFirst,
        },
        max: Level::Info,
        json: false,
        clock: SystemTime::now,
        line: Line::new(),
        pending: Vec::new(),
        dropped: 0,
        holding: false,
        held: Vec::new(),
        held_ends: Vec::new(),
    };

    fn new(sink: Sink, max: Level, format: Format) -> Logger {
        Logger {
            sink,
            max,
            json: format == Format::Json,
            // Grown once here, not by doubling while the first lines of a stop are written
            // (five reallocs on the stop path, measured with callgrind).
            line: Line {
                buf: Vec::with_capacity(PIPE_BUF),
                cut: false,
            },
            // Sized once here too: holding happens on the stop path.
            held: Vec::with_capacity(2 * PIPE_BUF),
            held_ends: Vec::with_capacity(16),
            ..Logger::UNCONFIGURED
        }
    }

    fn emit(&mut self, e: &Event) {
        if self.sink.closed() || e.level() > self.max {
            return;
        }
        if self.holding {
            if !self.render(e, self.max) {
                return;
            }
            if self.held.len() + self.line.buf.len() > HELD_MAX {
                // release() writes through self.line: the new line waits aside meanwhile.
                let line = std::mem::take(&mut self.line.buf);
                self.release();
                self.holding = true;
                self.line.buf = line;
            }
            self.held.extend_from_slice(&self.line.buf);
            self.held_ends.push(self.held.len());
            HELD_ANY.store(true, Ordering::Relaxed);
            return;
        }
        self.send(e);
    }

    /// Writes the held lines in order (see [`hold`]), each as one write, and stops holding.
    fn release(&mut self) {
        self.holding = false;
        let held = std::mem::take(&mut self.held);
        let ends = std::mem::take(&mut self.held_ends);
        let mut start = 0;
        for &end in &ends {
            self.line.clear();
            self.line
                .buf
                .extend_from_slice(held.get(start..end).unwrap_or_default());
            start = end;
            self.send_line();
        }
        // Keep the capacity for the next stop.
        self.held = held;
        self.held.clear();
        self.held_ends = ends;
        self.held_ends.clear();
    }

    /// Renders `e` and writes it (after the dropped-lines notice, if one is owed).
    fn send(&mut self, e: &Event) {
        if self.dropped > 0 {
            // Said whatever the level: the lines it counts were wanted.
            let notice = Event::LogLinesDropped {
                count: self.dropped,
            };
            if !(self.render(&notice, Level::Debug) && self.put()) {
                self.dropped = self.dropped.saturating_add(1);
                return;
            }
            self.dropped = 0;
        }
        if self.render(e, self.max) && !self.put() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Writes the line already in `self.line` (a held one), after the dropped-lines notice.
    fn send_line(&mut self) {
        if self.sink.closed() {
            return;
        }
        if self.dropped > 0 {
            let line = std::mem::take(&mut self.line.buf);
            let notice = Event::LogLinesDropped {
                count: self.dropped,
            };
            let said = self.render(&notice, Level::Debug) && self.put();
            self.line.buf = line;
            if !said {
                self.dropped = self.dropped.saturating_add(1);
                return;
            }
            self.dropped = 0;
        }
        if !self.put() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    fn finish(&mut self, within: Duration) {
        let give_up = std::time::Instant::now().checked_add(within);
        while !self.sink.closed() && (!self.pending.is_empty() || self.dropped > 0) {
            let left = give_up.map_or(Duration::ZERO, |g| {
                g.saturating_duration_since(std::time::Instant::now())
            });
            if left.is_zero() {
                return;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.sink.fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            if self.dropped > 0 {
                let notice = Event::LogLinesDropped {
                    count: self.dropped,
                };
                if self.render(&notice, Level::Debug) && self.put() {
                    self.dropped = 0;
                }
            } else {
                self.line.clear();
                self.put();
            }
        }
    }

    /// Renders `e` into `self.line`; false if its level is above `max`.
    fn render(&mut self, e: &Event, max: Level) -> bool {
        self.line.clear();
        let shown = if self.json {
            let clock = self.clock;
            let mut v = Json {
                line: &mut self.line,
                max,
                clock,
            };
            e.describe(&mut v).is_some()
        } else {
            e.describe(&mut Text {
                line: &mut self.line,
                max,
            })
            .is_some()
        };
        self.line.finish(if self.json { "}" } else { "" });
        shown
    }

    /// Writes the rendered line (after any pending rest): whether it went out, at least in part.
    fn put(&mut self) -> bool {
        if !self.pending.is_empty() {
            match self.sink.write(&self.pending) {
                Ok(n) if n >= self.pending.len() => self.pending.clear(),
                Ok(n) => {
                    self.pending.drain(..n);
                    return false;
                }
                Err(e) => return self.failed(e),
            }
        }
        let line = &self.line.buf;
        match self.sink.write(line) {
            Ok(n) => {
                self.pending
                    .extend_from_slice(line.get(n..).unwrap_or_default());
                true
            }
            Err(e) => self.failed(e),
        }
    }

    /// EAGAIN and the like: dropped, try the next line. EPIPE, EBADF: the reader is gone for
    /// good; stop writing (a write to a broken pipe also raises a SIGPIPE each time).
    fn failed(&mut self, e: Errno) -> bool {
        // EFBIG: a file at RLIMIT_FSIZE; every further write raises SIGXFSZ at sigward, whose
        // "ignored own signal" line would write again: a busy loop at debug level.
        if matches!(e, Errno::EPIPE | Errno::EBADF | Errno::EFBIG) {
            self.sink.mode = Writing::Closed;
            self.pending.clear();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{FcntlArg, fcntl};
    use std::time::Instant;

    fn fixed_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_795_272_645_007)
    }

    /// A logger on its own pipe: (logger, read end).
    fn on_pipe(max: Level, format: Format) -> (Logger, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut log = Logger::new(Sink::on(w), max, format);
        log.clock = fixed_clock;
        (log, r)
    }

    /// Everything readable now from a pipe's read end.
    fn drain(r: &OwnedFd) -> String {
        fcntl(r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = nix::unistd::read(r, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).unwrap()
    }

    fn text(e: &Event) -> String {
        let (mut log, r) = on_pipe(Level::Debug, Format::Text);
        log.emit(e);
        drain(&r)
    }

    fn json(e: &Event) -> serde_json::Value {
        let (mut log, r) = on_pipe(Level::Debug, Format::Json);
        log.emit(e);
        let line = drain(&r);
        assert!(line.ends_with("}\n"), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    #[test]
    fn held_lines_wait_for_release_and_keep_their_order() {
        let (mut log, r) = on_pipe(Level::Debug, Format::Text);
        log.emit(&Event::Exiting { status: 1 });
        log.holding = true;
        log.emit(&Event::Exiting { status: 2 });
        log.emit(&Event::Exiting { status: 3 });
        assert_eq!(
            drain(&r).lines().count(),
            1,
            "only the line before the hold"
        );
        log.release();
        log.emit(&Event::Exiting { status: 4 });
        let out = drain(&r);
        let statuses: Vec<_> = out.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(statuses, ["2", "3", "4"], "{out}");
    }

    #[test]
    fn a_flood_while_holding_is_written_not_grown_without_bound() {
        let (mut log, r) = on_pipe(Level::Debug, Format::Text);
        log.holding = true;
        // ~54 KB: past HELD_MAX (a write-out midway), within the pipe's 64 KiB.
        for status in 0..800 {
            log.emit(&Event::Exiting { status });
            assert!(log.held.len() <= HELD_MAX);
        }
        log.release();
        let out = drain(&r);
        let statuses: Vec<i32> = out
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            statuses,
            (0..800).collect::<Vec<_>>(),
            "each line once, in order"
        );
    }

    fn procs(names: &[(i32, &str)]) -> Vec<Proc> {
        names
            .iter()
            .map(|&(pid, comm)| Proc {
                pid,
                ppid: 1,
                pgid: pid,
                state: b'S',
                start_time: 0,
                comm: crate::os::procs::Comm::new(comm.as_bytes()),
            })
            .collect()
    }

    #[test]
    fn job_control_events_read_plainly() {
        assert_eq!(
            text(&Event::Suspending {
                sig: libc::SIGTSTP,
                app_stopped: true,
                pid: 7
            }),
            "sigward: the app (pid 7) stopped on SIGTSTP: sigward and its own process group stop too until SIGCONT, so the shell sees the job stopped\n"
        );
        assert_eq!(
            text(&Event::Suspending {
                sig: libc::SIGTTIN,
                app_stopped: false,
                pid: 7
            }),
            "sigward: received SIGTTIN: the app (pid 7) was stopped with SIGSTOP, and sigward stops too until SIGCONT\n"
        );
        assert_eq!(
            text(&Event::Continued {
                from: Sender::pid(0),
                foreground: Some(7)
            }),
            "sigward: continued by SIGCONT from outside the PID namespace (pid 0); the terminal's foreground goes on to the app (process group 7)\n"
        );
        assert_eq!(
            text(&Event::Continued {
                from: Sender::pid(0),
                foreground: None
            }),
            "sigward: continued by SIGCONT from outside the PID namespace (pid 0)\n"
        );
        assert_eq!(
            text(&Event::ForegroundFailed {
                pgid: 7,
                err: Errno::EPERM
            }),
            "sigward: warning: cannot give the terminal's foreground to the app (process group 7): EPERM: Operation not permitted; Ctrl-C now reaches sigward, which passes it on\n"
        );
        let v = json(&Event::Suspending {
            sig: libc::SIGTSTP,
            app_stopped: true,
            pid: 7,
        });
        assert_eq!(
            (&v["event"], &v["signal"], &v["pid"]),
            (&"suspending".into(), &"SIGTSTP".into(), &7.into())
        );
        let v = json(&Event::Continued {
            from: Sender::pid(3),
            foreground: Some(7),
        });
        assert_eq!(
            (&v["event"], &v["from_pid"], &v["pgid"]),
            (&"continued".into(), &3.into(), &7.into())
        );
        // Debug level: a shell already says "Stopped"; nothing at the default level.
        for e in [
            Event::Suspending {
                sig: libc::SIGTSTP,
                app_stopped: true,
                pid: 7,
            },
            Event::Continued {
                from: Sender::pid(3),
                foreground: None,
            },
        ] {
            assert_eq!(e.level(), Level::Debug);
        }
    }

    #[test]
    fn stop_sequence_events_read_as_before() {
        let t = |e| text(&e);
        assert_eq!(
            t(Event::StopSignal {
                sig: libc::SIGTERM,
                from: Sender::pid(0),
                grace: Duration::from_secs(1)
            }),
            "sigward: received SIGTERM from outside the PID namespace (pid 0): stopping, grace period 1s\n"
        );
        assert_eq!(
            t(Event::PreStopDelay {
                sig: libc::SIGTERM,
                delay: Duration::from_millis(200)
            }),
            "sigward: holding SIGTERM for the pre-stop delay of 200ms; the app keeps serving\n"
        );
        assert_eq!(t(Event::DelayOver), "sigward: pre-stop delay over\n");
        assert_eq!(
            t(Event::Forwarded {
                received: libc::SIGTERM,
                sent: libc::SIGTERM,
                target: -2,
                stopping: true
            }),
            "sigward: forwarded SIGTERM to process group 2\n"
        );
        assert_eq!(
            t(Event::Forwarded {
                received: libc::SIGTERM,
                sent: libc::SIGQUIT,
                target: 7,
                stopping: false
            }),
            "sigward: forwarded SIGTERM as SIGQUIT to child 7\n"
        );
        let stragglers = procs(&[(2, "probe")]);
        assert_eq!(
            t(Event::StragglersKilled {
                grace: Duration::from_secs(1),
                stragglers: &stragglers
            }),
            "sigward: warning: grace period of 1s is over: killing 1 straggler: 2 (probe)\n"
        );
        assert_eq!(
            t(Event::ChildExited {
                command: b"probe",
                pid: 2,
                exit: Exit::Signal {
                    sig: libc::SIGKILL,
                    core: false,
                },
                after: Duration::from_millis(1203),
                quiet: false,
            }),
            "sigward: probe (pid 2) exited with signal SIGKILL (status 137) after 1203 ms\n"
        );
        assert_eq!(
            t(Event::Leftovers {
                count: 1,
                sent: 1,
                sig: libc::SIGTERM,
                wait: Duration::from_millis(19_500)
            }),
            "sigward: 1 process left after the main child exited: sent SIGTERM, waiting up to 19.5s for them\n"
        );
        // Only those sent it now are said to be sent it: the others had it with their group.
        let told = |count, sent| {
            t(Event::Leftovers {
                count,
                sent,
                sig: libc::SIGTERM,
                wait: Duration::from_secs(2),
            })
        };
        assert_eq!(
            told(3, 1),
            "sigward: 3 processes left after the main child exited: sent SIGTERM to 1, 2 already had it, waiting up to 2s for them\n"
        );
        assert_eq!(
            told(1, 0),
            "sigward: 1 process left after the main child exited: it had SIGTERM already, waiting up to 2s for them\n"
        );
        assert_eq!(
            told(2, 0),
            "sigward: 2 processes left after the main child exited: all had SIGTERM already, waiting up to 2s for them\n"
        );
        assert_eq!(
            t(Event::ExecFailed {
                command: b"/no/such/app",
                err: Errno::ENOENT
            }),
            "sigward: cannot run '/no/such/app': No such file or directory\n"
        );
    }

    #[test]
    fn restart_events_read_as_before() {
        let t = |e| text(&e);
        assert_eq!(
            t(Event::Abandoned {
                generation: 2,
                pid: 9,
                why: Abandon::NotReadyAfter(Duration::from_secs(1)),
                current: 1,
                current_pid: 2
            }),
            "sigward: warning: generation 2 (pid 9) abandoned: it was not ready after 1s; generation 1 (pid 2) keeps serving\n"
        );
        assert_eq!(
            t(Event::Abandoned {
                generation: 2,
                pid: 9,
                why: Abandon::ExitedBeforeReady(Exit::Code(3)),
                current: 1,
                current_pid: 2
            }),
            "sigward: warning: generation 2 (pid 9) abandoned: it exited with status 3 before it was ready; generation 1 (pid 2) keeps serving\n"
        );
        assert_eq!(
            t(Event::Promoted {
                generation: 2,
                pid: 9,
                after: Duration::from_millis(40),
                retiring: 1,
                retiring_pid: 2,
                sig: None,
                grace: Duration::from_secs(90)
            }),
            "sigward: generation 2 (pid 9) ready after 40 ms and now serving; stopping generation 1 (pid 2) with nothing (the stop signal is rewritten to 0), grace period 1m30s\n"
        );
        assert_eq!(
            t(Event::RestartIgnored {
                by: Trigger::Signal {
                    sig: libc::SIGHUP,
                    from: Sender::pid(0)
                },
                busy: Busy::Starting(2)
            }),
            "sigward: warning: received SIGHUP from outside the PID namespace (pid 0): restart ignored, generation 2 is still starting\n"
        );
        assert_eq!(
            t(Event::Restarting {
                by: Trigger::Signal {
                    sig: libc::SIGHUP,
                    from: Sender::pid(0)
                },
                generation: 2,
                pid: 9,
                current: 1,
                current_pid: 2,
                wait: ReadyWait::Notify(Duration::from_secs(60))
            }),
            "sigward: received SIGHUP from outside the PID namespace (pid 0): starting generation 2 as pid 9 beside generation 1 (pid 2); waiting for READY=1, up to 1m\n"
        );
    }

    #[test]
    fn config_changes_are_said_with_what_changed_and_what_was_done() {
        let paths = [b"/etc/app/..data".to_vec(), b"/etc/app/extra".to_vec()];
        let one = Changed {
            paths: &paths[..1],
            more: 0,
        };
        let t = |then| text(&Event::ConfigChanged { changed: one, then });
        assert_eq!(
            t(Reload::Signalled {
                sig: libc::SIGHUP,
                target: -7
            }),
            "sigward: config changed (/etc/app/..data): sent SIGHUP to process group 7\n"
        );
        assert_eq!(
            t(Reload::Restart),
            "sigward: config changed (/etc/app/..data): restarting the app\n"
        );
        assert_eq!(
            t(Reload::Deferred(Busy::Draining(1))),
            "sigward: config changed (/etc/app/..data): generation 1 is still draining; acting once the restart is over\n"
        );
        assert_eq!(
            t(Reload::Dropped),
            "sigward: config changed (/etc/app/..data) during the stop sequence: not acting on it\n"
        );
        assert_eq!(
            text(&Event::ConfigChanged {
                changed: Changed {
                    paths: &paths,
                    more: 4
                },
                then: Reload::SignalFailed {
                    sig: libc::SIGUSR1,
                    target: -7,
                    err: Errno::ESRCH
                }
            }),
            "sigward: warning: config changed (/etc/app/..data, /etc/app/extra and 4 more): could not send SIGUSR1 to process group 7: ESRCH: No such process\n"
        );
        assert_eq!(
            t(Reload::Covered(2)),
            "sigward: config changed (/etc/app/..data): generation 2 started after it and reads it\n"
        );
        assert_eq!(
            text(&Event::WatchFailed {
                path: b"/etc/app",
                err: Errno::ENOSPC,
                start: true
            }),
            "sigward: cannot watch /etc/app: ENOSPC: No space left on device (no inotify watches left: fs.inotify.max_user_watches)\n"
        );
        let v = json(&Event::ConfigChanged {
            changed: one,
            then: Reload::Signalled {
                sig: libc::SIGHUP,
                target: -7,
            },
        });
        assert_eq!(v["event"], "config_changed");
        assert_eq!(v["paths"], "/etc/app/..data");
        assert_eq!(v["action"], "signal");
        assert_eq!(v["signal"], "SIGHUP");
        assert_eq!(v["pid"], -7);
        assert_eq!(
            text(&Event::Restarting {
                by: Trigger::ConfigChange,
                generation: 2,
                pid: 9,
                current: 1,
                current_pid: 2,
                wait: ReadyWait::After(Duration::from_secs(1))
            }),
            "sigward: configuration changed: starting generation 2 as pid 9 beside generation 1 (pid 2); waiting for 1s (after:)\n"
        );
    }

    #[test]
    fn sender_is_named_as_it_was_when_the_signal_arrived() {
        let me = std::process::id() as i32;
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let mut from = Sender::pid(me);
        from.name();
        assert_eq!(
            text(&Event::DelayCut {
                sig: libc::SIGINT,
                from
            }),
            format!(
                "sigward: received SIGINT from pid {me} ({}) during the pre-stop delay: ending it now\n",
                comm.trim_end()
            )
        );
    }

    #[test]
    fn a_signal_the_kernel_sent_says_so_the_terminals_keys_name_the_terminal() {
        let line = |sig, code| {
            text(&Event::StopSignal {
                sig,
                from: Sender::new(sig, 0, code),
                grace: Duration::from_secs(1),
            })
        };
        assert_eq!(
            line(libc::SIGINT, libc::SI_KERNEL),
            "sigward: received SIGINT from the terminal: stopping, grace period 1s\n"
        );
        assert_eq!(
            line(libc::SIGTERM, libc::SI_KERNEL),
            "sigward: received SIGTERM from the kernel: stopping, grace period 1s\n"
        );
        assert_eq!(
            line(libc::SIGINT, libc::SI_USER),
            "sigward: received SIGINT from outside the PID namespace (pid 0): stopping, grace period 1s\n"
        );
    }

    #[test]
    fn json_carries_the_same_facts_with_todays_field_names() {
        let v = json(&Event::StopSignal {
            sig: libc::SIGTERM,
            from: Sender::pid(0),
            grace: Duration::from_millis(1500),
        });
        assert_eq!(v["ts"], "2026-11-21T14:50:45.007Z");
        assert_eq!(v["level"], "info");
        assert_eq!(v["event"], "stop_signal");
        assert_eq!(
            v["msg"],
            "received SIGTERM from outside the PID namespace (pid 0): stopping, grace period 1.5s"
        );
        assert_eq!(v["signal"], "SIGTERM");
        assert_eq!(v["from_pid"], 0);
        assert_eq!(v["grace_ms"], 1500);

        let v = json(&Event::Forwarded {
            received: libc::SIGTERM,
            sent: libc::SIGQUIT,
            target: -2,
            stopping: true,
        });
        assert_eq!(v["event"], "forwarded");
        assert_eq!(v["signal"], "SIGQUIT");
        assert_eq!(v["received"], "SIGTERM");
        assert_eq!(v["pid"], -2);

        let stragglers = procs(&[(2, "probe"), (3, "sh")]);
        let v = json(&Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        });
        assert_eq!(v["level"], "warn");
        assert_eq!(v["count"], 2);
        assert_eq!(v["stragglers"], "2 (probe), 3 (sh)");

        let v = json(&Event::ChildExited {
            command: b"app",
            pid: 2,
            exit: Exit::Code(3),
            after: Duration::from_millis(12),
            quiet: false,
        });
        assert_eq!(
            (&v["pid"], &v["status"], &v["after_ms"]),
            (&2.into(), &3.into(), &12.into())
        );
    }

    /// One sample of every variant (a new variant should be added here too).
    fn samples<'a>(long: &'a [u8], stragglers: &'a [Proc], paths: &'a [Vec<u8>]) -> Vec<Event<'a>> {
        let d = Duration::from_millis(1500);
        let s = libc::SIGTERM;
        let text = std::str::from_utf8(long).unwrap_or("?");
        vec![
            Event::NoSubreaper { err: Errno::EPERM },
            Event::NoParentDeathSignal,
            Event::ListenFailed { why: text },
            Event::NoSignalfd { err: Errno::EMFILE },
            Event::NotifySocketFailed { err: Errno::EMFILE },
            Event::ExecFailed {
                command: long,
                err: Errno::ENOENT,
            },
            Event::StartFailed {
                what: text,
                err: Errno::EAGAIN,
            },
            Event::Started {
                command: long,
                pid: 2,
                foreground: false,
                pid1: true,
            },
            Event::Exiting { status: 143 },
            Event::Suspending {
                sig: libc::SIGTSTP,
                app_stopped: true,
                pid: 2,
            },
            Event::Suspending {
                sig: libc::SIGTTIN,
                app_stopped: false,
                pid: 2,
            },
            Event::Continued {
                from: Sender::pid(2),
                foreground: Some(3),
            },
            Event::Continued {
                from: Sender::pid(0),
                foreground: None,
            },
            Event::ForegroundFailed {
                pgid: 2,
                err: Errno::EPERM,
            },
            Event::SignalfdFailed { err: Errno::EIO },
            Event::TreeUnseen {
                err: Errno::EMFILE,
                sig: libc::SIGKILL,
                exiting: true,
            },
            Event::PollFailed { err: Errno::EIO },
            Event::IgnoredOwnSignal { sig: libc::SIGPIPE },
            Event::IgnoredWhileKilling { sig: s },
            Event::Forwarded {
                received: s,
                sent: s,
                target: -2,
                stopping: false,
            },
            Event::DroppedRewritten { sig: s },
            Event::DroppedChildGone { sig: s },
            Event::DroppedNobodyLeft { sig: s, target: -2 },
            Event::ForwardFailed {
                sig: s,
                target: 2,
                err: Errno::EPERM,
            },
            Event::StopSignal {
                sig: s,
                from: Sender::pid(0),
                grace: d,
            },
            Event::PreStopDelay { sig: s, delay: d },
            Event::DelayCut {
                sig: s,
                from: Sender::pid(0),
            },
            Event::StopSignalAgain {
                sig: s,
                from: Sender::pid(0),
            },
            Event::StopSignalAfterExit {
                sig: s,
                from: Sender::pid(0),
            },
            Event::DelayOver,
            Event::Leftovers {
                count: 3,
                sent: 2,
                sig: s,
                wait: d,
            },
            Event::LeftoversUnsignalled { count: 1, sig: s },
            Event::StragglersKilled {
                grace: d,
                stragglers,
            },
            Event::ChildExited {
                command: long,
                pid: 2,
                exit: Exit::Code(0),
                after: d,
                quiet: false,
            },
            Event::Reaped {
                pid: 5,
                exit: Exit::Code(0),
            },
            Event::ReapedOrphan {
                pid: 5,
                exit: Exit::Signal {
                    sig: 9,
                    core: false,
                },
            },
            Event::RestartIgnored {
                by: Trigger::Signal {
                    sig: libc::SIGHUP,
                    from: Sender::pid(0),
                },
                busy: Busy::Stopping,
            },
            Event::Restarting {
                by: Trigger::ConfigChange,
                generation: 2,
                pid: 9,
                current: 1,
                current_pid: 2,
                wait: ReadyWait::After(d),
            },
            Event::RestartNoNotifySocket {
                generation: 2,
                err: Errno::EMFILE,
            },
            Event::RestartCannotRun {
                generation: 2,
                err: Errno::ENOENT,
                current: 1,
            },
            Event::RestartCannotStart {
                generation: 2,
                what: text,
                err: Errno::EAGAIN,
                current: 1,
            },
            Event::Ready {
                generation: 1,
                pid: 2,
            },
            Event::Promoted {
                generation: 2,
                pid: 9,
                after: d,
                retiring: 1,
                retiring_pid: 2,
                sig: Some(s),
                grace: d,
            },
            Event::Abandoned {
                generation: 2,
                pid: 9,
                why: Abandon::NotReadyAfter(d),
                current: 1,
                current_pid: 2,
            },
            Event::Retired {
                generation: 1,
                pid: 2,
                exit: Exit::Code(0),
                after: d,
            },
            Event::RetiredKilled {
                generation: 1,
                pid: 2,
                grace: d,
                count: 4,
            },
            Event::NotifyRefused {
                sender: 77,
                generation: 1,
                suppressed: 3,
            },
            Event::AppStatus {
                generation: 1,
                status: long,
            },
            Event::AppStopping { generation: 1 },
            Event::AppReloading { generation: 1 },
            Event::WatchWaiting {
                path: long,
                dir: long,
            },
            Event::WatchFailed {
                path: long,
                err: Errno::ENOSPC,
                start: true,
            },
            Event::WatchFailed {
                path: long,
                err: Errno::EACCES,
                start: false,
            },
            Event::WatchReadFailed { err: Errno::EIO },
            Event::ConfigChanged {
                changed: Changed { paths, more: 3 },
                then: Reload::Signalled { sig: s, target: -2 },
            },
            Event::ConfigChanged {
                changed: Changed { paths, more: 0 },
                then: Reload::SignalFailed {
                    sig: s,
                    target: 2,
                    err: Errno::ESRCH,
                },
            },
            Event::ConfigChanged {
                changed: Changed { paths, more: 0 },
                then: Reload::Restart,
            },
            Event::ConfigChanged {
                changed: Changed { paths, more: 0 },
                then: Reload::Deferred(Busy::Starting(2)),
            },
            Event::ConfigChanged {
                changed: Changed { paths, more: 0 },
                then: Reload::Dropped,
            },
            Event::LogLinesDropped { count: 12 },
            Event::RestartInPlace {
                by: Trigger::Signal {
                    sig: 1,
                    from: Sender::pid(77),
                },
                generation: 1,
                pid: 2,
                stop: Some(3),
                grace: d,
            },
            Event::RestartInPlace {
                by: Trigger::ConfigChange,
                generation: 1,
                pid: 2,
                stop: Some(3),
                grace: d,
            },
            Event::RestartedInPlace {
                generation: 2,
                pid: 9,
                previous: 1,
                after: d,
            },
            Event::RestartInPlaceFailed {
                generation: 2,
                what: "run",
                err: Errno::ENOENT,
                status: 127,
            },
            Event::RestartBecameStop {
                sig: 15,
                from: Sender::pid(0),
                generation: 1,
                told: true,
            },
            Event::RestartIgnored {
                by: Trigger::Signal {
                    sig: 1,
                    from: Sender::pid(77),
                },
                busy: Busy::Restarting(1),
            },
            Event::Died {
                name: Some(long),
                pid: 2,
                cause: Cause::Oom(Limit::Bytes(64 << 20)),
            },
            Event::Died {
                name: None,
                pid: 5,
                cause: Cause::MaybeOom {
                    kills: 1,
                    deaths: 2,
                    limit: Limit::None,
                },
            },
            Event::Died {
                name: Some(long),
                pid: 2,
                cause: Cause::Outside,
            },
            Event::Died {
                name: None,
                pid: 2,
                cause: Cause::Unknown,
            },
            Event::Died {
                name: Some(long),
                pid: 2,
                cause: Cause::Core(libc::SIGSEGV),
            },
            Event::TerminationLog {
                path: long,
                outcome: TermLog::Written(12),
            },
            Event::TerminationLog {
                path: long,
                outcome: TermLog::AppWrote,
            },
            Event::TerminationLog {
                path: long,
                outcome: TermLog::Missing,
            },
            Event::TerminationLog {
                path: long,
                outcome: TermLog::NotAFile,
            },
            Event::TerminationLog {
                path: long,
                outcome: TermLog::Failed(Errno::EROFS),
            },
        ]
    }

    #[test]
    fn why_it_died_reads_plainly() {
        let t = |e| text(&e);
        assert_eq!(
            t(Event::Died {
                name: Some(b"server"),
                pid: 7,
                cause: Cause::Oom(Limit::Bytes(64 << 20)),
            }),
            "sigward: warning: server (pid 7) was killed by the kernel's OOM killer (memory limit 64 MiB)\n"
        );
        assert_eq!(
            t(Event::Died {
                name: Some(b"server"),
                pid: 7,
                cause: Cause::Oom(Limit::None),
            }),
            "sigward: warning: server (pid 7) was killed by the kernel's OOM killer (no memory limit)\n"
        );
        assert_eq!(
            t(Event::Died {
                name: None,
                pid: 12,
                cause: Cause::Outside,
            }),
            "sigward: warning: pid 12 was killed by SIGKILL from outside sigward (not an OOM kill)\n"
        );
        assert_eq!(
            t(Event::Died {
                name: Some(b"server"),
                pid: 7,
                cause: Cause::Core(libc::SIGSEGV),
            }),
            "sigward: warning: server (pid 7) dumped core (SIGSEGV)\n"
        );
        let v = json(&Event::Died {
            name: Some(b"server"),
            pid: 7,
            cause: Cause::Oom(Limit::Bytes(32 << 20)),
        });
        assert_eq!(v["event"], "oom_killed");
        assert_eq!(v["oom"], true);
        assert_eq!(v["core"], false);
        assert_eq!(v["signal"], "SIGKILL");
        assert_eq!(v["memory_limit"], 32 << 20);
        assert_eq!(v["name"], "server");
        let v = json(&Event::Died {
            name: None,
            pid: 7,
            cause: Cause::Outside,
        });
        assert_eq!((&v["event"], &v["oom"]), (&"killed".into(), &false.into()));
        assert!(v.get("memory_limit").is_none());
        let v = json(&Event::Died {
            name: None,
            pid: 7,
            cause: Cause::Core(libc::SIGABRT),
        });
        assert_eq!(
            (&v["core"], &v["signal"]),
            (&true.into(), &"SIGABRT".into())
        );
        assert_eq!(
            MemoryLimit(Limit::Bytes(1 << 30)).to_string(),
            "memory limit 1 GiB"
        );
        assert_eq!(
            MemoryLimit(Limit::Bytes(1000)).to_string(),
            "memory limit 1000 bytes"
        );
    }

    /// Records what a describer calls after the head.
    struct Refuse(usize);

    impl Visit for Refuse {
        fn head(&mut self, _: Level, _: &'static str) -> Option<()> {
            None
        }
        fn msg(&mut self, _: fmt::Arguments<'_>) {
            self.0 += 1;
        }
        fn int(&mut self, _: &'static str, _: i64) {
            self.0 += 1;
        }
        fn text(&mut self, _: &'static str, _: &dyn fmt::Display) {
            self.0 += 1;
        }
        fn flag(&mut self, _: &'static str, _: bool) {
            self.0 += 1;
        }
    }

    #[test]
    fn a_disabled_event_formats_nothing() {
        let stragglers = procs(&[(2, "probe")]);
        let paths = [b"/etc/x".to_vec()];
        for e in samples(b"x", &stragglers, &paths) {
            let mut v = Refuse(0);
            assert!(e.describe(&mut v).is_none(), "{e:?}");
            assert_eq!(v.0, 0, "{e:?} went on past a refused head");
        }
        let (mut log, r) = on_pipe(Level::Warn, Format::Text);
        log.emit(&Event::Reaped {
            pid: 5,
            exit: Exit::Code(0),
        });
        log.emit(&Event::DelayOver);
        assert_eq!(drain(&r), "");
        log.emit(&Event::ReapedOrphan {
            pid: 5,
            exit: Exit::Code(0),
        });
        assert_eq!(drain(&r), "sigward: warning: reaped orphan 5 (status 0)\n");
    }

    #[test]
    fn every_event_is_one_line_of_valid_json_even_with_huge_hostile_names() {
        // 4000 control characters: each is 4 bytes as \xNN, and 5 once JSON-escaped.
        let hostile = vec![0x1bu8; 4000];
        let names: Vec<(i32, String)> = (0..30).map(|i| (i, "\u{1b}".repeat(15))).collect();
        let names: Vec<(i32, &str)> = names.iter().map(|(p, s)| (*p, s.as_str())).collect();
        let stragglers = procs(&names);
        for long in [
            &b"short"[..],
            &hostile,
            &[b'"'; 5000],
            "\u{4e16}".repeat(2000).as_bytes(),
        ] {
            let paths = vec![long.to_vec(); 8];
            for e in samples(long, &stragglers, &paths) {
                let (mut log, r) = on_pipe(Level::Debug, Format::Json);
                log.emit(&e);
                let line = drain(&r);
                assert!(line.len() <= PIPE_BUF, "{} bytes: {e:?}", line.len());
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
                assert_eq!(v["event"], e.meta().1);
                assert_eq!(v["level"], level_name(e.level()));
                let msg = v["msg"].as_str().unwrap();
                assert!(!msg.is_empty());
                // The sentence is the text line's, unless one of them was cut.
                let t = text(&e);
                if !msg.ends_with(CUT) && !t.ends_with(&format!("{CUT}\n")) {
                    let prefix = if e.level() == Level::Warn {
                        "sigward: warning: "
                    } else {
                        "sigward: "
                    };
                    assert_eq!(t, format!("{prefix}{msg}\n"));
                }
            }
        }
    }

    #[test]
    fn text_lines_longer_than_pipe_buf_are_cut_visibly_and_keep_their_newline() {
        let status = "\u{4e16}".repeat(3000); // 9000 bytes, 3 per character
        let line = text(&Event::AppStatus {
            generation: 1,
            status: status.as_bytes(),
        });
        assert!(line.len() <= PIPE_BUF, "{}", line.len());
        assert!(line.ends_with(" [truncated]\n"), "{line}");
        assert!(line.starts_with("sigward: generation 1 status: \u{4e16}"));
    }

    #[test]
    fn names_are_rendered_lossily_with_control_characters_escaped() {
        // A comm cut mid-character by the kernel, and one with a newline and an escape.
        let line = text(&Event::ChildExited {
            command: b"\xd0\x9f\xd1\x80\xd0",
            pid: 2,
            exit: Exit::Code(0),
            after: Duration::ZERO,
            quiet: false,
        });
        assert_eq!(
            line,
            "sigward: \u{41f}\u{440}\u{fffd} (pid 2) exited with status 0 after 0 ms\n"
        );
        let stragglers = procs(&[(3, "a\nb\u{1b}[2J")]);
        let line = text(&Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        });
        assert!(line.ends_with(": 3 (a\\x0ab\\x1b[2J)\n"), "{line}");
        let v = json(&Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        });
        assert_eq!(v["stragglers"], "3 (a\\x0ab\\x1b[2J)");
    }

    #[test]
    fn more_than_twenty_stragglers_are_counted_not_named() {
        let many: Vec<(i32, &str)> = (100..125).map(|p| (p, "w")).collect();
        let stragglers = procs(&many);
        let line = text(&Event::StragglersKilled {
            grace: Duration::from_secs(30),
            stragglers: &stragglers,
        });
        assert!(
            line.ends_with("killing 25 stragglers: 100 (w), 101 (w), 102 (w), 103 (w), 104 (w), 105 (w), 106 (w), 107 (w), 108 (w), 109 (w), 110 (w), 111 (w), 112 (w), 113 (w), 114 (w), 115 (w), 116 (w), 117 (w), 118 (w), 119 (w) and 5 more\n"),
            "{line}"
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut line = Line::new();
        json_field(&mut line, "k", &"a\"b\\c\nd\u{1}é", 100);
        assert_eq!(
            String::from_utf8(line.buf).unwrap(),
            r#","k":"a\"b\\c\nd\u0001é""#
        );
        let mut line = Line::new();
        json_field(&mut line, "k", &"\"\"\"", 5);
        assert_eq!(
            String::from_utf8(line.buf).unwrap(),
            r#","k":"\"\" [truncated]""#
        );
    }

    #[test]
    fn durations_read_as_the_command_line_writes_them() {
        for (ms, shown) in [
            (0, "0ms"),
            (999, "999ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (1250, "1.25s"),
            (1005, "1.005s"),
            (59_000, "59s"),
            (60_000, "1m"),
            (90_000, "1m30s"),
            (3_600_000, "60m"),
            (3_601_000, "60m1s"),
        ] {
            assert_eq!(Dur(Duration::from_millis(ms)).to_string(), shown, "{ms} ms");
        }
        assert!(!Dur(Duration::MAX).to_string().is_empty());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = |s| Timestamp(UNIX_EPOCH + Duration::from_millis(s)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_795_272_645_007), "2026-11-21T14:50:45.007Z");
        // Far future: no overflow.
        let _ = Timestamp(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)).to_string();
    }

    /// Fills a pipe until a non-blocking write says EAGAIN.
    fn fill(w: &OwnedFd) {
        let own = nix::fcntl::open(
            format!("/proc/self/fd/{}", w.as_raw_fd()).as_str(),
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let block = [b'.'; 4096];
        while nix::unistd::write(&own, &block).is_ok() {}
        while nix::unistd::write(&own, b".").is_ok() {}
    }

    fn forwarded(i: i32) -> Event<'static> {
        Event::Forwarded {
            received: libc::SIGUSR1,
            sent: libc::SIGUSR1,
            target: -i,
            stopping: true,
        }
    }

    /// The contract of defect 4: a reader that never reads costs dropped lines, not time.
    fn full_pipe_drops_and_counts(format: Format, mode: impl FnOnce(&mut Sink)) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let w2 = w.try_clone().unwrap();
        let mut log = Logger::new(Sink::on(w), Level::Info, format);
        mode(&mut log.sink);
        fill(&w2);
        // fd 2's own description (here: the test's write end) stays blocking.
        let fl = OFlag::from_bits_truncate(fcntl(&w2, FcntlArg::F_GETFL).unwrap());
        assert!(!fl.contains(OFlag::O_NONBLOCK));

        let start = Instant::now();
        for i in 0..10_000 {
            log.emit(&forwarded(i));
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(log.dropped, 10_000);

        let junk = drain(&r);
        assert!(
            junk.bytes().all(|b| b == b'.'),
            "a log line got into a full pipe"
        );
        log.emit(&forwarded(5));
        let out = drain(&r);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        match format {
            Format::Text => assert_eq!(
                lines,
                [
                    "sigward: warning: 10000 log lines dropped: stderr was not writable",
                    "sigward: forwarded SIGUSR1 to process group 5"
                ]
            ),
            Format::Json => {
                let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
                assert_eq!(
                    (&v["event"], &v["level"], &v["count"]),
                    (&"log_dropped".into(), &"warn".into(), &10_000.into())
                );
                assert_eq!(v["msg"], "10000 log lines dropped: stderr was not writable");
            }
        }
        assert_eq!(log.dropped, 0);
        // The notice is said once.
        log.emit(&forwarded(6));
        let out = drain(&r);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.contains("process group 6") && !out.contains("dropped"),
            "{out}"
        );
    }

    #[test]
    fn a_full_pipe_costs_dropped_lines_not_time_through_its_own_description() {
        full_pipe_drops_and_counts(Format::Text, |s| {
            assert!(
                matches!(s.mode, Writing::Own(_)),
                "a pipe is reopened non-blocking"
            );
        });
    }

    #[test]
    fn a_full_pipe_drops_json_lines_and_says_so_in_json() {
        full_pipe_drops_and_counts(Format::Json, |_| {});
    }

    #[test]
    fn without_proc_a_full_pipe_is_polled_first() {
        full_pipe_drops_and_counts(Format::Text, |s| s.mode = Writing::PollFirst);
    }

    #[test]
    fn stderr_keeps_its_blocking_description() {
        let before = fcntl(std::io::stderr(), FcntlArg::F_GETFL).unwrap();
        let sink = Sink::stderr();
        assert_eq!(fcntl(std::io::stderr(), FcntlArg::F_GETFL).unwrap(), before);
        if let Some(fd) = sink.held_fd() {
            assert_ne!(fd, 2);
        }
    }

    #[test]
    fn a_full_socket_costs_dropped_lines_not_time() {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let mut log = Logger::new(Sink::on(a), Level::Info, Format::Text);
        assert!(matches!(log.sink.mode, Writing::Socket));
        let start = Instant::now();
        // The first lines fill the socket's buffer; the rest are dropped.
        for i in 0..10_000 {
            log.emit(&forwarded(i));
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(log.dropped > 0);
        let dropped = log.dropped;
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        fcntl(&b, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        while let Ok(n @ 1..) = nix::unistd::read(&b, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        log.emit(&forwarded(1));
        while let Ok(n @ 1..) = nix::unistd::read(&b, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        let got = String::from_utf8(got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        let written = 10_000 - usize::try_from(dropped).unwrap();
        assert_eq!(lines.len(), written + 2, "whole lines only");
        assert_eq!(
            lines[written],
            format!("sigward: warning: {dropped} log lines dropped: stderr was not writable")
        );
        assert_eq!(
            lines[written + 1],
            "sigward: forwarded SIGUSR1 to process group 1"
        );
    }

    #[test]
    fn a_terminal_that_takes_part_of_a_line_gets_the_rest_before_anything_else() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut raw = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
        let master = pty.master;
        let mut log = Logger::new(Sink::on(pty.slave), Level::Info, Format::Text);
        assert!(
            matches!(log.sink.mode, Writing::Own(_)),
            "a terminal is reopened"
        );
        let status = "x".repeat(3000);
        let line = Event::AppStatus {
            generation: 1,
            status: status.as_bytes(),
        };
        let start = Instant::now();
        for _ in 0..200 {
            log.emit(&line);
        }
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(log.dropped > 0, "the terminal never filled");
        // Read everything the terminal holds, then one more line goes out.
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        // The pty hands written bytes to the master side asynchronously (a kernel work item,
        // 4 KiB at a time): an empty read is not the end until it stays empty for a while.
        let mut read_all = |got: &mut Vec<u8>| {
            let mut quiet = 0;
            while quiet < 5 {
                match nix::unistd::read(&master, &mut buf) {
                    Ok(n @ 1..) => {
                        got.extend_from_slice(&buf[..n]);
                        quiet = 0;
                    }
                    _ => {
                        quiet += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        };
        read_all(&mut got);
        let dropped = log.dropped;
        log.emit(&Event::DelayOver);
        read_all(&mut got);
        let got = String::from_utf8(got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        let (last, rest) = lines.split_last().unwrap();
        assert_eq!(*last, "sigward: pre-stop delay over");
        let (notice, whole) = rest.split_last().unwrap();
        assert_eq!(
            *notice,
            format!("sigward: warning: {dropped} log lines dropped: stderr was not writable")
        );
        let expected = format!("sigward: generation 1 status: {status}");
        assert!(
            whole.iter().all(|l| *l == expected),
            "a line was glued or cut"
        );
        assert_eq!(whole.len() as u64 + dropped, 200);
    }

    #[test]
    fn a_pipe_whose_reader_is_gone_is_given_up_quietly() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut log = Logger::new(Sink::on(w), Level::Info, Format::Text);
        drop(r);
        log.emit(&Event::DelayOver); // EPIPE (the test harness ignores SIGPIPE)
        assert!(log.sink.closed());
        log.emit(&Event::DelayOver);
        assert_eq!(log.dropped, 1);
    }

    #[test]
    fn a_regular_file_is_written_plainly() {
        let path = std::env::temp_dir().join(format!("sigward-log-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut log = Logger::new(Sink::on(file.into()), Level::Info, Format::Text);
        assert!(matches!(log.sink.mode, Writing::Plain));
        log.emit(&Event::DelayOver);
        log.emit(&Event::DelayOver);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, "sigward: pre-stop delay over\n".repeat(2));
    }
}
