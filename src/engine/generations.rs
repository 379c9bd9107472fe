//! The restart machine: which generation serves, which one starts or retires beside it, and
//! when the starting one takes over. Pure, like the stop machine: `(state, event, now) -> actions`.
//!
//! ```text
//!  Idle ──restart signal──▶ Starting ──READY=1 / after: ──▶ Retiring ──old group gone──▶ Idle
//!                              │  (promote: old gets the stop signal once, its own deadline)
//!                              └──exits or not ready in time: killed (abandoned)──▶ Idle
//! ```
//! "Stopping" is an input: once the stop sequence has begun, nothing is started, promoted or
//! announced as ready, and a starting generation just waits for the stop signal with the rest of
//! the app. A generation that already has the stop signal (the retiring one) never gets it again
//! from the stop sequence. At most two generations live at once.
//!
//! Without sockets to hand over, a restart is a restart *in place*: the stop machine drains the
//! old generation with the stop sequence, and this machine only learns the result
//! ([`Event::StartedInPlace`]), so generations are numbered the same way either way
//! ([`Generations::next_n`]).

use crate::engine::{Busy, Machine};
use crate::os::clock::Mono;
use crate::os::reap::Exit;
use std::time::Duration;

/// When a new generation counts as ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// It said READY=1 on its NOTIFY_SOCKET.
    Notify,
    /// This long after it started (for apps that cannot notify).
    After(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub ready: Ready,
    pub ready_timeout: Duration,
    /// The grace period a retiring generation gets.
    pub grace: Duration,
    /// Whether sigward speaks the notify protocol to its generations at all (it holds sockets):
    /// only then is readiness tracked and announced upstream.
    pub notify: bool,
}

/// One generation: the n-th start of the command. Its pid is also its process group id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gen {
    pub n: u32,
    pub pid: i32,
    pub began: Mono,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    Idle,
    /// `next` runs beside the current generation until it is ready or `give_up`.
    Starting {
        next: Gen,
        give_up: Mono,
    },
    /// `old` was replaced; it has had the stop signal and drains until `deadline`.
    Retiring {
        old: Gen,
        since: Mono,
        deadline: Mono,
        exited: bool,
    },
}

/// The restart machine's named timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// `after:` has passed for the starting generation.
    NextReady,
    /// `after:` has passed for the current (first) generation: it counts as ready.
    CurrentReady,
    /// The starting generation was not ready within the ready timeout.
    GiveUp,
    /// The retiring generation's grace period is over.
    RetireDeadline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The restart signal arrived.
    Restart,
    /// The next generation was started (after an [`Action::Spawn`]).
    Spawned {
        n: u32,
        pid: i32,
    },
    /// Starting it failed; it never ran.
    SpawnFailed {
        n: u32,
    },
    /// Generation `n` said READY=1 (its sender checked by the dispatcher).
    Ready {
        n: u32,
    },
    /// A process was reaped.
    Exited {
        pid: i32,
        exit: Exit,
    },
    /// Nothing is left of the retiring generation's process group.
    RetiredGroupGone,
    /// The stop sequence began.
    Stopping,
    Timer(Timer),
    /// A restart in place started generation `n` as `pid` once the old one was gone: it is the
    /// current generation from now on.
    StartedInPlace {
        n: u32,
        pid: i32,
    },
}

/// What sigward's own notify-aware parent is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Up {
    Ready,
    Reloading,
    Stopping,
}

/// What one transition asks the dispatcher to do, held inline.
pub type Actions = crate::engine::Actions<Action>;

/// Why a starting generation was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaveUp {
    NotReady(Duration),
    Exited(Exit),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start generation `n` on the held sockets; answer with Spawned or SpawnFailed.
    Spawn { n: u32 },
    /// Tell sigward's parent (when it has one).
    Upstream(Up),
    /// A restart signal that changed nothing.
    Ignored(Busy),
    /// Generation `n` started as `pid` beside the current one.
    Started { next: Gen, current: Gen },
    /// The current generation is ready (READY=1 or after:).
    CurrentReady(Gen),
    /// `current` took over from `old`, which now gets the stop signal (once) and its own grace
    /// period.
    Promoted { current: Gen, old: Gen },
    /// The starting generation failed: its group is SIGKILLed (`kill`) and the current one keeps
    /// serving. During the stop sequence nothing is killed early: the deadline does that.
    Abandoned {
        generation: Gen,
        why: GaveUp,
        kill: bool,
    },
    /// The retiring generation's main process exited.
    RetiredExited { old: Gen, exit: Exit, since: Mono },
    /// The retiring generation outlived its grace period: SIGKILL its group (`exited`: its main
    /// process was reaped already, so the group id may have been reused).
    KillRetired { old: Gen, exited: bool },
    /// A starting generation's exit during the stop sequence: it was stopping with the app.
    NextExited { generation: Gen, exit: Exit },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generations {
    pub current: Gen,
    current_ready: bool,
    /// The current generation's main process has been reaped (its group id may be reused once
    /// the group is empty, so it is signalled member by member from then on).
    current_exited: bool,
    pub restart: Restart,
    stopping: bool,
}

impl Generations {
    /// Generation 1, started at `now` as `pid`.
    pub fn new(pid: i32, now: Mono) -> Generations {
        Generations {
            current: Gen {
                n: 1,
                pid,
                began: now,
            },
            current_ready: false,
            current_exited: false,
            restart: Restart::Idle,
            stopping: false,
        }
    }

    /// The number the next generation gets, however it starts.
    pub fn next_n(&self) -> u32 {
        self.current.n.saturating_add(1)
    }

    /// The generation beside the current one, starting or retiring, if any.
    pub fn other(&self) -> Option<Gen> {
        match self.restart {
            Restart::Idle => None,
            Restart::Starting { next, .. } => Some(next),
            Restart::Retiring { old, .. } => Some(old),
        }
    }

    /// The starting generation, whose notify socket sigward also listens on.
    pub fn starting(&self) -> Option<Gen> {
        match self.restart {
            Restart::Starting { next, .. } => Some(next),
            _ => None,
        }
    }

    /// Groups an ordinary forwarded signal goes to: every live generation, each with whether its
    /// leader was already reaped.
    pub fn forward_targets(&self) -> impl Iterator<Item = (Gen, bool)> + use<> {
        let current = (self.current, self.current_exited);
        let other = match self.restart {
            Restart::Idle => None,
            Restart::Starting { next, .. } => Some((next, false)),
            Restart::Retiring { old, exited, .. } => Some((old, exited)),
        };
        std::iter::once(current).chain(other)
    }

    /// Groups the stop sequence's stop signal goes to: every live generation except a retiring
    /// one, which had it when it was replaced.
    pub fn stop_targets(&self) -> impl Iterator<Item = (Gen, bool)> + use<> {
        let restart = self.restart;
        self.forward_targets()
            .filter(move |(g, _)| !matches!(restart, Restart::Retiring { old, .. } if old == *g))
    }

    pub fn retiring_exited(&self) -> Option<Gen> {
        match self.restart {
            Restart::Retiring {
                old, exited: true, ..
            } => Some(old),
            _ => None,
        }
    }

    /// The earliest pending timer. None while idle: no wake-up without a deadline.
    pub fn timer(&self, p: &Params) -> Option<(Timer, Mono)> {
        self.timers(p).into_iter().flatten().min_by_key(|t| t.1)
    }

    /// Every pending timer: the current generation's `after:` and the restart's own.
    fn timers(&self, p: &Params) -> [Option<(Timer, Mono)>; 2] {
        let current = match p.ready {
            Ready::After(d) if p.notify && !self.current_ready && !self.stopping => {
                Some((Timer::CurrentReady, self.current.began.after(d)))
            }
            _ => None,
        };
        let restart = match self.restart {
            Restart::Idle => None,
            // Stopping, or the current generation's main process is gone (the stop sequence is
            // about to begin): no promotion, so no timer that would promote or give up.
            Restart::Starting { .. } if self.stopping || self.current_exited => None,
            Restart::Starting { next, give_up } => Some(match p.ready {
                Ready::After(d) if next.began.after(d) < give_up => {
                    (Timer::NextReady, next.began.after(d))
                }
                _ => (Timer::GiveUp, give_up),
            }),
            Restart::Retiring { deadline, .. } => Some((Timer::RetireDeadline, deadline)),
        };
        [current, restart]
    }

    fn current_is_ready(&mut self) -> Actions {
        if self.current_ready {
            return Actions::None;
        }
        self.current_ready = true;
        if self.stopping || self.current_exited {
            // Ready, but sigward is stopping or the app ended: READY=1 after STOPPING=1, or for
            // a generation that is gone, would mislead the parent.
            Actions::None
        } else {
            Actions::Two([
                Action::CurrentReady(self.current),
                Action::Upstream(Up::Ready),
            ])
        }
    }

    fn promote(&mut self, next: Gen, now: Mono, p: &Params) -> Actions {
        let old = self.current;
        self.current = next;
        self.current_ready = true;
        self.current_exited = false;
        self.restart = Restart::Retiring {
            old,
            since: now,
            deadline: now.after(p.grace),
            exited: false,
        };
        Actions::Two([
            Action::Promoted { current: next, old },
            Action::Upstream(Up::Ready),
        ])
    }

    fn abandon(&mut self, generation: Gen, why: GaveUp) -> Actions {
        self.restart = Restart::Idle;
        let abandoned = Action::Abandoned {
            generation,
            why,
            kill: true,
        };
        // RELOADING=1 went up when it started; the reload is over, and the current generation
        // serves on — READY=1 only if it ever was ready, and never once it ended.
        if self.current_ready && !self.current_exited {
            Actions::Two([abandoned, Action::Upstream(Up::Ready)])
        } else {
            Actions::One([abandoned])
        }
    }
}

impl Machine for Generations {
    type Event = Event;
    type Action = Action;
    type Params = Params;

    /// One transition; every event is answered in every state here.
    fn step(&mut self, event: Event, now: Mono, p: &Params) -> Actions {
        use Action::*;
        if let Event::Timer(t) = event {
            // A timer acts only when it is the pending one and due (no re-deriving which fired).
            let mut pending = self.timers(p).into_iter().flatten();
            if !pending.any(|(pt, due)| pt == t && now >= due) {
                return Actions::None;
            }
        }
        match (event, self.restart) {
            (Event::Stopping, _) => {
                if self.stopping {
                    return Actions::None;
                }
                self.stopping = true;
                Actions::One([Upstream(Up::Stopping)])
            }

            (Event::Restart, _) if self.stopping => Actions::One([Ignored(Busy::Stopping)]),
            (Event::Restart, Restart::Starting { next, .. }) => {
                Actions::One([Ignored(Busy::Starting(next.n))])
            }
            (Event::Restart, Restart::Retiring { old, .. }) => {
                Actions::One([Ignored(Busy::Draining(old.n))])
            }
            (Event::Restart, Restart::Idle) => Actions::One([Spawn { n: self.next_n() }]),

            // Only after the old generation is gone (no other beside it) and never once stopping:
            // the stop machine starts nothing then. Anything else is stale.
            (Event::StartedInPlace { n, pid }, Restart::Idle) if !self.stopping => {
                self.current = Gen { n, pid, began: now };
                self.current_ready = false;
                self.current_exited = false;
                Actions::None
            }
            (Event::StartedInPlace { .. }, _) => Actions::None,

            (Event::Spawned { n, pid }, Restart::Idle) if !self.stopping => {
                let next = Gen { n, pid, began: now };
                self.restart = Restart::Starting {
                    next,
                    give_up: now.after(p.ready_timeout),
                };
                Actions::Two([
                    Upstream(Up::Reloading),
                    Started {
                        next,
                        current: self.current,
                    },
                ])
            }
            // Spawn answers only follow a Spawn action, which only Idle gives; nothing else to do.
            (Event::Spawned { .. } | Event::SpawnFailed { .. }, _) => Actions::None,

            (Event::Ready { n }, _) if n == self.current.n => self.current_is_ready(),
            (Event::Ready { n }, Restart::Starting { next, .. })
                if n == next.n
                    && p.ready == Ready::Notify
                    && !self.stopping
                    && !self.current_exited =>
            {
                self.promote(next, now, p)
            }
            (Event::Ready { .. }, _) => Actions::None,

            (Event::Timer(Timer::CurrentReady), _) => self.current_is_ready(),
            (Event::Timer(Timer::NextReady), Restart::Starting { next, .. }) => {
                self.promote(next, now, p)
            }
            (Event::Timer(Timer::GiveUp), Restart::Starting { next, .. }) => {
                self.abandon(next, GaveUp::NotReady(p.ready_timeout))
            }
            (Event::Timer(Timer::RetireDeadline), Restart::Retiring { old, exited, .. }) => {
                self.restart = Restart::Idle;
                Actions::One([KillRetired { old, exited }])
            }
            (Event::Timer(_), _) => Actions::None,

            (Event::Exited { pid, exit }, Restart::Starting { next, .. }) if pid == next.pid => {
                // The current generation already ended (its exit is reaped in the same pass, before
                // the stop sequence hears of it): the app ended, nothing keeps serving.
                if self.stopping || self.current_exited {
                    self.restart = Restart::Idle;
                    Actions::One([NextExited {
                        generation: next,
                        exit,
                    }])
                } else {
                    self.abandon(next, GaveUp::Exited(exit))
                }
            }
            (
                Event::Exited { pid, exit },
                Restart::Retiring {
                    old,
                    since,
                    deadline,
                    exited: false,
                },
            ) if pid == old.pid => {
                self.restart = Restart::Retiring {
                    old,
                    since,
                    deadline,
                    exited: true,
                };
                Actions::One([RetiredExited { old, exit, since }])
            }
            (Event::Exited { pid, .. }, _) => {
                if pid == self.current.pid {
                    self.current_exited = true;
                }
                Actions::None
            }

            (Event::RetiredGroupGone, Restart::Retiring { exited: true, .. }) => {
                self.restart = Restart::Idle;
                Actions::None
            }
            (Event::RetiredGroupGone, _) => Actions::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    fn params(ready: Ready) -> Params {
        Params {
            ready,
            ready_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(5),
            notify: true,
        }
    }

    fn restarted(p: &Params) -> Generations {
        let mut g = Generations::new(100, Mono(0));
        assert_eq!(
            g.step(Event::Restart, Mono(S), p),
            vec![Action::Spawn { n: 2 }]
        );
        g.step(Event::Spawned { n: 2, pid: 200 }, Mono(S), p);
        g
    }

    #[test]
    fn ready_promotes_and_the_old_generation_retires_with_its_own_deadline() {
        let p = params(Ready::Notify);
        let mut g = restarted(&p);
        assert_eq!(g.timer(&p), Some((Timer::GiveUp, Mono(11 * S))));
        let a = g.step(Event::Ready { n: 2 }, Mono(2 * S), &p);
        assert!(matches!(
            a[0],
            Action::Promoted {
                current: Gen { pid: 200, .. },
                old: Gen { pid: 100, .. }
            }
        ));
        assert_eq!(g.current.pid, 200);
        assert_eq!(g.timer(&p), Some((Timer::RetireDeadline, Mono(7 * S))));
        // The retiring generation is not a stop target: it already had the stop signal.
        let targets: Vec<i32> = g.stop_targets().map(|(g, _)| g.pid).collect();
        assert_eq!(targets, vec![200]);
        assert_eq!(
            g.step(Event::Timer(Timer::RetireDeadline), Mono(7 * S), &p),
            vec![Action::KillRetired {
                old: Gen {
                    n: 1,
                    pid: 100,
                    began: Mono(0)
                },
                exited: false
            }]
        );
    }

    #[test]
    fn ready_during_the_stop_sequence_promotes_nothing() {
        let p = params(Ready::Notify);
        let mut g = restarted(&p);
        assert_eq!(
            g.step(Event::Stopping, Mono(2 * S), &p),
            vec![Action::Upstream(Up::Stopping)]
        );
        assert_eq!(g.step(Event::Ready { n: 2 }, Mono(3 * S), &p), vec![]);
        assert_eq!(g.current.pid, 100);
        let targets: Vec<i32> = g.stop_targets().map(|(g, _)| g.pid).collect();
        assert_eq!(targets, vec![100, 200], "both get the stop signal, once");
        assert_eq!(g.timer(&p), None, "no give-up timer while stopping");
    }

    #[test]
    fn an_abandoned_restart_says_ready_upstream_only_if_the_current_generation_was_ready() {
        let p = params(Ready::Notify);
        let mut g = restarted(&p);
        let a = g.step(
            Event::Exited {
                pid: 200,
                exit: Exit::Code(1),
            },
            Mono(2 * S),
            &p,
        );
        assert!(!a.contains(&Action::Upstream(Up::Ready)), "{a:?}");
        let mut g = Generations::new(100, Mono(0));
        g.step(Event::Ready { n: 1 }, Mono(1), &p);
        g.step(Event::Restart, Mono(S), &p);
        g.step(Event::Spawned { n: 2, pid: 200 }, Mono(S), &p);
        let a = g.step(Event::Timer(Timer::GiveUp), Mono(11 * S), &p);
        assert!(a.contains(&Action::Upstream(Up::Ready)), "{a:?}");
    }

    /// Generation 1 ends by itself while generation 2 starts, and both are reaped in one pass:
    /// the app ended; nothing "keeps serving" and no READY=1 goes upstream.
    #[test]
    fn a_starting_generation_that_exits_after_the_current_one_ended_is_not_abandoned() {
        let p = params(Ready::Notify);
        let mut g = Generations::new(100, Mono(0));
        g.step(Event::Ready { n: 1 }, Mono(1), &p);
        g.step(Event::Restart, Mono(S), &p);
        g.step(Event::Spawned { n: 2, pid: 200 }, Mono(S), &p);
        let exit = Exit::Code(0);
        g.step(Event::Exited { pid: 100, exit }, Mono(2 * S), &p);
        let a = g.step(Event::Exited { pid: 200, exit }, Mono(2 * S), &p);
        assert_eq!(
            a,
            vec![Action::NextExited {
                generation: Gen {
                    n: 2,
                    pid: 200,
                    began: Mono(S)
                },
                exit
            }]
        );
    }

    #[test]
    fn after_makes_the_first_generation_ready_too() {
        let p = params(Ready::After(Duration::from_secs(2)));
        let mut g = Generations::new(100, Mono(0));
        assert_eq!(g.timer(&p), Some((Timer::CurrentReady, Mono(2 * S))));
        let a = g.step(Event::Timer(Timer::CurrentReady), Mono(2 * S), &p);
        assert!(a.contains(&Action::Upstream(Up::Ready)));
        assert_eq!(g.timer(&p), None);
    }

    /// The current generation's main process was reaped (the stop machine hears of it only at
    /// the end of the reaping pass, which may span several batches with timers run in between):
    /// the new generation must not be promoted over it, and above all the dispatcher must not
    /// be told to kill(-pgid) a group whose leader was reaped.
    #[test]
    fn no_promotion_over_a_current_generation_whose_main_process_was_reaped() {
        let p = params(Ready::After(Duration::from_secs(2)));
        let mut g = restarted(&p);
        g.step(Event::Timer(Timer::CurrentReady), Mono(2 * S), &p);
        g.step(
            Event::Exited {
                pid: 100,
                exit: Exit::Code(0),
            },
            Mono(2 * S),
            &p,
        );
        let a = g.step(Event::Timer(Timer::NextReady), Mono(3 * S), &p);
        assert!(
            !a.iter().any(|a| matches!(a, Action::Promoted { .. })),
            "promoted over a reaped generation, whose group the dispatcher then signals by pgid: {a:?}"
        );
    }

    #[test]
    fn a_restart_in_place_counts_generations_as_a_hand_over_does() {
        let p = params(Ready::Notify);
        let mut g = Generations::new(100, Mono(0));
        assert_eq!(g.next_n(), 2);
        let a = g.step(Event::StartedInPlace { n: 2, pid: 300 }, Mono(S), &p);
        assert_eq!(a, vec![]);
        assert_eq!(
            g.current,
            Gen {
                n: 2,
                pid: 300,
                began: Mono(S)
            }
        );
        assert_eq!(g.next_n(), 3);
        assert_eq!(
            g.step(Event::Restart, Mono(2 * S), &p),
            vec![Action::Spawn { n: 3 }]
        );
        // Once stopping, nothing becomes current.
        let mut g = Generations::new(100, Mono(0));
        g.step(Event::Stopping, Mono(S), &p);
        g.step(Event::StartedInPlace { n: 2, pid: 300 }, Mono(S), &p);
        assert_eq!(g.current.pid, 100);
    }

    #[derive(Clone, Copy, Debug)]
    enum Step {
        Restart,
        SpawnOk,
        SpawnFail,
        Ready(u32),
        ExitNext,
        ExitOld,
        ExitCurrent,
        GroupGone,
        Stop,
        Timer,
        Wait(u64),
        InPlace,
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Restart),
            Just(Step::SpawnOk),
            Just(Step::SpawnFail),
            (1u32..6).prop_map(Step::Ready),
            Just(Step::ExitNext),
            Just(Step::ExitOld),
            Just(Step::ExitCurrent),
            Just(Step::GroupGone),
            Just(Step::Stop),
            Just(Step::Timer),
            (0..20 * S).prop_map(Step::Wait),
            Just(Step::InPlace),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The restart rules over any event sequence.
        #[test]
        fn every_event_sequence_keeps_the_restart_rules(
            after in prop::option::of(0u64..9),
            steps in prop::collection::vec(arb_step(), 0..60),
        ) {
            let p = params(after.map_or(Ready::Notify, |s| Ready::After(Duration::from_secs(s))));
            let mut g = Generations::new(100, Mono(0));
            let mut now = Mono(0);
            let mut next_pid = 200;
            let mut spawn_pending: Option<u32> = None;
            let mut stopped = false;
            let mut stop_signalled: Vec<i32> = vec![];
            let mut ever_ready = false;
            // The current generation's main process that was reaped, if it was.
            let mut ended: Option<i32> = None;
            let mut upstream: Vec<Up> = vec![];
            for step in steps {
                let event = match step {
                    Step::Restart => Event::Restart,
                    Step::SpawnOk | Step::SpawnFail => match spawn_pending.take() {
                        Some(n) if matches!(step, Step::SpawnOk) => { next_pid += 1; Event::Spawned { n, pid: next_pid } }
                        Some(n) => Event::SpawnFailed { n },
                        None => continue,
                    },
                    Step::Ready(n) => Event::Ready { n },
                    Step::ExitNext => match g.starting() { Some(n) => Event::Exited { pid: n.pid, exit: Exit::Code(0) }, None => continue },
                    Step::ExitOld => match g.restart { Restart::Retiring { old, .. } => Event::Exited { pid: old.pid, exit: Exit::Code(0) }, _ => continue },
                    Step::ExitCurrent => Event::Exited { pid: g.current.pid, exit: Exit::Code(0) },
                    Step::GroupGone => Event::RetiredGroupGone,
                    Step::Stop => Event::Stopping,
                    Step::Timer => match g.timer(&p) { Some((t, at)) => { now = now.max(at); Event::Timer(t) } None => continue },
                    Step::Wait(ns) => { now = now.after(Duration::from_nanos(ns)); continue }
                    Step::InPlace => { next_pid += 1; Event::StartedInPlace { n: g.next_n(), pid: next_pid } }
                };
                let (n_before, other_before) = (g.current.n, g.other());
                let retire_deadline = match g.restart { Restart::Retiring { deadline, .. } => Some(deadline), _ => None };
                if event == Event::Stopping && !stopped {
                    stopped = true;
                }
                let was_current = g.current;
                if let Event::Exited { pid, .. } = event && pid == g.current.pid {
                    ended = Some(pid);
                }
                let actions = g.step(event, now, &p);
                if let Event::StartedInPlace { pid, .. } = event {
                    // Counted as any restart; never beside another generation, never once stopping.
                    prop_assert!(actions.is_empty());
                    if stopped || other_before.is_some() {
                        prop_assert_eq!(g.current, was_current);
                    } else {
                        prop_assert_eq!((g.current.n, g.current.pid), (n_before + 1, pid));
                    }
                }
                if event == Event::Stopping && stop_signalled.is_empty() {
                    // The stop sequence's own stop signal: to every stop target, once.
                    for (t, _) in g.stop_targets() {
                        prop_assert!(!stop_signalled.contains(&t.pid), "gen {} signalled twice", t.n);
                        stop_signalled.push(t.pid);
                    }
                }
                for a in &actions {
                    match a {
                        Action::Spawn { n } => {
                            prop_assert!(!stopped, "restart while stopping");
                            prop_assert!(g.other().is_none(), "a third generation");
                            spawn_pending = Some(*n);
                        }
                        Action::Promoted { old, .. } => {
                            prop_assert!(!stopped, "promotion while stopping");
                            prop_assert_eq!(*old, was_current);
                            prop_assert!(!stop_signalled.contains(&old.pid), "gen {} signalled twice", old.n);
                            stop_signalled.push(old.pid);
                        }
                        Action::Upstream(up) => {
                            if *up == Up::Ready {
                                prop_assert!(!stopped, "READY=1 after STOPPING=1");
                                prop_assert!(ended != Some(was_current.pid), "READY=1 after the app ended");
                                ever_ready = true;
                            }
                            upstream.push(*up);
                        }
                        Action::Abandoned { kill, .. } => prop_assert!(!stopped || !kill, "killed before the deadline"),
                        Action::CurrentReady(_) => prop_assert!(!stopped),
                        _ => {}
                    }
                }
                // A retiring generation's deadline never moves.
                if let (Some(d), Restart::Retiring { deadline, .. }) = (retire_deadline, g.restart) {
                    prop_assert_eq!(d, deadline);
                }
                let _ = ever_ready;
            }
            // Every path ends: once the due timers fired and the other generation's processes
            // are gone, no restart is left under way.
            for _ in 0..4 {
                if let Some((t, at)) = g.timer(&p) {
                    now = now.max(at);
                    g.step(Event::Timer(t), now, &p);
                }
            }
            if let Some(other) = g.other() {
                g.step(Event::Exited { pid: other.pid, exit: Exit::Code(0) }, now, &p);
                g.step(Event::RetiredGroupGone, now, &p);
            }
            prop_assert_eq!(g.restart, Restart::Idle);
            // STOPPING=1, once sent, is the last word about readiness.
            if let Some(i) = upstream.iter().position(|u| *u == Up::Stopping) {
                prop_assert!(!upstream[i..].contains(&Up::Ready));
                prop_assert_eq!(upstream.iter().filter(|u| **u == Up::Stopping).count(), 1);
            }
        }
    }
}
