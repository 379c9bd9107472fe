//! What each event says: its level, its name, its sentence and its fields, in one match arm per
//! event. The arms live in one file per domain (start-up, signals, stop, generations, in_place,
//! notify, watch, diagnosis), the domains of the comments in [`Event`]; [`Event::describe`]
//! below names which domain each event belongs to. To add an event: a variant in `event.rs`,
//! its domain here, its arm in the domain's file, a sample in `testing.rs`.

mod diagnosis;
mod generations;
mod in_place;
mod notify;
mod signals;
mod start;
mod stop;
mod watch;

pub(super) use super::Level;
pub(super) use super::event::*;
pub(super) use super::words::*;
pub(super) use crate::diagnose::{Cause, Limit};
pub(super) use crate::os::procs::Lossy;
pub(super) use crate::os::signals::Name;
pub(super) use nix::errno::Errno;
use std::fmt::{self, Write as _};

impl Event<'_> {
    pub fn level(&self) -> Level {
        self.meta().0
    }

    pub(super) fn meta(&self) -> (Level, &'static str) {
        let mut m = Meta(Level::Error, "");
        let _ = self.describe(&mut m);
        (m.0, m.1)
    }

    /// The one description of each event. Every arm calls `head` (or `say`, head and sentence)
    /// first and stops when it says no, so a disabled event formats nothing.
    pub(super) fn describe(&self, v: &mut dyn Visit) -> Option<()> {
        use Event as E;
        let domain: fn(&Event, &mut dyn Visit) -> Option<()> = match self {
            E::NoSubreaper { .. }
            | E::NoParentDeathSignal { .. }
            | E::ListenFailed { .. }
            | E::NoSignalfd { .. }
            | E::NotifySocketFailed { .. }
            | E::ExecFailed { .. }
            | E::StartFailed { .. }
            | E::Started { .. }
            | E::Exiting { .. }
            | E::LogLinesDropped { .. } => start::describe,
            E::Suspending { .. }
            | E::Continued { .. }
            | E::ForegroundFailed { .. }
            | E::SignalfdFailed { .. }
            | E::PollFailed { .. }
            | E::IgnoredOwnSignal { .. }
            | E::IgnoredWhileKilling { .. }
            | E::Forwarded { .. }
            | E::DroppedRewritten { .. }
            | E::DroppedChildGone { .. }
            | E::DroppedNobodyLeft { .. }
            | E::ForwardFailed { .. }
            | E::Reaped { .. }
            | E::ReapedOrphan { .. } => signals::describe,
            E::StopSignalAfterExit { .. }
            | E::StopSignal { .. }
            | E::PreStopDelay { .. }
            | E::DelayCut { .. }
            | E::StopSignalAgain { .. }
            | E::DelayOver { .. }
            | E::Leftovers { .. }
            | E::LeftoversUnsignalled { .. }
            | E::TreeUnseen { .. }
            | E::StragglersKilled { .. }
            | E::ChildExited { .. } => stop::describe,
            E::RestartIgnored { .. }
            | E::Restarting { .. }
            | E::RestartNoNotifySocket { .. }
            | E::RestartCannotRun { .. }
            | E::RestartCannotStart { .. }
            | E::Ready { .. }
            | E::Promoted { .. }
            | E::Abandoned { .. }
            | E::Retired { .. }
            | E::RetiredKilled { .. }
            | E::StartingExited { .. } => generations::describe,
            E::RestartInPlace { .. }
            | E::RestartedInPlace { .. }
            | E::RestartInPlaceFailed { .. }
            | E::RestartBecameStop { .. } => in_place::describe,
            E::NotifyRefused { .. }
            | E::UpstreamUnusable { .. }
            | E::NotifyTruncated { .. }
            | E::NotifyFailed { .. }
            | E::AppStatus { .. }
            | E::AppStopping { .. }
            | E::AppReloading { .. } => notify::describe,
            E::WatchWaiting { .. }
            | E::WatchFailed { .. }
            | E::WatchReadFailed { .. }
            | E::ConfigChanged { .. } => watch::describe,
            E::Died { .. } | E::TerminationLog { .. } => diagnosis::describe,
        };
        domain(self, v)
    }
}

/// What [`Event::describe`] tells, in order: head, sentence, then the fields.
pub(super) trait Visit {
    /// None: the event is not to be written, and the describer stops here.
    fn head(&mut self, level: Level, event: &'static str) -> Option<()>;
    fn msg(&mut self, msg: fmt::Arguments<'_>);
    /// `head`, then the sentence if the event is to be written.
    fn say(&mut self, level: Level, event: &'static str, msg: fmt::Arguments<'_>) -> Option<()> {
        self.head(level, event)?;
        self.msg(msg);
        Some(())
    }
    /// The fields below are written only where there are fields (JSON): no-ops elsewhere.
    fn int(&mut self, _key: &'static str, _n: i64) {}
    /// A string field (JSON-escaped); its value is formatted only if it is written.
    fn text(&mut self, _key: &'static str, _value: &dyn fmt::Display) {}
    /// A true/false field.
    fn flag(&mut self, _key: &'static str, _b: bool) {}
}

/// Learns level and name, formats nothing.
pub(super) struct Meta(pub(super) Level, pub(super) &'static str);

impl Visit for Meta {
    fn head(&mut self, level: Level, event: &'static str) -> Option<()> {
        (self.0, self.1) = (level, event);
        None
    }
    fn msg(&mut self, _: fmt::Arguments<'_>) {}
}

/// The sentence only.
pub(super) struct Sentence(pub(super) String);

impl Visit for Sentence {
    fn head(&mut self, _: Level, _: &'static str) -> Option<()> {
        Some(())
    }
    fn msg(&mut self, msg: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::*;
    use crate::os::reap::Exit;

    /// Records what a describer calls after the head.
    struct Refuse(usize);

    impl Visit for Refuse {
        fn head(&mut self, _: Level, _: &'static str) -> Option<()> {
            None
        }
        fn msg(&mut self, _: fmt::Arguments<'_>) {
            self.0 += 1;
        }
        fn int(&mut self, _: &'static str, _: i64) {
            self.0 += 1;
        }
        fn text(&mut self, _: &'static str, _: &dyn fmt::Display) {
            self.0 += 1;
        }
        fn flag(&mut self, _: &'static str, _: bool) {
            self.0 += 1;
        }
    }

    #[test]
    fn a_disabled_event_formats_nothing() {
        let stragglers = procs(&[(2, "probe")]);
        let paths = [b"/etc/x".to_vec()];
        for e in samples(b"x", &stragglers, &paths) {
            let mut v = Refuse(0);
            assert!(e.describe(&mut v).is_none(), "{e:?}");
            assert_eq!(v.0, 0, "{e:?} went on past a refused head");
        }
        let (mut log, r) = on_pipe(Level::Warn, Format::Text);
        log.emit(&Event::Reaped {
            pid: 5,
            exit: Exit::Code(0),
        });
        log.emit(&Event::DelayOver);
        assert_eq!(drain(&r), "");
        log.emit(&Event::ReapedOrphan {
            pid: 5,
            exit: Exit::Code(0),
        });
        assert_eq!(drain(&r), "sigward: warning: reaped orphan 5 (status 0)\n");
    }

    /// Whatever bytes reach an event (a --listen path is the user's, a name is the app's), its
    /// text line is one line with no control character: `--listen 'unix:/x<newline>sigward:
    /// ...'` wrote a second, forged line and a terminal escape as they were.
    #[test]
    fn every_text_line_is_one_line_without_control_characters_whatever_the_bytes() {
        let hostile = b"a\nb\r\x1b[2J\x7f\\x0a\"\xc2\x85\xe2\x80\xa8 z\x00\xff".to_vec();
        let valid = String::from_utf8_lossy(&hostile).into_owned();
        let stragglers = procs(&[(5, "a\nb\u{7f}\\")]);
        let paths = vec![hostile.clone(); 3];
        for long in [&hostile[..], valid.as_bytes()] {
            for e in samples(long, &stragglers, &paths) {
                let line = text(&e);
                let body = line
                    .strip_suffix('\n')
                    .unwrap_or_else(|| panic!("{line:?}"));
                assert!(
                    !body.chars().any(|c| c.is_control()),
                    "{e:?} wrote {line:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any bytes in any event: the text line is one line without control characters, the
        /// JSON line one valid object, both one atomic write.
        #[test]
        fn any_bytes_make_one_line_of_text_and_one_object_of_json(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(b"\\\"\n\x7fx".to_vec())
                ],
                0..3000,
            ),
            comm in proptest::collection::vec(proptest::num::u8::ANY, 0..16),
        ) {
            let stragglers: Vec<Proc> = (0..25).map(|pid| Proc {
                comm: crate::os::procs::Comm::new(&comm),
                ..procs(&[(pid, "")])[0]
            }).collect();
            let paths = vec![bytes.clone(); 4];
            for e in samples(&bytes, &stragglers, &paths) {
                let line = text(&e);
                let body = line.strip_suffix('\n').unwrap_or(&line);
                proptest::prop_assert!(line.len() <= crate::log::line::PIPE_BUF, "{:?}", e);
                proptest::prop_assert!(!body.chars().any(|c| c.is_control()), "{:?}: {:?}", e, line);
                let (mut log, r) = on_pipe(Level::Debug, Format::Json);
                log.emit(&e);
                let line = drain(&r);
                proptest::prop_assert!(line.len() <= crate::log::line::PIPE_BUF, "{:?}", e);
                proptest::prop_assert!(line.ends_with("}\n"), "{:?}", line);
                let v: Result<serde_json::Value, _> = serde_json::from_str(&line);
                proptest::prop_assert!(v.is_ok(), "{:?}", line);
            }
        }
    }

    #[test]
    fn every_event_is_sent_to_the_domain_that_describes_it() {
        let stragglers = procs(&[(2, "probe")]);
        let paths = [b"/etc/x".to_vec()];
        for e in samples(b"x", &stragglers, &paths) {
            assert!(
                !e.meta().1.is_empty(),
                "{e:?}: its domain has no arm for it"
            );
        }
    }
}
