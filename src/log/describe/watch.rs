//! Configuration reloads (--watch).

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Error, Info, Warn};
    match *e {
        Event::WatchWaiting { path, dir } => {
            v.say(
                Info,
                "watch_waiting",
                format_args!(
                    "{} does not exist yet: waiting for it (watching {})",
                    Lossy(path),
                    Lossy(dir)
                ),
            )?;
            v.text("path", &Lossy(path));
        }
        Event::WatchFailed { path, err, start } => {
            v.head(if start { Error } else { Warn }, "watch_failed")?;
            // The kernel's words for its inotify limits say nothing of inotify.
            let limit = match err {
                Errno::ENOSPC => " (no inotify watches left: fs.inotify.max_user_watches)",
                Errno::EMFILE => " (no inotify instances left: fs.inotify.max_user_instances)",
                _ => "",
            };
            if start {
                v.msg(format_args!("cannot watch {}: {err}{limit}", Lossy(path)));
            } else {
                v.msg(format_args!(
                    "cannot watch {} any more: {err}{limit}; its changes go unseen",
                    Lossy(path)
                ));
            }
            v.text("path", &Lossy(path));
            v.int("errno", err as i64);
        }
        Event::WatchReadFailed { err } => {
            v.say(
                Warn,
                "watch_failed",
                format_args!("reading watch events failed: {err}"),
            )?;
        }
        Event::ConfigChanged { changed, then } => {
            config_changed(v, changed, then)?;
            v.text("paths", &changed);
            v.text(
                "action",
                &match then {
                    Reload::Signalled { .. } => "signal",
                    Reload::SignalFailed { .. } => "signal_failed",
                    Reload::Restart => "restart",
                    Reload::Deferred(_) => "deferred",
                    Reload::Dropped => "dropped",
                    Reload::Covered(_) => "covered",
                },
            );
            if let Reload::Signalled { sig, target } | Reload::SignalFailed { sig, target, .. } =
                then
            {
                v.text("signal", &Name(sig));
                v.int("pid", target.into());
            }
        }
        // Other domains' events: `super::describe` sends none of them here.
        _ => {}
    }
    Some(())
}

/// A configuration change's sentence: what changed, and what sigward does about it.
fn config_changed(v: &mut dyn Visit, changed: Changed<'_>, then: Reload) -> Option<()> {
    use Level::{Info, Warn};
    let level = match then {
        Reload::SignalFailed { .. } => Warn,
        _ => Info,
    };
    v.head(level, "config_changed")?;
    match then {
        Reload::Signalled { sig, target } => v.msg(format_args!(
            "config changed ({changed}): sent {} to {}",
            Name(sig),
            Target(target)
        )),
        Reload::SignalFailed { sig, target, err } => v.msg(format_args!(
            "config changed ({changed}): could not send {} to {}: {err}",
            Name(sig),
            Target(target)
        )),
        Reload::Restart => v.msg(format_args!(
            "config changed ({changed}): restarting the app"
        )),
        Reload::Deferred(busy) => v.msg(format_args!(
            "config changed ({changed}): {busy}; acting once the restart is over"
        )),
        Reload::Dropped => v.msg(format_args!(
            "config changed ({changed}) during the stop sequence: not acting on it"
        )),
        Reload::Covered(n) => v.msg(format_args!(
            "config changed ({changed}): generation {n} started after it and reads it"
        )),
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Event;
    use crate::log::testing::*;

    #[test]
    fn config_changes_are_said_with_what_changed_and_what_was_done() {
        let paths = [b"/etc/app/..data".to_vec(), b"/etc/app/extra".to_vec()];
        let one = Changed {
            paths: &paths[..1],
            more: 0,
        };
        let t = |then| text(&Event::ConfigChanged { changed: one, then });
        assert_eq!(
            t(Reload::Signalled {
                sig: libc::SIGHUP,
                target: -7
            }),
            "sigward: config changed (/etc/app/..data): sent SIGHUP to process group 7\n"
        );
        assert_eq!(
            t(Reload::Restart),
            "sigward: config changed (/etc/app/..data): restarting the app\n"
        );
        assert_eq!(
            t(Reload::Deferred(Busy::Draining(1))),
            "sigward: config changed (/etc/app/..data): generation 1 is still draining; acting once the restart is over\n"
        );
        assert_eq!(
            t(Reload::Dropped),
            "sigward: config changed (/etc/app/..data) during the stop sequence: not acting on it\n"
        );
        assert_eq!(
            text(&Event::ConfigChanged {
                changed: Changed {
                    paths: &paths,
                    more: 4
                },
                then: Reload::SignalFailed {
                    sig: libc::SIGUSR1,
                    target: -7,
                    err: Errno::ESRCH
                }
            }),
            "sigward: warning: config changed (/etc/app/..data, /etc/app/extra and 4 more): could not send SIGUSR1 to process group 7: ESRCH: No such process\n"
        );
        assert_eq!(
            t(Reload::Covered(2)),
            "sigward: config changed (/etc/app/..data): generation 2 started after it and reads it\n"
        );
        assert_eq!(
            text(&Event::WatchFailed {
                path: b"/etc/app",
                err: Errno::ENOSPC,
                start: true
            }),
            "sigward: cannot watch /etc/app: ENOSPC: No space left on device (no inotify watches left: fs.inotify.max_user_watches)\n"
        );
        let v = json(&Event::ConfigChanged {
            changed: one,
            then: Reload::Signalled {
                sig: libc::SIGHUP,
                target: -7,
            },
        });
        assert_eq!(v["event"], "config_changed");
        assert_eq!(v["paths"], "/etc/app/..data");
        assert_eq!(v["action"], "signal");
        assert_eq!(v["signal"], "SIGHUP");
        assert_eq!(v["pid"], -7);
        assert_eq!(
            text(&Event::Restarting {
                by: Trigger::ConfigChange,
                generation: 2,
                pid: 9,
                current: 1,
                current_pid: 2,
                wait: ReadyWait::After(Duration::from_secs(1))
            }),
            "sigward: configuration changed: starting generation 2 as pid 9 beside generation 1 (pid 2); waiting for 1s (after:)\n"
        );
    }
}
