//! The supervisor: one state machine that forwards signals, reaps, and owns the stop sequence.
//!
//! ```text
//!  Running ──stop signal──▶ Delaying ──delay over / 2nd stop signal / child exits──▶ Draining
//!     │                                                                                │
//!     ├──stop signal, no delay────────────────────────────────────────────────────────▶│
//!     └──main child exits, others remain: SIGTERM them─────────────────────────────────▶│
//!                                                              grace deadline ──▶ Killing
//!  Every state ends when no process is left: exit with the main child's status.
//! ```
//! The grace deadline is set once, by the first stop signal (or by the main child's exit while
//! others remain), on the monotonic clock. sigward sleeps in poll(2) on its signalfd with no
//! timeout unless a deadline is pending, so an idle container costs zero wake-ups.

use crate::cli::{Config, fmt_duration};
use crate::log::{self, Level, Val};
use crate::reap::{self, Children, Exit};
use crate::signals::{Name, Received, SignalFd};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// While killing, look again this often for stragglers that forked just before SIGKILL landed.
const RESWEEP: Duration = Duration::from_secs(1);
/// At most this many stragglers are named in one log line.
const NAMED_STRAGGLERS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No stop requested: forward every signal, reap.
    Running,
    /// A stop signal is held back until `until` while the app keeps serving.
    Delaying { until: Instant, held: i32 },
    /// The stop signal was forwarded; waiting for every process to exit.
    Draining,
    /// The grace deadline passed; everything left was SIGKILLed. `resweep` is the next look.
    Killing { resweep: Instant },
}

pub struct Supervisor<'a> {
    cfg: &'a Config,
    signals: SignalFd,
    /// The main child's pid, which is also its process group id.
    child: i32,
    name: String,
    pid1: bool,
    me: i32,
    /// The child's group holds the terminal's foreground; give it back when the child exits.
    terminal: bool,
    spawned: Instant,
    phase: Phase,
    stop_began: Option<Instant>,
    deadline: Option<Instant>,
    /// The stop signal last forwarded to the main group (or SIGTERM on a main-child exit).
    stop_signal: i32,
    main_exit: Option<Exit>,
    reap_pending: bool,
}

impl<'a> Supervisor<'a> {
    pub fn new(cfg: &'a Config, signals: SignalFd, child: i32, pid1: bool, terminal: bool) -> Self {
        let name = cfg
            .command
            .first()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        Supervisor {
            cfg,
            signals,
            child,
            name,
            pid1,
            me: std::process::id() as i32,
            terminal,
            spawned: Instant::now(),
            phase: Phase::Running,
            stop_began: None,
            deadline: None,
            stop_signal: libc::SIGTERM,
            main_exit: None,
            reap_pending: true,
        }
    }

    /// Runs until every process is gone and returns the main child's exit.
    pub fn run(mut self) -> Exit {
        let mut batch = [Received { signo: 0, pid: 0 }; 32];
        let mut drained = false;
        loop {
            if self.reap_pending {
                self.reap_pending = false;
                if self.reap() == Children::None {
                    break;
                }
            }
            let now = Instant::now();
            let timer = self.next_timer();
            if timer.is_some_and(|t| now >= t) {
                self.on_timer(now);
                continue;
            }
            // A short batch emptied the queue: sleep without a read that would only say EAGAIN.
            // After forwarding, sigward is off the CPU sooner and the app runs sooner.
            if drained && !self.sleep(timer.map(|t| t - now)) {
                continue; // timeout or EINTR: look at the timers again
            }
            match self.signals.read(&mut batch) {
                Ok(n) => {
                    batch[..n].iter().for_each(|r| self.on_signal(*r));
                    drained = n < batch.len();
                }
                Err(e) => {
                    // Cannot happen with a valid signalfd; never spin on it.
                    warn("signalfd", format_args!("reading signals failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    self.reap_pending = true;
                }
            }
        }
        let exit = self.main_exit.unwrap_or(Exit::Code(125));
        log::event(
            Level::Debug,
            "exit",
            format_args!(
                "no process left; exiting with the main child's status {}",
                exit.status()
            ),
            &[("status", Val::Int(exit.status().into()))],
        );
        exit
    }

    fn next_timer(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Delaying { until, .. } => Some(until.min(self.deadline.unwrap_or(until))),
            Phase::Draining => self.deadline,
            Phase::Killing { resweep } => Some(resweep),
        }
    }

    /// Sleeps in the kernel until a signal arrives (true) or the timeout passes (false).
    fn sleep(&self, timeout: Option<Duration>) -> bool {
        let ms = timeout.map_or(-1, |d| {
            d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => n > 0,
            Err(Errno::EINTR) => false,
            Err(e) => {
                warn("poll", format_args!("waiting for signals failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        }
    }

    fn on_signal(&mut self, r: Received) {
        let sig = r.signo;
        if sig == libc::SIGCHLD {
            self.reap_pending = true;
        } else if r.pid == self.me {
            // Raised by sigward's own actions (SIGPIPE from writing to a closed stderr): not for the app.
            log::event(
                Level::Debug,
                "ignored",
                format_args!("ignored {} raised by sigward itself", Name(sig)),
                &[],
            );
        } else if self.cfg.stop_signals.contains(sig) {
            self.on_stop_signal(sig, r.pid);
        } else {
            self.forward(sig, Level::Debug);
        }
    }

    /// The stop sequence: what each stop signal does in each phase.
    fn on_stop_signal(&mut self, sig: i32, from: i32) {
        let now = Instant::now();
        match self.phase {
            Phase::Running => {
                let grace = self.cfg.grace_period;
                self.stop_began = Some(now);
                self.deadline = Some(now + grace);
                let delay = self.cfg.pre_stop_delay;
                let sent = delay.is_zero().then(|| self.begin_drain(sig));
                log::event(
                    Level::Info,
                    "stop_signal",
                    format_args!(
                        "received {} from {}: stopping, grace period {}",
                        Name(sig),
                        Sender(from),
                        fmt_duration(grace)
                    ),
                    &[
                        ("signal", Val::Sig(sig)),
                        ("from_pid", Val::Int(from.into())),
                        ("grace_ms", ms(grace)),
                    ],
                );
                if let Some(sent) = sent {
                    self.report(sent, Level::Info);
                } else {
                    self.phase = Phase::Delaying {
                        until: now + delay,
                        held: sig,
                    };
                    log::event(
                        Level::Info,
                        "pre_stop_delay",
                        format_args!(
                            "holding {} for the pre-stop delay of {}; the app keeps serving",
                            Name(sig),
                            fmt_duration(delay)
                        ),
                        &[("signal", Val::Sig(sig)), ("delay_ms", ms(delay))],
                    );
                }
            }
            Phase::Delaying { held, .. } => {
                let sent = self.begin_drain(held);
                received(
                    "delay_cut",
                    sig,
                    from,
                    "during the pre-stop delay: ending it now",
                );
                self.report(sent, Level::Info);
            }
            Phase::Draining => {
                let sent = self.deliver(sig);
                received(
                    "stop_signal_again",
                    sig,
                    from,
                    "while draining: forwarding it",
                );
                self.report(sent, Level::Info);
            }
            Phase::Killing { .. } => {
                log::event(
                    Level::Debug,
                    "ignored",
                    format_args!("ignored {}: already killing", Name(sig)),
                    &[],
                );
            }
        }
    }

    /// Enters Draining and delivers the stop signal; the caller reports it.
    fn begin_drain(&mut self, sig: i32) -> Delivery {
        self.phase = Phase::Draining;
        self.stop_signal = sig;
        let sent = self.deliver(sig);
        crate::signals::yield_cpu();
        sent
    }

    fn on_timer(&mut self, now: Instant) {
        match self.phase {
            Phase::Delaying { until, held }
                if now >= until && self.deadline.is_none_or(|d| now < d) =>
            {
                let sent = self.begin_drain(held);
                log::event(
                    Level::Info,
                    "delay_over",
                    format_args!("pre-stop delay over"),
                    &[],
                );
                self.report(sent, Level::Info);
            }
            Phase::Killing { .. } => self.kill_stragglers(false),
            _ => self.kill_stragglers(true),
        }
    }

    /// Forwards `sig` (rewritten if asked) to the main child's group, or the child alone with -c.
    fn forward(&mut self, sig: i32, level: Level) {
        let sent = self.deliver(sig);
        self.report(sent, level);
    }

    /// The forwarding syscall alone, so the stop path can signal the app before it writes a
    /// word to a possibly slow stderr.
    fn deliver(&self, sig: i32) -> Delivery {
        let Some(to) = self.cfg.rewritten(sig) else {
            return Delivery::Dropped {
                sig,
                why: "rewritten to 0",
            };
        };
        let (target, what) = if !self.cfg.single_child {
            (-self.child, "process group")
        } else if self.main_exit.is_none() {
            (self.child, "child")
        } else {
            return Delivery::Dropped {
                sig,
                why: "the child has exited",
            };
        };
        Delivery::Sent {
            sig,
            to,
            target,
            what,
            result: crate::signals::send(target, to),
        }
    }

    fn report(&self, delivery: Delivery, level: Level) {
        let child = self.child;
        match delivery {
            Delivery::Dropped { sig, why } => log::event(
                Level::Debug,
                "dropped",
                format_args!("dropped {} ({why})", Name(sig)),
                &[],
            ),
            Delivery::Sent {
                sig,
                to,
                target,
                what,
                result: Ok(()),
            } if to == sig => log::event(
                level,
                "forwarded",
                format_args!("forwarded {} to {what} {child}", Name(to)),
                &[("signal", Val::Sig(to)), ("pid", Val::Int(target.into()))],
            ),
            Delivery::Sent {
                sig,
                to,
                target,
                what,
                result: Ok(()),
            } => log::event(
                level,
                "forwarded",
                format_args!("forwarded {} as {} to {what} {child}", Name(sig), Name(to)),
                &[
                    ("signal", Val::Sig(to)),
                    ("pid", Val::Int(target.into())),
                    ("received", Val::Sig(sig)),
                ],
            ),
            Delivery::Sent {
                to,
                what,
                result: Err(Errno::ESRCH),
                ..
            } => log::event(
                Level::Debug,
                "dropped",
                format_args!("dropped {}: nobody left in {what} {child}", Name(to)),
                &[],
            ),
            Delivery::Sent {
                to,
                what,
                result: Err(e),
                ..
            } => warn(
                "forward",
                format_args!("could not send {} to {what} {child}: {e}", Name(to)),
            ),
        }
    }

    /// Collects every zombie; handles the main child's exit. Returns whether any child remains.
    fn reap(&mut self) -> Children {
        let (child, warn_on_reap) = (self.child, self.cfg.warn_on_reap);
        let mut main_exit = None;
        let left = reap::reap_all(|pid, exit| {
            if pid == child {
                main_exit = Some(exit);
            } else if warn_on_reap {
                warn(
                    "reaped",
                    format_args!("reaped orphan {pid} ({})", Status(exit)),
                );
            } else if log::enabled(Level::Debug) {
                log::event(
                    Level::Debug,
                    "reaped",
                    format_args!("reaped {pid} ({})", Status(exit)),
                    &[("pid", Val::Int(pid.into()))],
                );
            }
        });
        if let Some(exit) = main_exit {
            self.on_main_exit(exit, left);
        }
        if matches!(self.phase, Phase::Killing { .. }) && left == Children::Remain {
            self.kill_stragglers(false);
        }
        left
    }

    fn on_main_exit(&mut self, exit: Exit, left: Children) {
        let now = Instant::now();
        self.main_exit = Some(exit);
        if self.terminal {
            // Take the terminal's foreground back for our group, as a shell does when a job ends.
            let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
        }
        let since = now - self.stop_began.unwrap_or(self.spawned);
        log::event(
            Level::Info,
            "child_exited",
            format_args!(
                "{} (pid {}) exited with {} after {} ms",
                self.name,
                self.child,
                Status(exit),
                since.as_millis()
            ),
            &[
                ("pid", Val::Int(self.child.into())),
                ("status", Val::Int(exit.status().into())),
                (
                    "after_ms",
                    Val::Int(since.as_millis().min(i64::MAX as u128) as i64),
                ),
            ],
        );
        if left == Children::None || matches!(self.phase, Phase::Killing { .. }) {
            return;
        }
        // Others remain: tell them to finish instead of leaving them to the kernel's SIGKILL when
        // PID 1 exits. In Draining the main group already has the stop signal; reach the rest.
        // (With --single-child only the child itself got it.)
        let group_told = self.phase == Phase::Draining && !self.cfg.single_child;
        let sig = match self.phase {
            Phase::Delaying { held, .. } => held,
            Phase::Draining => self.stop_signal,
            _ => libc::SIGTERM,
        };
        let remaining = reap::responsible_for(self.pid1);
        let deadline = *self.deadline.get_or_insert(now + self.cfg.grace_period);
        self.phase = Phase::Draining;
        let Some(to) = self.cfg.rewritten(sig) else {
            log::event(
                Level::Info,
                "leftovers",
                format_args!(
                    "{} left after the main child exited; {} is rewritten to 0, so none is signalled",
                    Count(remaining.len(), "process", "processes"),
                    Name(sig)
                ),
                &[],
            );
            return;
        };
        if !group_told {
            let _ = crate::signals::send(-self.child, to);
        }
        for p in remaining
            .iter()
            .filter(|p| !group_told || p.pgid != self.child)
        {
            let _ = crate::signals::send(p.pid, to);
        }
        let wait = deadline.saturating_duration_since(now);
        log::event(
            Level::Info,
            "leftovers",
            format_args!(
                "{} left after the main child exited: sent {}, waiting up to {} for them",
                Count(remaining.len(), "process", "processes"),
                Name(to),
                fmt_duration(wait)
            ),
            &[
                ("count", Val::Int(remaining.len() as i64)),
                ("signal", Val::Sig(to)),
                ("wait_ms", ms(wait)),
            ],
        );
    }

    /// SIGKILLs everything sigward answers for. The first time, names the stragglers.
    fn kill_stragglers(&mut self, first: bool) {
        let stragglers = reap::responsible_for(self.pid1);
        if first {
            let mut names = String::new();
            for p in stragglers.iter().take(NAMED_STRAGGLERS) {
                if !names.is_empty() {
                    names.push_str(", ");
                }
                names.push_str(&format!("{} ({})", p.pid, p.comm));
            }
            if stragglers.len() > NAMED_STRAGGLERS {
                names.push_str(&format!(
                    " and {} more",
                    stragglers.len() - NAMED_STRAGGLERS
                ));
            }
            let grace = fmt_duration(self.cfg.grace_period);
            log::event(
                Level::Warn,
                "stragglers_killed",
                format_args!(
                    "grace period of {grace} is over: killing {}: {names}",
                    Count(stragglers.len(), "straggler", "stragglers")
                ),
                &[
                    ("count", Val::Int(stragglers.len() as i64)),
                    ("stragglers", Val::Str(&names)),
                ],
            );
        }
        let _ = crate::signals::send(-self.child, libc::SIGKILL);
        for p in &stragglers {
            let _ = crate::signals::send(p.pid, libc::SIGKILL);
        }
        if self.pid1 {
            // Also reaches daemons that left the group with setsid. Safe: we are PID 1 of our
            // own namespace, so -1 means exactly our namespace.
            let _ = crate::signals::send(-1, libc::SIGKILL);
        }
        self.phase = Phase::Killing {
            resweep: Instant::now() + RESWEEP,
        };
    }
}

fn ms(d: Duration) -> Val<'static> {
    Val::Int(d.as_millis().min(i64::MAX as u128) as i64)
}

/// A later stop signal: `received SIGINT from pid 7 (sh) <what>`.
fn received(event: &str, sig: i32, from: i32, what: &str) {
    log::event(
        Level::Info,
        event,
        format_args!("received {} from {} {what}", Name(sig), Sender(from)),
        &[
            ("signal", Val::Sig(sig)),
            ("from_pid", Val::Int(from.into())),
        ],
    );
}

fn warn(event: &str, msg: std::fmt::Arguments) {
    log::event(Level::Warn, event, msg, &[]);
}

/// `status 3` or `signal SIGKILL (status 137)`.
struct Status(Exit);

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Exit::Code(c) => write!(f, "status {c}"),
            Exit::Signal(s) => write!(f, "signal {} (status {})", Name(s), 128 + s),
        }
    }
}

/// Who sent a signal: `pid 37 (kill)`, or the world outside the namespace.
struct Sender(i32);

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            return f.write_str("outside the PID namespace (pid 0)");
        }
        match std::fs::read_to_string(format!("/proc/{}/comm", self.0)) {
            Ok(comm) => write!(f, "pid {} ({})", self.0, comm.trim_end()),
            Err(_) => write!(f, "pid {}", self.0),
        }
    }
}

/// What became of one forwarded signal: report it, or the log misses a stop-sequence event.
#[must_use]
enum Delivery {
    Dropped {
        sig: i32,
        why: &'static str,
    },
    Sent {
        sig: i32,
        to: i32,
        target: i32,
        what: &'static str,
        result: Result<(), Errno>,
    },
}

/// `1 process`, `3 processes`: a count with its noun.
struct Count(usize, &'static str, &'static str);

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.0,
            if self.0 == 1 { self.1 } else { self.2 }
        )
    }
}
