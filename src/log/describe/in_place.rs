//! Restarts in place (the restart signal without sockets to hand over): the generation is
//! stopped with the stop sequence, then started again.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Error, Info};
    match *e {
        Event::RestartInPlace {
            by,
            generation,
            pid,
            stop,
            grace,
        } => {
            v.say(Info, "restart_in_place", format_args!(
                "{by}: restarting in place: stopping generation {generation} (pid {pid}) with {}, grace period {}",
                MaybeSig(stop),
                Dur(grace)
            ))?;
            if let Trigger::Signal { sig, from } = by {
                v.text("signal", &Name(sig));
                v.int("from_pid", from.pid.into());
            }
            v.int("generation", generation.into());
            v.int("pid", pid.into());
            v.int("grace_ms", ms(grace));
        }
        Event::RestartedInPlace {
            generation,
            pid,
            previous,
            after,
        } => {
            v.say(Info, "restarted", format_args!(
                "generation {generation} started as pid {pid}, {} ms after generation {previous} was told to stop",
                after.as_millis()
            ))?;
            v.int("generation", generation.into());
            v.int("pid", pid.into());
            v.int("after_ms", ms(after));
        }
        Event::RestartInPlaceFailed {
            generation,
            what,
            err,
            status,
        } => {
            v.say(
                Error,
                "restart_failed",
                format_args!(
                    "generation {generation} cannot {what}: {}; exiting with status {status}",
                    err.desc()
                ),
            )?;
            v.int("generation", generation.into());
            v.int("errno", err as i64);
            v.int("status", status.into());
        }
        Event::RestartBecameStop {
            sig,
            from,
            generation,
            told,
        } => {
            v.say(Info, "stop_signal", format_args!(
                "received {} from {} during a restart: stopping instead, generation {} will not start ({})",
                Name(sig),
                from,
                generation.saturating_add(1),
                if told {
                    "everything left already had the stop signal"
                } else {
                    "the stop signal is rewritten to 0: nobody is signalled"
                }
            ))?;
            v.text("signal", &Name(sig));
            v.int("from_pid", from.pid.into());
        }
        // Other domains' events: `super::describe` sends none of them here.
        _ => {}
    }
    Some(())
}
