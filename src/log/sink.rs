//! Writing lines without blocking, whatever stderr is: a pipe, a terminal, a socket, a file.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use nix::sys::stat::{Mode, SFlag};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// How lines reach the log's fd without ever blocking, chosen once from what the fd is.
pub(super) enum Writing {
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
pub(super) struct Sink {
    /// The fd as given: None for fd 2, or a test's own.
    pub(super) target: Option<OwnedFd>,
    pub(super) mode: Writing,
}

impl Sink {
    /// fd 2.
    pub(super) fn stderr() -> Sink {
        Sink::over(None)
    }

    /// An fd of the caller's (tests).
    #[cfg(test)]
    pub(super) fn on(fd: OwnedFd) -> Sink {
        Sink::over(Some(fd))
    }

    pub(super) fn over(target: Option<OwnedFd>) -> Sink {
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
    pub(super) fn reopen(&self) -> Option<OwnedFd> {
        let path = format!("/proc/self/fd/{}", self.fd().as_raw_fd());
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        nix::fcntl::open(path.as_str(), flags, Mode::empty()).ok()
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match &self.target {
            // SAFETY: sigward never closes fd 2 (it closes inherited fds from 3 up); were it
            // closed anyway, writes to it would fail with EBADF, touching no memory.
            None => unsafe { BorrowedFd::borrow_raw(libc::STDERR_FILENO) },
            Some(fd) => fd.as_fd(),
        }
    }

    pub(super) fn held_fd(&self) -> Option<RawFd> {
        match &self.mode {
            Writing::Own(fd) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    pub(super) fn closed(&self) -> bool {
        matches!(self.mode, Writing::Closed)
    }

    /// One write that does not block: how many bytes went out, or EAGAIN when none could.
    pub(super) fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
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
    pub(super) fn has_room(&self) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::*;

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

    /// Emits 10,000 lines: a sink that cannot take them must not make that slow (a generous
    /// bound: these lines cost microseconds each when nothing blocks).
    fn emit_many_quickly(log: &mut Logger) {
        let start = Instant::now();
        for i in 0..10_000 {
            log.emit(&forwarded(i));
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
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

        emit_many_quickly(&mut log);
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
        // The first lines fill the socket's buffer; the rest are dropped.
        emit_many_quickly(&mut log);
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
