//! Signal masks, names and delivery.
//!
//! sigward blocks every signal and reads them from a signalfd, so PID 1 never has a handler to
//! race with and never drops a signal. The mask is handled as the kernel's own 64-bit set through
//! raw syscalls: musl's `sigfillset`/`sigaddset` refuse signals 32-34, yet Docker calls 34
//! `SIGRTMIN`, and an init must be able to receive every signal its users can name.

use crate::os::procs::Comm;
use nix::errno::Errno;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Highest signal number on Linux.
pub const MAX: i32 = 64;
/// `SIGRTMIN` as users (Docker, glibc, `kill -l`) number it; the kernel's 32 and 33 are libc-internal.
pub const RTMIN: i32 = 34;

/// A set of signals in the kernel's layout: bit `n - 1` stands for signal `n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigMask(pub u64);

impl SigMask {
    pub const EMPTY: SigMask = SigMask(0);
    pub const FULL: SigMask = SigMask(!0);

    pub fn of(signals: &[i32]) -> SigMask {
        signals.iter().fold(SigMask::EMPTY, |m, &s| m.with(s))
    }
    pub fn with(self, sig: i32) -> SigMask {
        if (1..=MAX).contains(&sig) {
            SigMask(self.0 | 1 << (sig - 1))
        } else {
            self
        }
    }
    pub fn contains(self, sig: i32) -> bool {
        (1..=MAX).contains(&sig) && self.0 & (1 << (sig - 1)) != 0
    }
}

/// Replaces the calling thread's blocked mask and returns the previous one.
/// Async-signal-safe and allocation-free: the forked child uses it right before exec.
pub fn set_mask(mask: SigMask) -> Result<SigMask, Errno> {
    let mut old: u64 = 0;
    // SAFETY: both pointers refer to live u64s, and 8 bytes is the kernel's sigset size on Linux.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask.0 as *const u64,
            &mut old as *mut u64,
            8usize,
        )
    };
    Errno::result(rc).map(|_| SigMask(old))
}

/// Sends `sig` to `pid` (a negative pid names a process group), as kill(2).
pub fn send(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Steps aside for another runnable task on this CPU. Used once per stop signal: the app the
/// signal just woke often waits on sigward's CPU (the kernel wakes it there), and its handler
/// matters more than sigward's log lines (measured: scripts/bench, SIGTERM forward latency).
pub fn yield_cpu() {
    // SAFETY: sched_yield takes no arguments and cannot fail on Linux.
    unsafe { libc::sched_yield() };
}

/// Whether `sig` is currently ignored (SIG_IGN) by this process.
pub fn is_ignored(sig: i32) -> bool {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is a valid, writable sigaction.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: sigaction filled `old` when it returned 0.
    rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Sets `sig` to SIG_DFL or SIG_IGN. Async-signal-safe (the child uses it before exec).
pub fn set_ignored(sig: i32, ignored: bool) -> Result<(), Errno> {
    let handler = if ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: installs no function pointer, only one of the two constant dispositions.
    Errno::result(unsafe { libc::signal(sig, handler) } as isize).map(drop)
}

/// One signal as read from the signalfd.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub signo: i32,
    pub from: Sender,
}

/// Who sent a signal, as known when it arrived: the sender may be gone by the time the line
/// about it is written, so its name is read then ([`Sender::name`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    /// Its pid in our namespace; 0 when it came from outside (the container runtime) or from
    /// the kernel.
    pub pid: i32,
    pub origin: Origin,
    pub comm: Option<Comm>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// kill(2), sigqueue(3), tgkill(2): a process (si_code SI_USER, SI_QUEUE, SI_TKILL).
    #[default]
    Process,
    /// The kernel on behalf of a terminal: a key (Ctrl-C, Ctrl-Z), a hangup, a resize.
    Terminal,
    /// The kernel for another reason (si_code SI_KERNEL).
    Kernel,
}

impl Sender {
    /// From a siginfo's pid and si_code.
    pub fn new(signo: i32, pid: i32, code: i32) -> Sender {
        let origin = match signo {
            _ if code != libc::SI_KERNEL => Origin::Process,
            libc::SIGINT | libc::SIGQUIT | libc::SIGTSTP | libc::SIGHUP | libc::SIGWINCH => {
                Origin::Terminal
            }
            _ => Origin::Kernel,
        };
        Sender {
            pid,
            origin,
            comm: None,
        }
    }

    /// A process by its pid alone (0: outside the PID namespace).
    pub fn pid(pid: i32) -> Sender {
        Sender {
            pid,
            ..Sender::default()
        }
    }

    /// Reads the sender's name from /proc now, while it is (likely) still there.
    pub fn name(&mut self) {
        if self.pid > 0 {
            self.comm = crate::os::procs::comm_of(self.pid);
        }
    }
}

/// `pid 37 (kill)`, the terminal, the kernel, or the world outside the namespace.
impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.origin, self.pid, &self.comm) {
            (Origin::Terminal, ..) => f.write_str("the terminal"),
            (Origin::Kernel, ..) => f.write_str("the kernel"),
            (_, 0, _) => f.write_str("outside the PID namespace (pid 0)"),
            (_, pid, Some(comm)) => write!(f, "pid {pid} ({comm})"),
            (_, pid, None) => write!(f, "pid {pid}"),
        }
    }
}

/// Non-blocking, close-on-exec signalfd for a mask that must already be blocked.
pub struct SignalFd(OwnedFd);

const SIGINFO_SIZE: usize = 128; // sizeof(struct signalfd_siginfo)

impl SignalFd {
    pub fn new(mask: SigMask) -> Result<SignalFd, Errno> {
        let flags = libc::SFD_CLOEXEC | libc::SFD_NONBLOCK;
        // SAFETY: the mask pointer is valid for 8 bytes, the kernel's sigset size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &mask.0 as *const u64,
                8usize,
                flags,
            )
        };
        let fd = Errno::result(fd)? as i32;
        // SAFETY: the kernel just returned this fd to us; nobody else owns it.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Reads pending signals into `out` without blocking; returns how many were read
    /// (0 when none is pending).
    pub fn read(&self, out: &mut [Received; 32]) -> Result<usize, Errno> {
        // Not zeroed: the kernel writes 128 bytes per pending signal, and clearing 4 KiB of stack
        // on every wake-up cost more than the rest of the forwarding path (64 cache lines,
        // measured with callgrind).
        let mut buf = std::mem::MaybeUninit::<[u8; SIGINFO_SIZE * 32]>::uninit();
        let n = loop {
            // SAFETY: read(2) writes at most `len` bytes into the buffer, which is valid for that
            // many; only the `n` bytes it reports written are looked at below.
            let rc = unsafe {
                libc::read(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    SIGINFO_SIZE * 32,
                )
            };
            match Errno::result(rc) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(0),
                other => break usize::try_from(other?).unwrap_or(0).min(SIGINFO_SIZE * 32),
            }
        };
        // SAFETY: the kernel initialised the first `n` bytes (n is at most the buffer's length).
        let buf = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let field = |rec: &[u8], at: usize| {
            i32::from_ne_bytes([rec[at], rec[at + 1], rec[at + 2], rec[at + 3]])
        };
        let mut count = 0;
        for (slot, rec) in out.iter_mut().zip(buf.chunks_exact(SIGINFO_SIZE)) {
            // struct signalfd_siginfo: ssi_signo at offset 0, ssi_code at 8, ssi_pid at 12.
            let signo = field(rec, 0);
            *slot = Received {
                signo,
                from: Sender::new(signo, field(rec, 12), field(rec, 8)),
            };
            count += 1;
        }
        Ok(count)
    }

    /// Waits (up to `timeout`, None: for ever) for one blocked signal and takes it off the queue,
    /// as a read of the signalfd would: one syscall where poll + read take two, and the kernel
    /// wakes the waiter directly instead of through the signalfd's wait queue.
    /// Ok(None): the timeout passed, or the wait was interrupted.
    pub fn wait_one(
        &self,
        timeout: Option<std::time::Duration>,
    ) -> Result<Option<Received>, Errno> {
        // The old rt_sigtimedwait takes the C library's timespec: on 32-bit musl targets a
        // 32-bit time_t (the libc crate's layout), so seconds are clamped to what c_long holds.
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: libc::c_long::try_from(t.as_secs()).unwrap_or(libc::c_long::MAX) as _,
            tv_nsec: t.subsec_nanos() as _, // below 10^9: fits any c_long
        });
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::uninit();
        let all = SigMask::FULL;
        // SAFETY: the mask is valid for 8 bytes (the kernel's sigset size), `info` is writable
        // siginfo_t storage, and the timespec pointer is null or points at a live value.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &all.0 as *const u64,
                info.as_mut_ptr(),
                ts.as_ref()
                    .map_or(std::ptr::null(), |t| t as *const libc::timespec),
                8usize,
            )
        };
        match Errno::result(rc) {
            Ok(_) => {}
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e),
        }
        // SAFETY: rt_sigtimedwait filled `info` when it returned a signal.
        let info = unsafe { info.assume_init() };
        // The sender's pid where the siginfo's layout has one, as the signalfd reports it.
        let code = info.si_code;
        let has_pid = info.si_signo == libc::SIGCHLD
            || (code <= 0 && code != libc::SI_TIMER && code != libc::SI_SIGIO);
        // SAFETY: si_pid reads the union member that the layout check above says is there.
        let pid = if has_pid { unsafe { info.si_pid() } } else { 0 };
        Ok(Some(Received {
            signo: info.si_signo,
            from: Sender::new(info.si_signo, pid, code),
        }))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

const NAMES: [(i32, &str); 31] = [
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGSTKFLT, "STKFLT"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGPWR, "PWR"),
    (libc::SIGSYS, "SYS"),
];
const ALIASES: [(&str, i32); 4] = [
    ("IOT", libc::SIGABRT),
    ("POLL", libc::SIGIO),
    ("CLD", libc::SIGCHLD),
    ("UNUSED", libc::SIGSYS),
];

/// Parses `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+3`, `SIGRTMAX-1`.
pub fn parse(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return match i32::try_from(n) {
            Ok(n) if (1..=MAX).contains(&n) => Ok(n),
            _ => Err(format!("signal number {n} is out of range 1..={MAX}")),
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(n, _)) = NAMES.iter().find(|(_, name)| *name == bare) {
        return Ok(n);
    }
    if let Some(&(_, n)) = ALIASES.iter().find(|(name, _)| *name == bare) {
        return Ok(n);
    }
    let realtime = |base: i32, rest: &str| -> Option<i32> {
        let n = match rest.as_bytes().first() {
            None => Some(base),
            Some(b'+') => rest[1..]
                .parse::<i32>()
                .ok()
                .and_then(|k| base.checked_add(k)),
            Some(b'-') => rest[1..]
                .parse::<i32>()
                .ok()
                .and_then(|k| base.checked_sub(k)),
            _ => None,
        }?;
        (RTMIN..=MAX).contains(&n).then_some(n)
    };
    let rt = if let Some(rest) = bare.strip_prefix("RTMIN") {
        realtime(RTMIN, rest)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        realtime(MAX, rest)
    } else {
        return Err("unknown signal".into());
    };
    rt.ok_or_else(|| format!("real-time signals run from RTMIN ({RTMIN}) to RTMAX ({MAX})"))
}

/// Display form of a signal number: `SIGTERM`, `SIGRTMIN+3`, `SIG33`.
#[derive(Clone, Copy)]
pub struct Name(pub i32);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if let Some((_, name)) = NAMES.iter().find(|(s, _)| *s == n) {
            write!(f, "SIG{name}")
        } else if n == RTMIN {
            f.write_str("SIGRTMIN")
        } else if n == MAX {
            f.write_str("SIGRTMAX")
        } else if n > RTMIN && n < MAX {
            write!(f, "SIGRTMIN+{}", n - RTMIN)
        } else {
            write!(f, "SIG{n}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("SIGRTMAX-1"), Ok(63));
        assert_eq!(parse("iot"), Ok(libc::SIGABRT));
        assert!(parse("RTMIN+31").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("BOGUS").is_err());
        assert!(parse("RTMIN+").is_err());
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=MAX {
            let shown = Name(n).to_string();
            if n == 32 || n == 33 {
                assert_eq!(shown, format!("SIG{n}"));
            } else {
                assert_eq!(parse(&shown), Ok(n), "{shown}");
            }
        }
    }

    #[test]
    fn mask_bits_follow_kernel_layout() {
        let m = SigMask::of(&[1, 64, 34]);
        assert_eq!(m.0, 1 | 1 << 63 | 1 << 33);
        assert!(m.contains(64) && !m.contains(2) && !m.contains(0) && !m.contains(65));
    }
}
