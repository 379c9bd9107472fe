//! The engine: the reactor waits for events, the dispatcher carries out what the pure machines
//! decide. Every machine has one shape, [`Machine`]: `step(&mut self, event, now)` returns what
//! to do as inline [`Actions`]; none touches the OS, so each is unit- and property-tested.

pub mod deaths;
pub mod dispatcher;
mod effects;
pub mod generations;
pub mod jobs;
mod notified;
pub mod reach;
pub mod reactor;
pub mod reload;
mod restarts;
pub mod stop;
mod stopping;

use crate::os::clock::Mono;

/// One shape for every machine: an event at `now` in, what to do out, in order.
pub trait Machine {
    type Event: Copy;
    type Action: Copy;
    /// What the machine is configured with (the stop budget, the restart parameters, ...).
    type Params;
    /// One transition. Every event is answered in every state.
    fn step(&mut self, event: Self::Event, now: Mono, p: &Self::Params) -> Actions<Self::Action>;
}

/// Why a restart (or a deferred `--watch` action) changed nothing now: one type for every
/// machine, displayed by the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// The stop sequence is under way.
    Stopping,
    /// Generation n is still starting.
    Starting(u32),
    /// Generation n is still draining (it was replaced).
    Draining(u32),
    /// Generation n is being restarted in place.
    Restarting(u32),
    /// The app has exited: sigward ends with it.
    Ended,
}

/// The most actions one transition of any machine returns.
pub const MAX_ACTIONS: usize = 2;

/// What one transition asks for, in order: none, one or two actions, held inline. The stop path
/// allocates nothing between the signal's arrival and its delivery, and there is no third slot to
/// overflow: a transition that needed one would not compile.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Actions<A> {
    None,
    One([A; 1]),
    Two([A; MAX_ACTIONS]),
}

impl<A> std::ops::Deref for Actions<A> {
    type Target = [A];

    fn deref(&self) -> &[A] {
        match self {
            Actions::None => &[],
            Actions::One(a) => a,
            Actions::Two(a) => a,
        }
    }
}

impl<'a, A> IntoIterator for &'a Actions<A> {
    type Item = &'a A;
    type IntoIter = std::slice::Iter<'a, A>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<A: Copy> IntoIterator for Actions<A> {
    type Item = A;
    type IntoIter = ActionsIter<A>;

    fn into_iter(self) -> ActionsIter<A> {
        ActionsIter {
            actions: self,
            next: 0,
        }
    }
}

/// The actions of one transition, by value.
pub struct ActionsIter<A> {
    actions: Actions<A>,
    next: usize,
}

impl<A: Copy> Iterator for ActionsIter<A> {
    type Item = A;

    fn next(&mut self) -> Option<A> {
        let a = self.actions.get(self.next).copied()?;
        self.next = self.next.saturating_add(1);
        Some(a)
    }
}

impl<A: std::fmt::Debug> std::fmt::Debug for Actions<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<A: PartialEq> PartialEq<Vec<A>> for Actions<A> {
    fn eq(&self, other: &Vec<A>) -> bool {
        self[..] == other[..]
    }
}
