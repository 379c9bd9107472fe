//! Restarts: generations starting, taking over, retiring, restarted in place.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Info, Warn};
    match *e {
        Event::RestartIgnored { by, busy } => {
            v.say(
                Warn,
                "restart_ignored",
                format_args!("{by}: restart ignored, {busy}"),
            )?;
            if let Trigger::Signal { sig, .. } = by {
                v.text("signal", &Name(sig));
            }
        }
        Event::Restarting {
            by,
            generation,
            pid,
            current,
            current_pid,
            wait,
        } => {
            v.say(Info, "restart", format_args!(
                "{by}: starting generation {generation} as pid {pid} beside generation {current} (pid {current_pid}); waiting for {wait}"
            ))?;
            v.int("generation", generation.into());
            v.int("pid", pid.into());
        }
        Event::RestartNoNotifySocket { generation, err } => {
            v.say(
                Warn,
                "restart_failed",
                format_args!("cannot make generation {generation}'s notify socket: {err}"),
            )?;
        }
        Event::RestartCannotRun {
            generation,
            err,
            current,
        } => {
            v.say(
                Warn,
                "restart_failed",
                format_args!(
                    "generation {generation} cannot run: {}; generation {current} keeps serving",
                    err.desc()
                ),
            )?;
        }
        Event::RestartCannotStart {
            generation,
            what,
            err,
            current,
        } => {
            v.say(Warn, "restart_failed", format_args!(
                "generation {generation} cannot start: {what}: {err}; generation {current} keeps serving"
            ))?;
        }
        Event::Ready { generation, pid } => {
            v.say(
                Info,
                "ready",
                format_args!("generation {generation} (pid {pid}) is ready"),
            )?;
            v.int("generation", generation.into());
        }
        Event::Promoted {
            generation,
            pid,
            after,
            retiring,
            retiring_pid,
            sig,
            grace,
        } => {
            v.say(Info, "promoted", format_args!(
                "generation {generation} (pid {pid}) ready after {} ms and now serving; stopping generation {retiring} (pid {retiring_pid}) with {}, grace period {}",
                after.as_millis(),
                MaybeSig(sig),
                Dur(grace)
            ))?;
            v.int("generation", generation.into());
            v.int("pid", pid.into());
            v.int("retiring", retiring_pid.into());
        }
        Event::Abandoned {
            generation,
            pid,
            why,
            current,
            current_pid,
        } => {
            v.say(Warn, "restart_abandoned", format_args!(
                "generation {generation} (pid {pid}) abandoned: {why}; generation {current} (pid {current_pid}) keeps serving"
            ))?;
        }
        Event::Retired {
            generation,
            pid,
            exit,
            after,
        } => {
            v.say(
                Info,
                "retired",
                format_args!(
                    "generation {generation} (pid {pid}) exited with {} after {} ms",
                    Status(exit),
                    after.as_millis()
                ),
            )?;
            v.int("generation", generation.into());
            v.int("status", exit.status().into());
        }
        Event::RetiredKilled {
            generation,
            pid,
            grace,
            count,
        } => {
            v.say(Warn, "retired_killed", format_args!(
                "generation {generation} (pid {pid}) did not finish within the grace period of {}: killed {}",
                Dur(grace),
                Count(count, "process", "processes")
            ))?;
            v.int("generation", generation.into());
            v.int("count", int(count));
        }
        Event::StartingExited {
            generation,
            pid,
            exit,
        } => {
            v.say(
                Info,
                "retired",
                format_args!(
                    "generation {generation} (pid {pid}) exited with {} while stopping",
                    Status(exit)
                ),
            )?;
            v.int("generation", generation.into());
            v.int("status", exit.status().into());
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

    #[test]
    fn restart_events_read_as_before() {
        let t = |e| text(&e);
        assert_eq!(
            t(Event::Abandoned {
                generation: 2,
                pid: 9,
                why: Abandon::NotReadyAfter(Duration::from_secs(1)),
                current: 1,
                current_pid: 2
            }),
            "sigward: warning: generation 2 (pid 9) abandoned: it was not ready after 1s; generation 1 (pid 2) keeps serving\n"
        );
        assert_eq!(
            t(Event::Abandoned {
                generation: 2,
                pid: 9,
                why: Abandon::ExitedBeforeReady(Exit::Code(3)),
                current: 1,
                current_pid: 2
            }),
            "sigward: warning: generation 2 (pid 9) abandoned: it exited with status 3 before it was ready; generation 1 (pid 2) keeps serving\n"
        );
        assert_eq!(
            t(Event::Promoted {
                generation: 2,
                pid: 9,
                after: Duration::from_millis(40),
                retiring: 1,
                retiring_pid: 2,
                sig: None,
                grace: Duration::from_secs(90)
            }),
            "sigward: generation 2 (pid 9) ready after 40 ms and now serving; stopping generation 1 (pid 2) with nothing (the stop signal is rewritten to 0), grace period 1m30s\n"
        );
        assert_eq!(
            t(Event::RestartIgnored {
                by: Trigger::Signal {
                    sig: libc::SIGHUP,
                    from: Sender::pid(0)
                },
                busy: Busy::Starting(2)
            }),
            "sigward: warning: received SIGHUP from outside the PID namespace (pid 0): restart ignored, generation 2 is still starting\n"
        );
        assert_eq!(
            t(Event::Restarting {
                by: Trigger::Signal {
                    sig: libc::SIGHUP,
                    from: Sender::pid(0)
                },
                generation: 2,
                pid: 9,
                current: 1,
                current_pid: 2,
                wait: ReadyWait::Notify(Duration::from_secs(60))
            }),
            "sigward: received SIGHUP from outside the PID namespace (pid 0): starting generation 2 as pid 9 beside generation 1 (pid 2); waiting for READY=1, up to 1m\n"
        );
    }
}
