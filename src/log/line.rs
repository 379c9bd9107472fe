//! One rendered line: at most PIPE_BUF bytes with its newline, so one atomic write on a pipe.

use std::fmt;

/// The marker a cut line or string ends with.
pub(super) const CUT: &str = " [truncated]";
/// One write(2) of at most this many bytes to a pipe is atomic.
pub(super) const PIPE_BUF: usize = libc::PIPE_BUF;
/// Room for a line's text: the marker and the newline always fit after it.
pub(super) const LINE_ROOM: usize = PIPE_BUF - CUT.len() - 1;

/// One rendered line, never longer than PIPE_BUF with its newline. Reused: no allocation per
/// line once it has grown.
pub(super) struct Line {
    pub(super) buf: Vec<u8>,
    pub(super) cut: bool,
}

impl Line {
    pub(super) const fn new() -> Line {
        Line {
            buf: Vec::new(),
            cut: false,
        }
    }

    pub(super) fn clear(&mut self) {
        self.buf.clear();
        self.cut = false;
    }

    /// Ends the line: the marker if it was cut, `close` (JSON's brace) if not, and the newline.
    pub(super) fn finish(&mut self, close: &str) {
        let end = if self.cut { CUT } else { close };
        self.buf.extend_from_slice(end.as_bytes());
        self.buf.push(b'\n');
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_ROOM.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.extend_from_slice(s.as_bytes());
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        self.buf
            .extend_from_slice(s.get(..end).unwrap_or_default().as_bytes());
        self.cut = true;
        Err(fmt::Error)
    }
}
