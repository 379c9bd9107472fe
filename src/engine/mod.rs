//! The engine: the reactor waits for events, the dispatcher carries out what the pure machines
//! decide. The machines take (state, event, now) and return what to do; they never touch the OS.

pub mod dispatcher;
pub mod generations;
pub mod reactor;
pub mod stop;
