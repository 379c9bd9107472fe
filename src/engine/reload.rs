//! The `--watch` debounce machine: what to do about changes of the watched paths, and when.
//! Changes within the quiet window coalesce into one action, taken the window after the *last*
//! change (trailing edge) but never later than [`CAP_WINDOWS`] windows after the first, so a path
//! that changes forever still gets its action. Stopping is an input: from then on nothing acts,
//! and a pending change is dropped (and said). While a restart is under way a due action waits,
//! and is taken once when the restart is over; a restart in place instead covers it: its new
//! generation starts after the change and reads it. (The inotify side is `crate::watch`.)

use crate::engine::Machine;
use crate::os::clock::Mono;
use std::time::Duration;

/// A pending action is taken at most this many quiet windows after the first change.
pub const CAP_WINDOWS: u32 = 10;

/// The debounce machine's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// `--watch-debounce`: how long things must stay quiet before the action.
    pub quiet: Duration,
    /// The latest an action is taken after the first change of its window.
    pub cap: Duration,
}

impl Params {
    pub fn new(quiet: Duration) -> Params {
        Params {
            quiet,
            cap: quiet.saturating_mul(CAP_WINDOWS),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    /// Changes came, the first at `first`, the latest at `last`: act when quiet.
    Pending {
        first: Mono,
        last: Mono,
    },
    /// Due while a restart was under way: act once it is over.
    Deferred,
    /// The stop sequence began: nothing acts any more. `said`: a dropped change was logged.
    Stopped {
        said: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Something watched changed.
    Changed,
    /// The machine's timer (see [`State::timer`]); `restarting`: a restart is under way now.
    Timer { restarting: bool },
    /// No restart is under way (any more).
    RestartOver,
    /// The stop sequence began.
    Stopping,
    /// A restart in place started the next generation, after every change so far: it reads
    /// them as it starts (a signal then, before it could handle one, would kill it).
    Restarted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Take the `--on-change` action now.
    Act,
    /// Due, but a restart is under way: acting once it is over.
    Defer,
    /// Changes were pending, or came, during the stop sequence: not acted on.
    Drop,
    /// Changes were pending or deferred when a restart in place started the next generation:
    /// it reads them as it starts, nothing is left to do.
    Covered,
}

impl State {
    /// When the pending action is due: the quiet window after the last change, but no later
    /// than [`Params::cap`] after the first. None unless a change is pending: no idle timer.
    pub fn timer(&self, p: &Params) -> Option<Mono> {
        match *self {
            State::Pending { first, last } => Some(last.after(p.quiet).min(first.after(p.cap))),
            _ => None,
        }
    }

    /// One transition; every event is answered in every state here.
    pub fn transition(self, event: Event, now: Mono, p: &Params) -> (State, Option<Action>) {
        use State::*;
        match (self, event) {
            (Stopped { .. }, Event::Stopping) => (self, None),
            (Idle, Event::Stopping) => (Stopped { said: false }, None),
            (Pending { .. } | Deferred, Event::Stopping) => {
                (Stopped { said: true }, Some(Action::Drop))
            }

            (Stopped { said: false }, Event::Changed) => {
                (Stopped { said: true }, Some(Action::Drop))
            }
            (Stopped { said: true }, Event::Changed) => (self, None),
            (Idle, Event::Changed) => (
                Pending {
                    first: now,
                    last: now,
                },
                None,
            ),
            // The deadline moves with each change, but never past the cap (see `timer`).
            (Pending { first, last }, Event::Changed) => (
                Pending {
                    first,
                    last: last.max(now),
                },
                None,
            ),
            // The deferred action covers this change too.
            (Deferred, Event::Changed) => (self, None),

            (Pending { .. }, Event::Timer { restarting }) => match self.timer(p) {
                Some(due) if now >= due && restarting => (Deferred, Some(Action::Defer)),
                Some(due) if now >= due => (Idle, Some(Action::Act)),
                _ => (self, None),
            },
            (Idle | Deferred | Stopped { .. }, Event::Timer { .. }) => (self, None),

            (Deferred, Event::RestartOver) => (Idle, Some(Action::Act)),
            (Idle | Pending { .. } | Stopped { .. }, Event::RestartOver) => (self, None),

            (Pending { .. } | Deferred, Event::Restarted) => (Idle, Some(Action::Covered)),
            (Idle | Stopped { .. }, Event::Restarted) => (self, None),
        }
    }
}

/// What one transition asks for: at most one action.
pub type Actions = crate::engine::Actions<Action>;

impl Machine for State {
    type Event = Event;
    type Action = Action;
    type Params = Params;

    fn step(&mut self, event: Event, now: Mono, p: &Params) -> Actions {
        let (next, action) = self.transition(event, now, p);
        *self = next;
        action.map_or(Actions::None, |a| Actions::One([a]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: Params = Params {
        quiet: Duration::from_secs(1),
        cap: Duration::from_secs(10),
    };

    fn ms(n: u64) -> Mono {
        Mono(n * 1_000_000)
    }

    /// Runs events at their times; the timer fires exactly when due, before any later event.
    /// Returns every action with its time.
    fn drive(
        events: &[(u64, Event)],
        restarting: impl Fn(u64) -> bool,
    ) -> (State, Vec<(u64, Action)>) {
        let mut s = State::Idle;
        let mut out = Vec::new();
        for &(t, e) in events {
            while let Some(due) = s.timer(&P).filter(|d| *d <= ms(t)) {
                let at = due.0 / 1_000_000;
                let (next, a) = s.transition(
                    Event::Timer {
                        restarting: restarting(at),
                    },
                    due,
                    &P,
                );
                s = next;
                out.extend(a.map(|a| (at, a)));
            }
            let (next, a) = s.transition(e, ms(t), &P);
            s = next;
            out.extend(a.map(|a| (t, a)));
        }
        (s, out)
    }

    #[test]
    fn changes_in_one_quiet_window_make_one_action_a_window_after_the_last() {
        let events: Vec<_> = (0..100).map(|i| (i * 5, Event::Changed)).collect();
        let mut all = events.clone();
        all.push((10_000, Event::RestartOver));
        let (s, acts) = drive(&all, |_| false);
        assert_eq!(acts, vec![(495 + 1000, Action::Act)]);
        assert_eq!(s, State::Idle);
    }

    #[test]
    fn a_path_that_changes_forever_still_gets_its_action_by_the_cap() {
        // A change every 500 ms for 30 s: the quiet window never comes.
        let mut events: Vec<_> = (0..60).map(|i| (i * 500, Event::Changed)).collect();
        events.push((60_000, Event::RestartOver));
        let (_, acts) = drive(&events, |_| false);
        assert_eq!(acts.first(), Some(&(10_000, Action::Act)));
        assert!(
            acts.windows(2).all(|w| w[1].0 - w[0].0 <= 10_500),
            "{acts:?}"
        );
    }

    #[test]
    fn no_timer_unless_a_change_is_pending() {
        assert_eq!(State::Idle.timer(&P), None);
        assert_eq!(State::Deferred.timer(&P), None);
        assert_eq!(State::Stopped { said: false }.timer(&P), None);
    }

    #[test]
    fn during_a_restart_the_action_waits_and_is_taken_once_after() {
        let events = [
            (0, Event::Changed),
            (1500, Event::Changed),
            (1600, Event::Changed),
            (5000, Event::RestartOver),
            (6000, Event::RestartOver),
        ];
        let (s, acts) = drive(&events, |t| t < 5000);
        assert_eq!(acts, vec![(1000, Action::Defer), (5000, Action::Act),]);
        assert_eq!(s, State::Idle);
    }

    #[test]
    fn stopping_drops_what_is_pending_and_nothing_acts_after() {
        let (s, acts) = drive(
            &[
                (0, Event::Changed),
                (100, Event::Stopping),
                (200, Event::Changed),
                (300, Event::Changed),
                (5000, Event::RestartOver),
            ],
            |_| false,
        );
        assert_eq!(acts, vec![(100, Action::Drop)]);
        assert_eq!(s, State::Stopped { said: true });
        // Idle when stopping: the first change after is said once.
        let (_, acts) = drive(
            &[
                (0, Event::Stopping),
                (1, Event::Changed),
                (2, Event::Changed),
            ],
            |_| false,
        );
        assert_eq!(acts, vec![(1, Action::Drop)]);
        // Deferred when stopping: dropped, never taken.
        let (_, acts) = drive(
            &[
                (0, Event::Changed),
                (2000, Event::Stopping),
                (3000, Event::RestartOver),
            ],
            |_| true,
        );
        assert_eq!(acts, vec![(1000, Action::Defer), (2000, Action::Drop)]);
    }

    #[test]
    fn a_restart_in_place_covers_what_changed_before_its_new_generation_started() {
        // Deferred during the drain, pending, or nothing: never an action into the new start.
        let (_, acts) = drive(
            &[
                (0, Event::Changed),
                (2000, Event::Restarted),
                (2001, Event::RestartOver),
            ],
            |_| true,
        );
        assert_eq!(acts, vec![(1000, Action::Defer), (2000, Action::Covered)]);
        let (s, acts) = drive(&[(0, Event::Changed), (500, Event::Restarted)], |_| true);
        assert_eq!((s, acts), (State::Idle, vec![(500, Action::Covered)]));
        assert_eq!(
            State::Idle.transition(Event::Restarted, ms(0), &P),
            (State::Idle, None)
        );
        // A change after the start is acted on as usual.
        let (_, acts) = drive(
            &[
                (0, Event::Restarted),
                (100, Event::Changed),
                (5000, Event::RestartOver),
            ],
            |_| false,
        );
        assert_eq!(acts, vec![(1100, Action::Act)]);
    }

    #[test]
    fn a_timer_that_is_not_due_does_nothing() {
        let s = State::Pending {
            first: ms(0),
            last: ms(0),
        };
        assert_eq!(
            s.transition(Event::Timer { restarting: false }, ms(999), &P),
            (s, None)
        );
    }

    #[test]
    fn no_debounce_acts_on_the_next_turn() {
        let p = Params::new(Duration::ZERO);
        let (s, _) = State::Idle.transition(Event::Changed, ms(5), &p);
        assert_eq!(s.timer(&p), Some(ms(5)));
        assert_eq!(
            s.transition(Event::Timer { restarting: false }, ms(5), &p),
            (State::Idle, Some(Action::Act))
        );
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            6 => Just(Event::Changed),
            1 => Just(Event::RestartOver),
            1 => any::<bool>().prop_map(|restarting| Event::Timer { restarting }),
            1 => Just(Event::Stopping),
            1 => Just(Event::Restarted),
        ]
    }

    proptest! {
        /// Whatever comes in whatever order: never an action after stopping; never an action
        /// before the quiet window or after the cap; the deadline never moves past the cap;
        /// a deferred action is taken exactly once (or dropped by the stop); and every change
        /// ends in an action or a drop.
        #[test]
        fn every_change_ends_in_one_bounded_action(
            steps in proptest::collection::vec((0u64..3000, event(), any::<bool>()), 0..60),
        ) {
            let mut s = State::Idle;
            let mut t = 0u64;
            let mut stopping = false;
            let mut window: Option<(u64, u64)> = None; // first, last change not yet acted on
            let mut deferred = 0u32;
            let mut acts = 0u32;
            let mut changes_since_act = false;
            for (gap, e, restarting) in steps {
                t += gap;
                // The timer fires when due, with whether a restart is under way then.
                while let Some(due) = s.timer(&P).filter(|d| *d <= ms(t)) {
                    let (next, a) = s.transition(Event::Timer { restarting }, due, &P);
                    let at = due.0 / 1_000_000;
                    let (first, last) = window.expect("a timer only while changes are pending");
                    prop_assert!(at >= (last + 1000).min(first + 10_000), "early");
                    prop_assert!(at <= first + 10_000, "past the cap");
                    match a {
                        Some(Action::Act) => {
                            prop_assert!(!restarting && !stopping);
                            acts += 1;
                            window = None;
                            changes_since_act = false;
                        }
                        Some(Action::Defer) => {
                            prop_assert!(restarting);
                            deferred += 1;
                        }
                        other => prop_assert!(false, "{other:?} from the timer"),
                    }
                    s = next;
                }
                if let State::Pending { first, .. } = s {
                    let due = s.timer(&P).unwrap();
                    prop_assert!(due <= first.after(P.cap), "deadline past the cap");
                }
                let (next, a) = s.transition(e, ms(t), &P);
                match (e, a) {
                    (_, Some(Action::Act)) => {
                        prop_assert_eq!(e, Event::RestartOver);
                        prop_assert!(!stopping);
                        prop_assert_eq!(deferred, 1, "acts once per deferral");
                        deferred = 0;
                        acts += 1;
                        window = None;
                        changes_since_act = false;
                    }
                    (Event::Stopping, Some(Action::Drop)) => {
                        prop_assert!(!stopping && changes_since_act);
                        deferred = 0;
                    }
                    (Event::Changed, Some(Action::Drop)) => prop_assert!(stopping),
                    (Event::Restarted, Some(Action::Covered)) => {
                        prop_assert!(!stopping && changes_since_act);
                        deferred = 0;
                        window = None;
                        changes_since_act = false;
                    }
                    (_, None) => {}
                    (e, a) => prop_assert!(false, "{a:?} on {e:?}"),
                }
                match e {
                    Event::Stopping => stopping = true,
                    Event::Changed if !stopping => {
                        changes_since_act = true;
                        if deferred == 0 {
                            window = Some(window.map_or((t, t), |(f, _)| (f, t)));
                        }
                    }
                    _ => {}
                }
                s = next;
                if stopping {
                    prop_assert!(matches!(s, State::Stopped { .. }), "not stopped: {:?}", s);
                }
            }
            // Every path ends: with time passing, no restart and the restart over, nothing waits.
            let later = ms(t + 20_000);
            let (s2, a) = s.transition(Event::Timer { restarting: false }, later, &P);
            let (s3, b) = s2.transition(Event::RestartOver, later, &P);
            prop_assert!(matches!(s3, State::Idle | State::Stopped { .. }), "{s3:?}");
            let acted = [a, b].iter().filter(|a| **a == Some(Action::Act)).count();
            prop_assert!(acted <= 1);
            let _ = acts;
        }
    }
}
