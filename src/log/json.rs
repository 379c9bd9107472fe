//! The JSON rendering: one object per line, the same facts as the text line plus fields.

use super::Level;
use super::describe::Visit;
use super::line::{CUT, Line};
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

/// `{"ts":...,"level":...,"event":...,"msg":...,<fields>}` (the closing brace is the caller's).
pub(super) struct Json<'l> {
    pub(super) line: &'l mut Line,
    pub(super) max: Level,
    pub(super) clock: fn() -> SystemTime,
}

/// The longest a JSON string value may be, escaped: with the fixed parts, three long strings
/// (msg and two fields) still fit in one PIPE_BUF write.
pub(super) const JSON_MSG_MAX: usize = 2048;
pub(super) const JSON_FIELD_MAX: usize = 1024;

impl Visit for Json<'_> {
    fn head(&mut self, level: Level, event: &'static str) -> Option<()> {
        if level > self.max {
            return None;
        }
        let _ = write!(
            self.line,
            "{{\"ts\":\"{}\",\"level\":\"{}\",\"event\":\"{event}\"",
            Timestamp((self.clock)()),
            level_name(level)
        );
        Some(())
    }
    fn msg(&mut self, msg: fmt::Arguments<'_>) {
        json_field(self.line, "msg", &msg, JSON_MSG_MAX);
    }
    fn int(&mut self, key: &'static str, n: i64) {
        let _ = write!(self.line, ",\"{key}\":{n}");
    }
    fn text(&mut self, key: &'static str, value: &dyn fmt::Display) {
        json_field(self.line, key, value, JSON_FIELD_MAX);
    }
    fn flag(&mut self, key: &'static str, b: bool) {
        let _ = write!(self.line, ",\"{key}\":{b}");
    }
}

pub(super) fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
    }
}

/// `,"key":"value"`, the value escaped and cut after `max` bytes. Keys are plain ASCII literals.
pub(super) fn json_field(line: &mut Line, key: &str, value: &dyn fmt::Display, max: usize) {
    let _ = write!(line, ",\"{key}\":\"");
    let mut s = JsonStr {
        line,
        left: max,
        cut: false,
    };
    let _ = write!(s, "{value}");
    if s.cut {
        let _ = s.line.write_str(CUT);
    }
    let _ = line.write_str("\"");
}

/// Escapes what it is given into a JSON string's inside, up to a budget of bytes.
pub(super) struct JsonStr<'l> {
    pub(super) line: &'l mut Line,
    pub(super) left: usize,
    pub(super) cut: bool,
}

impl fmt::Write for JsonStr<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut utf8 = [0u8; 4];
            // The escaped form, or None for a control character written as \u00XX.
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                c if u32::from(c) < 0x20 => None,
                c => Some(c.encode_utf8(&mut utf8)),
            };
            let len = esc.map_or(6, str::len);
            if len > self.left {
                self.cut = true;
                return Err(fmt::Error); // stops the formatting: the rest is not wanted
            }
            self.left -= len;
            match esc {
                Some(esc) => self.line.write_str(esc)?,
                None => write!(self.line, "\\u{:04x}", u32::from(c))?,
            }
        }
        Ok(())
    }
}

/// RFC 3339 UTC timestamp with milliseconds, computed without a time-zone database.
pub(super) struct Timestamp(pub(super) SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        // Seconds past i64 are ~292 billion years away; clamp rather than wrap.
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
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
    use crate::log::line::PIPE_BUF;
    use crate::log::testing::*;

    #[test]
    fn json_carries_the_same_facts_with_todays_field_names() {
        let v = json(&Event::StopSignal {
            sig: libc::SIGTERM,
            from: Sender::pid(0),
            grace: Duration::from_millis(1500),
        });
        assert_eq!(v["ts"], "2026-11-21T14:50:45.007Z");
        assert_eq!(v["level"], "info");
        assert_eq!(v["event"], "stop_signal");
        assert_eq!(
            v["msg"],
            "received SIGTERM from outside the PID namespace (pid 0): stopping, grace period 1.5s"
        );
        assert_eq!(v["signal"], "SIGTERM");
        assert_eq!(v["from_pid"], 0);
        assert_eq!(v["grace_ms"], 1500);

        let v = json(&Event::Forwarded {
            received: libc::SIGTERM,
            sent: libc::SIGQUIT,
            target: -2,
            stopping: true,
        });
        assert_eq!(v["event"], "forwarded");
        assert_eq!(v["signal"], "SIGQUIT");
        assert_eq!(v["received"], "SIGTERM");
        assert_eq!(v["pid"], -2);

        let stragglers = procs(&[(2, "probe"), (3, "sh")]);
        let v = json(&Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        });
        assert_eq!(v["level"], "warn");
        assert_eq!(v["count"], 2);
        assert_eq!(v["stragglers"], "2 (probe), 3 (sh)");

        let v = json(&Event::ChildExited {
            command: b"app",
            pid: 2,
            exit: Exit::Code(3),
            after: Duration::from_millis(12),
            quiet: false,
        });
        assert_eq!(
            (&v["pid"], &v["status"], &v["after_ms"]),
            (&2.into(), &3.into(), &12.into())
        );
    }

    #[test]
    fn every_event_is_one_line_of_valid_json_even_with_huge_hostile_names() {
        // 4000 control characters: each is 4 bytes as \xNN, and 5 once JSON-escaped.
        let hostile = vec![0x1bu8; 4000];
        let names: Vec<(i32, String)> = (0..30).map(|i| (i, "\u{1b}".repeat(15))).collect();
        let names: Vec<(i32, &str)> = names.iter().map(|(p, s)| (*p, s.as_str())).collect();
        let stragglers = procs(&names);
        for long in [
            &b"short"[..],
            &hostile,
            &[b'"'; 5000],
            "\u{4e16}".repeat(2000).as_bytes(),
        ] {
            let paths = vec![long.to_vec(); 8];
            for e in samples(long, &stragglers, &paths) {
                let (mut log, r) = on_pipe(Level::Debug, Format::Json);
                log.emit(&e);
                let line = drain(&r);
                assert!(line.len() <= PIPE_BUF, "{} bytes: {e:?}", line.len());
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
                assert_eq!(v["event"], e.meta().1);
                assert_eq!(v["level"], level_name(e.level()));
                let msg = v["msg"].as_str().unwrap();
                assert!(!msg.is_empty());
                // The sentence is the text line's, unless one of them was cut.
                let t = text(&e);
                if !msg.ends_with(CUT) && !t.ends_with(&format!("{CUT}\n")) {
                    let prefix = if e.level() == Level::Warn {
                        "sigward: warning: "
                    } else {
                        "sigward: "
                    };
                    assert_eq!(t, format!("{prefix}{msg}\n"));
                }
            }
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut line = Line::new();
        json_field(&mut line, "k", &"a\"b\\c\nd\u{1}é", 100);
        assert_eq!(
            String::from_utf8(line.buf).unwrap(),
            r#","k":"a\"b\\c\nd\u0001é""#
        );
        let mut line = Line::new();
        json_field(&mut line, "k", &"\"\"\"", 5);
        assert_eq!(
            String::from_utf8(line.buf).unwrap(),
            r#","k":"\"\" [truncated]""#
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = |s| Timestamp(UNIX_EPOCH + Duration::from_millis(s)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_795_272_645_007), "2026-11-21T14:50:45.007Z");
        // Far future: no overflow.
        let _ = Timestamp(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)).to_string();
    }
}
