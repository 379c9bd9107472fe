//! Carrying out the stop machine's actions (`stop`): the stop signal to the app, to leftovers,
//! SIGKILL at the deadline, and their log lines, written after all of them so that nothing but
//! the signals comes between a stop signal's arrival and its delivery.

use super::dispatcher::Dispatcher;
use crate::engine::stop::{self, Action, Because};
use crate::engine::{MAX_ACTIONS, Machine, generations, reach, reload};
use crate::log::{self, Event};
use crate::os::clock::Mono;
use crate::os::procs::{self, Pinned, Proc};
use crate::os::signals;
use nix::errno::Errno;

/// How long after the stop signal stopped processes among its receivers get SIGCONT.
const CONTINUE_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

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
        // ...noted in a buffer kept from call to call (see `spare_logs`)...
        let mut logs = std::mem::take(&mut self.spare_logs);
        logs.clear();
        logs.extend(actions.into_iter().zip(done));
        if !was_exiting && next.exiting() {
            // The watch first: nothing the restart machine does now may still act on a change.
            // Straight to the end too (a restart in place that cannot start again, a stop signal
            // between its generations): a change waiting for it is said to be dropped.
            self.on_reload(reload::Event::Stopping, now);
            if next != stop::State::Done {
                self.on_gens(generations::Event::Stopping, now);
            }
        }
        // ...then what they were, on a possibly slow stderr (after the stop signal's own line
        // when a received signal caused them).
        if matches!(event, stop::Event::StopSignal(_)) {
            self.pending_logs = Some(logs);
        } else {
            self.report_all(logs);
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
                self.summary.leftovers.get_or_insert(now);
                self.stop_leftovers(sig)
            }
            Action::Kill { first } => {
                let killed = self.kill_everything();
                if first {
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
                    self.told.process(p.pid, p.start_time);
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
        self.continue_told.clear();
        for (g, _) in self.gens.stop_targets() {
            if !self.cfg.single_child {
                // With -c only the child itself was told; its group hears later.
                self.told.group(g.pid);
            }
            self.continue_told.push(g.pid);
        }
        // Stopped processes among them get SIGCONT shortly (a named timer of the dispatcher's):
        // an app that just exits is gone before, and its stop then costs no /proc walk.
        self.continue_at = Some(Mono::now().after(CONTINUE_AFTER));
        Done::Sent {
            to: Some(to),
            result,
        }
    }

    /// The continue timer is due: SIGCONT to the stopped among those just told.
    pub(super) fn continue_told_now(&mut self) {
        self.continue_at = None;
        let children = std::mem::take(&mut self.continue_told);
        self.continue_stopped(|p| self.told.has_group(p.pgid) || children.contains(&p.pid));
    }

    /// The main child is gone: each leftover not told yet gets the stop signal (`reach::to_tell`).
    fn stop_leftovers(&mut self, sig: i32) -> Done {
        let remaining = procs::responsible_for(self.reach());
        let Some(to) = self.cfg.rewritten(sig) else {
            return Done::Counted {
                left: remaining.len(),
                sent: 0,
            };
        };
        let tell = reach::to_tell(&remaining, &mut self.told);
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
    pub(super) fn report_stop_signal(&mut self, before: stop::State, sig: i32, from: i32) {
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
        if let Some(logs) = self.pending_logs.take() {
            self.report_all(logs);
        }
    }

    /// Logs what stop actions did, and keeps the emptied buffer for the next stop event.
    fn report_all(&mut self, mut logs: Vec<(Action, Done)>) {
        for (action, done) in logs.drain(..) {
            self.report(action, done);
        }
        self.spare_logs = logs;
    }

    fn report(&self, action: Action, done: Done) {
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
