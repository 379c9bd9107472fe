//! The phrases sentences are made of: durations, exit statuses, senders, targets, counts.

use crate::diagnose::Limit;
use crate::os::procs::{Lossy, Proc};
use crate::os::reap::Exit;
use crate::os::signals::Name;
use std::fmt;
use std::time::Duration;

/// At most this many stragglers are named in one log line.
pub(super) const NAMED_STRAGGLERS: usize = 20;

/// A duration as the command line takes it, in the largest units that are exact: `250ms`,
/// `1.5s`, `30s`, `2m`, `1m30s`, `2m3.5s`, `1h30m`, `876000h`. Exact to the nanosecond, as the
/// command line reads it: `0.5ms`, not `0ms` for a grace period it took as more than 0.
pub struct Dur(pub Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if secs == 0 {
            write!(f, "{}", nanos / 1_000_000)?;
            fraction(f, nanos % 1_000_000, 6)?;
            return f.write_str("ms");
        }
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s == 0 && nanos == 0 {
            return Ok(());
        }
        write!(f, "{s}")?;
        fraction(f, nanos, 9)?;
        f.write_str("s")
    }
}

/// `.5`, `.25`, `.005` for `part` of a unit of `10^digits`: without trailing zeros, nothing for 0.
fn fraction(f: &mut fmt::Formatter<'_>, mut part: u32, mut digits: usize) -> fmt::Result {
    if part == 0 {
        return Ok(());
    }
    while part.is_multiple_of(10) {
        part /= 10;
        digits = digits.saturating_sub(1);
    }
    write!(f, ".{part:0digits$}")
}

/// A time measured on the clock (what is left of a grace period) rather than one the user gave:
/// to the millisecond, as its nanoseconds are noise (`59.696s`, not `59.695812345s`). Below a
/// millisecond it stays exact: a wait above 0 is not written `0ms`.
pub(super) fn measured(d: Duration) -> Duration {
    match Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)) {
        whole if whole.is_zero() => d,
        whole => whole,
    }
}

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `status 3` or `signal SIGKILL (status 137)`.
pub(super) struct Status(pub(super) Exit);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Exit::Code(c) => write!(f, "status {c}"),
            Exit::Signal { sig, core } => write!(
                f,
                "signal {} (status {}){}",
                Name(sig),
                self.0.status(),
                if core { ", core dumped" } else { "" }
            ),
        }
    }
}

/// `server (pid 7)`, or `pid 12` when the name is not known.
pub(super) struct Who<'a>(pub(super) Option<&'a [u8]>, pub(super) i32);

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "{} (pid {})", Lossy(name), self.1),
            None => write!(f, "pid {}", self.1),
        }
    }
}

/// `memory limit 64 MiB`, `no memory limit`, `memory limit unknown`.
pub struct MemoryLimit(pub Limit);

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        match self.0 {
            Limit::None => f.write_str("no memory limit"),
            Limit::Unknown => f.write_str("memory limit unknown"),
            Limit::Bytes(b) => match UNITS.iter().find(|(u, _)| b >= *u && b % u == 0) {
                Some((u, name)) => write!(f, "memory limit {} {name}", b / u),
                None => write!(f, "memory limit {b} bytes"),
            },
        }
    }
}

/// A kill(2) target: `process group 5` for -5, `child 5` for 5.
pub(super) struct Target(pub(super) i32);

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.0 < 0 { "process group" } else { "child" };
        write!(f, "{what} {}", self.0.unsigned_abs())
    }
}

/// `SIGTERM`, or what happens when the signal is rewritten to 0.
pub(super) struct MaybeSig(pub(super) Option<i32>);

impl fmt::Display for MaybeSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => Name(s).fmt(f),
            // Not always SIGTERM: whichever stop signal `-S` names first.
            None => f.write_str("nothing (the stop signal is rewritten to 0)"),
        }
    }
}

/// `1 process`, `3 processes`: a count with its noun.
pub(super) struct Count(
    pub(super) usize,
    pub(super) &'static str,
    pub(super) &'static str,
);

/// Who of the leftovers was sent the stop signal now and who had it already: `sent SIGTERM`,
/// `sent SIGTERM to 1, 2 already had it`, `all had SIGTERM already`.
pub(super) struct Told {
    pub(super) sent: usize,
    pub(super) had: usize,
    pub(super) sig: i32,
}

impl fmt::Display for Told {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = Name(self.sig);
        match (self.sent, self.had) {
            (_, 0) => write!(f, "sent {sig}"),
            (0, 1) => write!(f, "it had {sig} already"),
            (0, _) => write!(f, "all had {sig} already"),
            (sent, had) => write!(f, "sent {sig} to {sent}, {had} already had it"),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.0 == 1 { self.1 } else { self.2 };
        write!(f, "{} {noun}", self.0)
    }
}

/// `12 (nginx), 13 (sh) and 4 more`.
pub struct Stragglers<'a>(pub &'a [Proc]);

impl fmt::Display for Stragglers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().take(NAMED_STRAGGLERS).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} ({})", p.pid, p.comm)?;
        }
        if let Some(more) = self
            .0
            .len()
            .checked_sub(NAMED_STRAGGLERS)
            .filter(|&n| n > 0)
        {
            write!(f, " and {more} more")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::*;
    use crate::os::reap::Exit;

    #[test]
    fn sender_is_named_as_it_was_when_the_signal_arrived() {
        let me = std::process::id() as i32;
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let mut from = Sender::pid(me);
        from.name();
        assert_eq!(
            text(&Event::DelayCut {
                sig: libc::SIGINT,
                from
            }),
            format!(
                "sigward: received SIGINT from pid {me} ({}) during the pre-stop delay: ending it now\n",
                comm.trim_end()
            )
        );
    }

    #[test]
    fn a_signal_the_kernel_sent_says_so_the_terminals_keys_name_the_terminal() {
        let line = |sig, code| {
            text(&Event::StopSignal {
                sig,
                from: Sender::new(sig, 0, code),
                grace: Duration::from_secs(1),
            })
        };
        assert_eq!(
            line(libc::SIGINT, libc::SI_KERNEL),
            "sigward: received SIGINT from the terminal: stopping, grace period 1s\n"
        );
        assert_eq!(
            line(libc::SIGTERM, libc::SI_KERNEL),
            "sigward: received SIGTERM from the kernel: stopping, grace period 1s\n"
        );
        assert_eq!(
            line(libc::SIGINT, libc::SI_USER),
            "sigward: received SIGINT from outside the PID namespace (pid 0): stopping, grace period 1s\n"
        );
    }

    #[test]
    fn names_are_rendered_lossily_with_control_characters_escaped() {
        // A comm cut mid-character by the kernel, and one with a newline and an escape.
        let line = text(&Event::ChildExited {
            command: b"\xd0\x9f\xd1\x80\xd0",
            pid: 2,
            exit: Exit::Code(0),
            after: Duration::ZERO,
            quiet: false,
        });
        assert_eq!(
            line,
            "sigward: \u{41f}\u{440}\u{fffd} (pid 2) exited with status 0 after 0 ms\n"
        );
        let stragglers = procs(&[(3, "a\nb\u{1b}[2J")]);
        let line = text(&Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        });
        assert!(line.ends_with(": 3 (a\\x0ab\\x1b[2J)\n"), "{line}");
        let v = json(&Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        });
        assert_eq!(v["stragglers"], "3 (a\\x0ab\\x1b[2J)");
    }

    /// A real backslash is written `\\`, so that a name holding the four characters `a\x0a`
    /// cannot be taken for `a` and an escaped newline (and in JSON it is escaped once more).
    #[test]
    fn a_backslash_in_a_name_is_escaped_so_it_cannot_pass_for_an_escape() {
        let stragglers = procs(&[(3, "a\\x0a"), (4, "a\n")]);
        let killed = Event::StragglersKilled {
            grace: Duration::from_secs(1),
            stragglers: &stragglers,
        };
        let line = text(&killed);
        assert!(line.ends_with(": 3 (a\\\\x0a), 4 (a\\x0a)\n"), "{line}");
        assert_eq!(json(&killed)["stragglers"], "3 (a\\\\x0a), 4 (a\\x0a)");
        let line = text(&Event::ChildExited {
            command: b"C:\\app\\x1b",
            pid: 2,
            exit: Exit::Code(0),
            after: Duration::ZERO,
            quiet: false,
        });
        assert!(
            line.starts_with("sigward: C:\\\\app\\\\x1b (pid 2)"),
            "{line}"
        );
    }

    #[test]
    fn more_than_twenty_stragglers_are_counted_not_named() {
        let many: Vec<(i32, &str)> = (100..125).map(|p| (p, "w")).collect();
        let stragglers = procs(&many);
        let line = text(&Event::StragglersKilled {
            grace: Duration::from_secs(30),
            stragglers: &stragglers,
        });
        assert!(
            line.ends_with("killing 25 stragglers: 100 (w), 101 (w), 102 (w), 103 (w), 104 (w), 105 (w), 106 (w), 107 (w), 108 (w), 109 (w), 110 (w), 111 (w), 112 (w), 113 (w), 114 (w), 115 (w), 116 (w), 117 (w), 118 (w), 119 (w) and 5 more\n"),
            "{line}"
        );
    }

    #[test]
    fn durations_read_as_the_command_line_writes_them() {
        for (ms, shown) in [
            (0, "0ms"),
            (999, "999ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (1250, "1.25s"),
            (1005, "1.005s"),
            (59_000, "59s"),
            (60_000, "1m"),
            (90_000, "1m30s"),
            (123_500, "2m3.5s"),
            (3_600_000, "1h"),
            (3_601_000, "1h1s"),
            (5_400_000, "1h30m"),
            (3_660_250, "1h1m0.25s"),
        ] {
            assert_eq!(Dur(Duration::from_millis(ms)).to_string(), shown, "{ms} ms");
        }
        assert!(!Dur(Duration::MAX).to_string().is_empty());
    }

    /// sigward's longest duration, 100 years, was written `52560000m`, and what was left of it
    /// `3153599999.696s`: in the largest units that are exact, as a person writes them.
    #[test]
    fn long_durations_are_written_in_hours_not_millions_of_minutes() {
        let century = crate::config::MAX_DURATION;
        assert_eq!(Dur(century).to_string(), "876000h");
        let left = century - Duration::from_millis(304);
        assert_eq!(Dur(left).to_string(), "875999h59m59.696s");
    }

    /// The command line takes `-t 0.5ms` as a grace period (more than 0), and `-d 1.0007s -t
    /// 1.0005s` as two different durations: the log and the refusal said `grace period 0ms` and
    /// `pre-stop delay 1s must be shorter than the grace period 1s`.
    #[test]
    fn durations_below_a_millisecond_are_said_not_rounded_away() {
        for (d, shown) in [
            (Duration::from_micros(500), "0.5ms"),
            (Duration::from_micros(900), "0.9ms"),
            (Duration::from_nanos(1), "0.000001ms"),
            (Duration::from_nanos(999_999_999), "999.999999ms"),
            (Duration::from_micros(1_000_500), "1.0005s"),
            (Duration::from_micros(1_500_900), "1.5009s"),
            (Duration::from_nanos(3_600_000_000_001), "1h0.000000001s"),
        ] {
            assert_eq!(Dur(d).to_string(), shown, "{d:?}");
            assert_eq!(crate::config::parse_duration(shown), Ok(d), "{shown}");
        }
    }

    proptest::proptest! {
        /// What the log writes, the command line reads back (to the nanosecond), and no part
        /// of it could be said in a larger unit (no `90m`, no `60s`).
        #[test]
        fn durations_read_back_and_use_the_largest_units(
            ms in 0..=crate::config::MAX_DURATION.as_millis() as u64,
            ns in proptest::prop_oneof![proptest::strategy::Just(0u32), 0..1_000_000u32],
        ) {
            let d = Duration::from_millis(ms) + Duration::from_nanos(ns.into());
            let d = d.min(crate::config::MAX_DURATION);
            let shown = Dur(d).to_string();
            proptest::prop_assert_eq!(crate::config::parse_duration(&shown), Ok(d), "{}", shown);
            let units: Vec<&str> = shown.split(|c: char| c.is_ascii_digit() || c == '.')
                .filter(|u| !u.is_empty()).collect();
            let numbers: Vec<f64> = shown.split(|c: char| c.is_ascii_alphabetic())
                .filter(|n| !n.is_empty()).map(|n| n.parse().unwrap()).collect();
            for (unit, n) in units.iter().zip(&numbers) {
                let limit = match *unit { "ms" => 1000.0, "s" | "m" => 60.0, _ => f64::INFINITY };
                proptest::prop_assert!(*n < limit, "{}", shown);
            }
            // Each unit at most once, largest first.
            let order = ["h", "m", "s", "ms"];
            let at: Vec<usize> = units.iter().filter_map(|u| order.iter().position(|o| o == u)).collect();
            proptest::prop_assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", shown);
        }
    }
}
