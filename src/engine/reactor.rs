//! The one place sigward sleeps: poll(2) over the signalfd, the generations' notify sockets and
//! the `--watch` inotify fd, with a timeout only while a deadline is pending, so an idle
//! container costs zero wake-ups. When the signalfd is the only source (no `--listen`, no
//! `--watch`), the sleep is rt_sigtimedwait on the same blocked set instead: one syscall to the
//! first signal where poll + read take two (the forwarding latency is a benchmark row).
//!
//! What it hands back comes in bounded batches, so no single source can starve the others or a
//! deadline: at most [`SIGNAL_BATCH`] signals per read, at most [`REAP_BATCH`] reaped children per
//! call (one SIGCHLD can stand for 100,000 exits), and notify sockets and the inotify fd only as
//! "readable" (their readers take a bounded batch each).

use crate::log;
use crate::os::clock::Mono;
use crate::os::reap::{self, Children, Exit, Waited};
use crate::os::signals::{Received, Sender, SigMask, SignalFd};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd};

/// Signals read from the signalfd at once.
pub const SIGNAL_BATCH: usize = 32;
/// Children reaped per call before the dispatcher looks at its timers and signals again.
pub const REAP_BATCH: usize = 256;
/// Signal batches read at most by [`Reactor::pending`] (4,096 signals).
const PENDING_BATCHES: usize = 128;

/// What woke sigward.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A signal other than SIGCHLD (which becomes reaping).
    Signal(Received),
    /// A child was reaped.
    Exited(i32, Exit),
    /// A child stopped on this signal (only when stops are reported: not as PID 1).
    Stopped(i32, i32),
    /// A reaping pass is complete: whether any child is left.
    Reaped(Children),
    /// Notify socket `slot` (0: the current generation's, 1: the starting one's) has datagrams.
    Notify(usize),
    /// The `--watch` inotify fd has events.
    Watch,
    /// The timeout passed (or poll was interrupted): look at the timers.
    Timeout,
}

pub struct Reactor {
    signals: SignalFd,
    /// Report children that stop (WUNTRACED), for job control on a terminal.
    stops: bool,
    /// Zombies may be waiting: reap before sleeping.
    reap_pending: bool,
    /// The last signalfd read came back short, so the queue is empty: sleep before reading again.
    drained: bool,
    /// Sleep in rt_sigtimedwait when the signalfd is the only source; false for good once it
    /// failed (a seccomp filter, a 32-bit kernel without 32-bit time calls): poll never needs it.
    sigtimedwait: bool,
    /// Signals whose log line names the sender: its name is read as soon as it is received.
    named: SigMask,
}

impl Reactor {
    /// `stops`: also report children that stop (for job control; never as PID 1).
    /// `named`: signals whose sender is named in the log.
    pub fn new(signals: SignalFd, stops: bool, named: SigMask) -> Reactor {
        Reactor {
            signals,
            stops,
            named,
            // A child may have exited before the signalfd existed.
            reap_pending: true,
            drained: false,
            sigtimedwait: true,
        }
    }

    /// Waits for the next batch of events (until `deadline` at most) and appends it to `out`.
    pub fn wait(
        &mut self,
        notify: [Option<BorrowedFd>; 2],
        watch: Option<BorrowedFd>,
        deadline: Option<Mono>,
        out: &mut Vec<Event>,
    ) {
        if self.reap_pending {
            self.reap(out);
            if self.reap_pending {
                // A long burst of exits: between batches, take what signals are queued (a stop
                // signal must not wait for 100,000 orphans), without sleeping.
                self.read_signals(out);
            }
            return;
        }
        if self.drained {
            if self.sigtimedwait && notify.iter().all(Option::is_none) && watch.is_none() {
                return self.wait_for_signal(deadline, out);
            }
            if !self.poll(notify, watch, deadline, out) {
                return;
            }
        }
        self.read_signals(out);
    }

    /// The signalfd is the only source: wait in the kernel's own signal wait.
    fn wait_for_signal(&mut self, deadline: Option<Mono>, out: &mut Vec<Event>) {
        let timeout = deadline.map(|at| at.since(Mono::now()));
        match self.signals.wait_one(timeout) {
            Ok(Some(r)) => {
                // More may be queued: the next call takes them in one batched read (a flood
                // costs one read per batch, not one wait per signal).
                self.drained = false;
                if r.signo == libc::SIGCHLD {
                    self.reap_pending = true;
                } else {
                    out.push(Event::Signal(self.named(r)));
                }
            }
            Ok(None) => out.push(Event::Timeout),
            Err(_) => {
                // Poll from now on; the signalfd holds whatever is queued.
                self.sigtimedwait = false;
                self.drained = false;
                out.push(Event::Timeout);
            }
        }
    }

    /// Sleeps in poll(2) over every source until `deadline`; pushes the readable notify sockets
    /// and inotify fd. Returns whether the signalfd is readable.
    fn poll(
        &mut self,
        notify: [Option<BorrowedFd>; 2],
        watch: Option<BorrowedFd>,
        deadline: Option<Mono>,
        out: &mut Vec<Event>,
    ) -> bool {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.since(Mono::now()).as_nanos().div_ceil(1_000_000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let sfd = PollFd::new(self.signals.as_fd(), PollFlags::POLLIN);
        // At most four fds, and no allocation per wake-up: unused slots are never polled. Slot
        // numbers 0 and 1 are notify sockets, WATCH the inotify fd.
        const WATCH: usize = 2;
        let mut fds = [sfd.clone(), sfd.clone(), sfd.clone(), sfd];
        let mut slots = [usize::MAX; 4];
        let mut polled = 1;
        let others = notify.iter().copied().chain([watch]).enumerate();
        for (slot, fd) in others {
            if let Some(fd) = fd {
                fds[polled] = PollFd::new(fd, PollFlags::POLLIN);
                slots[polled] = slot;
                polled += 1;
            }
        }
        let fds = &mut fds[..polled];
        match nix::poll::poll(fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => {
                out.push(Event::Timeout);
                return false;
            }
            Ok(_) => {}
            Err(e) => {
                // Cannot happen with valid fds; never spin on it.
                log::emit(&log::Event::PollFailed { err: e });
                std::thread::sleep(std::time::Duration::from_millis(100));
                out.push(Event::Timeout);
                return false;
            }
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        for (i, f) in fds.iter().enumerate().skip(1) {
            if ready(f) {
                out.push(match slots[i] {
                    WATCH => Event::Watch,
                    slot => Event::Notify(slot),
                });
            }
        }
        ready(&fds[0])
    }

    /// Without sleeping: what is already queued (a reaping pass if one is due, then the
    /// signals). Before a new generation starts in place, so that a stop signal that came
    /// meanwhile is seen first: every queued signal, not one batch (real-time signals queue, a
    /// stop signal may wait behind many), up to a bound no flood can stretch.
    pub fn pending(&mut self, out: &mut Vec<Event>) {
        if self.reap_pending {
            self.reap(out);
        }
        for _ in 0..PENDING_BATCHES {
            self.read_signals(out);
            if self.drained {
                break;
            }
        }
    }

    /// The signal, with its sender's name read now when its line will name the sender (a sender
    /// that exits right after kill(2) is gone by the time the line is written).
    fn named(&self, mut r: Received) -> Received {
        if self.named.contains(r.signo) {
            r.from.name();
        }
        r
    }

    /// One non-blocking read of the signalfd; SIGCHLD becomes pending reaping.
    fn read_signals(&mut self, out: &mut Vec<Event>) {
        let mut batch = [Received {
            signo: 0,
            from: Sender::default(),
        }; SIGNAL_BATCH];
        match self.signals.read(&mut batch) {
            Ok(n) => {
                self.drained = n < SIGNAL_BATCH;
                for r in batch.iter().take(n) {
                    if r.signo == libc::SIGCHLD {
                        self.reap_pending = true;
                    } else {
                        out.push(Event::Signal(self.named(*r)));
                    }
                }
            }
            Err(e) => {
                log::emit(&log::Event::SignalfdFailed { err: e });
                std::thread::sleep(std::time::Duration::from_millis(100));
                self.drained = true;
                self.reap_pending = true;
            }
        }
    }

    /// One bounded reaping pass: up to REAP_BATCH children, then `Reaped` once none is waiting.
    fn reap(&mut self, out: &mut Vec<Event>) {
        // None: the batch is full and more may be waiting; the next call goes on.
        if let Some(left) = reap::reap_some(REAP_BATCH, self.stops, |pid, waited| {
            out.push(match waited {
                Waited::Exited(exit) => Event::Exited(pid, exit),
                Waited::Stopped(sig) => Event::Stopped(pid, sig),
            })
        }) {
            self.reap_pending = false;
            out.push(Event::Reaped(left));
        }
    }
}
