//! Carrying out: signals to generations and leftovers, SIGKILLs (noted, so that their deaths need
//! no explaining), the terminal's foreground, sigward's own stop, and starting generations. Who
//! is reached is `reach`'s rule and what job control does is `jobs`'; here they only happen.

use super::dispatcher::Dispatcher;
use crate::engine::generations::Gen;
use crate::engine::jobs::{self, OnStopped};
use crate::engine::reach::{self, Target};
use crate::log::{self, Event};
use crate::os::procs::{self, Pinned, Proc};
use crate::os::signals::{self, Sender};
use crate::os::spawn::{self, Detach, Handover, Inherited, SpawnError};
use crate::os::terminal::{self, Os};
use nix::errno::Errno;

/// How every generation is started: what `spawn` needs beyond the command.
pub struct Launch {
    pub detach: Detach,
    pub inherited: Inherited,
    /// Where sigward was started: each generation starts there, though sigward moved to `/`.
    pub cwd: Option<std::ffi::CString>,
}

impl Launch {
    pub fn new(detach: Detach, inherited: Inherited) -> Launch {
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|d| std::ffi::CString::new(d.into_os_string().into_encoded_bytes()).ok());
        Launch {
            detach,
            inherited,
            cwd,
        }
    }

    /// Starts generation `n`, on the held sockets when there are (a hand-over), else alone (a
    /// restart in place, or generation 1 of an app that may be restarted in place).
    pub fn spawn(
        &self,
        command: &[std::ffi::OsString],
        n: u32,
        sockets: Option<spawn::Sockets>,
    ) -> Result<i32, SpawnError> {
        let detach = match self.detach {
            Detach::TerminalForeground if !jobs::foreground_at_start(n, sockets.is_some(), &Os) => {
                Detach::Group
            }
            d => d,
        };
        let handover = Handover {
            sockets,
            generation: n,
            cwd: self.cwd.as_deref(),
        };
        spawn::spawn(command, detach, &self.inherited, Some(&handover)).map(|p| p.as_raw())
    }
}

impl Dispatcher<'_> {
    /// Forwards `sig` (rewritten if asked) to every live generation, as any signal.
    pub(super) fn forward(&mut self, sig: i32) {
        let to = self.cfg.rewritten(sig);
        let result = to.map_or(Ok(()), |to| self.deliver(to));
        self.report_delivery(sig, to, result, false);
    }

    /// Sends `to` to every live generation; the result is the current generation's.
    pub(super) fn deliver(&mut self, to: i32) -> Result<(), Errno> {
        let mut result = Ok(());
        for (g, reaped) in self.gens.forward_targets() {
            let r = self.signal_generation(g, reaped, to);
            if g.pid == self.gens.current.pid {
                result = r;
            }
        }
        result
    }

    /// One generation, as `reach::generation` says it is reached.
    pub(super) fn signal_generation(
        &mut self,
        g: Gen,
        reaped: bool,
        sig: i32,
    ) -> Result<(), Errno> {
        let kill = sig == libc::SIGKILL;
        match reach::generation(g.pid, self.cfg.single_child, reaped) {
            Target::Gone => Err(Errno::ESRCH),
            Target::Process(pid) => {
                let r = signals::send(pid, sig);
                if kill {
                    self.deaths.sigkilled([pid]);
                }
                r
            }
            Target::Group(pgid) => {
                let r = signals::send(-pgid, sig);
                if kill {
                    self.note_group_sigkilled(pgid);
                }
                r
            }
            Target::Members(pgid) => {
                let all = procs::responsible_for(self.mode.pid1);
                if kill {
                    self.deaths
                        .sigkilled(reach::members(&all, pgid, true).map(|p| p.pid));
                }
                match procs::signal_members(reach::members(&all, pgid, true), sig) {
                    0 => Err(Errno::ESRCH),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Remembers group `pgid` as SIGKILLed by sigward: a snapshot taken after kill(-pgid), zombies
    /// included, lists exactly whom it reached (a SIGKILLed process forks no more).
    fn note_group_sigkilled(&mut self, pgid: i32) {
        let members = procs::snapshot()
            .iter()
            .filter(|p| p.pgid == pgid && p.pid != pgid)
            .map(|p| p.pid)
            .collect::<Vec<i32>>();
        self.deaths.sigkilled(std::iter::once(pgid).chain(members));
    }

    pub(super) fn report_delivery(
        &self,
        sig: i32,
        to: Option<i32>,
        result: Result<(), Errno>,
        stopping: bool,
    ) {
        let Some(to) = to else {
            return log::emit(&Event::DroppedRewritten { sig });
        };
        let target = reach::named(self.gens.current.pid, self.cfg.single_child);
        log::emit(&match result {
            Ok(()) => Event::Forwarded {
                received: sig,
                sent: to,
                target,
                stopping,
            },
            Err(Errno::ESRCH) if self.cfg.single_child && self.main_exit.is_some() => {
                Event::DroppedChildGone { sig: to }
            }
            Err(Errno::ESRCH) => Event::DroppedNobodyLeft { sig: to, target },
            Err(err) => Event::ForwardFailed {
                sig: to,
                target,
                err,
            },
        });
    }

    /// SIGCONT to stopped processes that were just told to stop, so a stopped process acts on
    /// its stop signal now instead of sitting until SIGKILL (as systemd does).
    pub(super) fn continue_stopped(&self, told: impl Fn(&Proc) -> bool) {
        for p in procs::responsible_for(self.reach()) {
            if reach::stopped(&p)
                && told(&p)
                && let Some(pin) = Pinned::open(&p)
            {
                let _ = pin.signal(libc::SIGCONT);
            }
        }
    }

    /// Whether the stop sequence reaches the whole PID namespace (see `reach::whole_namespace`).
    pub(super) fn reach(&self) -> bool {
        reach::whole_namespace(self.mode.pid1, self.stop.restarting())
    }

    /// `sig` to every generation's process group, its leader reaped or not: when the processes
    /// left cannot be listed, the groups are what can still be reached, unless the id of a
    /// reaped leader's group was taken since (`reach::group_unseen`).
    pub(super) fn signal_groups_unseen(&self, sig: i32) {
        for (g, reaped) in self.gens.forward_targets() {
            if reach::group_unseen(reaped, || signals::send(g.pid, 0) != Err(Errno::ESRCH)) {
                let _ = signals::send(-g.pid, sig);
            }
        }
    }

    /// SIGKILLs everything sigward answers for; returns who that was, or why that cannot be
    /// listed (the app's groups were SIGKILLed then).
    pub(super) fn kill_everything(&self) -> Result<Vec<Proc>, Errno> {
        let stragglers = match procs::try_responsible_for(self.reach()) {
            Ok(stragglers) => stragglers,
            Err(err) => {
                self.signal_groups_unseen(libc::SIGKILL);
                if self.reach() {
                    let _ = signals::send(-1, libc::SIGKILL);
                }
                return Err(err);
            }
        };
        for (g, reaped) in self.gens.forward_targets() {
            if !reaped {
                let _ = signals::send(-g.pid, libc::SIGKILL);
            }
        }
        for p in &stragglers {
            if let Some(pin) = Pinned::open(p) {
                let _ = pin.signal(libc::SIGKILL);
            }
        }
        if self.reach() {
            // Also reaches what forked since the snapshot. Safe: as PID 1 of our own namespace,
            // -1 means exactly our namespace.
            let _ = signals::send(-1, libc::SIGKILL);
        }
        Ok(stragglers)
    }

    /// SIGKILLs a generation's process group; returns how many of its processes were alive.
    pub(super) fn kill_generation(&mut self, g: Gen, leader_reaped: bool) -> usize {
        let all = procs::responsible_for(self.mode.pid1);
        let n = reach::members(&all, g.pid, leader_reaped).count();
        if leader_reaped {
            procs::signal_members(reach::members(&all, g.pid, true), libc::SIGKILL);
            self.deaths
                .sigkilled(reach::members(&all, g.pid, true).map(|p| p.pid));
        } else {
            let _ = signals::send(-g.pid, libc::SIGKILL);
            self.note_group_sigkilled(g.pid);
        }
        n
    }

    /// A child stopped (reported only when sigward is not PID 1): see `jobs::on_stopped`.
    pub(super) fn on_stopped(&mut self, pid: i32, sig: i32) {
        let app = self.gens.current.pid;
        match jobs::on_stopped(pid, sig, app, self.mode, self.stop.stopping(), &Os) {
            OnStopped::Nothing => {}
            OnStopped::Suspend => self.suspend(sig, true),
            OnStopped::Continue => {
                // Its main process is not reaped: -pid is ours.
                let _ = signals::send(-pid, libc::SIGCONT);
                let mut me = Sender::pid(self.me);
                if log::enabled(log::Level::Debug) {
                    me.name(); // for the debug line below only
                }
                log::emit(&Event::Continued {
                    from: me,
                    foreground: None,
                });
            }
        }
    }

    /// Stops sigward itself (SIGSTOP cannot be blocked: the kernel stops it before kill(2)
    /// returns), so that the shell running it sees its job stopped. Returns once continued; the
    /// SIGCONT that did it is then read from the signalfd like any other signal.
    ///
    /// When the app stopped on the terminal's signal, that signal first goes to sigward's own
    /// process group too: a shell sees a job stopped only once every process of it is
    /// (`sigward -- make | tee log`: `tee` must stop as well), and Ctrl-Z would have stopped
    /// that whole group had the app not been given a group of its own. The shell's SIGCONT then
    /// reaches that group itself. sigward's own copy waits, blocked, and the SIGCONT that
    /// continues sigward discards it (the kernel drops pending stop signals on SIGCONT).
    pub(super) fn suspend(&self, sig: i32, app_stopped: bool) {
        log::emit(&Event::Suspending {
            sig,
            app_stopped,
            pid: self.gens.current.pid,
        });
        if app_stopped {
            // ESRCH cannot happen (sigward is in its group); nothing else to do on an error.
            let _ = signals::send(-nix::unistd::getpgrp().as_raw(), sig);
            if sig == libc::SIGSTOP {
                return; // unblockable: that stopped sigward too, and it has been continued
            }
        }
        // Cannot fail: any process may signal itself, and SIGSTOP is valid.
        let _ = signals::send(self.me, libc::SIGSTOP);
    }

    /// On SIGCONT: the foreground on to the app's group if the job holds it
    /// (`jobs::foreground_on_continue`), before SIGCONT reaches the app.
    pub(super) fn foreground_to_app(&self, from: Sender) {
        let app = self.gens.current.pid;
        let foreground = if !jobs::foreground_on_continue(self.mode, self.main_exit.is_some(), &Os)
        {
            None
        } else {
            match terminal::set_foreground(app) {
                Ok(()) => Some(app),
                Err(err) => {
                    log::emit(&Event::ForegroundFailed { pgid: app, err });
                    None
                }
            }
        };
        log::emit(&Event::Continued { from, foreground });
    }
}
