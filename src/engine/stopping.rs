//! Carrying out the stop machine's actions (`stop`): the stop signal to the app, to leftovers,
//! SIGKILL at the deadline, and their log lines, written after all of them so that nothing but
//! the signals comes between a stop signal's arrival and its delivery.

use super::dispatcher::Dispatcher;
use crate::engine::stop::{self, Action, Because, Told};
use crate::engine::{MAX_ACTIONS, Machine, generations, reach, reload};
use crate::log::{self, Event};
use crate::os::clock::Mono;
use crate::os::procs::{self, Pinned, Proc};
use crate::os::signals::{self, Sender};
use nix::errno::Errno;

/// How long after the stop signal stopped processes among its receivers get SIGCONT.
const CONTINUE_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// The stop sequence's bookkeeping beside its machine, reset for each generation started in
/// place.
pub struct Book {
    /// Who has had the stop signal in this stop sequence.
    pub told: Told,
    /// When to SIGCONT the stopped processes among those just given the stop signal, and the
    /// main processes that were told alone (-c).
    pub continue_at: Option<Mono>,
    pub continue_told: Vec<i32>,
    /// What a stop signal's effects were, logged after the signal's own line.
    pub pending_logs: Option<Vec<(Action, Done)>>,
    /// What the watch did about a change when a received stop signal began the stop sequence:
    /// said after that signal's line.
    pub pending_reload: Option<reload::Action>,
    /// Why the processes left could not be listed at the last look, if so.
    pub unseen: Option<Errno>,
    /// The buffer stop actions are noted in, kept with its capacity so that the dispatcher
    /// allocates nothing between reading a stop signal and sending it on (callgrind, SIGTERM
    /// forwarding: its mallocs there were most of the ~90 code lines the rewrite had added to
    /// that path; on a busy machine each cold line costs up to ~0.1 µs).
    pub spare_logs: Vec<(Action, Done)>,
}

impl Book {
    pub fn new() -> Book {
        Book {
            told: Told::default(),
            continue_at: None,
            continue_told: Vec::with_capacity(2),
            pending_logs: None,
            pending_reload: None,
            unseen: None,
            spare_logs: Vec::with_capacity(4),
        }
    }

    /// A new generation started in place: a new stop sequence, nobody told.
    pub fn restart(&mut self) {
        self.told = Told::default();
        self.continue_at = None;
        self.continue_told.clear();
    }
}

/// What carrying out a stop action did, for its log line.
pub enum Done {
    Nothing,
    Sent {
        to: Option<i32>,
        result: Result<(), Errno>,
    },
    /// Processes left, and how many of them were sent the signal now (the others had it).
    Counted {
        left: usize,
        sent: usize,
    },
    Killed(Vec<Proc>),
}

impl Dispatcher<'_> {
    /// Feeds the stop machine and carries out its decisions.
    pub(super) fn on_stop(&mut self, event: stop::Event, now: Mono) {
        let was_exiting = self.stop.exiting();
        let actions = self.stop.step(event, now, &self.budget);
        let next = self.stop;
        // Effects first, in order, with nothing but them before the last one (the stop signal
        // follows `Began`)...
        let mut done = [const { Done::Nothing }; MAX_ACTIONS];
        for (&action, done) in actions.iter().zip(&mut done) {
            *done = self.carry_out(action, now);
        }
        // ...noted in a buffer kept from call to call (see `Book::spare_logs`)...
        let mut logs = std::mem::take(&mut self.book.spare_logs);
        logs.clear();
        logs.extend(actions.into_iter().zip(done));
        if !was_exiting && next.exiting() {
            // The watch first: nothing the restart machine does now may still act on a change.
            // Straight to the end too (a restart in place that cannot start again, a stop signal
            // between its generations): a change waiting for it is said to be dropped.
            // A received stop signal's own line comes first: a change it drops is said after.
            match self
                .reload
                .step(reload::Event::Stopping, now, &self.reload_params)
                .first()
            {
                Some(&a) if matches!(event, stop::Event::StopSignal(_)) => {
                    self.book.pending_reload = Some(a)
                }
                Some(&a) => self.carry_out_reload(a),
                None => {}
            }
            if next != stop::State::Done {
                self.on_gens(generations::Event::Stopping, now);
            }
        }
        // ...then what they were, on a possibly slow stderr (after the stop signal's own line
        // when a received signal caused them).
        if matches!(event, stop::Event::StopSignal(_)) {
            self.book.pending_logs = Some(logs);
        } else {
            self.report_all(logs);
        }
        if self.book.unseen.is_some()
            && matches!(self.stop, stop::State::Killing { .. })
            && self.main_exit.is_some()
        {
            // The deadline's SIGKILL went out to what could be reached; nothing more can be seen.
            // The main child, sigward's own, is waited for without /proc: its status is the one
            // sigward exits with (until it is reaped the resweep goes on; its exit resweeps).
            self.book.unseen = None;
            self.on_stop(stop::Event::TreeUnseen, now);
        }
    }

    fn carry_out(&mut self, action: Action, now: Mono) -> Done {
        match action {
            Action::StopApp { sig, because } => self.stop_app(sig, because, now),
            Action::ForwardAgain { sig } => {
                let to = self.cfg.rewritten(sig);
                let result = match to {
                    Some(to) => self.deliver(to),
                    None => Ok(()),
                };
                Done::Sent { to, result }
            }
            Action::StopLeftovers { sig, .. } => {
                self.book.unseen = None;
                self.summary.leftovers.get_or_insert(now);
                self.stop_leftovers(sig)
            }
            Action::Kill { first } => {
                self.book.unseen = None;
                let killed = self.kill_everything().unwrap_or_else(|err| {
                    self.book.unseen = Some(err);
                    Vec::new()
                });
                // A deadline that found nothing left (the app died of the stop signal, not yet
                // reaped) killed nobody: the termination message names no stragglers then.
                if first && !killed.is_empty() {
                    let names = log::Stragglers(&killed).to_string();
                    self.summary.killed = Some((now, self.cfg.grace_period, killed.len(), names));
                }
                Done::Killed(killed)
            }
            // The first stop signal, also when sigward was stopping already (the main child
            // exited, a restart in place is draining or being killed).
            Action::Began { sig, .. }
            | Action::AlreadyStopping { sig }
            | Action::Ignored { sig } => {
                self.summary.stop.get_or_insert((now, sig));
                Done::Nothing
            }
            Action::RestartBegan { .. } => {
                self.summary.restart = Some(now);
                Done::Nothing
            }
            Action::RestartIgnored(_) | Action::Exit => Done::Nothing,
        }
    }

    /// The stop signal to each generation that has not had it.
    fn stop_app(&mut self, sig: i32, because: Because, now: Mono) -> Done {
        let to = self.cfg.rewritten(sig);
        if because == Because::DelayOver {
            self.summary.delay_over = Some(now);
        }
        self.summary.forwarded.get_or_insert((now, to));
        let Some(to) = to else {
            return Done::Sent { to, result: Ok(()) };
        };
        if self.cfg.single_child {
            // -c: each generation's main process alone; pinned by its start time.
            for (g, _) in self.gens.stop_targets() {
                if let Some(p) = procs::stat_of(g.pid) {
                    self.book.told.process(p.pid, p.start_time);
                }
            }
        }
        // The signals first, with no allocation or bookkeeping before them (the forwarding
        // latency is counted in cold cache lines); nothing happens between them and the
        // bookkeeping below.
        let mut result = Ok(());
        for (g, reaped) in self.gens.stop_targets() {
            let r = self.signal_generation(g, reaped, to);
            if g.pid == self.gens.current.pid {
                result = r;
            }
        }
        // Step aside: what sigward writes about it waits until it next wakes.
        signals::yield_cpu();
        log::hold();
        self.book.continue_told.clear();
        for (g, _) in self.gens.stop_targets() {
            if !self.cfg.single_child {
                // With -c only the child itself was told; its group hears later.
                self.book.told.group(g.pid);
            }
            self.book.continue_told.push(g.pid);
        }
        // Stopped processes among them get SIGCONT shortly (a named timer of the dispatcher's):
        // an app that just exits is gone before, and its stop then costs no /proc walk.
        self.book.continue_at = Some(Mono::now().after(CONTINUE_AFTER));
        Done::Sent {
            to: Some(to),
            result,
        }
    }

    /// The continue timer is due: SIGCONT to the stopped among those just told.
    pub(super) fn continue_told_now(&mut self) {
        self.book.continue_at = None;
        let children = std::mem::take(&mut self.book.continue_told);
        self.continue_stopped(|p| self.book.told.has_group(p.pgid) || children.contains(&p.pid));
    }

    /// The main child is gone: each leftover not told yet gets the stop signal (`reach::to_tell`).
    fn stop_leftovers(&mut self, sig: i32) -> Done {
        let Some(to) = self.cfg.rewritten(sig) else {
            let left = procs::responsible_for(self.reach()).len();
            return Done::Counted { left, sent: 0 };
        };
        let remaining = match procs::try_responsible_for(self.reach()) {
            Ok(remaining) => remaining,
            Err(err) => {
                // Unseen is not empty: what is left of the app's groups gets it anyway.
                self.book.unseen = Some(err);
                self.signal_groups_unseen(to);
                return Done::Counted { left: 0, sent: 0 };
            }
        };
        let tell = reach::to_tell(&remaining, &mut self.book.told);
        for &(p, stopped) in &tell {
            if let Some(pin) = Pinned::open(p) {
                let _ = pin.signal(to);
                if to == libc::SIGKILL {
                    self.deaths.sigkilled([p.pid]);
                }
                if stopped {
                    let _ = pin.signal(libc::SIGCONT);
                }
            }
        }
        Done::Counted {
            left: remaining.len(),
            sent: tell.len(),
        }
    }

    /// What a received stop signal did, said after its effects (signals before log lines).
    pub(super) fn report_stop_signal(&mut self, before: stop::State, sig: i32, from: Sender) {
        let event = match before {
            _ if before.restarting() => Event::RestartBecameStop {
                sig,
                from,
                generation: self.gens.current.n,
                told: self.cfg.rewritten(self.cfg.stop_signal).is_some(),
            },
            stop::State::Running => Event::StopSignal {
                sig,
                from,
                grace: self.cfg.grace_period,
            },
            stop::State::Delaying { .. } => Event::DelayCut { sig, from },
            stop::State::Draining { asked: false, .. } => Event::StopSignalAfterExit { sig, from },
            stop::State::Draining { asked: true, .. } => Event::StopSignalAgain { sig, from },
            stop::State::Killing { .. } => Event::IgnoredWhileKilling { sig },
            stop::State::Respawning { .. } | stop::State::Done => return,
        };
        log::emit(&event);
        if let Some(logs) = self.book.pending_logs.take() {
            self.report_all(logs);
        }
    }

    /// Logs what stop actions did, and keeps the emptied buffer for the next stop event.
    fn report_all(&mut self, mut logs: Vec<(Action, Done)>) {
        for (action, done) in logs.drain(..) {
            self.report(action, done);
        }
        self.book.spare_logs = logs;
    }

    /// The processes left could not be listed: that is what the leftovers' or the deadline's
    /// line says. Returns whether it was said.
    fn report_unseen(&self, action: Action) -> bool {
        let unseen = match action {
            Action::StopLeftovers { sig, .. } => {
                Some((self.cfg.rewritten(sig).unwrap_or(sig), false))
            }
            Action::Kill { first: true } => Some((libc::SIGKILL, true)),
            _ => None,
        };
        let (Some(err), Some((sig, exiting))) = (self.book.unseen, unseen) else {
            return false;
        };
        let restart = self.stop.restarting();
        log::emit(&Event::TreeUnseen {
            err,
            sig,
            exiting,
            restart,
        });
        true
    }

    fn report(&self, action: Action, done: Done) {
        if self.report_unseen(action) {
            return;
        }
        match (action, done) {
            (
                Action::Began {
                    sig,
                    hold: Some(delay),
                    ..
                },
                _,
            ) => log::emit(&Event::PreStopDelay { sig, delay }),
            (Action::StopApp { sig, because }, Done::Sent { to, result }) => {
                if because == Because::DelayOver {
                    log::emit(&Event::DelayOver);
                }
                self.report_delivery(sig, to, result, true);
            }
            (Action::ForwardAgain { sig }, Done::Sent { to, result }) => {
                self.report_delivery(sig, to, result, true)
            }
            (Action::StopLeftovers { sig, wait }, Done::Counted { left, sent }) => {
                log::emit(&match self.cfg.rewritten(sig) {
                    None => Event::LeftoversUnsignalled { count: left, sig },
                    Some(to) => Event::Leftovers {
                        count: left,
                        sent,
                        sig: to,
                        wait,
                    },
                })
            }
            (Action::RestartBegan { sig, grace }, _) => {
                let current = self.gens.current;
                log::emit(&Event::RestartInPlace {
                    by: self.restart_trigger,
                    generation: current.n,
                    pid: current.pid,
                    stop: self.cfg.rewritten(sig),
                    grace,
                })
            }
            (Action::RestartIgnored(busy), _) => log::emit(&Event::RestartIgnored {
                by: self.restart_trigger,
                busy,
            }),
            (Action::Kill { first: true }, Done::Killed(stragglers)) => {
                log::emit(&Event::StragglersKilled {
                    grace: self.cfg.grace_period,
                    stragglers: &stragglers,
                })
            }
            _ => {}
        }
    }
}
