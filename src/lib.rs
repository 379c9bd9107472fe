//! sigward, the library behind the binary (`src/main.rs` is only the C `main`).
//!
//! The rooms, and why they are apart:
//! - [`boot`]: from exec to the dispatcher, and from its end to the exit code.
//! - `engine/`: the reactor waits, the dispatcher carries out, the pure machines decide (the stop
//!   sequence, generations, the `--watch` debounce) with the pure rules (who a signal reaches, job
//!   control, which deaths need explaining). Policy lives there, property-tested.
//! - `os/`: thin wrappers over the kernel (processes in /proc, signals, spawn, reaping, the clock,
//!   the terminal).
//! - `log/`: the event catalogue and how it is written (text or JSON, never blocking PID 1).
//! - [`config`]: flags, `SIGWARD_*` variables and the peers' variables, into one `Config`.
//! - the features, each in its room: `notify/` (NOTIFY_SOCKET), `listen` (held sockets),
//!   `watch` (`--watch`), `diagnose` (why the app died), `termination` (the termination message).

pub mod boot;
pub mod config;
mod diagnose;
mod engine;
mod listen;
mod log;
mod notify;
mod os;
mod termination;
mod watch;
