//! Event log on stderr: `sigward: ...` text lines, or one JSON object per line.
//!
//! Each line goes out in a single write(2) so it never interleaves with the app's own output.
//! A failed write (stderr closed, a full pipe) is ignored: logging must never stop PID 1.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicBool = AtomicBool::new(false);

pub fn configure(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(format == Format::Json, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// A structured field of an event. Formatted only when the event is written, so a disabled
/// level costs no allocation.
pub enum Val<'a> {
    Int(i64),
    Str(&'a str),
    /// A signal number, written by name (`SIGTERM`).
    Sig(i32),
}

/// Writes one event if its level is enabled. `msg` is the human sentence; `fields` carry the
/// same facts for machines.
pub fn event(level: Level, event: &str, msg: fmt::Arguments, fields: &[(&str, Val)]) {
    if !enabled(level) {
        return;
    }
    let mut line = String::with_capacity(160);
    if JSON.load(Ordering::Relaxed) {
        let _ = write!(
            line,
            "{{\"ts\":\"{}\",\"level\":\"{}\",\"event\":",
            Timestamp(SystemTime::now()),
            level_name(level)
        );
        json_str(&mut line, event);
        line.push_str(",\"msg\":");
        json_str(&mut line, &msg.to_string());
        for (key, val) in fields {
            line.push(',');
            json_str(&mut line, key);
            line.push(':');
            match val {
                Val::Int(n) => {
                    let _ = write!(line, "{n}");
                }
                Val::Str(s) => json_str(&mut line, s),
                Val::Sig(n) => {
                    let _ = write!(line, "\"{}\"", crate::signals::Name(*n));
                }
            }
        }
        line.push('}');
    } else {
        line.push_str(match level {
            Level::Warn => "sigward: warning: ",
            _ => "sigward: ",
        });
        let _ = line.write_fmt(msg);
    }
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 UTC timestamp with milliseconds, computed without a time-zone database.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = |s| Timestamp(UNIX_EPOCH + Duration::from_millis(s)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_795_272_645_007), "2026-11-21T14:50:45.007Z");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
    }
}
