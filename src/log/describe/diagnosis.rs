//! Why a process died, and the termination message.

use super::*;

/// The sentences and fields of this domain's events (see [`super`] for which those are).
pub(super) fn describe(e: &Event, v: &mut dyn Visit) -> Option<()> {
    use Level::{Debug, Warn};
    match *e {
        Event::Died { name, pid, cause } => {
            died(v, Who(name, pid), cause)?;
            died_fields(v, name, pid, cause);
        }
        Event::TerminationLog { path, outcome } => {
            let path = Lossy(path);
            match outcome {
                TermLog::Written(n) => {
                    v.say(
                        Debug,
                        "termination_log",
                        format_args!("wrote the termination message to {path} ({n} bytes)"),
                    )?;
                    v.int("bytes", int(n));
                }
                TermLog::AppWrote => {
                    v.say(
                        Debug,
                        "termination_log",
                        format_args!(
                            "{path} holds the app's own termination message: left as it is"
                        ),
                    )?;
                }
                TermLog::Missing => {
                    v.say(
                        Debug,
                        "termination_log",
                        format_args!("no {path}: no termination message written"),
                    )?;
                }
                TermLog::NotAFile => {
                    v.say(Warn, "termination_log", format_args!(
                        "{path} is not a regular file (a symlink?): no termination message written"
                    ))?;
                }
                TermLog::Failed(err) => {
                    v.say(
                        Warn,
                        "termination_log",
                        format_args!("cannot write the termination message to {path}: {err}"),
                    )?;
                }
            }
            v.text("path", &path);
        }
        // Other domains' events: `super::describe` sends none of them here.
        _ => {}
    }
    Some(())
}

/// A death's sentence: who, and what killed it.
fn died(v: &mut dyn Visit, who: Who<'_>, cause: Cause) -> Option<()> {
    use Level::Warn;
    match cause {
        Cause::Oom(limit) => {
            v.say(
                Warn,
                "oom_killed",
                format_args!(
                    "{who} was killed by the kernel's OOM killer ({})",
                    MemoryLimit(limit)
                ),
            )?;
        }
        Cause::MaybeOom {
            kills,
            deaths,
            limit,
        } => {
            v.say(Warn, "killed", format_args!(
                "{who} was killed by SIGKILL: the kernel's OOM killer killed {kills} of the {deaths} processes that just died of SIGKILL, which ones it does not say ({})",
                MemoryLimit(limit)
            ))?;
        }
        Cause::Outside => {
            v.say(
                Warn,
                "killed",
                format_args!("{who} was killed by SIGKILL from outside sigward (not an OOM kill)"),
            )?;
        }
        Cause::Unknown => {
            v.say(Warn, "killed", format_args!(
                "{who} was killed by SIGKILL from outside sigward (OOM kill unknown: no memory cgroup counter readable)"
            ))?;
        }
        Cause::Core(sig) => {
            v.say(
                Warn,
                "core_dumped",
                format_args!("{who} dumped core ({})", Name(sig)),
            )?;
        }
    }
    Some(())
}

/// A death's fields: the signal, whether it was the OOM killer, who sent it.
fn died_fields(v: &mut dyn Visit, name: Option<&[u8]>, pid: i32, cause: Cause) {
    v.int("pid", pid.into());
    if let Some(name) = name {
        v.text("name", &Lossy(name));
    }
    let sig = match cause {
        Cause::Core(sig) => sig,
        _ => libc::SIGKILL,
    };
    v.text("signal", &Name(sig));
    v.flag("core", matches!(cause, Cause::Core(_)));
    match cause {
        Cause::Oom(limit) | Cause::MaybeOom { limit, .. } => {
            // MaybeOom: the kernel does not say whose kill it was; no oom, no sender.
            if let Cause::Oom(_) = cause {
                v.flag("oom", true);
                v.text("sender", &"kernel OOM killer");
            }
            if let Limit::Bytes(b) = limit {
                v.int("memory_limit", i64::try_from(b).unwrap_or(i64::MAX));
            }
        }
        Cause::Outside => {
            v.flag("oom", false);
            v.text("sender", &"outside sigward");
        }
        Cause::Unknown => v.text("sender", &"outside sigward"),
        Cause::Core(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Event;
    use crate::log::testing::*;

    #[test]
    fn why_it_died_reads_plainly() {
        let t = |e| text(&e);
        assert_eq!(
            t(Event::Died {
                name: Some(b"server"),
                pid: 7,
                cause: Cause::Oom(Limit::Bytes(64 << 20)),
            }),
            "sigward: warning: server (pid 7) was killed by the kernel's OOM killer (memory limit 64 MiB)\n"
        );
        assert_eq!(
            t(Event::Died {
                name: Some(b"server"),
                pid: 7,
                cause: Cause::Oom(Limit::None),
            }),
            "sigward: warning: server (pid 7) was killed by the kernel's OOM killer (no memory limit)\n"
        );
        assert_eq!(
            t(Event::Died {
                name: None,
                pid: 12,
                cause: Cause::Outside,
            }),
            "sigward: warning: pid 12 was killed by SIGKILL from outside sigward (not an OOM kill)\n"
        );
        assert_eq!(
            t(Event::Died {
                name: Some(b"server"),
                pid: 7,
                cause: Cause::Core(libc::SIGSEGV),
            }),
            "sigward: warning: server (pid 7) dumped core (SIGSEGV)\n"
        );
        let v = json(&Event::Died {
            name: Some(b"server"),
            pid: 7,
            cause: Cause::Oom(Limit::Bytes(32 << 20)),
        });
        assert_eq!(v["event"], "oom_killed");
        assert_eq!(v["oom"], true);
        assert_eq!(v["core"], false);
        assert_eq!(v["signal"], "SIGKILL");
        assert_eq!(v["memory_limit"], 32 << 20);
        assert_eq!(v["name"], "server");
        let v = json(&Event::Died {
            name: None,
            pid: 7,
            cause: Cause::Outside,
        });
        assert_eq!((&v["event"], &v["oom"]), (&"killed".into(), &false.into()));
        assert!(v.get("memory_limit").is_none());
        let v = json(&Event::Died {
            name: None,
            pid: 7,
            cause: Cause::Core(libc::SIGABRT),
        });
        assert_eq!(
            (&v["core"], &v["signal"]),
            (&true.into(), &"SIGABRT".into())
        );
        assert_eq!(
            MemoryLimit(Limit::Bytes(1 << 30)).to_string(),
            "memory limit 1 GiB"
        );
        assert_eq!(
            MemoryLimit(Limit::Bytes(1000)).to_string(),
            "memory limit 1000 bytes"
        );
    }
}
