//! The dispatcher: event in, actions out, actions carried out, lines logged. It takes the
//! reactor's events, feeds the pure machines (the stop sequence in `stop`, the restarts in
//! `generations`, the `--watch` debounce in `reload`) and the pure rules (`jobs`, `reach`,
//! `deaths`), and carries out what they decide: signals and kills first, log lines after, so a
//! slow log reader never delays a deadline. Split by what is carried out: `stopping` (the stop
//! machine's actions), `restarts` (generations and `--watch`), `notified` (notify sockets),
//! `effects` (signals, kills, the terminal, starting generations).
//!
//! The whole stop sequence, as the dispatcher runs it:
//! 1. a stop signal: the stop machine starts the grace period (and maybe the pre-stop delay);
//!    the restart machine learns that sigward is stopping (no restart or promotion from now on)
//!    and STOPPING=1 goes upstream;
//! 2. the stop signal goes to every generation's process group that has not had it (`StopApp`),
//!    then SIGCONT to any stopped member;
//! 3. the main child exits while others remain: each of them not yet told gets the stop signal;
//! 4. the deadline: SIGKILL to everything sigward answers for, stragglers named;
//! 5. nothing left: exit with the main child's status.
//!
//! A restart in place (the restart signal without sockets to hand over) is steps 2 to 4 for the
//! current generation, with the stop machine's ending "start again" instead of "exit": once
//! nothing is left, what is already pending is handled first (a stop signal wins), then the same
//! command starts as the next generation. Its reach is sigward's own descendants only, even as
//! PID 1 (`reach::whole_namespace`).

use crate::config::Config;
use crate::diagnose::{Limit, OomCounter};
use crate::engine::deaths::{self, Deaths};
use crate::engine::generations::{self, Generations};
use crate::engine::jobs::{self, OnSignal};
use crate::engine::reactor::{self, Reactor};
use crate::engine::reload;
use crate::engine::stop;
use crate::log::{self, Event};
use crate::os::clock::Mono;
use crate::os::reap::{Children, Exit};
use crate::os::signals::{Received, SigMask, SignalFd};
use crate::os::spawn::Detach;
use crate::os::terminal::{self, Os};
use crate::termination::{Dest, Summary};
use crate::watch::Watcher;
use std::os::fd::AsFd;

pub use super::effects::Launch;
pub use super::notified::Held;
use super::stopping::Book;

pub struct Dispatcher<'a> {
    pub(super) cfg: &'a Config,
    reactor: Reactor,
    pub(super) stop: stop::State,
    pub(super) budget: stop::Budget,
    pub(super) gens: Generations,
    pub(super) params: generations::Params,
    /// The stop sequence's bookkeeping beside its machine.
    pub(super) book: Book,
    pub(super) held: Option<Held>,
    pub(super) launch: Launch,
    pub(super) name: String,
    pub(super) mode: jobs::Mode,
    pub(super) me: i32,
    pub(super) main_exit: Option<Exit>,
    /// The main child was reaped in the current reaping pass.
    main_just_exited: bool,
    /// What asked for the restart being handled, for its log lines.
    pub(super) restart_trigger: log::Trigger,
    /// `--watch`: the inotify side and the debounce machine.
    pub(super) watch: Option<Watcher<'a>>,
    pub(super) reload: reload::State,
    pub(super) reload_params: reload::Params,
    /// stderr is a terminal: a clean exit is not worth a line there.
    interactive: bool,
    /// The container's OOM counter, read at start and when a SIGKILL needs explaining.
    oom: OomCounter,
    /// Whom sigward SIGKILLed, and the deaths of this reaping pass worth explaining.
    pub(super) deaths: Deaths,
    /// What the termination message tells.
    pub(super) summary: Summary,
}

/// Signals whose senders the log names (read from /proc as they arrive), only when their line
/// is written at `level`: the stop signals (info lines), the restart signal (its lines are info,
/// its refusal a warning), and SIGCONT (job control, not as PID 1; a debug line). A line that is
/// not written costs no /proc read on the stop signal's path.
fn named_senders(stops: SigMask, restart: Option<i32>, pid1: bool, level: log::Level) -> SigMask {
    use log::Level::{Debug, Info, Warn};
    let mut named = SigMask::EMPTY;
    if level >= Info {
        named = stops;
    }
    if let Some(sig) = restart.filter(|_| level >= Warn) {
        named = named.with(sig);
    }
    if !pid1 && level >= Debug {
        named = named.with(libc::SIGCONT);
    }
    named
}

/// What sigward waits on besides its children: the signalfd, and the inotify fd of `--watch`.
pub struct Sources<'a> {
    pub signals: SignalFd,
    pub watch: Option<Watcher<'a>>,
}

impl<'a> Dispatcher<'a> {
    pub fn new(
        cfg: &'a Config,
        sources: Sources<'a>,
        child: i32,
        pid1: bool,
        launch: Launch,
        held: Option<Held>,
        oom: OomCounter,
    ) -> Self {
        let Sources { signals, watch } = sources;
        let name = cfg
            .command
            .first()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mode = jobs::Mode {
            pid1,
            terminal: launch.detach == Detach::TerminalForeground,
        };
        Dispatcher {
            cfg,
            // Stops of children are reported for job control only: as PID 1 nothing changes.
            reactor: Reactor::new(
                signals,
                !pid1,
                named_senders(cfg.stop_signals, cfg.restart_signal, pid1, cfg.log_level),
            ),
            stop: stop::State::Running,
            budget: stop::Budget {
                grace: cfg.grace_period,
                pre_stop_delay: cfg.pre_stop_delay,
                stop_signal: cfg.stop_signal,
            },
            gens: Generations::new(child, Mono::now()),
            params: generations::Params {
                ready: cfg.ready,
                ready_timeout: cfg.ready_timeout,
                grace: cfg.grace_period,
                notify: held.is_some(),
            },
            book: Book::new(),
            held,
            launch,
            mode,
            me: std::process::id() as i32,
            main_exit: None,
            main_just_exited: false,
            restart_trigger: log::Trigger::ConfigChange,
            watch,
            reload: reload::State::Idle,
            reload_params: reload::Params::new(cfg.watch_debounce),
            interactive: nix::unistd::isatty(std::io::stderr()).unwrap_or(false),
            oom,
            deaths: Deaths::default(),
            summary: Summary {
                name: name.clone(),
                pid: child,
                ..Summary::default()
            },
            name,
        }
    }

    /// Runs until every process is gone and returns the main child's exit, and the summary for
    /// the termination message.
    pub fn run(mut self) -> (Exit, Summary) {
        let mut events = Vec::with_capacity(reactor::REAP_BATCH + 8);
        while self.stop != stop::State::Done {
            events.clear();
            if let stop::State::Respawning { began } = self.stop {
                // The old generation is gone: what is already pending first (a stop signal that
                // came meanwhile means no new generation), then the next one starts.
                self.reactor.pending(&mut events);
                log::release();
                self.dispatch_all(&mut events);
                if matches!(self.stop, stop::State::Respawning { .. }) {
                    self.start_in_place(began);
                }
                continue;
            }
            let now = Mono::now();
            if self.fire_due_timer(now) {
                continue;
            }
            let deadline = self.next_deadline(now);
            let notify = match &self.held {
                Some(h) => [
                    h.notify[0].as_ref().map(|n| n.as_fd()),
                    h.notify[1].as_ref().map(|n| n.as_fd()),
                ],
                None => [None, None],
            };
            let watch = self.watch.as_ref().map(|w| w.as_fd());
            self.reactor.wait(notify, watch, deadline, &mut events);
            // Nothing came (a read that found the signalfd empty, without sleeping): sigward has
            // not slept yet, so held lines wait for the next wait (1 ms at most).
            if !events.is_empty() {
                log::release();
            }
            self.dispatch_all(&mut events);
        }
        log::release();
        let exit = self.main_exit.unwrap_or(Exit::Code(125));
        log::emit(&Event::Exiting {
            status: exit.status(),
        });
        (exit, self.summary)
    }

    /// Fires one due timer, each by its name; returns whether one was.
    fn fire_due_timer(&mut self, now: Mono) -> bool {
        if let Some((t, _)) = self.stop.timer().filter(|(_, at)| now >= *at) {
            self.on_stop(stop::Event::Timer(t), now);
        } else if self.book.continue_at.is_some_and(|at| now >= at) {
            self.continue_told_now();
        } else if let Some((t, _)) = self.gens.timer(&self.params).filter(|(_, at)| now >= *at) {
            self.on_gens(generations::Event::Timer(t), now);
        } else if self
            .reload
            .timer(&self.reload_params)
            .is_some_and(|at| now >= at)
        {
            let restarting = self.restart_under_way();
            self.on_reload(reload::Event::Timer { restarting }, now);
        } else {
            return false;
        }
        true
    }

    /// The earliest pending timer, and the log's hold on its lines.
    fn next_deadline(&self, now: Mono) -> Option<Mono> {
        [
            self.stop.timer().map(|(_, at)| at),
            self.gens.timer(&self.params).map(|(_, at)| at),
            self.book.continue_at,
            self.reload.timer(&self.reload_params),
            log::holding().then(|| now.after(log::HOLD_AT_MOST)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn dispatch_all(&mut self, events: &mut Vec<reactor::Event>) {
        for event in events.drain(..) {
            match event {
                reactor::Event::Signal(r) => self.on_signal(r),
                reactor::Event::Exited(pid, exit) => self.on_exited(pid, exit),
                reactor::Event::Stopped(pid, sig) => self.on_stopped(pid, sig),
                reactor::Event::Reaped(left) => self.on_reaped(left),
                reactor::Event::Notify(slot) => self.on_notify(slot),
                reactor::Event::Watch => self.on_watch(),
                reactor::Event::Timeout => {}
            }
        }
    }

    fn on_signal(&mut self, r: Received) {
        let sig = r.signo;
        if r.from.pid == self.me {
            // Raised by sigward's own actions (SIGPIPE from a closed stderr): not for the app.
            return log::emit(&Event::IgnoredOwnSignal { sig });
        }
        if self.cfg.stop_signals.contains(sig) {
            let before = self.stop;
            self.on_stop(stop::Event::StopSignal(sig), Mono::now());
            self.report_stop_signal(before, sig, r.from);
            if let Some(action) = self.book.pending_reload.take() {
                self.carry_out_reload(action);
            }
            return;
        }
        if self.cfg.restart_signal == Some(sig) {
            return self.request_restart(log::Trigger::Signal { sig, from: r.from });
        }
        let unchanged = self.cfg.rewritten(sig) == Some(sig);
        match jobs::on_signal(sig, self.mode, unchanged, self.stop.stopping(), &Os) {
            OnSignal::Suspend => {
                let result = self.deliver(libc::SIGSTOP);
                self.report_delivery(sig, Some(libc::SIGSTOP), result, false);
                self.suspend(sig, false);
            }
            OnSignal::Continue => {
                self.foreground_to_app(r.from);
                self.forward(sig);
            }
            OnSignal::Forward => self.forward(sig),
        }
    }

    fn on_exited(&mut self, pid: i32, exit: Exit) {
        let current = pid == self.gens.current.pid;
        let other = self.gens.other().is_some_and(|g| g.pid == pid);
        let killing = matches!(self.stop, stop::State::Killing { .. } | stop::State::Done);
        self.deaths.reaped(pid, exit, current || other, killing);
        if current && self.main_exit.is_none() {
            self.main_exited(pid, exit);
        } else if other {
            // A starting or retiring generation: the restart machine's business.
        } else if self.cfg.warn_on_reap {
            log::emit(&Event::ReapedOrphan { pid, exit });
        } else {
            log::emit(&Event::Reaped { pid, exit });
        }
        if current || other {
            self.on_gens(generations::Event::Exited { pid, exit }, Mono::now());
        }
    }

    /// The current generation's main process exited: the exit sigward will end with.
    fn main_exited(&mut self, pid: i32, exit: Exit) {
        self.main_exit = Some(exit);
        self.main_just_exited = true;
        if jobs::take_back_foreground(self.mode, pid, &Os) {
            // Take the terminal's foreground back, as a shell does when a job ends.
            let _ = terminal::set_foreground(nix::unistd::getpgrp().as_raw());
        }
        let now = Mono::now();
        self.summary.main_exited(pid, exit, now);
        let after = now.since(self.stop.began().unwrap_or(self.gens.current.began));
        log::emit(&Event::ChildExited {
            command: self.name.as_bytes(),
            pid,
            exit,
            after,
            // In a terminal (`docker run -it`, a shell), a clean run ends without a word.
            quiet: self.interactive && exit == Exit::Code(0) && !self.stop.stopping(),
        });
    }

    /// A reaping pass is over: now the main child's exit and "nothing left" can be judged.
    fn on_reaped(&mut self, left: Children) {
        let now = Mono::now();
        if std::mem::take(&mut self.main_just_exited) {
            let others = left == Children::Remain;
            self.on_stop(stop::Event::MainExited { others }, now);
        }
        // (Something exited while killing and others remain: they may have forked just before
        // SIGKILL landed; the stop machine's resweep timer looks again.)
        self.retired_group_gone(now);
        if left == Children::None {
            self.on_stop(stop::Event::AllGone, now);
        }
        if !self.deaths.is_empty() {
            self.explain_deaths();
        }
    }

    /// Says why the processes of this reaping pass died of a SIGKILL sigward did not send (the
    /// OOM counter is read now, once for all of them) or with a core dump. Apart from the start,
    /// the only cgroup reads sigward makes.
    fn explain_deaths(&mut self) {
        let (pass, kills) = self.deaths.take();
        let rise = if kills > 0 {
            self.oom.oom_kills_among(kills)
        } else {
            None
        };
        let limit = match rise {
            Some(r) if r > 0 => self.oom.limit(),
            _ => Limit::Unknown,
        };
        let summarize = self.cfg.termination_log != Dest::Off;
        for d in pass {
            let event = Event::Died {
                name: d.named.then_some(self.name.as_bytes()),
                pid: d.pid,
                cause: deaths::cause(&d, kills, rise, limit),
            };
            log::emit(&event);
            if summarize {
                self.summary.died(log::sentence(&event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Level;

    /// A sender's name is read from /proc only for a line that will be written.
    #[test]
    fn senders_are_named_only_for_lines_the_log_level_writes() {
        let (term, hup, cont) = (libc::SIGTERM, libc::SIGHUP, libc::SIGCONT);
        let stops = SigMask::of(&[term]);
        let named = |pid1, level| named_senders(stops, Some(hup), pid1, level);
        let has = |m: SigMask| [term, hup, cont].map(|s| m.contains(s));
        assert_eq!(has(named(false, Level::Debug)), [true, true, true]);
        assert_eq!(has(named(true, Level::Debug)), [true, true, false]);
        assert_eq!(
            has(named(false, Level::Info)),
            [true, true, false],
            "-v's continued line is debug"
        );
        assert_eq!(
            has(named(false, Level::Warn)),
            [false, true, false],
            "-q: no stop signal line"
        );
        assert_eq!(
            has(named(false, Level::Error)),
            [false, false, false],
            "-qq"
        );
        assert_eq!(
            has(named_senders(stops, None, true, Level::Info)),
            [true, false, false]
        );
    }
}
