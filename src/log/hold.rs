//! The hold: lines emitted right after a stop signal went out wait (at most [`HOLD_AT_MOST`])
//! until sigward's next wake-up, so that the app runs its handler first.

use super::LOG;
use super::event::Event;
use super::line::PIPE_BUF;
use super::logger::Logger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// [`hold`] is on, and lines are held: readable without the lock.
static HOLDING: AtomicBool = AtomicBool::new(false);
static HELD_ANY: AtomicBool = AtomicBool::new(false);

/// Holds the lines emitted from now on until [`release`]. Right after a stop signal went out,
/// sigward steps aside: an app that shares its CPU (a one-CPU container, or a wake-up placed
/// there) runs its handler as soon as sigward sleeps, not after sigward has written about it.
/// The lines keep their order and their timestamps (rendered now, written later).
pub fn hold() {
    HOLDING.store(true, Ordering::Relaxed);
    LOG.lock().unwrap_or_else(|e| e.into_inner()).holding = true;
}

/// Whether lines are held (see [`hold`]): the dispatcher then sleeps at most [`HOLD_AT_MOST`].
/// A hold that caught no line (all filtered out, a closed sink) costs no wake-up.
pub fn holding() -> bool {
    HELD_ANY.load(Ordering::Relaxed)
}

/// How long lines may be held: they go out at sigward's next wake-up, this long at the latest.
pub const HOLD_AT_MOST: Duration = Duration::from_millis(1);

/// Writes the held lines, and writes each line as it comes again.
pub fn release() {
    if HOLDING.load(Ordering::Relaxed) {
        HOLDING.store(false, Ordering::Relaxed);
        HELD_ANY.store(false, Ordering::Relaxed);
        LOG.lock().unwrap_or_else(|e| e.into_inner()).release();
    }
}

/// Held bytes at most: beyond, the held lines are written at once (a flood of events while
/// holding must not grow memory).
const HELD_MAX: usize = 8 * PIPE_BUF;

impl Logger {
    /// Renders `e` and keeps it for [`Logger::release`].
    pub(super) fn hold_line(&mut self, e: &Event) {
        if !self.render(e, self.max) {
            return;
        }
        if self.held.len() + self.line.buf.len() > HELD_MAX {
            // release() writes through self.line: the new line waits aside meanwhile.
            let line = std::mem::take(&mut self.line.buf);
            self.release();
            self.holding = true;
            self.line.buf = line;
        }
        self.held.extend_from_slice(&self.line.buf);
        self.held_ends.push(self.held.len());
        HELD_ANY.store(true, Ordering::Relaxed);
    }

    /// Writes the held lines in order (see [`hold`]), each as one write, and stops holding.
    pub(super) fn release(&mut self) {
        self.holding = false;
        let held = std::mem::take(&mut self.held);
        let ends = std::mem::take(&mut self.held_ends);
        let mut start = 0;
        for &end in &ends {
            self.line.clear();
            self.line
                .buf
                .extend_from_slice(held.get(start..end).unwrap_or_default());
            start = end;
            self.send_line();
        }
        // Keep the capacity for the next stop.
        self.held = held;
        self.held.clear();
        self.held_ends = ends;
        self.held_ends.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::*;
    use crate::log::{Event, Format, Level};

    #[test]
    fn held_lines_wait_for_release_and_keep_their_order() {
        let (mut log, r) = on_pipe(Level::Debug, Format::Text);
        log.emit(&Event::Exiting { status: 1 });
        log.holding = true;
        log.emit(&Event::Exiting { status: 2 });
        log.emit(&Event::Exiting { status: 3 });
        assert_eq!(
            drain(&r).lines().count(),
            1,
            "only the line before the hold"
        );
        log.release();
        log.emit(&Event::Exiting { status: 4 });
        let out = drain(&r);
        let statuses: Vec<_> = out.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(statuses, ["2", "3", "4"], "{out}");
    }

    #[test]
    fn a_flood_while_holding_is_written_not_grown_without_bound() {
        let (mut log, r) = on_pipe(Level::Debug, Format::Text);
        log.holding = true;
        // ~54 KB: past HELD_MAX (a write-out midway), within the pipe's 64 KiB.
        for status in 0..800 {
            log.emit(&Event::Exiting { status });
            assert!(log.held.len() <= HELD_MAX);
        }
        log.release();
        let out = drain(&r);
        let statuses: Vec<i32> = out
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            statuses,
            (0..800).collect::<Vec<_>>(),
            "each line once, in order"
        );
    }
}
