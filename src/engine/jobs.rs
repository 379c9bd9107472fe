//! Job control, when a shell runs sigward as a job (never as PID 1 of a PID namespace): Ctrl-Z
//! must stop the whole job and `fg` resume it, as if the shell ran the app itself. Pure rules
//! over what [`Job`] reads; the dispatcher carries out (signals, the terminal's foreground).
//!
//! On the terminal the app's group holds the foreground, so Ctrl-Z sends SIGTSTP to the app
//! alone: it stops, and the shell, which sees only sigward as its job, would wait forever with
//! the terminal held by a stopped group. So when the app itself stops on a job-control signal,
//! sigward stops too: the shell sees its job stopped and takes the terminal back. `fg` then gives
//! the terminal to sigward's group and sends it SIGCONT: sigward hands the foreground on to the
//! app's group and passes SIGCONT on, so Ctrl-C reaches the app again (the bug of dumb-init
//! #184). `bg` sends SIGCONT alone: the app runs in the background, and a read from the terminal
//! stops it again (SIGTTIN), and so the job.
//!
//! No state of its own: sigward's stop is synchronous (it returns once sigward is continued),
//! and every event keeps its usual meaning. Never during the stop sequence: its deadline must
//! hold, so a stopped app is left to the stop sequence's SIGCONT and SIGKILL.

pub use crate::os::terminal::Job;

/// How sigward runs the app, for the job-control rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// PID 1 of a PID namespace: no shell above, no job control.
    pub pid1: bool,
    /// The app was started in the terminal's foreground (its own group in sigward's session);
    /// else it has a session of its own.
    pub terminal: bool,
}

/// Signals with which a terminal stops a job: Ctrl-Z, a read or (with `stty tostop`) a write
/// from the background. They pause the job; sigward's stop signals (`-S`) end it.
pub fn is_job_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

/// What a received signal (not a stop or restart signal) means for the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSignal {
    /// A job-control stop for an app in a session of its own, an orphaned process group for
    /// which the kernel discards TSTP/TTIN/TTOU: SIGSTOP the app instead, then sigward itself.
    Suspend,
    /// SIGCONT (`fg`, `bg`): the foreground to the app if the job holds it, then forwarded.
    Continue,
    /// Forwarded as it is (on the terminal a job-control stop then stops the app, and the app's
    /// stop stops sigward; a rewritten job-control signal is just forwarded).
    Forward,
}

/// `unchanged`: the signal is not rewritten by `-r`; `stopping`: the stop sequence (or a
/// restart in place) is under way.
pub fn on_signal(
    sig: i32,
    mode: Mode,
    unchanged: bool,
    stopping: bool,
    job: &impl Job,
) -> OnSignal {
    if !mode.terminal && is_job_stop(sig) && unchanged && may_suspend(mode, stopping, job) {
        OnSignal::Suspend
    } else if sig == libc::SIGCONT && !mode.pid1 {
        OnSignal::Continue
    } else {
        OnSignal::Forward
    }
}

/// Whether sigward may stop itself: not as PID 1, not during the stop sequence, and only where
/// someone can continue it.
fn may_suspend(mode: Mode, stopping: bool, job: &impl Job) -> bool {
    !mode.pid1 && !stopping && job.continuable()
}

/// What a child's stop (reported only when sigward is not PID 1) means for the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnStopped {
    /// Not the app's main process, or not a job-control stop: nothing.
    Nothing,
    /// The app stopped on the terminal's signal: sigward stops too (its group first).
    Suspend,
    /// During the stop sequence a stopped app would sit until SIGKILL and lose its drain; with
    /// nobody to continue the job (`ssh -t host sigward -- app`) it would sit forever: undo the
    /// stop, as the kernel discards the terminal's stop signals for an orphaned group.
    Continue,
}

/// Process `pid` stopped on `sig`; `app` is the current generation's main process.
pub fn on_stopped(
    pid: i32,
    sig: i32,
    app: i32,
    mode: Mode,
    stopping: bool,
    job: &impl Job,
) -> OnStopped {
    if mode.pid1 || pid != app {
        return OnStopped::Nothing;
    }
    // A SIGSTOP counts when the app holds the terminal, as a shell counts it (bash's `suspend`);
    // from a debugger on a background app it does not.
    let job_stop = is_job_stop(sig)
        || (sig == libc::SIGSTOP && mode.terminal && job.foreground() == Some(app));
    if !job_stop {
        OnStopped::Nothing
    } else if !stopping && mode.terminal && job.continuable() {
        OnStopped::Suspend
    } else {
        OnStopped::Continue
    }
}

/// On SIGCONT: after `fg` the shell gave the terminal to sigward's group; it goes on to the
/// app's group. After `bg` the foreground is the shell's and stays so. Once the app is reaped
/// its pid may name another group: never hand it the terminal then.
pub fn foreground_on_continue(mode: Mode, app_ended: bool, job: &impl Job) -> bool {
    mode.terminal && !app_ended && job.foreground() == Some(job.own_group())
}

/// As the app exits: whether the terminal's foreground belongs to this job, so sigward takes it
/// back: the app's group, sigward's own, a group with nobody left, or one of sigward's
/// descendants' (the app's own jobs). After `bg` it is the shell's or another job's and is left
/// alone. As PID 1 always: no shell sits above sigward.
pub fn take_back_foreground(mode: Mode, app: i32, job: &impl Job) -> bool {
    if !mode.terminal {
        return false;
    }
    if mode.pid1 {
        return true;
    }
    let Some(fg) = job.foreground().filter(|&fg| fg > 0) else {
        return false;
    };
    fg == app || fg == job.own_group() || job.group_gone(fg) || job.descendants_group(fg)
}

/// On a promotion: the terminal's foreground follows the serving generation, if the job has it
/// (the old generation's group or sigward's own holds it).
pub fn foreground_follows(mode: Mode, old: i32, job: &impl Job) -> bool {
    mode.terminal
        && job
            .foreground()
            .is_some_and(|fg| fg == old || fg == job.own_group())
}

/// Whether generation `n` takes the terminal's foreground as it starts (when the app runs in
/// it): generation 1 does; a later one beside the old generation (`handover`) gets it when it is
/// promoted; one started in place gets it if the job holds it now (the old one's exit gave it
/// back to sigward's group; after `bg` it is the shell's and stays so).
pub fn foreground_at_start(n: u32, handover: bool, job: &impl Job) -> bool {
    n <= 1 || (!handover && job.foreground() == Some(job.own_group()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Copy, Debug)]
    struct Fake {
        fg: Option<i32>,
        own: i32,
        continuable: bool,
        gone: bool,
        descendants: bool,
    }

    impl Job for Fake {
        fn foreground(&self) -> Option<i32> {
            self.fg
        }
        fn own_group(&self) -> i32 {
            self.own
        }
        fn continuable(&self) -> bool {
            self.continuable
        }
        fn group_gone(&self, _: i32) -> bool {
            self.gone
        }
        fn descendants_group(&self, _: i32) -> bool {
            self.descendants
        }
    }

    const SHELL: Fake = Fake {
        fg: Some(10),
        own: 10,
        continuable: true,
        gone: false,
        descendants: false,
    };
    const TERMINAL: Mode = Mode {
        pid1: false,
        terminal: true,
    };
    const SESSION: Mode = Mode {
        pid1: false,
        terminal: false,
    };
    const PID1: Mode = Mode {
        pid1: true,
        terminal: false,
    };

    #[test]
    fn ctrl_z_for_an_app_in_its_own_session_suspends_the_job_unless_nobody_can_continue_it() {
        let tstp = libc::SIGTSTP;
        assert_eq!(
            on_signal(tstp, SESSION, true, false, &SHELL),
            OnSignal::Suspend
        );
        let orphan = Fake {
            continuable: false,
            ..SHELL
        };
        assert_eq!(
            on_signal(tstp, SESSION, true, false, &orphan),
            OnSignal::Forward
        );
        // Rewritten, during the stop sequence, on the terminal, as PID 1: forwarded.
        assert_eq!(
            on_signal(tstp, SESSION, false, false, &SHELL),
            OnSignal::Forward
        );
        assert_eq!(
            on_signal(tstp, SESSION, true, true, &SHELL),
            OnSignal::Forward
        );
        assert_eq!(
            on_signal(tstp, TERMINAL, true, false, &SHELL),
            OnSignal::Forward
        );
        assert_eq!(
            on_signal(tstp, PID1, true, false, &SHELL),
            OnSignal::Forward
        );
        assert_eq!(
            on_signal(libc::SIGCONT, TERMINAL, true, false, &SHELL),
            OnSignal::Continue
        );
        assert_eq!(
            on_signal(libc::SIGCONT, PID1, true, false, &SHELL),
            OnSignal::Forward
        );
    }

    #[test]
    fn the_apps_stop_on_the_terminal_stops_sigward_or_is_undone() {
        let app = 20;
        let stopped =
            |sig, mode, stopping, job: &Fake| on_stopped(app, sig, app, mode, stopping, job);
        assert_eq!(
            stopped(libc::SIGTSTP, TERMINAL, false, &SHELL),
            OnStopped::Suspend
        );
        assert_eq!(
            stopped(libc::SIGTSTP, TERMINAL, true, &SHELL),
            OnStopped::Continue
        );
        assert_eq!(
            stopped(libc::SIGTSTP, SESSION, false, &SHELL),
            OnStopped::Continue
        );
        assert_eq!(
            stopped(libc::SIGTSTP, PID1, false, &SHELL),
            OnStopped::Nothing
        );
        // SIGSTOP counts only when the app holds the terminal (a debugger's does not).
        assert_eq!(
            stopped(libc::SIGSTOP, TERMINAL, false, &SHELL),
            OnStopped::Nothing
        );
        let held = Fake {
            fg: Some(app),
            ..SHELL
        };
        assert_eq!(
            stopped(libc::SIGSTOP, TERMINAL, false, &held),
            OnStopped::Suspend
        );
        assert_eq!(
            on_stopped(21, libc::SIGTSTP, app, TERMINAL, false, &SHELL),
            OnStopped::Nothing
        );
    }

    #[test]
    fn the_foreground_goes_to_the_app_on_fg_and_comes_back_as_it_exits() {
        assert!(foreground_on_continue(TERMINAL, false, &SHELL));
        assert!(!foreground_on_continue(TERMINAL, true, &SHELL));
        let bg = Fake {
            fg: Some(3),
            ..SHELL
        };
        assert!(!foreground_on_continue(TERMINAL, false, &bg));
        assert!(!foreground_on_continue(SESSION, false, &SHELL));

        assert!(take_back_foreground(
            TERMINAL,
            20,
            &Fake {
                fg: Some(20),
                ..SHELL
            }
        ));
        assert!(take_back_foreground(TERMINAL, 20, &SHELL));
        assert!(!take_back_foreground(TERMINAL, 20, &bg));
        assert!(take_back_foreground(
            TERMINAL,
            20,
            &Fake { gone: true, ..bg }
        ));
        assert!(take_back_foreground(
            TERMINAL,
            20,
            &Fake {
                descendants: true,
                ..bg
            }
        ));
        assert!(!take_back_foreground(SESSION, 20, &SHELL));
        let pid1_terminal = Mode {
            pid1: true,
            terminal: true,
        };
        assert!(take_back_foreground(pid1_terminal, 20, &bg));
    }

    #[test]
    fn a_later_generation_takes_the_foreground_only_when_the_job_holds_it() {
        assert!(foreground_at_start(1, true, &Fake { fg: None, ..SHELL }));
        assert!(!foreground_at_start(2, true, &SHELL));
        assert!(foreground_at_start(2, false, &SHELL));
        assert!(!foreground_at_start(
            2,
            false,
            &Fake {
                fg: Some(3),
                ..SHELL
            }
        ));
        assert!(foreground_follows(
            TERMINAL,
            20,
            &Fake {
                fg: Some(20),
                ..SHELL
            }
        ));
        assert!(foreground_follows(TERMINAL, 20, &SHELL));
        assert!(!foreground_follows(
            TERMINAL,
            20,
            &Fake {
                fg: Some(3),
                ..SHELL
            }
        ));
        assert!(!foreground_follows(SESSION, 20, &SHELL));
    }

    proptest! {
        /// As PID 1 nothing of job control happens, and during the stop sequence sigward never
        /// stops itself (its deadline must hold).
        #[test]
        fn never_suspends_as_pid1_or_while_stopping(
            sig in 1i32..32, pid1 in any::<bool>(), terminal in any::<bool>(),
            unchanged in any::<bool>(), stopping in any::<bool>(),
            fg in prop::option::of(1i32..4), own in 1i32..4, continuable in any::<bool>(),
            pid in 1i32..4,
        ) {
            let mode = Mode { pid1, terminal };
            let job = Fake { fg, own, continuable, gone: false, descendants: false };
            let on_sig = on_signal(sig, mode, unchanged, stopping, &job);
            let on_stop = on_stopped(pid, sig, 2, mode, stopping, &job);
            if pid1 {
                prop_assert_eq!(on_sig, OnSignal::Forward);
                prop_assert_eq!(on_stop, OnStopped::Nothing);
            }
            if stopping || !continuable {
                prop_assert_ne!(on_sig, OnSignal::Suspend);
                prop_assert_ne!(on_stop, OnStopped::Suspend);
            }
        }
    }
}
