//! What the app says on its notify socket, and sigward's own NOTIFY_SOCKET.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Info, Warn};
    match *e {
        Event::NotifyRefused {
            sender,
            generation,
            suppressed,
        } => {
            v.say(
                Warn,
                "notify_refused",
                format_args!(
                    "ignored a notify message from pid {sender}: not generation {generation}{}",
                    crate::notify::Suppressed(suppressed)
                ),
            )?;
            v.int("from_pid", sender.into());
            v.int("suppressed", suppressed.min(i64::MAX as u64) as i64);
        }
        Event::UpstreamUnusable { err } => {
            v.say(
                Warn,
                "notify",
                format_args!(
                    "cannot use NOTIFY_SOCKET: {err}; the parent will get no READY=1 from sigward"
                ),
            )?;
        }
        Event::NotifyTruncated { generation, len } => {
            v.say(Warn, "notify_truncated", format_args!(
                "ignored a {len}-byte notify message from generation {generation}: longer than {} bytes",
                crate::notify::MAX_DATAGRAM
            ))?;
        }
        Event::NotifyFailed { generation, err } => {
            v.say(
                Warn,
                "notify",
                format_args!("reading generation {generation}'s notify socket failed: {err}"),
            )?;
        }
        Event::AppStatus { generation, status } => {
            v.say(
                Info,
                "status",
                format_args!("generation {generation} status: {}", Lossy(status)),
            )?;
            v.int("generation", generation.into());
        }
        Event::AppStopping { generation } => {
            v.say(
                Info,
                "stopping",
                format_args!("generation {generation} says it is stopping"),
            )?;
        }
        Event::AppReloading { generation } => {
            v.say(
                Info,
                "reloading",
                format_args!("generation {generation} says it is reloading"),
            )?;
        }
        // Other domains' events: `super::describe` sends none of them here.
        _ => {}
    }
    Some(())
}
