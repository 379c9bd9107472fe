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
//! With --listen the current generation can be replaced without refusing a connection
//! (restart signal): `Idle → Starting` (a new generation runs on the same sockets until READY=1,
//! `after:`, or the ready timeout) `→ Retiring` (the old generation gets the stop signal and its
//! own grace deadline) `→ Idle`. At most two generations live at once; `self.child` is always the
//! current one, so the stop sequence above applies to it unchanged.
//!
//! The grace deadline is set once, by the first stop signal (or by the main child's exit while
//! others remain), on the monotonic clock. sigward sleeps in poll(2) on its signalfd with no
//! timeout unless a deadline is pending, so an idle container costs zero wake-ups.

use crate::cli::{Config, Ready, fmt_duration};
use crate::handover::{Listeners, Notify, Upstream};
use crate::log::{self, Level, Val};
use crate::procs;
use crate::reap::{self, Children, Exit};
use crate::signals::{Name, Received, SignalFd};
use crate::spawn::{self, Detach, Handover, Inherited, SpawnError};
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
    /// Set when sigward holds listening sockets: generations can be replaced.
    gens: Option<Generations>,
}

/// Everything a restart needs, and where it stands.
pub struct Generations {
    pub listeners: Listeners,
    pub detach: Detach,
    pub inherited: Inherited,
    /// The current generation's number and notify socket.
    pub current: u32,
    pub notify: Notify,
    pub upstream: Option<Upstream>,
    /// Where sigward was started: each generation starts there.
    cwd: Option<std::ffi::CString>,
    /// The current generation has said READY=1 (or was promoted for being ready).
    pub ready: bool,
    restart: Restart,
}

impl Generations {
    pub fn new(listeners: Listeners, detach: Detach, inherited: Inherited, notify: Notify) -> Self {
        let upstream = Upstream::from_env();
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|d| std::ffi::CString::new(d.into_os_string().into_encoded_bytes()).ok());
        Generations {
            cwd,
            listeners,
            detach,
            inherited,
            current: 1,
            notify,
            upstream,
            ready: false,
            restart: Restart::Idle,
        }
    }

    /// Tells sigward's own notify-aware parent, if it has one (READY=1, RELOADING=1, STOPPING=1).
    fn tell_upstream(&self, msg: &str) {
        if let Some(up) = &self.upstream {
            up.send(msg);
        }
    }

    /// Starts generation `n` on the held sockets.
    pub fn spawn(
        &self,
        command: &[std::ffi::OsString],
        n: u32,
        notify: &Notify,
    ) -> Result<i32, SpawnError> {
        let fdnames = self.listeners.fdnames();
        let handover = Handover {
            fds: &self.listeners.fds,
            fdnames: &fdnames,
            notify: &notify.addr,
            generation: n,
            cwd: self.cwd.as_deref(),
        };
        spawn::spawn(command, self.detach, &self.inherited, Some(&handover)).map(|p| p.as_raw())
    }
}

enum Restart {
    Idle,
    /// Generation `n` runs beside the current one until it is ready or `give_up`.
    Starting {
        n: u32,
        pid: i32,
        notify: Notify,
        began: Instant,
        give_up: Instant,
    },
    /// Generation `n` was replaced and drains until `deadline`; then its group is SIGKILLed.
    Retiring {
        n: u32,
        pid: i32,
        deadline: Instant,
        began: Instant,
        exited: bool,
    },
}

impl<'a> Supervisor<'a> {
    pub fn new(
        cfg: &'a Config,
        signals: SignalFd,
        child: i32,
        pid1: bool,
        terminal: bool,
        gens: Option<Generations>,
    ) -> Self {
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
            gens,
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
        let phase = match self.phase {
            Phase::Running => None,
            Phase::Delaying { until, .. } => Some(until.min(self.deadline.unwrap_or(until))),
            Phase::Draining => self.deadline,
            Phase::Killing { resweep } => Some(resweep),
        };
        match (phase, self.restart_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The restart's next deadline: readiness by `after:`, giving up, or the retiring deadline.
    fn restart_timer(&self) -> Option<Instant> {
        match &self.gens.as_ref()?.restart {
            Restart::Idle => None,
            Restart::Starting { began, give_up, .. } => match self.cfg.ready {
                Ready::After(d) => Some((*began + d).min(*give_up)),
                Ready::Notify => Some(*give_up),
            },
            Restart::Retiring { deadline, .. } => Some(*deadline),
        }
    }

    /// Sleeps in the kernel until a signal arrives (true) or the timeout passes (false). Readiness
    /// messages from the generations' notify sockets are handled on the way.
    fn sleep(&mut self, timeout: Option<Duration>) -> bool {
        let ms = timeout.map_or(-1, |d| {
            d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        let poll_timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let (result, current_says, next_says) = {
            // At most three fds, and no allocation per wake-up: unused slots are never polled.
            let signals = PollFd::new(self.signals.as_fd(), PollFlags::POLLIN);
            let mut fds = [signals.clone(), signals.clone(), signals];
            let mut polled = 1;
            if let Some(g) = &self.gens {
                fds[1] = PollFd::new(g.notify.as_fd(), PollFlags::POLLIN);
                polled = 2;
                if let Restart::Starting { notify, .. } = &g.restart {
                    fds[2] = PollFd::new(notify.as_fd(), PollFlags::POLLIN);
                    polled = 3;
                }
            }
            let fds = &mut fds[..polled];
            let result = nix::poll::poll(fds, poll_timeout);
            let readable = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| r.contains(PollFlags::POLLIN))
            };
            (result.map(|_| readable(0)), readable(1), readable(2))
        };
        if current_says {
            self.on_notify(false);
        }
        if next_says {
            self.on_notify(true);
        }
        match result {
            Ok(signals) => signals,
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
        let restart = self.gens.is_some() && self.cfg.restart_signal == Some(sig);
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
        } else if restart {
            self.on_restart_signal(sig, r.pid);
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
                if let Some(g) = &self.gens {
                    g.tell_upstream("STOPPING=1");
                }
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
        if self.restart_timer().is_some_and(|t| now >= t) {
            return self.on_restart_timer(now);
        }
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

    /// The restart signal: start the next generation on the same sockets, unless one is already
    /// starting or retiring (at most two live at once) or sigward is stopping.
    fn on_restart_signal(&mut self, sig: i32, from: i32) {
        let (phase, child) = (self.phase, self.child);
        let Some(g) = self.gens.as_mut() else { return };
        let busy = match (&g.restart, phase) {
            (_, Phase::Delaying { .. } | Phase::Draining | Phase::Killing { .. }) => {
                Some("sigward is stopping".to_string())
            }
            (Restart::Starting { n, .. }, _) => Some(format!("generation {n} is still starting")),
            (Restart::Retiring { n, .. }, _) => Some(format!("generation {n} is still draining")),
            (Restart::Idle, _) => None,
        };
        if let Some(why) = busy {
            return log::event(
                Level::Warn,
                "restart_ignored",
                format_args!(
                    "received {} from {}: restart ignored, {why}",
                    Name(sig),
                    Sender(from)
                ),
                &[("signal", Val::Sig(sig))],
            );
        }
        let n = g.current + 1;
        let notify = match Notify::new() {
            Ok(notify) => notify,
            Err(e) => {
                return warn(
                    "restart_failed",
                    format_args!("cannot make generation {n}'s notify socket: {e}"),
                );
            }
        };
        match g.spawn(&self.cfg.command, n, &notify) {
            Ok(pid) => {
                let now = Instant::now();
                g.tell_upstream("RELOADING=1");
                g.restart = Restart::Starting {
                    n,
                    pid,
                    notify,
                    began: now,
                    give_up: now + self.cfg.ready_timeout,
                };
                let how = match self.cfg.ready {
                    Ready::Notify => {
                        format!("READY=1, up to {}", fmt_duration(self.cfg.ready_timeout))
                    }
                    Ready::After(d) => format!("{} (after:)", fmt_duration(d)),
                };
                log::event(
                    Level::Info,
                    "restart",
                    format_args!(
                        "received {} from {}: starting generation {n} as pid {pid} beside generation {} (pid {child}); waiting for {how}",
                        Name(sig),
                        Sender(from),
                        g.current
                    ),
                    &[
                        ("generation", Val::Int(n.into())),
                        ("pid", Val::Int(pid.into())),
                    ],
                );
            }
            Err(SpawnError::Exec(e)) => warn(
                "restart_failed",
                format_args!(
                    "generation {n} cannot run: {}; generation {} keeps serving",
                    e.desc(),
                    g.current
                ),
            ),
            Err(SpawnError::Start(what, e)) => warn(
                "restart_failed",
                format_args!(
                    "generation {n} cannot start: {what}: {e}; generation {} keeps serving",
                    g.current
                ),
            ),
        }
    }

    fn on_restart_timer(&mut self, now: Instant) {
        let Some(g) = self.gens.as_mut() else { return };
        match &g.restart {
            Restart::Starting { began, give_up, .. } => {
                if now < *give_up && matches!(self.cfg.ready, Ready::After(d) if now >= *began + d)
                {
                    self.promote();
                } else {
                    let timeout = fmt_duration(self.cfg.ready_timeout);
                    self.abandon(&format!("it was not ready after {timeout}"));
                }
            }
            Restart::Retiring { n, pid, .. } => {
                let (n, pid) = (*n, *pid);
                g.restart = Restart::Idle;
                let _ = crate::signals::send(-pid, libc::SIGKILL);
                let left = procs::responsible_for(self.pid1)
                    .into_iter()
                    .filter(|p| p.pgid == pid)
                    .count();
                log::event(
                    Level::Warn,
                    "retired_killed",
                    format_args!(
                        "generation {n} (pid {pid}) did not finish within the grace period of {}: killed {}",
                        fmt_duration(self.cfg.grace_period),
                        Count(left, "process", "processes")
                    ),
                    &[
                        ("generation", Val::Int(n.into())),
                        ("count", Val::Int(left as i64)),
                    ],
                );
            }
            Restart::Idle => {}
        }
    }

    /// Messages on a notify socket: READY=1 from the starting generation promotes it.
    fn on_notify(&mut self, from_next: bool) {
        let Some(g) = self.gens.as_mut() else { return };
        let (n, gen_pid, notify) = match (&g.restart, from_next) {
            (Restart::Starting { n, pid, notify, .. }, true) => (*n, *pid, notify),
            _ => (g.current, self.child, &g.notify),
        };
        let mut ready = false;
        notify.recv(|sender, text| {
            if sender != gen_pid && procs::stat_of(sender).map(|p| p.pgid) != Some(gen_pid) {
                return warn(
                    "notify_refused",
                    format_args!("ignored a notify message from pid {sender}: not generation {n}"),
                );
            }
            for line in text.lines() {
                match line.split_once('=') {
                    Some(("READY", "1")) => ready = true,
                    Some(("STATUS", status)) => log::event(
                        Level::Info,
                        "status",
                        format_args!("generation {n} status: {status}"),
                        &[("generation", Val::Int(n.into()))],
                    ),
                    Some(("STOPPING", "1")) => log::event(
                        Level::Info,
                        "stopping",
                        format_args!("generation {n} says it is stopping"),
                        &[],
                    ),
                    Some(("RELOADING", "1")) => log::event(
                        Level::Info,
                        "reloading",
                        format_args!("generation {n} says it is reloading"),
                        &[],
                    ),
                    _ => {}
                }
            }
        });
        if !ready {
            return;
        }
        if from_next {
            if self.cfg.ready == Ready::Notify {
                self.promote();
            }
        } else if !g.ready {
            g.ready = true;
            g.tell_upstream("READY=1");
            log::event(
                Level::Info,
                "ready",
                format_args!("generation {n} (pid {gen_pid}) is ready"),
                &[("generation", Val::Int(n.into()))],
            );
        }
    }

    /// The starting generation is ready: it becomes current; the old one gets the stop signal and
    /// its own grace deadline.
    fn promote(&mut self) {
        let Some(g) = self.gens.as_mut() else { return };
        let Restart::Starting {
            n,
            pid,
            notify,
            began,
            ..
        } = std::mem::replace(&mut g.restart, Restart::Idle)
        else {
            return;
        };
        let now = Instant::now();
        let (old_n, old_pid) = (g.current, self.child);
        g.current = n;
        g.notify = notify;
        g.ready = true;
        self.child = pid;
        self.spawned = began;
        let sig = self.cfg.rewritten(libc::SIGTERM);
        if let Some(sig) = sig {
            let _ = crate::signals::send(-old_pid, sig);
        }
        g.restart = Restart::Retiring {
            n: old_n,
            pid: old_pid,
            deadline: now + self.cfg.grace_period,
            began: now,
            exited: false,
        };
        g.tell_upstream("READY=1");
        log::event(
            Level::Info,
            "promoted",
            format_args!(
                "generation {n} (pid {pid}) ready after {} ms and now serving; stopping generation {old_n} (pid {old_pid}) with {}, grace period {}",
                (now - began).as_millis(),
                sig.map_or("nothing (SIGTERM is rewritten to 0)".to_string(), |s| Name(
                    s
                )
                .to_string()),
                fmt_duration(self.cfg.grace_period)
            ),
            &[
                ("generation", Val::Int(n.into())),
                ("pid", Val::Int(pid.into())),
                ("retiring", Val::Int(old_pid.into())),
            ],
        );
    }

    /// The starting generation failed: kill its group; the current one keeps serving.
    fn abandon(&mut self, why: &str) {
        let Some(g) = self.gens.as_mut() else { return };
        let Restart::Starting { n, pid, .. } = std::mem::replace(&mut g.restart, Restart::Idle)
        else {
            return;
        };
        let _ = crate::signals::send(-pid, libc::SIGKILL);
        g.tell_upstream("READY=1");
        warn(
            "restart_abandoned",
            format_args!(
                "generation {n} (pid {pid}) abandoned: {why}; generation {} (pid {}) keeps serving",
                g.current, self.child
            ),
        );
    }

    /// The generation alive beside the current one, starting or retiring (at most two live at
    /// once): a stop signal during a restart stops it too.
    fn other_generation(&self) -> Option<i32> {
        match self.gens.as_ref().map(|g| &g.restart) {
            Some(Restart::Starting { pid, .. }) => Some(*pid),
            Some(Restart::Retiring {
                pid, exited: false, ..
            }) => Some(*pid),
            _ => None,
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
        let result = crate::signals::send(target, to);
        if let Some(other) = self.other_generation() {
            let _ = crate::signals::send(if self.cfg.single_child { other } else { -other }, to);
        }
        Delivery::Sent {
            sig,
            to,
            target,
            what,
            result,
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
        let (starting, retiring) = match self.gens.as_ref().map(|g| &g.restart) {
            Some(Restart::Starting { pid, .. }) => (*pid, 0),
            Some(Restart::Retiring { pid, .. }) => (0, *pid),
            _ => (0, 0),
        };
        let (mut starting_exit, mut retiring_exit) = (None, None);
        let left = reap::reap_all(|pid, exit| {
            if pid == child {
                main_exit = Some(exit);
            } else if pid == starting {
                starting_exit = Some(exit);
            } else if pid == retiring {
                retiring_exit = Some(exit);
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
        if let Some(exit) = starting_exit {
            self.abandon(&format!(
                "it exited with {} before it was ready",
                Status(exit)
            ));
        }
        if let Some(exit) = retiring_exit {
            self.on_retired_exit(exit);
        }
        if left == Children::Remain {
            self.retire_if_gone();
        }
        if let Some(exit) = main_exit {
            self.on_main_exit(exit, left);
        }
        if matches!(self.phase, Phase::Killing { .. }) && left == Children::Remain {
            self.kill_stragglers(false);
        }
        left
    }

    /// The replaced generation's main process exited.
    fn on_retired_exit(&mut self, exit: Exit) {
        let Some(Restart::Retiring {
            n,
            pid,
            began,
            exited,
            ..
        }) = self.gens.as_mut().map(|g| &mut g.restart)
        else {
            return;
        };
        *exited = true;
        log::event(
            Level::Info,
            "retired",
            format_args!(
                "generation {n} (pid {pid}) exited with {} after {} ms",
                Status(exit),
                began.elapsed().as_millis()
            ),
            &[
                ("generation", Val::Int((*n).into())),
                ("status", Val::Int(exit.status().into())),
            ],
        );
    }

    /// The restart is over once the replaced generation's main process and its whole process
    /// group are gone.
    fn retire_if_gone(&mut self) {
        let Some(g) = self.gens.as_mut() else { return };
        if let Restart::Retiring {
            pid, exited: true, ..
        } = g.restart
            && !procs::responsible_for(self.pid1)
                .iter()
                .any(|p| p.pgid == pid)
        {
            g.restart = Restart::Idle;
        }
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
        let remaining = procs::responsible_for(self.pid1);
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
        let stragglers = procs::responsible_for(self.pid1);
        if first {
            let mut names = String::new();
            for p in stragglers.iter().take(NAMED_STRAGGLERS) {
                if !names.is_empty() {
                    names.push_str(", ");
                }
                names.push_str(&format!("{} ({})", p.pid, p.name()));
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
            Exit::Signal { sig: s, .. } => write!(f, "signal {} (status {})", Name(s), 128 + s),
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
