//! Carrying out restarts: the restart machine's actions (`generations`: a generation beside the
//! current one on the held sockets), restarts in place (the stop machine drains, then the same
//! command starts again), and the `--watch` debounce machine's (`reload`).

use super::dispatcher::Dispatcher;
use crate::config::OnChange;
use crate::engine::generations::{self, Action, GaveUp, Gen, Restart};
use crate::engine::stop;
use crate::engine::{Busy, Machine, jobs, reach, reload};
use crate::log::{self, Event};
use crate::notify::Notify;
use crate::os::clock::Mono;
use crate::os::procs;
use crate::os::reap::Exit;
use crate::os::spawn::{self, SpawnError};
use crate::os::terminal::{self, Os};
use nix::errno::Errno;

impl Dispatcher<'_> {
    /// A restart of the app: the restart signal, or `--on-change restart`. With sockets to hand
    /// over, a new generation beside the current one (the restart machine); without, a restart
    /// in place (the stop machine drains the current generation, then it starts again). Either
    /// machine answers a restart under way, or the stop sequence, by ignoring it (logged); the
    /// watch's own machine never asks then (it defers).
    pub(super) fn request_restart(&mut self, trigger: log::Trigger) {
        self.restart_trigger = trigger;
        let now = Mono::now();
        if self.held.is_some() {
            self.on_gens(generations::Event::Restart, now);
        } else {
            let ended = self.main_exit.is_some();
            let generation = self.gens.current.n;
            self.on_stop(stop::Event::Restart { ended, generation }, now);
        }
    }

    /// A restart in place: nothing of the old generation is left; start the command again as the
    /// next generation, as the first was started (argv, environment, sigward's original working
    /// directory, a session of its own or the terminal's foreground). If it cannot start, that is
    /// reported and sigward exits with the status a shell would give (127, 126; 125 when sigward
    /// itself failed): no silent crash loop inside the container.
    pub(super) fn start_in_place(&mut self, began: Mono) {
        let n = self.gens.next_n();
        match self.launch.spawn(&self.cfg.command, n, None) {
            Ok(pid) => self.started_in_place(n, pid, began),
            Err(e) => {
                let (status, what, err) = match e {
                    SpawnError::Exec(err) => (spawn::exec_failure_status(err), "run", err),
                    SpawnError::Start(what, err) => (crate::boot::START_FAILED, what, err),
                };
                self.main_exit = Some(Exit::Code(status));
                self.on_stop(stop::Event::StartFailed, Mono::now());
                let event = Event::RestartInPlaceFailed {
                    generation: n,
                    what,
                    err,
                    status,
                };
                log::emit(&event);
                // The termination message says first why sigward exits with this status.
                self.summary.failed = Some(log::sentence(&event));
            }
        }
    }

    fn started_in_place(&mut self, n: u32, pid: i32, began: Mono) {
        let now = Mono::now();
        let previous = self.gens.current.n;
        // A new stop sequence for a new generation: nobody told, no exit seen yet.
        self.main_exit = None;
        self.book.restart();
        self.summary.next_generation(pid);
        self.on_gens(generations::Event::StartedInPlace { n, pid }, now);
        self.on_stop(stop::Event::Started, now);
        log::emit(&Event::RestartedInPlace {
            generation: n,
            pid,
            previous,
            after: now.since(began),
        });
        // What changed before reads as it starts: no signal into its start-up.
        self.on_reload(reload::Event::Restarted, now);
    }

    /// After a reaping pass: the retiring generation's group is empty once its leader was reaped
    /// and no member is left (`reach::members`).
    pub(super) fn retired_group_gone(&mut self, now: Mono) {
        if let Some(old) = self.gens.retiring_exited()
            && reach::members(&procs::responsible_for(self.mode.pid1), old.pid, true)
                .next()
                .is_none()
        {
            self.book.told.forget_group(old.pid);
            self.on_gens(generations::Event::RetiredGroupGone, now);
        }
    }

    /// Feeds the restart machine and carries out its decisions.
    pub(super) fn on_gens(&mut self, event: generations::Event, now: Mono) {
        let actions = self.gens.step(event, now, &self.params);
        for action in actions {
            self.carry_out_gens(action, now);
        }
        self.after_restart(now);
    }

    /// A restart is under way: a new generation beside the current one (`--listen`), or a restart
    /// in place.
    pub(super) fn restart_under_way(&self) -> bool {
        self.gens.restart != Restart::Idle || self.stop.restarting()
    }

    /// A configuration change deferred during a restart is acted on once it is over.
    fn after_restart(&mut self, now: Mono) {
        if self.reload == reload::State::Deferred && !self.restart_under_way() {
            self.on_reload(reload::Event::RestartOver, now);
        }
    }

    fn carry_out_gens(&mut self, action: Action, now: Mono) {
        match action {
            Action::Spawn { n } => self.spawn_next(n, now),
            Action::Upstream(up) => {
                if let Some(h) = &self.held {
                    h.tell(up);
                }
            }
            Action::Ignored(busy) => log::emit(&Event::RestartIgnored {
                by: self.restart_trigger,
                busy,
            }),
            Action::Started { next, current } => log::emit(&Event::Restarting {
                by: self.restart_trigger,
                generation: next.n,
                pid: next.pid,
                current: current.n,
                current_pid: current.pid,
                wait: match self.cfg.ready {
                    generations::Ready::Notify => log::ReadyWait::Notify(self.cfg.ready_timeout),
                    generations::Ready::After(d) => log::ReadyWait::After(d),
                },
            }),
            Action::CurrentReady(g) => log::emit(&Event::Ready {
                generation: g.n,
                pid: g.pid,
            }),
            Action::Promoted { current, old } => self.promoted(current, old, now),
            Action::Abandoned {
                generation,
                why,
                kill,
            } => self.abandoned(generation, why, kill),
            Action::NextExited { generation, exit } => {
                self.drop_starting_notify();
                log::emit(&Event::StartingExited {
                    generation: generation.n,
                    pid: generation.pid,
                    exit,
                });
            }
            Action::RetiredExited { old, exit, since } => log::emit(&Event::Retired {
                generation: old.n,
                pid: old.pid,
                exit,
                after: now.since(since),
            }),
            Action::KillRetired { old, exited } => {
                let count = self.kill_generation(old, exited);
                self.book.told.forget_group(old.pid);
                log::emit(&Event::RetiredKilled {
                    generation: old.n,
                    pid: old.pid,
                    grace: self.cfg.grace_period,
                    count,
                });
            }
        }
    }

    /// Starts generation `n` beside the current one, on the held sockets with a notify socket of
    /// its own, and tells the restart machine how that went.
    fn spawn_next(&mut self, n: u32, now: Mono) {
        let Some(held) = self.held.as_mut() else {
            return self.on_gens(generations::Event::SpawnFailed { n }, now);
        };
        let current = self.gens.current.n;
        let notify = match Notify::new() {
            Ok(notify) => notify,
            Err(e) => {
                let err = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                log::emit(&Event::RestartNoNotifySocket { generation: n, err });
                return self.on_gens(generations::Event::SpawnFailed { n }, now);
            }
        };
        match held.spawn(&self.launch, &self.cfg.command, n, &notify) {
            Ok(pid) => {
                held.notify[1] = Some(notify);
                self.on_gens(generations::Event::Spawned { n, pid }, Mono::now());
            }
            Err(e) => {
                log::emit(&match e {
                    SpawnError::Exec(err) => Event::RestartCannotRun {
                        generation: n,
                        err,
                        current,
                    },
                    SpawnError::Start(what, err) => Event::RestartCannotStart {
                        generation: n,
                        what,
                        err,
                        current,
                    },
                });
                self.on_gens(generations::Event::SpawnFailed { n }, now);
            }
        }
    }

    /// `current` took over from `old`: the old generation gets the stop signal, once, and
    /// SIGCONT if stopped. It counts as told: a later stop sequence's leftover pass passes it by.
    fn promoted(&mut self, current: Gen, old: Gen, now: Mono) {
        let sig = self.cfg.rewritten(self.cfg.stop_signal);
        if self.cfg.single_child {
            if let Some(p) = procs::stat_of(old.pid) {
                self.book.told.process(p.pid, p.start_time);
            }
        } else {
            self.book.told.group(old.pid);
        }
        if let Some(sig) = sig {
            let _ = self.signal_generation(old, false, sig);
            self.continue_stopped(|p| p.pgid == old.pid);
        }
        if let Some(h) = self.held.as_mut() {
            h.notify.swap(0, 1);
            h.notify[1] = None;
        }
        // The terminal's foreground follows the serving generation, if the job has it.
        if jobs::foreground_follows(self.mode, old.pid, &Os)
            && let Err(err) = terminal::set_foreground(current.pid)
        {
            log::emit(&Event::ForegroundFailed {
                pgid: current.pid,
                err,
            });
        }
        log::emit(&Event::Promoted {
            generation: current.n,
            pid: current.pid,
            after: now.since(current.began),
            retiring: old.n,
            retiring_pid: old.pid,
            sig,
            grace: self.cfg.grace_period,
        });
    }

    /// The starting generation failed: SIGKILLed if the machine says so; the current one serves.
    fn abandoned(&mut self, generation: Gen, why: GaveUp, kill: bool) {
        if kill {
            let reaped = matches!(why, GaveUp::Exited(_));
            self.kill_generation(generation, reaped);
        }
        self.drop_starting_notify();
        let current = self.gens.current;
        log::emit(&Event::Abandoned {
            generation: generation.n,
            pid: generation.pid,
            why: match why {
                GaveUp::NotReady(t) => log::Abandon::NotReadyAfter(t),
                GaveUp::Exited(exit) => log::Abandon::ExitedBeforeReady(exit),
            },
            current: current.n,
            current_pid: current.pid,
        });
    }

    /// The starting generation is gone: its notify socket closes.
    fn drop_starting_notify(&mut self) {
        if let Some(h) = self.held.as_mut() {
            h.notify[1] = None;
        }
    }

    /// Events on the inotify fd: a change starts (or extends) the quiet window.
    pub(super) fn on_watch(&mut self) {
        if self.watch.as_mut().is_some_and(|w| w.read()) {
            self.on_reload(reload::Event::Changed, Mono::now());
        }
    }

    /// What a deferred change waits for.
    fn busy(&self) -> Busy {
        match self.gens.restart {
            Restart::Starting { next, .. } => Busy::Starting(next.n),
            Restart::Retiring { old, .. } => Busy::Draining(old.n),
            Restart::Idle if self.stop.restarting() => Busy::Restarting(self.gens.current.n),
            Restart::Idle => Busy::Stopping,
        }
    }

    /// Feeds the debounce machine and carries out its decision: signals first, the line after.
    pub(super) fn on_reload(&mut self, event: reload::Event, now: Mono) {
        let actions = self.reload.step(event, now, &self.reload_params);
        if let Some(&action) = actions.first() {
            self.carry_out_reload(action);
        }
    }

    /// The `--on-change` action, or why there is none now, with what changed.
    pub(super) fn carry_out_reload(&mut self, action: reload::Action) {
        // Deferred: the paths stay for the line of the action taken later.
        let (paths, more) = match self.watch.as_mut() {
            Some(w) if action == reload::Action::Defer => w.changed_so_far(),
            Some(w) => w.take_changed(),
            None => (Vec::new(), 0),
        };
        let changed = log::Changed {
            paths: &paths,
            more,
        };
        let then = match (action, self.cfg.on_change) {
            (reload::Action::Act, OnChange::Signal(sig)) => {
                let target = reach::named(self.gens.current.pid, self.cfg.single_child);
                match self.deliver(sig) {
                    Ok(()) => log::Reload::Signalled { sig, target },
                    Err(err) => log::Reload::SignalFailed { sig, target, err },
                }
            }
            (reload::Action::Act, OnChange::Restart) => {
                // Said first: the restart's own lines (the new generation) follow.
                log::emit(&Event::ConfigChanged {
                    changed,
                    then: log::Reload::Restart,
                });
                return self.request_restart(log::Trigger::ConfigChange);
            }
            (reload::Action::Defer, _) => log::Reload::Deferred(self.busy()),
            (reload::Action::Drop, _) => log::Reload::Dropped,
            (reload::Action::Covered, _) => log::Reload::Covered(self.gens.current.n),
        };
        log::emit(&Event::ConfigChanged { changed, then });
    }
}
