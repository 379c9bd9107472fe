//! Boot: from exec to the dispatcher. Blocks every signal before anything else, reads the
//! configuration, sets up what the app must not see being set up (subreaper, signalfd, held
//! sockets, the watch), starts generation 1 and hands over to the dispatcher; at the end writes
//! the termination message and turns the app's status into sigward's exit code.

use crate::config;
use crate::engine::dispatcher;
use crate::os::signals::{self, SigMask, SignalFd};
use crate::os::spawn::{self, Detach, Inherited, SpawnError};
use crate::{diagnose, listen, log, notify, termination, watch};
use std::ffi::{CStr, OsString};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// sigward itself could not start the command (fork, signalfd); as `docker run` uses 125.
pub const START_FAILED: i32 = 125;

/// The whole life of sigward; its result is the exit code.
///
/// # Safety
/// `argv` holds `argc` valid, NUL-terminated C strings (as the C runtime passes them to `main`).
pub unsafe fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // Block first: nothing may be delivered (or dropped, as PID 1) before the signalfd reads it.
    let original_mask = match signals::set_mask(SigMask::FULL) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sigward: cannot block signals: {e}");
            return START_FAILED;
        }
    };
    let args = (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: the caller passes argc valid, NUL-terminated strings in argv.
        .map(|i| OsString::from_vec(unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes().to_vec()))
        .collect();
    match config::parse(args) {
        config::Parsed::Exit(code) => code,
        config::Parsed::Run(cfg) => run(&cfg, original_mask),
    }
}

fn run(cfg: &config::Config, original_mask: SigMask) -> i32 {
    log::configure(cfg.log_level, cfg.log_format);
    let pid1 = std::process::id() == 1;
    let sigchld_ignored = set_up_process(cfg, pid1);
    let signals = match SignalFd::new(SigMask::FULL) {
        Ok(s) => s,
        Err(e) => {
            log::emit(&log::Event::NoSignalfd { err: e });
            return START_FAILED;
        }
    };
    // The baseline of the OOM counter, before the child can be killed (see `diagnose`).
    let oom = diagnose::OomCounter::start();
    let detach = terminal_detach();
    let inherited = Inherited {
        mask: original_mask,
        sigchld_ignored,
    };
    // Sockets for generations: handed to sigward by a socket-activating parent (LISTEN_PID names
    // sigward), then bound here (--listen); both are passed on to the app.
    let listeners = match listen::Listeners::new(&cfg.listen) {
        Ok(l) => l,
        Err(msg) => {
            log::emit(&log::Event::ListenFailed { why: &msg });
            return START_FAILED;
        }
    };
    let mut keep = vec![signals.as_fd().as_raw_fd()];
    keep.extend(log::held_fd());
    let launch = dispatcher::Launch::new(detach, inherited);
    let Ok(watcher) = watch_paths(cfg, &mut keep) else {
        return START_FAILED;
    };
    let (child, held) = match start_first(cfg, &launch, listeners, &mut keep) {
        Ok(started) => started,
        Err(status) => return status,
    };
    log::emit(&log::Event::Started {
        command: cfg.command.first().map_or(&[], |c| c.as_bytes()),
        pid: child,
        foreground: detach == Detach::TerminalForeground,
        pid1,
    });
    // Hold nothing the child was meant to own (pipes whose EOF a reader awaits) and pin no mount.
    close_inherited_fds(&keep);
    let _ = nix::unistd::chdir("/");

    let sources = dispatcher::Sources {
        signals,
        watch: watcher,
    };
    let (exit, summary) =
        dispatcher::Dispatcher::new(cfg, sources, child, pid1, launch, held, oom).run();
    termination_message(cfg, &summary);
    log::finish(std::time::Duration::from_millis(100));
    let status = exit.status();
    if u8::try_from(status).is_ok_and(|s| cfg.success_exits.contains(&s)) {
        0
    } else {
        status
    }
}

/// `--watch`: before the app starts, so that a path that cannot be watched stops here (Err, said
/// already), with no app half started; close-on-exec, so the app never holds it.
fn watch_paths<'a>(
    cfg: &'a config::Config,
    keep: &mut Vec<std::os::fd::RawFd>,
) -> Result<Option<watch::Watcher<'a>>, ()> {
    if cfg.watch.is_empty() {
        return Ok(None);
    }
    let w = watch::Watcher::new(&cfg.watch).ok_or(())?;
    keep.push(w.as_fd().as_raw_fd());
    Ok(Some(w))
}

/// What sigward sets up in itself before the app exists: a subreaper (not as PID 1), the parent
/// death signal, and SIGCHLD not ignored. Returns whether SIGCHLD was ignored (the child gets its
/// ignored SIGCHLD back).
fn set_up_process(cfg: &config::Config, pid1: bool) -> bool {
    if !pid1 {
        // Orphans of the app's descendants come to us instead of escaping to the host's init.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            log::emit(&log::Event::NoSubreaper { err: e });
        }
    }
    if let Some(sig) = cfg.parent_death_signal {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a plain signal number.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) } != 0 {
            log::emit(&log::Event::NoParentDeathSignal);
        }
    }
    // An ignored SIGCHLD makes the kernel discard exit statuses; sigward needs them.
    let sigchld_ignored = signals::is_ignored(libc::SIGCHLD);
    if sigchld_ignored {
        let _ = signals::set_ignored(libc::SIGCHLD, false);
    }
    sigchld_ignored
}

/// Starts generation 1: alone, or on the held sockets with its notify socket (`keep` gains the
/// fds sigward holds for it). Returns its pid and what is held, or sigward's exit status.
fn start_first(
    cfg: &config::Config,
    launch: &dispatcher::Launch,
    listeners: Option<listen::Listeners>,
    keep: &mut Vec<std::os::fd::RawFd>,
) -> Result<(i32, Option<dispatcher::Held>), i32> {
    let (started, held) = match listeners {
        // An app that may be restarted in place counts its generations from the first.
        None if cfg.restartable() => (launch.spawn(&cfg.command, 1, None), None),
        None => (
            spawn::spawn(&cfg.command, launch.detach, &launch.inherited, None).map(|p| p.as_raw()),
            None,
        ),
        Some(listeners) => {
            keep.extend(listeners.fds.iter().map(|f| f.as_raw_fd()));
            let notify = match notify::Notify::new() {
                Ok(n) => n,
                Err(e) => {
                    let err = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
                    log::emit(&log::Event::NotifySocketFailed { err });
                    return Err(START_FAILED);
                }
            };
            keep.push(notify.as_fd().as_raw_fd());
            let held = dispatcher::Held::new(listeners, notify);
            keep.extend(held.upstream.as_ref().map(|u| u.as_fd().as_raw_fd()));
            let started = match &held.notify[0] {
                Some(n) => held.spawn(launch, &cfg.command, 1, n),
                None => Err(SpawnError::Start("notify", nix::errno::Errno::EBADF)),
            };
            (started, Some(held))
        }
    };
    match started {
        Ok(pid) => Ok((pid, held)),
        Err(SpawnError::Exec(errno)) => {
            let event = log::Event::ExecFailed {
                command: cfg.command.first().map_or(&[], |c| c.as_bytes()),
                err: errno,
            };
            Err(not_started(cfg, &event, spawn::exec_failure_status(errno)))
        }
        Err(SpawnError::Start(what, e)) => Err(not_started(
            cfg,
            &log::Event::StartFailed { what, err: e },
            START_FAILED,
        )),
    }
}

/// The command could not be started: said in the log and in the termination message.
fn not_started(cfg: &config::Config, event: &log::Event, status: i32) -> i32 {
    log::emit(event);
    let summary = termination::Summary {
        failed: Some(log::sentence(event)),
        ..termination::Summary::default()
    };
    termination_message(cfg, &summary);
    status
}

/// Writes the termination message (see `termination`), and says what became of it.
fn termination_message(cfg: &config::Config, summary: &termination::Summary) {
    let dest = &cfg.termination_log;
    let written = (*dest != termination::Dest::Off)
        .then(|| termination::write(dest, &|| summary.render(crate::os::clock::Mono::now())))
        .flatten();
    if let Some((path, outcome)) = written {
        log::emit(&log::Event::TerminationLog {
            path: path.as_bytes(),
            outcome,
        });
    }
}

/// Takes the terminal's foreground for the child only when stdin is sigward's controlling terminal
/// and sigward is in its foreground (`docker run -it`, an interactive shell); otherwise the child
/// gets a session of its own.
fn terminal_detach() -> Detach {
    let stdin = std::io::stdin();
    match nix::unistd::tcgetpgrp(stdin.as_fd()) {
        Ok(fg) if fg == nix::unistd::getpgrp() => Detach::TerminalForeground,
        _ => Detach::Session,
    }
}

/// Closes every fd from 3 up except those in `keep` (the signalfd, held sockets).
fn close_inherited_fds(keep: &[std::os::fd::RawFd]) {
    let mut keep: Vec<libc::c_uint> = keep.iter().map(|&fd| fd as libc::c_uint).collect();
    keep.sort_unstable();
    let close_range = |first: libc::c_uint, last: libc::c_uint| {
        // SAFETY: closes only fds sigward inherited; those it still uses (`keep`) are excluded,
        // and no Rust object owns any fd in these ranges.
        first > last || unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } == 0
    };
    let mut first = 3;
    let mut ok = true;
    for &k in keep.iter().filter(|&&k| k >= 3) {
        ok &= close_range(first, k.saturating_sub(1));
        first = k + 1;
    }
    if ok && close_range(first, libc::c_uint::MAX) {
        return;
    }
    // Kernels before 5.9 have no close_range: close what /proc lists.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<libc::c_uint> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd >= 3 && !keep.contains(fd)) {
        // SAFETY: as above; a stale entry (the directory's own fd) just fails with EBADF.
        unsafe { libc::close(fd as libc::c_int) };
    }
}
