//! What the log's unit tests share: a logger on a pipe, and one sample of every event.

pub(super) use super::event::*;
pub(super) use super::logger::Logger;
pub(super) use super::sink::Sink;
pub(super) use super::{Format, Level};
pub(super) use crate::diagnose::{Cause, Limit};
pub(super) use crate::os::procs::Proc;
pub(super) use crate::os::reap::Exit;
pub(super) use nix::errno::Errno;
pub(super) use nix::fcntl::{FcntlArg, OFlag, fcntl};
pub(super) use std::os::fd::OwnedFd;
pub(super) use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(super) fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_795_272_645_007)
}

/// A logger on its own pipe: (logger, read end).
pub(super) fn on_pipe(max: Level, format: Format) -> (Logger, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut log = Logger::new(Sink::on(w), max, format);
    log.clock = fixed_clock;
    (log, r)
}

/// Everything readable now from a pipe's read end.
pub(super) fn drain(r: &OwnedFd) -> String {
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

pub(super) fn text(e: &Event) -> String {
    let (mut log, r) = on_pipe(Level::Debug, Format::Text);
    log.emit(e);
    drain(&r)
}

pub(super) fn json(e: &Event) -> serde_json::Value {
    let (mut log, r) = on_pipe(Level::Debug, Format::Json);
    log.emit(e);
    let line = drain(&r);
    assert!(line.ends_with("}\n"), "{line}");
    assert_eq!(line.matches('\n').count(), 1, "{line}");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

pub(super) fn procs(names: &[(i32, &str)]) -> Vec<Proc> {
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

/// One sample of every variant (a new variant should be added here too).
pub(super) fn samples<'a>(
    long: &'a [u8],
    stragglers: &'a [Proc],
    paths: &'a [Vec<u8>],
) -> Vec<Event<'a>> {
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
            what: "fork",
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
            restart: false,
        },
        Event::TreeUnseen {
            err: Errno::EMFILE,
            sig: libc::SIGKILL,
            exiting: true,
            restart: true,
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
            what: "fork",
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
