//! The text rendering: `sigward: <sentence>`, or `sigward: warning: <sentence>`.

use super::Level;
use super::describe::Visit;
use super::line::Line;
use std::fmt::{self, Write as _};

/// `sigward: <sentence>` or `sigward: warning: <sentence>`; fields are in the sentence.
pub(super) struct Text<'l> {
    pub(super) line: &'l mut Line,
    pub(super) max: Level,
}

impl Visit for Text<'_> {
    fn head(&mut self, level: Level, _: &'static str) -> Option<()> {
        if level > self.max {
            return None;
        }
        let _ = self.line.write_str(match level {
            Level::Warn => "sigward: warning: ",
            _ => "sigward: ",
        });
        Some(())
    }
    fn msg(&mut self, msg: fmt::Arguments<'_>) {
        let _ = self.line.write_fmt(msg);
    }
}

#[cfg(test)]
mod tests {
    use crate::log::Event;
    use crate::log::line::PIPE_BUF;
    use crate::log::testing::*;

    #[test]
    fn text_lines_longer_than_pipe_buf_are_cut_visibly_and_keep_their_newline() {
        let status = "\u{4e16}".repeat(3000); // 9000 bytes, 3 per character
        let line = text(&Event::AppStatus {
            generation: 1,
            status: status.as_bytes(),
        });
        assert!(line.len() <= PIPE_BUF, "{}", line.len());
        assert!(line.ends_with(" [truncated]\n"), "{line}");
        assert!(line.starts_with("sigward: generation 1 status: \u{4e16}"));
    }
}
