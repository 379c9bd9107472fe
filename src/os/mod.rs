//! Thin wrappers over the kernel: what a process is (/proc), signals and the signalfd, fork/exec,
//! reaping, the monotonic clock. No policy here: the engine decides, these only carry out.

pub mod clock;
pub mod procs;
pub mod reap;
pub mod signals;
pub mod spawn;
pub mod terminal;
