//! The log's state: renders each event, writes it through the sink, counts what it could not
//! write, and holds lines while asked to (see `hold`).

use super::Format;
use super::Level;
use super::event::Event;
use super::json::Json;
use super::line::{Line, PIPE_BUF};
use super::sink::{Sink, Writing};
use super::text::Text;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::time::{Duration, SystemTime};

/// The log's state: where it writes, what it renders, what it could not write.
pub(super) struct Logger {
    pub(super) sink: Sink,
    pub(super) max: Level,
    pub(super) json: bool,
    pub(super) clock: fn() -> SystemTime,
    pub(super) line: Line,
    /// The rest of a line a terminal or socket took only partly: it goes out before anything
    /// else, or the next line would be glued into it.
    pub(super) pending: Vec<u8>,
    /// Lines dropped since the last one written.
    pub(super) dropped: u64,
    /// See [`hold`]: lines rendered and not yet written, back to back, and where each ends.
    pub(super) holding: bool,
    pub(super) held: Vec<u8>,
    pub(super) held_ends: Vec<usize>,
}

impl Logger {
    /// Before `configure`: stderr, written only when poll says there is room.
    pub(super) const UNCONFIGURED: Logger = Logger {
        sink: Sink {
            target: None,
            mode: Writing::PollFirst,
        },
        max: Level::Info,
        json: false,
        clock: SystemTime::now,
        line: Line::new(),
        pending: Vec::new(),
        dropped: 0,
        holding: false,
        held: Vec::new(),
        held_ends: Vec::new(),
    };

    pub(super) fn new(sink: Sink, max: Level, format: Format) -> Logger {
        Logger {
            sink,
            max,
            json: format == Format::Json,
            // Grown once here, not by doubling while the first lines of a stop are written
            // (five reallocs on the stop path, measured with callgrind).
            line: Line {
                buf: Vec::with_capacity(PIPE_BUF),
                cut: false,
            },
            // Sized once here too: holding happens on the stop path.
            held: Vec::with_capacity(2 * PIPE_BUF),
            held_ends: Vec::with_capacity(16),
            ..Logger::UNCONFIGURED
        }
    }

    pub(super) fn emit(&mut self, e: &Event) {
        if self.sink.closed() || e.level() > self.max {
            return;
        }
        if self.holding {
            self.hold_line(e);
            return;
        }
        self.send(e);
    }

    /// Renders `e` and writes it (after the dropped-lines notice, if one is owed).
    pub(super) fn send(&mut self, e: &Event) {
        if self.dropped > 0 {
            // Said whatever the level: the lines it counts were wanted.
            let notice = Event::LogLinesDropped {
                count: self.dropped,
            };
            if !(self.render(&notice, Level::Debug) && self.put()) {
                self.dropped = self.dropped.saturating_add(1);
                return;
            }
            self.dropped = 0;
        }
        if self.render(e, self.max) && !self.put() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Writes the line already in `self.line` (a held one), after the dropped-lines notice.
    pub(super) fn send_line(&mut self) {
        if self.sink.closed() {
            return;
        }
        if self.dropped > 0 {
            let line = std::mem::take(&mut self.line.buf);
            let notice = Event::LogLinesDropped {
                count: self.dropped,
            };
            let said = self.render(&notice, Level::Debug) && self.put();
            self.line.buf = line;
            if !said {
                self.dropped = self.dropped.saturating_add(1);
                return;
            }
            self.dropped = 0;
        }
        if !self.put() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    pub(super) fn finish(&mut self, within: Duration) {
        let give_up = std::time::Instant::now().checked_add(within);
        while !self.sink.closed() && (!self.pending.is_empty() || self.dropped > 0) {
            let left = give_up.map_or(Duration::ZERO, |g| {
                g.saturating_duration_since(std::time::Instant::now())
            });
            if left.is_zero() {
                return;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.sink.fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            if self.dropped > 0 {
                let notice = Event::LogLinesDropped {
                    count: self.dropped,
                };
                if self.render(&notice, Level::Debug) && self.put() {
                    self.dropped = 0;
                }
            } else {
                self.line.clear();
                self.put();
            }
        }
    }

    /// Renders `e` into `self.line`; false if its level is above `max`.
    pub(super) fn render(&mut self, e: &Event, max: Level) -> bool {
        self.line.clear();
        let shown = if self.json {
            let clock = self.clock;
            let mut v = Json {
                line: &mut self.line,
                max,
                clock,
            };
            e.describe(&mut v).is_some()
        } else {
            e.describe(&mut Text {
                line: &mut self.line,
                max,
            })
            .is_some()
        };
        self.line.finish(if self.json { "}" } else { "" });
        shown
    }

    /// Writes the rendered line (after any pending rest): whether it went out, at least in part.
    pub(super) fn put(&mut self) -> bool {
        if !self.pending.is_empty() {
            match self.sink.write(&self.pending) {
                Ok(n) if n >= self.pending.len() => self.pending.clear(),
                Ok(n) => {
                    self.pending.drain(..n);
                    return false;
                }
                Err(e) => return self.failed(e),
            }
        }
        let line = &self.line.buf;
        match self.sink.write(line) {
            Ok(n) => {
                self.pending
                    .extend_from_slice(line.get(n..).unwrap_or_default());
                true
            }
            Err(e) => self.failed(e),
        }
    }

    /// EAGAIN and the like: dropped, try the next line. EPIPE, EBADF: the reader is gone for
    /// good; stop writing (a write to a broken pipe also raises a SIGPIPE each time).
    pub(super) fn failed(&mut self, e: Errno) -> bool {
        // EFBIG: a file at RLIMIT_FSIZE; every further write raises SIGXFSZ at sigward, whose
        // "ignored own signal" line would write again: a busy loop at debug level.
        if matches!(e, Errno::EPIPE | Errno::EBADF | Errno::EFBIG) {
            self.sink.mode = Writing::Closed;
            self.pending.clear();
        }
        false
    }
}
