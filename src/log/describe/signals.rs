//! The wait loop: job control, forwarding, reaping.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Debug, Info, Warn};
    match *e {
        Event::Suspending {
            sig,
            app_stopped,
            pid,
        } => {
            v.head(Debug, "suspending")?;
            if app_stopped {
                v.msg(format_args!(
                    "the app (pid {pid}) stopped on {}: sigward and its own process group stop too until SIGCONT, so the shell sees the job stopped",
                    Name(sig)
                ));
            } else {
                v.msg(format_args!(
                    "received {}: the app (pid {pid}) was stopped with SIGSTOP, and sigward stops too until SIGCONT",
                    Name(sig)
                ));
            }
            v.text("signal", &Name(sig));
            v.int("pid", pid.into());
        }
        Event::Continued { from, foreground } => {
            v.head(Debug, "continued")?;
            match foreground {
                Some(pgid) => v.msg(format_args!(
                    "continued by SIGCONT from {}; the terminal's foreground goes on to the app (process group {pgid})",
                    from
                )),
                None => v.msg(format_args!("continued by SIGCONT from {}", from)),
            }
            v.int("from_pid", from.pid.into());
            if let Some(pgid) = foreground {
                v.int("pgid", pgid.into());
            }
        }
        Event::ForegroundFailed { pgid, err } => {
            v.say(Warn, "foreground", format_args!(
                "cannot give the terminal's foreground to the app (process group {pgid}): {err}; Ctrl-C now reaches sigward, which passes it on"
            ))?;
            v.int("pgid", pgid.into());
        }
        Event::SignalfdFailed { err } => {
            v.say(
                Warn,
                "signalfd",
                format_args!("reading signals failed: {err}"),
            )?;
        }
        Event::PollFailed { err } => {
            v.say(
                Warn,
                "poll",
                format_args!("waiting for signals failed: {err}"),
            )?;
        }
        Event::IgnoredOwnSignal { sig } => {
            v.say(
                Debug,
                "ignored",
                format_args!("ignored {} raised by sigward itself", Name(sig)),
            )?;
        }
        Event::IgnoredWhileKilling { sig } => {
            v.say(
                Debug,
                "ignored",
                format_args!("ignored {}: already killing", Name(sig)),
            )?;
        }
        Event::Forwarded {
            received,
            sent,
            target,
            stopping,
        } => {
            v.head(if stopping { Info } else { Debug }, "forwarded")?;
            if received == sent {
                v.msg(format_args!(
                    "forwarded {} to {}",
                    Name(sent),
                    Target(target)
                ));
            } else {
                v.msg(format_args!(
                    "forwarded {} as {} to {}",
                    Name(received),
                    Name(sent),
                    Target(target)
                ));
            }
            v.text("signal", &Name(sent));
            v.int("pid", target.into());
            if received != sent {
                v.text("received", &Name(received));
            }
        }
        Event::DroppedRewritten { sig } => {
            v.say(
                Debug,
                "dropped",
                format_args!("dropped {} (rewritten to 0)", Name(sig)),
            )?;
        }
        Event::DroppedChildGone { sig } => {
            v.say(
                Debug,
                "dropped",
                format_args!("dropped {} (the child has exited)", Name(sig)),
            )?;
        }
        Event::DroppedNobodyLeft { sig, target } => {
            v.say(
                Debug,
                "dropped",
                format_args!("dropped {}: nobody left in {}", Name(sig), Target(target)),
            )?;
        }
        Event::ForwardFailed { sig, target, err } => {
            v.say(
                Warn,
                "forward",
                format_args!("could not send {} to {}: {err}", Name(sig), Target(target)),
            )?;
        }
        Event::Reaped { pid, exit } => {
            v.say(
                Debug,
                "reaped",
                format_args!("reaped {pid} ({})", Status(exit)),
            )?;
            v.int("pid", pid.into());
        }
        Event::ReapedOrphan { pid, exit } => {
            v.say(
                Warn,
                "reaped",
                format_args!("reaped orphan {pid} ({})", Status(exit)),
            )?;
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
    fn job_control_events_read_plainly() {
        assert_eq!(
            text(&Event::Suspending {
                sig: libc::SIGTSTP,
                app_stopped: true,
                pid: 7
            }),
            "sigward: the app (pid 7) stopped on SIGTSTP: sigward and its own process group stop too until SIGCONT, so the shell sees the job stopped\n"
        );
        assert_eq!(
            text(&Event::Suspending {
                sig: libc::SIGTTIN,
                app_stopped: false,
                pid: 7
            }),
            "sigward: received SIGTTIN: the app (pid 7) was stopped with SIGSTOP, and sigward stops too until SIGCONT\n"
        );
        assert_eq!(
            text(&Event::Continued {
                from: Sender::pid(0),
                foreground: Some(7)
            }),
            "sigward: continued by SIGCONT from outside the PID namespace (pid 0); the terminal's foreground goes on to the app (process group 7)\n"
        );
        assert_eq!(
            text(&Event::Continued {
                from: Sender::pid(0),
                foreground: None
            }),
            "sigward: continued by SIGCONT from outside the PID namespace (pid 0)\n"
        );
        assert_eq!(
            text(&Event::ForegroundFailed {
                pgid: 7,
                err: Errno::EPERM
            }),
            "sigward: warning: cannot give the terminal's foreground to the app (process group 7): EPERM: Operation not permitted; Ctrl-C now reaches sigward, which passes it on\n"
        );
        let v = json(&Event::Suspending {
            sig: libc::SIGTSTP,
            app_stopped: true,
            pid: 7,
        });
        assert_eq!(
            (&v["event"], &v["signal"], &v["pid"]),
            (&"suspending".into(), &"SIGTSTP".into(), &7.into())
        );
        let v = json(&Event::Continued {
            from: Sender::pid(3),
            foreground: Some(7),
        });
        assert_eq!(
            (&v["event"], &v["from_pid"], &v["pgid"]),
            (&"continued".into(), &3.into(), &7.into())
        );
        // Debug level: a shell already says "Stopped"; nothing at the default level.
        for e in [
            Event::Suspending {
                sig: libc::SIGTSTP,
                app_stopped: true,
                pid: 7,
            },
            Event::Continued {
                from: Sender::pid(3),
                foreground: None,
            },
        ] {
            assert_eq!(e.level(), Level::Debug);
        }
    }
}
