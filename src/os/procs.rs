//! The processes sigward answers for, read from /proc, and signalled without pid-reuse races.
//!
//! **Bytes, not text.** A process's name (comm) is whatever bytes it set, cut by the kernel at 15
//! bytes: mid-character for Cyrillic or CJK names, arbitrary after setproctitle, and it may hold
//! spaces, parentheses or a newline. Reading /proc/PID/stat as UTF-8 made such a process invisible:
//! never sent the leftover SIGTERM, never named, never killed. So /proc is read as bytes, each stat
//! with one read into a stack buffer, and names are only turned into text for display, lossily
//! and on one line.
//!
//! **Pidfds, not pids.** Between reading /proc and kill(pid) a process may exit and its pid be
//! reused by an unrelated one. A pidfd names one process for good; one opened from a /proc
//! snapshot is trusted only after a fresh read of /proc/PID/stat shows the snapshot's start time
//! (the pid was then held by the snapshotted process the whole time, so the pidfd names it).
//! Where pidfds are missing (kernel < 5.3, seccomp) the start-time check is still made right
//! before a plain kill(pid), which narrows the race to a few microseconds.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The kernel keeps 15 bytes of a user process's name (TASK_COMM_LEN - 1). Only kernel threads,
/// which a container never sees, have longer ones; they are cut here, which display tolerates.
const COMM_MAX: usize = 15;

/// Room for one /proc/PID/stat. Its first 22 fields, all that is parsed, take at most ~600 bytes
/// (a 64-byte kernel-thread name, twenty numbers of at most 20 digits).
const STAT_BUF: usize = 1024;

/// A process name as the kernel keeps it: bytes, not text. Displays lossily, on one line.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Comm {
    len: u8,
    bytes: [u8; COMM_MAX],
}

impl Comm {
    /// Keeps the first 15 bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Comm {
        let mut comm = Comm::default();
        let n = bytes.len().min(COMM_MAX);
        if let (Some(to), Some(from)) = (comm.bytes.get_mut(..n), bytes.get(..n)) {
            to.copy_from_slice(from);
            comm.len = n as u8; // n <= 15
        }
        comm
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// Displays as [`Lossy`] does: one line, whatever the bytes.
impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Lossy(self.as_bytes()).fmt(f)
    }
}

/// Bytes from /proc or argv: UTF-8 where valid, U+FFFD where not, control characters as `\xNN`
/// (a name must not break a log line or a terminal).
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Printable ASCII, the usual name, goes out as it is.
        if self.0.iter().all(|b| (0x20..0x7f).contains(b))
            && let Ok(plain) = std::str::from_utf8(self.0)
        {
            return f.write_str(plain);
        }
        for chunk in self.0.utf8_chunks() {
            // Runs of plain characters go out as one str (a name is usually all plain: one
            // write instead of one per character, on the path of the main child's exit line).
            let valid = chunk.valid();
            let mut plain = 0;
            for (at, c) in valid.char_indices() {
                let bidi = matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
                if !c.is_control() && !bidi {
                    continue;
                }
                f.write_str(&valid[plain..at])?;
                plain = at + c.len_utf8();
                if c.is_control() {
                    // Cc is C0, DEL and C1: all below 0x100.
                    write!(f, "\\x{:02x}", u32::from(c))?;
                } else {
                    // Unicode's line separators break lines in some viewers, and its
                    // bidirectional controls can reorder what a terminal shows.
                    write!(f, "\\u{{{:04x}}}", u32::from(c))?;
                }
            }
            f.write_str(&valid[plain..])?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// One process as /proc/PID/stat shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub state: u8,
    /// Clock ticks after boot (field 22): with the pid, it names one process for good.
    pub start_time: u64,
    pub comm: Comm,
}

impl Proc {
    /// The name for a log line: lossy UTF-8, control characters escaped.
    #[cfg(test)]
    pub fn name(&self) -> &Comm {
        &self.comm
    }

    /// A zombie (or a process being torn down): already dead, only waiting to be reaped.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses `PID (COMM) STATE PPID PGRP ... STARTTIME ...`. COMM may hold anything but NUL, `)`
/// included, so it ends at the last `)`: every later field is a number or a state letter.
pub fn parse_stat(bytes: &[u8]) -> Option<Proc> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    let pid = number(bytes.get(..open)?.trim_ascii())?;
    let comm = Comm::new(bytes.get(open.checked_add(1)?..close)?);
    let mut fields = bytes
        .get(close.checked_add(1)?..)?
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    let ppid = number(fields.next()?)?;
    let pgid = number(fields.next()?)?;
    // Fields 6 (session) to 21 (itrealvalue) are skipped: 16 of them.
    let start_time = number(fields.nth(16)?)?;
    Some(Proc {
        pid,
        ppid,
        pgid,
        state,
        start_time,
        comm,
    })
}

fn number<T: std::str::FromStr>(digits: &[u8]) -> Option<T> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `pid` as /proc/PID/stat shows it now; None when it is gone or /proc is not mounted.
pub fn stat_of(pid: i32) -> Option<Proc> {
    let mut path = [0u8; 32];
    let path = stat_path(&mut path, "/proc/", pid)?;
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    read_stat(fd, &mut [0u8; STAT_BUF])
}

/// The name of `pid` (e.g. a signal's sender); None when it is gone.
pub fn comm_of(pid: i32) -> Option<Comm> {
    stat_of(pid).map(|p| p.comm)
}

/// Writes `{prefix}{pid}/stat` into `buf`: no allocation per process.
fn stat_path<'b>(buf: &'b mut [u8; 32], prefix: &str, pid: i32) -> Option<&'b [u8]> {
    let mut rest = &mut buf[..];
    write!(rest, "{prefix}{pid}/stat").ok()?;
    let len = 32usize.checked_sub(rest.len())?;
    buf.get(..len)
}

/// One read: the kernel builds the whole stat line at once, and what is parsed fits in `buf`.
fn read_stat(fd: OwnedFd, buf: &mut [u8; STAT_BUF]) -> Option<Proc> {
    let n = loop {
        match nix::unistd::read(&fd, buf) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    };
    parse_stat(buf.get(..n)?)
}

/// Every process in /proc except sigward itself, zombies included; empty when /proc is not
/// mounted or cannot be read (see [`try_snapshot`] to tell the two apart).
pub fn snapshot() -> Vec<Proc> {
    try_snapshot().unwrap_or_default()
}

/// Every process in /proc except sigward itself, zombies included; empty when /proc is not
/// mounted. A process that exits while the list is read is simply not in it, nor is one sigward
/// may not read (another user's, under hidepid=1: not sigward's to signal either). Err when the
/// list could not be read whole (/proc not opened, no fd left: EMFILE, ENFILE): a failed snapshot
/// is not an empty tree.
pub fn try_snapshot() -> Result<Vec<Proc>, Errno> {
    let me = own_pid();
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let proc_fd = match nix::fcntl::open("/proc", flags, Mode::empty()) {
        Ok(fd) => fd,
        // Not there at all (a chroot without /proc): nothing to see, nothing hidden.
        Err(Errno::ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    // A second open file for the listing, so the first one stays free for openat.
    let dir = nix::dir::Dir::openat(&proc_fd, ".", flags, Mode::empty())?;
    let mut procs = Vec::new();
    let (mut path, mut buf) = ([0u8; 32], [0u8; STAT_BUF]);
    for entry in dir {
        // A failing readdir would fail again: stop rather than spin.
        let entry = entry?;
        let Some(pid) = entry_pid(entry.file_name().to_bytes()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(path) = stat_path(&mut path, "", pid) else {
            continue;
        };
        let opened = nix::fcntl::openat(
            &proc_fd,
            path,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        match opened {
            Ok(fd) => procs.extend(read_stat(fd, &mut buf)),
            // It exited meanwhile, or it is not sigward's to see.
            Err(Errno::ENOENT | Errno::ESRCH | Errno::EACCES | Errno::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(procs)
}

/// A /proc entry that names a process: digits only (not `self`, `sys`, ...).
fn entry_pid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    number(name).filter(|&pid| pid > 0)
}

fn own_pid() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// The live processes sigward answers for: as PID 1 everything in the namespace, otherwise its
/// descendants (orphans among them come back to it as a subreaper). Nothing outside is named.
pub fn responsible_for(pid1: bool) -> Vec<Proc> {
    try_responsible_for(pid1).unwrap_or_default()
}

/// [`responsible_for`], or Err when /proc could not be read whole (see [`try_snapshot`]).
pub fn try_responsible_for(pid1: bool) -> Result<Vec<Proc>, Errno> {
    let all = try_snapshot()?;
    let mut mine = if pid1 {
        all
    } else {
        descendants(own_pid(), all)
    };
    mine.retain(|p| !p.is_dead());
    Ok(mine)
}

/// The processes below `root` in `all`, in O(n): an index from pid to position, then children
/// as linked lists. A snapshot is not atomic, so its parent links may even form a cycle (a pid
/// reused during the listing): each process is visited once, whatever the links say.
fn descendants(root: i32, all: Vec<Proc>) -> Vec<Proc> {
    const NONE: usize = usize::MAX;
    let n = all.len();
    let position: HashMap<i32, usize, BuildHasherDefault<PidHasher>> =
        all.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
    let (mut first_child, mut next_sibling) = (vec![NONE; n], vec![NONE; n]);
    let mut todo = Vec::new();
    for (i, p) in all.iter().enumerate() {
        if p.ppid == root {
            todo.push(i);
        } else if let Some(&parent) = position.get(&p.ppid)
            && let (Some(first), Some(next)) =
                (first_child.get_mut(parent), next_sibling.get_mut(i))
        {
            *next = *first;
            *first = i;
        }
    }
    let mut found = vec![false; n];
    while let Some(i) = todo.pop() {
        match found.get_mut(i) {
            Some(seen) if !*seen => *seen = true,
            _ => continue,
        }
        let mut child = first_child.get(i).copied().unwrap_or(NONE);
        while child != NONE {
            todo.push(child);
            child = next_sibling.get(child).copied().unwrap_or(NONE);
        }
    }
    let mut keep = found.into_iter();
    let mut all = all;
    all.retain(|_| keep.next().unwrap_or(false));
    all
}

/// Pids are small distinct integers chosen by the kernel: a multiplicative hash spreads them,
/// without SipHash's cost or the random seed that std's default hasher pulls in.
#[derive(Default)]
pub struct PidHasher(u64);

impl Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i32(&mut self, pid: i32) {
        self.0 = u64::from(pid.cast_unsigned()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Cleared for good once the kernel (ENOSYS) or a seccomp filter (EPERM) refuses pidfd_open, so
/// the fallback costs no failing syscall per process afterwards.
static PIDFDS: AtomicBool = AtomicBool::new(true);

/// What pidfd_open said about a pid.
enum Opened {
    Fd(OwnedFd),
    /// No such process (ESRCH), or the pid now names a thread, not a process (EINVAL).
    Gone,
    /// No pidfd to be had (unsupported, or out of file descriptors): fall back to the pid.
    Unavailable,
}

fn pidfd_open(pid: i32) -> Opened {
    if !PIDFDS.load(Ordering::Relaxed) {
        return Opened::Unavailable;
    }
    // SAFETY: pidfd_open(2) takes a pid and flags (0) and returns a new close-on-exec fd or -1;
    // it touches no memory of ours. Arguments are widened to the register size syscall() reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_open,
            libc::c_long::from(pid),
            0 as libc::c_long,
        )
    };
    if rc < 0 {
        return match Errno::last() {
            Errno::ESRCH | Errno::EINVAL => Opened::Gone,
            Errno::ENOSYS | Errno::EPERM => {
                PIDFDS.store(false, Ordering::Relaxed);
                Opened::Unavailable
            }
            _ => Opened::Unavailable,
        };
    }
    // On 32-bit targets c_long is RawFd, and the conversion cannot fail.
    #[allow(irrefutable_let_patterns)]
    let Ok(fd) = RawFd::try_from(rc) else {
        return Opened::Unavailable;
    };
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Opened::Fd(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_send_signal(2): `sig` to the very process `pidfd` names (0 only checks it is there).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal(2) with a null siginfo (the kernel fills in a kill()-like one)
    // and flags 0; the fd is borrowed, so it stays open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            libc::c_long::from(pidfd.as_raw_fd()),
            libc::c_long::from(sig),
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_long,
        )
    };
    Errno::result(rc).map(drop)
}

/// A process pinned against pid reuse: a pid, and a pidfd for it wherever the kernel has them.
#[derive(Debug)]
pub struct Pinned {
    pid: i32,
    pidfd: Option<OwnedFd>,
}

impl Pinned {
    /// sigward's own child, not yet reaped: its pid cannot be reused before sigward reaps it, so
    /// this cannot fail; the pidfd is taken anyway, for a caller that waits on it.
    #[cfg(test)]
    pub fn child(pid: i32) -> Pinned {
        let pidfd = match pidfd_open(pid) {
            Opened::Fd(fd) => Some(fd),
            Opened::Gone | Opened::Unavailable => None,
        };
        Pinned { pid, pidfd }
    }

    /// Pins the process a snapshot saw; None when it is gone or its pid now names another
    /// process (a different start time). Signal soon after: without a pidfd, the check only
    /// holds until the process exits.
    pub fn open(p: &Proc) -> Option<Pinned> {
        let pidfd = match pidfd_open(p.pid) {
            Opened::Fd(fd) => Some(fd),
            Opened::Gone => return None,
            Opened::Unavailable => None,
        };
        let mut path = [0u8; 32];
        let path = stat_path(&mut path, "/proc/", p.pid)?;
        match nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                let now = read_stat(fd, &mut [0u8; STAT_BUF])?;
                (now.start_time == p.start_time).then_some(Pinned { pid: p.pid, pidfd })
            }
            Err(Errno::ENOENT | Errno::ESRCH) => None,
            // /proc cannot be read just now (EMFILE, ENOMEM): the snapshot saw this process a
            // moment ago, and skipping it would leave a straggler alive; signal it unchecked.
            Err(_) => Some(Pinned { pid: p.pid, pidfd }),
        }
    }

    #[cfg(test)]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd, readable once the process has exited; None where pidfds are missing.
    #[cfg(test)]
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// Sends `sig` to this very process: ESRCH once it has been reaped, never another process
    /// (with a pidfd). kill(pid) where pidfds are missing.
    pub fn signal(&self, sig: i32) -> Result<(), Errno> {
        if let Some(fd) = &self.pidfd {
            match pidfd_send_signal(fd.as_fd(), sig) {
                // pidfd_open worked but this syscall is missing: a seccomp filter that lists
                // one and not the other. kill() has the same permission rules otherwise.
                Err(Errno::ENOSYS | Errno::EPERM) => {}
                done => return done,
            }
        }
        crate::os::signals::send(self.pid, sig)
    }

    /// Whether the process still exists (zombies included) and may be signalled.
    #[cfg(test)]
    pub fn alive(&self) -> bool {
        self.signal(0).is_ok()
    }
}

/// Signals, one by one through pins, every process of group `pgid` in `procs`: for a group
/// whose leader was already reaped, where kill(-pgid) could reach a group that reused the id.
/// Each pin is closed right after its signal, so 100,000 processes need one fd at a time.
/// Returns how many were signalled.
pub fn signal_members<'a>(members: impl Iterator<Item = &'a Proc>, sig: i32) -> usize {
    members
        .filter_map(Pinned::open)
        .filter(|pin| pin.signal(sig).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// A stat line whose fields 6..=21 are filler and field 22 is `start`.
    fn stat_line(pid: i32, comm: &[u8], start: u64) -> Vec<u8> {
        let mut line = format!("{pid} (").into_bytes();
        line.extend_from_slice(comm);
        line.extend_from_slice(
            format!(") S 7 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 {start} 123 456\n")
                .as_bytes(),
        );
        line
    }

    #[test]
    fn stat_with_odd_command_names() {
        for comm in [&b"a) (b"[..], b"a b", b") (", b"x\ny", b"()", b""] {
            let p = parse_stat(&stat_line(42, comm, 987654)).unwrap();
            assert_eq!(
                (
                    p.pid,
                    p.comm.as_bytes(),
                    p.state,
                    p.ppid,
                    p.pgid,
                    p.start_time
                ),
                (42, comm, b'S', 7, 42, 987654),
                "comm {comm:?}"
            );
        }
    }

    #[test]
    fn stat_with_a_name_cut_mid_character() {
        // The kernel keeps 15 bytes: "Привет, " and the first byte of "м".
        let cut = &"Привет, мир".as_bytes()[..15];
        assert!(std::str::from_utf8(cut).is_err());
        let p = parse_stat(&stat_line(9, cut, 5)).unwrap();
        assert_eq!((p.pid, p.comm.as_bytes(), p.start_time), (9, cut, 5));
        assert_eq!(p.name().to_string(), "Привет, \u{FFFD}");
    }

    #[test]
    fn stat_that_is_not_one() {
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b"").is_none());
        assert!(parse_stat(b")42 (").is_none());
        assert!(parse_stat(b"x (a) S 1 1 1").is_none());
        // Cut before the start time.
        assert!(parse_stat(b"42 (a) S 7 42 42 0 -1 4194560 1 2 3").is_none());
    }

    /// Lossy writes runs of plain characters at once; what it writes must be exactly what
    /// writing one character at a time wrote (the rules of `names_are_lossy_and_on_one_line`).
    #[test]
    fn lossy_writes_runs_exactly_as_char_by_char() {
        fn one_by_one(bytes: &[u8]) -> String {
            let mut out = String::new();
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if c.is_control() {
                        out += &format!("\\x{:02x}", u32::from(c));
                    } else if matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                    {
                        out += &format!("\\u{{{:04x}}}", u32::from(c));
                    } else {
                        out.push(c);
                    }
                }
                if !chunk.invalid().is_empty() {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
            }
            out
        }
        let cases: [&[u8]; 9] = [
            b"",
            b"/usr/local/bin/app --flag",
            b"\n",
            b"\nlead and trail\x7f",
            b"a\nb\x1b[31m\r\xd0\xff\t",
            "\u{202e}x\u{2066}y\u{2028}".as_bytes(),
            "nginx: 工作进程\u{85}".as_bytes(),
            b"\xe5\xb7\xa5\xe4\xbd",
            b"\xff\xfe plain \x00\x01",
        ];
        for bytes in cases {
            assert_eq!(Lossy(bytes).to_string(), one_by_one(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn names_are_lossy_and_on_one_line() {
        let name = Comm::new(b"a\nb\x1b[31m\r\xd0\xff\t").to_string();
        assert_eq!(name, "a\\x0ab\\x1b[31m\\x0d\u{FFFD}\u{FFFD}\\x09");
        assert!(!name.contains(['\n', '\r', '\x1b']));
        assert_eq!(Comm::new("\u{2028}".as_bytes()).to_string(), "\\u{2028}");
        // A right-to-left override would make a terminal show the rest of the line reversed.
        assert_eq!(
            Comm::new("a\u{202e}b".as_bytes()).to_string(),
            "a\\u{202e}b"
        );
        assert_eq!(
            Comm::new("nginx: 工作进程".as_bytes()).to_string(),
            "nginx: 工作\u{FFFD}"
        );
        // Longer than the kernel keeps: cut at 15 bytes.
        assert_eq!(
            Comm::new(b"0123456789abcdefgh").as_bytes(),
            b"0123456789abcde"
        );
    }

    fn proc(pid: i32, ppid: i32) -> Proc {
        Proc {
            pid,
            ppid,
            pgid: pid,
            state: b'S',
            start_time: 0,
            comm: Comm::default(),
        }
    }

    fn pids(procs: &[Proc]) -> Vec<i32> {
        let mut pids: Vec<i32> = procs.iter().map(|p| p.pid).collect();
        pids.sort();
        pids
    }

    #[test]
    fn descendants_follow_the_tree_only() {
        let all = vec![
            proc(2, 1),
            proc(3, 2),
            proc(4, 3),
            proc(5, 1),
            proc(6, 5),
            proc(7, 3),
            proc(8, 99),
        ];
        assert_eq!(pids(&descendants(2, all.clone())), vec![3, 4, 7]);
        assert_eq!(pids(&descendants(5, all.clone())), vec![6]);
        assert_eq!(pids(&descendants(1, all.clone())), vec![2, 3, 4, 5, 6, 7]);
        assert!(descendants(4, all).is_empty());
    }

    #[test]
    fn descendants_survive_a_cycle_in_a_torn_snapshot() {
        // 10 -> 11 -> 12 -> 10: a tree never has it, a torn snapshot might.
        let all = vec![
            proc(3, 2),
            proc(4, 3),
            proc(10, 12),
            proc(11, 10),
            proc(12, 11),
        ];
        assert_eq!(pids(&descendants(2, all.clone())), vec![3, 4]);
        assert_eq!(pids(&descendants(10, all)), vec![10, 11, 12]);
    }

    #[test]
    fn descendants_of_many_take_linear_time() {
        // A chain 100,000 deep and a fan 100,000 wide: quadratic would take minutes.
        let chain: Vec<Proc> = (2..100_002).map(|pid| proc(pid, pid - 1)).collect();
        assert_eq!(descendants(1, chain).len(), 100_000);
        let fan: Vec<Proc> = (2..100_002).map(|pid| proc(pid, 1)).collect();
        assert_eq!(descendants(1, fan).len(), 100_000);
    }

    #[test]
    fn dead_means_zombie_or_dying() {
        let mut p = proc(2, 1);
        assert!(!p.is_dead());
        for state in [b'Z', b'X', b'x'] {
            p.state = state;
            assert!(p.is_dead());
        }
    }

    /// Kills and waits for a test's child however the test ends.
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn sleeper(group: Option<i32>) -> Reaped {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        if let Some(pgid) = group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, pgid);
        }
        Reaped(cmd.spawn().unwrap())
    }

    fn find(pid: i32) -> Proc {
        *snapshot().iter().find(|p| p.pid == pid).unwrap()
    }

    #[test]
    fn a_snapshotted_child_is_pinned_and_signalled() {
        let mut child = sleeper(None);
        let pid = child.0.id() as i32;
        let p = find(pid);
        assert_eq!(p.ppid, own_pid());
        assert!(p.start_time > 0);
        assert!(responsible_for(false).iter().any(|q| q.pid == pid));
        assert!(!snapshot().iter().any(|q| q.pid == own_pid()));

        let stale = Proc {
            start_time: p.start_time + 1,
            ..p
        };
        assert!(
            Pinned::open(&stale).is_none(),
            "a pid reused by another process"
        );

        let pin = Pinned::open(&p).unwrap();
        assert_eq!(pin.pid(), pid);
        assert!(pin.alive());
        pin.signal(libc::SIGTERM).unwrap();
        let status = child.0.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
        // Reaped: gone for a pidfd; a plain pid (no pidfd) is checked afresh by Pinned::open.
        assert!(!pin.alive());
        assert!(Pinned::open(&p).is_none());
    }

    #[test]
    fn pinned_without_a_pidfd_falls_back_to_the_pid() {
        let mut child = sleeper(None);
        let pid = child.0.id() as i32;
        let pin = Pinned { pid, pidfd: None };
        assert!(pin.alive());
        pin.signal(libc::SIGKILL).unwrap();
        let status = child.0.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );

        let mut child = sleeper(None);
        let pin = Pinned::child(child.0.id() as i32);
        // Kernel >= 5.3 without a seccomp filter that refuses pidfd_open.
        assert_eq!(pin.pidfd().is_some(), PIDFDS.load(Ordering::Relaxed));
        pin.signal(libc::SIGKILL).unwrap();
        child.0.wait().unwrap();
    }

    #[test]
    fn a_group_whose_leader_is_gone_is_signalled_member_by_member() {
        let leader = sleeper(Some(0));
        let pgid = leader.0.id() as i32;
        let mut member = sleeper(Some(pgid));
        let mut other = sleeper(None);
        let mut procs = snapshot();
        procs.retain(|p| [pgid, member.0.id() as i32, other.0.id() as i32].contains(&p.pid));
        assert_eq!(procs.len(), 3);
        drop(leader); // killed and reaped
        assert_eq!(
            signal_members(procs.iter().filter(|p| p.pgid == pgid), libc::SIGTERM),
            1
        );
        let status = member.0.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
        assert_eq!(other.0.try_wait().unwrap(), None);
    }

    /// A forked child that names itself with bytes that are not UTF-8, and waits to be killed.
    struct Named(i32);

    impl Drop for Named {
        fn drop(&mut self) {
            // SAFETY: the test's own child; SIGKILL then a wait for that pid only.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }

    #[test]
    fn a_process_with_a_name_that_is_not_utf8_is_found_and_named() {
        let name = c"Привет, мир";
        // SAFETY: the child only makes async-signal-safe syscalls (prctl, pause, _exit) before it
        // is killed, as a fork in a multithreaded test binary requires.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_NAME, name.as_ptr());
                loop {
                    libc::pause();
                }
            }
        }
        assert!(pid > 0);
        let child = Named(pid);
        let cut = &name.to_bytes()[..15];
        let deadline = Instant::now() + Duration::from_secs(5);
        let found = loop {
            let found = responsible_for(false)
                .into_iter()
                .find(|p| p.pid == child.0);
            match found {
                Some(p) if p.comm.as_bytes() == cut => break p,
                _ if Instant::now() > deadline => panic!("not found: {found:?}"),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        assert_eq!(found.name().to_string(), "Привет, \u{FFFD}");
        assert_eq!(comm_of(child.0).unwrap().as_bytes(), cut);
        assert_eq!(stat_of(child.0), Some(found));
        let pin = Pinned::open(&found).unwrap();
        pin.signal(libc::SIGKILL).unwrap();
    }

    #[test]
    fn stat_paths_fit_the_largest_pid() {
        let mut buf = [0u8; 32];
        assert_eq!(
            stat_path(&mut buf, "/proc/", i32::MAX),
            Some(&b"/proc/2147483647/stat"[..])
        );
        assert_eq!(entry_pid(b"self"), None);
        assert_eq!(entry_pid(b"0"), None);
        assert_eq!(entry_pid(b"+5"), None);
        assert_eq!(entry_pid(b"99999999999"), None);
        assert_eq!(entry_pid(b"31"), Some(31));
    }
}
