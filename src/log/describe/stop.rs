//! The stop sequence: stop signal, pre-stop delay, leftovers, stragglers, the main child's exit.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Debug, Info, Warn};
    match *e {
        Event::StopSignalAfterExit { sig, from } => {
            v.say(Info, "stop_signal", format_args!(
                "received {} from {}: already stopping (the main child has exited and every process left has had the stop signal)",
                Name(sig),
                from
            ))?;
            v.text("signal", &Name(sig));
            v.int("from_pid", from.pid.into());
        }
        Event::StopSignal { sig, from, grace } => {
            v.say(
                Info,
                "stop_signal",
                format_args!(
                    "received {} from {}: stopping, grace period {}",
                    Name(sig),
                    from,
                    Dur(grace)
                ),
            )?;
            v.text("signal", &Name(sig));
            v.int("from_pid", from.pid.into());
            v.int("grace_ms", ms(grace));
        }
        Event::PreStopDelay { sig, delay } => {
            v.say(
                Info,
                "pre_stop_delay",
                format_args!(
                    "holding {} for the pre-stop delay of {}; the app keeps serving",
                    Name(sig),
                    Dur(delay)
                ),
            )?;
            v.text("signal", &Name(sig));
            v.int("delay_ms", ms(delay));
        }
        Event::DelayCut { sig, from } => {
            v.say(
                Info,
                "delay_cut",
                format_args!(
                    "received {} from {} during the pre-stop delay: ending it now",
                    Name(sig),
                    from
                ),
            )?;
            v.text("signal", &Name(sig));
            v.int("from_pid", from.pid.into());
        }
        Event::StopSignalAgain { sig, from } => {
            v.say(
                Info,
                "stop_signal_again",
                format_args!(
                    "received {} from {} while draining: forwarding it",
                    Name(sig),
                    from
                ),
            )?;
            v.text("signal", &Name(sig));
            v.int("from_pid", from.pid.into());
        }
        Event::DelayOver => {
            v.say(Info, "delay_over", format_args!("pre-stop delay over"))?;
        }
        Event::Leftovers {
            count,
            sent,
            sig,
            wait,
        } => {
            v.head(Info, "leftovers")?;
            let had = count.saturating_sub(sent);
            v.msg(format_args!(
                "{} left after the main child exited: {}, waiting up to {} for them",
                Count(count, "process", "processes"),
                Told { sent, had, sig },
                // What is left of the grace period, from the clock.
                Dur(measured(wait))
            ));
            v.int("count", int(count));
            v.int("sent", int(sent));
            v.text("signal", &Name(sig));
            v.int("wait_ms", ms(wait));
        }
        Event::TreeUnseen {
            err,
            sig,
            exiting,
            restart,
        } => {
            let (when, then) = match (exiting, restart) {
                (true, false) => (
                    "the grace period is over",
                    "; exiting: any process outside it is neither seen nor waited for",
                ),
                (true, true) => (
                    "the grace period is over",
                    "; starting the next generation: any process outside it is neither seen nor waited for",
                ),
                (false, _) => ("the main child exited", " instead"),
            };
            v.say(Warn, "tree_unseen", format_args!(
                "{when}, but the processes left cannot be listed (/proc: {err}): sent {} to the app's process group{then}",
                Name(sig)
            ))?;
            v.text("signal", &Name(sig));
        }
        Event::LeftoversUnsignalled { count, sig } => {
            v.say(Info, "leftovers", format_args!(
                "{} left after the main child exited; {} is rewritten to 0, so none is signalled",
                Count(count, "process", "processes"),
                Name(sig)
            ))?;
        }
        // Everything was gone at the deadline (dead, not yet reaped): nothing was killed.
        Event::StragglersKilled {
            grace,
            stragglers: [],
        } => {
            v.say(
                Info,
                "stragglers_killed",
                format_args!(
                    "grace period of {} is over: no process was left to kill",
                    Dur(grace)
                ),
            )?;
            v.int("count", 0);
        }
        Event::StragglersKilled { grace, stragglers } => {
            v.say(
                Warn,
                "stragglers_killed",
                format_args!(
                    "grace period of {} is over: killing {}: {}",
                    Dur(grace),
                    Count(stragglers.len(), "straggler", "stragglers"),
                    Stragglers(stragglers)
                ),
            )?;
            v.int("count", int(stragglers.len()));
            v.text("stragglers", &Stragglers(stragglers));
        }
        Event::ChildExited {
            command,
            pid,
            exit,
            after,
            quiet,
        } => {
            v.say(
                if quiet { Debug } else { Info },
                "child_exited",
                format_args!(
                    "{} (pid {pid}) exited with {} after {} ms",
                    Lossy(command),
                    Status(exit),
                    after.as_millis()
                ),
            )?;
            v.int("pid", pid.into());
            v.int("status", exit.status().into());
            v.int("after_ms", ms(after));
        }
        // Other domains' events: `super::describe` sends none of them here.
        _ => {}
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Event;
    use crate::log::testing::*;

    /// What is left of a grace period comes from the clock: its nanoseconds are noise, while a
    /// grace period the user gave (`-t 0.5ms`) is written as given.
    #[test]
    fn the_wait_for_leftovers_is_written_to_the_millisecond() {
        let line = |wait| {
            text(&Event::Leftovers {
                count: 1,
                sent: 1,
                sig: libc::SIGTERM,
                wait,
            })
        };
        let waiting = |shown: &str| {
            format!(
                "sigward: 1 process left after the main child exited: sent SIGTERM, waiting up to {shown} for them\n"
            )
        };
        assert_eq!(
            line(Duration::from_nanos(59_695_812_345)),
            waiting("59.695s")
        );
        assert_eq!(line(Duration::from_micros(500)), waiting("0.5ms"));
        assert_eq!(line(Duration::from_secs(25)), waiting("25s"));
    }

    /// At the deadline everything may be gone already (the app died of the stop signal just
    /// then, not yet reaped): that was a warning `killing 0 stragglers: ` with nothing after it.
    #[test]
    fn a_deadline_that_finds_nothing_left_says_so_without_a_warning() {
        let e = Event::StragglersKilled {
            grace: Duration::from_millis(500),
            stragglers: &[],
        };
        assert_eq!(
            text(&e),
            "sigward: grace period of 500ms is over: no process was left to kill\n"
        );
        let v = json(&e);
        assert_eq!((&v["level"], &v["count"]), (&"info".into(), &0.into()));
        assert!(v.get("stragglers").is_none(), "{v}");
    }

    #[test]
    fn stop_sequence_events_read_as_before() {
        let t = |e| text(&e);
        assert_eq!(
            t(Event::StopSignal {
                sig: libc::SIGTERM,
                from: Sender::pid(0),
                grace: Duration::from_secs(1)
            }),
            "sigward: received SIGTERM from outside the PID namespace (pid 0): stopping, grace period 1s\n"
        );
        assert_eq!(
            t(Event::PreStopDelay {
                sig: libc::SIGTERM,
                delay: Duration::from_millis(200)
            }),
            "sigward: holding SIGTERM for the pre-stop delay of 200ms; the app keeps serving\n"
        );
        assert_eq!(t(Event::DelayOver), "sigward: pre-stop delay over\n");
        assert_eq!(
            t(Event::Forwarded {
                received: libc::SIGTERM,
                sent: libc::SIGTERM,
                target: -2,
                stopping: true
            }),
            "sigward: forwarded SIGTERM to process group 2\n"
        );
        assert_eq!(
            t(Event::Forwarded {
                received: libc::SIGTERM,
                sent: libc::SIGQUIT,
                target: 7,
                stopping: false
            }),
            "sigward: forwarded SIGTERM as SIGQUIT to child 7\n"
        );
        let stragglers = procs(&[(2, "probe")]);
        assert_eq!(
            t(Event::StragglersKilled {
                grace: Duration::from_secs(1),
                stragglers: &stragglers
            }),
            "sigward: warning: grace period of 1s is over: killing 1 straggler: 2 (probe)\n"
        );
        assert_eq!(
            t(Event::ChildExited {
                command: b"probe",
                pid: 2,
                exit: Exit::Signal {
                    sig: libc::SIGKILL,
                    core: false,
                },
                after: Duration::from_millis(1203),
                quiet: false,
            }),
            "sigward: probe (pid 2) exited with signal SIGKILL (status 137) after 1203 ms\n"
        );
        assert_eq!(
            t(Event::Leftovers {
                count: 1,
                sent: 1,
                sig: libc::SIGTERM,
                wait: Duration::from_millis(19_500)
            }),
            "sigward: 1 process left after the main child exited: sent SIGTERM, waiting up to 19.5s for them\n"
        );
        // Only those sent it now are said to be sent it: the others had it with their group.
        let told = |count, sent| {
            t(Event::Leftovers {
                count,
                sent,
                sig: libc::SIGTERM,
                wait: Duration::from_secs(2),
            })
        };
        assert_eq!(
            told(3, 1),
            "sigward: 3 processes left after the main child exited: sent SIGTERM to 1, 2 already had it, waiting up to 2s for them\n"
        );
        assert_eq!(
            told(1, 0),
            "sigward: 1 process left after the main child exited: it had SIGTERM already, waiting up to 2s for them\n"
        );
        assert_eq!(
            told(2, 0),
            "sigward: 2 processes left after the main child exited: all had SIGTERM already, waiting up to 2s for them\n"
        );
        assert_eq!(
            t(Event::ExecFailed {
                command: b"/no/such/app",
                err: Errno::ENOENT
            }),
            "sigward: cannot run '/no/such/app': No such file or directory\n"
        );
    }
}
