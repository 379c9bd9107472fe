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

use crate::cli::{Config, Ready};
use crate::handover::{Listeners, Notify, Upstream};
use crate::log::{self, Abandon, Busy, Event, ReadyWait};
use crate::reap::{self, Children, Exit};
use crate::signals::{Received, SignalFd};
use crate::spawn::{self, Detach, Handover, Inherited, SpawnError};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// While killing, look again this often for stragglers that forked just before SIGKILL landed.
const RESWEEP: Duration = Duration::from_secs(1);

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
                    log::emit(&Event::SignalfdFailed { err: e });
                    std::thread::sleep(Duration::from_millis(100));
                    self.reap_pending = true;
                }
            }
        }
        let exit = self.main_exit.unwrap_or(Exit::Code(125));
        log::emit(&Event::Exiting {
            status: exit.status(),
        });
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
                log::emit(&Event::PollFailed { err: e });
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
            log::emit(&Event::IgnoredOwnSignal { sig });
        } else if self.cfg.stop_signals.contains(sig) {
            self.on_stop_signal(sig, r.pid);
        } else if restart {
            self.on_restart_signal(sig, r.pid);
        } else {
            self.forward(sig);
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
                log::emit(&Event::StopSignal { sig, from, grace });
                if let Some(sent) = sent {
                    self.report(sent, true);
                } else {
                    self.phase = Phase::Delaying {
                        until: now + delay,
                        held: sig,
                    };
                    log::emit(&Event::PreStopDelay { sig, delay });
                }
            }
            Phase::Delaying { held, .. } => {
                let sent = self.begin_drain(held);
                log::emit(&Event::DelayCut { sig, from });
                self.report(sent, true);
            }
            Phase::Draining => {
                let sent = self.deliver(sig);
                log::emit(&Event::StopSignalAgain { sig, from });
                self.report(sent, true);
            }
            Phase::Killing { .. } => {
                log::emit(&Event::IgnoredWhileKilling { sig });
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
                log::emit(&Event::DelayOver);
                self.report(sent, true);
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
                Some(Busy::Stopping)
            }
            (Restart::Starting { n, .. }, _) => Some(Busy::Starting(*n)),
            (Restart::Retiring { n, .. }, _) => Some(Busy::Draining(*n)),
            (Restart::Idle, _) => None,
        };
        if let Some(busy) = busy {
            return log::emit(&Event::RestartIgnored { sig, from, busy });
        }
        let n = g.current + 1;
        let notify = match Notify::new() {
            Ok(notify) => notify,
            Err(e) => {
                let err = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                return log::emit(&Event::RestartNoNotifySocket { generation: n, err });
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
                let wait = match self.cfg.ready {
                    Ready::Notify => ReadyWait::Notify(self.cfg.ready_timeout),
                    Ready::After(d) => ReadyWait::After(d),
                };
                log::emit(&Event::Restarting {
                    sig,
                    from,
                    generation: n,
                    pid,
                    current: g.current,
                    current_pid: child,
                    wait,
                });
            }
            Err(SpawnError::Exec(err)) => log::emit(&Event::RestartCannotRun {
                generation: n,
                err,
                current: g.current,
            }),
            Err(SpawnError::Start(what, err)) => log::emit(&Event::RestartCannotStart {
                generation: n,
                what,
                err,
                current: g.current,
            }),
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
                    self.abandon(Abandon::NotReadyAfter(self.cfg.ready_timeout));
                }
            }
            Restart::Retiring { n, pid, .. } => {
                let (n, pid) = (*n, *pid);
                g.restart = Restart::Idle;
                let _ = crate::signals::send(-pid, libc::SIGKILL);
                let left = reap::responsible_for(self.pid1)
                    .into_iter()
                    .filter(|p| p.pgid == pid)
                    .count();
                log::emit(&Event::RetiredKilled {
                    generation: n,
                    pid,
                    grace: self.cfg.grace_period,
                    count: left,
                });
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
            if sender != gen_pid && reap::pgid_of(sender) != Some(gen_pid) {
                return log::emit(&Event::NotifyRefused {
                    sender,
                    generation: n,
                });
            }
            for line in text.lines() {
                match line.split_once('=') {
                    Some(("READY", "1")) => ready = true,
                    Some(("STATUS", status)) => log::emit(&Event::AppStatus {
                        generation: n,
                        status: status.as_bytes(),
                    }),
                    Some(("STOPPING", "1")) => log::emit(&Event::AppStopping { generation: n }),
                    Some(("RELOADING", "1")) => log::emit(&Event::AppReloading { generation: n }),
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
            log::emit(&Event::Ready {
                generation: n,
                pid: gen_pid,
            });
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
        log::emit(&Event::Promoted {
            generation: n,
            pid,
            after: now.saturating_duration_since(began),
            retiring: old_n,
            retiring_pid: old_pid,
            sig,
            grace: self.cfg.grace_period,
        });
    }

    /// The starting generation failed: kill its group; the current one keeps serving.
    fn abandon(&mut self, why: Abandon) {
        let Some(g) = self.gens.as_mut() else { return };
        let Restart::Starting { n, pid, .. } = std::mem::replace(&mut g.restart, Restart::Idle)
        else {
            return;
        };
        let _ = crate::signals::send(-pid, libc::SIGKILL);
        g.tell_upstream("READY=1");
        log::emit(&Event::Abandoned {
            generation: n,
            pid,
            why,
            current: g.current,
            current_pid: self.child,
        });
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
    fn forward(&mut self, sig: i32) {
        let sent = self.deliver(sig);
        self.report(sent, false);
    }

    /// The forwarding syscall alone, so the stop path can signal the app before it writes a
    /// word to a possibly slow stderr.
    fn deliver(&self, sig: i32) -> Delivery {
        let Some(to) = self.cfg.rewritten(sig) else {
            return Delivery::Dropped {
                sig,
                rewritten: true,
            };
        };
        let target = if !self.cfg.single_child {
            -self.child
        } else if self.main_exit.is_none() {
            self.child
        } else {
            return Delivery::Dropped {
                sig,
                rewritten: false,
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
            result,
        }
    }

    /// Logs what became of a forwarded signal; `stopping`: at info level, as part of the stop
    /// sequence (else debug).
    fn report(&self, delivery: Delivery, stopping: bool) {
        log::emit(&match delivery {
            Delivery::Dropped {
                sig,
                rewritten: true,
            } => Event::DroppedRewritten { sig },
            Delivery::Dropped { sig, .. } => Event::DroppedChildGone { sig },
            Delivery::Sent {
                sig,
                to,
                target,
                result: Ok(()),
            } => Event::Forwarded {
                received: sig,
                sent: to,
                target,
                stopping,
            },
            Delivery::Sent {
                to,
                target,
                result: Err(Errno::ESRCH),
                ..
            } => Event::DroppedNobodyLeft { sig: to, target },
            Delivery::Sent {
                to,
                target,
                result: Err(err),
                ..
            } => Event::ForwardFailed {
                sig: to,
                target,
                err,
            },
        });
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
                log::emit(&Event::ReapedOrphan { pid, exit });
            } else {
                log::emit(&Event::Reaped { pid, exit });
            }
        });
        if let Some(exit) = starting_exit {
            self.abandon(Abandon::ExitedBeforeReady(exit));
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
        log::emit(&Event::Retired {
            generation: *n,
            pid: *pid,
            exit,
            after: began.elapsed(),
        });
    }

    /// The restart is over once the replaced generation's main process and its whole process
    /// group are gone.
    fn retire_if_gone(&mut self) {
        let Some(g) = self.gens.as_mut() else { return };
        if let Restart::Retiring {
            pid, exited: true, ..
        } = g.restart
            && !reap::responsible_for(self.pid1)
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
        let since = now.saturating_duration_since(self.stop_began.unwrap_or(self.spawned));
        log::emit(&Event::ChildExited {
            command: self.name.as_bytes(),
            pid: self.child,
            exit,
            after: since,
        });
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
            log::emit(&Event::LeftoversUnsignalled {
                count: remaining.len(),
                sig,
            });
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
        log::emit(&Event::Leftovers {
            count: remaining.len(),
            sig: to,
            wait,
        });
    }

    /// SIGKILLs everything sigward answers for. The first time, names the stragglers.
    fn kill_stragglers(&mut self, first: bool) {
        let stragglers = reap::responsible_for(self.pid1);
        let _ = crate::signals::send(-self.child, libc::SIGKILL);
        for p in &stragglers {
            let _ = crate::signals::send(p.pid, libc::SIGKILL);
        }
        if self.pid1 {
            // Also reaches daemons that left the group with setsid. Safe: we are PID 1 of our
            // own namespace, so -1 means exactly our namespace.
            let _ = crate::signals::send(-1, libc::SIGKILL);
        }
        // Killed first, told after: a slow log never delays the deadline.
        if first {
            log::emit(&Event::StragglersKilled {
                grace: self.cfg.grace_period,
                stragglers: &stragglers,
            });
        }
        self.phase = Phase::Killing {
            resweep: Instant::now() + RESWEEP,
        };
    }
}

/// What became of one forwarded signal: report it, or the log misses a stop-sequence event.
#[must_use]
enum Delivery {
    Dropped {
        sig: i32,
        /// Rewritten to 0 (else: the only child has exited).
        rewritten: bool,
    },
    Sent {
        sig: i32,
        to: i32,
        /// As kill(2) takes it: -pgid for the group.
        target: i32,
        result: Result<(), Errno>,
    },
}
