//! The sd_notify(3) protocol, both ways, and nothing else: which generation a socket belongs to,
//! whether sigward is stopping and what a message means for a restart are decided by the callers.
//!
//! - [`Msg`]: one `KEY=VALUE` line, typed. A datagram is several lines.
//! - [`Notify`]: a generation's NOTIFY_SOCKET. A receive reads at most [`BATCH`] datagrams, so a
//!   chatty app (or any process in the pod's network namespace, which can reach an abstract
//!   socket) cannot keep PID 1 away from signals and deadlines. Each datagram comes with who sent
//!   it (pid, and a pidfd where the kernel has SO_PASSPIDFD) and owns the fds it carried.
//! - [`RateLimit`]: a refused sender is worth a warning, a flood of them is not.
//! - [`Upstream`]: sigward's own NOTIFY_SOCKET, and [`relayed`]: which of the app's messages the
//!   parent must hear (a unit with `WatchdogSec=` must not be killed because sigward sits between).

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, UnixAddr, sockopt};
use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The wire format

/// One line of a notify datagram. Borrowed from the datagram's text; [`fmt::Display`] writes it
/// back as the line it came from (numbers in canonical form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    /// `READY=1`
    Ready,
    /// `RELOADING=1` (sent with [`Msg::MonotonicUsec`] by Type=notify-reload services)
    Reloading,
    /// `STOPPING=1`
    Stopping,
    /// `STATUS=...`, free text for `systemctl status`
    Status(&'a str),
    /// `WATCHDOG=1`, the keep-alive
    Watchdog,
    /// `WATCHDOG=trigger`: "treat me as if the watchdog expired"
    WatchdogTrigger,
    /// `WATCHDOG_USEC=`, a new watchdog timeout
    WatchdogUsec(u64),
    /// `EXTEND_TIMEOUT_USEC=`: more time for start-up or stop
    ExtendTimeoutUsec(u64),
    /// `MAINPID=`, always > 0
    MainPid(i32),
    /// `ERRNO=`, always >= 0
    Errno(i32),
    /// `BARRIER=1`; its pipe fd is closed when the datagram is dropped, see [`Datagram`]
    Barrier,
    /// `MONOTONIC_USEC=`, CLOCK_MONOTONIC at the time of a `RELOADING=1`
    MonotonicUsec(u64),
    /// Any other line (FDSTORE=1, FDNAME=, a bad number, ...), whole.
    Other(&'a str),
}

impl<'a> Msg<'a> {
    /// Parses one line (without its newline). Never fails: what it does not know is `Other`.
    pub fn parse_line(line: &'a str) -> Msg<'a> {
        let Some((key, value)) = line.split_once('=') else {
            return Msg::Other(line);
        };
        let msg = match (key, value) {
            ("READY", "1") => Some(Msg::Ready),
            ("RELOADING", "1") => Some(Msg::Reloading),
            ("STOPPING", "1") => Some(Msg::Stopping),
            ("STATUS", text) => Some(Msg::Status(text)),
            ("WATCHDOG", "1") => Some(Msg::Watchdog),
            ("WATCHDOG", "trigger") => Some(Msg::WatchdogTrigger),
            ("WATCHDOG_USEC", n) => number(n).map(Msg::WatchdogUsec),
            ("EXTEND_TIMEOUT_USEC", n) => number(n).map(Msg::ExtendTimeoutUsec),
            ("MAINPID", n) => number(n).filter(|&pid| pid > 0).map(Msg::MainPid),
            ("ERRNO", n) => number(n).map(Msg::Errno),
            ("BARRIER", "1") => Some(Msg::Barrier),
            ("MONOTONIC_USEC", n) => number(n).map(Msg::MonotonicUsec),
            _ => None,
        };
        msg.unwrap_or(Msg::Other(line))
    }
}

/// A decimal number of digits only: no sign, no blanks (`str::parse` would take `+5`), no
/// overflow (that fails the parse).
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The messages of one datagram's text, in order. Empty lines are skipped, as systemd does.
pub fn parse(text: &str) -> impl Iterator<Item = Msg<'_>> + Clone {
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(Msg::parse_line)
}

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Ready => f.write_str("READY=1"),
            Msg::Reloading => f.write_str("RELOADING=1"),
            Msg::Stopping => f.write_str("STOPPING=1"),
            Msg::Status(text) => write!(f, "STATUS={text}"),
            Msg::Watchdog => f.write_str("WATCHDOG=1"),
            Msg::WatchdogTrigger => f.write_str("WATCHDOG=trigger"),
            Msg::WatchdogUsec(n) => write!(f, "WATCHDOG_USEC={n}"),
            Msg::ExtendTimeoutUsec(n) => write!(f, "EXTEND_TIMEOUT_USEC={n}"),
            Msg::MainPid(pid) => write!(f, "MAINPID={pid}"),
            Msg::Errno(n) => write!(f, "ERRNO={n}"),
            Msg::Barrier => f.write_str("BARRIER=1"),
            Msg::MonotonicUsec(n) => write!(f, "MONOTONIC_USEC={n}"),
            Msg::Other(line) => f.write_str(line),
        }
    }
}

/// Writes messages as one datagram's text: lines joined by `\n`. A `Status` or `Other` holding a
/// newline would become two lines; parsed messages never hold one.
pub fn format<'m>(
    msgs: impl IntoIterator<Item = Msg<'m>>,
    out: &mut impl fmt::Write,
) -> fmt::Result {
    for (i, msg) in msgs.into_iter().enumerate() {
        if i > 0 {
            out.write_char('\n')?;
        }
        write!(out, "{msg}")?;
    }
    Ok(())
}

/// Whether a message from the app must reach sigward's own parent unchanged.
pub fn relayed(msg: &Msg) -> bool {
    match msg {
        // The parent's watchdog (WatchdogSec=) watches sigward's unit: without the app's
        // keep-alives it kills a healthy app; a trigger or a new timeout is the app's to ask.
        Msg::Watchdog | Msg::WatchdogTrigger | Msg::WatchdogUsec(_) => true,
        // The app needs more time to start or stop than the parent's timeout allows: the parent's
        // clock is the one that kills, so it must hear it.
        Msg::ExtendTimeoutUsec(_) => true,
        // What the app says about itself, shown by `systemctl status`; says nothing for sigward.
        Msg::Status(_) | Msg::Errno(_) => true,
        // Readiness, reloads and stopping are sigward's to announce: a generation's READY=1 is a
        // promotion (the parent hears READY=1 once, from sigward), RELOADING=1 is what sigward
        // says when it starts a generation, STOPPING=1 when its stop sequence begins. The
        // timestamp belongs to a RELOADING=1, so it goes with it.
        Msg::Ready | Msg::Reloading | Msg::Stopping | Msg::MonotonicUsec(_) => false,
        // The parent must keep watching sigward: a MAINPID naming the app would make it watch a
        // process that is replaced on every restart and whose exit does not end the unit.
        Msg::MainPid(_) => false,
        // The barrier's pipe is the app's conversation with sigward; sigward answers it by
        // closing the fd (dropping the datagram), the parent never held it.
        Msg::Barrier => false,
        // FDSTORE= and unknown lines: their fds are not passed on (they close with the
        // datagram), and relaying what sigward does not understand would let an app speak for
        // sigward in ways it cannot vouch for.
        Msg::Other(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Rate-limited warnings

/// How often a refused sender may be warned about, per socket.
pub const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// At most one warning per interval; the ones in between are counted, and the next allowed one
/// reports how many were suppressed. Pure: the caller passes `now`, CLOCK_MONOTONIC in
/// nanoseconds (the lead's `Mono.0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    interval_ns: u64,
    /// When the next warning may be written; `None` before the first one.
    next: Option<u64>,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(interval: Duration) -> RateLimit {
        let ns = interval.as_nanos();
        RateLimit {
            interval_ns: if ns > u64::MAX as u128 {
                u64::MAX
            } else {
                ns as u64
            },
            next: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: warn now, and say that `n` warnings were suppressed since the last one.
    /// `None`: stay quiet; this one is counted.
    pub fn allow(&mut self, now: u64) -> Option<u64> {
        match self.next {
            Some(next) if now < next => {
                self.suppressed = self.suppressed.saturating_add(1);
                None
            }
            _ => {
                self.next = Some(now.saturating_add(self.interval_ns));
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Warnings suppressed since the last one allowed.
    #[cfg(test)]
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// Renders a suppressed count as a warning's tail: nothing for 0, ` (and N more suppressed)`.
pub struct Suppressed(pub u64);

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " (and {n} more suppressed)"),
        }
    }
}

mod receive;
mod upstream;
pub use receive::*;
pub use upstream::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::SocketAddr;

    fn msgs(text: &str) -> Vec<Msg<'_>> {
        parse(text).collect()
    }

    #[test]
    fn every_known_line_parses_to_its_message() {
        let text = "READY=1\nRELOADING=1\nMONOTONIC_USEC=123\nSTOPPING=1\nSTATUS=up: 3 of 4\n\
                    WATCHDOG=1\nWATCHDOG=trigger\nWATCHDOG_USEC=30000000\nEXTEND_TIMEOUT_USEC=5\n\
                    MAINPID=42\nERRNO=2\nBARRIER=1\nFDSTORE=1";
        assert_eq!(
            msgs(text),
            [
                Msg::Ready,
                Msg::Reloading,
                Msg::MonotonicUsec(123),
                Msg::Stopping,
                Msg::Status("up: 3 of 4"),
                Msg::Watchdog,
                Msg::WatchdogTrigger,
                Msg::WatchdogUsec(30_000_000),
                Msg::ExtendTimeoutUsec(5),
                Msg::MainPid(42),
                Msg::Errno(2),
                Msg::Barrier,
                Msg::Other("FDSTORE=1"),
            ]
        );
    }

    #[test]
    fn bad_values_are_other_lines() {
        for line in [
            "READY=0",
            "READY=1 ",
            "READY",
            "WATCHDOG=2",
            "WATCHDOG_USEC=",
            "WATCHDOG_USEC=+5",
            "WATCHDOG_USEC= 5",
            "WATCHDOG_USEC=-1",
            "WATCHDOG_USEC=18446744073709551616",
            "EXTEND_TIMEOUT_USEC=1s",
            "MAINPID=0",
            "MAINPID=-1",
            "MAINPID=2147483648",
            "ERRNO=-5",
            "MONOTONIC_USEC=x",
            "BARRIER=0",
            "ready=1",
        ] {
            assert_eq!(Msg::parse_line(line), Msg::Other(line), "{line}");
        }
    }

    #[test]
    fn status_keeps_everything_after_the_first_equals_sign() {
        assert_eq!(msgs("STATUS=a=b"), [Msg::Status("a=b")]);
        assert_eq!(msgs("STATUS="), [Msg::Status("")]);
    }

    #[test]
    fn empty_lines_are_skipped() {
        assert_eq!(msgs("\n\nREADY=1\n\n"), [Msg::Ready]);
        assert!(msgs("").is_empty());
    }

    #[test]
    fn format_joins_lines_as_sd_notify_does() {
        let mut out = String::new();
        format(
            [Msg::Reloading, Msg::MonotonicUsec(7), Msg::Status("x")],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, "RELOADING=1\nMONOTONIC_USEC=7\nSTATUS=x");
    }

    #[test]
    fn the_parent_hears_the_watchdog_and_the_apps_words_not_its_lifecycle() {
        let relayed_lines = [
            "WATCHDOG=1",
            "WATCHDOG=trigger",
            "WATCHDOG_USEC=1",
            "EXTEND_TIMEOUT_USEC=1",
            "STATUS=hi",
            "ERRNO=5",
        ];
        let kept_lines = [
            "READY=1",
            "RELOADING=1",
            "STOPPING=1",
            "MONOTONIC_USEC=1",
            "MAINPID=7",
            "BARRIER=1",
            "FDSTORE=1",
            "FDNAME=x",
            "X_CUSTOM=1",
        ];
        for line in relayed_lines {
            assert!(relayed(&Msg::parse_line(line)), "{line} must be relayed");
        }
        for line in kept_lines {
            assert!(
                !relayed(&Msg::parse_line(line)),
                "{line} must not be relayed"
            );
        }
    }

    #[test]
    fn one_warning_per_interval_and_the_next_counts_the_suppressed() {
        const S: u64 = 1_000_000_000;
        let mut limit = RateLimit::new(Duration::from_secs(10));
        assert_eq!(limit.allow(5 * S), Some(0));
        assert_eq!(limit.allow(5 * S), None);
        assert_eq!(limit.allow(14 * S), None);
        assert_eq!(limit.suppressed(), 2);
        assert_eq!(limit.allow(15 * S), Some(2));
        assert_eq!(limit.suppressed(), 0);
        assert_eq!(limit.allow(16 * S), None);
        assert_eq!(limit.allow(100 * S), Some(1));
        assert_eq!(limit.allow(100 * S + 1), None);
    }

    #[test]
    fn the_first_warning_is_allowed_at_any_instant() {
        assert_eq!(RateLimit::new(Duration::from_secs(10)).allow(0), Some(0));
        let mut never_again = RateLimit::new(Duration::MAX);
        assert_eq!(never_again.allow(1), Some(0));
        assert_eq!(never_again.allow(u64::MAX - 1), None);
    }

    #[test]
    fn suppressed_renders_as_a_tail_only_when_some_were() {
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(Suppressed(3).to_string(), " (and 3 more suppressed)");
    }

    /// A nonblocking client socket connected to `notify`'s abstract name (a full queue fails a
    /// test instead of hanging it).
    fn client(notify: &Notify) -> UnixDatagram {
        let name = notify.addr.strip_prefix('@').unwrap();
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::unbound().unwrap();
        sock.connect_addr(&addr).unwrap();
        sock.set_nonblocking(true).unwrap();
        sock
    }

    /// A client whose datagrams `notify` can queue far beyond `max_dgram_qlen` (default 10):
    /// the kernel skips that limit when the receiver is connected back to the sender, so a test
    /// can queue more than a [`BATCH`] without raising a sysctl or racing a sender thread.
    fn flooding_client(notify: &Notify) -> UnixDatagram {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sigward-notify-flood-{}-{n}", std::process::id());
        let own = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&own).unwrap();
        let target = notify.addr.strip_prefix('@').unwrap();
        sock.connect_addr(&SocketAddr::from_abstract_name(target.as_bytes()).unwrap())
            .unwrap();
        sock.set_nonblocking(true).unwrap();
        notify.sock.connect_addr(&own).unwrap();
        sock
    }

    #[test]
    fn recv_reads_a_bounded_batch_per_call_and_everything_over_several() {
        let notify = Notify::new().unwrap();
        assert!(notify.addr.starts_with('@'));
        let app = flooding_client(&notify);
        for i in 0..100 {
            app.send(format!("STATUS={i}").as_bytes()).unwrap();
        }
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let batch = notify.recv();
            assert_eq!(batch.error, None);
            sizes.push(batch.datagrams.len());
            for d in &batch.datagrams {
                assert_eq!(d.sender.pid, Some(std::process::id() as i32));
                if pidfds_supported() == Some(true) {
                    assert_eq!(d.sender.alive(), Some(true));
                }
                got.extend(d.msgs().map(|m| m.to_string()));
            }
            assert_eq!(batch.more, batch.datagrams.len() == BATCH);
            if !batch.more {
                break;
            }
        }
        assert_eq!(sizes, [16, 16, 16, 16, 16, 16, 4]);
        let want: Vec<String> = (0..100).map(|i| format!("STATUS={i}")).collect();
        assert_eq!(got, want);
        let empty = notify.recv();
        assert!(empty.datagrams.is_empty() && !empty.more && empty.error.is_none());
    }

    #[test]
    fn a_sender_from_a_plain_socket_is_known_by_pid() {
        let notify = Notify::new().unwrap();
        let app = client(&notify);
        app.send(b"READY=1").unwrap();
        let batch = notify.recv();
        let [datagram] = batch.datagrams.as_slice() else {
            panic!("one datagram expected: {batch:?}");
        };
        assert_eq!(datagram.sender.pid, Some(std::process::id() as i32));
        assert_eq!(datagram.msgs().collect::<Vec<_>>(), [Msg::Ready]);
        assert_eq!(pidfds_supported(), Some(kernel_at_least(6, 5)));
        assert_eq!(datagram.sender.pidfd.is_some(), kernel_at_least(6, 5));
    }

    #[test]
    fn a_sender_that_is_gone_is_not_alive() {
        let notify = Notify::new().unwrap();
        let app = client(&notify);
        // SAFETY: the child only calls send(2) and _exit(2), both async-signal-safe.
        let child = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                libc::send(app.as_raw_fd(), b"WATCHDOG=1".as_ptr().cast(), 10, 0);
                libc::_exit(0)
            },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        nix::sys::wait::waitpid(child, None).unwrap();
        let batch = notify.recv();
        let [datagram] = batch.datagrams.as_slice() else {
            panic!("one datagram expected: {batch:?}");
        };
        assert_eq!(datagram.msgs().collect::<Vec<_>>(), [Msg::Watchdog]);
        assert!(datagram.sender.pid.is_none_or(|p| p == child.as_raw()));
        assert_ne!(datagram.sender.alive(), Some(true), "{:?}", datagram.sender);
        eprintln!(
            "reaped sender: {:?}, alive {:?}",
            datagram.sender,
            datagram.sender.alive()
        );
    }

    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let got: (u32, u32) = (
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
        );
        got >= (major, minor)
    }

    #[test]
    fn a_carried_fd_closes_when_the_datagram_is_dropped() {
        let notify = Notify::new().unwrap();
        let app = client(&notify);
        let (read_end, write_end) = std::io::pipe().unwrap();
        let fds = [write_end.as_raw_fd()];
        socket::sendmsg::<()>(
            app.as_raw_fd(),
            &[std::io::IoSlice::new(b"BARRIER=1")],
            &[socket::ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop(write_end);
        let mut batch = notify.recv();
        let datagram = batch.datagrams.pop().unwrap();
        assert_eq!(datagram.msgs().collect::<Vec<_>>(), [Msg::Barrier]);
        assert_eq!(datagram.fd_count(), 1);

        let read_end = OwnedFd::from(read_end);
        nix::fcntl::fcntl(
            &read_end,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut read_end = std::fs::File::from(read_end);
        let mut byte = [0u8; 1];
        let before = read_end.read(&mut byte).unwrap_err();
        assert_eq!(
            before.kind(),
            std::io::ErrorKind::WouldBlock,
            "writer still open"
        );
        drop(datagram);
        assert_eq!(
            read_end.read(&mut byte).unwrap(),
            0,
            "EOF: the barrier is answered"
        );
    }

    #[test]
    fn received_fds_are_close_on_exec() {
        let notify = Notify::new().unwrap();
        let app = client(&notify);
        let (_read_end, write_end) = std::io::pipe().unwrap();
        let fds = [write_end.as_raw_fd()];
        socket::sendmsg::<()>(
            app.as_raw_fd(),
            &[std::io::IoSlice::new(b"FDSTORE=1")],
            &[socket::ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let batch = notify.recv();
        let datagram = batch.datagrams.first().unwrap();
        let fd = datagram._fds.first().unwrap();
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn a_datagram_too_long_is_reported_truncated_not_parsed() {
        let notify = Notify::new().unwrap();
        let app = client(&notify);
        let mut long = b"WATCHDOG_USEC=".to_vec();
        long.resize(MAX_DATAGRAM + 100, b'9');
        app.send(&long).unwrap();
        let batch = notify.recv();
        let datagram = batch.datagrams.first().unwrap();
        assert_eq!(
            datagram.body,
            Body::Truncated {
                len: MAX_DATAGRAM + 100
            }
        );
        assert_eq!(datagram.msgs().count(), 0);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_and_the_rest_still_parses() {
        let notify = Notify::new().unwrap();
        let app = client(&notify);
        app.send(b"STATUS=caf\xc3\nREADY=1").unwrap();
        let batch = notify.recv();
        let datagram = batch.datagrams.first().unwrap();
        assert_eq!(
            datagram.msgs().collect::<Vec<_>>(),
            [Msg::Status("caf\u{fffd}"), Msg::Ready]
        );
    }

    /// A receiver bound to a fresh path in the temp dir, removed when dropped.
    struct Receiver {
        sock: UnixDatagram,
        path: std::path::PathBuf,
    }

    impl Receiver {
        fn new(tag: &str) -> Receiver {
            let path =
                std::env::temp_dir().join(format!("sigward-notify-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let sock = UnixDatagram::bind(&path).unwrap();
            sock.set_nonblocking(true).unwrap();
            Receiver { sock, path }
        }

        fn next(&self) -> Option<String> {
            let mut buf = [0u8; MAX_DATAGRAM];
            let n = self.sock.recv(&mut buf).ok()?;
            Some(String::from_utf8(buf[..n].to_vec()).unwrap())
        }
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    #[test]
    fn upstream_sends_one_datagram_per_call() {
        let parent = Receiver::new("send");
        let up = Upstream::to(parent.path.as_os_str()).unwrap();
        up.send(&[Msg::Ready, Msg::Status("serving")]).unwrap();
        up.send(&[Msg::Stopping]).unwrap();
        assert_eq!(parent.next().as_deref(), Some("READY=1\nSTATUS=serving"));
        assert_eq!(parent.next().as_deref(), Some("STOPPING=1"));
        assert_eq!(parent.next(), None);
    }

    #[test]
    fn upstream_relays_only_what_the_parent_must_hear() {
        let parent = Receiver::new("relay");
        let up = Upstream::to(parent.path.as_os_str()).unwrap();
        let from_app = "READY=1\nWATCHDOG=1\nMAINPID=5\nEXTEND_TIMEOUT_USEC=9\nFDSTORE=1";
        assert_eq!(up.relay(parse(from_app)), Ok(2));
        assert_eq!(
            parent.next().as_deref(),
            Some("WATCHDOG=1\nEXTEND_TIMEOUT_USEC=9")
        );
        assert_eq!(up.relay(parse("READY=1\nBARRIER=1")), Ok(0));
        assert_eq!(parent.next(), None, "nothing relayed, nothing sent");
    }

    #[test]
    fn upstream_never_blocks_on_a_parent_that_does_not_read() {
        let parent = Receiver::new("full");
        let up = Upstream::to(parent.path.as_os_str()).unwrap();
        let mut refused = None;
        for _ in 0..10_000 {
            if let Err(e) = up.send(&[Msg::Watchdog]) {
                refused = Some(e);
                break;
            }
        }
        assert_eq!(refused, Some(Errno::EAGAIN));
    }

    #[test]
    fn upstream_to_an_abstract_name_and_refusals() {
        let parent = UnixDatagram::bind_addr(
            &SocketAddr::from_abstract_name(
                format!("sigward-notify-test-{}", std::process::id()).as_bytes(),
            )
            .unwrap(),
        )
        .unwrap();
        let name = format!("@sigward-notify-test-{}", std::process::id());
        Upstream::to(OsStr::new(&name))
            .unwrap()
            .send(&[Msg::Reloading, Msg::MonotonicUsec(1)])
            .unwrap();
        let mut buf = [0u8; 64];
        let n = parent.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"RELOADING=1\nMONOTONIC_USEC=1");

        assert!(Upstream::to(OsStr::new("vsock:2:1")).is_err());
        assert!(Upstream::to(OsStr::new(&format!("/{}", "x".repeat(200)))).is_err());
        let gone = Upstream::to(OsStr::new("/nonexistent/sigward/notify")).unwrap();
        assert_eq!(gone.send(&[Msg::Ready]), Err(Errno::ENOENT));
        let too_long = "s".repeat(MAX_DATAGRAM);
        assert_eq!(gone.send(&[Msg::Status(&too_long)]), Err(Errno::EMSGSIZE));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A valid message built from generated parts.
        fn msg<'a>(kind: u8, n: u64, text: &'a str) -> Msg<'a> {
            match kind % 13 {
                0 => Msg::Ready,
                1 => Msg::Reloading,
                2 => Msg::Stopping,
                3 => Msg::Status(text),
                4 => Msg::Watchdog,
                5 => Msg::WatchdogTrigger,
                6 => Msg::WatchdogUsec(n),
                7 => Msg::ExtendTimeoutUsec(n),
                8 => Msg::MainPid((n % i32::MAX as u64) as i32 + 1),
                9 => Msg::Errno((n % (i32::MAX as u64 + 1)) as i32),
                10 => Msg::Barrier,
                11 => Msg::MonotonicUsec(n),
                _ => match Msg::parse_line(text) {
                    other @ Msg::Other(_) if !text.is_empty() => other,
                    _ => Msg::Other("X_UNKNOWN=1"),
                },
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let text = String::from_utf8_lossy(&bytes);
                for m in parse(&text) {
                    let _ = relayed(&m);
                    let _ = m.to_string();
                }
            }

            #[test]
            fn parsing_likely_lines_never_panics(key in "(READY|RELOADING|STOPPING|STATUS|WATCHDOG|WATCHDOG_USEC|EXTEND_TIMEOUT_USEC|MAINPID|ERRNO|BARRIER|MONOTONIC_USEC|FDSTORE)", value in "\\PC*|[-+0-9 ]{0,25}") {
                let line = format!("{key}={value}");
                let m = Msg::parse_line(&line);
                if let Msg::Other(s) = m {
                    prop_assert_eq!(s, line.as_str());
                } else {
                    // Whatever parsed prints back as the line (numbers without leading zeros).
                    let printed = m.to_string();
                    prop_assert_eq!(Msg::parse_line(&printed), m);
                }
            }

            #[test]
            fn a_message_formats_and_parses_back(kind: u8, n: u64, text in "[^\n]*") {
                let m = msg(kind, n, &text);
                let line = m.to_string();
                prop_assert_eq!(msgs(&line), vec![m]);
            }

            #[test]
            fn a_datagram_formats_and_parses_back(parts in proptest::collection::vec((any::<u8>(), any::<u64>(), "[^\n]*"), 0..12)) {
                let want: Vec<Msg> = parts
                    .iter()
                    .map(|(kind, n, text)| msg(*kind, *n, text))
                    // An empty STATUS= still makes a line; only Other("") could vanish, and
                    // msg() never builds it.
                    .collect();
                let mut text = String::new();
                format(want.iter().copied(), &mut text).unwrap();
                prop_assert_eq!(msgs(&text), want);
            }

            #[test]
            fn rate_limit_allows_at_most_one_per_interval(steps in proptest::collection::vec(0u64..5_000, 1..200)) {
                let interval = 1_000u64;
                let mut limit = RateLimit::new(Duration::from_nanos(interval));
                let mut now = 0u64;
                let mut last: Option<u64> = None;
                let mut calls = 0u64;
                let mut reported = 0u64;
                for step in steps {
                    now += step;
                    calls += 1;
                    if let Some(n) = limit.allow(now) {
                        if let Some(last) = last {
                            prop_assert!(now >= last + interval);
                        }
                        last = Some(now);
                        reported += n + 1;
                    }
                }
                prop_assert_eq!(reported + limit.suppressed(), calls, "every call is warned or counted");
            }
        }
    }
}

#[cfg(test)]
mod review_tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::SocketAddr;
    use std::time::Instant;

    /// A sender passes a TCP socket with SO_LINGER and unsent data; PID 1 closes it when the
    /// datagram drops, and that close() blocks for the linger time.
    #[test]
    fn dropping_a_datagram_that_carries_a_lingering_tcp_socket_does_not_block() {
        let notify = Notify::new().unwrap();
        let name = notify.addr.strip_prefix('@').unwrap();
        let app = UnixDatagram::unbound().unwrap();
        app.connect_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
        let mut stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        stream.set_nonblocking(true).unwrap();
        let chunk = [0u8; 65536];
        while stream.write(&chunk).is_ok() {} // peer window and our send buffer full
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 3,
        };
        // SAFETY: setsockopt on an open socket with a valid linger struct.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        let fds = [stream.as_raw_fd()];
        socket::sendmsg::<()>(
            app.as_raw_fd(),
            &[std::io::IoSlice::new(b"WATCHDOG=1")],
            &[socket::ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop(stream); // the sender keeps no copy: sigward's is the last

        let batch = notify.recv();
        assert_eq!(batch.datagrams.len(), 1);
        let t = Instant::now();
        drop(batch);
        let took = t.elapsed();
        eprintln!("dropping the datagram took {took:?}");
        assert!(
            took < Duration::from_millis(500),
            "PID 1 blocked {took:?} closing an fd a stranger sent"
        );
    }

    /// The app's datagram fits (3,018 bytes), but its non-UTF-8 STATUS grows threefold when
    /// made lossy; the relay then fails as a whole and the WATCHDOG=1 beside it is lost.
    #[test]
    fn a_watchdog_ping_beside_a_non_utf8_status_still_reaches_the_parent() {
        let notify = Notify::new().unwrap();
        let name = notify.addr.strip_prefix('@').unwrap();
        let app = UnixDatagram::unbound().unwrap();
        app.connect_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        let mut dgram = b"STATUS=".to_vec();
        dgram.extend(std::iter::repeat_n(0xe9u8, 3000)); // Latin-1 text, say
        dgram.extend(b"\nWATCHDOG=1");
        app.send(&dgram).unwrap();
        let batch = notify.recv();
        let [d] = batch.datagrams.as_slice() else {
            panic!()
        };

        let path = std::env::temp_dir().join(format!("sigward-review-up-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let parent = UnixDatagram::bind(&path).unwrap();
        parent.set_nonblocking(true).unwrap();
        let up = Upstream::to(path.as_os_str()).unwrap();
        let relayed = up.relay(d.msgs());
        let mut buf = [0u8; 65536];
        let got = parent.recv(&mut buf).map(|n| buf[..n].to_vec());
        let _ = std::fs::remove_file(&path);
        assert!(
            got.as_ref().is_ok_and(|g| g.ends_with(b"WATCHDOG=1")),
            "relay returned {relayed:?}; the parent got {:?}",
            got.map(|g| g.len())
        );
    }
}
