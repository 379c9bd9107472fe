//! The stop sequence as a pure machine: `(state, event, now) -> (state, actions)`.
//!
//! ```text
//!  Running ──stop signal──▶ Delaying ──delay over / another stop signal──▶ Draining ──deadline──▶ Killing
//!     │  └──stop signal, no pre-stop delay──────────────────────────────────▶│                      │
//!     └──main child exits, others remain: stop signal to them───────────────▶│          resweep ◀──┘
//!  Every state ──no process left──▶ Done
//! ```
//!
//! **Restart in place** (the restart signal without sockets to hand over) is the same stop
//! sequence with another ending: Draining and Killing carry [`Then`], and a sequence that began
//! on the restart signal ends, once no process is left, in `Respawning` instead of `Done`:
//!
//! ```text
//!  Running ──restart signal──▶ Draining(then restart) ──deadline──▶ Killing(then restart)
//!     ▲                            │  └──────no process left────────────┐  │
//!     │                            └──stop signal: then exit (the real stop, same deadline)
//!     └──next generation started── Respawning ◀───────────no process left──┘
//!                                     ├──stop signal──▶ Done (no new generation)
//!                                     └──it could not start──▶ Done (exit with its status)
//! ```
//!
//! Why a mode of this machine and not of `generations`: the drain must be exactly the stop
//! sequence (the stop signal once per process, SIGCONT, its own grace period, leftovers told,
//! stragglers SIGKILLed and named, resweeps), and here every one of those rules is already
//! stated once and checked. Only the ending differs. The restart uses no pre-stop delay: that
//! delay is for load balancers to forget a pod that is going away, and a pod restarting its app
//! in place is not going away, so holding the stop signal would only lengthen the outage. The
//! next generation starts only once nothing of the old one is left (`AllGone`: no child, orphans
//! included), so two generations never run at once without sockets to share.
//!
//! No syscalls and no clock reads: the dispatcher feeds events with the current [`Mono`] instant
//! and executes the returned [`Action`]s (signals first, log lines after). That keeps the rules
//! that matter checkable by tests over every state and every event sequence: the app gets the stop
//! signal once per stop sequence, the grace deadline is set once and never moves, SIGKILL comes only
//! at or after it, and every path ends in `Done` once no process is left.

use crate::engine::{Busy, Machine};
use crate::os::clock::Mono;
use crate::os::procs::PidHasher;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::time::Duration;

/// While killing, look again this often for stragglers that forked just before SIGKILL landed.
pub const RESWEEP: Duration = Duration::from_secs(1);

/// What the stop sequence may spend, from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Counted from the first stop signal (or from the main child's exit while others remain).
    pub grace: Duration,
    /// Inside the grace period: the first stop signal is held this long.
    pub pre_stop_delay: Duration,
    /// The stop signal for leftovers when no stop signal was received (the main child just exited):
    /// the first signal of `--stop-signal`.
    pub stop_signal: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No stop requested: signals are forwarded as they come.
    Running,
    /// The stop signal `held` waits until `until` while the app keeps serving.
    Delaying {
        began: Mono,
        until: Mono,
        deadline: Mono,
        held: i32,
    },
    /// The stop signal `signal` was delivered; waiting for every process to exit. `asked`: a
    /// stop signal was received (not only the main child's exit or a restart), so a further one
    /// is forwarded.
    Draining {
        began: Mono,
        deadline: Mono,
        signal: i32,
        asked: bool,
        then: Then,
    },
    /// The deadline passed and everything left was SIGKILLed; look again at `resweep`.
    Killing {
        began: Mono,
        resweep: Mono,
        then: Then,
    },
    /// A restart in place: nothing of the old generation is left. The dispatcher first handles
    /// what is already pending (a stop signal that came meanwhile wins), then starts the next
    /// generation and answers with [`Event::Started`] or [`Event::StartFailed`]. `began`: when
    /// the restart began.
    Respawning { began: Mono },
    /// No process is left: sigward exits.
    Done,
}

/// How a stop sequence ends once no process is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// sigward exits (a stop signal, or the app ended by itself).
    Exit,
    /// The same command starts again (the restart signal, without sockets to hand over).
    Restart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A stop signal arrived from someone other than sigward itself.
    StopSignal(i32),
    /// The main child was reaped; `others` says whether any process remains.
    MainExited { others: bool },
    /// Nothing is left to reap.
    AllGone,
    /// The deadline's SIGKILL went out, but the processes left could not be listed (/proc
    /// unreadable: no fd left, hidden): nothing more can be found or waited for, so the stop
    /// sequence ends there rather than resweep an unseen tree for ever: sigward exits, or a
    /// restart in place starts the next generation.
    TreeUnseen,
    /// A timer this machine asked for (see [`State::timer`]) is due.
    Timer(Timer),
    /// The restart signal, without sockets to hand over: restart in place of the current
    /// `generation`. `ended`: the main child was already reaped (the app ended by itself; it is
    /// not restarted then).
    Restart { ended: bool, generation: u32 },
    /// In `Respawning`: the next generation was started.
    Started,
    /// In `Respawning`: the next generation could not be started.
    StartFailed,
}

/// The stop machine's named timers: a fired timer says which deadline it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    DelayOver,
    Deadline,
    Resweep,
}

/// Why the stop signal goes to the app now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Because {
    /// The stop signal arrived and there is no pre-stop delay.
    Received,
    /// The pre-stop delay is over.
    DelayOver,
    /// A second stop signal (this one) cut the pre-stop delay short.
    DelayCut(i32),
    /// A restart in place begins.
    Restart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The stop sequence began on `sig`: no more restarts or promotions, STOPPING=1 upstream.
    /// `hold` is the pre-stop delay when there is one.
    Began {
        sig: i32,
        grace: Duration,
        hold: Option<Duration>,
    },
    /// Deliver the stop signal to the app: each generation's group that has not had it yet.
    /// Emitted at most once per stop sequence.
    StopApp { sig: i32, because: Because },
    /// A later stop signal from outside while draining: forwarded to the app, as documented.
    ForwardAgain { sig: i32 },
    /// The main child is gone but processes remain: each one not yet told gets `sig`, then
    /// sigward waits up to `wait` for them.
    StopLeftovers { sig: i32, wait: Duration },
    /// The grace period is over (or a resweep is due): SIGKILL everything sigward answers for;
    /// `first` names the stragglers.
    Kill { first: bool },
    /// The first stop signal from outside arrived after sigward had already told everything left
    /// (the main child exited by itself): nobody gets it twice.
    AlreadyStopping { sig: i32 },
    /// A stop signal arrived while killing: nothing left to do with it.
    Ignored { sig: i32 },
    /// Every process is gone: exit with the main child's status.
    Exit,
    /// A restart in place began: the stop signal `sig` goes to the app (in the `StopApp` that
    /// follows), with the grace period `grace`.
    RestartBegan { sig: i32, grace: Duration },
    /// A restart signal that changed nothing.
    RestartIgnored(Busy),
}

/// What one transition asks the dispatcher to do, held inline (see [`crate::engine::Actions`]).
pub type Actions = crate::engine::Actions<Action>;

impl State {
    /// The one pending timer, if any, and when it is due.
    pub fn timer(&self) -> Option<(Timer, Mono)> {
        match *self {
            State::Running | State::Respawning { .. } | State::Done => None,
            State::Delaying {
                until, deadline, ..
            } => Some(if until <= deadline {
                (Timer::DelayOver, until)
            } else {
                (Timer::Deadline, deadline)
            }),
            State::Draining { deadline, .. } => Some((Timer::Deadline, deadline)),
            State::Killing { resweep, .. } => Some((Timer::Resweep, resweep)),
        }
    }

    /// When the grace period ends, once it has begun.
    #[cfg(test)]
    pub fn deadline(&self) -> Option<Mono> {
        match *self {
            State::Delaying { deadline, .. } | State::Draining { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// When the stop sequence began (the first stop signal, or the main child's exit).
    pub fn began(&self) -> Option<Mono> {
        match *self {
            State::Delaying { began, .. }
            | State::Draining { began, .. }
            | State::Killing { began, .. }
            | State::Respawning { began } => Some(began),
            State::Running | State::Done => None,
        }
    }

    /// Anything but serving: a stop sequence, or a restart in place, is under way.
    pub fn stopping(&self) -> bool {
        *self != State::Running
    }

    /// A restart in place is under way (it ends in a new generation unless a stop signal comes).
    pub fn restarting(&self) -> bool {
        matches!(
            self,
            State::Draining {
                then: Then::Restart,
                ..
            } | State::Killing {
                then: Then::Restart,
                ..
            } | State::Respawning { .. }
        )
    }

    /// sigward is on its way out: no new generation will start.
    pub fn exiting(&self) -> bool {
        self.stopping() && !self.restarting()
    }

    /// One transition. Every (state, event) pair is answered here, and nowhere else.
    ///
    /// Not inlined: inlined into the dispatcher, the transitions' inline actions and its loop over
    /// them made ~870 bytes more code and more cache lines on the way to the stop signal.
    #[inline(never)]
    pub fn transition(self, event: Event, now: Mono, budget: &Budget) -> (State, Actions) {
        use Action::*;
        use Event::*;
        let grace = budget.grace;
        if let Timer(timer) = event {
            // Only the pending timer, once due, does anything: a stale or early one is ignored.
            match self.timer() {
                Some((pending, due)) if pending == timer && now >= due => {}
                _ => return (self, Actions::None),
            }
        }
        match (self, event) {
            (State::Done, _) => (State::Done, Actions::None),

            // Restart in place: the restart signal, and the end of the old generation.
            (State::Running, Restart { ended: true, .. }) => {
                (self, Actions::One([RestartIgnored(Busy::Ended)]))
            }
            (State::Running, Restart { ended: false, .. }) => {
                let sig = budget.stop_signal;
                let draining = drain_unasked(now, grace, sig, Then::Restart);
                let because = Because::Restart;
                (
                    draining,
                    Actions::Two([RestartBegan { sig, grace }, StopApp { sig, because }]),
                )
            }
            (_, Restart { generation, .. }) if self.restarting() => {
                let busy = Busy::Restarting(generation);
                (self, Actions::One([RestartIgnored(busy)]))
            }
            (_, Restart { .. }) => (self, Actions::One([RestartIgnored(Busy::Stopping)])),
            (State::Respawning { .. }, StopSignal(_)) => {
                // Between the old generation's end and the next one's start: nothing to stop,
                // and nothing starts.
                (State::Done, Actions::One([Exit]))
            }
            (State::Respawning { .. }, Started) => (State::Running, Actions::None),
            (State::Respawning { .. }, StartFailed) => (State::Done, Actions::One([Exit])),
            (State::Respawning { .. }, _) => (self, Actions::None),
            (_, Started | StartFailed) => (self, Actions::None),
            (
                State::Draining {
                    began,
                    then: Then::Restart,
                    ..
                }
                | State::Killing {
                    began,
                    then: Then::Restart,
                    ..
                },
                AllGone,
            ) => (State::Respawning { began }, Actions::None),

            (_, AllGone) => (State::Done, Actions::One([Exit])),
            (
                State::Killing {
                    then: Then::Exit, ..
                },
                TreeUnseen,
            ) => (State::Done, Actions::One([Exit])),
            // A restart in place: the old generation's groups had the deadline's SIGKILL, and
            // nothing more of it can be seen: the next generation starts (as sigward would exit).
            (
                State::Killing {
                    began,
                    then: Then::Restart,
                    ..
                },
                TreeUnseen,
            ) => (State::Respawning { began }, Actions::None),
            (_, TreeUnseen) => (self, Actions::None),

            (State::Running, StopSignal(sig)) => {
                let deadline = now.after(grace);
                if budget.pre_stop_delay.is_zero() {
                    let draining = State::Draining {
                        began: now,
                        deadline,
                        signal: sig,
                        asked: true,
                        then: Then::Exit,
                    };
                    let because = Because::Received;
                    let began = Began {
                        sig,
                        grace,
                        hold: None,
                    };
                    (draining, Actions::Two([began, StopApp { sig, because }]))
                } else {
                    let delaying = State::Delaying {
                        began: now,
                        until: now.after(budget.pre_stop_delay),
                        deadline,
                        held: sig,
                    };
                    let hold = Some(budget.pre_stop_delay);
                    (delaying, Actions::One([Began { sig, grace, hold }]))
                }
            }
            (State::Running, MainExited { others: false }) => (State::Running, Actions::None),
            (State::Running, MainExited { others: true }) => {
                let sig = budget.stop_signal;
                let draining = drain_unasked(now, grace, sig, Then::Exit);
                (draining, Actions::One([StopLeftovers { sig, wait: grace }]))
            }
            (State::Running, Timer(_)) => (self, Actions::None),

            (
                State::Delaying {
                    began,
                    deadline,
                    held,
                    ..
                },
                StopSignal(_) | Timer(self::Timer::DelayOver),
            ) => {
                let because = match event {
                    StopSignal(sig) => Because::DelayCut(sig),
                    _ => Because::DelayOver,
                };
                let draining = drain_held(began, deadline, held);
                (draining, Actions::One([StopApp { sig: held, because }]))
            }
            (State::Delaying { .. }, MainExited { others: false }) => (self, Actions::None),
            (
                State::Delaying {
                    began,
                    deadline,
                    held,
                    ..
                },
                MainExited { others: true },
            ) => {
                // The app ended by itself during the delay: whatever it left behind gets the held
                // signal now (it was told nothing yet), inside the same deadline.
                let draining = drain_held(began, deadline, held);
                let wait = deadline.since(now);
                (draining, Actions::One([StopLeftovers { sig: held, wait }]))
            }
            (State::Delaying { began, .. }, Timer(self::Timer::Deadline)) => {
                // Only reachable when the delay ends after the deadline (validation forbids it):
                // the deadline still wins.
                kill_first(began, now, Then::Exit)
            }
            (State::Delaying { .. }, Timer(_)) => (self, Actions::None),

            (State::Draining { asked: true, .. }, StopSignal(sig)) => {
                (self, Actions::One([ForwardAgain { sig }]))
            }
            (
                State::Draining {
                    began,
                    deadline,
                    signal,
                    asked: false,
                    ..
                },
                StopSignal(sig),
            ) => {
                // The first stop signal from outside, after sigward began stopping by itself (the
                // main child exited, or a restart in place): everything left has had the stop
                // signal already. A restart becomes the real stop, within the same deadline.
                let draining = State::Draining {
                    began,
                    deadline,
                    signal,
                    asked: true,
                    then: Then::Exit,
                };
                (draining, Actions::One([AlreadyStopping { sig }]))
            }
            (
                State::Draining {
                    deadline, signal, ..
                },
                MainExited { others: true },
            ) => {
                let wait = deadline.since(now);
                (self, Actions::One([StopLeftovers { sig: signal, wait }]))
            }
            (State::Draining { .. }, MainExited { others: false }) => (self, Actions::None),
            (State::Draining { began, then, .. }, Timer(self::Timer::Deadline)) => {
                kill_first(began, now, then)
            }
            (State::Draining { .. }, Timer(_)) => (self, Actions::None),

            (State::Killing { began, resweep, .. }, StopSignal(sig)) => {
                // A restart being killed becomes the real stop; the resweep stays as it was.
                let then = Then::Exit;
                let killing = State::Killing {
                    began,
                    resweep,
                    then,
                };
                (killing, Actions::One([Ignored { sig }]))
            }
            (State::Killing { began, then, .. }, MainExited { others: true }) => (
                killing(began, now, then),
                Actions::One([Kill { first: false }]),
            ),
            (State::Killing { .. }, MainExited { others: false }) => (self, Actions::None),
            (State::Killing { began, then, .. }, Timer(self::Timer::Resweep)) => (
                killing(began, now, then),
                Actions::One([Kill { first: false }]),
            ),
            (State::Killing { .. }, Timer(_)) => (self, Actions::None),
        }
    }
}

impl Machine for State {
    type Event = Event;
    type Action = Action;
    type Params = Budget;

    /// Inlined: only the transition itself stays out of line (see [`State::transition`]).
    #[inline]
    fn step(&mut self, event: Event, now: Mono, budget: &Budget) -> Actions {
        let (next, actions) = self.transition(event, now, budget);
        *self = next;
        actions
    }
}

/// A drain that sigward begins itself (a restart in place, leftovers after the main child's
/// exit), not a stop signal from outside: the grace period counts from `now`.
fn drain_unasked(now: Mono, grace: Duration, signal: i32, then: Then) -> State {
    State::Draining {
        began: now,
        deadline: now.after(grace),
        signal,
        asked: false,
        then,
    }
}

/// The drain after a pre-stop delay: the held signal goes out now, in the deadline that the stop
/// signal started.
fn drain_held(began: Mono, deadline: Mono, held: i32) -> State {
    State::Draining {
        began,
        deadline,
        signal: held,
        asked: true,
        then: Then::Exit,
    }
}

fn killing(began: Mono, now: Mono, then: Then) -> State {
    State::Killing {
        began,
        resweep: now.after(RESWEEP),
        then,
    }
}

fn kill_first(began: Mono, now: Mono, then: Then) -> (State, Actions) {
    (
        killing(began, now, then),
        Actions::One([Action::Kill { first: true }]),
    )
}

/// Who has had the stop signal in this stop sequence, so that nobody gets it twice: process
/// groups signalled as a whole, and single processes by (pid, start time) so a reused pid is a
/// different process.
#[derive(Default)]
pub struct Told {
    groups: Vec<i32>,
    /// A set: 100,000 leftovers must not cost PID 1 a quadratic scan in the stop path.
    procs: HashSet<(i32, u64), BuildHasherDefault<PidHasher>>,
}

impl Told {
    pub fn group(&mut self, pgid: i32) {
        if !self.groups.contains(&pgid) {
            self.groups.push(pgid);
        }
    }

    /// A group that is gone (a retired generation): its id may be reused by a new group.
    pub fn forget_group(&mut self, pgid: i32) {
        self.groups.retain(|&g| g != pgid);
    }

    /// One process told by itself (the main process alone, with -c).
    pub fn process(&mut self, pid: i32, start: u64) {
        self.procs.insert((pid, start));
    }

    /// Whether a process (pid, process group, start time) still needs the stop signal; if so it
    /// is counted as told from now on.
    pub fn first_time(&mut self, pid: i32, pgid: i32, start: u64) -> bool {
        !self.groups.contains(&pgid) && self.procs.insert((pid, start))
    }

    pub fn has_group(&self, pgid: i32) -> bool {
        self.groups.contains(&pgid)
    }
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::*;
    use crate::engine::MAX_ACTIONS;
    use proptest::prelude::*;

    const TERM: i32 = libc::SIGTERM;
    const S: u64 = 1_000_000_000;

    fn budget(delay_s: u64) -> Budget {
        Budget {
            grace: Duration::from_secs(10),
            pre_stop_delay: Duration::from_secs(delay_s),
            stop_signal: TERM,
        }
    }

    #[test]
    fn stop_signal_without_delay_drains_at_once() {
        let (s, a) = State::Running.transition(Event::StopSignal(TERM), Mono(S), &budget(0));
        assert_eq!(
            s,
            State::Draining {
                began: Mono(S),
                deadline: Mono(11 * S),
                signal: TERM,
                asked: true,
                then: Then::Exit,
            }
        );
        assert_eq!(a.len(), 2);
        assert!(matches!(
            a[1],
            StopApp {
                sig: TERM,
                because: Because::Received
            }
        ));
        assert_eq!(s.timer(), Some((Timer::Deadline, Mono(11 * S))));
    }

    #[test]
    fn pre_stop_delay_holds_then_delivers_the_first_signal() {
        let b = budget(3);
        let (s, a) = State::Running.transition(Event::StopSignal(libc::SIGINT), Mono(S), &b);
        assert!(matches!(
            s,
            State::Delaying {
                held: libc::SIGINT,
                ..
            }
        ));
        assert!(matches!(a[..], [Began { hold: Some(_), .. }]));
        assert_eq!(s.timer(), Some((Timer::DelayOver, Mono(4 * S))));
        let (s, a) = s.transition(Event::Timer(Timer::DelayOver), Mono(4 * S), &b);
        assert_eq!(
            a,
            vec![StopApp {
                sig: libc::SIGINT,
                because: Because::DelayOver
            }]
        );
        assert_eq!(s.deadline(), Some(Mono(11 * S)));
    }

    #[test]
    fn second_stop_signal_cuts_the_delay_and_sends_the_held_one() {
        let b = budget(3);
        let (s, _) = State::Running.transition(Event::StopSignal(TERM), Mono(S), &b);
        let (s, a) = s.transition(Event::StopSignal(libc::SIGINT), Mono(2 * S), &b);
        assert_eq!(
            a,
            vec![StopApp {
                sig: TERM,
                because: Because::DelayCut(libc::SIGINT)
            }]
        );
        let (_, a) = s.transition(Event::StopSignal(libc::SIGINT), Mono(3 * S), &b);
        assert_eq!(a, vec![ForwardAgain { sig: libc::SIGINT }]);
    }

    #[test]
    fn main_exit_with_leftovers_starts_the_grace_period() {
        let (s, a) =
            State::Running.transition(Event::MainExited { others: true }, Mono(S), &budget(0));
        assert_eq!(s.deadline(), Some(Mono(11 * S)));
        assert_eq!(
            a,
            vec![StopLeftovers {
                sig: TERM,
                wait: Duration::from_secs(10)
            }]
        );
        let (s, a) = s.transition(Event::Timer(Timer::Deadline), Mono(11 * S), &budget(0));
        assert_eq!(a, vec![Kill { first: true }]);
        assert_eq!(s.timer(), Some((Timer::Resweep, Mono(12 * S))));
        let (s, a) = s.transition(Event::AllGone, Mono(12 * S), &budget(0));
        assert_eq!((s, a.to_vec()), (State::Done, vec![Exit]));
    }

    #[test]
    fn main_exit_during_the_delay_tells_leftovers_the_held_signal_within_the_same_deadline() {
        let b = budget(3);
        let (s, _) = State::Running.transition(Event::StopSignal(libc::SIGQUIT), Mono(S), &b);
        let (s, a) = s.transition(Event::MainExited { others: true }, Mono(2 * S), &b);
        assert_eq!(s.deadline(), Some(Mono(11 * S)));
        assert_eq!(
            a,
            vec![StopLeftovers {
                sig: libc::SIGQUIT,
                wait: Duration::from_secs(9)
            }]
        );
    }

    #[test]
    fn a_huge_grace_period_saturates_instead_of_overflowing() {
        let b = Budget {
            grace: Duration::MAX,
            pre_stop_delay: Duration::from_secs(u64::MAX),
            stop_signal: TERM,
        };
        let (s, _) = State::Running.transition(Event::StopSignal(TERM), Mono(u64::MAX - 5), &b);
        assert_eq!(s.deadline(), Some(Mono::NEVER));
        let (s, _) = s.transition(Event::Timer(Timer::DelayOver), Mono::NEVER, &b);
        assert!(matches!(s, State::Draining { .. }));
    }

    #[test]
    fn stale_timers_do_nothing() {
        let b = budget(0);
        for t in [Timer::DelayOver, Timer::Deadline, Timer::Resweep] {
            assert_eq!(
                State::Running.transition(Event::Timer(t), Mono(S), &b).1,
                vec![]
            );
        }
        let (s, _) = State::Running.transition(Event::StopSignal(TERM), Mono(S), &b);
        // A deadline timer that fires early (a clock read before the deadline) kills nobody.
        assert_eq!(
            s.transition(Event::Timer(Timer::Deadline), Mono(2 * S), &b)
                .1,
            vec![]
        );
        assert_eq!(
            s.transition(Event::Timer(Timer::DelayOver), Mono(2 * S), &b)
                .1,
            vec![]
        );
    }

    fn restarting_at(b: &Budget, at: Mono) -> State {
        let (s, a) = State::Running.transition(
            Event::Restart {
                ended: false,
                generation: 1,
            },
            at,
            b,
        );
        assert_eq!(
            a,
            vec![
                RestartBegan {
                    sig: TERM,
                    grace: b.grace
                },
                StopApp {
                    sig: TERM,
                    because: Because::Restart
                }
            ]
        );
        s
    }

    #[test]
    fn a_restart_drains_with_the_stop_signal_and_no_pre_stop_delay_then_starts_again() {
        let b = budget(3);
        let s = restarting_at(&b, Mono(S));
        assert_eq!(
            s,
            State::Draining {
                began: Mono(S),
                deadline: Mono(11 * S),
                signal: TERM,
                asked: false,
                then: Then::Restart,
            },
            "no pre-stop delay: the pod is not going away"
        );
        assert!(s.restarting() && s.stopping() && !s.exiting());
        // The old main process exits, a worker is left: it is told, inside the same deadline.
        let (s, a) = s.transition(Event::MainExited { others: true }, Mono(2 * S), &b);
        assert_eq!(
            a,
            vec![StopLeftovers {
                sig: TERM,
                wait: Duration::from_secs(9)
            }]
        );
        let (s, a) = s.transition(Event::AllGone, Mono(3 * S), &b);
        assert_eq!(
            (s, a.to_vec()),
            (State::Respawning { began: Mono(S) }, vec![])
        );
        assert_eq!(
            s.timer(),
            None,
            "nothing to wait for: the dispatcher starts it"
        );
        let (s, a) = s.transition(Event::Started, Mono(3 * S), &b);
        assert_eq!((s, a.to_vec()), (State::Running, vec![]));
    }

    #[test]
    fn a_restart_kills_stragglers_at_its_deadline_and_starts_again_once_all_are_gone() {
        let b = budget(0);
        let s = restarting_at(&b, Mono(S));
        assert_eq!(
            s.transition(Event::Timer(Timer::Deadline), Mono(10 * S), &b)
                .1,
            vec![]
        );
        let (s, a) = s.transition(Event::Timer(Timer::Deadline), Mono(11 * S), &b);
        assert_eq!(a, vec![Kill { first: true }]);
        assert!(s.restarting());
        let (s, a) = s.transition(Event::Timer(Timer::Resweep), Mono(12 * S), &b);
        assert_eq!(a, vec![Kill { first: false }]);
        let (s, _) = s.transition(Event::AllGone, Mono(12 * S), &b);
        assert_eq!(s, State::Respawning { began: Mono(S) });
    }

    #[test]
    fn a_stop_signal_during_a_restart_becomes_the_real_stop_within_the_same_deadline() {
        let b = budget(3);
        let s = restarting_at(&b, Mono(S));
        let (s, a) = s.transition(Event::StopSignal(libc::SIGINT), Mono(2 * S), &b);
        assert_eq!(
            a,
            vec![AlreadyStopping { sig: libc::SIGINT }],
            "the app already had the stop signal: not again, and no pre-stop delay now"
        );
        assert_eq!(s.deadline(), Some(Mono(11 * S)), "the deadline never moves");
        assert!(s.exiting());
        let (s, a) = s.transition(Event::StopSignal(TERM), Mono(3 * S), &b);
        assert_eq!(
            a,
            vec![ForwardAgain { sig: TERM }],
            "a later one is forwarded"
        );
        let (s, a) = s.transition(Event::AllGone, Mono(4 * S), &b);
        assert_eq!(
            (s, a.to_vec()),
            (State::Done, vec![Exit]),
            "no new generation"
        );

        // While killing: the resweep stays, and the ending is exit.
        let s = restarting_at(&b, Mono(S));
        let (s, _) = s.transition(Event::Timer(Timer::Deadline), Mono(11 * S), &b);
        let (k, a) = s.transition(Event::StopSignal(TERM), Mono(11 * S + 1), &b);
        assert_eq!(a, vec![Ignored { sig: TERM }]);
        assert_eq!(k.timer(), s.timer());
        assert_eq!(
            k.transition(Event::AllGone, Mono(12 * S), &b).0,
            State::Done
        );

        // Between the old generation's end and the next one's start: nothing starts.
        let s = State::Respawning { began: Mono(S) };
        let (s, a) = s.transition(Event::StopSignal(TERM), Mono(12 * S), &b);
        assert_eq!((s, a.to_vec()), (State::Done, vec![Exit]));
    }

    #[test]
    fn a_restart_signal_changes_nothing_while_stopping_restarting_or_after_the_app_ended() {
        let b = budget(3);
        let restart = Event::Restart {
            ended: false,
            generation: 1,
        };
        let ignored = |s: State, busy| {
            assert_eq!(
                s.transition(restart, Mono(2 * S), &b),
                (s, Actions::One([RestartIgnored(busy)]))
            );
        };
        let r = restarting_at(&b, Mono(S));
        ignored(r, Busy::Restarting(1));
        ignored(
            r.transition(Event::Timer(Timer::Deadline), Mono(11 * S), &b)
                .0,
            Busy::Restarting(1),
        );
        ignored(State::Respawning { began: Mono(S) }, Busy::Restarting(1));
        let stopping = State::Running
            .transition(Event::StopSignal(TERM), Mono(S), &b)
            .0;
        ignored(stopping, Busy::Stopping);
        let leftovers = State::Running
            .transition(Event::MainExited { others: true }, Mono(S), &b)
            .0;
        ignored(leftovers, Busy::Stopping);
        assert_eq!(
            State::Running.transition(
                Event::Restart {
                    ended: true,
                    generation: 1
                },
                Mono(S),
                &b
            ),
            (State::Running, Actions::One([RestartIgnored(Busy::Ended)])),
            "the app ended by itself: sigward ends with it"
        );
        assert_eq!(
            State::Done.transition(restart, Mono(S), &b),
            (State::Done, Actions::None)
        );
    }

    #[test]
    fn a_next_generation_that_cannot_start_ends_sigward() {
        let s = State::Respawning { began: Mono(S) };
        let b = budget(0);
        assert_eq!(
            s.transition(Event::StartFailed, Mono(2 * S), &b),
            (State::Done, Actions::One([Exit]))
        );
        // Stale answers elsewhere do nothing.
        for e in [Event::Started, Event::StartFailed] {
            assert_eq!(
                State::Running.transition(e, Mono(S), &b),
                (State::Running, Actions::None)
            );
        }
    }

    /// Every state of the machine (one of each shape, both endings) against every event: no
    /// transition returns more than `MAX_ACTIONS`, and some return exactly that many (the inline
    /// buffer is as small as it can be).
    #[test]
    fn no_transition_returns_more_actions_than_the_inline_buffer_holds() {
        let mut most = 0;
        for delay in [0, 3] {
            let b = budget(delay);
            let mut states = vec![State::Running, State::Done];
            states.push(State::Respawning { began: Mono(S) });
            states.push(State::Delaying {
                began: Mono(S),
                until: Mono(4 * S),
                deadline: Mono(11 * S),
                held: TERM,
            });
            for then in [Then::Exit, Then::Restart] {
                for asked in [false, true] {
                    states.push(State::Draining {
                        began: Mono(S),
                        deadline: Mono(11 * S),
                        signal: TERM,
                        asked,
                        then,
                    });
                }
                states.push(State::Killing {
                    began: Mono(S),
                    resweep: Mono(12 * S),
                    then,
                });
            }
            let mut events = vec![Event::StopSignal(TERM), Event::AllGone];
            events.extend([Event::Started, Event::StartFailed]);
            for b in [false, true] {
                events.push(Event::MainExited { others: b });
                events.push(Event::Restart {
                    ended: b,
                    generation: 1,
                });
            }
            for t in [Timer::DelayOver, Timer::Deadline, Timer::Resweep] {
                events.push(Event::Timer(t));
            }
            for s in states {
                for &e in &events {
                    for now in [Mono(2 * S), Mono(11 * S), Mono(12 * S), Mono::NEVER] {
                        let (_, a) = s.transition(e, now, &b);
                        assert!(a.len() <= MAX_ACTIONS, "{s:?} on {e:?}: {a:?}");
                        most = most.max(a.len());
                    }
                }
            }
        }
        assert_eq!(most, MAX_ACTIONS);
    }

    #[test]
    fn actions_read_as_a_slice_and_iterate_in_order() {
        let two = Actions::Two([Kill { first: true }, Exit]);
        assert_eq!(&two[..], &[Kill { first: true }, Exit]);
        assert_eq!(
            two.into_iter().collect::<Vec<_>>(),
            vec![Kill { first: true }, Exit]
        );
        assert_eq!((&two).into_iter().count(), 2);
        assert_eq!(two, vec![Kill { first: true }, Exit]);
        assert_ne!(two, vec![Kill { first: true }]);
        assert_eq!(Actions::One([Exit]), vec![Exit]);
        assert_eq!(Actions::None, vec![]);
        assert_eq!(Actions::None.into_iter().next(), None);
        assert_eq!(format!("{:?}", Actions::One([Exit])), "[Exit]");
    }

    /// Not as PID 1, with /proc unreadable, the resweep would never find the stragglers nor
    /// see them gone: an unseen tree ends the stop sequence once the deadline's SIGKILL went out,
    /// never before.
    #[test]
    fn an_unseen_tree_ends_the_stop_sequence_at_the_deadline_not_before() {
        let b = budget(0);
        let (s, _) = State::Running.transition(Event::StopSignal(TERM), Mono(0), &b);
        let (s, a) = s.transition(Event::TreeUnseen, Mono(S), &b);
        assert!(matches!(s, State::Draining { .. }), "{s:?}");
        assert_eq!(a.len(), 0, "{a:?}");
        let (s, _) = s.transition(Event::Timer(Timer::Deadline), Mono(30 * S), &b);
        assert!(matches!(s, State::Killing { .. }), "{s:?}");
        let (s, a) = s.transition(Event::TreeUnseen, Mono(30 * S), &b);
        assert_eq!((s, format!("{a:?}")), (State::Done, "[Exit]".to_string()));
    }

    /// A restart in place whose deadline finds /proc unreadable starts the next generation once
    /// the deadline's SIGKILL went out (it resweeped an unseen tree every second for ever); a
    /// stop signal meanwhile makes it sigward's exit, as for any stop.
    #[test]
    fn an_unseen_tree_ends_a_restart_in_place_at_the_deadline_not_before() {
        let b = budget(0);
        let restart = Event::Restart {
            ended: false,
            generation: 1,
        };
        let (s, _) = State::Running.transition(restart, Mono(0), &b);
        let (s, a) = s.transition(Event::TreeUnseen, Mono(S), &b);
        assert!(
            s.restarting() && matches!(s, State::Draining { .. }),
            "{s:?}"
        );
        assert_eq!(a.len(), 0, "{a:?}");
        let (s, _) = s.transition(Event::Timer(Timer::Deadline), Mono(30 * S), &b);
        assert!(matches!(s, State::Killing { .. }), "{s:?}");
        let (unseen, a) = s.transition(Event::TreeUnseen, Mono(30 * S), &b);
        assert_eq!(unseen, State::Respawning { began: Mono(0) });
        assert_eq!(a.len(), 0, "{a:?}");
        let (s, _) = s.transition(Event::StopSignal(TERM), Mono(30 * S), &b);
        let (s, a) = s.transition(Event::TreeUnseen, Mono(30 * S), &b);
        assert_eq!((s, format!("{a:?}")), (State::Done, "[Exit]".to_string()));
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            prop::sample::select(vec![TERM, libc::SIGINT, libc::SIGQUIT])
                .prop_map(Event::StopSignal),
            any::<bool>().prop_map(|others| Event::MainExited { others }),
            Just(Event::AllGone),
            Just(Event::TreeUnseen),
            prop::sample::select(vec![Timer::DelayOver, Timer::Deadline, Timer::Resweep])
                .prop_map(Event::Timer),
            any::<bool>().prop_map(|ended| Event::Restart {
                ended,
                generation: 1
            }),
            Just(Event::Started),
            Just(Event::StartFailed),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The invariants of the stop sequence over any event sequence at any pace, restarts in
        /// place included: each restart's drain is a stop sequence of its own.
        #[test]
        fn every_event_sequence_keeps_the_stop_rules(
            delay in 0u64..5,
            grace in 1u64..20,
            start in 0u64..u64::MAX / 2,
            events in prop::collection::vec((arb_event(), 0u64..4 * S, any::<bool>()), 0..40),
        ) {
            let b = Budget {
                grace: Duration::from_secs(grace + delay),
                pre_stop_delay: Duration::from_secs(delay),
                stop_signal: TERM,
            };
            let mut state = State::Running;
            let mut now = Mono(start);
            // Per stop sequence (a restart's drain is one): reset when a new generation runs.
            let mut deadline: Option<Mono> = None;
            let mut stop_apps = 0;
            let mut told = false;
            let mut received = false;
            let mut main_exited = false;
            // For the whole run.
            let mut exits = 0;
            let mut stop_received = false;
            for (event, step, at_timer) in events {
                // Time only moves forward; sometimes straight to the pending timer.
                now = match (at_timer, state.timer()) {
                    (true, Some((_, t))) if t > now => t,
                    _ => now.after(Duration::from_nanos(step)),
                };
                let event = match event {
                    // Each generation's main child exits once.
                    Event::MainExited { .. } if main_exited => Event::Timer(Timer::Resweep),
                    Event::MainExited { others } => { main_exited = true; Event::MainExited { others } }
                    Event::Restart { .. } => Event::Restart { ended: main_exited, generation: 1 },
                    // A timer event is the due timer (or a stale one, which must do nothing).
                    e => e,
                };
                let before = state;
                let (next, actions) = state.transition(event, now, &b);
                let received_now = matches!(event, Event::StopSignal(_));
                // The deadline, once set, never moves within a stop sequence.
                if let (Some(d), Some(n)) = (deadline, next.deadline()) {
                    prop_assert_eq!(d, n, "deadline moved: {:?} -> {:?}", before, next);
                }
                if deadline.is_none() {
                    deadline = next.deadline();
                }
                prop_assert!(actions.len() <= MAX_ACTIONS, "{:?}", actions);
                for a in &actions {
                    match a {
                        StopApp { .. } => { stop_apps += 1; told = true }
                        StopLeftovers { .. } => told = true,
                        Kill { .. } => {
                            let d = deadline.expect("kill without a deadline");
                            prop_assert!(now >= d, "SIGKILL at {:?} before the deadline {:?}", now, d);
                        }
                        ForwardAgain { .. } => {
                            prop_assert!(matches!(event, Event::StopSignal(_)));
                            prop_assert!(told, "forwarded again before any stop signal went out");
                            prop_assert!(received, "forwarded again, but no stop signal came before");
                        }
                        RestartBegan { .. } => {
                            prop_assert_eq!(before, State::Running);
                            prop_assert!(!stop_received, "a restart after a stop signal");
                        }
                        Exit => exits += 1,
                        _ => {}
                    }
                }
                // Stale timers, stale start answers and anything after Done change nothing.
                let stale = matches!(event, Event::Timer(t) if before.timer().map(|p| p.0) != Some(t))
                    || (matches!(event, Event::Started | Event::StartFailed)
                        && !matches!(before, State::Respawning { .. }));
                if matches!(before, State::Done) || stale {
                    prop_assert!(actions.is_empty(), "{:?} in {:?} did {:?}", event, before, actions);
                    prop_assert_eq!(next, before);
                }
                prop_assert!(stop_apps <= 1, "the app got the stop signal {} times in one stop sequence", stop_apps);
                prop_assert!(exits <= 1);
                if event == Event::AllGone && !matches!(before, State::Respawning { .. }) {
                    prop_assert_eq!(next, if before.restarting() { State::Respawning { began: before.began().unwrap() } } else { State::Done });
                }
                // No new generation once a stop signal came: never respawning, never running again.
                stop_received |= received_now && before != State::Done;
                if stop_received {
                    prop_assert!(next.exiting(), "{:?} -> {:?} after a stop signal", before, next);
                }
                // Only a started generation brings back Running.
                if before != State::Running && next == State::Running {
                    let started = matches!(before, State::Respawning { .. }) && event == Event::Started;
                    prop_assert!(started, "{:?} -> Running on {:?}", before, event);
                }
                received |= received_now && before != State::Done;
                if matches!(before, State::Respawning { .. }) && next == State::Running {
                    // A new generation: a new stop sequence.
                    (deadline, stop_apps, told, received, main_exited) = (None, 0, false, false, false);
                }
                state = next;
            }
            // Every path ends: fire the due timers; by the deadline sigward is killing, and once
            // nothing is left it is done, or a restart starts the next generation (or fails to).
            for _ in 0..4 {
                if let Some((t, at)) = state.timer() {
                    now = now.max(at);
                    state = state.transition(Event::Timer(t), now, &b).0;
                }
            }
            prop_assert!(matches!(state, State::Running | State::Killing { .. } | State::Respawning { .. } | State::Done), "{:?}", state);
            // An unseen tree (/proc unreadable) ends it too, once the deadline's SIGKILL went
            // out: sigward exits, or a restart (no stop signal since) starts the next generation.
            if matches!(state, State::Killing { .. }) {
                let unseen = state.transition(Event::TreeUnseen, now, &b).0;
                match unseen {
                    State::Done => prop_assert!(!state.restarting()),
                    State::Respawning { .. } => prop_assert!(state.restarting() && !stop_received),
                    other => prop_assert!(false, "{:?} after TreeUnseen in {:?}", other, state),
                }
            }
            let gone = state.transition(Event::AllGone, now, &b).0;
            match gone {
                State::Done => {}
                State::Respawning { .. } => {
                    prop_assert!(!stop_received);
                    prop_assert_eq!(gone.transition(Event::Started, now, &b).0, State::Running);
                    prop_assert_eq!(gone.transition(Event::StartFailed, now, &b).0, State::Done);
                    prop_assert_eq!(gone.transition(Event::StopSignal(TERM), now, &b).0, State::Done);
                }
                other => prop_assert!(false, "{:?} after AllGone", other),
            }
        }
    }

    /// StopLeftovers calls first_time once per leftover process: 50,000 leftovers (a fork storm
    /// in another session) must not cost PID 1 seconds of CPU inside the stop path.
    #[test]
    fn told_is_not_quadratic_in_the_number_of_leftovers() {
        let mut told = Told::default();
        let start = std::time::Instant::now();
        for pid in 2..50_002 {
            assert!(told.first_time(pid, pid, 7));
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "50,000 leftovers took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn told_counts_each_process_once_and_respects_told_groups() {
        let mut told = Told::default();
        told.group(10);
        assert!(!told.first_time(11, 10, 5), "its group was told");
        assert!(told.first_time(20, 20, 7));
        assert!(!told.first_time(20, 20, 7), "told twice");
        assert!(
            told.first_time(20, 20, 8),
            "a reused pid is another process"
        );
    }
}
