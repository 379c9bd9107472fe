//! Event log on stderr: `sigward: ...` text lines, or one JSON object per line.
//!
//! Every event is an [`Event`] variant, and `describe` says everything about it in one match
//! arm (one file per domain): level, event name, sentence, fields. Text and JSON are two renderings of that one
//! description, so they cannot disagree, and an arm stops at its level check before anything is
//! formatted, so a disabled event (a forwarded signal at debug level) costs a comparison.
//!
//! Logging must never stop PID 1: a stalled log reader (a full pipe, `kubectl logs` stuck, a
//! terminal held by Ctrl-S) must not make sigward miss a deadline. So the sink never blocks: a
//! pipe or terminal is written through an open file description of sigward's own with
//! O_NONBLOCK (fd 2's description is shared with the app, which must keep blocking writes), a
//! socket with MSG_DONTWAIT. A line that cannot go out now is dropped and counted, and the count
//! is reported before the next line that can. Each line is one write of at most PIPE_BUF bytes,
//! so it is atomic on a pipe and never interleaves with the app's own output.
//!
//! The rooms: `event` (the catalogue), `describe/` (what each event says, by domain), `words`
//! (the phrases sentences share), `text` and `json` (the two renderings of one `line`), `sink`
//! (the non-blocking writer), `logger` (state: dropped lines, the partial rest of a line) and
//! `hold` (lines held for a moment after a stop signal).

mod describe;
mod event;
mod hold;
mod json;
mod line;
mod logger;
mod sink;
#[cfg(test)]
mod testing;
mod text;
mod words;

pub use event::*;
pub use hold::{HOLD_AT_MOST, hold, holding, release};
pub use words::{Dur, Stragglers};

use describe::Sentence;
use logger::Logger;
use sink::Sink;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The configured level, readable without the lock: the fast path of [`emit`].
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static LOG: Mutex<Logger> = Mutex::new(Logger::UNCONFIGURED);

/// Sets level and format, and looks at fd 2 once to choose how to write it without blocking.
/// The log may then hold an fd of its own: see [`held_fd`].
pub fn configure(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    *log = Logger::new(Sink::stderr(), level, format);
}

/// The fd the log writes through when it opened one of its own (a pipe or terminal on stderr).
/// Whoever closes inherited fds must keep it.
pub fn held_fd() -> Option<RawFd> {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).sink.held_fd()
}

/// At exit: one short, bounded try (at most `within`) to write what is still owed — the rest of
/// a line a terminal took only partly, and the "N log lines dropped" notice — since the last
/// lines (stragglers, the exit status) matter most.
pub fn finish(within: Duration) {
    release();
    LOG.lock().unwrap_or_else(|e| e.into_inner()).finish(within);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one event if its level is enabled; never blocks (see the module docs).
pub fn emit(e: &Event) {
    if !enabled(e.level()) {
        return;
    }
    LOG.lock().unwrap_or_else(|e| e.into_inner()).emit(e);
}

/// An event's sentence alone, without prefix or fields, whatever the level (for the termination
/// message, which repeats a few log lines).
pub fn sentence(e: &Event) -> String {
    let mut v = Sentence(String::new());
    let _ = e.describe(&mut v);
    v.0
}
