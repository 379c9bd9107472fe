//! Reaping zombies.
//!
//! Standard signals coalesce, so one SIGCHLD may stand for thousands of exits: [`reap_some`] calls
//! waitpid until nothing is left to collect. Finding and signalling processes is `procs`' job.
//!
//! Outside a PID namespace of its own, sigward also asks to hear of children that *stopped*
//! (WUNTRACED): on a terminal, Ctrl-Z stops the app's process group without a word to sigward,
//! and the shell above sigward must still see its job stop (see `engine::jobs`).

use nix::errno::Errno;

/// How a child ended, as waitpid's raw status decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// Killed by `sig`; `core` when the kernel dumped core (SIGSEGV, SIGABRT, ... with a core
    /// limit), worth saying in the log line that reports the crash.
    Signal {
        sig: i32,
        core: bool,
    },
}

impl Exit {
    /// The shell convention: the code itself, or 128 + the signal number.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal { sig, .. } => sig.saturating_add(128),
        }
    }

    /// Decodes a raw wait status; None for one that is not an end (stopped, continued).
    fn from_raw(raw: i32) -> Option<Exit> {
        if libc::WIFEXITED(raw) {
            Some(Exit::Code(libc::WEXITSTATUS(raw)))
        } else if libc::WIFSIGNALED(raw) {
            Some(Exit::Signal {
                sig: libc::WTERMSIG(raw),
                core: libc::WCOREDUMP(raw),
            })
        } else {
            None
        }
    }
}

/// What waitpid reported for a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// It ended; the zombie is gone.
    Exited(Exit),
    /// It was stopped by this signal (reported only when asked for: see [`reap_some`]).
    Stopped(i32),
}

impl Waited {
    /// Decodes a raw wait status; None for one that is neither an end nor a stop (continued).
    fn from_raw(raw: i32) -> Option<Waited> {
        if libc::WIFSTOPPED(raw) {
            Some(Waited::Stopped(libc::WSTOPSIG(raw)))
        } else {
            Exit::from_raw(raw).map(Waited::Exited)
        }
    }
}

/// Whether any child is left after a reaping pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Children {
    Remain,
    None,
}

/// Collects at most `max` zombie children, calling `each` for each one (and, with `stops`, for
/// each child that stopped since it was last reported: the kernel reports a stop once). `Some`
/// once none is waiting (with whether any child is left), `None` when `max` reports were taken
/// and more may wait: the caller looks at its signals and deadlines, then calls again.
pub fn reap_some(max: usize, stops: bool, mut each: impl FnMut(i32, Waited)) -> Option<Children> {
    let flags = if stops {
        libc::WNOHANG | libc::WUNTRACED
    } else {
        libc::WNOHANG
    };
    let mut reaped = 0;
    while reaped < max {
        let mut raw = 0;
        // SAFETY: `raw` is a valid, writable int; WNOHANG makes the call non-blocking. libc rather
        // than nix: nix cannot decode a child killed by a real-time signal and would drop its status.
        let pid = unsafe { libc::waitpid(-1, &mut raw, flags) };
        match pid {
            0 => return Some(Children::Remain),
            -1 => match Errno::last() {
                Errno::EINTR => continue,
                // ECHILD: nothing left. Any other error cannot name a child; treat it alike
                // rather than spin.
                Errno::ECHILD => return Some(Children::None),
                _ => return Some(Children::Remain),
            },
            pid => {
                reaped += 1;
                if let Some(waited) = Waited::from_raw(raw) {
                    each(pid, waited);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_convention() {
        assert_eq!(Exit::Code(3).status(), 3);
        assert_eq!(
            Exit::Signal {
                sig: 15,
                core: false
            }
            .status(),
            143
        );
        assert_eq!(
            Exit::Signal {
                sig: 11,
                core: true
            }
            .status(),
            139
        );
        assert_eq!(
            Exit::Signal {
                sig: 64,
                core: false
            }
            .status(),
            192
        );
    }

    #[test]
    fn raw_wait_statuses_decode() {
        // Linux's layout: code << 8 for an exit; the signal, with 0x80 for a core, for a kill.
        assert_eq!(Exit::from_raw(3 << 8), Some(Exit::Code(3)));
        assert_eq!(Exit::from_raw(0), Some(Exit::Code(0)));
        assert_eq!(
            Exit::from_raw(15),
            Some(Exit::Signal {
                sig: 15,
                core: false
            })
        );
        assert_eq!(
            Exit::from_raw(11 | 0x80),
            Some(Exit::Signal {
                sig: 11,
                core: true
            })
        );
        assert_eq!(
            Exit::from_raw(64),
            Some(Exit::Signal {
                sig: 64,
                core: false
            })
        );
        // Stopped by SIGSTOP, continued: not an end.
        assert_eq!(Exit::from_raw((19 << 8) | 0x7f), None);
        assert_eq!(Exit::from_raw(0xffff), None);
    }

    #[test]
    fn stops_decode_and_continues_are_not_reported() {
        // Linux's layout for a stop: the signal << 8, then 0x7f; 0xffff is "continued".
        assert_eq!(
            Waited::from_raw((libc::SIGTSTP << 8) | 0x7f),
            Some(Waited::Stopped(libc::SIGTSTP))
        );
        assert_eq!(
            Waited::from_raw((libc::SIGSTOP << 8) | 0x7f),
            Some(Waited::Stopped(libc::SIGSTOP))
        );
        assert_eq!(Waited::from_raw(0xffff), None);
        assert_eq!(
            Waited::from_raw(3 << 8),
            Some(Waited::Exited(Exit::Code(3)))
        );
        assert_eq!(
            Waited::from_raw(9),
            Some(Waited::Exited(Exit::Signal {
                sig: 9,
                core: false
            }))
        );
    }

    #[test]
    fn a_real_stop_decodes() {
        use std::os::unix::process::ExitStatusExt;
        // A stopped child of our own, waited for by pid (never -1: other tests' children).
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // SAFETY: kill and waitpid with plain integers and a valid, writable int.
        let raw = unsafe {
            // SIGSTOP: TSTP may be ignored where the tests run (a job-control shell's background).
            libc::kill(pid, libc::SIGSTOP);
            let mut raw = 0;
            while libc::waitpid(pid, &mut raw, libc::WUNTRACED) != pid {
                assert_eq!(Errno::last(), Errno::EINTR);
            }
            raw
        };
        assert_eq!(Waited::from_raw(raw), Some(Waited::Stopped(libc::SIGSTOP)));
        child.kill().unwrap();
        let raw = child.wait().unwrap().into_raw();
        assert!(matches!(Waited::from_raw(raw), Some(Waited::Exited(_))));
    }

    #[test]
    fn a_real_crash_reports_its_core() {
        use std::os::unix::process::ExitStatusExt;
        // Decode what the kernel really wrote for a killed child, without waitpid(-1) (which
        // would steal other tests' children).
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        child.kill().unwrap();
        let raw = child.wait().unwrap().into_raw();
        assert_eq!(
            Exit::from_raw(raw),
            Some(Exit::Signal {
                sig: 9,
                core: false
            })
        );
    }
}
