//! Start-up, exit, and the log's own notice of dropped lines.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Debug, Error, Warn};
    match *e {
        Event::NoSubreaper { err } => {
            v.say(
                Warn,
                "subreaper",
                format_args!("cannot become a child subreaper: {err}; orphans escape to PID 1"),
            )?;
        }
        Event::NoParentDeathSignal => {
            v.say(
                Warn,
                "pdeathsig",
                format_args!("cannot set the parent-death signal"),
            )?;
        }
        Event::ListenFailed { why } => {
            // It names the user's --listen path: escaped like any name.
            v.say(
                Error,
                "listen_failed",
                format_args!("{}", Lossy(why.as_bytes())),
            )?;
        }
        Event::NoSignalfd { err } => {
            v.say(
                Error,
                "start_failed",
                format_args!("cannot create a signalfd: {err}"),
            )?;
        }
        Event::NotifySocketFailed { err } => {
            v.say(
                Error,
                "start_failed",
                format_args!("cannot make a notify socket: {err}"),
            )?;
        }
        Event::ExecFailed { command, err } => {
            v.say(
                Error,
                "exec_failed",
                format_args!("cannot run '{}': {}", Lossy(command), err.desc()),
            )?;
            v.int("errno", err as i64);
        }
        Event::StartFailed { what, err } => {
            v.say(
                Error,
                "start_failed",
                format_args!("cannot start the command: {what}: {err}"),
            )?;
        }
        Event::Started {
            command,
            pid,
            foreground,
            pid1,
        } => {
            v.head(Debug, "started")?;
            let own = if foreground {
                "process group, terminal foreground"
            } else {
                "session"
            };
            v.msg(format_args!(
                "started {} as pid {pid} (own {own}), pid1={pid1}",
                Lossy(command)
            ));
            v.int("pid", pid.into());
        }
        Event::Exiting { status } => {
            v.say(
                Debug,
                "exit",
                format_args!("no process left; exiting with the main child's status {status}"),
            )?;
            v.int("status", status.into());
        }
        Event::LogLinesDropped { count } => {
            v.say(
                Warn,
                "log_dropped",
                format_args!(
                    "{} dropped: stderr was not writable",
                    Count(
                        usize::try_from(count).unwrap_or(usize::MAX),
                        "log line",
                        "log lines"
                    )
                ),
            )?;
            v.int("count", i64::try_from(count).unwrap_or(i64::MAX));
        }
        // Other domains' events: `super::describe` sends none of them here.
        _ => {}
    }
    Some(())
}
