//! The dispatcher: takes the reactor's events, feeds the pure machines (the stop sequence in
//! `stop`, the restarts in `generations`, the `--watch` debounce in `watch`), and carries out
//! what they decide. Decisions live in
//! the machines; this file only routes events and makes syscalls, signals and kills first and
//! log lines after, so a slow log reader never delays a deadline.
//!
//! The whole stop sequence, as this file runs it:
//! 1. a stop signal: the stop machine starts the grace period (and maybe the pre-stop delay);
//!    the restart machine learns that sigward is stopping (no restart or promotion from now on)
//!    and STOPPING=1 goes upstream;
//! 2. the stop signal goes to every generation's process group that has not had it (`StopApp`),
//!    then SIGCONT to any stopped member;
//! 3. the main child exits while others remain: each of them not yet told gets the stop signal;
//! 4. the deadline: SIGKILL to everything sigward answers for, stragglers named;
//! 5. nothing left: exit with the main child's status.
//!
//! A restart in place (the restart signal without sockets to hand over) is steps 2 to 4 for the
//! current generation, with the stop machine's ending "start again" instead of "exit": once
//! nothing is left, what is already pending is handled first (a stop signal wins), then the same
//! command starts as the next generation (see `start_in_place`). Its reach is sigward's own
//! descendants only, even as PID 1: a `kubectl exec` shell (its parent outside the namespace)
//! outlives a restart, while the real stop still sweeps the whole namespace.
//!
//! Job control, only when sigward is not PID 1 of a PID namespace (a shell runs it as a job; as
//! PID 1 nothing of this happens): Ctrl-Z must stop the whole job and `fg` resume it, as if the
//! shell ran the app itself. See [`Supervisor::on_stopped`].

use crate::config::Config;
use crate::diagnose::{Cause, Limit, OomCounter};
use crate::engine::generations::{self, Action as GenAction, GaveUp, Gen, Generations, Up};
use crate::engine::reactor::{self, Reactor};
use crate::engine::stop::{self, Action as StopAction, Because, Told};
use crate::engine::{Busy, MAX_ACTIONS, Machine, reload};
use crate::listen::Listeners;
use crate::log::{self, Event};
use crate::notify::{self, Body, Msg, Notify, RateLimit, Upstream};
use crate::os::clock::Mono;
use crate::os::procs::{self, Pinned, Proc};
use crate::os::reap::{Children, Exit};
use crate::os::signals::{Received, SignalFd};
use crate::os::spawn::{self, Detach, Handover, Inherited, SpawnError};
use crate::termination::{Dest, Summary};
use crate::watch::Watcher;
use nix::errno::Errno;
use std::os::fd::AsFd;

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
        // Generation 1 takes the terminal at start. A later one beside the old generation gets it
        // when it is promoted; one started in place gets it if the job holds it now (the old one's
        // exit gave it back to sigward's group; after `bg` it is the shell's and stays so).
        let detach = match self.detach {
            Detach::TerminalForeground
                if n > 1
                    && (sockets.is_some()
                        || nix::unistd::tcgetpgrp(std::io::stdin())
                            != Ok(nix::unistd::getpgrp())) =>
            {
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

/// What sigward holds for generations: the sockets, each generation's notify socket, and the way
/// up to its own notify-aware parent.
pub struct Held {
    pub listeners: Listeners,
    /// Notify sockets: `[current generation's, starting generation's]`.
    pub notify: [Option<Notify>; 2],
    pub upstream: Option<Upstream>,
    refusals: RateLimit,
}

impl Held {
    pub fn new(listeners: Listeners, notify: Notify) -> Held {
        Held {
            listeners,
            notify: [Some(notify), None],
            upstream: Upstream::from_env().unwrap_or_else(|e| {
                let err = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL));
                log::emit(&Event::UpstreamUnusable { err });
                None
            }),
            refusals: RateLimit::new(notify::REFUSAL_WARNING_INTERVAL),
        }
    }

    /// Starts generation `n` on the held sockets with its own notify socket.
    pub fn spawn(
        &self,
        launch: &Launch,
        command: &[std::ffi::OsString],
        n: u32,
        notify: &Notify,
    ) -> Result<i32, SpawnError> {
        let fdnames = self.listeners.fdnames();
        let sockets = spawn::Sockets {
            fds: &self.listeners.fds,
            fdnames: &fdnames,
            notify: &notify.addr,
        };
        launch.spawn(command, n, Some(sockets))
    }

    fn tell(&self, up: Up) {
        if let Some(upstream) = &self.upstream {
            let msg = match up {
                Up::Ready => Msg::Ready,
                Up::Reloading => Msg::Reloading,
                Up::Stopping => Msg::Stopping,
            };
            let _ = upstream.send(&[msg]);
        }
    }
}

pub struct Supervisor<'a> {
    cfg: &'a Config,
    reactor: Reactor,
    stop: stop::State,
    budget: stop::Budget,
    gens: Generations,
    params: generations::Params,
    /// Who has had the stop signal in this stop sequence.
    told: Told,
    held: Option<Held>,
    launch: Launch,
    name: String,
    pid1: bool,
    me: i32,
    /// The app was started in the terminal's foreground (`Detach::TerminalForeground`: its own
    /// group in sigward's session); else it has a session of its own. The foreground is taken
    /// back when the app exits, if the job still holds it.
    terminal: bool,
    main_exit: Option<Exit>,
    /// The main child was reaped in the current reaping pass.
    main_just_exited: bool,
    /// What asked for the restart being handled, for its log lines.
    restart_trigger: log::Trigger,
    /// `--watch`: the inotify side and the debounce machine.
    watch: Option<Watcher<'a>>,
    reload: reload::State,
    reload_params: reload::Params,
    /// stderr is a terminal: a clean exit is not worth a line there.
    interactive: bool,
    /// When to SIGCONT the stopped processes among those just given the stop signal, and the
    /// main processes that were told alone (-c).
    continue_at: Option<Mono>,
    continue_told: Vec<i32>,
    /// What a stop signal's effects were, logged after the signal's own line.
    pending_logs: Option<Vec<(StopAction, Done)>>,
    /// The buffer stop actions are noted in, kept with its capacity so that the dispatcher
    /// allocates nothing between reading a stop signal and sending it on (callgrind, SIGTERM
    /// forwarding: its mallocs there were most of the ~90 code lines the rewrite had added to
    /// that path; on a busy machine each cold line costs up to ~0.1 µs).
    spare_logs: Vec<(StopAction, Done)>,
    /// The container's OOM counter, read at start and when a SIGKILL needs explaining.
    oom: OomCounter,
    /// Pids sigward itself SIGKILLed outside the deadline (a generation given up, a signal
    /// rewritten to SIGKILL): their deaths need no explaining. Dropped as they are reaped. (From
    /// the deadline on, every SIGKILL is sigward's.) A Cell: the kills happen in `&self` methods.
    sigkilled: std::cell::Cell<PidSet>,
    /// Deaths in the current reaping pass worth explaining (SIGKILL not sent by sigward, cores).
    deaths: Vec<Death>,
    /// What the termination message tells.
    summary: Summary,
}

/// Pids (with a 0 beside each: the same set type as `stop::Told`'s, so no new code), hashed
/// cheaply: a generation of 100,000 killed processes is reaped in O(n).
type PidSet =
    std::collections::HashSet<(i32, u64), std::hash::BuildHasherDefault<procs::PidHasher>>;

/// A reaped process whose death is explained once the reaping pass is over.
struct Death {
    pid: i32,
    /// The main process of a generation: its name is the command's.
    named: bool,
    sig: i32,
    core: bool,
}

/// What sigward waits on besides its children: the signalfd, and the inotify fd of `--watch`.
pub struct Sources<'a> {
    pub signals: SignalFd,
    pub watch: Option<Watcher<'a>>,
}

impl<'a> Supervisor<'a> {
    pub fn new(
        cfg: &'a Config,
        sources: Sources<'a>,
        child: i32,
        pid1: bool,
        launch: Launch,
        held: Option<Held>,
        oom: OomCounter,
    ) -> Self {
        let Sources { signals, watch } = sources;
        let name = cfg
            .command
            .first()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        Supervisor {
            cfg,
            // Stops of children are reported for job control only: as PID 1 nothing changes.
            reactor: Reactor::new(signals, !pid1),
            stop: stop::State::Running,
            budget: stop::Budget {
                grace: cfg.grace_period,
                pre_stop_delay: cfg.pre_stop_delay,
                stop_signal: cfg.stop_signal,
            },
            gens: Generations::new(child, Mono::now()),
            params: generations::Params {
                ready: cfg.ready,
                ready_timeout: cfg.ready_timeout,
                grace: cfg.grace_period,
                notify: held.is_some(),
            },
            told: Told::default(),
            held,
            terminal: launch.detach == Detach::TerminalForeground,
            launch,
            pid1,
            me: std::process::id() as i32,
            main_exit: None,
            main_just_exited: false,
            restart_trigger: log::Trigger::ConfigChange,
            watch,
            reload: reload::State::Idle,
            reload_params: reload::Params::new(cfg.watch_debounce),
            pending_logs: None,
            spare_logs: Vec::with_capacity(4),
            interactive: nix::unistd::isatty(std::io::stderr()).unwrap_or(false),
            continue_at: None,
            continue_told: Vec::with_capacity(2),
            oom,
            sigkilled: std::cell::Cell::default(),
            deaths: Vec::new(),
            summary: Summary {
                name: name.clone(),
                pid: child,
                ..Summary::default()
            },
            name,
        }
    }

    /// Runs until every process is gone and returns the main child's exit, and the summary for
    /// the termination message.
    pub fn run(mut self) -> (Exit, Summary) {
        let mut events = Vec::with_capacity(reactor::REAP_BATCH + 8);
        while self.stop != stop::State::Done {
            if let stop::State::Respawning { began } = self.stop {
                // The old generation is gone: what is already pending first (a stop signal that
                // came meanwhile means no new generation), then the next one starts.
                events.clear();
                self.reactor.pending(&mut events);
                log::release();
                for event in events.drain(..) {
                    self.dispatch(event);
                }
                if matches!(self.stop, stop::State::Respawning { .. }) {
                    self.start_in_place(began);
                }
                continue;
            }
            // Due timers first, each by its name.
            let now = Mono::now();
            if let Some((t, at)) = self.stop.timer().filter(|(_, at)| now >= *at) {
                let _ = at;
                self.on_stop(stop::Event::Timer(t), now);
                continue;
            }
            if self.continue_at.is_some_and(|at| now >= at) {
                self.continue_at = None;
                let children = std::mem::take(&mut self.continue_told);
                self.continue_stopped(|p| self.told.has_group(p.pgid) || children.contains(&p.pid));
                continue;
            }
            if let Some((t, _)) = self.gens.timer(&self.params).filter(|(_, at)| now >= *at) {
                self.on_gens(generations::Event::Timer(t), now);
                continue;
            }
            if self
                .reload
                .timer(&self.reload_params)
                .is_some_and(|at| now >= at)
            {
                let restarting = self.restart_under_way();
                self.on_reload(reload::Event::Timer { restarting }, now);
                continue;
            }
            let deadline = [
                self.stop.timer().map(|(_, at)| at),
                self.gens.timer(&self.params).map(|(_, at)| at),
                self.continue_at,
                self.reload.timer(&self.reload_params),
                log::holding().then(|| now.after(log::HOLD_AT_MOST)),
            ]
            .into_iter()
            .flatten()
            .min();
            let notify = match &self.held {
                Some(h) => [
                    h.notify[0].as_ref().map(|n| n.as_fd()),
                    h.notify[1].as_ref().map(|n| n.as_fd()),
                ],
                None => [None, None],
            };
            let watch = self.watch.as_ref().map(|w| w.as_fd());
            events.clear();
            self.reactor.wait(notify, watch, deadline, &mut events);
            // Nothing came (a read that found the signalfd empty, without sleeping): sigward has
            // not slept yet, so held lines wait for the next wait (1 ms at most).
            if !events.is_empty() {
                log::release();
            }
            for event in events.drain(..) {
                self.dispatch(event);
            }
        }
        log::release();
        let exit = self.main_exit.unwrap_or(Exit::Code(125));
        log::emit(&Event::Exiting {
            status: exit.status(),
        });
        (exit, self.summary)
    }

    fn dispatch(&mut self, event: reactor::Event) {
        match event {
            reactor::Event::Signal(r) => self.on_signal(r),
            reactor::Event::Exited(pid, exit) => self.on_exited(pid, exit),
            reactor::Event::Stopped(pid, sig) => self.on_stopped(pid, sig),
            reactor::Event::Reaped(left) => self.on_reaped(left),
            reactor::Event::Notify(slot) => self.on_notify(slot),
            reactor::Event::Watch => self.on_watch(),
            reactor::Event::Timeout => {}
        }
    }

    fn on_signal(&mut self, r: Received) {
        let sig = r.signo;
        if r.pid == self.me {
            // Raised by sigward's own actions (SIGPIPE from a closed stderr): not for the app.
            return log::emit(&Event::IgnoredOwnSignal { sig });
        }
        if self.cfg.stop_signals.contains(sig) {
            let before = self.stop;
            self.on_stop(stop::Event::StopSignal(sig), Mono::now());
            return self.report_stop_signal(before, sig, r.pid);
        }
        if self.cfg.restart_signal == Some(sig) {
            return self.request_restart(log::Trigger::Signal { sig, from: r.pid });
        }
        // Job control (see `on_stopped`). The app in a session of its own is an orphaned process
        // group, for which the kernel discards TSTP/TTIN/TTOU: stop it with SIGSTOP instead, then
        // sigward itself. On the terminal the signal goes on as it is, and the app's stop then
        // stops sigward. A rewritten job-control signal (`-r TSTP:...`) is just forwarded.
        if !self.terminal
            && is_job_stop(sig)
            && self.cfg.rewritten(sig) == Some(sig)
            && self.may_suspend()
        {
            let result = self.deliver(libc::SIGSTOP);
            self.report_delivery(sig, Some(libc::SIGSTOP), result, false);
            return self.suspend(sig, false);
        }
        if sig == libc::SIGCONT && !self.pid1 {
            self.foreground_to_app(r.pid);
        }
        self.forward(sig);
    }

    /// A restart of the app: the restart signal, or `--on-change restart`. With sockets to hand
    /// over, a new generation beside the current one (the restart machine); without, a restart
    /// in place (the stop machine drains the current generation, then it starts again). Either
    /// machine answers a restart under way, or the stop sequence, by ignoring it (logged); the
    /// watch's own machine never asks then (it defers).
    fn request_restart(&mut self, trigger: log::Trigger) {
        self.restart_trigger = trigger;
        let now = Mono::now();
        if self.held.is_some() {
            self.on_gens(generations::Event::Restart, now);
        } else {
            let ended = self.main_exit.is_some();
            let generation = self.gens.current.n;
            self.on_stop(stop::Event::Restart { ended, generation }, now);
        }
    }

    /// A restart in place: nothing of the old generation is left; start the command again as the
    /// next generation, as the first was started (argv, environment, sigward's original working
    /// directory, a session of its own or the terminal's foreground). If it cannot start, that is
    /// reported and sigward exits with the status a shell would give (127, 126; 125 when sigward
    /// itself failed): no silent crash loop inside the container.
    fn start_in_place(&mut self, began: Mono) {
        let n = self.gens.next_n();
        let previous = self.gens.current.n;
        match self.launch.spawn(&self.cfg.command, n, None) {
            Ok(pid) => {
                let now = Mono::now();
                // A new stop sequence for a new generation: nobody told, no exit seen yet.
                self.main_exit = None;
                self.told = Told::default();
                self.continue_at = None;
                self.continue_told.clear();
                // The termination message tells how the last generation ended: the restart's
                // own drain is not its timeline (deaths already explained are kept).
                let died = std::mem::take(&mut self.summary.died);
                let more_died = self.summary.more_died;
                self.summary = Summary {
                    name: self.summary.name.clone(),
                    pid,
                    died,
                    more_died,
                    ..Summary::default()
                };
                self.on_gens(generations::Event::StartedInPlace { n, pid }, now);
                self.on_stop(stop::Event::Started, now);
                log::emit(&Event::RestartedInPlace {
                    generation: n,
                    pid,
                    previous,
                    after: now.since(began),
                });
                // What changed before reads as it starts: no signal into its start-up.
                self.on_reload(reload::Event::Restarted, now);
            }
            Err(e) => {
                let (status, what, err) = match e {
                    SpawnError::Exec(err) => (spawn::exec_failure_status(err), "run", err),
                    SpawnError::Start(what, err) => (crate::boot::START_FAILED, what, err),
                };
                self.main_exit = Some(Exit::Code(status));
                self.on_stop(stop::Event::StartFailed, Mono::now());
                let event = Event::RestartInPlaceFailed {
                    generation: n,
                    what,
                    err,
                    status,
                };
                log::emit(&event);
                // The termination message says first why sigward exits with this status.
                self.summary.failed = Some(log::sentence(&event));
            }
        }
    }

    /// Job control: a child stopped (reported only when sigward is not PID 1).
    ///
    /// On the terminal the app's group holds the foreground, so Ctrl-Z sends SIGTSTP to the app
    /// alone: it stops, and the shell, which sees only sigward as its job, would wait forever
    /// with the terminal held by a stopped group. So when the app itself stops on a job-control
    /// signal, sigward stops too: the shell sees its job stopped and takes the terminal back.
    /// `fg` then gives the terminal to sigward's group and sends it SIGCONT: sigward hands the
    /// foreground on to the app's group and passes SIGCONT on (`on_signal`), so Ctrl-C reaches
    /// the app again (the bug of dumb-init #184). `bg` sends SIGCONT alone: the app runs in the
    /// background, and a read from the terminal stops it again (SIGTTIN), and so the job.
    ///
    /// No state of its own: sigward's stop is synchronous (`suspend` returns once sigward is
    /// continued), and every event keeps its usual meaning. A signal that comes while sigward is
    /// stopped is read once it is continued: a stop signal then starts the stop sequence, whose
    /// SIGCONT reaches the stopped app (`kill %1` in bash sends SIGTERM, then SIGCONT); an app
    /// that dies meanwhile is reaped then, and the terminal is taken back only if the job still
    /// holds it. The kernel reports a stop once, so one Ctrl-Z stops sigward once. A SIGSTOP
    /// from anyone else (a debugger) is not the terminal's: sigward stays. Never during the
    /// stop sequence: its deadline must hold, so a stopped app is left to the stop sequence's
    /// SIGCONT and SIGKILL.
    fn on_stopped(&mut self, pid: i32, sig: i32) {
        if self.pid1 || pid != self.gens.current.pid {
            return;
        }
        // A SIGSTOP counts when the app holds the terminal, as a shell counts it (bash's
        // `suspend`); from a debugger on a background app it does not.
        let job_stop = is_job_stop(sig)
            || (sig == libc::SIGSTOP && self.terminal && self.app_holds_terminal());
        if !job_stop {
            return;
        }
        if !self.stop.stopping() && self.terminal && continuable() {
            return self.suspend(sig, true);
        }
        // During the stop sequence a stopped app would sit until SIGKILL and lose its drain;
        // with nobody to continue the job (`ssh -t host sigward -- app`, a parent in another
        // session) it would sit forever. Undo the stop, as the kernel discards the terminal's
        // stop signals for an orphaned group. (Its main process is not reaped: -pid is ours.)
        let _ = crate::os::signals::send(-pid, libc::SIGCONT);
        log::emit(&Event::Continued {
            from: self.me,
            foreground: None,
        });
    }

    /// Whether the app's group is the terminal's foreground group.
    fn app_holds_terminal(&self) -> bool {
        nix::unistd::tcgetpgrp(std::io::stdin()).map(|g| g.as_raw()) == Ok(self.gens.current.pid)
    }

    /// Whether sigward may stop itself for job control: not as PID 1, not during the stop
    /// sequence, and only where someone can continue it (see [`continuable`]).
    fn may_suspend(&self) -> bool {
        !self.pid1 && !self.stop.stopping() && continuable()
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
    fn suspend(&self, sig: i32, app_stopped: bool) {
        log::emit(&Event::Suspending {
            sig,
            app_stopped,
            pid: self.gens.current.pid,
        });
        if app_stopped {
            // ESRCH cannot happen (sigward is in its group); nothing else to do on an error.
            let _ = crate::os::signals::send(-nix::unistd::getpgrp().as_raw(), sig);
            if sig == libc::SIGSTOP {
                return; // unblockable: that stopped sigward too, and it has been continued
            }
        }
        // Cannot fail: any process may signal itself, and SIGSTOP is valid.
        let _ = crate::os::signals::send(self.me, libc::SIGSTOP);
    }

    /// On SIGCONT: after `fg`, the shell has given the terminal's foreground to sigward's group;
    /// hand it on to the app's group before SIGCONT reaches the app. After `bg` the foreground
    /// is the shell's and stays so. (SIGTTOU is blocked: sigward may set the foreground from a
    /// background group.)
    fn foreground_to_app(&self, from: i32) {
        let stdin = std::io::stdin();
        let app = self.gens.current.pid;
        // Once the app is reaped its pid may name another group: never hand it the terminal.
        let ours = self.terminal
            && self.main_exit.is_none()
            && nix::unistd::tcgetpgrp(&stdin) == Ok(nix::unistd::getpgrp());
        let foreground = if !ours {
            None
        } else {
            match nix::unistd::tcsetpgrp(&stdin, nix::unistd::Pid::from_raw(app)) {
                Ok(()) => Some(app),
                Err(err) => {
                    log::emit(&Event::ForegroundFailed { pgid: app, err });
                    None
                }
            }
        };
        log::emit(&Event::Continued { from, foreground });
    }

    /// Whether the terminal's foreground belongs to this job as the app exits, so sigward takes
    /// it back: the app's group, sigward's own, a group of sigward's descendants (the app's own
    /// jobs), or a group with nobody left. After `bg` it belongs to the shell or another job and
    /// is left alone. As PID 1 always, as before: no shell sits above sigward.
    fn foreground_is_the_jobs(&self, app: i32) -> bool {
        if self.pid1 {
            return true;
        }
        let Ok(fg) = nix::unistd::tcgetpgrp(std::io::stdin()).map(|p| p.as_raw()) else {
            return false;
        };
        fg > 0
            && (fg == app
                || fg == nix::unistd::getpgrp().as_raw()
                || crate::os::signals::send(-fg, 0) == Err(Errno::ESRCH)
                || procs::responsible_for(self.pid1)
                    .iter()
                    .any(|p| p.pgid == fg))
    }

    /// What a received stop signal did, said after its effects (signals before log lines).
    fn report_stop_signal(&mut self, before: stop::State, sig: i32, from: i32) {
        let event = match before {
            _ if before.restarting() => Event::RestartBecameStop {
                sig,
                from,
                generation: self.gens.current.n,
                told: self.cfg.rewritten(self.cfg.stop_signal).is_some(),
            },
            stop::State::Running => Event::StopSignal {
                sig,
                from,
                grace: self.cfg.grace_period,
            },
            stop::State::Delaying { .. } => Event::DelayCut { sig, from },
            stop::State::Draining { asked: false, .. } => Event::StopSignalAfterExit { sig, from },
            stop::State::Draining { asked: true, .. } => Event::StopSignalAgain { sig, from },
            stop::State::Killing { .. } => Event::IgnoredWhileKilling { sig },
            stop::State::Respawning { .. } | stop::State::Done => return,
        };
        log::emit(&event);
        if let Some(logs) = self.pending_logs.take() {
            self.report_all(logs);
        }
    }

    /// Logs what stop actions did, and keeps the emptied buffer for the next stop event.
    fn report_all(&mut self, mut logs: Vec<(StopAction, Done)>) {
        for (action, done) in logs.drain(..) {
            self.report(action, done);
        }
        self.spare_logs = logs;
    }

    fn on_exited(&mut self, pid: i32, exit: Exit) {
        let generation =
            pid == self.gens.current.pid || self.gens.other().is_some_and(|g| g.pid == pid);
        let sigwards = self.sent_sigkill(pid);
        if let Exit::Signal { sig, core } = exit
            && (core || (sig == libc::SIGKILL && !sigwards))
        {
            self.deaths.push(Death {
                pid,
                named: generation,
                sig,
                core,
            });
        }
        if pid == self.gens.current.pid && self.main_exit.is_none() {
            self.main_exit = Some(exit);
            self.main_just_exited = true;
            self.summary.pid = pid;
            self.summary.exit = Some(exit);
            if self.terminal && self.foreground_is_the_jobs(pid) {
                // Take the terminal's foreground back, as a shell does when a job ends.
                let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
            }
            let now = Mono::now();
            self.summary.main_exited = Some(now);
            let after = now.since(self.stop.began().unwrap_or(self.gens.current.began));
            log::emit(&Event::ChildExited {
                command: self.name.as_bytes(),
                pid,
                exit,
                after,
                // In a terminal (`docker run -it`, a shell), a clean run ends without a word.
                quiet: self.interactive && exit == Exit::Code(0) && !self.stop.stopping(),
            });
        } else if self.gens.other().is_some_and(|g| g.pid == pid) {
            // A starting or retiring generation: the restart machine's business.
        } else if self.cfg.warn_on_reap {
            log::emit(&Event::ReapedOrphan { pid, exit });
        } else {
            log::emit(&Event::Reaped { pid, exit });
        }
        if self.gens.other().is_some_and(|g| g.pid == pid) || pid == self.gens.current.pid {
            self.on_gens(generations::Event::Exited { pid, exit }, Mono::now());
        }
    }

    /// A reaping pass is over: now the main child's exit and "nothing left" can be judged.
    fn on_reaped(&mut self, left: Children) {
        let now = Mono::now();
        if std::mem::take(&mut self.main_just_exited) {
            let others = left == Children::Remain;
            self.on_stop(stop::Event::MainExited { others }, now);
        } else if left == Children::Remain && matches!(self.stop, stop::State::Killing { .. }) {
            // Something exited while killing and others remain: they may have forked just
            // before SIGKILL landed; the resweep timer looks again.
        }
        if let Some(old) = self.gens.retiring_exited()
            && members(&procs::responsible_for(self.pid1), old.pid, true)
                .next()
                .is_none()
        {
            self.told.forget_group(old.pid);
            self.on_gens(generations::Event::RetiredGroupGone, now);
        }
        if left == Children::None {
            self.on_stop(stop::Event::AllGone, now);
        }
        if !self.deaths.is_empty() {
            self.explain_deaths();
        }
    }

    /// Whether sigward itself SIGKILLed `pid`: its deadline did (every SIGKILL from then on is
    /// sigward's), or it was among those sigward SIGKILLed before. Forgets the pid: it is reaped.
    fn sent_sigkill(&self, pid: i32) -> bool {
        let mut pids = self.sigkilled.take();
        let listed = !pids.is_empty() && pids.remove(&(pid, 0));
        self.sigkilled.set(pids);
        listed || matches!(self.stop, stop::State::Killing { .. } | stop::State::Done)
    }

    /// Remembers that sigward SIGKILLed `pids`.
    fn note_sigkilled(&self, pids: impl Iterator<Item = i32>) {
        let mut all = self.sigkilled.take();
        for pid in pids {
            all.insert((pid, 0));
        }
        self.sigkilled.set(all);
    }

    /// Remembers group `pgid` as SIGKILLed by sigward: a snapshot taken after kill(-pgid), zombies
    /// included, lists exactly whom it reached (a SIGKILLed process forks no more).
    fn note_group_sigkilled(&self, pgid: i32) {
        let members: Vec<i32> = procs::snapshot()
            .iter()
            .filter(|p| p.pgid == pgid && p.pid != pgid)
            .map(|p| p.pid)
            .collect();
        self.note_sigkilled(std::iter::once(pgid).chain(members));
    }

    /// Says why the processes of this reaping pass died of a SIGKILL sigward did not send (the
    /// OOM counter is read now, once for all of them) or with a core dump. Apart from the start,
    /// the only cgroup reads sigward makes.
    fn explain_deaths(&mut self) {
        let deaths = std::mem::take(&mut self.deaths);
        let kills = deaths.iter().filter(|d| !d.core).count();
        let rise = if kills > 0 {
            self.oom.oom_kills_among(kills)
        } else {
            None
        };
        let limit = match rise {
            Some(r) if r > 0 => self.oom.limit(),
            _ => Limit::Unknown,
        };
        let summarize = self.cfg.termination_log != Dest::Off;
        for d in deaths {
            let cause = match (d.core, rise) {
                (true, _) => Cause::Core(d.sig),
                (false, None) => Cause::Unknown,
                (false, Some(0)) => Cause::Outside,
                (false, Some(r)) if r >= kills as u64 => Cause::Oom(limit),
                (false, Some(r)) => Cause::MaybeOom {
                    kills: r,
                    deaths: kills,
                    limit,
                },
            };
            let event = Event::Died {
                name: d.named.then_some(self.name.as_bytes()),
                pid: d.pid,
                cause,
            };
            log::emit(&event);
            if summarize {
                self.summary.died(log::sentence(&event));
            }
        }
    }

    /// Feeds the stop machine and carries out its decisions.
    fn on_stop(&mut self, event: stop::Event, now: Mono) {
        let was_exiting = self.stop.exiting();
        let actions = self.stop.step(event, now, &self.budget);
        let next = self.stop;
        // Effects first, in order, with nothing but them before the last one (the stop signal
        // follows `Began`)...
        let mut done = [const { Done::Nothing }; MAX_ACTIONS];
        for (&action, done) in actions.iter().zip(&mut done) {
            *done = self.carry_out(action, now);
        }
        // ...noted in a buffer kept from call to call (see `spare_logs`)...
        let mut logs = std::mem::take(&mut self.spare_logs);
        logs.clear();
        logs.extend(actions.into_iter().zip(done));
        if !was_exiting && next.exiting() {
            // The watch first: nothing the restart machine does now may still act on a change.
            // Straight to the end too (a restart in place that cannot start again, a stop signal
            // between its generations): a change waiting for it is said to be dropped.
            self.on_reload(reload::Event::Stopping, now);
            if next != stop::State::Done {
                self.on_gens(generations::Event::Stopping, now);
            }
        }
        // ...then what they were, on a possibly slow stderr (after the stop signal's own line
        // when a received signal caused them).
        if matches!(event, stop::Event::StopSignal(_)) {
            self.pending_logs = Some(logs);
        } else {
            self.report_all(logs);
        }
    }

    fn carry_out(&mut self, action: StopAction, now: Mono) -> Done {
        match action {
            StopAction::StopApp { sig, because } => {
                let to = self.cfg.rewritten(sig);
                if because == Because::DelayOver {
                    self.summary.delay_over = Some(now);
                }
                self.summary.forwarded.get_or_insert((now, to));
                let mut result = Ok(());
                if let Some(to) = to {
                    if self.cfg.single_child {
                        // -c: each generation's main process alone; pinned by its start time.
                        for (g, _) in self.gens.stop_targets() {
                            if let Some(p) = procs::stat_of(g.pid) {
                                self.told.process(p.pid, p.start_time);
                            }
                        }
                    }
                    // The signals first, with no allocation or bookkeeping before them (the
                    // forwarding latency is counted in cold cache lines); nothing happens between
                    // them and the bookkeeping below.
                    for (g, reaped) in self.gens.stop_targets() {
                        let r = self.signal_generation(g, reaped, to);
                        if g.pid == self.gens.current.pid {
                            result = r;
                        }
                    }
                    // Step aside: what sigward writes about it waits until it next wakes.
                    crate::os::signals::yield_cpu();
                    log::hold();
                    self.continue_told.clear();
                    for (g, _) in self.gens.stop_targets() {
                        if !self.cfg.single_child {
                            // With -c only the child itself was told; its group hears later.
                            self.told.group(g.pid);
                        }
                        self.continue_told.push(g.pid);
                    }
                    // Stopped processes among them get SIGCONT shortly (a named timer of the
                    // dispatcher's): an app that just exits is gone before, and its stop then
                    // costs no /proc walk.
                    self.continue_at = Some(Mono::now().after(CONTINUE_AFTER));
                }
                Done::Sent { to, result }
            }
            StopAction::ForwardAgain { sig } => {
                let to = self.cfg.rewritten(sig);
                let result = match to {
                    Some(to) => self.deliver(to),
                    None => Ok(()),
                };
                Done::Sent { to, result }
            }
            StopAction::StopLeftovers { sig, .. } => {
                self.summary.leftovers.get_or_insert(now);
                let Some(to) = self.cfg.rewritten(sig) else {
                    let left = procs::responsible_for(self.reach()).len();
                    return Done::Counted { left, sent: 0 };
                };
                let remaining = procs::responsible_for(self.reach());
                let mut count = 0;
                for p in &remaining {
                    if !self.told.first_time(p.pid, p.pgid, p.start_time) {
                        continue;
                    }
                    if let Some(pin) = Pinned::open(p) {
                        let _ = pin.signal(to);
                        if to == libc::SIGKILL {
                            self.note_sigkilled(std::iter::once(p.pid));
                        }
                        if p.state == b'T' {
                            let _ = pin.signal(libc::SIGCONT);
                        }
                    }
                    count += 1;
                }
                Done::Counted {
                    left: remaining.len(),
                    sent: count,
                }
            }
            StopAction::Kill { first } => {
                let killed = self.kill_everything();
                if first {
                    let names = log::Stragglers(&killed).to_string();
                    self.summary.killed = Some((now, self.cfg.grace_period, killed.len(), names));
                }
                Done::Killed(killed)
            }
            // The first stop signal, also when sigward was stopping already (the main child
            // exited, a restart in place is draining or being killed).
            StopAction::Began { sig, .. }
            | StopAction::AlreadyStopping { sig }
            | StopAction::Ignored { sig } => {
                self.summary.stop.get_or_insert((now, sig));
                Done::Nothing
            }
            StopAction::RestartBegan { .. } => {
                self.summary.restart = Some(now);
                Done::Nothing
            }
            StopAction::RestartIgnored(_) | StopAction::Exit => Done::Nothing,
        }
    }

    fn report(&self, action: StopAction, done: Done) {
        match (action, done) {
            (
                StopAction::Began {
                    sig,
                    hold: Some(delay),
                    ..
                },
                _,
            ) => log::emit(&Event::PreStopDelay { sig, delay }),
            (StopAction::StopApp { sig, because }, Done::Sent { to, result }) => {
                if because == Because::DelayOver {
                    log::emit(&Event::DelayOver);
                }
                self.report_delivery(sig, to, result, true);
            }
            (StopAction::ForwardAgain { sig }, Done::Sent { to, result }) => {
                self.report_delivery(sig, to, result, true)
            }
            (StopAction::StopLeftovers { sig, wait }, Done::Counted { left, sent }) => {
                log::emit(&match self.cfg.rewritten(sig) {
                    None => Event::LeftoversUnsignalled { count: left, sig },
                    Some(to) => Event::Leftovers {
                        count: left,
                        sent,
                        sig: to,
                        wait,
                    },
                })
            }
            (StopAction::RestartBegan { sig, grace }, _) => {
                let current = self.gens.current;
                log::emit(&Event::RestartInPlace {
                    by: self.restart_trigger,
                    generation: current.n,
                    pid: current.pid,
                    stop: self.cfg.rewritten(sig),
                    grace,
                })
            }
            (StopAction::RestartIgnored(busy), _) => log::emit(&Event::RestartIgnored {
                by: self.restart_trigger,
                busy,
            }),
            (StopAction::Kill { first: true }, Done::Killed(stragglers)) => {
                log::emit(&Event::StragglersKilled {
                    grace: self.cfg.grace_period,
                    stragglers: &stragglers,
                })
            }
            _ => {}
        }
    }

    /// Forwards `sig` (rewritten if asked) to every live generation, as any signal.
    fn forward(&mut self, sig: i32) {
        let to = self.cfg.rewritten(sig);
        let result = to.map_or(Ok(()), |to| self.deliver(to));
        self.report_delivery(sig, to, result, false);
    }

    /// Sends `to` to every live generation; the result is the current generation's.
    fn deliver(&self, to: i32) -> Result<(), Errno> {
        let mut result = Ok(());
        for (g, reaped) in self.gens.forward_targets() {
            let r = self.signal_generation(g, reaped, to);
            if g.pid == self.gens.current.pid {
                result = r;
            }
        }
        result
    }

    /// One generation's process group (or its main process alone with -c). A group whose leader
    /// was reaped may have had its id reused: its members are signalled one by one, pinned.
    fn signal_generation(&self, g: Gen, leader_reaped: bool, sig: i32) -> Result<(), Errno> {
        let kill = sig == libc::SIGKILL;
        match (self.cfg.single_child, leader_reaped) {
            (true, true) => Err(Errno::ESRCH),
            (true, false) => {
                let r = crate::os::signals::send(g.pid, sig);
                if kill {
                    self.note_sigkilled(std::iter::once(g.pid));
                }
                r
            }
            (false, false) => {
                let r = crate::os::signals::send(-g.pid, sig);
                if kill {
                    self.note_group_sigkilled(g.pid);
                }
                r
            }
            (false, true) => {
                let all = procs::responsible_for(self.pid1);
                if kill {
                    self.note_sigkilled(members(&all, g.pid, true).map(|p| p.pid));
                }
                match procs::signal_members(members(&all, g.pid, true), sig) {
                    0 => Err(Errno::ESRCH),
                    _ => Ok(()),
                }
            }
        }
    }

    fn report_delivery(
        &self,
        sig: i32,
        to: Option<i32>,
        result: Result<(), Errno>,
        stopping: bool,
    ) {
        let Some(to) = to else {
            return log::emit(&Event::DroppedRewritten { sig });
        };
        let child = self.gens.current.pid;
        let target = if self.cfg.single_child { child } else { -child };
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
    fn continue_stopped(&self, told: impl Fn(&Proc) -> bool) {
        for p in procs::responsible_for(self.reach()) {
            if p.state == b'T'
                && told(&p)
                && let Some(pin) = Pinned::open(&p)
            {
                let _ = pin.signal(libc::SIGCONT);
            }
        }
    }

    /// Whether the stop sequence reaches the whole PID namespace (as its PID 1) or sigward's own
    /// descendants only: a restart in place leaves what is not the app's (a `kubectl exec`
    /// shell, whose parent is outside the namespace) alone.
    fn reach(&self) -> bool {
        self.pid1 && !self.stop.restarting()
    }

    /// SIGKILLs everything sigward answers for; returns who that was.
    fn kill_everything(&self) -> Vec<Proc> {
        let stragglers = procs::responsible_for(self.reach());
        for (g, reaped) in self.gens.forward_targets() {
            if !reaped {
                let _ = crate::os::signals::send(-g.pid, libc::SIGKILL);
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
            let _ = crate::os::signals::send(-1, libc::SIGKILL);
        }
        stragglers
    }

    /// Feeds the restart machine and carries out its decisions.
    fn on_gens(&mut self, event: generations::Event, now: Mono) {
        let actions = self.gens.step(event, now, &self.params);
        for action in actions {
            self.carry_out_gens(action, now);
        }
        self.after_restart(now);
    }

    /// A restart is under way: a new generation beside the current one (`--listen`), or a restart
    /// in place.
    fn restart_under_way(&self) -> bool {
        self.gens.restart != generations::Restart::Idle || self.stop.restarting()
    }

    /// A configuration change deferred during a restart is acted on once it is over.
    fn after_restart(&mut self, now: Mono) {
        if self.reload == reload::State::Deferred && !self.restart_under_way() {
            self.on_reload(reload::Event::RestartOver, now);
        }
    }

    /// Events on the inotify fd: a change starts (or extends) the quiet window.
    fn on_watch(&mut self) {
        if self.watch.as_mut().is_some_and(|w| w.read()) {
            self.on_reload(reload::Event::Changed, Mono::now());
        }
    }

    /// Feeds the debounce machine and carries out its decision: signals first, the line after.
    fn on_reload(&mut self, event: reload::Event, now: Mono) {
        let actions = self.reload.step(event, now, &self.reload_params);
        let Some(&action) = actions.first() else {
            return;
        };
        // Deferred: the paths stay for the line of the action taken later.
        let (paths, more) = match self.watch.as_mut() {
            Some(w) if action == reload::Action::Defer => w.changed_so_far(),
            Some(w) => w.take_changed(),
            None => (Vec::new(), 0),
        };
        let changed = log::Changed {
            paths: &paths,
            more,
        };
        let then = match (action, self.cfg.on_change) {
            (reload::Action::Act, crate::config::OnChange::Signal(sig)) => {
                let child = self.gens.current.pid;
                let target = if self.cfg.single_child { child } else { -child };
                match self.deliver(sig) {
                    Ok(()) => log::Reload::Signalled { sig, target },
                    Err(err) => log::Reload::SignalFailed { sig, target, err },
                }
            }
            (reload::Action::Act, crate::config::OnChange::Restart) => {
                // Said first: the restart's own lines (the new generation) follow.
                log::emit(&Event::ConfigChanged {
                    changed,
                    then: log::Reload::Restart,
                });
                return self.request_restart(log::Trigger::ConfigChange);
            }
            (reload::Action::Defer, _) => log::Reload::Deferred(match self.gens.restart {
                generations::Restart::Starting { next, .. } => Busy::Starting(next.n),
                generations::Restart::Retiring { old, .. } => Busy::Draining(old.n),
                generations::Restart::Idle if self.stop.restarting() => {
                    Busy::Restarting(self.gens.current.n)
                }
                generations::Restart::Idle => Busy::Stopping,
            }),
            (reload::Action::Drop, _) => log::Reload::Dropped,
            (reload::Action::Covered, _) => log::Reload::Covered(self.gens.current.n),
        };
        log::emit(&Event::ConfigChanged { changed, then });
    }

    fn carry_out_gens(&mut self, action: GenAction, now: Mono) {
        match action {
            GenAction::Spawn { n } => {
                let Some(held) = self.held.as_mut() else {
                    return self.on_gens(generations::Event::SpawnFailed { n }, now);
                };
                let current = self.gens.current.n;
                let notify = match Notify::new() {
                    Ok(notify) => notify,
                    Err(e) => {
                        let err = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                        log::emit(&Event::RestartNoNotifySocket { generation: n, err });
                        return self.on_gens(generations::Event::SpawnFailed { n }, now);
                    }
                };
                match held.spawn(&self.launch, &self.cfg.command, n, &notify) {
                    Ok(pid) => {
                        held.notify[1] = Some(notify);
                        self.on_gens(generations::Event::Spawned { n, pid }, Mono::now());
                    }
                    Err(e) => {
                        log::emit(&match e {
                            SpawnError::Exec(err) => Event::RestartCannotRun {
                                generation: n,
                                err,
                                current,
                            },
                            SpawnError::Start(what, err) => Event::RestartCannotStart {
                                generation: n,
                                what,
                                err,
                                current,
                            },
                        });
                        self.on_gens(generations::Event::SpawnFailed { n }, now);
                    }
                }
            }
            GenAction::Upstream(up) => {
                if let Some(h) = &self.held {
                    h.tell(up);
                }
            }
            GenAction::Ignored(busy) => log::emit(&Event::RestartIgnored {
                by: self.restart_trigger,
                busy,
            }),
            GenAction::Started { next, current } => log::emit(&Event::Restarting {
                by: self.restart_trigger,
                generation: next.n,
                pid: next.pid,
                current: current.n,
                current_pid: current.pid,
                wait: match self.cfg.ready {
                    generations::Ready::Notify => log::ReadyWait::Notify(self.cfg.ready_timeout),
                    generations::Ready::After(d) => log::ReadyWait::After(d),
                },
            }),
            GenAction::CurrentReady(g) => log::emit(&Event::Ready {
                generation: g.n,
                pid: g.pid,
            }),
            GenAction::Promoted { current, old } => {
                // The old generation gets the stop signal, once, and SIGCONT if stopped. It counts
                // as told: a later stop sequence's leftover pass passes it by.
                let sig = self.cfg.rewritten(self.cfg.stop_signal);
                if self.cfg.single_child {
                    if let Some(p) = procs::stat_of(old.pid) {
                        self.told.process(p.pid, p.start_time);
                    }
                } else {
                    self.told.group(old.pid);
                }
                if let Some(sig) = sig {
                    let _ = self.signal_generation(old, false, sig);
                    self.continue_stopped(|p| p.pgid == old.pid);
                }
                if let Some(h) = self.held.as_mut() {
                    h.notify.swap(0, 1);
                    h.notify[1] = None;
                }
                // The terminal's foreground follows the serving generation, if the job has it.
                let stdin = std::io::stdin();
                if self.terminal
                    && let Ok(fg) = nix::unistd::tcgetpgrp(&stdin)
                    && (fg.as_raw() == old.pid || fg == nix::unistd::getpgrp())
                    && let Err(err) =
                        nix::unistd::tcsetpgrp(&stdin, nix::unistd::Pid::from_raw(current.pid))
                {
                    log::emit(&Event::ForegroundFailed {
                        pgid: current.pid,
                        err,
                    });
                }
                log::emit(&Event::Promoted {
                    generation: current.n,
                    pid: current.pid,
                    after: now.since(current.began),
                    retiring: old.n,
                    retiring_pid: old.pid,
                    sig,
                    grace: self.cfg.grace_period,
                });
            }
            GenAction::Abandoned {
                generation,
                why,
                kill,
            } => {
                if kill {
                    let reaped = matches!(why, GaveUp::Exited(_));
                    self.kill_generation(generation, reaped);
                }
                if let Some(h) = self.held.as_mut() {
                    h.notify[1] = None;
                }
                let current = self.gens.current;
                log::emit(&Event::Abandoned {
                    generation: generation.n,
                    pid: generation.pid,
                    why: match why {
                        GaveUp::NotReady(t) => log::Abandon::NotReadyAfter(t),
                        GaveUp::Exited(exit) => log::Abandon::ExitedBeforeReady(exit),
                    },
                    current: current.n,
                    current_pid: current.pid,
                });
            }
            GenAction::NextExited { generation, exit } => {
                if let Some(h) = self.held.as_mut() {
                    h.notify[1] = None;
                }
                log::emit(&Event::StartingExited {
                    generation: generation.n,
                    pid: generation.pid,
                    exit,
                });
            }
            GenAction::RetiredExited { old, exit, since } => log::emit(&Event::Retired {
                generation: old.n,
                pid: old.pid,
                exit,
                after: now.since(since),
            }),
            GenAction::KillRetired { old, exited } => {
                let count = self.kill_generation(old, exited);
                self.told.forget_group(old.pid);
                log::emit(&Event::RetiredKilled {
                    generation: old.n,
                    pid: old.pid,
                    grace: self.cfg.grace_period,
                    count,
                });
            }
        }
    }

    /// SIGKILLs a generation's process group; returns how many of its processes were alive.
    fn kill_generation(&self, g: Gen, leader_reaped: bool) -> usize {
        let all = procs::responsible_for(self.pid1);
        let n = members(&all, g.pid, leader_reaped).count();
        if leader_reaped {
            procs::signal_members(members(&all, g.pid, true), libc::SIGKILL);
            self.note_sigkilled(members(&all, g.pid, true).map(|p| p.pid));
        } else {
            let _ = crate::os::signals::send(-g.pid, libc::SIGKILL);
            self.note_group_sigkilled(g.pid);
        }
        n
    }

    /// Datagrams on a generation's notify socket: READY=1 from the right generation feeds the
    /// restart machine; what the parent must see is relayed; strangers are refused (rate-limited).
    fn on_notify(&mut self, slot: usize) {
        let generation = match slot {
            0 => Some(self.gens.current),
            _ => self.gens.starting(),
        };
        let Some(held) = self.held.as_mut() else {
            return;
        };
        let Some(socket) = held.notify.get(slot).and_then(|n| n.as_ref()) else {
            return;
        };
        let batch = socket.recv();
        let Some(generation) = generation else { return };
        let n = generation.n;
        let mut ready = false;
        // Each datagram is dropped once handled: the fds it carried (a BARRIER=1 pipe) close then,
        // not 16 datagrams' worth at once.
        for datagram in batch.datagrams {
            if !from_generation(&datagram.sender, generation.pid) {
                if let Some(suppressed) = held.refusals.allow(Mono::now().0) {
                    log::emit(&Event::NotifyRefused {
                        sender: datagram.sender.pid.unwrap_or(0),
                        generation: n,
                        suppressed,
                    });
                }
                continue;
            }
            if let Body::Truncated { len } = datagram.body {
                log::emit(&Event::NotifyTruncated { generation: n, len });
                continue;
            }
            for msg in datagram.msgs() {
                match msg {
                    Msg::Ready => ready = true,
                    Msg::Status(status) => log::emit(&Event::AppStatus {
                        generation: n,
                        status: status.as_bytes(),
                    }),
                    Msg::Stopping => log::emit(&Event::AppStopping { generation: n }),
                    Msg::Reloading => log::emit(&Event::AppReloading { generation: n }),
                    _ => {}
                }
            }
            // What the parent must see (watchdog pings, status...) from the serving generation.
            if slot == 0
                && let Some(up) = &held.upstream
            {
                let _ = up.relay(datagram.msgs());
            }
        }
        if let Some(err) = batch.error {
            log::emit(&Event::NotifyFailed { generation: n, err });
        }
        if ready {
            self.on_gens(generations::Event::Ready { n: generation.n }, Mono::now());
        }
    }
}

/// Signals with which a terminal stops a job: Ctrl-Z, a read or (with `stty tostop`) a write
/// from the background. They pause the job; sigward's stop signals (`-S`) end it.
fn is_job_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

/// Whether anyone can continue sigward once it stops itself: its nearest ancestor outside
/// sigward's own process group is in sigward's session (a job-control shell). That is the
/// kernel's test for a process group that is not orphaned, followed up sigward's own line of
/// ancestors. The kernel discards TSTP/TTIN/TTOU for an orphaned group, since nobody would ever
/// continue it, and sigward does not stop there either (a parent in another session, a service
/// manager, a parent outside the PID namespace).
fn continuable() -> bool {
    use nix::unistd::{Pid, getpgid, getpgrp, getppid, getsid};
    let (Ok(sid), pgrp) = (getsid(None), getpgrp()) else {
        return false;
    };
    let mut pid = getppid();
    // A line of ancestors inside one process group is short; never loop on a /proc oddity.
    for _ in 0..64 {
        if pid.as_raw() <= 0 {
            return false; // outside the PID namespace
        }
        match getpgid(Some(pid)) {
            Err(_) => return false,
            // An init (tini, as `docker run --init`) never continues anyone.
            Ok(group) if group != pgrp => return pid.as_raw() != 1 && getsid(Some(pid)) == Ok(sid),
            Ok(_) => {}
        }
        let Some(p) = procs::stat_of(pid.as_raw()) else {
            return false;
        };
        pid = Pid::from_raw(p.ppid);
    }
    false
}

/// The processes of group `pgid` in a snapshot. Once its leader was reaped, a process whose pid
/// *is* `pgid` proves the old group empty (the kernel reuses no pid still in use as a group id):
/// its members are then whoever joined that new process, not ours to signal.
fn members(all: &[Proc], pgid: i32, leader_reaped: bool) -> impl Iterator<Item = &Proc> {
    let reused = leader_reaped && all.iter().any(|p| p.pid == pgid);
    all.iter().filter(move |p| !reused && p.pgid == pgid)
}

/// Whether a notify sender belongs to generation `pgid`: its main process, or any process of its
/// group — checked without a pid-reuse race where the kernel passed the sender's pidfd.
fn from_generation(sender: &notify::Sender, pgid: i32) -> bool {
    let Some(pid) = sender.pid.filter(|&p| p > 0) else {
        return false;
    };
    if pid == pgid {
        return true;
    }
    let Some(stat) = procs::stat_of(pid) else {
        return false;
    };
    // The stat was read first; a sender still alive now is the process that stat described.
    stat.pgid == pgid && sender.alive() != Some(false)
}

/// How long after the stop signal stopped processes among its receivers get SIGCONT.
const CONTINUE_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// What carrying out a stop action did, for its log line.
enum Done {
    Nothing,
    Sent {
        to: Option<i32>,
        result: Result<(), Errno>,
    },
    /// Processes left, and how many of them were sent the signal now (the others had it).
    Counted {
        left: usize,
        sent: usize,
    },
    Killed(Vec<Proc>),
}
