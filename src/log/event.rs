//! The catalogue: every event sigward logs, and the small types its fields are made of. What
//! each one says is in `describe`, by domain.

use super::words::{Dur, Status};
use crate::diagnose::Cause;
use crate::os::procs::{Lossy, Proc};
use crate::os::reap::Exit;
use crate::os::signals::Name;
pub use crate::os::signals::Sender;
use nix::errno::Errno;
use std::fmt;
use std::time::Duration;

/// Everything sigward logs. Signals are numbers (written by name), durations are [`Duration`]s,
/// names from /proc or argv are bytes (written lossily, control characters and backslashes
/// escaped).
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
    /// `what`: the step that failed (`fork`, `dup`, `pipe`): sigward's own word, never input.
    StartFailed {
        what: &'static str,
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
    /// The processes left could not be listed (/proc unreadable: `err`), so `sig` went to the
    /// app's process group(s) instead; `exiting`: the grace period is over and sigward ends
    /// without waiting for what it cannot see, or (`restart`, a restart in place) starts the
    /// next generation.
    TreeUnseen {
        err: Errno,
        sig: i32,
        exiting: bool,
        restart: bool,
    },
    /// As `Leftovers`, but `sig` is rewritten to 0: none is signalled.
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
        what: &'static str,
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
        what: &'static str,
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
