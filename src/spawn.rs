//! Starting the command: fork, detach into its own process group, restore what sigward inherited,
//! exec, and report an exec failure exactly.
//!
//! Everything the child needs (argv, the mask to restore) is prepared before fork, so the child
//! only makes async-signal-safe syscalls and never allocates. A close-on-exec pipe tells the parent
//! whether exec succeeded: EOF means it did, four bytes carry the errno when it did not. Waiting for
//! that answer also guarantees the child's process group exists before the first signal is
//! forwarded to it.

use crate::signals::{self, SigMask};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Pid};
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// How the child separates from sigward.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Detach {
    /// `setsid()`: own session and process group; the usual case in a container.
    Session,
    /// `setpgid(0, 0)` and `tcsetpgrp(0)`: own process group in sigward's session, in the
    /// foreground of sigward's terminal, so the terminal's Ctrl-C reaches the app directly.
    /// (A new session cannot own the terminal that sigward's session holds.)
    TerminalForeground,
}

/// What the child gets back from sigward's own start: the blocked mask and SIGCHLD's disposition
/// (the only one sigward changes; every other ignored signal stays ignored across exec by itself).
pub struct Inherited {
    pub mask: SigMask,
    pub sigchld_ignored: bool,
}

/// What a generation is handed: sockets as fds 3..., and the environment that describes them.
pub struct Handover<'a> {
    pub fds: &'a [std::os::fd::OwnedFd],
    /// LISTEN_FDNAMES, `a:b`.
    pub fdnames: &'a str,
    /// NOTIFY_SOCKET for this generation.
    pub notify: &'a str,
    pub generation: u32,
    /// The directory sigward was started in: every generation starts there, although sigward
    /// itself has moved to `/`.
    pub cwd: Option<&'a std::ffi::CStr>,
}

/// Variables sigward sets for a generation; any inherited value of them is dropped.
const HANDOVER_VARS: [&str; 5] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "SIGWARD_GENERATION",
];

pub enum SpawnError {
    /// The command could not be executed (errno from execvp).
    Exec(Errno),
    /// sigward could not fork or make its pipe.
    Start(&'static str, Errno),
}

/// Starts `command` and returns its pid once it has exec'd.
pub fn spawn(
    command: &[OsString],
    detach: Detach,
    inherited: &Inherited,
    handover: Option<&Handover>,
) -> Result<Pid, SpawnError> {
    let mut args = Vec::with_capacity(command.len());
    for a in command {
        // argv strings cannot contain NUL (they came from our own argv), but never panic on it.
        args.push(CString::new(a.as_bytes()).map_err(|_| SpawnError::Exec(Errno::EINVAL))?);
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());

    // For a generation: its environment, and high close-on-exec copies of the sockets that the
    // child moves to 3, 4, ... (copies first, so no dup2 can overwrite a socket still to move).
    // LISTEN_PID must be the child's own pid: the child writes its digits into this buffer.
    let mut listen_pid = *b"LISTEN_PID=\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let listen_pid_digits = listen_pid[11..].as_mut_ptr();
    let mut env = Vec::new();
    let mut high = Vec::new();
    if let Some(h) = handover {
        for fd in h.fds {
            let base = 3 + h.fds.len() as i32;
            // SAFETY: F_DUPFD_CLOEXEC duplicates an fd we own to the lowest free number >= base.
            let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, base) };
            let copy = Errno::result(copy).map_err(|e| SpawnError::Start("dup", e))?;
            // SAFETY: the kernel just returned this new fd to us.
            high.push(unsafe { std::os::fd::OwnedFd::from_raw_fd(copy) });
        }
        for (key, value) in std::env::vars_os() {
            if !HANDOVER_VARS.iter().any(|v| key == *v) {
                let mut kv = key.into_vec();
                kv.push(b'=');
                kv.extend(value.as_bytes());
                env.extend(CString::new(kv).ok());
            }
        }
        for kv in [
            format!("LISTEN_FDS={}", h.fds.len()),
            format!("LISTEN_FDNAMES={}", h.fdnames),
            format!("NOTIFY_SOCKET={}", h.notify),
            format!("SIGWARD_GENERATION={}", h.generation),
        ] {
            env.extend(CString::new(kv).ok());
        }
    }
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(listen_pid.as_ptr().cast());
    envp.push(std::ptr::null());
    let high_raw: Vec<i32> = high.iter().map(|f| f.as_raw_fd()).collect();

    let (report_r, report_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Start("pipe", e))?;

    // SAFETY: sigward is single-threaded, and the child branch below only makes async-signal-safe
    // syscalls on data prepared before fork, then execs or _exits.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(SpawnError::Start("fork", e)),
        Ok(ForkResult::Child) => {
            // SAFETY: async-signal-safe libc calls only; argv is a null-terminated array of
            // pointers into `args`, which the fork copied; write and _exit never return into Rust
            // state shared with the parent.
            unsafe {
                match detach {
                    Detach::Session => {
                        libc::setsid();
                    }
                    Detach::TerminalForeground => {
                        libc::setpgid(0, 0);
                        // SIGTTOU is still blocked here, so a background group may take the terminal.
                        libc::tcsetpgrp(0, libc::getpid());
                    }
                }
                if inherited.sigchld_ignored {
                    let _ = signals::set_ignored(libc::SIGCHLD, true);
                }
                let _ = signals::set_mask(inherited.mask);
                if let Some(h) = handover {
                    if let Some(dir) = h.cwd {
                        libc::chdir(dir.as_ptr());
                    }
                    for (i, &fd) in high_raw.iter().enumerate() {
                        libc::dup2(fd, 3 + i as i32); // the copy at 3+i is not close-on-exec
                    }
                    write_decimal(listen_pid_digits, libc::getpid() as u32);
                    libc::execvpe(argv[0], argv.as_ptr(), envp.as_ptr());
                } else {
                    libc::execvp(argv[0], argv.as_ptr());
                }
                let errno = Errno::last_raw().to_ne_bytes();
                libc::write(report_w.as_raw_fd(), errno.as_ptr().cast(), errno.len());
                libc::_exit(127);
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            drop(high);
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < buf.len() {
                match nix::unistd::read(&report_r, &mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
            if got < buf.len() {
                return Ok(child); // EOF: exec succeeded and closed the pipe.
            }
            // Reap the failed child so it leaves no zombie; its status adds nothing.
            while let Err(Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
            Err(SpawnError::Exec(Errno::from_raw(i32::from_ne_bytes(buf))))
        }
    }
}

/// Writes `n` in decimal at `out`, followed by the NUL already there. Async-signal-safe: no
/// allocation, no formatting machinery.
///
/// # Safety
/// `out` must point at 11 writable bytes.
unsafe fn write_decimal(out: *mut u8, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: the caller guarantees 11 writable bytes; len <= 10.
        unsafe { *out.add(i) = digits[len - 1 - i] };
    }
}

/// Exit status and reason for an exec failure, as shells report them: 127 not found, 126 found
/// but not runnable.
pub fn exec_failure_status(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => 127,
        _ => 126,
    }
}
